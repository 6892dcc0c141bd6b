// CUDA kernel of mlsgd::lsadamw_step_. Parameters the direct route takes
// (flatten="tensor", contiguous float32/float64 tensors of one dtype and a
// float32 count on the device, as torch's fused AdamW keeps it) step in one
// pass over memory: the direct kernels smooth each gradient in shared memory
// and apply AdamW's update from there (kernels::direct_adamw). The others
// (flatten="group", the FFT route, half precision, one-element tensors) are
// smoothed by this library's CUDA routes (mlsgd::laplacian_smooth) and then
// stepped by torch's own fused AdamW kernel (aten::_fused_adamw_), one call
// per dtype: correct by construction, reading the gradient twice.

#include "ops/cuda/cuda_glue.h"
#include "ops/lsadamw_step.h"

#include "core/recursive_filter.h"

#include <map>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace ops {
namespace cuda {
namespace {

namespace kernels = torch_mlsgd::cuda;

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

// The tensors of `all` at `index`.
TensorList gather(const TensorList& all, const std::vector<size_t>& index) {
  TensorList out;
  for (size_t i : index) {
    out.push_back(all[i]);
  }
  return out;
}

// Smoothing, then torch's fused AdamW (one call per dtype), for the parameters in `index`.
void smoothed_then_fused(const std::vector<size_t>& index, const TensorList& params, const TensorList& grads,
                         const TensorList& exp_avgs, const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs,
                         const TensorList& steps, const AdamWStepArgs& args) {
  const TensorList smoothed = smoothed_gradients(gather(grads, index), args);
  std::map<int, std::vector<size_t>> by_dtype;  // positions in `index` and `smoothed`
  for (size_t k = 0; k < index.size(); ++k) {
    by_dtype[static_cast<int>(params[index[k]].scalar_type())].push_back(k);
  }
  for (const auto& entry : by_dtype) {
    std::vector<size_t> members;
    for (size_t k : entry.second) {
      members.push_back(index[k]);
    }
    fused_adamw(gather(params, members), gather(smoothed, entry.second), gather(exp_avgs, members),
                gather(exp_avg_sqs, members), args.amsgrad ? gather(max_exp_avg_sqs, members) : TensorList{},
                gather(steps, members), args);
  }
}

// Whether parameter i can take the single pass (given that the direct route
// takes its filter): a ring of more than one element whose tensors are
// contiguous and of its dtype, with a float32 count on its device.
bool single_pass_takes(size_t i, const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                       const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const TensorList& steps,
                       const AdamWStepArgs& a) {
  const ScalarType dtype = params[i].scalar_type();
  if ((dtype != ScalarType::Float && dtype != ScalarType::Double) || params[i].numel() <= 1) {
    return false;
  }
  auto plain = [&](const Tensor& t) { return t.scalar_type() == dtype && t.is_contiguous(); };
  return plain(params[i]) && plain(grads[i]) && plain(exp_avgs[i]) && plain(exp_avg_sqs[i]) &&
         (!a.amsgrad || plain(max_exp_avg_sqs[i])) && steps[i].scalar_type() == ScalarType::Float &&
         steps[i].device() == params[i].device();
}

// The single pass over the parameters in `index` (one dtype); false, launching
// nothing, when the direct route does not take the filter.
template <typename scalar_t>
bool single_pass(const std::vector<size_t>& index, const TensorList& params, const TensorList& grads,
                 const TensorList& exp_avgs, const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs,
                 const TensorList& steps, const AdamWStepArgs& a) {
  const auto filter =
      core::make_recursive_filter(a.sigma, a.order, truncation_tolerance(params[index[0]].scalar_type()));
  kernels::DeviceFilter device_filter;
  if (filter.is_identity() || !use_direct(parse_backend(a.backend), filter, sizeof(scalar_t),
                                          params[index[0]].get_device_index(), &device_filter)) {
    return false;
  }
  std::vector<kernels::AdamWRing<scalar_t>> rings;
  for (size_t i : index) {
    rings.push_back({grads[i].const_data_ptr<scalar_t>(), params[i].mutable_data_ptr<scalar_t>(),
                     exp_avgs[i].mutable_data_ptr<scalar_t>(), exp_avg_sqs[i].mutable_data_ptr<scalar_t>(),
                     a.amsgrad ? max_exp_avg_sqs[i].mutable_data_ptr<scalar_t>() : nullptr,
                     steps[i].const_data_ptr<float>(), params[i].numel(), (a.maximize ? -1.0 : 1.0) * filter.gain});
  }
  const kernels::AdamWRule rule{
      a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.amp.device_grad_scale, a.amp.device_found_inf};
  check_kernel(kernels::direct_adamw(rings.data(), static_cast<int64_t>(rings.size()), device_filter, rule,
                                     current_stream(params[index[0]])),
               "fused LSAdamW step");
  return true;
}

void lsadamw_step_cuda(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                       const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const TensorList& state_steps,
                       const AdamWStepArgs& args) {
  const torch::stable::accelerator::DeviceGuard guard(params[0].get_device_index());
  std::vector<size_t> rest;
  std::map<int, std::vector<size_t>> single_by_dtype;
  for (size_t i = 0; i < params.size(); ++i) {
    const bool single = !args.group_ring && args.sigma != 0.0 &&
                        single_pass_takes(i, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, args);
    (single ? single_by_dtype[static_cast<int>(params[i].scalar_type())] : rest).push_back(i);
  }
  for (const auto& entry : single_by_dtype) {
    bool taken = false;
    dispatch_float_double(params[entry.second[0]].scalar_type(), "lsadamw_step_cuda", [&](auto zero) {
      taken = single_pass<decltype(zero)>(entry.second, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                                          state_steps, args);
    });
    if (!taken) {
      rest.insert(rest.end(), entry.second.begin(), entry.second.end());
    }
  }
  if (!rest.empty()) {
    smoothed_then_fused(rest, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, args);
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
