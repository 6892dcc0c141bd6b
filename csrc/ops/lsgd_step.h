#pragma once

// Shared pieces of the fused LSGD step op (mlsgd::lsgd_step_): argument
// checks, and the staging every backend uses for tensors its fused kernel
// does not take directly.

#include "ops/smooth_args.h"

#include <cstdint>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace ops {

using TensorList = std::vector<Tensor>;

struct LSGDStepArgs {
  double lr;
  double sigma;
  int64_t order;
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  bool maximize;
  bool group_ring;  // flatten == "group"
  std::string backend;
};

// Checks hyper-parameters and list shapes; raises before anything is written.
LSGDStepArgs check_lsgd_step_args(const TensorList& params, const TensorList& grads,
                                  const TensorList& momentum_buffers, const std::vector<bool>& fresh,
                                  double lr, double sigma, int64_t order, double momentum,
                                  double dampening, double weight_decay, bool nesterov, bool maximize,
                                  const std::string& flatten, const std::string& backend);

// A fused kernel: the step over tensors that are all contiguous, of one
// dtype (float32 or float64) and on one device.
using FusedStep = void (*)(const TensorList& params, const TensorList& grads, const TensorList& buffers,
                           const std::vector<bool>& fresh, const LSGDStepArgs& args);

// Runs `fused` on the arguments as they are when it takes them; otherwise
// (half precision, non-contiguous tensors, float32 beside float64) on
// contiguous copies in each gradient's compute dtype, one call per dtype,
// and writes the copies back: the same arithmetic, rounded once at the end.
void run_step(const TensorList& params, const TensorList& grads, const TensorList& momentum_buffers,
              const std::vector<bool>& fresh, const LSGDStepArgs& args, FusedStep fused);

// A backend's kernel of mlsgd::lsgd_step_ (the schema's argument list): the
// checks, then run_step with the backend's fused step.
template <FusedStep fused>
void lsgd_step_kernel(TensorList params, TensorList grads, TensorList momentum_buffers, std::vector<bool> fresh,
                      double lr, double sigma, int64_t order, double momentum, double dampening,
                      double weight_decay, bool nesterov, bool maximize, std::string flatten, std::string backend) {
  const LSGDStepArgs args = check_lsgd_step_args(params, grads, momentum_buffers, fresh, lr, sigma, order,
                                                 momentum, dampening, weight_decay, nesterov, maximize, flatten,
                                                 backend);
  run_step(params, grads, momentum_buffers, fresh, args, fused);
}

}  // namespace ops
}  // namespace torch_mlsgd
