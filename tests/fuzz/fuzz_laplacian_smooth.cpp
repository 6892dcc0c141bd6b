// libFuzzer target for the smoothing op and the fused step.
//
// The input bytes choose a dtype, a backend, an order, sigma and the data;
// the target checks what must hold for any input: valid arguments give a
// finite result of the input's shape whose mean is the input's and whose norm
// does not grow; in-place and out-of-place agree; the fused step agrees with
// the composite formulation; invalid arguments raise c10::Error and leave the
// tensor unchanged. A failed check aborts, which libFuzzer reports.

#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <string>

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

template <typename T>
T take(const uint8_t*& data, size_t& size) {
  T value{};
  if (size >= sizeof(T)) {
    std::memcpy(&value, data, sizeof(T));
    data += sizeof(T);
    size -= sizeof(T);
  }
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = [] {
    torch::set_num_threads(1);
    return true;
  }();
  (void)once;
  const uint8_t flags = take<uint8_t>(data, size);
  const bool use_double = flags & 1;
  const char* backends[] = {"auto", "fft", "direct"};
  const char* backend = backends[(flags >> 1) % 3];
  const int64_t order = 1 + ((flags >> 3) & 3);
  const bool check_step = flags & 0x20;
  double sigma = take<double>(data, size);
  // Mostly sensible sigmas, sometimes raw bytes (negative, NaN, huge: must raise or work).
  if (!(flags & 0x40) && std::isfinite(sigma)) {
    sigma = std::fmod(std::fabs(sigma), 1e6);
  }

  const size_t element = use_double ? sizeof(double) : sizeof(float);
  const int64_t n = static_cast<int64_t>(std::min<size_t>(size / element, 4096));
  const auto dtype = use_double ? torch::kDouble : torch::kFloat;
  torch::Tensor v = torch::empty({n}, dtype);
  if (n > 0) {
    std::memcpy(v.data_ptr(), data, static_cast<size_t>(n) * element);
  }
  const bool finite_input = n == 0 || torch::isfinite(v).all().item<bool>();
  const double scale = n == 0 ? 0.0 : v.to(torch::kDouble).abs().max().item<double>();
  if (!finite_input || scale > 1e30) {
    return 0;  // overflowing sums are outside the contract
  }

  const bool valid = std::isfinite(sigma) && sigma >= 0;
  // Results below the normal range carry no relative precision (denormals).
  const double floor =
      16 * (use_double ? std::numeric_limits<double>::min() : static_cast<double>(std::numeric_limits<float>::min()));
  const torch::Tensor before = v.clone();
  try {
    torch::Tensor out = torch_mlsgd::laplacian_smooth(v, sigma, order, backend);
    require(valid, "an invalid sigma was accepted");
    require(out.sizes() == v.sizes() && out.scalar_type() == dtype, "shape or dtype changed");
    require(torch::equal(v, before), "the out-of-place op changed its input");
    if (n > 0) {
      require(torch::isfinite(out).all().item<bool>(), "finite input gave a non-finite result");
      const double tol = use_double ? 1e-9 : 2e-4;
      const torch::Tensor vd = v.to(torch::kDouble);
      const torch::Tensor od = out.to(torch::kDouble);
      require(std::fabs(od.mean().item<double>() - vd.mean().item<double>()) <= tol * scale + floor,
              "the mean changed");
      require(od.norm().item<double>() <= vd.norm().item<double>() * (1 + tol) + tol * scale + floor, "the norm grew");
      torch::Tensor in_place = v.clone();
      torch_mlsgd::laplacian_smooth_(in_place, sigma, order, backend);
      require(torch::allclose(in_place, out, tol, tol * scale + floor), "in-place and out-of-place differ");
    }
    if (check_step && n > 0) {
      // The fused step on a contiguous tensor against the staged one on a
      // strided parameter (stepped as a contiguous copy, then written back).
      torch::Tensor p1 = torch::zeros({n}, dtype);
      torch::Tensor p2 = torch::zeros({2 * n}, dtype).slice(0, 0, 2 * n, 2);
      torch::Tensor b1 = torch::zeros({n}, dtype);
      torch::Tensor b2 = torch::zeros({n}, dtype);
      const auto options = torch_mlsgd::LSGDOptions(0.1).sigma(sigma).order(order).momentum(0.9).backend(backend);
      torch_mlsgd::lsgd_step_({p1}, {v}, {b1}, {true}, options);
      torch_mlsgd::lsgd_step_({p2}, {v}, {b2}, {true}, options);
      const double tol = use_double ? 1e-9 : 2e-4;
      require(torch::allclose(p1, p2, tol, tol * 0.1 * scale + floor), "fused and staged steps differ");
    }
  } catch (const std::exception& e) {
    // The LibTorch API raises c10::Error, the op library (stable ABI) std::runtime_error.
    // The direct route refuses sigmas whose warm-up is too long (beyond about
    // 3e9 in float64, 5e9 in float32, at order 1); everything else valid must work.
    const bool direct_limit = std::strstr(e.what(), "direct backend supports") != nullptr;
    require(!valid || direct_limit, "a valid call raised");
    require(torch::equal(v, before), "a failed call changed its input");
  }
  return 0;
}
