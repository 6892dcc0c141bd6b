// CUDA kernels of mlsgd::laplacian_smooth and mlsgd::laplacian_smooth_: the
// torch glue around the kernel layer (csrc/cuda/kernels), on the current
// CUDA stream of the input's device.

#include "ops/cuda/cuda_glue.h"

#include <string>

namespace torch_mlsgd {
namespace ops {
namespace cuda {
namespace {

Tensor laplacian_smooth_cuda(const Tensor& self, double sigma, int64_t order, std::string backend) {
  check_smooth_args(self, sigma, order, backend);
  const torch::stable::accelerator::DeviceGuard guard(self.get_device_index());
  const Tensor input = contiguous_as(self, compute_dtype(self.scalar_type()));
  Tensor output = torch::stable::empty(self.sizes(), input.scalar_type(), std::nullopt, input.device());
  const int64_t n = input.numel();
  const auto filter = core::make_recursive_filter(sigma, order, truncation_tolerance(input.scalar_type()));
  if (n <= 1 || filter.is_identity()) {
    torch::stable::copy_(output, input);
    return as_dtype(output, self.scalar_type());
  }
  const cudaStream_t stream = current_stream(input);
  dispatch_float_double(input.scalar_type(), "laplacian_smooth_cuda", [&](auto zero) {
    using scalar_t = decltype(zero);
    torch_mlsgd::cuda::DeviceFilter device_filter;
    if (use_direct(parse_backend(backend), filter, sizeof(scalar_t), input.get_device_index(), &device_filter)) {
      // Out of place: a block's neighbours read its inputs as their halos.
      const torch_mlsgd::cuda::SmoothRing<scalar_t> ring{input.const_data_ptr<scalar_t>(),
                                                         output.mutable_data_ptr<scalar_t>(), n};
      check_kernel(torch_mlsgd::cuda::direct_smooth(&ring, 1, device_filter, stream), "direct smoothing");
    } else {
      const Tensor readable = fft_readable(input, sizeof(scalar_t));
      ScratchPool pool(input);
      check_kernel(
          torch_mlsgd::cuda::fft_smooth(readable.const_data_ptr<scalar_t>(), output.mutable_data_ptr<scalar_t>(), n, 1,
                                        sigma, order, pool.allocator(), stream),
          "FFT smoothing");
    }
  });
  return as_dtype(output, self.scalar_type());
}

void check_direct_route_cuda(const Tensor& like, double sigma, int64_t order) {
  check_sigma(sigma);
  check_order(order);
  const ScalarType dtype = compute_dtype(like.scalar_type());
  const auto filter = core::make_recursive_filter(sigma, order, truncation_tolerance(dtype));
  if (!filter.is_identity()) {
    torch_mlsgd::cuda::DeviceFilter device_filter;
    use_direct(SmoothBackend::Direct, filter, dtype == ScalarType::Double ? sizeof(double) : sizeof(float),
               like.get_device_index(), &device_filter);  // raises the route's own error
  }
}

void laplacian_smooth_cuda_(Tensor self, double sigma, int64_t order, std::string backend) {
  check_smooth_args(self, sigma, order, backend);
  torch::stable::copy_(self, laplacian_smooth_cuda(self, sigma, order, backend));
}

}  // namespace
}  // namespace cuda
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CUDA, m) {
  m.impl("laplacian_smooth", TORCH_BOX(&torch_mlsgd::ops::cuda::laplacian_smooth_cuda));
  m.impl("laplacian_smooth_", TORCH_BOX(&torch_mlsgd::ops::cuda::laplacian_smooth_cuda_));
  m.impl("check_direct_route", TORCH_BOX(&torch_mlsgd::ops::cuda::check_direct_route_cuda));
}
