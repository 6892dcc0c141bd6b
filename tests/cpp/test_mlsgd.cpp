// torch_mlsgd::MLSGD: its schedules, its steps against LSGD with the
// scheduled sigma, serialization and errors.

#include "optim/group_step.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using torch_mlsgd::LSGD;
using torch_mlsgd::LSGDOptions;
using torch_mlsgd::MLSGD;
using torch_mlsgd::MLSGDOptions;

std::vector<torch::Tensor> make_params() {
  torch::manual_seed(21);
  return {torch::randn({40, 30}, torch::kDouble).requires_grad_(true),
          torch::randn({17}, torch::kDouble).requires_grad_(true)};
}

void set_gradients(const std::vector<torch::Tensor>& params) {
  for (const auto& p : params) {
    p.mutable_grad() = torch::sin(3.0 * p.detach()) + 0.5 * p.detach();
  }
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

// Step k of MLSGD is an LSGD step with sigma_k.
TEST(MLSGD, StepsAreLSGDStepsWithTheScheduledSigma) {
  for (const char* schedule : {"random", "cyclic", "decay"}) {
    for (const char* flatten : {"tensor", "group"}) {
      SCOPED_TRACE(std::string(schedule) + " " + flatten);
      const auto options = MLSGDOptions(0.05).momentum(0.9).schedule(schedule).period(3).flatten(flatten);
      auto params = make_params();
      auto reference = make_params();
      MLSGD optimizer(params, options);
      std::vector<torch::Tensor> buffers;
      for (int64_t k = 0; k < 6; ++k) {
        set_gradients(params);
        set_gradients(reference);
        optimizer.step();
        // A fresh LSGD per step would lose momentum; carry the buffers by hand.
        std::vector<bool> fresh(reference.size(), k == 0);
        if (k == 0) {
          for (const auto& p : reference) {
            buffers.push_back(torch::empty_like(p));
          }
        }
        std::vector<torch::Tensor> grads;
        for (const auto& p : reference) {
          grads.push_back(p.grad());
        }
        torch::NoGradGuard no_grad;
        torch_mlsgd::lsgd_step_(reference, grads, buffers, fresh,
                                options.lsgd_options(options.sigma_at(k)));
      }
      for (size_t i = 0; i < params.size(); ++i) {
        EXPECT_TRUE(torch::equal(params[i], reference[i]));
      }
      const auto& state = static_cast<torch_mlsgd::MLSGDParamState&>(
          *optimizer.state().at(torch_mlsgd::optim_detail::state_key(params[0])));
      EXPECT_EQ(state.step(), 6);
    }
  }
}

TEST(MLSGD, ConstantScheduleIsLSGD) {
  auto params = make_params();
  auto lsgd_params = make_params();
  MLSGD mlsgd(params, MLSGDOptions(0.05).sigma(1.5).momentum(0.9).nesterov(true).schedule("constant"));
  LSGD lsgd(lsgd_params, LSGDOptions(0.05).sigma(1.5).momentum(0.9).nesterov(true));
  for (int step = 0; step < 4; ++step) {
    set_gradients(params);
    set_gradients(lsgd_params);
    mlsgd.step();
    lsgd.step();
  }
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i], lsgd_params[i]));
  }
}

TEST(MLSGD, CheckpointsResumeTheSameSequence) {
  auto params = make_params();
  const auto options = MLSGDOptions(0.05).momentum(0.9).seed(5).sigma_max(3.0);
  MLSGD optimizer(params, options);
  for (int step = 0; step < 3; ++step) {
    set_gradients(params);
    optimizer.step();
  }
  const std::string path = ::testing::TempDir() + "mlsgd_checkpoint.pt";
  torch::save(optimizer, path);
  std::vector<torch::Tensor> resumed_params;
  for (const auto& p : params) {
    resumed_params.push_back(p.detach().clone().requires_grad_(true));
  }
  MLSGD resumed(resumed_params, MLSGDOptions(9.0));
  torch::load(resumed, path);
  std::remove(path.c_str());
  EXPECT_TRUE(static_cast<const MLSGDOptions&>(resumed.param_groups()[0].options()) == options);
  for (int step = 0; step < 3; ++step) {
    set_gradients(params);
    set_gradients(resumed_params);
    optimizer.step();
    resumed.step();
  }
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i], resumed_params[i]));
  }
}

TEST(MLSGD, BadSchedulesRaise) {
  auto params = make_params();
  auto expect_value_error = [&](const MLSGDOptions& options, const std::string& needle) {
    try {
      MLSGD optimizer(params, options);
      ADD_FAILURE() << "expected a ValueError mentioning " << needle;
    } catch (const c10::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_value_error(MLSGDOptions(0.1).schedule("noisy"), "Invalid schedule: 'noisy'");
  expect_value_error(MLSGDOptions(0.1).sigma_min(-1), "Invalid sigma_min value: -1");
  expect_value_error(MLSGDOptions(0.1).sigma_min(3).sigma_max(1.0), "Invalid sigma_max value: 1");
  expect_value_error(MLSGDOptions(0.1).period(0), "Invalid period value: 0");
  expect_value_error(MLSGDOptions(0.1).seed(-2), "Invalid seed value: -2");
  expect_value_error(MLSGDOptions(-0.1), "Invalid learning rate: -0.1");
}

}  // namespace
