#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/smooth_kernels.h"

#include <algorithm>
#include <cmath>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

// Costs in units of about a nanosecond (one element through one section),
// fitted to benchmarks/bench_backends.py on the project's machines: a real FFT
// round trip costs ~10 us to set up plus ~1.2 units per n log2 n; the direct
// route ~5 us plus, per first-order section, two sweeps of the ring and four
// warm-ups per chunk. The FFT wins only when the warm-up is long (large sigma) and the ring
// is short.
SmoothBackend choose_backend(SmoothBackend requested, int64_t n, const core::RecursiveFilter& filter) {
  if (requested != SmoothBackend::Auto) {
    check(requested != SmoothBackend::Direct || direct_supports(filter),
          "laplacian_smooth: the direct backend supports orders up to ", kMaxDirectOrder,
          " and sigma up to about 3e9 in float64, 5e9 in float32 (order 1; its warm-up would "
          "exceed ",
          core::kMaxWarmup, " elements); use backend='fft' or 'auto'");
    return requested;
  }
  if (!direct_supports(filter)) {
    return SmoothBackend::FFT;
  }
  constexpr double kDirectSetup = 5e3;
  constexpr double kFftSetup = 1e4;
  constexpr double kFftPerElementLog2 = 1.2;
  const double elements = static_cast<double>(n);
  // A second-order section costs about three first-order ones.
  double sections = 0.0;
  for (const auto& section : filter.sections) {
    sections += section.a2 == 0.0 ? 1.0 : 3.0;
  }
  const double target = static_cast<double>(chunk_length(filter.warmup));
  const double chunks = std::max(1.0, std::floor(elements / target));
  const double direct = kDirectSetup + sections * (2.0 * elements + 4.0 * chunks * static_cast<double>(filter.warmup));
  const double fft = kFftSetup + kFftPerElementLog2 * elements * std::log2(std::max(elements, 2.0));
  return direct <= fft ? SmoothBackend::Direct : SmoothBackend::FFT;
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
