#pragma once

// What the CUDA glue files share: error checks and scratch allocation.

#include "cuda/kernels/smoothing.h"
#include "ops/smooth_args.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cuda_runtime.h>

#include <string>

namespace torch_mlsgd {
namespace ops {
namespace cuda {

inline void check_kernel(cudaError_t status, const char* what) {
  TORCH_CHECK(status == cudaSuccess, "torch_mlsgd CUDA ", what, " failed: ", cudaGetErrorString(status),
              status == cudaErrorUnknown ? " (" + torch_mlsgd::cuda::last_fft_error() + ")" : std::string());
}

// Device scratch from torch's caching allocator, ordered on the current stream.
inline at::Tensor scratch(size_t bytes, const at::Tensor& like) {
  return at::empty({static_cast<int64_t>(bytes)}, like.options().dtype(at::kByte));
}

// The GPU route for a ring of n elements: the direct kernels when they can
// take the filter and its warm-up is short next to a block's chunks (their
// cost grows with it, the FFT's does not); otherwise cuFFT.
inline bool use_direct(SmoothBackend requested, const core::RecursiveFilter& filter, size_t element_bytes,
                       torch_mlsgd::cuda::DeviceFilter* device_filter) {
  const bool fits = torch_mlsgd::cuda::make_device_filter(filter, element_bytes, device_filter);
  if (requested == SmoothBackend::Direct) {
    TORCH_CHECK_VALUE(fits, "laplacian_smooth: on CUDA the direct backend supports orders up to ",
                      2 * torch_mlsgd::cuda::kMaxSections, " and warm-ups that fit shared memory; use "
                      "backend='fft' or 'auto'");
    return true;
  }
  return requested == SmoothBackend::Auto && fits && filter.warmup <= 2 * torch_mlsgd::cuda::kChunk;
}

}  // namespace cuda
}  // namespace ops
}  // namespace torch_mlsgd
