// laplacian_smooth_shard from the whole-ring op, for every device that has
// laplacian_smooth but no shard kernel (the CPU has a direct one).
//
// Smoothing the periodic ring [left halo | shard | right halo] and keeping
// the middle gives the shard's values with its true neighbours up to
// `warmup` elements on each side; the ring's wrap-around puts wrong
// neighbours only beyond that, where the operator's kernel has decayed below
// the truncation tolerance the direct route uses for the same halos. So the
// result equals the direct route's, to that tolerance.

#include "ops/shard_by_ring.h"

#include <torch_mlsgd/laplacian_smooth.h>

#include "core/recursive_filter.h"
#include "ops/smooth_args.h"

#include <ATen/ATen.h>
#include <torch/library.h>

namespace torch_mlsgd {
namespace ops {

at::Tensor laplacian_smooth_shard_by_ring(const at::Tensor& shard, const at::Tensor& left,
                                          const at::Tensor& right, double sigma, int64_t order) {
  check_shard_args(shard, left, right, sigma, order);
  const auto filter =
      core::make_recursive_filter(sigma, order, truncation_tolerance(compute_dtype(shard.scalar_type())));
  if (filter.is_identity() || shard.numel() == 0) {
    return shard.clone();
  }
  TORCH_CHECK_VALUE(filter.warmup >= 0, "laplacian_smooth_shard: sigma=", sigma, ", order=", order,
                    " needs a warm-up beyond ", core::kMaxWarmup, " elements; gather the ring instead");
  const int64_t warmup = filter.warmup;
  check_halo_lengths(left, right, warmup);
  const at::Tensor ring = at::cat({left.reshape({-1}).narrow(0, left.numel() - warmup, warmup),
                                   shard.reshape({-1}),
                                   right.reshape({-1}).narrow(0, 0, warmup)});
  return laplacian_smooth(ring, sigma, order).narrow(0, warmup, shard.numel()).view(shard.sizes());
}

}  // namespace ops
}  // namespace torch_mlsgd

TORCH_LIBRARY_IMPL(mlsgd, CompositeExplicitAutograd, m) {
  m.impl("laplacian_smooth_shard", &torch_mlsgd::ops::laplacian_smooth_shard_by_ring);
}
