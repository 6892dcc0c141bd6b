// torch_mlsgd::LSAdamW against libtorch's AdamW (sigma = 0) and against AdamW on
// gradients smoothed by the float64 FFT reference, its options, groups,
// serialization and errors.

#include "optim/group_step.h"
#include "reference.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>

#include <string>
#include <vector>

namespace {

using torch_mlsgd::LSAdamW;
using torch_mlsgd::LSAdamWOptions;
using namespace torch_mlsgd::testing;  // reference.h: the references and the helpers

std::vector<torch::Tensor> make_params() {
  torch::manual_seed(13);
  return {torch::randn({6, 5}, torch::kDouble).requires_grad_(true),
          torch::randn({9}, torch::kDouble).requires_grad_(true),
          torch::randn({1}, torch::kDouble).requires_grad_(true)};
}

torch::optim::AdamWOptions adamw_options(const LSAdamWOptions& o) {
  return torch::optim::AdamWOptions(o.lr())
      .betas(o.betas())
      .eps(o.eps())
      .weight_decay(o.weight_decay())
      .amsgrad(o.amsgrad());
}

TEST(LSAdamW, SigmaZeroIsTorchAdamW) {
  for (bool amsgrad : {false, true}) {
    auto params = make_params();
    auto theirs = make_params();
    const auto options = LSAdamWOptions(0.01).sigma(0.0).weight_decay(0.1).amsgrad(amsgrad);
    LSAdamW ours(params, options);
    torch::optim::AdamW adamw(theirs, adamw_options(options));
    step_side_by_side(ours, adamw, params, theirs, 5);
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(torch::allclose(params[i], theirs[i], 1e-13, 1e-13)) << "amsgrad=" << amsgrad;
    }
  }
}

// AdamW stepping on gradients smoothed by the float64 FFT reference (reference.h).
TEST(LSAdamW, IsAdamWOnTheReferenceSmoothedGradients) {
  for (const auto& options : {LSAdamWOptions(0.01).sigma(1.5), LSAdamWOptions(0.01).sigma(0.5).flatten("group"),
                              LSAdamWOptions(0.01).sigma(2.0).order(2).amsgrad(true).backend("direct")}) {
    SCOPED_TRACE(options.flatten() + " order " + std::to_string(options.order()));
    auto params = make_params();
    auto theirs = make_params();
    LSAdamW ours(params, options);
    torch::optim::AdamW adamw(theirs, adamw_options(options));
    for (int step = 0; step < 4; ++step) {
      std::vector<torch::Tensor> grads;
      for (const auto& q : theirs) {
        grads.push_back(gradient_of(q.detach()));
      }
      const auto smoothed = smooth_gradients(grads, options.flatten(), options.sigma(), options.order());
      for (size_t i = 0; i < theirs.size(); ++i) {
        theirs[i].mutable_grad() = smoothed[i];
      }
      adamw.step();
      set_gradients(params);
      ours.step();
    }
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(torch::allclose(params[i], theirs[i], 1e-10, 1e-12));
    }
  }
}

TEST(LSAdamW, GroupsKeepTheirOwnOptionsAndSchedulersDriveThem) {
  auto params = make_params();
  std::vector<torch::optim::OptimizerParamGroup> groups{
      torch::optim::OptimizerParamGroup({params[0]}, std::make_unique<LSAdamWOptions>(LSAdamWOptions(0.5).sigma(0.0))),
      torch::optim::OptimizerParamGroup({params[1], params[2]})};
  LSAdamW optimizer(groups, LSAdamWOptions(0.01).sigma(3.0));
  const auto& first = static_cast<const LSAdamWOptions&>(optimizer.param_groups()[0].options());
  const auto& second = static_cast<const LSAdamWOptions&>(optimizer.param_groups()[1].options());
  EXPECT_EQ(first.sigma(), 0.0);
  EXPECT_EQ(first.lr(), 0.5);
  EXPECT_EQ(second.sigma(), 3.0);
  torch::optim::StepLR scheduler(optimizer, /*step_size=*/1, /*gamma=*/0.5);
  for (int epoch = 0; epoch < 2; ++epoch) {  // libtorch's StepLR first decays at its second step
    train(optimizer, params, 1);
    scheduler.step();
  }
  EXPECT_DOUBLE_EQ(optimizer.param_groups()[0].options().get_lr(), 0.25);
  EXPECT_DOUBLE_EQ(optimizer.param_groups()[1].options().get_lr(), 0.005);
  EXPECT_EQ(static_cast<const LSAdamWOptions&>(optimizer.param_groups()[1].options()).sigma(), 3.0);
}

TEST(LSAdamW, CheckpointsResumeBitForBit) {
  expect_checkpoint_resumes_bit_for_bit<LSAdamW>(make_params(), LSAdamWOptions(0.01).amsgrad(true).sigma(1.0),
                                                 LSAdamWOptions(5.0), "lsadamw_checkpoint.pt");
}

TEST(LSAdamW, BadHyperParametersRaise) {
  auto params = make_params();
  expect_value_error([&] { LSAdamW(params, LSAdamWOptions(-0.1)); }, "Invalid learning rate: -0.1");
  expect_value_error([&] { LSAdamW(params, LSAdamWOptions().eps(-1)); }, "Invalid epsilon value: -1");
  expect_value_error([&] { LSAdamW(params, LSAdamWOptions().betas({1.0, 0.9})); },
                     "Invalid beta parameter at index 0: 1");
  expect_value_error([&] { LSAdamW(params, LSAdamWOptions().weight_decay(-1)); }, "Invalid weight_decay value: -1");
  expect_value_error([&] { LSAdamW(params, LSAdamWOptions().sigma(-1)); }, "Invalid sigma value: -1");
  expect_value_error([&] { LSAdamW(params, LSAdamWOptions().flatten("layer")); }, "'layer'");
}

TEST(LSAdamW, AGroupTheDirectRouteRefusesChangesNothing) {
  auto params = make_params();
  std::vector<torch::optim::OptimizerParamGroup> groups{
      torch::optim::OptimizerParamGroup({params[0]}),
      torch::optim::OptimizerParamGroup(
          {params[1]}, std::make_unique<LSAdamWOptions>(LSAdamWOptions().order(100).backend("direct")))};
  LSAdamW optimizer(groups, LSAdamWOptions().backend("direct"));
  const auto before = copies_of(params, torch::kDouble);
  set_gradients(params);
  EXPECT_THROW(optimizer.step(), c10::Error);
  EXPECT_TRUE(all_equal(params, before));
  EXPECT_TRUE(optimizer.state().empty());
}

TEST(LSAdamW, TrainsASmallModel) {
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(4, 16), torch::nn::Tanh(), torch::nn::Linear(16, 1));
  const torch::Tensor x = torch::randn({64, 4});
  const torch::Tensor y = x.sum(1, true).sin();
  LSAdamW optimizer(model->parameters(), LSAdamWOptions(0.01).sigma(0.5));
  double first = 0;
  double last = 0;
  for (int step = 0; step < 100; ++step) {
    optimizer.zero_grad();
    const torch::Tensor loss = torch::mse_loss(model->forward(x), y);
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, 0.2 * first);
}

}  // namespace
