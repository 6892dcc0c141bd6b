// torch_mlsgd::MLSGD: its schedules, its steps against LSGD with the
// scheduled sigma, serialization and errors.

#include "optim/group_step.h"
#include "reference.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using torch_mlsgd::LSGD;
using torch_mlsgd::LSGDOptions;
using torch_mlsgd::MLSGD;
using torch_mlsgd::MLSGDOptions;
using namespace torch_mlsgd::testing;  // reference.h: the references and the helpers

// MLSGD's random draw in [0, 1), written here from the generator's definition
// (core/sigma_schedule.h: splitmix64's output function, Steele, Lea and Flood
// 2014, of seed * 0x9E3779B97F4A7C15 + step + 0x632BE59BD9B4E019 mod 2^64; the
// top 53 bits over 2^53), not calling the library's.
double reference_uniform01(uint64_t seed, uint64_t step) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + step + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return std::ldexp(static_cast<double>(z >> 11), -53);
}

// sigma_k of the schedules as docs/api.md's table defines them (sigma_max = 2 sigma
// when not given).
double reference_sigma(const std::string& schedule, int64_t k, double sigma, double sigma_min, double sigma_max,
                       int64_t period, uint64_t seed) {
  if (schedule == "random") {
    return sigma_min + (sigma_max - sigma_min) * reference_uniform01(seed, static_cast<uint64_t>(k));
  }
  if (schedule == "cyclic") {
    return sigma_min + (sigma_max - sigma_min) * static_cast<double>(k % period) / static_cast<double>(period - 1);
  }
  if (schedule == "decay") {
    return sigma / (1.0 + static_cast<double>(k) / static_cast<double>(period));
  }
  return sigma;
}

std::vector<torch::Tensor> make_params() {
  torch::manual_seed(21);
  return {torch::randn({40, 30}, torch::kDouble).requires_grad_(true),
          torch::randn({17}, torch::kDouble).requires_grad_(true)};
}

TEST(MLSGD, SchedulesFollowTheirFormulas) {
  const auto base = MLSGDOptions(0.1).sigma(2.0).period(10);
  for (int64_t k : {0, 1, 5, 9, 10, 123}) {
    EXPECT_DOUBLE_EQ(MLSGDOptions(base).schedule("constant").sigma_at(k), 2.0);
    EXPECT_DOUBLE_EQ(MLSGDOptions(base).schedule("decay").sigma_at(k), 2.0 / (1.0 + k / 10.0));
    EXPECT_DOUBLE_EQ(MLSGDOptions(base).schedule("growth").sigma_at(k), 2.0 * (1.0 + k / 10.0));
    EXPECT_DOUBLE_EQ(MLSGDOptions(base).schedule("cyclic").sigma_min(1.0).sigma_max(4.0).sigma_at(k),
                     1.0 + 3.0 * static_cast<double>(k % 10) / 9.0);
  }
  // Random: in [sigma_min, sigma_max), a pure function of (seed, k), seeds differ.
  double sum = 0.0;
  int differ = 0;
  for (int64_t k = 0; k < 4000; ++k) {
    const double s = base.sigma_at(k);
    EXPECT_GE(s, 0.0);
    EXPECT_LT(s, 4.0);  // sigma_max defaults to 2 sigma
    EXPECT_EQ(s, base.sigma_at(k));
    differ += s != MLSGDOptions(base).seed(1).sigma_at(k);
    sum += s;
  }
  EXPECT_NEAR(sum / 4000, 2.0, 0.1);
  EXPECT_GT(differ, 3990);
}

// The random schedule, bit for bit, against the reimplementation above for
// several seeds and steps (up to 2^63 - 1: the generator is counter-based),
// and a few draws written out (computed once with the reimplementation and the
// Python suite's, which agree).
TEST(MLSGD, RandomScheduleIsTheDocumentedGenerator) {
  constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
  const std::vector<int64_t> steps = {
      0, 1, 2, 3, 10, 99, 1000, int64_t{1} << 31, int64_t{1} << 40, (int64_t{1} << 53) + 1, kMaxInt64};
  for (int64_t seed : {int64_t{0}, int64_t{3}, int64_t{11}, (int64_t{1} << 40) + 5, kMaxInt64}) {
    const auto options = MLSGDOptions(0.1).sigma(1.0).sigma_min(0.5).sigma_max(3.0).seed(seed);
    for (int64_t k : steps) {
      EXPECT_EQ(options.sigma_at(k), reference_sigma("random", k, 1.0, 0.5, 3.0, 100, static_cast<uint64_t>(seed)))
          << "seed " << seed << " step " << k;
    }
  }
  const auto base = MLSGDOptions(0.1);  // sigma 1: uniform in [0, 2)
  EXPECT_EQ(MLSGDOptions(base).seed(0).sigma_at(0), 0.8571408262183529);
  EXPECT_EQ(MLSGDOptions(base).seed(0).sigma_at(1), 0.871419748364749);
  EXPECT_EQ(MLSGDOptions(base).seed(3).sigma_at(0), 1.974938367226472);
  EXPECT_EQ(MLSGDOptions(base).seed(12345).sigma_at(99), 0.7678589033761993);
  EXPECT_EQ(MLSGDOptions(base).seed(0).sigma_at(int64_t{1} << 40), 1.1055656519614507);
  EXPECT_EQ(MLSGDOptions(base).seed(7).sigma_at(int64_t{1} << 40), 1.811433940707973);
  EXPECT_EQ(2.0 * reference_uniform01(7, uint64_t{1} << 40), 1.811433940707973);
}

// Step k of MLSGD is an LSGD step with sigma_k: against a float64 FFT smoothing
// (reference.h), SGD momentum written out and sigma_k from reference_sigma, not
// the library's step or schedule.
TEST(MLSGD, StepsAreLSGDStepsWithTheScheduledSigma) {
  for (const char* schedule : {"random", "cyclic", "decay"}) {
    for (const char* flatten : {"tensor", "group"}) {
      SCOPED_TRACE(std::string(schedule) + " " + flatten);
      const auto options = MLSGDOptions(0.05).momentum(0.9).schedule(schedule).period(3).flatten(flatten);
      auto params = make_params();
      std::vector<torch::Tensor> expected;
      for (const auto& p : params) {
        expected.push_back(p.detach().clone());
      }
      MLSGD optimizer(params, options);
      std::vector<torch::Tensor> buffers(params.size());
      for (int64_t k = 0; k < 6; ++k) {
        set_gradients(params);
        std::vector<torch::Tensor> grads;
        for (const auto& p : params) {
          grads.push_back(p.grad().clone());
        }
        optimizer.step();
        const double sigma = reference_sigma(schedule, k, 1.0, 0.0, 2.0, 3, 0);
        const std::vector<torch::Tensor> smoothed = smooth_gradients(grads, flatten, sigma, 1);
        for (size_t i = 0; i < params.size(); ++i) {
          buffers[i] = k == 0 ? smoothed[i] : 0.9 * buffers[i] + smoothed[i];
          expected[i] = expected[i] - 0.05 * buffers[i];
          EXPECT_LT((params[i].detach() - expected[i]).abs().max().item<double>(), 1e-12) << "step " << k;
        }
      }
      const auto& state = static_cast<torch_mlsgd::MLSGDParamState&>(
          *optimizer.state().at(torch_mlsgd::optim_detail::state_key(params[0])));
      EXPECT_EQ(state.step(), 6);
    }
  }
}

// b (count 0) would step with sigma_0, a (count 2) with sigma_2 = 3.97e9, beyond
// the float64 direct route's warm-up limit (about 3.1e9 at order 1): the step is
// refused before b changes, and no counter moves.
TEST(MLSGD, AStepTheDirectRouteRefusesChangesNothing) {
  auto a = torch::ones({50}, torch::kFloat64).requires_grad_();
  auto b = torch::ones({50}, torch::kFloat64).requires_grad_();
  ASSERT_LT(reference_sigma("random", 1, 1.0, 0.0, 6e9, 100, 16), 3e9);
  ASSERT_GT(reference_sigma("random", 2, 1.0, 0.0, 6e9, 100, 16), 3.5e9);
  MLSGD optimizer({b, a}, MLSGDOptions(0.1).sigma_max(6e9).seed(16).backend("direct"));
  for (int k = 0; k < 2; ++k) {
    a.mutable_grad() = torch::linspace(-1, 1, 50, torch::kFloat64);
    optimizer.step();
  }
  a.mutable_grad() = torch::linspace(-1, 1, 50, torch::kFloat64);
  b.mutable_grad() = torch::linspace(-1, 1, 50, torch::kFloat64);
  const auto a_before = a.detach().clone(), b_before = b.detach().clone();
  EXPECT_THROW(optimizer.step(), c10::Error);
  EXPECT_TRUE(torch::equal(a, a_before));
  EXPECT_TRUE(torch::equal(b, b_before));
  auto step_of = [&](const torch::Tensor& p) {
    auto it = optimizer.state().find(torch_mlsgd::optim_detail::state_key(p));
    return it == optimizer.state().end() ? int64_t{0} : static_cast<torch_mlsgd::MLSGDParamState&>(*it->second).step();
  };
  EXPECT_EQ(step_of(a), 2);
  EXPECT_EQ(step_of(b), 0);
}

TEST(MLSGD, ConstantScheduleIsLSGD) {
  auto params = make_params();
  auto lsgd_params = make_params();
  MLSGD mlsgd(params, MLSGDOptions(0.05).sigma(1.5).momentum(0.9).nesterov(true).schedule("constant"));
  LSGD lsgd(lsgd_params, LSGDOptions(0.05).sigma(1.5).momentum(0.9).nesterov(true));
  step_side_by_side(mlsgd, lsgd, params, lsgd_params, 4);
  EXPECT_TRUE(all_equal(params, lsgd_params));
}

TEST(MLSGD, CheckpointsResumeTheSameSequence) {
  expect_checkpoint_resumes_bit_for_bit<MLSGD>(make_params(), MLSGDOptions(0.05).momentum(0.9).seed(5).sigma_max(3.0),
                                               MLSGDOptions(9.0), "mlsgd_checkpoint.pt");
}

TEST(MLSGD, BadSchedulesRaise) {
  auto params = make_params();
  auto expect_refused = [&](const MLSGDOptions& options, const std::string& needle) {
    expect_value_error([&] { MLSGD(params, options); }, needle);
  };
  expect_refused(MLSGDOptions(0.1).schedule("noisy"), "Invalid schedule: 'noisy'");
  expect_refused(MLSGDOptions(0.1).sigma_min(-1), "Invalid sigma_min value: -1");
  expect_refused(MLSGDOptions(0.1).sigma_min(3).sigma_max(1.0), "Invalid sigma_max value: 1");
  expect_refused(MLSGDOptions(0.1).period(0), "Invalid period value: 0");
  expect_refused(MLSGDOptions(0.1).seed(-2), "Invalid seed value: -2");
  expect_refused(MLSGDOptions(-0.1), "Invalid learning rate: -0.1");
}

}  // namespace
