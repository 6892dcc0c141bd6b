#pragma once

// torch_mlsgd::LSGD, a torch::optim::Optimizer for LibTorch training loops.

#include <torch_mlsgd/smoothing_optimizer.h>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torch_mlsgd {

/// Hyper-parameters of LSGD, per parameter group, in the style of
/// torch::optim::SGDOptions (chainable setters: `LSGDOptions(0.1).momentum(0.9)`).
struct LSGDOptions : public torch::optim::OptimizerCloneableOptions<LSGDOptions> {
  LSGDOptions(double lr);  // NOLINT(google-explicit-constructor): as SGDOptions
  TORCH_ARG(double, lr);
  /// Smoothing strength sigma >= 0; 0 gives plain SGD.
  TORCH_ARG(double, sigma) = 1.0;
  /// Power p >= 1 of the Laplacian.
  TORCH_ARG(int64_t, order) = 1;
  TORCH_ARG(double, momentum) = 0;
  TORCH_ARG(double, dampening) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, nesterov) = false;
  TORCH_ARG(bool, maximize) = false;
  /// "tensor": each gradient is its own ring; "group": a group's gradients,
  /// concatenated in parameter order, form one ring.
  TORCH_ARG(std::string, flatten) = "tensor";
  /// "auto", "fft" or "direct" (see laplacian_smooth).
  TORCH_ARG(std::string, backend) = "auto";

  TORCH_MLSGD_OPTIONS_MEMBERS(LSGDOptions)
};

/// Raises c10::ValueError naming the first invalid hyper-parameter.
void check_options(const LSGDOptions& options);

struct LSGDParamState : public torch::optim::OptimizerCloneableParamState<LSGDParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);

  TORCH_MLSGD_PARAM_STATE_MEMBERS(LSGDParamState)
};

/// Laplacian-smoothing SGD. Per parameter w with gradient g, each step:
///
///     if maximize: g = -g
///     s = S(g)              (S: Laplacian smoothing of the flattened gradient)
///     d = s + weight_decay * w
///     if momentum != 0:
///         buf = d (first step), buf = momentum * buf + (1 - dampening) * d (later)
///         d = d + momentum * buf if nesterov else buf
///     w = w - lr * d
///
/// A parameter group's own LSGDOptions, when it has them, are used whole.
/// Parameters without a gradient are skipped. Every group and gradient is
/// checked before any parameter changes, so a bad value throws and changes
/// nothing. Save and load with torch::save / torch::load. Construction,
/// add_param_group and the process group: see SmoothingOptimizer.
class LSGD : public SmoothingOptimizer<LSGD, LSGDOptions, LSGDParamState> {
 public:
  static constexpr const char* kName = "LSGD";
  using SmoothingOptimizer::SmoothingOptimizer;

  torch::Tensor step(LossClosure closure = nullptr) override;
};

extern template class SmoothingOptimizer<LSGD, LSGDOptions, LSGDParamState>;

}  // namespace torch_mlsgd
