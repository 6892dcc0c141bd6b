// CUDA kernel of mlsgd::lsgd_step_: the whole LSGD step of a parameter group
// on the GPU, in as few launches as the routes allow.
//
// flatten="tensor": one direct launch smooths and updates every ring the
// direct route takes; rings taken by the FFT route are batched by length
// (one cuFFT plan per length) and updated with one elementwise launch.
// flatten="group": the group's gradients are concatenated into one ring,
// smoothed, and the update runs over its pieces. sigma = 0: one elementwise
// launch. Tensors the kernels do not take as they are are staged by run_step
// (ops/lsgd_step.h).

#include "core/recursive_filter.h"
#include "ops/cuda/cuda_glue.h"
#include "ops/lsgd_step.h"

#include <map>
#include <vector>

namespace torch_mlsgd {
namespace ops {
namespace cuda {
namespace {

namespace kernels = torch_mlsgd::cuda;

template <typename scalar_t>
void fused_step(const TensorList& params, const TensorList& grads, const TensorList& buffers,
                const std::vector<bool>& fresh, const LSGDStepArgs& a) {
  const cudaStream_t stream = current_stream(params[0]);
  const kernels::UpdateRule rule{core::LSGDUpdate{a.lr, a.momentum, a.dampening, a.weight_decay, a.nesterov},
                                 a.amp.device_grad_scale, a.amp.device_found_inf};
  const double sign = a.maximize ? -1.0 : 1.0;
  auto ring_of = [&](size_t i, const scalar_t* input, double scale) {
    return kernels::UpdateRing<scalar_t>{input,
                                         params[i].mutable_data_ptr<scalar_t>(),
                                         buffers.empty() ? nullptr : buffers[i].mutable_data_ptr<scalar_t>(),
                                         params[i].numel(),
                                         !buffers.empty() && fresh[i],
                                         scale};
  };
  auto elementwise = [&](const std::vector<kernels::UpdateRing<scalar_t>>& rings) {
    if (rings.empty()) {
      return;
    }
    check_kernel(kernels::elementwise_update(rings.data(), static_cast<int64_t>(rings.size()), rule, stream),
                 "LSGD update");
  };

  const auto filter = core::make_recursive_filter(a.sigma, a.order, truncation_tolerance(params[0].scalar_type()));
  const SmoothBackend requested = parse_backend(a.backend);
  kernels::DeviceFilter device_filter;
  const bool direct = !filter.is_identity() &&
                      use_direct(requested, filter, sizeof(scalar_t), params[0].get_device_index(), &device_filter);
  ScratchPool pool(params[0]);                         // FFT spectra and work areas, until every launch is queued
  std::vector<kernels::UpdateRing<scalar_t>> updates;  // inputs already smoothed (or sigma = 0)

  if (a.group_ring && !filter.is_identity()) {
    std::vector<Tensor> flat;
    for (const auto& g : grads) {
      flat.push_back(aten::flat(g));
    }
    const Tensor ring = aten::cat(flat);
    const int64_t n = ring.numel();
    Tensor smoothed = n <= 1 ? ring : torch::stable::empty_like(ring);
    if (n > 1 && direct) {
      const kernels::SmoothRing<scalar_t> r{ring.const_data_ptr<scalar_t>(), smoothed.mutable_data_ptr<scalar_t>(), n};
      check_kernel(kernels::direct_smooth(&r, 1, device_filter, stream), "direct smoothing");
    } else if (n > 1) {  // `ring` is a fresh concatenation: aligned
      check_kernel(kernels::fft_smooth(ring.const_data_ptr<scalar_t>(), smoothed.mutable_data_ptr<scalar_t>(), n, 1,
                                       a.sigma, a.order, pool.allocator(), stream),
                   "FFT smoothing");
    }
    int64_t offset = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      updates.push_back(ring_of(i, smoothed.mutable_data_ptr<scalar_t>() + offset, sign));
      offset += params[i].numel();
    }
    elementwise(updates);
    return;  // `smoothed` is freed after the launch, in stream order
  }

  std::vector<kernels::UpdateRing<scalar_t>> direct_rings;
  std::map<int64_t, std::vector<size_t>> fft_by_length;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].numel();
    if (filter.is_identity() || n <= 1) {
      updates.push_back(ring_of(i, grads[i].const_data_ptr<scalar_t>(), sign));
    } else if (direct) {
      direct_rings.push_back(ring_of(i, grads[i].const_data_ptr<scalar_t>(), sign * filter.gain));
    } else {
      fft_by_length[n].push_back(i);
    }
  }
  if (!direct_rings.empty()) {
    check_kernel(kernels::direct_update(direct_rings.data(), static_cast<int64_t>(direct_rings.size()), device_filter,
                                        rule, stream),
                 "fused LSGD step");
  }
  std::vector<Tensor> keep_alive;  // smoothed batches, until the update is queued
  for (const auto& entry : fft_by_length) {
    const int64_t n = entry.first;
    const int64_t batch = static_cast<int64_t>(entry.second.size());
    std::vector<Tensor> rows;
    for (size_t i : entry.second) {
      rows.push_back(aten::flat(grads[i]));
    }
    // One gradient is read in place (if cuFFT can: a bucket view may be misaligned).
    const Tensor input = batch == 1 ? fft_readable(rows[0], sizeof(scalar_t)) : aten::cat(rows);
    Tensor smoothed = torch::stable::empty_like(input);
    check_kernel(kernels::fft_smooth(input.const_data_ptr<scalar_t>(), smoothed.mutable_data_ptr<scalar_t>(), n, batch,
                                     a.sigma, a.order, pool.allocator(), stream),
                 "FFT smoothing");
    for (int64_t b = 0; b < batch; ++b) {
      updates.push_back(ring_of(entry.second[b], smoothed.mutable_data_ptr<scalar_t>() + b * n, sign));
    }
    keep_alive.push_back(smoothed);
  }
  elementwise(updates);
}

void fused_step_cuda(const TensorList& params, const TensorList& grads, const TensorList& buffers,
                     const std::vector<bool>& fresh, const LSGDStepArgs& args) {
  const torch::stable::accelerator::DeviceGuard guard(params[0].get_device_index());
  dispatch_float_double(params[0].scalar_type(), "lsgd_step_cuda",
                        [&](auto zero) { fused_step<decltype(zero)>(params, grads, buffers, fresh, args); });
}

}  // namespace
}  // namespace cuda
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CUDA, m) {
  m.impl("lsgd_step_", TORCH_BOX(&torch_mlsgd::ops::lsgd_step_kernel<&torch_mlsgd::ops::cuda::fused_step_cuda>));
  m.impl("lsgd_step_.tensor",
         TORCH_BOX(&torch_mlsgd::ops::lsgd_step_tensor_kernel<&torch_mlsgd::ops::cuda::fused_step_cuda>));
}
