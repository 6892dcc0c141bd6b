#pragma once

// The argument rules of every op and optimizer, in one place and without
// torch: each function returns why a value is invalid, or an empty string.
// Each layer raises these messages with its own error type: the stable-ABI
// ops through STD_TORCH_CHECK (RuntimeError in Python), the LibTorch API as
// c10::ValueError, the Python package as ValueError (torch_mlsgd/_validation.py
// words them the same way).

#include "core/sigma_schedule.h"

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace torch_mlsgd {
namespace core {

// The arguments streamed into one message.
template <typename... Args>
std::string words(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

enum class SmoothBackend { Auto, FFT, Direct };

// Relative truncation tolerance of the direct route's start values for results
// computed in float64 or else float32: about their unit roundoff, with a margin
// (docs/design.md §2).
inline double truncation_tolerance(bool float64) { return float64 ? 1e-17 : 1e-9; }

std::string sigma_error(double sigma);
std::string order_error(int64_t order);
// "auto" | "fft" | "direct".
std::string backend_error(std::string_view name);
// Requires backend_error(name) to be empty.
SmoothBackend parse_backend(std::string_view name);

// The hyper-parameters of one LSGD step (lr, momentum, ... as torch.optim.SGD
// checks them, plus sigma, order, flatten and backend).
std::string lsgd_error(double lr, double sigma, int64_t order, double momentum, double dampening, double weight_decay,
                       bool nesterov, std::string_view flatten, std::string_view backend);

// The hyper-parameters of one LSAdamW step (lr, betas, eps, weight_decay as
// torch.optim.AdamW checks them, plus sigma, order, flatten and backend).
std::string adamw_error(double lr, double beta1, double beta2, double eps, double weight_decay, double sigma,
                        int64_t order, std::string_view flatten, std::string_view backend);

// MLSGD's schedule arguments; sigma_max defaults to 2 * sigma (so that the
// random schedule's mean is sigma).
std::string schedule_error(std::string_view name, double sigma, double sigma_min, std::optional<double> sigma_max,
                           int64_t period, int64_t seed);
// Requires schedule_error(...) to be empty.
SigmaSchedule make_schedule(std::string_view name, double sigma, double sigma_min, std::optional<double> sigma_max,
                            int64_t period, int64_t seed);

}  // namespace core
}  // namespace torch_mlsgd
