// CUDA kernel of mlsgd::lsadamw_step_: the gradients smoothed by this
// library's CUDA routes (mlsgd::laplacian_smooth), then torch's own fused
// AdamW kernel (aten::_fused_adamw_) on them, one call per dtype. The
// gradients are read twice (the CPU kernel reads them once); a single-pass
// CUDA kernel would fold the update into the direct route's sweeps as
// lsgd_step_cuda.cpp does for LSGD.

#include "ops/cuda/cuda_glue.h"
#include "ops/lsadamw_step.h"

#include <map>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace ops {
namespace cuda {
namespace {

// S(g) of every gradient (views of one ring for flatten="group"); the
// gradients themselves where nothing smooths them (sigma 0, one element),
// unless grad_scale is given: torch's kernel writes the unscaled gradients
// back, and this op leaves the gradients as they are.
TensorList smoothed_gradients(const TensorList& grads, const AdamWStepArgs& a) {
  auto unsmoothed = [&](const Tensor& g) {
    if (!a.amp.grad_scale.has_value()) {
      return g;
    }
    Tensor copy = torch::stable::empty_like(g);
    torch::stable::copy_(copy, g);
    return copy;
  };
  TensorList out;
  if (a.group_ring && a.sigma != 0.0 && !grads.empty()) {
    std::vector<Tensor> flat;
    for (const auto& g : grads) {
      flat.push_back(aten::flat(g));
    }
    Tensor ring = smooth_op(aten::cat(flat), a.sigma, a.order, a.backend);
    int64_t offset = 0;
    for (const auto& g : grads) {
      out.push_back(torch::stable::reshape(torch::stable::narrow(ring, 0, offset, g.numel()), g.sizes()));
      offset += g.numel();
    }
    return out;
  }
  for (const auto& g : grads) {
    out.push_back(a.sigma == 0.0 || g.numel() <= 1 ? unsmoothed(g) : smooth_op(g, a.sigma, a.order, a.backend));
  }
  return out;
}

void fused_adamw(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                 const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const TensorList& steps,
                 const AdamWStepArgs& a) {
  using torch::stable::detail::from;
  std::array<StableIValue, 15> stack{
      from(params), from(grads),     from(exp_avgs),   from(exp_avg_sqs),      from(max_exp_avg_sqs),
      from(steps),  from(a.lr),      from(a.beta1),    from(a.beta2),          from(a.weight_decay),
      from(a.eps),  from(a.amsgrad), from(a.maximize), from(a.amp.grad_scale), from(a.amp.found_inf)};
  aten::call("aten::_fused_adamw_", "", stack);
}

void lsadamw_step_cuda(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                       const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const TensorList& state_steps,
                       const AdamWStepArgs& args) {
  const torch::stable::accelerator::DeviceGuard guard(params[0].get_device_index());
  const TensorList smoothed = smoothed_gradients(grads, args);
  // torch's kernel takes one dtype per call.
  std::map<int, std::vector<size_t>> by_dtype;
  for (size_t i = 0; i < params.size(); ++i) {
    by_dtype[static_cast<int>(params[i].scalar_type())].push_back(i);
  }
  for (const auto& entry : by_dtype) {
    TensorList p, g, m, v, vmax, s;
    for (size_t i : entry.second) {
      p.push_back(params[i]);
      g.push_back(smoothed[i]);
      m.push_back(exp_avgs[i]);
      v.push_back(exp_avg_sqs[i]);
      if (args.amsgrad) {
        vmax.push_back(max_exp_avg_sqs[i]);
      }
      s.push_back(state_steps[i]);
    }
    fused_adamw(p, g, m, v, vmax, s, args);
  }
}

}  // namespace
}  // namespace cuda
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CUDA, m) {
  m.impl("lsadamw_step_",
         TORCH_BOX(&torch_mlsgd::ops::lsadamw_step_kernel<&torch_mlsgd::ops::cuda::lsadamw_step_cuda>));
}
