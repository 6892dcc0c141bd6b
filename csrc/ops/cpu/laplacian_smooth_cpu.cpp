// CPU kernels of mlsgd::laplacian_smooth and mlsgd::laplacian_smooth_:
// dtype handling, the choice of route, and the registration.

#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/smooth_kernels.h"
#include "ops/smooth_args.h"

#include <ATen/Functions.h>
#include <torch/library.h>

#include <cmath>

namespace torch_mlsgd {
namespace ops {
namespace cpu {
namespace {

// Which route is cheaper on CPU for this ring. Costs are in units of one
// element through one first-order section, measured with
// benchmarks/bench_backends.py: a real FFT round trip costs about
// kFftPerElementLog * log2(n) units per element. The direct route sweeps
// the ring twice, plus two warm-ups per chunk (one chunk when n is small).
SmoothBackend choose_backend(SmoothBackend requested, int64_t n,
                             const core::RecursiveFilter& filter) {
  if (requested != SmoothBackend::Auto) {
    TORCH_CHECK_VALUE(requested != SmoothBackend::Direct ||
                          filter.sections.size() <= static_cast<size_t>(kMaxDirectSections),
                      "laplacian_smooth: the direct backend supports orders up to ",
                      kMaxDirectOrder, "; use backend='fft'");
    return requested;
  }
  if (filter.sections.size() > static_cast<size_t>(kMaxDirectSections)) {
    return SmoothBackend::FFT;
  }
  constexpr double kFftPerElementLog = 1.0;
  constexpr double kSectionCost = 1.0;
  const double sections = static_cast<double>(filter.sections.size());
  const double direct = 2.0 * sections * kSectionCost *
                        (static_cast<double>(n) + 2.0 * static_cast<double>(filter.warmup));
  const double fft = kFftPerElementLog * static_cast<double>(n) *
                     std::log2(static_cast<double>(std::max<int64_t>(n, 2)));
  return direct <= fft ? SmoothBackend::Direct : SmoothBackend::FFT;
}

// output = S(input) for contiguous float/double tensors; output may alias input.
void smooth_into(const at::Tensor& input, const at::Tensor& output, double sigma, int64_t order,
                 SmoothBackend requested) {
  const int64_t n = input.numel();
  if (n == 0) {
    return;
  }
  const auto filter =
      core::make_recursive_filter(sigma, order, direct_tolerance(input.scalar_type()));
  if (filter.is_identity()) {
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

at::Tensor laplacian_smooth_cpu(const at::Tensor& self, double sigma, int64_t order,
                                c10::string_view backend) {
  check_smooth_args(self, sigma, order, backend);
  const at::Tensor input = self.to(compute_dtype(self.scalar_type())).contiguous();
  at::Tensor output = at::empty_like(input, at::MemoryFormat::Contiguous);
  smooth_into(input, output, sigma, order, parse_backend(backend));
  return output.to(self.scalar_type());
}

at::Tensor& laplacian_smooth_cpu_(at::Tensor& self, double sigma, int64_t order,
                                  c10::string_view backend) {
  check_smooth_args(self, sigma, order, backend);
  if (self.is_contiguous() && self.scalar_type() == compute_dtype(self.scalar_type())) {
    smooth_into(self, self, sigma, order, parse_backend(backend));
  } else {
    self.copy_(laplacian_smooth_cpu(self, sigma, order, backend));
  }
  return self;
}

}  // namespace
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd

TORCH_LIBRARY_IMPL(mlsgd, CPU, m) {
  m.impl("laplacian_smooth", &torch_mlsgd::ops::cpu::laplacian_smooth_cpu);
  m.impl("laplacian_smooth_", &torch_mlsgd::ops::cpu::laplacian_smooth_cpu_);
}
