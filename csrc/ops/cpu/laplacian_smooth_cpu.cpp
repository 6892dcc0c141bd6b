// CPU kernels of mlsgd::laplacian_smooth and mlsgd::laplacian_smooth_:
// dtype handling, the choice of route, and the registration.

#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/smooth_kernels.h"
#include "ops/smooth_args.h"

#include <ATen/Functions.h>
#include <torch/library.h>

#include <cmath>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace torch_mlsgd {
namespace ops {
namespace cpu {
namespace {

// output = S(input) for contiguous float/double tensors; output may alias input.
void smooth_into(const at::Tensor& input, const at::Tensor& output, double sigma, int64_t order,
                 SmoothBackend requested) {
  const int64_t n = input.numel();
  if (n == 0) {
    return;
  }
  const auto filter =
      core::make_recursive_filter(sigma, order, truncation_tolerance(input.scalar_type()));
  // A ring of one element is its own mean: S is exactly the identity there.
  if (filter.is_identity() || n == 1) {
    if (!output.is_same(input)) {
      output.copy_(input);
    }
    return;
  }
  if (choose_backend(requested, n, filter) == SmoothBackend::Direct) {
    direct_smooth(input, output, filter);
  } else {
    fft_smooth(input.view({n}), output.view({n}), sigma, order);
  }
}

// A fresh output is written once, so its page faults can cost more than the
// smoothing itself (about 2 ns per element with 4 KiB pages on the machines
// we measured). Asking for transparent huge pages on the whole pages inside a
// large buffer cuts the number of faults 512-fold; as PyTorch's own
// allocator does under THP_MEM_ALLOC_ENABLE, and harmless where THP is off.
void advise_huge_pages(const at::Tensor& fresh) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHugePage = uintptr_t{1} << 21;
  const size_t bytes = fresh.nbytes();
  if (bytes < 4 * kHugePage) {
    return;
  }
  const auto start = reinterpret_cast<uintptr_t>(fresh.data_ptr());
  const uintptr_t first = (start + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (start + bytes) & ~(kHugePage - 1);
  if (last > first) {
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#else
  (void)fresh;
#endif
}

at::Tensor laplacian_smooth_cpu(const at::Tensor& self, double sigma, int64_t order,
                                c10::string_view backend) {
  check_smooth_args(self, sigma, order, backend);
  const at::Tensor input = self.to(compute_dtype(self.scalar_type())).contiguous();
  at::Tensor output = at::empty_like(input, at::MemoryFormat::Contiguous);
  advise_huge_pages(output);
  smooth_into(input, output, sigma, order, parse_backend(backend));
  return output.to(self.scalar_type());
}

void laplacian_smooth_cpu_(at::Tensor& self, double sigma, int64_t order, c10::string_view backend) {
  check_smooth_args(self, sigma, order, backend);
  if (self.is_contiguous() && self.scalar_type() == compute_dtype(self.scalar_type())) {
    smooth_into(self, self, sigma, order, parse_backend(backend));
  } else {
    self.copy_(laplacian_smooth_cpu(self, sigma, order, backend));
  }
}

at::Tensor laplacian_smooth_shard_cpu(const at::Tensor& shard, const at::Tensor& left,
                                      const at::Tensor& right, double sigma, int64_t order) {
  check_shard_args(shard, left, right, sigma, order);
  const at::ScalarType dtype = compute_dtype(shard.scalar_type());
  const auto filter = core::make_recursive_filter(sigma, order, truncation_tolerance(dtype));
  if (filter.is_identity() || shard.numel() == 0) {
    return shard.clone();
  }
  TORCH_CHECK_VALUE(direct_supports(filter), "laplacian_smooth_shard: the direct route cannot "
                    "apply sigma=", sigma, ", order=", order, " (orders up to ", kMaxDirectOrder,
                    ", warm-ups up to ", core::kMaxWarmup, " elements); gather the ring instead");
  const int64_t warmup = filter.warmup;
  check_halo_lengths(left, right, warmup);
  const at::Tensor input = shard.to(dtype).contiguous().view({-1});
  const at::Tensor l = left.to(dtype).contiguous().view({-1}).narrow(0, left.numel() - warmup, warmup);
  const at::Tensor r = right.to(dtype).contiguous().view({-1}).narrow(0, 0, warmup);
  at::Tensor output = at::empty_like(input);
  direct_smooth_shard(input, l.contiguous(), r.contiguous(), output, filter);
  return output.view(shard.sizes()).to(shard.scalar_type());
}

}  // namespace
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd

TORCH_LIBRARY_IMPL(mlsgd, CPU, m) {
  m.impl("laplacian_smooth", &torch_mlsgd::ops::cpu::laplacian_smooth_cpu);
  m.impl("laplacian_smooth_", &torch_mlsgd::ops::cpu::laplacian_smooth_cpu_);
  m.impl("laplacian_smooth_shard", &torch_mlsgd::ops::cpu::laplacian_smooth_shard_cpu);
}
