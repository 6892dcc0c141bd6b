#pragma once

// torch_mlsgd::MLSGD: LSGD whose smoothing strength follows a schedule.

#include <torch_mlsgd/lsgd.h>

#include <c10/util/Optional.h>
#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torch_mlsgd {

/// Hyper-parameters of MLSGD: those of LSGDOptions plus the sigma schedule.
/// Step k (counted per parameter) smooths with sigma_k:
///   "random"   uniform in [sigma_min, sigma_max), drawn independently per step
///              (a counter-based draw from (seed, k), so resuming repeats it);
///   "cyclic"   a linear sweep from sigma_min to sigma_max over `period` steps;
///   "constant" sigma (plain LSGD);
///   "decay"    sigma / (1 + k / period);   "growth"  sigma * (1 + k / period).
/// sigma_max defaults to 2 * sigma.
struct MLSGDOptions : public torch::optim::OptimizerCloneableOptions<MLSGDOptions> {
  MLSGDOptions(double lr);  // NOLINT(google-explicit-constructor): as SGDOptions
  TORCH_ARG(double, lr);
  TORCH_ARG(double, sigma) = 1.0;
  TORCH_ARG(int64_t, order) = 1;
  TORCH_ARG(double, momentum) = 0;
  TORCH_ARG(double, dampening) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, nesterov) = false;
  TORCH_ARG(bool, maximize) = false;
  TORCH_ARG(std::string, flatten) = "tensor";
  TORCH_ARG(std::string, backend) = "auto";
  TORCH_ARG(std::string, schedule) = "random";
  TORCH_ARG(double, sigma_min) = 0.0;
  TORCH_ARG(c10::optional<double>, sigma_max) = c10::nullopt;
  TORCH_ARG(int64_t, period) = 100;
  TORCH_ARG(int64_t, seed) = 0;

  TORCH_MLSGD_OPTIONS_MEMBERS(MLSGDOptions)

  /// sigma_k of this schedule at step k >= 0.
  double sigma_at(int64_t step) const;
  /// The options of one LSGD step with smoothing strength `sigma`.
  LSGDOptions lsgd_options(double sigma) const;
};

/// Raises c10::ValueError naming the first invalid hyper-parameter.
void check_options(const MLSGDOptions& options);

struct MLSGDParamState : public torch::optim::OptimizerCloneableParamState<MLSGDParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);
  /// Steps this parameter has taken (the k of its next sigma_k).
  TORCH_ARG(int64_t, step) = 0;

  TORCH_MLSGD_PARAM_STATE_MEMBERS(MLSGDParamState)
};

/// Modified LSGD: each step is an LSGD step (see torch_mlsgd::LSGD) whose
/// sigma is the schedule's sigma_k, k the parameter's step count. With
/// flatten == "group" the group's ring uses the step count of its first
/// parameter with a gradient. See docs/saddles.md for what the default random
/// schedule does and does not achieve. Construction, add_param_group and the
/// process group: see SmoothingOptimizer.
class MLSGD : public SmoothingOptimizer<MLSGD, MLSGDOptions, MLSGDParamState> {
 public:
  static constexpr const char* kName = "MLSGD";
  using SmoothingOptimizer::SmoothingOptimizer;

  torch::Tensor step(LossClosure closure = nullptr) override;
};

extern template class SmoothingOptimizer<MLSGD, MLSGDOptions, MLSGDParamState>;

}  // namespace torch_mlsgd
