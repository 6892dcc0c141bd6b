#pragma once

// Independent float64 references for the smoothing operator, written from the
// definition in docs/design.md rather than from the library's code.

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace testing {

// A = I + sigma * (-L)^order as a dense float64 matrix, L the periodic Laplacian.
inline torch::Tensor dense_operator(int64_t n, double sigma, int64_t order) {
  torch::Tensor minus_laplacian = torch::zeros({n, n}, torch::kDouble);
  auto m = minus_laplacian.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    m[i][i] += 2.0;
    m[i][(i + n - 1) % n] -= 1.0;
    m[i][(i + 1) % n] -= 1.0;
  }
  torch::Tensor power = torch::eye(n, torch::kDouble);
  for (int64_t k = 0; k < order; ++k) {
    power = power.matmul(minus_laplacian);
  }
  return torch::eye(n, torch::kDouble) + sigma * power;
}

// S(v) by a dense solve (small n).
inline torch::Tensor dense_smooth(const torch::Tensor& v, double sigma, int64_t order) {
  const torch::Tensor flat = v.reshape({-1}).to(torch::kDouble);
  const int64_t n = flat.numel();
  return at::linalg_solve(dense_operator(n, sigma, order), flat.unsqueeze(1)).squeeze(1);
}

// S(v) by a complex FFT of the full spectrum (any n).
inline torch::Tensor fft_smooth(const torch::Tensor& v, double sigma, int64_t order) {
  const torch::Tensor flat = v.reshape({-1}).to(torch::kDouble);
  const int64_t n = flat.numel();
  torch::Tensor symbol = torch::empty({n}, torch::kDouble);
  auto d = symbol.accessor<double, 1>();
  for (int64_t k = 0; k < n; ++k) {
    const double s = std::sin(M_PI * static_cast<double>(k) / static_cast<double>(n));
    d[k] = 1.0 + sigma * std::pow(4.0 * s * s, static_cast<double>(order));
  }
  return torch::real(torch::fft::ifft(torch::fft::fft(flat) / symbol));
}

// Each gradient smoothed as an optimizer with this `flatten` does: each on its
// own ring ("tensor"), or all of them concatenated into one ring ("group"),
// returned in the gradients' shapes.
inline std::vector<torch::Tensor> smooth_gradients(const std::vector<torch::Tensor>& grads,
                                                   const std::string& flatten, double sigma, int64_t order) {
  std::vector<torch::Tensor> smoothed;
  if (flatten == "group") {
    std::vector<torch::Tensor> flat;
    for (const auto& g : grads) {
      flat.push_back(g.reshape({-1}));
    }
    const torch::Tensor ring = fft_smooth(torch::cat(flat), sigma, order);
    int64_t offset = 0;
    for (const auto& g : grads) {
      smoothed.push_back(ring.narrow(0, offset, g.numel()).view(g.sizes()));
      offset += g.numel();
    }
  } else {
    for (const auto& g : grads) {
      smoothed.push_back(fft_smooth(g, sigma, order).view(g.sizes()));
    }
  }
  return smoothed;
}

// A v with the (2 order + 1)-point periodic stencil, applied order times.
inline torch::Tensor apply_operator(const torch::Tensor& v, double sigma, int64_t order) {
  torch::Tensor x = v.reshape({-1}).to(torch::kDouble);
  torch::Tensor power = x;
  for (int64_t k = 0; k < order; ++k) {
    power = 2.0 * power - torch::roll(power, 1) - torch::roll(power, -1);
  }
  return x + sigma * power;
}

inline double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  const torch::Tensor a = actual.reshape({-1}).to(torch::kDouble);
  const torch::Tensor e = expected.reshape({-1}).to(torch::kDouble);
  const double scale = e.norm().item<double>();
  const double diff = (a - e).norm().item<double>();
  return scale == 0.0 ? diff : diff / scale;
}

}  // namespace testing
}  // namespace torch_mlsgd
