// laplacian_smooth_shard from the whole-ring op, for every device that has
// laplacian_smooth but no shard kernel (the CPU has a direct one).
//
// Smoothing the periodic ring [left halo | shard | right halo] and keeping
// the middle gives the shard's values with its true neighbours up to
// `warmup` elements on each side; the ring's wrap-around puts wrong
// neighbours only beyond that, where the operator's kernel has decayed below
// the truncation tolerance the direct route uses for the same halos. So the
// result equals the direct route's, to that tolerance.

#include "core/recursive_filter.h"
#include "ops/smooth_args.h"

// One shard of a ring split across processes, given the ring elements just
// before and after it (see torch_mlsgd.distributed): not differentiable. The
// CPU registers a direct kernel (ops/cpu/laplacian_smooth_cpu.cpp).
STABLE_TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  m.def(
      "laplacian_smooth_shard(Tensor shard, Tensor left_halo, Tensor right_halo, float sigma, "
      "int order=1) -> Tensor");
}

namespace torch_mlsgd {
namespace ops {
namespace {

Tensor laplacian_smooth_shard_by_ring(const Tensor& shard, const Tensor& left, const Tensor& right, double sigma,
                                      int64_t order) {
  check_shard_args(shard, left, right, sigma, order);
  const auto filter =
      core::make_recursive_filter(sigma, order, truncation_tolerance(compute_dtype(shard.scalar_type())));
  if (filter.is_identity() || shard.numel() == 0) {
    return torch::stable::clone(shard);
  }
  check(filter.warmup >= 0, "laplacian_smooth_shard: sigma=", sigma, ", order=", order, " needs a warm-up beyond ",
        core::kMaxWarmup, " elements; gather the ring instead");
  const int64_t warmup = filter.warmup;
  check_halo_lengths(left, right, warmup);
  Tensor l = aten::flat(left);
  Tensor r = aten::flat(right);
  const Tensor ring = aten::cat({torch::stable::narrow(l, 0, left.numel() - warmup, warmup), aten::flat(shard),
                                 torch::stable::narrow(r, 0, 0, warmup)});
  Tensor smoothed = smooth_op(ring, sigma, order, "auto");
  return torch::stable::reshape(torch::stable::narrow(smoothed, 0, warmup, shard.numel()), shard.sizes());
}

}  // namespace
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CompositeExplicitAutograd, m) {
  m.impl("laplacian_smooth_shard", TORCH_BOX(&torch_mlsgd::ops::laplacian_smooth_shard_by_ring));
}
