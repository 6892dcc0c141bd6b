// The LibTorch optimizers with a c10d process group, in two processes that
// CTest starts together (tests/cpp/run_ranks.cmake passes RANK, WORLD_SIZE and
// STORE_FILE): each rank holds its shard of one vector as two parameters; the
// shards, stepped with flatten = "group" and the process group, must end where
// one process stepping the whole vector ends.
//
// The process group: torch 2.x's wheels ship no gloo headers, so a C++
// program cannot construct a ProcessGroupGloo from them; this test's group is
// a c10d::ProcessGroup whose all-gather goes through a c10d::FileStore. The
// optimizers only call ProcessGroup::allgather, as they would on gloo or NCCL.

#include <torch_mlsgd/torch_mlsgd.h>

#include "optim/group_step.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int env_int(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? -1 : std::atoi(value);
}

class DoneWork : public c10d::Work {
 public:
  bool isCompleted() override { return true; }
  bool isSuccess() const override { return true; }
  bool wait(std::chrono::milliseconds /*timeout*/) override { return true; }
};

// All-gather through a store: every rank publishes its tensor's bytes under a
// key of this call, then reads everyone's.
class StoreGroup : public c10d::ProcessGroup {
 public:
  StoreGroup(c10::intrusive_ptr<c10d::Store> store, int rank, int size)
      : c10d::ProcessGroup(rank, size), store_(std::move(store)) {}

  const std::string getBackendName() const override { return "store"; }

  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                           std::vector<at::Tensor>& inputs,
                                           const c10d::AllgatherOptions& /*opts*/) override {
    const at::Tensor input = inputs.at(0).contiguous();
    const auto* bytes = static_cast<const uint8_t*>(input.data_ptr());
    const std::string prefix = "allgather/" + std::to_string(calls_++) + "/";
    store_->set(prefix + std::to_string(getRank()),
                std::vector<uint8_t>(bytes, bytes + input.numel() * input.element_size()));
    for (int r = 0; r < getSize(); ++r) {
      const std::vector<uint8_t> data = store_->get(prefix + std::to_string(r));
      at::Tensor& out = outputs.at(0).at(r);
      EXPECT_EQ(data.size(), static_cast<size_t>(out.numel() * out.element_size()));
      std::memcpy(out.data_ptr(), data.data(), data.size());
    }
    return c10::make_intrusive<DoneWork>();
  }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  int calls_ = 0;
};

struct Rank {
  int rank = env_int("RANK");
  int world = env_int("WORLD_SIZE");
  c10::intrusive_ptr<c10d::ProcessGroup> group;

  Rank() {
    const char* file = std::getenv("STORE_FILE");
    if (rank >= 0 && world > 0 && file != nullptr) {
      group = c10::make_intrusive<StoreGroup>(c10::make_intrusive<c10d::FileStore>(file, world), rank, world);
    }
  }
};

Rank& this_rank() {
  static Rank rank;
  return rank;
}

// The global vector and its gradient field; rank r holds kLengths[r]
// elements (rank 1's shard is shorter than the direct route's warm-up).
const std::vector<int64_t> kLengths = {3000, 17, 4000};

torch::Tensor global_vector() {
  torch::manual_seed(11);
  return torch::randn({3000 + 17 + 4000}, torch::kDouble);
}

torch::Tensor gradient_of(const torch::Tensor& p) { return torch::sin(3 * p.detach()) + 0.5 * p.detach(); }

template <typename Optimizer, typename Options>
void expect_shards_follow_one_process(const Options& options) {
  Rank& r = this_rank();
  ASSERT_TRUE(r.group) << "run through tests/cpp/run_ranks.cmake (RANK, WORLD_SIZE, STORE_FILE)";
  ASSERT_EQ(r.world, static_cast<int>(kLengths.size()));
  const torch::Tensor full = global_vector();
  int64_t start = 0;
  for (int i = 0; i < r.rank; ++i) {
    start += kLengths[i];
  }
  const torch::Tensor mine = full.narrow(0, start, kLengths[r.rank]);
  const int64_t half = mine.numel() / 2;  // the shard is two parameters
  std::vector<torch::Tensor> params = {mine.narrow(0, 0, half).clone().requires_grad_(true),
                                       mine.narrow(0, half, mine.numel() - half).clone().requires_grad_(true)};
  Optimizer sharded(params, options, r.group);

  torch::Tensor whole = full.clone().requires_grad_(true);  // one process, one ring
  Optimizer reference(std::vector<torch::Tensor>{whole}, options);
  for (int step = 0; step < 4; ++step) {
    for (auto& p : params) {
      p.mutable_grad() = gradient_of(p);
    }
    whole.mutable_grad() = gradient_of(whole);
    sharded.step();
    reference.step();
  }
  const torch::Tensor expected = whole.detach().narrow(0, start, kLengths[r.rank]);
  EXPECT_TRUE(torch::allclose(torch::cat({params[0].detach(), params[1].detach()}), expected, 1e-11, 1e-12));
}

TEST(ProcessGroup, LSGDShardsFollowOneProcess) {
  expect_shards_follow_one_process<torch_mlsgd::LSGD>(
      torch_mlsgd::LSGDOptions(0.1).sigma(2.0).momentum(0.9).weight_decay(1e-3).flatten("group"));
}

TEST(ProcessGroup, MLSGDShardsFollowOneProcess) {
  expect_shards_follow_one_process<torch_mlsgd::MLSGD>(
      torch_mlsgd::MLSGDOptions(0.1).sigma(1.0).momentum(0.9).flatten("group").seed(4));
}

TEST(ProcessGroup, ANonFiniteShardStopsEveryRankBeforeAnyChange) {
  Rank& r = this_rank();
  ASSERT_TRUE(r.group);
  torch::Tensor p = torch::ones({100}, torch::kDouble).requires_grad_(true);
  p.mutable_grad() = torch::ones({100}, torch::kDouble);
  if (r.rank == 1) {
    p.mutable_grad()[50] = std::numeric_limits<double>::quiet_NaN();
  }
  torch_mlsgd::LSGD optimizer(std::vector<torch::Tensor>{p}, torch_mlsgd::LSGDOptions(0.1).flatten("group"), r.group);
  try {
    optimizer.step();
    ADD_FAILURE() << "expected every rank to throw";
  } catch (const c10::Error& error) {
    EXPECT_NE(std::string(error.what()).find("rank(s) [1] hold NaN or Inf"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(torch::equal(p.detach(), torch::ones({100}, torch::kDouble)));
}

TEST(ProcessGroup, NeedsGroupFlatten) {
  Rank& r = this_rank();
  ASSERT_TRUE(r.group);
  torch::Tensor p = torch::ones({10}, torch::kDouble).requires_grad_(true);
  EXPECT_THROW(torch_mlsgd::LSGD(std::vector<torch::Tensor>{p}, torch_mlsgd::LSGDOptions(0.1), r.group),
               c10::ValueError);
}

}  // namespace
