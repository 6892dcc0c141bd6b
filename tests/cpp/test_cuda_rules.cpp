// The CUDA layer's host-side rules (csrc/cuda/kernels/launch_rules.h) on the
// CPU: no GPU, no CUDA, no torch. The decisions a GPU run depends on (which
// route a device's shared memory allows, which pointers cuFFT may read, the
// plan cache's exclusive check-out and eviction) are checked here, in every
// CI run.

#include "core/recursive_filter.h"
#include "cuda/kernels/launch_rules.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace {

using torch_mlsgd::core::make_recursive_filter;
namespace rules = torch_mlsgd::cuda;

constexpr size_t kKiB = 1024;
// cudaDevAttrMaxSharedMemoryPerBlockOptin of three generations.
constexpr size_t kTuring = 64 * kKiB;   // sm_75, e.g. T4
constexpr size_t kAmpere = 163 * kKiB;  // sm_80, A100
constexpr size_t kHopper = 227 * kKiB;  // sm_90, H100/H200

bool fits(double sigma, int64_t order, size_t element_bytes, size_t limit) {
  const auto filter = make_recursive_filter(sigma, order, element_bytes == 8 ? 1e-17 : 1e-8);
  return rules::direct_fits(filter.sections.size(), filter.warmup, element_bytes, limit);
}

TEST(CudaRules, SharedBytesOfABlockAreItsRangeAndTwoWarmups) {
  EXPECT_EQ(rules::kBlockRange, 32 * 257);
  EXPECT_EQ(rules::direct_shared_bytes(0, 4), size_t{8224 * 4});
  EXPECT_EQ(rules::direct_shared_bytes(100, 8), size_t{(8224 + 200) * 8});
}

TEST(CudaRules, ATuringGpuRefusesEveryFloat64DirectBlock) {
  // 8224 float64 elements are 65,792 bytes before any warm-up: more than 64 KiB.
  EXPECT_GT(rules::direct_shared_bytes(0, 8), kTuring);
  EXPECT_FALSE(fits(1.0, 1, 8, kTuring));
  EXPECT_FALSE(fits(0.01, 1, 8, kTuring));
  EXPECT_TRUE(fits(1.0, 1, 4, kTuring));
  EXPECT_TRUE(fits(1.0, 1, 8, kAmpere));
  EXPECT_TRUE(fits(1.0, 1, 8, kHopper));
}

TEST(CudaRules, AutoFallsBackToFftWhereTheDirectBlockDoesNotFit) {
  const auto filter = make_recursive_filter(1.0, 1, 1e-17);
  EXPECT_FALSE(
      rules::auto_takes_direct(rules::direct_fits(filter.sections.size(), filter.warmup, 8, kTuring), filter.warmup));
  EXPECT_TRUE(
      rules::auto_takes_direct(rules::direct_fits(filter.sections.size(), filter.warmup, 8, kHopper), filter.warmup));
  // Long warm-ups go to cuFFT even where they fit: the direct cost grows with them.
  const auto slow = make_recursive_filter(1e4, 1, 1e-17);
  ASSERT_GT(slow.warmup, 2 * rules::kChunk);
  EXPECT_TRUE(rules::direct_fits(slow.sections.size(), slow.warmup, 4, kHopper));
  EXPECT_FALSE(rules::auto_takes_direct(true, slow.warmup));
}

TEST(CudaRules, LargerLimitsAdmitLongerWarmups) {
  // The largest sigma (on a doubling grid) each limit takes for float32, order 1:
  // a larger limit must take at least as much, and Hopper strictly more than Turing.
  auto largest = [](size_t limit) {
    double sigma = 1.0;
    while (fits(sigma * 2, 1, 4, limit)) {
      sigma *= 2;
    }
    return sigma;
  };
  EXPECT_LE(largest(kTuring), largest(kAmpere));
  EXPECT_LT(largest(kTuring), largest(kHopper));
  EXPECT_FALSE(fits(largest(kHopper) * 4, 1, 4, kHopper));
}

TEST(CudaRules, OrdersAboveEightAreNeverDirect) {
  EXPECT_TRUE(fits(1.0, 8, 4, kHopper));
  EXPECT_FALSE(fits(1.0, 9, 4, kHopper));
  EXPECT_FALSE(fits(1.0, 16, 4, kHopper));
  EXPECT_FALSE(rules::direct_fits(2, -1, 4, kHopper));
}

TEST(CudaRules, ComplexAlignmentIsTwoElements) {
  alignas(64) static float f[8];
  alignas(64) static double d[8];
  EXPECT_TRUE(rules::complex_aligned(f, sizeof(float)));
  EXPECT_FALSE(rules::complex_aligned(f + 1, sizeof(float)));  // x[1:] of a float tensor
  EXPECT_TRUE(rules::complex_aligned(f + 2, sizeof(float)));
  EXPECT_FALSE(rules::complex_aligned(d + 1, sizeof(double)));
  EXPECT_TRUE(rules::complex_aligned(d + 4, sizeof(double)));
}

// A resource that counts how many of its kind are alive and who holds it.
struct Counted {
  explicit Counted(int id, std::shared_ptr<std::atomic<int>> alive) : id(id), alive(std::move(alive)) {
    ++*this->alive;
  }
  Counted(Counted&& o) noexcept : id(o.id), alive(std::move(o.alive)) {}
  Counted& operator=(Counted&&) = delete;
  ~Counted() {
    if (alive) {
      --*alive;
    }
  }
  int id;
  std::shared_ptr<std::atomic<int>> alive;
};

TEST(CudaRules, ACheckedOutEntryIsHeldByOneCallerAtATime) {
  auto alive = std::make_shared<std::atomic<int>>(0);
  rules::CheckoutCache<int, Counted> cache(4);
  EXPECT_FALSE(cache.take(7).has_value());
  cache.give_back(7, Counted(1, alive));
  auto first = cache.take(7);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->id, 1);
  EXPECT_FALSE(cache.take(7).has_value()) << "a second caller must not share the checked-out entry";
  cache.give_back(7, Counted(2, alive));  // the second caller made its own
  cache.give_back(7, std::move(*first));
  first.reset();
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(*alive, 2);
  EXPECT_EQ(cache.take(7)->id, 1);  // most recently given back first
}

TEST(CudaRules, EvictionDestroysTheLeastRecentBeyondCapacity) {
  auto alive = std::make_shared<std::atomic<int>>(0);
  rules::CheckoutCache<int, Counted> cache(3);
  for (int key = 0; key < 5; ++key) {
    cache.give_back(key, Counted(key, alive));
  }
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(*alive, 3) << "evicted entries must be destroyed";
  EXPECT_FALSE(cache.take(0).has_value());
  EXPECT_FALSE(cache.take(1).has_value());
  EXPECT_TRUE(cache.take(4).has_value());  // destroyed at the end of the statement
  EXPECT_EQ(*alive, 2);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(*alive, 0);
}

TEST(CudaRules, NothingIsEvictedWhileEvictionIsHeldBack) {
  // During a CUDA graph capture no plan may be destroyed: the cache grows past
  // its capacity, and the next ordinary give_back trims it.
  auto alive = std::make_shared<std::atomic<int>>(0);
  rules::CheckoutCache<int, Counted> cache(2);
  for (int key = 0; key < 4; ++key) {
    cache.give_back(key, Counted(key, alive), /*may_evict=*/false);
  }
  EXPECT_EQ(cache.size(), 4u);
  EXPECT_EQ(*alive, 4);
  cache.give_back(9, Counted(9, alive));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(*alive, 2);
  EXPECT_TRUE(cache.take(9).has_value());
  EXPECT_TRUE(cache.take(3).has_value());
}

TEST(CudaRules, ThreadsSharingOneKeyNeverHoldTheSameEntry) {
  auto alive = std::make_shared<std::atomic<int>>(0);
  rules::CheckoutCache<int, Counted> cache(2);
  constexpr int kThreads = 8;
  std::vector<std::atomic<int>> holders(kThreads * 1000 + 1);
  std::atomic<int> next_id{0};
  std::atomic<bool> shared{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&]() {
      for (int i = 0; i < 1000; ++i) {
        std::optional<Counted> held = cache.take(0);
        if (!held) {
          held.emplace(++next_id, alive);
        }
        if (holders[held->id].fetch_add(1) != 0) {
          shared = true;
        }
        std::this_thread::yield();
        holders[held->id].fetch_sub(1);
        cache.give_back(0, std::move(*held));
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_FALSE(shared);
  EXPECT_LE(cache.size(), 2u);
  EXPECT_EQ(static_cast<size_t>(*alive), cache.size());
}

}  // namespace
