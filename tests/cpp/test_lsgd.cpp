// torch_mlsgd::LSGD against the reference semantics of docs/design.md §3,
// its options, parameter groups, serialization and errors.

#include "optim/group_step.h"
#include "reference.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>

#include <string>
#include <vector>

namespace {

using torch_mlsgd::LSGD;
using torch_mlsgd::LSGDOptions;
using namespace torch_mlsgd::testing;  // reference.h: the references and the helpers

// The update rule written out from docs/design.md §3, with the float64 FFT reference.
struct ReferenceLSGD {
  LSGDOptions options;
  std::vector<torch::Tensor> params;  // plain float64 tensors
  std::vector<torch::Tensor> buffers;

  void step() {
    std::vector<torch::Tensor> grads;
    for (const auto& p : params) {
      grads.push_back(options.maximize() ? -gradient_of(p) : gradient_of(p));
    }
    const std::vector<torch::Tensor> smoothed =
        smooth_gradients(grads, options.flatten(), options.sigma(), options.order());
    buffers.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      torch::Tensor d = smoothed[i] + options.weight_decay() * params[i];
      if (options.momentum() != 0) {
        if (!buffers[i].defined()) {
          buffers[i] = d.clone();
        } else {
          buffers[i] = options.momentum() * buffers[i] + (1 - options.dampening()) * d;
        }
        d = options.nesterov() ? d + options.momentum() * buffers[i] : buffers[i];
      }
      params[i] = params[i] - options.lr() * d;
    }
  }
};

std::vector<torch::Tensor> make_params() {
  torch::manual_seed(11);
  return {torch::randn({5, 4}, torch::kDouble).requires_grad_(true),
          torch::randn({7}, torch::kDouble).requires_grad_(true),
          torch::randn({1}, torch::kDouble).requires_grad_(true)};
}

std::string describe(const LSGDOptions& o) {
  return "sigma=" + std::to_string(o.sigma()) + " order=" + std::to_string(o.order()) +
         " momentum=" + std::to_string(o.momentum()) + " dampening=" + std::to_string(o.dampening()) +
         " wd=" + std::to_string(o.weight_decay()) + " nesterov=" + std::to_string(o.nesterov()) +
         " maximize=" + std::to_string(o.maximize()) + " flatten=" + o.flatten() + " backend=" + o.backend();
}

TEST(LSGD, FollowsTheReferenceSemanticsStepForStep) {
  std::vector<LSGDOptions> configs = {
      LSGDOptions(0.1),
      LSGDOptions(0.1).sigma(0.0),
      LSGDOptions(0.05).sigma(2.0).order(2).momentum(0.9),
      LSGDOptions(0.05).momentum(0.9).nesterov(true),
      LSGDOptions(0.05).momentum(0.8).dampening(0.3),
      LSGDOptions(0.05).sigma(3.0).weight_decay(0.01).momentum(0.5),
      LSGDOptions(0.05).maximize(true).momentum(0.9),
      LSGDOptions(0.05).flatten("group").momentum(0.9).order(3),
      LSGDOptions(0.05).flatten("group").backend("fft").weight_decay(0.1),
      LSGDOptions(0.05).backend("direct").sigma(10.0),
  };
  for (const auto& options : configs) {
    SCOPED_TRACE(describe(options));
    auto params = make_params();
    ReferenceLSGD reference{options, {}, {}};
    for (const auto& p : params) {
      reference.params.push_back(p.detach().clone());
    }
    LSGD optimizer(params, options);
    for (int step = 0; step < 5; ++step) {
      set_gradients(params);
      optimizer.step();
      reference.step();
      for (size_t i = 0; i < params.size(); ++i) {
        EXPECT_TRUE(torch::allclose(params[i], reference.params[i], 1e-12, 1e-12)) << "step " << step << " param " << i;
      }
    }
  }
}

// Large tensors take the chunked (and, where the CPU has it, vectorised) route;
// float32 as well as float64.
TEST(LSGD, FusedStepMatchesTheReferenceOnLargeTensors) {
  const std::vector<LSGDOptions> configs = {
      LSGDOptions(0.1).momentum(0.9),
      LSGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01),
      LSGDOptions(0.1).momentum(0.8).dampening(0.3).maximize(true),
      LSGDOptions(0.1).sigma(2000.0),
      LSGDOptions(0.1).momentum(0.9).flatten("group").order(2),
  };
  for (auto dtype : {torch::kDouble, torch::kFloat}) {
    for (const auto& options : configs) {
      SCOPED_TRACE(describe(options) + " dtype=" + std::string(c10::toString(dtype)));
      torch::manual_seed(12);
      std::vector<torch::Tensor> params = {torch::randn({301, 400}, dtype).requires_grad_(true),
                                           torch::randn({12007}, dtype).requires_grad_(true),
                                           torch::randn({9}, dtype).requires_grad_(true)};
      ReferenceLSGD reference{options, {}, {}};
      for (const auto& p : params) {
        reference.params.push_back(p.detach().to(torch::kDouble).clone());
      }
      LSGD optimizer(params, options);
      for (int step = 0; step < 3; ++step) {
        for (auto& p : params) {
          p.mutable_grad() = gradient_of(p.detach().to(torch::kDouble)).to(dtype);
        }
        optimizer.step();
        reference.step();
      }
      const double tol = dtype == torch::kDouble ? 1e-11 : 2e-5;
      for (size_t i = 0; i < params.size(); ++i) {
        EXPECT_LT(relative_error(params[i], reference.params[i]), tol) << "param " << i;
      }
    }
  }
}

TEST(LSGD, SigmaZeroIsTorchSGD) {
  auto params = make_params();
  auto sgd_params = make_params();
  LSGD lsgd(params, LSGDOptions(0.1).sigma(0.0).momentum(0.9).nesterov(true).weight_decay(0.1));
  torch::optim::SGD sgd(sgd_params, torch::optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.1));
  step_side_by_side(lsgd, sgd, params, sgd_params, 5);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(params[i], sgd_params[i], 1e-13, 1e-13));
  }
}

TEST(LSGD, ParamGroupsKeepTheirOwnOptionsAndSkipMissingGradients) {
  auto params = make_params();
  torch::Tensor frozen = torch::randn({4}, torch::kDouble).requires_grad_(true);
  const torch::Tensor frozen_before = frozen.detach().clone();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{params[0], frozen});
  groups.emplace_back(std::vector<torch::Tensor>{params[1], params[2]},
                      std::make_unique<LSGDOptions>(LSGDOptions(0.02).sigma(5.0).momentum(0.9)));
  LSGD optimizer(groups, LSGDOptions(0.1).sigma(1.0));

  const auto& second = static_cast<const LSGDOptions&>(optimizer.param_groups()[1].options());
  EXPECT_EQ(second.lr(), 0.02);
  EXPECT_EQ(second.sigma(), 5.0);
  EXPECT_EQ(static_cast<const LSGDOptions&>(optimizer.param_groups()[0].options()).sigma(), 1.0);

  ReferenceLSGD first_reference{LSGDOptions(0.1).sigma(1.0), {params[0].detach().clone()}, {}};
  ReferenceLSGD second_reference{
      LSGDOptions(0.02).sigma(5.0).momentum(0.9), {params[1].detach().clone(), params[2].detach().clone()}, {}};
  for (int step = 0; step < 3; ++step) {
    set_gradients(params);  // `frozen` never gets a gradient
    optimizer.step();
    first_reference.step();
    second_reference.step();
  }
  EXPECT_TRUE(torch::equal(frozen, frozen_before));
  EXPECT_TRUE(torch::allclose(params[0], first_reference.params[0], 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(params[1], second_reference.params[0], 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(params[2], second_reference.params[1], 1e-12, 1e-12));
  // Only parameters with momentum have state.
  EXPECT_EQ(optimizer.state().size(), 2u);
}

TEST(LSGD, AddedGroupsKeepTheirOwnOptions) {
  auto params = make_params();
  LSGD optimizer(std::vector<torch::Tensor>{params[0]}, LSGDOptions(0.1));
  optimizer.add_param_group(torch::optim::OptimizerParamGroup(
      {params[1]}, std::make_unique<LSGDOptions>(LSGDOptions(0.02).sigma(5.0).momentum(0.9))));
  optimizer.add_param_group(torch::optim::OptimizerParamGroup({params[2]}));
  ASSERT_EQ(optimizer.param_groups().size(), 3u);
  EXPECT_TRUE(static_cast<const LSGDOptions&>(optimizer.param_groups()[1].options()) ==
              LSGDOptions(0.02).sigma(5.0).momentum(0.9));
  EXPECT_TRUE(static_cast<const LSGDOptions&>(optimizer.param_groups()[2].options()) == LSGDOptions(0.1));
  // A group with bad options is refused and leaves the optimizer as it was.
  torch::Tensor extra = torch::randn({3}, torch::kDouble).requires_grad_(true);
  EXPECT_THROW(optimizer.add_param_group(torch::optim::OptimizerParamGroup(
                   {extra}, std::make_unique<LSGDOptions>(LSGDOptions(0.1).sigma(-1.0)))),
               c10::ValueError);
  EXPECT_EQ(optimizer.param_groups().size(), 3u);
}

TEST(LSGD, OptionsAreChainableComparableAndScheduled) {
  LSGDOptions options = LSGDOptions(0.5).sigma(2.0).order(2).momentum(0.9).flatten("group");
  EXPECT_EQ(options.order(), 2);
  EXPECT_EQ(options.flatten(), "group");
  EXPECT_TRUE(options == LSGDOptions(0.5).sigma(2.0).order(2).momentum(0.9).flatten("group"));
  EXPECT_FALSE(options == LSGDOptions(0.5));

  auto params = make_params();
  LSGD optimizer(params, LSGDOptions(1.0));
  torch::optim::StepLR scheduler(optimizer, /*step_size=*/2, /*gamma=*/0.5);
  // libtorch's StepLR decays on its 3rd, 5th, ... call (step_count 2, 4, ...).
  for (int epoch = 0; epoch < 5; ++epoch) {
    scheduler.step();
  }
  EXPECT_DOUBLE_EQ(optimizer.param_groups()[0].options().get_lr(), 0.25);
}

TEST(LSGD, CheckpointsResumeBitForBit) {
  for (const auto& options :
       {LSGDOptions(0.05).momentum(0.9).sigma(2.0), LSGDOptions(0.05).momentum(0.9).nesterov(true).flatten("group")}) {
    SCOPED_TRACE(describe(options));
    expect_checkpoint_resumes_bit_for_bit<LSGD>(make_params(), options, LSGDOptions(123.0), "lsgd_checkpoint.pt");
  }
}

// A checkpoint written with float64 parameters resumes float32 ones: the
// momentum buffers follow their parameter's dtype (and device), as in Python.
TEST(LSGD, CheckpointsLoadIntoAnotherDtype) {
  auto params = make_params();
  LSGD optimizer(params, LSGDOptions(0.05).momentum(0.9));
  train(optimizer, params, 2);
  const std::vector<torch::Tensor> floats = copies_of(params, torch::kFloat);
  LSGD resumed(floats, LSGDOptions(1.0));
  save_and_load(optimizer, resumed, "lsgd_dtype_checkpoint.pt");
  for (const auto& p : floats) {
    const auto& state =
        static_cast<torch_mlsgd::LSGDParamState&>(*resumed.state().at(torch_mlsgd::optim_detail::state_key(p)));
    EXPECT_EQ(state.momentum_buffer().scalar_type(), torch::kFloat);
  }
  step_side_by_side(optimizer, resumed, params, floats, 2);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(floats[i].to(torch::kDouble), params[i], 1e-5, 1e-5));
  }
}

TEST(LSGD, BadHyperParametersRaise) {
  auto params = make_params();
  expect_value_error([&] { LSGD(params, LSGDOptions(-0.1)); }, "Invalid learning rate: -0.1");
  expect_value_error([&] { LSGD(params, LSGDOptions(0.1).sigma(-1)); }, "Invalid sigma value: -1");
  expect_value_error([&] { LSGD(params, LSGDOptions(0.1).order(0)); }, "Invalid order value: 0");
  expect_value_error([&] { LSGD(params, LSGDOptions(0.1).momentum(-0.5)); }, "Invalid momentum value: -0.5");
  expect_value_error([&] { LSGD(params, LSGDOptions(0.1).weight_decay(-1)); }, "Invalid weight_decay value: -1");
  expect_value_error([&] { LSGD(params, LSGDOptions(0.1).nesterov(true)); }, "Nesterov");
  expect_value_error([&] { LSGD(params, LSGDOptions(0.1).flatten("layer")); }, "'layer'");
  expect_value_error([&] { LSGD(params, LSGDOptions(0.1).backend("gpu")); }, "'gpu'");
}

TEST(LSGD, ABadGroupOrGradientChangesNothing) {
  auto params = make_params();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{params[0]});
  groups.emplace_back(std::vector<torch::Tensor>{params[1], params[2]});
  LSGD optimizer(groups, LSGDOptions(0.1).momentum(0.9));
  set_gradients(params);
  const std::vector<torch::Tensor> before = copies_of(params);
  // A scheduler or user sets a bad value on the second group only.
  static_cast<LSGDOptions&>(optimizer.param_groups()[1].options()).sigma(-2.0);
  expect_value_error([&] { optimizer.step(); }, "Invalid sigma value: -2");
  EXPECT_TRUE(all_equal(params, before));
  EXPECT_TRUE(optimizer.state().empty());

  static_cast<LSGDOptions&>(optimizer.param_groups()[1].options()).sigma(1.0);
  params[2].mutable_grad() = torch::zeros({1}, torch::kComplexDouble);
  EXPECT_THROW(optimizer.step(), c10::Error);
  EXPECT_TRUE(all_equal(params, before));
}

// The direct route's limits are checked for every group before any steps: the
// kernel alone would refuse the second group after the first was updated.
TEST(LSGD, AGroupTheDirectRouteRefusesChangesNoOtherGroup) {
  auto params = make_params();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{params[0], params[1]});
  groups.emplace_back(std::vector<torch::Tensor>{params[2]},
                      std::make_unique<LSGDOptions>(LSGDOptions(0.1).order(65).backend("direct")));
  LSGD optimizer(groups, LSGDOptions(0.1).momentum(0.9));
  set_gradients(params);
  const std::vector<torch::Tensor> before = copies_of(params);
  try {
    optimizer.step();
    ADD_FAILURE() << "order 65 on the direct route was not refused";
  } catch (const c10::Error& error) {
    EXPECT_NE(std::string(error.what()).find("orders up to 64"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(all_equal(params, before));
  EXPECT_TRUE(optimizer.state().empty());
}

// libtorch's LR schedulers drive both optimizers through get_lr/set_lr, every
// group, and the next step uses the new rate.
template <typename Optimizer, typename Options>
void check_schedulers(const Options& options) {
  auto params = make_params();
  {
    Optimizer optimizer(params, options);
    torch::optim::StepLR scheduler(optimizer, /*step_size=*/2, /*gamma=*/0.5);
    for (int epoch = 0; epoch < 5; ++epoch) {
      set_gradients(params);
      optimizer.step();
      scheduler.step();
    }
    EXPECT_DOUBLE_EQ(static_cast<const Options&>(optimizer.param_groups()[0].options()).lr(), 0.1 * 0.25);
    // The step uses the scheduled rate: with sigma = 0 and no momentum, p -= lr * g.
    auto p = params[0].detach().clone();
    Optimizer plain(std::vector<torch::Tensor>{params[0]}, Options(0.1).sigma(0.0));
    torch::optim::StepLR halve(plain, 1, 0.5);
    halve.step();  // libtorch's schedulers change nothing at their first step
    halve.step();
    set_gradients(params);
    const auto g = params[0].grad().clone();
    plain.step();
    EXPECT_TRUE(torch::allclose(params[0].detach(), p - 0.05 * g, 0.0, 1e-15));
  }
  {
    Optimizer optimizer(params, options);
    torch::optim::ReduceLROnPlateauScheduler scheduler(optimizer, torch::optim::ReduceLROnPlateauScheduler::min,
                                                       /*factor=*/0.5, /*patience=*/1);
    for (int epoch = 0; epoch < 4; ++epoch) {
      set_gradients(params);
      optimizer.step();
      scheduler.step(1.0f);  // no improvement after the first epoch
    }
    EXPECT_LT(static_cast<const Options&>(optimizer.param_groups()[0].options()).lr(), 0.1);
  }
}

TEST(LSGD, LibtorchSchedulersDriveTheLearningRate) {
  check_schedulers<LSGD>(LSGDOptions(0.1).momentum(0.9));
  check_schedulers<torch_mlsgd::MLSGD>(torch_mlsgd::MLSGDOptions(0.1).momentum(0.9));
}

TEST(LSGD, TrainsASmallModel) {
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(8, 32), torch::nn::ReLU(), torch::nn::Linear(32, 1));
  const torch::Tensor x = torch::randn({256, 8});
  const torch::Tensor y = x.narrow(1, 0, 1) * 2 - x.narrow(1, 1, 1);
  LSGD optimizer(model->parameters(), LSGDOptions(0.05).momentum(0.9).sigma(1.0));
  double first = 0;
  double last = 0;
  for (int step = 0; step < 200; ++step) {
    optimizer.zero_grad();
    torch::Tensor loss = torch::mse_loss(model->forward(x), y);
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, 0.1 * first);
}

}  // namespace
