#pragma once

// The CUDA layer's host-side rules: the sizes and decisions that need no
// device. How much shared memory a direct block takes, whether a filter fits
// a device's limit, which route "auto" prefers, the alignment cuFFT requires,
// and the check-out cache the cuFFT plans live in. Plain C++ (no CUDA, no
// torch), so that the CPU suite tests them (tests/cpp/test_cuda_rules.cpp)
// on machines without a GPU.

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <utility>

namespace torch_mlsgd {
namespace cuda {

// Orders up to 2 * kMaxSections on the GPU's direct route.
constexpr int kMaxSections = 4;
// A direct block is one warp; each lane runs the recursion over one chunk.
constexpr int kWarp = 32;
// Chunk length: 1 more than a multiple of 32, so the 32 lanes' chunks start
// in different shared-memory banks.
constexpr int64_t kChunk = 257;
// Ring elements one direct block solves.
constexpr int64_t kBlockRange = kWarp * kChunk;

// Shared memory of one direct block: its range and a warm-up on either side.
constexpr size_t direct_shared_bytes(int64_t warmup, size_t element_bytes) {
  return static_cast<size_t>(kBlockRange + 2 * warmup) * element_bytes;
}

// Whether the direct kernels can take a filter of `sections` second-order
// sections and this warm-up on a device that grants `shared_limit` bytes of
// shared memory to one block (cudaDevAttrMaxSharedMemoryPerBlockOptin: 227 KiB
// on sm_90, 163 KiB on sm_80, 64 KiB on sm_75).
constexpr bool direct_fits(size_t sections, int64_t warmup, size_t element_bytes, size_t shared_limit) {
  return sections <= static_cast<size_t>(kMaxSections) && warmup >= 0 &&
         direct_shared_bytes(warmup, element_bytes) <= shared_limit;
}

// backend="auto" takes the direct route where it fits and its warm-up is short
// next to a block's chunks: the direct cost grows with the warm-up, the FFT's
// does not.
constexpr bool auto_takes_direct(bool fits, int64_t warmup) { return fits && warmup <= 2 * kChunk; }

// cuFFT reads real input as complex pairs: its pointers must be aligned to two
// elements (torch's own spectral ops clone inputs that are not). A view such
// as x[1:] of a float tensor is not.
inline bool complex_aligned(const void* pointer, size_t element_bytes) {
  return reinterpret_cast<std::uintptr_t>(pointer) % (2 * element_bytes) == 0;
}

// A bounded LRU of resources that one user holds at a time. take() removes a
// matching entry, so two threads (or two streams) asking for one key never
// share it: the second finds none and makes its own. give_back() files a
// resource as the most recent and drops the least recent ones beyond the
// capacity; a Value frees what it holds in its destructor.
template <typename Key, typename Value>
class CheckoutCache {
 public:
  explicit CheckoutCache(size_t capacity) : capacity_(capacity) {}

  std::optional<Value> take(const Key& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        std::optional<Value> value(std::move(it->second));
        entries_.erase(it);
        return value;
      }
    }
    return std::nullopt;
  }

  // `may_evict` false: keep every entry for now (while a CUDA graph is being
  // captured, destroying a cuFFT plan would free memory); a later call evicts.
  void give_back(const Key& key, Value value, bool may_evict = true) {
    std::list<std::pair<Key, Value>> evicted;  // destroyed after the lock is released
    {
      std::lock_guard<std::mutex> lock(mutex_);
      entries_.emplace_front(key, std::move(value));
      while (may_evict && entries_.size() > capacity_) {
        evicted.splice(evicted.end(), entries_, std::prev(entries_.end()));
      }
    }
  }

  void clear() {
    std::list<std::pair<Key, Value>> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      evicted.swap(entries_);
    }
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
  }

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::list<std::pair<Key, Value>> entries_;  // most recent first
};

}  // namespace cuda
}  // namespace torch_mlsgd
