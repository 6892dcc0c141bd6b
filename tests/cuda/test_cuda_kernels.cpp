// The CUDA kernel layer against host references, on raw device memory (no
// torch). Without a visible CUDA device every test is reported as skipped.

#include "core/recursive_filter.h"
#include "cuda/kernels/smoothing.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace kernels = torch_mlsgd::cuda;
using torch_mlsgd::core::make_recursive_filter;

// Evaluates `expr` once (it may launch work or end a capture).
#define CUDA_OK(expr)                                                             \
  do {                                                                            \
    const cudaError_t cuda_ok_status = (expr);                                    \
    ASSERT_EQ(cuda_ok_status, cudaSuccess) << cudaGetErrorString(cuda_ok_status); \
  } while (0)

// S(v) by a naive DFT in double (the closed-form symbol): independent of the
// factorisation the kernels use.
std::vector<double> dft_smooth(const std::vector<double>& v, double sigma, int64_t order) {
  const int64_t n = static_cast<int64_t>(v.size());
  std::vector<std::complex<double>> spectrum(n);
  for (int64_t k = 0; k < n; ++k) {
    std::complex<double> sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum += v[i] * std::polar(1.0, -2.0 * M_PI * static_cast<double>(k * i % n) / static_cast<double>(n));
    }
    const double s = std::sin(M_PI * static_cast<double>(k) / static_cast<double>(n));
    spectrum[k] = sum / (1.0 + sigma * std::pow(4.0 * s * s, static_cast<double>(order)));
  }
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    std::complex<double> sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      sum += spectrum[k] * std::polar(1.0, 2.0 * M_PI * static_cast<double>(k * i % n) / static_cast<double>(n));
    }
    out[i] = sum.real() / static_cast<double>(n);
  }
  return out;
}

// A v for the operator A = I + sigma (-L)^order of a periodic ring, by its
// stencil (L y_i = y_{i-1} - 2 y_i + y_{i+1}) in double: a reference at every
// size that shares nothing with the kernels' factorisation.
std::vector<double> apply_operator(const std::vector<double>& y, double sigma, int64_t order) {
  const int64_t n = static_cast<int64_t>(y.size());
  std::vector<double> w = y, next(n);
  for (int64_t p = 0; p < order; ++p) {
    for (int64_t i = 0; i < n; ++i) {
      next[i] = 2 * w[i] - w[(i + n - 1) % n] - w[(i + 1) % n];
    }
    w.swap(next);
  }
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = y[i] + sigma * w[i];
  }
  return out;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) {
    m = std::max(m, std::abs(x));
  }
  return m;
}

double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

// y = S(v) to `tol`: the stencil residual max|A y - v| within tol (1 + sigma 4^order)
// max|v| (the operator's norm times an error of tol max|v| in y) at every size, so
// that one wrong element at a chunk boundary fails; below 1200 elements also the
// naive DFT, by relative L2 and by max-abs error.
::testing::AssertionResult smooths(const std::vector<double>& y, const std::vector<double>& v, double sigma,
                                   int64_t order, double tol) {
  const double scale = max_abs(v);
  const double norm = 1 + sigma * std::pow(4.0, static_cast<double>(order));
  const auto r = apply_operator(y, sigma, order);
  double residual = 0;
  size_t worst = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::abs(r[i] - v[i]) > residual) {
      residual = std::abs(r[i] - v[i]);
      worst = i;
    }
  }
  if (residual > tol * norm * scale) {
    return ::testing::AssertionFailure() << "residual " << residual << " at " << worst << " > " << tol * norm * scale;
  }
  if (v.size() <= 1200) {
    const auto expected = dft_smooth(v, sigma, order);
    std::vector<double> diff(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      diff[i] = y[i] - expected[i];
    }
    if (max_abs(diff) > tol * max_abs(expected) || relative_error(y, expected) > tol) {
      return ::testing::AssertionFailure()
             << "against the DFT: max-abs " << max_abs(diff) << ", relative " << relative_error(y, expected);
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<double> random_vector(int64_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(n);
  for (auto& x : v) {
    x = normal(rng);
  }
  return v;
}

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    if (cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T)) != cudaSuccess) {
      ptr_ = nullptr;
    }
  }
  DeviceArray(const std::vector<double>& host) : DeviceArray(host.size()) { upload(host); }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return static_cast<T*>(ptr_); }
  void upload(const std::vector<double>& host) {
    std::vector<T> converted(host.begin(), host.end());
    cudaMemcpy(ptr_, converted.data(), n_ * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<double> download() const {
    std::vector<T> host(n_);
    cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return std::vector<double>(host.begin(), host.end());
  }

 private:
  void* ptr_ = nullptr;
  size_t n_;
};

// Device scratch for fft_smooth: one block reserved up front, handed out from
// its start again by each allocator(). Reuse is safe because a test's calls on
// one Scratch run on one stream; no cudaMalloc happens during a graph capture.
class Scratch {
 public:
  explicit Scratch(size_t capacity = size_t{64} << 20) : capacity_(capacity) {
    if (cudaMalloc(&base_, capacity) != cudaSuccess) {
      base_ = nullptr;
    }
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { cudaFree(base_); }
  kernels::ScratchAllocator allocator() {
    used_ = 0;
    return [this](size_t bytes) -> void* {
      const size_t aligned = (bytes + 255) / 256 * 256;
      if (base_ == nullptr || used_ + aligned > capacity_) {
        return nullptr;
      }
      void* p = static_cast<char*>(base_) + used_;
      used_ += aligned;
      return p;
    };
  }

 private:
  void* base_ = nullptr;
  size_t capacity_;
  size_t used_ = 0;
};

size_t shared_limit() {
  int device = 0;
  cudaGetDevice(&device);
  return kernels::direct_shared_limit(device);
}

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError();  // clear the sticky "no device" error
      GTEST_SKIP() << "no CUDA device visible";
    }
  }
};

const std::vector<int64_t> kSizes = {2, 3, 100, 1000, 8224, 3 * 8224 + 17, 100003};

// A random ring of n elements (from `seed`) smoothed by the direct route with
// the filter f made for (sigma, order): S(v) to `tol` (smooths).
template <typename T>
void expect_direct_route_smooths(int64_t n, unsigned seed, const kernels::DeviceFilter& f, double sigma, int64_t order,
                                 double tol) {
  const auto v = random_vector(n, seed);
  DeviceArray<T> in(v), out(static_cast<size_t>(n));
  const kernels::SmoothRing<T> ring{in.get(), out.get(), n};
  CUDA_OK(kernels::direct_smooth(&ring, 1, f, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT_TRUE(smooths(out.download(), v, sigma, order, tol));
}

template <typename T>
void check_direct(double tol) {
  for (int64_t n : kSizes) {
    for (int64_t order : {1, 2, 3}) {
      for (double sigma : {0.5, 1.0, 30.0}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " order=" + std::to_string(order) + " sigma=" + std::to_string(sigma));
        kernels::DeviceFilter f;
        ASSERT_TRUE(
            kernels::make_device_filter(make_recursive_filter(sigma, order, 1e-17), sizeof(T), shared_limit(), &f));
        ASSERT_NO_FATAL_FAILURE(expect_direct_route_smooths<T>(n, 1, f, sigma, order, tol));
      }
    }
  }
}

TEST_F(CudaKernels, DirectRouteMatchesReferenceFloat) { check_direct<float>(1e-5); }
TEST_F(CudaKernels, DirectRouteMatchesReferenceDouble) { check_direct<double>(1e-10); }

template <typename T>
void check_fft(double tol) {
  for (int64_t n : kSizes) {
    for (int64_t batch : {1, 3}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " batch=" + std::to_string(batch));
      std::vector<double> v = random_vector(n * batch, 2);
      DeviceArray<T> in(v), out(static_cast<size_t>(n * batch));
      Scratch scratch;
      CUDA_OK(kernels::fft_smooth(in.get(), out.get(), n, batch, 2.0, 2, scratch.allocator(), nullptr));
      CUDA_OK(cudaDeviceSynchronize());
      const auto result = out.download();
      for (int64_t b = 0; b < batch; ++b) {
        const std::vector<double> ring(v.begin() + b * n, v.begin() + (b + 1) * n);
        const std::vector<double> got(result.begin() + b * n, result.begin() + (b + 1) * n);
        EXPECT_TRUE(smooths(got, ring, 2.0, 2, tol)) << "ring " << b;
      }
    }
  }
}

TEST_F(CudaKernels, FftRouteMatchesReferenceFloat) { check_fft<float>(1e-5); }
TEST_F(CudaKernels, FftRouteMatchesReferenceDouble) { check_fft<double>(1e-10); }

TEST_F(CudaKernels, OneLaunchSmoothsRingsOfDifferentLengthsOnAStream) {
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const std::vector<int64_t> sizes = {5, 9000, 70001, 1};
  std::vector<std::vector<double>> inputs;
  std::vector<std::unique_ptr<DeviceArray<float>>> ins, outs;
  std::vector<kernels::SmoothRing<float>> rings;
  for (size_t i = 0; i < sizes.size(); ++i) {
    inputs.push_back(random_vector(sizes[i], 10 + static_cast<unsigned>(i)));
    ins.push_back(std::make_unique<DeviceArray<float>>(inputs.back()));
    outs.push_back(std::make_unique<DeviceArray<float>>(static_cast<size_t>(sizes[i])));
    rings.push_back({ins.back()->get(), outs.back()->get(), sizes[i]});
  }
  kernels::DeviceFilter f;
  ASSERT_TRUE(kernels::make_device_filter(make_recursive_filter(1.0, 1, 1e-9), sizeof(float), shared_limit(), &f));
  CUDA_OK(kernels::direct_smooth(rings.data(), static_cast<int64_t>(rings.size()), f, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(smooths(outs[i]->download(), inputs[i], 1.0, 1, 1e-5)) << "ring " << i;
  }
  cudaStreamDestroy(stream);
}

// The fused update against the rule written out on the host.
TEST_F(CudaKernels, FusedUpdateFollowsTheRule) {
  const int64_t n = 50000;
  const auto g = random_vector(n, 3), w0 = random_vector(n, 4), b0 = random_vector(n, 5);
  const kernels::UpdateRule rule{{0.1, 0.9, 0.0, 0.01, true}};
  for (bool fresh : {true, false}) {
    DeviceArray<double> grad(g), param(w0), buffer(b0);
    const auto filter = make_recursive_filter(1.0, 1, 1e-17);
    kernels::DeviceFilter f;
    ASSERT_TRUE(kernels::make_device_filter(filter, sizeof(double), shared_limit(), &f));
    const kernels::UpdateRing<double> ring{grad.get(), param.get(), buffer.get(), n, fresh, -filter.gain};
    CUDA_OK(kernels::direct_update(&ring, 1, f, rule, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    DeviceArray<double> smoothed(static_cast<size_t>(n));
    const kernels::SmoothRing<double> smooth_ring{grad.get(), smoothed.get(), n};
    CUDA_OK(kernels::direct_smooth(&smooth_ring, 1, f, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    const auto s = smoothed.download();
    ASSERT_TRUE(smooths(s, g, 1.0, 1, 1e-10));
    const auto w = param.download(), b = buffer.download();
    for (int64_t i = 0; i < n; ++i) {
      double d = -s[i] + rule.update.weight_decay * w0[i];  // scale = -gain: maximizing
      const double expected_b = fresh ? d : rule.update.momentum * b0[i] + (1 - rule.update.dampening) * d;
      d = d + rule.update.momentum * expected_b;
      EXPECT_NEAR(b[i], expected_b, 1e-10);
      EXPECT_NEAR(w[i], w0[i] - rule.update.lr * d, 1e-10);
    }
  }
}

// The single-pass LSAdamW step against AdamW written out on the host
// (core::AdamWUpdate) on the direct route's smoothed gradient, with each ring's
// count read on the device, amsgrad and maximizing.
TEST_F(CudaKernels, DirectAdamWFollowsTheRule) {
  const std::vector<int64_t> sizes = {40000, 7};
  const std::vector<double> counts = {3.0, 1.0};
  const auto filter = make_recursive_filter(1.0, 1, 1e-17);
  kernels::DeviceFilter f;
  ASSERT_TRUE(kernels::make_device_filter(filter, sizeof(double), shared_limit(), &f));
  const kernels::AdamWRule rule{1e-2, 0.9, 0.999, 1e-3, 0.1, nullptr, nullptr};
  for (bool amsgrad : {false, true}) {
    std::vector<std::vector<double>> g, w0, m0, v0, vmax0;
    std::vector<std::unique_ptr<DeviceArray<double>>> grad, param, m, v, vmax;
    std::vector<std::unique_ptr<DeviceArray<float>>> step;
    std::vector<kernels::AdamWRing<double>> rings;
    for (size_t r = 0; r < sizes.size(); ++r) {
      const auto seed = 40 + 5 * static_cast<unsigned>(r);
      g.push_back(random_vector(sizes[r], seed));
      w0.push_back(random_vector(sizes[r], seed + 1));
      m0.push_back(random_vector(sizes[r], seed + 2));
      v0.push_back(random_vector(sizes[r], seed + 3));
      vmax0.push_back(random_vector(sizes[r], seed + 4));
      for (auto* moments : {&v0.back(), &vmax0.back()}) {
        for (double& x : *moments) {
          x = x * x;  // second moments are not negative
        }
      }
      grad.push_back(std::make_unique<DeviceArray<double>>(g.back()));
      param.push_back(std::make_unique<DeviceArray<double>>(w0.back()));
      m.push_back(std::make_unique<DeviceArray<double>>(m0.back()));
      v.push_back(std::make_unique<DeviceArray<double>>(v0.back()));
      vmax.push_back(std::make_unique<DeviceArray<double>>(vmax0.back()));
      step.push_back(std::make_unique<DeviceArray<float>>(std::vector<double>{counts[r]}));
      rings.push_back({grad.back()->get(), param.back()->get(), m.back()->get(), v.back()->get(),
                       amsgrad ? vmax.back()->get() : nullptr, step.back()->get(), sizes[r], -filter.gain});
    }
    CUDA_OK(kernels::direct_adamw(rings.data(), static_cast<int64_t>(rings.size()), f, rule, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    for (size_t r = 0; r < sizes.size(); ++r) {
      DeviceArray<double> smoothed(static_cast<size_t>(sizes[r]));
      const kernels::SmoothRing<double> smooth_ring{grad[r]->get(), smoothed.get(), sizes[r]};
      CUDA_OK(kernels::direct_smooth(&smooth_ring, 1, f, nullptr));
      CUDA_OK(cudaDeviceSynchronize());
      const auto s = smoothed.download();
      ASSERT_TRUE(smooths(s, g[r], 1.0, 1, 1e-10));
      const auto expected = torch_mlsgd::core::AdamWUpdate::at_step(rule.lr, rule.beta1, rule.beta2, rule.eps,
                                                                    rule.weight_decay, counts[r]);
      const auto w = param[r]->download(), mr = m[r]->download(), vr = v[r]->download();
      const auto vmaxr = vmax[r]->download();
      for (int64_t i = 0; i < sizes[r]; ++i) {
        double ew = w0[r][i], em = m0[r][i], ev = v0[r][i], evmax = vmax0[r][i];
        torch_mlsgd::core::AdamWUpdate::apply(-s[i], rule.lr, rule.beta1, rule.beta2, rule.eps, rule.weight_decay,
                                              expected.step_size, expected.bias_correction2_sqrt, &ew, &em, &ev,
                                              amsgrad ? &evmax : nullptr);
        EXPECT_NEAR(w[i], ew, 1e-10) << "ring " << r << " at " << i;
        EXPECT_NEAR(mr[i], em, 1e-10);
        EXPECT_NEAR(vr[i], ev, 1e-10);
        EXPECT_NEAR(vmaxr[i], amsgrad ? evmax : vmax0[r][i], 1e-10);
      }
    }
  }
}

// GradScaler's tensors, read by the update kernels on the device: a scaled input
// with its grad_scale steps as the unscaled input does (a power of two: exactly), and
// a nonzero found_inf leaves parameter and buffer as they were.
TEST_F(CudaKernels, UpdatesReadGradScaleAndFoundInfOnTheDevice) {
  const int64_t n = 30000;
  const auto g = random_vector(n, 6), w0 = random_vector(n, 7), b0 = random_vector(n, 8);
  std::vector<double> scaled_g(g);
  for (double& x : scaled_g) {
    x *= 1024.0;
  }
  const auto filter = make_recursive_filter(2.0, 1, 1e-9);
  kernels::DeviceFilter f;
  ASSERT_TRUE(kernels::make_device_filter(filter, sizeof(float), shared_limit(), &f));
  DeviceArray<float> scale(std::vector<double>{1024.0}), no_inf(std::vector<double>{0.0}),
      inf(std::vector<double>{1.0});
  for (bool direct : {true, false}) {
    auto step = [&](const std::vector<double>& input, const float* grad_scale, const float* found_inf) {
      DeviceArray<float> grad(input), param(w0), buffer(b0);
      const kernels::UpdateRule rule{{0.1, 0.9, 0.0, 0.01, false}, grad_scale, found_inf};
      const kernels::UpdateRing<float> ring{grad.get(), param.get(), buffer.get(),
                                            n,          false,       direct ? filter.gain : 1.0};
      // (EXPECT, not CUDA_OK's ASSERT: a lambda with a result cannot return early.)
      EXPECT_EQ(direct ? kernels::direct_update(&ring, 1, f, rule, nullptr)
                       : kernels::elementwise_update(&ring, 1, rule, nullptr),
                cudaSuccess);
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      return std::make_pair(param.download(), buffer.download());
    };
    const auto plain = step(g, nullptr, nullptr);
    const auto scaled = step(scaled_g, scale.get(), no_inf.get());
    EXPECT_EQ(scaled.first, plain.first) << (direct ? "direct" : "elementwise");
    EXPECT_EQ(scaled.second, plain.second) << (direct ? "direct" : "elementwise");
    const auto skipped = step(scaled_g, scale.get(), inf.get());
    const DeviceArray<float> w0_float(w0), b0_float(b0);  // the values as float32 stores them
    EXPECT_EQ(skipped.first, w0_float.download()) << (direct ? "direct" : "elementwise");
    EXPECT_EQ(skipped.second, b0_float.download()) << (direct ? "direct" : "elementwise");
  }
}

TEST_F(CudaKernels, ElementwiseUpdateOverSeveralRings) {
  const std::vector<int64_t> sizes = {3, 4096, 12345};
  const kernels::UpdateRule rule{{0.5, 0.0, 0.0, 0.1, false}};
  std::vector<std::vector<double>> g, w;
  std::vector<std::unique_ptr<DeviceArray<float>>> grads, params;
  std::vector<kernels::UpdateRing<float>> rings;
  for (size_t i = 0; i < sizes.size(); ++i) {
    g.push_back(random_vector(sizes[i], 20 + static_cast<unsigned>(i)));
    w.push_back(random_vector(sizes[i], 30 + static_cast<unsigned>(i)));
    grads.push_back(std::make_unique<DeviceArray<float>>(g.back()));
    params.push_back(std::make_unique<DeviceArray<float>>(w.back()));
    rings.push_back({grads.back()->get(), params.back()->get(), nullptr, sizes[i], false, 1.0});
  }
  CUDA_OK(kernels::elementwise_update(rings.data(), static_cast<int64_t>(rings.size()), rule, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto got = params[i]->download();
    for (int64_t j = 0; j < sizes[i]; ++j) {
      const double w0 = static_cast<float>(w[i][j]);
      const double d = static_cast<float>(g[i][j]) + rule.update.weight_decay * w0;
      EXPECT_NEAR(got[j], w0 - rule.update.lr * d, 1e-5);
    }
  }
}

// Orders 1..8 at sigma = 1 and at the largest sigma (on a doubling grid) whose
// warm-up still fits this device's shared memory: the longest halos the
// direct kernels take, on rings longer and shorter than a block.
template <typename T>
void check_orders_and_long_warmups(double tol) {
  const size_t limit = shared_limit();
  for (int64_t order = 1; order <= 2 * kernels::kMaxSections; ++order) {
    double largest = 1.0;
    kernels::DeviceFilter f;
    while (kernels::make_device_filter(make_recursive_filter(largest * 2, order, 1e-17), sizeof(T), limit, &f)) {
      largest *= 2;
    }
    for (double sigma : {1.0, largest}) {
      ASSERT_TRUE(kernels::make_device_filter(make_recursive_filter(sigma, order, 1e-17), sizeof(T), limit, &f));
      for (int64_t n : {int64_t{700}, 2 * kernels::kBlockRange + 5, int64_t{100003}}) {
        SCOPED_TRACE("order=" + std::to_string(order) + " sigma=" + std::to_string(sigma) + " n=" + std::to_string(n) +
                     " warmup=" + std::to_string(f.warmup));
        ASSERT_NO_FATAL_FAILURE(expect_direct_route_smooths<T>(n, 7, f, sigma, order, tol));
      }
    }
  }
}

TEST_F(CudaKernels, OrdersUpToEightAndWarmupsNearTheLimitFloat) { check_orders_and_long_warmups<float>(1e-5); }
TEST_F(CudaKernels, OrdersUpToEightAndWarmupsNearTheLimitDouble) { check_orders_and_long_warmups<double>(1e-10); }

TEST_F(CudaKernels, TheSharedMemoryLimitIsTheDevicesOwn) {
  int device = 0, optin = 0;
  CUDA_OK(cudaGetDevice(&device));
  CUDA_OK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  EXPECT_EQ(kernels::direct_shared_limit(device), static_cast<size_t>(optin));
}

// More rings than one launch's parameter table holds: several launches, each
// ring still smoothed and updated as its own.
TEST_F(CudaKernels, ManyRingsSpanSeveralLaunches) {
  const int64_t count = 2 * kernels::kRingsPerLaunch + 37;
  std::vector<std::vector<double>> inputs;
  std::vector<std::unique_ptr<DeviceArray<float>>> ins, outs, params;
  std::vector<kernels::SmoothRing<float>> rings;
  std::vector<kernels::UpdateRing<float>> updates;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t n = 2 + (i * 7919) % 3000;
    inputs.push_back(random_vector(n, 100 + static_cast<unsigned>(i)));
    ins.push_back(std::make_unique<DeviceArray<float>>(inputs.back()));
    outs.push_back(std::make_unique<DeviceArray<float>>(static_cast<size_t>(n)));
    params.push_back(std::make_unique<DeviceArray<float>>(std::vector<double>(n, 1.0)));
    rings.push_back({ins.back()->get(), outs.back()->get(), n});
    updates.push_back({ins.back()->get(), params.back()->get(), nullptr, n, false, 1.0});
  }
  kernels::DeviceFilter f;
  ASSERT_TRUE(kernels::make_device_filter(make_recursive_filter(1.0, 1, 1e-9), sizeof(float), shared_limit(), &f));
  CUDA_OK(kernels::direct_smooth(rings.data(), count, f, nullptr));
  const kernels::UpdateRule rule{{0.5, 0.0, 0.0, 0.0, false}};
  CUDA_OK(kernels::elementwise_update(updates.data(), count, rule, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  for (int64_t i = 0; i < count; ++i) {
    EXPECT_TRUE(smooths(outs[i]->download(), inputs[i], 1.0, 1, 1e-5)) << "ring " << i;
    const auto w = params[i]->download();
    for (size_t j = 0; j < w.size(); ++j) {
      ASSERT_NEAR(w[j], 1.0 - 0.5 * static_cast<float>(inputs[i][j]), 1e-6) << "ring " << i << " element " << j;
    }
  }
}

// cuFFT needs complex-aligned pointers: the kernel layer refuses others before
// anything runs (the ops copy such inputs first), and leaves no error behind.
TEST_F(CudaKernels, MisalignedFftInputIsRefusedBeforeAnythingRuns) {
  const int64_t n = 1000;
  const auto v = random_vector(n + 1, 8);
  DeviceArray<float> in(v), out(std::vector<double>(n + 1, 42.0));
  Scratch scratch;
  EXPECT_EQ(kernels::fft_smooth<float>(in.get() + 1, out.get(), n, 1, 1.0, 1, scratch.allocator(), nullptr),
            cudaErrorMisalignedAddress);
  EXPECT_EQ(kernels::fft_smooth<float>(in.get(), out.get() + 1, n, 1, 1.0, 1, scratch.allocator(), nullptr),
            cudaErrorMisalignedAddress);
  CUDA_OK(cudaDeviceSynchronize());
  for (double x : out.download()) {
    ASSERT_EQ(x, 42.0);
  }
  CUDA_OK(kernels::fft_smooth<float>(in.get(), out.get(), n, 1, 1.0, 1, scratch.allocator(), nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  auto got = out.download();
  got.resize(n);
  EXPECT_TRUE(smooths(got, std::vector<double>(v.begin(), v.begin() + n), 1.0, 1, 1e-5));
}

// Transforms of one size on two streams and from two threads at once: each
// caller checks out its own plans and work area, so none sees another's stream
// or scratch.
TEST_F(CudaKernels, OneSizeOnTwoStreamsAndTwoThreadsAtOnce) {
  const int64_t n = 65536 + 3, batch = 2;
  auto run = [&](unsigned seed, int rounds, std::string* failure) {
    cudaStream_t stream;
    if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
      *failure = "stream";
      return;
    }
    const auto v = random_vector(n * batch, seed);
    DeviceArray<double> in(v), out(static_cast<size_t>(n * batch));
    Scratch scratch;
    for (int r = 0; r < rounds; ++r) {
      if (kernels::fft_smooth(in.get(), out.get(), n, batch, 3.0, 1, scratch.allocator(), stream) != cudaSuccess) {
        *failure = "fft_smooth: " + kernels::last_fft_error();
        break;
      }
    }
    cudaStreamSynchronize(stream);
    const auto got = out.download();
    for (int64_t b = 0; b < batch && failure->empty(); ++b) {
      const std::vector<double> ring(v.begin() + b * n, v.begin() + (b + 1) * n);
      const auto result =
          smooths(std::vector<double>(got.begin() + b * n, got.begin() + (b + 1) * n), ring, 3.0, 1, 1e-10);
      if (!result) {
        *failure = result.message();
      }
    }
    cudaStreamDestroy(stream);
  };
  std::string first, second;
  std::thread a(run, 11u, 20, &first), b(run, 12u, 20, &second);
  a.join();
  b.join();
  EXPECT_TRUE(first.empty()) << first;
  EXPECT_TRUE(second.empty()) << second;
}

// The direct step and the FFT route captured in a CUDA graph and replayed:
// nothing is copied from host memory at launch, so replays equal eager steps.
TEST_F(CudaKernels, StepsReplayFromACudaGraph) {
  const int64_t n = 40000;
  const auto g = random_vector(n, 13), w0 = random_vector(n, 14);
  const auto filter = make_recursive_filter(1.0, 1, 1e-17);
  kernels::DeviceFilter f;
  ASSERT_TRUE(kernels::make_device_filter(filter, sizeof(double), shared_limit(), &f));
  const kernels::UpdateRule rule{{0.1, 0.9, 0.0, 0.0, false}};
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  DeviceArray<double> grad(g), eager_w(w0), eager_b(static_cast<size_t>(n)), graph_w(w0),
      graph_b(static_cast<size_t>(n));
  DeviceArray<double> eager_s(static_cast<size_t>(n)), graph_s(static_cast<size_t>(n));
  Scratch scratch;
  auto step = [&](double* w, double* b, double* s, bool fresh) {
    const kernels::UpdateRing<double> ring{grad.get(), w, b, n, fresh, filter.gain};
    cudaError_t status = kernels::direct_update(&ring, 1, f, rule, stream);
    return status != cudaSuccess ? status
                                 : kernels::fft_smooth(grad.get(), s, n, 1, 1.0, 1, scratch.allocator(), stream);
  };
  CUDA_OK(step(eager_w.get(), eager_b.get(), eager_s.get(), true));
  CUDA_OK(step(graph_w.get(), graph_b.get(), graph_s.get(), true));  // plans made outside the capture
  CUDA_OK(step(eager_w.get(), eager_b.get(), eager_s.get(), false));
  CUDA_OK(step(eager_w.get(), eager_b.get(), eager_s.get(), false));
  CUDA_OK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  const cudaError_t captured = step(graph_w.get(), graph_b.get(), graph_s.get(), false);
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  CUDA_OK(captured);
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  EXPECT_EQ(graph_w.download(), eager_w.download());
  EXPECT_EQ(graph_b.download(), eager_b.download());
  EXPECT_EQ(graph_s.download(), eager_s.download());
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

}  // namespace

// Exit status 77 when no device is visible (and the host-only tests passed),
// which CTest reports as "skipped" rather than "passed".
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  int devices = 0;
  const bool none = cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0;
  return result == 0 && none ? 77 : result;
}
