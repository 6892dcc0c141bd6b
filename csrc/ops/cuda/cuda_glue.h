#pragma once

// What the CUDA glue files share: error checks, the current stream, scratch
// memory from torch's caching allocator, and the choice of route. Stable ABI
// only, like the rest of the op library.

#include "cuda/kernels/smoothing.h"
#include "ops/smooth_args.h"

#include <torch/csrc/stable/accelerator.h>

#include <cuda_runtime.h>

#include <string>

namespace torch_mlsgd {
namespace ops {
namespace cuda {

inline void check_kernel(cudaError_t status, const char* what) {
  check(status == cudaSuccess, "torch_mlsgd CUDA ", what, " failed: ", cudaGetErrorString(status),
        status == cudaErrorUnknown ? " (" + torch_mlsgd::cuda::last_fft_error() + ")" : std::string());
}

// torch's current CUDA stream on `tensor`'s device.
inline cudaStream_t current_stream(const Tensor& tensor) {
  void* stream = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(tensor.get_device_index(), &stream));
  return static_cast<cudaStream_t>(stream);
}

// Device scratch from torch's caching allocator, ordered on the current stream.
inline Tensor scratch(size_t bytes, const Tensor& like) {
  return torch::stable::empty({static_cast<int64_t>(bytes)}, ScalarType::Byte, std::nullopt, like.device());
}

// The GPU route for a ring of n elements: the direct kernels when they can
// take the filter and its warm-up is short next to a block's chunks (their
// cost grows with it, the FFT's does not); otherwise cuFFT.
inline bool use_direct(SmoothBackend requested, const core::RecursiveFilter& filter, size_t element_bytes,
                       torch_mlsgd::cuda::DeviceFilter* device_filter) {
  const bool fits = torch_mlsgd::cuda::make_device_filter(filter, element_bytes, device_filter);
  if (requested == SmoothBackend::Direct) {
    check(fits, "laplacian_smooth: on CUDA the direct backend supports orders up to ",
          2 * torch_mlsgd::cuda::kMaxSections, " and warm-ups that fit shared memory; use "
          "backend='fft' or 'auto'");
    return true;
  }
  return requested == SmoothBackend::Auto && fits && filter.warmup <= 2 * torch_mlsgd::cuda::kChunk;
}

}  // namespace cuda
}  // namespace ops
}  // namespace torch_mlsgd
