#pragma once

// What the op library takes from torch: its stable ABI only (torch/csrc/stable
// and torch/headeronly), so that one build loads into every torch from the
// floor named by TORCH_TARGET_VERSION on. The few ATen ops the kernels call
// that torch::stable does not wrap are reached here through the dispatcher's
// stable entry point, torch_call_dispatcher.

#include "core/checks.h"

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace torch_mlsgd {
namespace ops {

using Tensor = torch::stable::Tensor;
using ScalarType = torch::headeronly::ScalarType;

using core::words;

// Raises the message (RuntimeError in Python) unless it is empty; the
// messages come from core/checks.h or are composed with `words`.
inline void check(const std::string& error) {
  if (!error.empty()) {
    throw std::runtime_error(error);
  }
}

template <typename... Args>
void check(bool ok, const Args&... args) {
  if (!ok) {
    throw std::runtime_error(words(args...));
  }
}

// torch's floating-point types (is_floating_point), float8 included: the
// narrow ones are computed in float32 like half precision.
inline bool is_floating(ScalarType t) {
  switch (t) {
    case ScalarType::Float:
    case ScalarType::Double:
    case ScalarType::Half:
    case ScalarType::BFloat16:
    case ScalarType::Float8_e5m2:
    case ScalarType::Float8_e4m3fn:
    case ScalarType::Float8_e5m2fnuz:
    case ScalarType::Float8_e4m3fnuz:
    case ScalarType::Float8_e8m0fnu:
      return true;
    default:
      return false;
  }
}

inline bool is_complex(ScalarType t) {
  return t == ScalarType::ComplexHalf || t == ScalarType::ComplexFloat || t == ScalarType::ComplexDouble;
}

// Calls f(float{}) or f(double{}) for a float32 or float64 tensor type.
template <typename F>
void dispatch_float_double(ScalarType t, const char* what, F&& f) {
  if (t == ScalarType::Float) {
    f(float{});
  } else if (t == ScalarType::Double) {
    f(double{});
  } else {
    throw std::runtime_error(words(what, ": expected float32 or float64, got ", t));
  }
}

inline bool same_storage(const Tensor& a, const Tensor& b) {
  return a.const_data_ptr() == b.const_data_ptr() && a.numel() == b.numel();
}

namespace aten {

// The (first) result on the stack after a dispatcher call, owned by the caller.
template <typename T, size_t N>
T result(std::array<StableIValue, N>& stack) {
  return torch::stable::detail::to<T>(stack[0]);
}

template <size_t N>
void call(const char* name, const char* overload, std::array<StableIValue, N>& stack) {
  STABLE_TORCH_ERROR_CODE_CHECK(torch_call_dispatcher(name, overload, stack.data(), TORCH_ABI_VERSION));
}

inline Tensor fft_rfft(const Tensor& input) {
  using torch::stable::detail::from;
  std::array<StableIValue, 4> stack{from(input), from(std::optional<int64_t>()), from(int64_t{-1}),
                                    from(std::optional<std::string>())};
  call("aten::fft_rfft", "", stack);
  return result<Tensor>(stack);
}

inline Tensor fft_irfft(const Tensor& spectrum, int64_t n) {
  using torch::stable::detail::from;
  std::array<StableIValue, 4> stack{from(spectrum), from(std::optional<int64_t>(n)), from(int64_t{-1}),
                                    from(std::optional<std::string>())};
  call("aten::fft_irfft", "", stack);
  return result<Tensor>(stack);
}

// self *= other (broadcasting), in place.
inline void mul_(const Tensor& self, const Tensor& other) {
  using torch::stable::detail::from;
  std::array<StableIValue, 2> stack{from(self), from(other)};
  call("aten::mul_", "Tensor", stack);
  (void)result<Tensor>(stack);  // release the returned reference
}

// The 1-D concatenation of 1-D tensors.
inline Tensor cat(const std::vector<Tensor>& tensors) {
  using torch::stable::detail::from;
  std::array<StableIValue, 2> stack{from(tensors), from(int64_t{0})};
  call("aten::cat", "", stack);
  return result<Tensor>(stack);
}

inline Tensor flat(const Tensor& t) { return torch::stable::reshape(t, {-1}); }

}  // namespace aten
}  // namespace ops
}  // namespace torch_mlsgd

namespace torch_mlsgd {
namespace ops {

// mlsgd::laplacian_smooth through the dispatcher (the kernel of the input's device).
inline Tensor smooth_op(const Tensor& input, double sigma, int64_t order, const std::string& backend) {
  using torch::stable::detail::from;
  std::array<StableIValue, 4> stack{from(input), from(sigma), from(order), from(backend)};
  aten::call("mlsgd::laplacian_smooth", "", stack);
  return aten::result<Tensor>(stack);
}

}  // namespace ops
}  // namespace torch_mlsgd
