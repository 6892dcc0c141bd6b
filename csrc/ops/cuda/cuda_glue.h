#pragma once

// What the CUDA glue files share: error checks, the current stream, scratch
// memory from torch's caching allocator, inputs cuFFT can read, and the
// choice of route. Stable ABI only, like the rest of the op library.

#include "cuda/kernels/smoothing.h"
#include "ops/smooth_args.h"

#include <torch/csrc/stable/accelerator.h>

#include <cuda_runtime.h>

#include <string>
#include <vector>

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

// Scratch for the kernel layer (its ScratchAllocator), held until this object
// goes out of scope: after the launches that use it are queued on the current
// stream, so the caching allocator reuses it only in stream order. Hidden like
// the stable Tensor it holds (torch declares its stable namespace hidden).
class __attribute__((visibility("hidden"))) ScratchPool {
 public:
  explicit ScratchPool(const Tensor& like) : like_(like) {}
  torch_mlsgd::cuda::ScratchAllocator allocator() {
    return [this](size_t bytes) {
      held_.push_back(scratch(bytes, like_));
      return held_.back().mutable_data_ptr();
    };
  }

 private:
  Tensor like_;
  std::vector<Tensor> held_;
};

// `t` (contiguous) where cuFFT can read it, else an aligned copy: views such as
// x[1:], and gradient bucket views of DDP or FSDP, may start mid-pair.
inline Tensor fft_readable(const Tensor& t, size_t element_bytes) {
  if (torch_mlsgd::cuda::complex_aligned(t.const_data_ptr(), element_bytes)) {
    return t;
  }
  Tensor copy = torch::stable::empty_like(t);
  torch::stable::copy_(copy, t);
  return copy;
}

// The GPU route for a ring: the direct kernels where they can take the filter
// within `device`'s shared memory, and (for "auto") its warm-up is short next
// to a block's chunks; otherwise cuFFT.
inline bool use_direct(SmoothBackend requested, const core::RecursiveFilter& filter, size_t element_bytes, int device,
                       torch_mlsgd::cuda::DeviceFilter* device_filter) {
  const size_t limit = torch_mlsgd::cuda::direct_shared_limit(device);
  const bool fits = torch_mlsgd::cuda::make_device_filter(filter, element_bytes, limit, device_filter);
  if (requested == SmoothBackend::Direct) {
    check(filter.warmup >= 0, "laplacian_smooth: the direct backend supports orders up to ",
          2 * torch_mlsgd::cuda::kMaxSections, " on CUDA and warm-ups up to ", core::kMaxWarmup,
          " elements (sigma up to about 3e9 in float64, 5e9 in float32, at order 1); use backend='fft' or 'auto'");
    check(fits, "laplacian_smooth: on CUDA the direct backend supports orders up to ",
          2 * torch_mlsgd::cuda::kMaxSections, " and warm-ups whose block fits shared memory (this filter needs ",
          torch_mlsgd::cuda::direct_shared_bytes(filter.warmup, element_bytes), " bytes; device ", device, " allows ",
          limit, "); use backend='fft' or 'auto'");
    return true;
  }
  return requested == SmoothBackend::Auto && torch_mlsgd::cuda::auto_takes_direct(fits, filter.warmup);
}

}  // namespace cuda
}  // namespace ops
}  // namespace torch_mlsgd
