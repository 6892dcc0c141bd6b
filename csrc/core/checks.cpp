#include "core/checks.h"

#include <cmath>

namespace torch_mlsgd {
namespace core {
namespace {

bool finite_nonnegative(double value) { return std::isfinite(value) && value >= 0.0; }

const char* const kScheduleNames[] = {"constant", "random", "cyclic", "decay", "growth"};
const SigmaScheduleKind kScheduleKinds[] = {SigmaScheduleKind::Constant, SigmaScheduleKind::Random,
                                            SigmaScheduleKind::Cyclic, SigmaScheduleKind::Decay,
                                            SigmaScheduleKind::Growth};

}  // namespace

std::string sigma_error(double sigma) {
  return finite_nonnegative(sigma) ? std::string()
                                   : words("Invalid sigma value: ", sigma, " (must be finite and >= 0)");
}

std::string order_error(int64_t order) {
  return order >= 1 ? std::string() : words("Invalid order value: ", order, " (must be >= 1)");
}

std::string backend_error(std::string_view name) {
  if (name == "auto" || name == "fft" || name == "direct") {
    return {};
  }
  return words("Invalid backend: '", name, "' (expected 'auto', 'fft' or 'direct')");
}

SmoothBackend parse_backend(std::string_view name) {
  if (name == "fft") {
    return SmoothBackend::FFT;
  }
  return name == "direct" ? SmoothBackend::Direct : SmoothBackend::Auto;
}

std::string lsgd_error(double lr, double sigma, int64_t order, double momentum, double dampening, double weight_decay,
                       bool nesterov, std::string_view flatten, std::string_view backend) {
  if (!finite_nonnegative(lr)) {
    return words("Invalid learning rate: ", lr);
  }
  for (const std::string& error : {sigma_error(sigma), order_error(order)}) {
    if (!error.empty()) {
      return error;
    }
  }
  if (!finite_nonnegative(momentum)) {
    return words("Invalid momentum value: ", momentum);
  }
  if (!std::isfinite(dampening)) {
    return words("Invalid dampening value: ", dampening);
  }
  if (!finite_nonnegative(weight_decay)) {
    return words("Invalid weight_decay value: ", weight_decay);
  }
  if (nesterov && (momentum <= 0 || dampening != 0)) {
    return "Nesterov momentum requires a momentum and zero dampening";
  }
  if (flatten != "tensor" && flatten != "group") {
    return words("Invalid flatten value: '", flatten, "' (expected 'tensor' or 'group')");
  }
  return backend_error(backend);
}

std::string adamw_error(double lr, double beta1, double beta2, double eps, double weight_decay, double sigma,
                        int64_t order, std::string_view flatten, std::string_view backend) {
  if (!finite_nonnegative(lr)) {
    return words("Invalid learning rate: ", lr);
  }
  if (!finite_nonnegative(eps)) {
    return words("Invalid epsilon value: ", eps);
  }
  if (!(beta1 >= 0.0 && beta1 < 1.0)) {
    return words("Invalid beta parameter at index 0: ", beta1);
  }
  if (!(beta2 >= 0.0 && beta2 < 1.0)) {
    return words("Invalid beta parameter at index 1: ", beta2);
  }
  if (!finite_nonnegative(weight_decay)) {
    return words("Invalid weight_decay value: ", weight_decay);
  }
  for (const std::string& error : {sigma_error(sigma), order_error(order), backend_error(backend)}) {
    if (!error.empty()) {
      return error;
    }
  }
  if (flatten != "tensor" && flatten != "group") {
    return words("Invalid flatten value: '", flatten, "' (expected 'tensor' or 'group')");
  }
  return {};
}

std::string schedule_error(std::string_view name, double sigma, double sigma_min, std::optional<double> sigma_max,
                           int64_t period, int64_t seed) {
  bool known = false;
  for (const char* candidate : kScheduleNames) {
    known = known || name == candidate;
  }
  if (!known) {
    return words("Invalid schedule: '", name, "' (expected 'random', 'cyclic', 'constant', 'decay' or 'growth')");
  }
  if (std::string error = sigma_error(sigma); !error.empty()) {
    return error;
  }
  if (!finite_nonnegative(sigma_min)) {
    return words("Invalid sigma_min value: ", sigma_min, " (must be finite and >= 0)");
  }
  const double max = sigma_max.value_or(2.0 * sigma);
  if (!(std::isfinite(max) && max >= sigma_min)) {
    return words("Invalid sigma_max value: ", max, " (must be finite and >= sigma_min = ", sigma_min, ")");
  }
  if (period < 1) {
    return words("Invalid period value: ", period, " (must be >= 1)");
  }
  if (seed < 0) {
    return words("Invalid seed value: ", seed, " (must be >= 0)");
  }
  return {};
}

SigmaSchedule make_schedule(std::string_view name, double sigma, double sigma_min, std::optional<double> sigma_max,
                            int64_t period, int64_t seed) {
  SigmaSchedule s;
  for (size_t i = 0; i < sizeof(kScheduleNames) / sizeof(kScheduleNames[0]); ++i) {
    if (name == kScheduleNames[i]) {
      s.kind = kScheduleKinds[i];
    }
  }
  s.sigma = sigma;
  s.sigma_min = sigma_min;
  s.sigma_max = sigma_max.value_or(2.0 * sigma);
  s.period = period;
  s.seed = static_cast<uint64_t>(seed);
  return s;
}

}  // namespace core
}  // namespace torch_mlsgd
