// CPU kernel of mlsgd::lsgd_step_: the whole LSGD step of a parameter group,
// smoothing and update in one pass (ops/cpu/fused_update.h). Tensors the fused
// loops do not take as they are (half precision, non-contiguous, mixed
// dtypes) are staged by run_step (ops/lsgd_step.h).

#include "core/lsgd_update.h"
#include "ops/cpu/fused_update.h"
#include "ops/lsgd_step.h"

#include <vector>

namespace torch_mlsgd {
namespace ops {
namespace cpu {
namespace {

template <typename scalar_t>
void fused_step(const TensorList& params, const TensorList& grads, const TensorList& buffers,
                const std::vector<bool>& fresh, const LSGDStepArgs& a) {
  const core::LSGDUpdate update{a.lr, a.momentum, a.dampening, a.weight_decay, a.nesterov};
  // Raw pointers once, outside the parallel regions (each is a call into torch).
  std::vector<scalar_t*> param_data, buffer_data(params.size(), nullptr);
  for (size_t i = 0; i < params.size(); ++i) {
    param_data.push_back(params[i].mutable_data_ptr<scalar_t>());
    if (!buffers.empty()) {
      buffer_data[i] = buffers[i].mutable_data_ptr<scalar_t>();
    }
  }
  // One sink per parameter; `scale` turns the values a route produces into S(g)
  // (of the unscaled gradient, under GradScaler).
  smooth_into_sinks<scalar_t>(grads, a.sigma, a.order, a.group_ring, a.backend,
                              (a.maximize ? -1.0 : 1.0) * a.amp.unscale, [&](size_t i, double scale) {
                                return UpdateSink<scalar_t>{update, param_data[i], buffer_data[i],
                                                            !buffers.empty() && fresh[i], scale};
                              });
}

void fused_step_cpu(const TensorList& params, const TensorList& grads, const TensorList& buffers,
                    const std::vector<bool>& fresh, const LSGDStepArgs& args) {
  dispatch_float_double(params[0].scalar_type(), "lsgd_step_cpu",
                        [&](auto zero) { fused_step<decltype(zero)>(params, grads, buffers, fresh, args); });
}

}  // namespace
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CPU, m) {
  m.impl("lsgd_step_", TORCH_BOX(&torch_mlsgd::ops::lsgd_step_kernel<&torch_mlsgd::ops::cpu::fused_step_cpu>));
  m.impl("lsgd_step_.tensor",
         TORCH_BOX(&torch_mlsgd::ops::lsgd_step_tensor_kernel<&torch_mlsgd::ops::cpu::fused_step_cpu>));
}
