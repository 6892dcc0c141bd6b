#pragma once

// Factorisation of the smoothing operator into first-order recursions.
//
// The symbol of A = I + sigma (-L)^p is d(z) = 1 + sigma w^p with
// w = 2 - z - 1/z. Its p roots w_m = sigma^(-1/p) exp(i pi (2m+1) / p) each give
//     w - w_m = (1 / r_m) (1 - r_m z) (1 - r_m / z),   r_m + 1/r_m = 2 - w_m, |r_m| < 1,
// so S = A^{-1} = (prod_m r_m / sigma) * Anti * Causal, where Causal runs
// y_i = v_i + r y_{i-1} for every root and Anti runs x_i = y_i + r x_{i+1}.
// Conjugate roots are merged into real second-order sections so that every
// intermediate value is real (and can be stored in the caller's buffer).
//
// Plain C++ with no torch dependency, shared by the CPU and CUDA backends.

#include <cstdint>
#include <vector>

namespace torch_mlsgd {
namespace core {

// One real section of the cascade: y_i = x_i + a1 * y_{i-1} - a2 * y_{i-2}.
// a2 == 0 for the first-order section of a real root.
// The longest warm-up the direct route accepts (its start states keep one
// warm-up of float64 per thread).
constexpr int64_t kMaxWarmup = int64_t{1} << 22;
// The highest order the CPU direct route takes (two poles per section).
constexpr int64_t kMaxDirectOrder = 64;

struct FilterSection {
  double a1;
  double a2;
};

struct RecursiveFilter {
  // Applied causally in this order, then anti-causally (same coefficients).
  std::vector<FilterSection> sections;
  // S v = gain * Anti(Causal(v)).
  double gain = 1.0;
  // How many preceding elements a zero-initialised cascade must see so that its
  // state equals the periodic one to the requested tolerance, relative to the
  // output (see make_recursive_filter). May exceed the ring length: a warm-up
  // then wraps around the ring, which converges to the exact periodic start.
  // -1 when it would exceed kMaxWarmup: a pole so close to 1 (sigma beyond
  // about 3e9 in float64, 5e9 in float32, at order 1) that only the FFT route can apply the filter.
  int64_t warmup = 0;
  // Largest pole modulus, max_m |r_m| (0 for the identity).
  double pole_radius = 0.0;

  bool is_identity() const { return sections.empty(); }
  bool is_single_first_order() const { return sections.size() == 1 && sections[0].a2 == 0.0; }
};

// Builds the cascade for S = (I + sigma (-L)^order)^{-1}.
// `tolerance` is the relative error allowed for truncating the periodic start
// values (use about the unit roundoff of the output type).
// Requires sigma >= 0 finite and order >= 1 (checked by the callers' argument
// validation; violated preconditions throw std::invalid_argument).
RecursiveFilter make_recursive_filter(double sigma, int64_t order, double tolerance);

}  // namespace core
}  // namespace torch_mlsgd
