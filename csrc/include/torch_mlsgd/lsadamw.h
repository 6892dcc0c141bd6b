#pragma once

// torch_mlsgd::LSAdamW, a torch::optim::Optimizer for LibTorch training loops:
// per parameter w with gradient g, at its step t,
//
//     s = S(g)        (Laplacian smoothing of the flattened gradient; -S(g) when maximizing)
//     w = w * (1 - lr * weight_decay)
//     m = beta1 * m + (1 - beta1) * s;  v = beta2 * v + (1 - beta2) * s^2
//     (amsgrad: v = max(v_max, v), kept as v_max)
//     w = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// One call of mlsgd::lsadamw_step_ per group (on CPU one pass over memory).
// Parameters without a gradient are skipped; every group and gradient is
// checked before any parameter changes. Construction, add_param_group, save,
// load and the process group: SmoothingOptimizer.

#include <torch_mlsgd/smoothing_optimizer.h>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace torch_mlsgd {

/// Hyper-parameters of LSAdamW, per parameter group, in the style of
/// torch::optim::AdamWOptions (chainable setters: `LSAdamWOptions(1e-3).sigma(0.5)`).
struct LSAdamWOptions : public torch::optim::OptimizerCloneableOptions<LSAdamWOptions> {
  LSAdamWOptions(double lr = 1e-3);  // NOLINT(google-explicit-constructor): as AdamWOptions
  TORCH_ARG(double, lr) = 1e-3;
  typedef std::tuple<double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  TORCH_ARG(double, eps) = 1e-8;
  /// Decoupled weight decay, as AdamW's.
  TORCH_ARG(double, weight_decay) = 1e-2;
  TORCH_ARG(bool, amsgrad) = false;
  /// Smoothing strength sigma >= 0; 0 gives plain AdamW.
  TORCH_ARG(double, sigma) = 1.0;
  /// Power p >= 1 of the Laplacian.
  TORCH_ARG(int64_t, order) = 1;
  TORCH_ARG(bool, maximize) = false;
  /// "tensor": each gradient is its own ring; "group": a group's gradients,
  /// concatenated in parameter order, form one ring.
  TORCH_ARG(std::string, flatten) = "tensor";
  /// "auto", "fft" or "direct" (see laplacian_smooth).
  TORCH_ARG(std::string, backend) = "auto";

  TORCH_MLSGD_OPTIONS_MEMBERS(LSAdamWOptions)
};

/// AdamW's per-parameter state (as torch::optim::AdamWParamState).
struct LSAdamWParamState : public torch::optim::OptimizerCloneableParamState<LSAdamWParamState> {
  TORCH_MLSGD_PARAM_STATE_MEMBERS(LSAdamWParamState)

  /// Steps this parameter has taken.
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);
  /// Defined with amsgrad only.
  TORCH_ARG(torch::Tensor, max_exp_avg_sq) = {};
};

/// AdamW on Laplacian-smoothed gradients (the update rule above); with sigma = 0,
/// torch::optim::AdamW to rounding. See LSGD for groups, checks and checkpoints.
class LSAdamW : public SmoothingOptimizer<LSAdamW, LSAdamWOptions, LSAdamWParamState> {
 public:
  using SmoothingOptimizer::SmoothingOptimizer;
  torch::Tensor step(LossClosure closure = nullptr) override;

  static constexpr const char* kName = "LSAdamW";
};

extern template class SmoothingOptimizer<LSAdamW, LSAdamWOptions, LSAdamWParamState>;

/// Raises c10::ValueError naming the first invalid hyper-parameter of `options`
/// (the words of torch.optim.AdamW's checks).
void check_options(const LSAdamWOptions& options);

}  // namespace torch_mlsgd
