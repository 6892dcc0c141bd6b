#pragma once

// The Fourier symbol of A = I + sigma * (-L)^p, L the periodic 1-D Laplacian.
//
// Plain C++ with no torch dependency: the CPU kernels and the CUDA kernel layer
// share it, so both backends divide by exactly the same numbers.

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define TORCH_MLSGD_SYMBOL_HOST_DEVICE __host__ __device__
#else
#define TORCH_MLSGD_SYMBOL_HOST_DEVICE
#endif

namespace torch_mlsgd {
namespace core {

// d_k = 1 + sigma * (4 sin^2(pi k / n))^p, for 0 <= k < n.
//
// Computed from the closed form rather than by transforming a stencil vector:
// the stencil route folds wrapped coefficients onto each other when
// n < 2p + 1 (and is undefined for n = 1), the closed form is right for every n.
TORCH_MLSGD_SYMBOL_HOST_DEVICE inline double laplacian_symbol(int64_t k, int64_t n, double sigma, int64_t order) {
  // sin(pi k / n) evaluated on the reduced angle keeps full relative accuracy
  // near k = n, where pi * k / n loses bits against pi.
  const int64_t reduced = k <= n / 2 ? k : n - k;
  const double s = sin(M_PI * static_cast<double>(reduced) / static_cast<double>(n));
  // eigen^order for the integer order by squaring (pow() in double costs far
  // more per bin on a GPU); the eigenvalue of -L lies in [0, 4].
  double base = 4.0 * s * s;
  double power = 1.0;
  for (int64_t e = order; e > 0; e >>= 1) {
    if (e & 1) {
      power *= base;
    }
    base *= base;
  }
  return 1.0 + sigma * power;
}

}  // namespace core
}  // namespace torch_mlsgd
