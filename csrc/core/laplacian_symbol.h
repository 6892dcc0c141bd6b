#pragma once

// The Fourier symbol of A = I + sigma * (-L)^p, L the periodic 1-D Laplacian.
//
// Plain C++ with no torch dependency: the CPU kernels and the CUDA kernel layer
// share it, so both backends divide by exactly the same numbers.

#include <cmath>
#include <cstdint>

namespace torch_mlsgd {
namespace core {

// d_k = 1 + sigma * (4 sin^2(pi k / n))^p, for 0 <= k < n.
//
// Computed from the closed form rather than by transforming a stencil vector:
// the stencil route folds wrapped coefficients onto each other when
// n < 2p + 1 (and is undefined for n = 1), the closed form is right for every n.
inline double laplacian_symbol(int64_t k, int64_t n, double sigma, int64_t order) {
  // sin(pi k / n) evaluated on the reduced angle keeps full relative accuracy
  // near k = n, where pi * k / n loses bits against pi.
  const int64_t reduced = k <= n / 2 ? k : n - k;
  const double s = std::sin(M_PI * static_cast<double>(reduced) / static_cast<double>(n));
  const double eigen = 4.0 * s * s;  // eigenvalue of -L, in [0, 4]
  return 1.0 + sigma * std::pow(eigen, static_cast<double>(order));
}

}  // namespace core
}  // namespace torch_mlsgd
