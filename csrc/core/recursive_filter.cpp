#include "core/recursive_filter.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <stdexcept>
#include <string>

namespace torch_mlsgd {
namespace core {
namespace {

using complex = std::complex<double>;

// The root of r^2 - (2 - w) r + 1 = 0 inside the unit circle.
// b^2 - 4 is formed as (-w)(4 - w) to avoid the cancellation of b*b - 4 when
// |w| is small (large sigma), and r = 2 / (b + s) avoids the cancellation of
// (b - s) / 2 when |w| is large (small sigma).
complex pole_inside_unit_circle(complex w) {
  const complex b = 2.0 - w;
  complex s = std::sqrt(-w) * std::sqrt(4.0 - w);
  if (std::abs(b + s) < std::abs(b - s)) {
    s = -s;
  }
  return 2.0 / (b + s);
}

// log(1 + e^x) without overflow.
double log1p_exp(double x) { return x > 30.0 ? x : std::log1p(std::exp(x)); }

// Smallest L with (L + p)^(p-1) * radius^L <= exp(log_target): the impulse
// response of p cascaded poles of modulus <= radius is bounded by
// C(j + p - 1, p - 1) radius^j, so this bounds the truncated tail.
// Returns -1 when L would exceed kMaxWarmup (or the pole rounds to 1).
int64_t warmup_length(double radius, int64_t order, double log_target) {
  const double log_r = std::log(radius);
  if (!(log_r < 0.0) || !std::isfinite(log_target)) {
    return -1;
  }
  double length = log_target / log_r;
  for (int iteration = 0; iteration < 20; ++iteration) {
    const double next =
        (log_target - static_cast<double>(order - 1) * std::log(length + static_cast<double>(order))) / log_r;
    if (std::abs(next - length) < 0.5) {
      length = next;
      break;
    }
    length = next;
  }
  if (!(length <= static_cast<double>(kMaxWarmup))) {
    return -1;
  }
  return static_cast<int64_t>(std::ceil(std::max(length, 1.0)));
}

}  // namespace

RecursiveFilter make_recursive_filter(double sigma, int64_t order, double tolerance) {
  if (!(sigma >= 0.0) || !std::isfinite(sigma)) {
    throw std::invalid_argument("make_recursive_filter: invalid sigma " + std::to_string(sigma));
  }
  if (order < 1) {
    throw std::invalid_argument("make_recursive_filter: invalid order " + std::to_string(order));
  }
  if (!(tolerance > 0.0 && tolerance < 1.0)) {
    throw std::invalid_argument("make_recursive_filter: invalid tolerance " + std::to_string(tolerance));
  }
  RecursiveFilter filter;
  const double p = static_cast<double>(order);
  // S = I - sigma (-L)^p + O(sigma^2) and |(-L)^p| <= 4^p: below 1e-17 the
  // operator is the identity to double rounding (and 1/sigma would overflow).
  if (sigma == 0.0 || std::log(sigma) + p * std::log(4.0) < std::log(1e-17)) {
    return filter;
  }
  const double root_modulus = std::pow(sigma, -1.0 / p);
  double gain = 1.0 / sigma;
  // Roots m and p-1-m are conjugate; m = (p-1)/2 (odd p) is the real root -rho.
  for (int64_t m = 0; 2 * m + 1 <= order; ++m) {
    const double angle = M_PI * static_cast<double>(2 * m + 1) / p;
    const complex w = 2 * m + 1 == order ? complex(-root_modulus, 0.0) : std::polar(root_modulus, angle);
    const complex r = pole_inside_unit_circle(w);
    if (2 * m + 1 == order) {
      filter.sections.push_back({r.real(), 0.0});
      gain *= r.real();
    } else {
      filter.sections.push_back({2.0 * r.real(), std::norm(r)});
      gain *= std::norm(r);
    }
    filter.pole_radius = std::max(filter.pole_radius, std::abs(r));
  }
  filter.gain = gain;

  // The truncated start state errs by at most tail * max|input|; the output is
  // at least |input| / (1 + 4^p sigma) in norm, and the anti-causal pass can
  // scale the state error by up to (1 - radius)^-p before the gain shrinks it.
  const double radius = filter.pole_radius;
  const double log_amplification =
      log1p_exp(p * std::log(4.0) + std::log(sigma)) - p * std::log1p(-std::min(radius, 1.0 - 1e-300)) + std::log(10.0);
  filter.warmup = warmup_length(radius, order, std::log(tolerance) - log_amplification);
  return filter;
}

}  // namespace core
}  // namespace torch_mlsgd
