#pragma once

// Independent float64 references for the smoothing operator, written from the
// definitions in docs/design.md §1 and §3 rather than from the library's code;
// and, at the end, what the optimizer tests share: their gradient field, step
// loops and checkpoint round trip.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
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
inline std::vector<torch::Tensor> smooth_gradients(const std::vector<torch::Tensor>& grads, const std::string& flatten,
                                                   double sigma, int64_t order) {
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

// ---------------------------------------------------------- optimizer tests --

// A deterministic, nonlinear gradient field: the step depends on the parameters.
inline torch::Tensor gradient_of(const torch::Tensor& p) { return torch::sin(3.0 * p) + 0.5 * p; }

inline void set_gradients(const std::vector<torch::Tensor>& params) {
  for (const auto& p : params) {
    p.mutable_grad() = gradient_of(p.detach());
  }
}

// `steps` steps on gradient_of's field.
inline void train(torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& params, int steps) {
  for (int step = 0; step < steps; ++step) {
    set_gradients(params);
    optimizer.step();
  }
}

// `steps` steps of two optimizers on the same gradient field of their own parameters.
inline void step_side_by_side(torch::optim::Optimizer& ours, torch::optim::Optimizer& theirs,
                              const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& their_params,
                              int steps) {
  for (int step = 0; step < steps; ++step) {
    set_gradients(params);
    set_gradients(their_params);
    ours.step();
    theirs.step();
  }
}

// Copies of the parameters' values (in `dtype`, else in their own) as new
// leaves that require gradients.
inline std::vector<torch::Tensor> copies_of(const std::vector<torch::Tensor>& params,
                                            c10::optional<torch::ScalarType> dtype = c10::nullopt) {
  std::vector<torch::Tensor> copies;
  for (const auto& p : params) {
    copies.push_back(
        p.detach().to(dtype.value_or(p.scalar_type()), /*non_blocking=*/false, /*copy=*/true).requires_grad_(true));
  }
  return copies;
}

inline ::testing::AssertionResult all_equal(const std::vector<torch::Tensor>& actual,
                                            const std::vector<torch::Tensor>& expected) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << actual.size() << " tensors, expected " << expected.size();
  }
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!torch::equal(actual[i], expected[i])) {
      return ::testing::AssertionFailure() << "tensor " << i << " differs";
    }
  }
  return ::testing::AssertionSuccess();
}

// torch::save of `optimizer` to a file `name` in the tests' temporary folder,
// torch::load of it into `resumed`, and the file removed.
template <typename Optimizer>
void save_and_load(const Optimizer& optimizer, Optimizer& resumed, const std::string& name) {
  const std::string path = ::testing::TempDir() + name;
  torch::save(optimizer, path);
  torch::load(resumed, path);
  std::remove(path.c_str());
}

// 3 steps with `options`, saved and loaded into an optimizer made with `other`
// options (the file's replace them), then 3 more steps of both: bit for bit
// the uninterrupted run.
template <typename Optimizer, typename Options>
void expect_checkpoint_resumes_bit_for_bit(const std::vector<torch::Tensor>& params, const Options& options,
                                           const Options& other, const std::string& name) {
  Optimizer optimizer(params, options);
  train(optimizer, params, 3);
  const std::vector<torch::Tensor> resumed_params = copies_of(params);
  Optimizer resumed(resumed_params, other);
  save_and_load(optimizer, resumed, name);
  EXPECT_TRUE(static_cast<const Options&>(resumed.param_groups()[0].options()) == options);
  step_side_by_side(optimizer, resumed, params, resumed_params, 3);
  EXPECT_TRUE(all_equal(params, resumed_params));
}

// `f()` throws a c10::ValueError whose message holds `needle`.
template <typename F>
void expect_value_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected a ValueError mentioning '" << needle << "'";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace testing
}  // namespace torch_mlsgd
