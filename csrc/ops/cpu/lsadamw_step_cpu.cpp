// CPU kernel of mlsgd::lsadamw_step_: AdamW on the smoothed gradients of a
// parameter group, smoothing and update in one pass (ops/cpu/fused_update.h):
// each gradient is read once and each parameter and moment read and written
// once, the memory traffic of torch's fused AdamW.

#include "core/adamw_update.h"
#include "ops/cpu/fused_update.h"
#include "ops/lsadamw_step.h"

#include <string>
#include <vector>

namespace torch_mlsgd::ops::cpu {
namespace {

template <typename scalar_t>
void fused_step(const AdamWStepTensors& t, const AdamWStepArgs& a) {
  const size_t n = t.params.size();
  // Raw pointers and per-tensor constants once, outside the parallel regions.
  std::vector<scalar_t*> param, exp_avg, exp_avg_sq, max_exp_avg_sq(n, nullptr);
  std::vector<core::AdamWUpdate> updates;
  for (size_t i = 0; i < n; ++i) {
    param.push_back(t.params[i].mutable_data_ptr<scalar_t>());
    exp_avg.push_back(t.exp_avgs[i].mutable_data_ptr<scalar_t>());
    exp_avg_sq.push_back(t.exp_avg_sqs[i].mutable_data_ptr<scalar_t>());
    if (a.amsgrad) {
      max_exp_avg_sq[i] = t.max_exp_avg_sqs[i].mutable_data_ptr<scalar_t>();
    }
    updates.push_back(core::AdamWUpdate::at_step(a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, t.steps[i]));
  }
  smooth_into_sinks<scalar_t>(t.grads, a.sigma, a.order, a.group_ring, a.backend,
                              (a.maximize ? -1.0 : 1.0) * a.amp.unscale, [&](size_t i, double scale) {
                                return AdamWSink<scalar_t>{updates[i],    param[i],          exp_avg[i],
                                                           exp_avg_sq[i], max_exp_avg_sq[i], scale};
                              });
}

void fused_step_cpu(const AdamWStepTensors& t, const AdamWStepArgs& args) {
  dispatch_float_double(t.params[0].scalar_type(), "lsadamw_step_cpu",
                        [&](auto zero) { fused_step<decltype(zero)>(t, args); });
}

// The step counts read on the host, then one pass per compute dtype.
void lsadamw_step_cpu(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                      const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const TensorList& state_steps,
                      const AdamWStepArgs& args) {
  AdamWStepTensors t{params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, {}};
  for (size_t i = 0; i < state_steps.size(); ++i) {
    t.steps.push_back(step_value(state_steps[i]));
    check(t.steps.back() >= 1.0, "lsadamw_step_: state_steps hold the count with this step included (>= 1); ",
          "parameter ", i, " has ", t.steps.back());
  }
  run_adamw_step(t, args, fused_step_cpu);
}

}  // namespace
}  // namespace torch_mlsgd::ops::cpu

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CPU, m) {
  m.impl("lsadamw_step_", TORCH_BOX(&torch_mlsgd::ops::lsadamw_step_kernel<&torch_mlsgd::ops::cpu::lsadamw_step_cpu>));
}
