#pragma once

// Shared pieces of the fused LSGD step op (mlsgd::lsgd_step_): argument
// checks and the composite formulation every backend falls back to.

#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <cstdint>

namespace torch_mlsgd {
namespace ops {

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
  c10::string_view backend;
};

// Checks hyper-parameters and list shapes; raises before anything is written.
LSGDStepArgs check_lsgd_step_args(at::TensorList params, at::TensorList grads,
                                  at::TensorList momentum_buffers, const c10::List<bool>& fresh,
                                  double lr, double sigma, int64_t order, double momentum,
                                  double dampening, double weight_decay, bool nesterov,
                                  bool maximize, c10::string_view flatten,
                                  c10::string_view backend);

// The step written with ATen ops (the smoothing op, then elementwise ops):
// any dtype, layout or device; what the fused kernels must agree with.
void lsgd_step_composite(at::TensorList params, at::TensorList grads,
                         at::TensorList momentum_buffers, const c10::List<bool>& fresh,
                         const LSGDStepArgs& args);

}  // namespace ops
}  // namespace torch_mlsgd
