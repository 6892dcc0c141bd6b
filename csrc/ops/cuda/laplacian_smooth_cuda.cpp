// CUDA kernels of mlsgd::laplacian_smooth and mlsgd::laplacian_smooth_: the
// torch glue around the kernel layer (csrc/cuda/kernels), on the current
// CUDA stream of the input's device.

#include "ops/cuda/cuda_glue.h"
#include "ops/smooth_args.h"

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace torch_mlsgd {
namespace ops {
namespace cuda {
namespace {

at::Tensor laplacian_smooth_cuda(const at::Tensor& self, double sigma, int64_t order, c10::string_view backend) {
  check_smooth_args(self, sigma, order, backend);
  const c10::cuda::CUDAGuard guard(self.device());
  const at::Tensor input = self.to(compute_dtype(self.scalar_type())).contiguous();
  at::Tensor output = at::empty_like(input, at::MemoryFormat::Contiguous);
  const int64_t n = input.numel();
  const auto filter = core::make_recursive_filter(sigma, order, truncation_tolerance(input.scalar_type()));
  if (n <= 1 || filter.is_identity()) {
    output.copy_(input);
    return output.to(self.scalar_type());
  }
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "laplacian_smooth_cuda", [&] {
    torch_mlsgd::cuda::DeviceFilter device_filter;
    if (use_direct(parse_backend(backend), filter, sizeof(scalar_t), &device_filter)) {
      // Out of place: a block's neighbours read its inputs as their halos.
      const torch_mlsgd::cuda::SmoothRing<scalar_t> ring{input.data_ptr<scalar_t>(),
                                                         output.data_ptr<scalar_t>(), n};
      const at::Tensor workspace = scratch(torch_mlsgd::cuda::direct_workspace_bytes(1), input);
      check_kernel(torch_mlsgd::cuda::direct_smooth(&ring, 1, device_filter, workspace.data_ptr(), stream),
                   "direct smoothing");
    } else {
      const at::Tensor spectrum = scratch(torch_mlsgd::cuda::fft_workspace_bytes(n, 1, sizeof(scalar_t)), input);
      check_kernel(torch_mlsgd::cuda::fft_smooth(input.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(), n, 1,
                                                 sigma, order, spectrum.data_ptr(), stream),
                   "FFT smoothing");
    }
  });
  return output.to(self.scalar_type());
}

void laplacian_smooth_cuda_(at::Tensor& self, double sigma, int64_t order, c10::string_view backend) {
  check_smooth_args(self, sigma, order, backend);
  self.copy_(laplacian_smooth_cuda(self, sigma, order, backend));
}

}  // namespace
}  // namespace cuda
}  // namespace ops
}  // namespace torch_mlsgd

TORCH_LIBRARY_IMPL(mlsgd, CUDA, m) {
  m.impl("laplacian_smooth", &torch_mlsgd::ops::cuda::laplacian_smooth_cuda);
  m.impl("laplacian_smooth_", &torch_mlsgd::ops::cuda::laplacian_smooth_cuda_);
}
