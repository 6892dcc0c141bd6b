#include "ops/smooth_args.h"

namespace torch_mlsgd {
namespace ops {

void check_sigma(double sigma) { check(core::sigma_error(sigma)); }

void check_order(int64_t order) { check(core::order_error(order)); }

SmoothBackend parse_backend(std::string_view name) {
  check(core::backend_error(name));
  return core::parse_backend(name);
}

void check_smoothable(const Tensor& tensor, const char* what) {
  check(tensor.defined(), "laplacian_smooth: the ", what, " is an undefined tensor");
  check(tensor.layout() == torch::headeronly::Layout::Strided, "laplacian_smooth: sparse ", what,
        "s are not supported");
  check(!is_complex(tensor.scalar_type()), "laplacian_smooth: complex ", what, "s are not supported (got dtype ",
        tensor.scalar_type(), ")");
  check(is_floating(tensor.scalar_type()), "laplacian_smooth: expected a floating-point ", what, ", got dtype ",
        tensor.scalar_type());
}

void check_smooth_args(const Tensor& self, double sigma, int64_t order, std::string_view backend) {
  check_smoothable(self, "input");
  check_sigma(sigma);
  check_order(order);
  parse_backend(backend);
}

void check_shard_args(const Tensor& shard, const Tensor& left, const Tensor& right, double sigma, int64_t order) {
  check_smoothable(shard, "input");
  check_smoothable(left, "left halo");
  check_smoothable(right, "right halo");
  check_sigma(sigma);
  check_order(order);
  check(left.scalar_type() == shard.scalar_type() && right.scalar_type() == shard.scalar_type(),
        "laplacian_smooth_shard: the halos must have the shard's dtype ", shard.scalar_type(), ", got ",
        left.scalar_type(), " and ", right.scalar_type());
}

void check_halo_lengths(const Tensor& left, const Tensor& right, int64_t warmup) {
  check(left.numel() >= warmup && right.numel() >= warmup, "laplacian_smooth_shard: each halo needs ", warmup,
        " elements (mlsgd::direct_warmup), got ", left.numel(), " and ", right.numel());
}

double truncation_tolerance(ScalarType dtype) { return core::truncation_tolerance(dtype == ScalarType::Double); }

ScalarType compute_dtype(ScalarType dtype) {
  return dtype == ScalarType::Double ? ScalarType::Double : ScalarType::Float;
}

Tensor as_dtype(const Tensor& t, ScalarType dtype) {
  return t.scalar_type() == dtype ? t : torch::stable::to(t, dtype);
}

Tensor contiguous_as(const Tensor& t, ScalarType dtype) {
  const Tensor typed = as_dtype(t, dtype);
  return typed.is_contiguous() ? typed : torch::stable::contiguous(typed);
}

Tensor host_as(const Tensor& t, ScalarType dtype) {
  const Tensor host = t.device().type() == torch::stable::DeviceType::CPU
                          ? t
                          : torch::stable::to(t, torch::stable::Device(torch::stable::DeviceType::CPU));
  return contiguous_as(host, dtype);
}

}  // namespace ops
}  // namespace torch_mlsgd
