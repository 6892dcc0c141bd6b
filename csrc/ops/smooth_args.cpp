#include "ops/smooth_args.h"

#include <c10/util/Exception.h>

#include <cmath>

namespace torch_mlsgd {
namespace ops {

SmoothBackend parse_backend(c10::string_view name) {
  if (name == "auto") {
    return SmoothBackend::Auto;
  }
  if (name == "fft") {
    return SmoothBackend::FFT;
  }
  if (name == "direct") {
    return SmoothBackend::Direct;
  }
  TORCH_CHECK_VALUE(false, "Invalid backend: '", std::string(name.data(), name.size()),
                    "' (expected 'auto', 'fft' or 'direct')");
}

void check_sigma(double sigma) {
  TORCH_CHECK_VALUE(std::isfinite(sigma) && sigma >= 0.0, "Invalid sigma value: ", sigma,
                    " (must be finite and >= 0)");
}

void check_order(int64_t order) {
  TORCH_CHECK_VALUE(order >= 1, "Invalid order value: ", order, " (must be >= 1)");
}

void check_shard_args(const at::Tensor& shard, const at::Tensor& left, const at::Tensor& right,
                      double sigma, int64_t order) {
  check_smoothable(shard, "input");
  check_smoothable(left, "left halo");
  check_smoothable(right, "right halo");
  check_sigma(sigma);
  check_order(order);
  TORCH_CHECK_VALUE(left.scalar_type() == shard.scalar_type() && right.scalar_type() == shard.scalar_type(),
                    "laplacian_smooth_shard: the halos must have the shard's dtype ", shard.scalar_type(),
                    ", got ", left.scalar_type(), " and ", right.scalar_type());
}

void check_halo_lengths(const at::Tensor& left, const at::Tensor& right, int64_t warmup) {
  TORCH_CHECK_VALUE(left.numel() >= warmup && right.numel() >= warmup, "laplacian_smooth_shard: each halo needs ",
                    warmup, " elements (mlsgd::direct_warmup), got ", left.numel(), " and ", right.numel());
}

void check_smoothable(const at::Tensor& tensor, const char* what) {
  TORCH_CHECK_VALUE(tensor.defined(), "laplacian_smooth: the ", what, " is an undefined tensor");
  TORCH_CHECK_TYPE(tensor.layout() == at::kStrided, "laplacian_smooth: sparse ", what,
                   "s are not supported (got layout ", tensor.layout(), ")");
  TORCH_CHECK_TYPE(!tensor.is_complex(), "laplacian_smooth: complex ", what,
                   "s are not supported (got dtype ", tensor.scalar_type(), ")");
  TORCH_CHECK_TYPE(tensor.is_floating_point(), "laplacian_smooth: expected a floating-point ",
                   what, ", got dtype ", tensor.scalar_type());
}

void check_smooth_args(const at::Tensor& self, double sigma, int64_t order,
                       c10::string_view backend) {
  check_smoothable(self, "input");
  check_sigma(sigma);
  check_order(order);
  parse_backend(backend);
}

double truncation_tolerance(at::ScalarType dtype) { return dtype == at::kDouble ? 1e-17 : 1e-9; }

at::ScalarType compute_dtype(at::ScalarType dtype) {
  return dtype == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace ops
}  // namespace torch_mlsgd
