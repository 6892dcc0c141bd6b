// The smoothing op's schemas and its device-independent introspection ops
// (the library's root block; every other op defines its schema in a fragment
// next to its implementation: ops/shard_by_ring.cpp, ops/lsgd_step.cpp,
// ops/schedule.cpp).
// Backends live in ops/cpu and ops/cuda and only register kernels; autograd
// and fake kernels are registered from Python (torch_mlsgd/_meta.py), and
// LibTorch users get autograd from csrc/api.

#include "core/recursive_filter.h"
#include "ops/cpu/simd_sweeps.h"
#include "ops/smooth_args.h"

#include <string>

STABLE_TORCH_LIBRARY(mlsgd, m) {
  m.def("laplacian_smooth(Tensor self, float sigma, int order=1, str backend=\"auto\") -> Tensor");
  // The in-place op returns nothing: torch.compile's functionalization takes no
  // custom op whose output aliases an input (the C++ and Python APIs return self).
  m.def("laplacian_smooth_(Tensor(a!) self, float sigma, int order=1, str backend=\"auto\") -> ()");
  // The halo length laplacian_smooth_shard needs (the direct route's warm-up);
  // -1 where the direct route cannot take the filter (an order above its
  // maximum, a warm-up beyond its limit): only the FFT route applies.
  m.def("direct_warmup(float sigma, int order, ScalarType dtype) -> int");
  // Raises, as backend="direct" would, where the direct route of `like`'s device
  // cannot smooth its dtype with these parameters: the optimizers check every
  // group before updating any.
  m.def("check_direct_route(Tensor like, float sigma, int order) -> ()");
  // Which CPU kernels run here: "avx2" or "portable" (diagnostics and tests).
  m.def("cpu_kernels() -> str");
}

namespace torch_mlsgd {
namespace ops {
namespace {

int64_t direct_warmup(double sigma, int64_t order, ScalarType dtype) {
  check_sigma(sigma);
  check_order(order);
  if (order > core::kMaxDirectOrder) {
    return -1;
  }
  return core::make_recursive_filter(sigma, order, truncation_tolerance(compute_dtype(dtype))).warmup;
}

std::string cpu_kernels() { return cpu::simd::supported() ? "avx2" : "portable"; }

}  // namespace
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CompositeExplicitAutograd, m) {
  m.impl("direct_warmup", TORCH_BOX(&torch_mlsgd::ops::direct_warmup));
  m.impl("cpu_kernels", TORCH_BOX(&torch_mlsgd::ops::cpu_kernels));
}
