// CPU kernels of mlsgd::laplacian_smooth, mlsgd::laplacian_smooth_ and
// mlsgd::laplacian_smooth_shard: dtype handling, the choice of route, and the
// registration.

#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/smooth_kernels.h"
#include "ops/smooth_args.h"

#include <cmath>
#include <string>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace torch_mlsgd {
namespace ops {
namespace cpu {
namespace {

// output = S(input) for contiguous float/double tensors; output may alias input.
void smooth_into(const Tensor& input, const Tensor& output, double sigma, int64_t order, SmoothBackend requested) {
  const int64_t n = input.numel();
  if (n == 0) {
    return;
  }
  const auto filter = core::make_recursive_filter(sigma, order, truncation_tolerance(input.scalar_type()));
  // A ring of one element is its own mean: S is exactly the identity there.
  if (filter.is_identity() || n == 1) {
    if (!same_storage(output, input)) {
      Tensor out = output;
      torch::stable::copy_(out, input);
    }
    return;
  }
  if (choose_backend(requested, n, filter) == SmoothBackend::Direct) {
    direct_smooth(input, output, filter);
  } else {
    fft_smooth(aten::flat(input), aten::flat(output), sigma, order);
  }
}

// A fresh output is written once, so its page faults can cost more than the
// smoothing itself (about 2 ns per element with 4 KiB pages on the machines
// we measured). Asking for transparent huge pages on the whole pages inside a
// large buffer cuts the number of faults 512-fold; as PyTorch's own
// allocator does under THP_MEM_ALLOC_ENABLE, and harmless where THP is off.
void advise_huge_pages(const Tensor& fresh) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHugePage = uintptr_t{1} << 21;
  const size_t bytes = static_cast<size_t>(fresh.numel()) * fresh.element_size();
  if (bytes < 4 * kHugePage) {
    return;
  }
  const auto start = reinterpret_cast<uintptr_t>(fresh.const_data_ptr());
  const uintptr_t first = (start + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (start + bytes) & ~(kHugePage - 1);
  if (last > first) {
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#else
  (void)fresh;
#endif
}

Tensor laplacian_smooth_cpu(const Tensor& self, double sigma, int64_t order, std::string backend) {
  check_smooth_args(self, sigma, order, backend);
  const Tensor input = contiguous_as(self, compute_dtype(self.scalar_type()));
  const Tensor output = torch::stable::empty(self.sizes(), input.scalar_type(), std::nullopt, input.device());
  advise_huge_pages(output);
  smooth_into(input, output, sigma, order, parse_backend(backend));
  return as_dtype(output, self.scalar_type());
}

void laplacian_smooth_cpu_(Tensor self, double sigma, int64_t order, std::string backend) {
  check_smooth_args(self, sigma, order, backend);
  if (self.is_contiguous() && self.scalar_type() == compute_dtype(self.scalar_type())) {
    smooth_into(self, self, sigma, order, parse_backend(backend));
  } else {
    torch::stable::copy_(self, laplacian_smooth_cpu(self, sigma, order, backend));
  }
}

void check_direct_route_cpu(const Tensor& like, double sigma, int64_t order) {
  check_sigma(sigma);
  check_order(order);
  const auto filter =
      core::make_recursive_filter(sigma, order, truncation_tolerance(compute_dtype(like.scalar_type())));
  if (!filter.is_identity()) {
    choose_backend(SmoothBackend::Direct, like.numel(), filter);  // raises the route's own error
  }
}

Tensor laplacian_smooth_shard_cpu(const Tensor& shard, const Tensor& left, const Tensor& right, double sigma,
                                  int64_t order) {
  check_shard_args(shard, left, right, sigma, order);
  const ScalarType dtype = compute_dtype(shard.scalar_type());
  const auto filter = core::make_recursive_filter(sigma, order, truncation_tolerance(dtype));
  if (filter.is_identity() || shard.numel() == 0) {
    return torch::stable::clone(shard);
  }
  check(direct_supports(filter), "laplacian_smooth_shard: the direct route cannot apply sigma=", sigma,
        ", order=", order, " (orders up to ", kMaxDirectOrder, ", warm-ups up to ", core::kMaxWarmup,
        " elements); gather the ring instead");
  const int64_t warmup = filter.warmup;
  check_halo_lengths(left, right, warmup);
  const Tensor input = aten::flat(contiguous_as(shard, dtype));
  // Narrowed 1-D contiguous tensors stay contiguous.
  Tensor l = aten::flat(contiguous_as(left, dtype));
  Tensor r = aten::flat(contiguous_as(right, dtype));
  const Tensor l_tail = torch::stable::narrow(l, 0, left.numel() - warmup, warmup);
  const Tensor r_head = torch::stable::narrow(r, 0, 0, warmup);
  const Tensor output = torch::stable::empty_like(input);
  direct_smooth_shard(input, l_tail, r_head, output, filter);
  return as_dtype(torch::stable::reshape(output, shard.sizes()), shard.scalar_type());
}

}  // namespace
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CPU, m) {
  m.impl("laplacian_smooth", TORCH_BOX(&torch_mlsgd::ops::cpu::laplacian_smooth_cpu));
  m.impl("laplacian_smooth_", TORCH_BOX(&torch_mlsgd::ops::cpu::laplacian_smooth_cpu_));
  m.impl("laplacian_smooth_shard", TORCH_BOX(&torch_mlsgd::ops::cpu::laplacian_smooth_shard_cpu));
  m.impl("check_direct_route", TORCH_BOX(&torch_mlsgd::ops::cpu::check_direct_route_cpu));
}
