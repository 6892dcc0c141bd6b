#include "ops/schedule.h"

#include "ops/smooth_args.h"

#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cmath>
#include <string>

TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  m.def(
      "scheduled_sigma(str schedule, float sigma, float sigma_min, float? sigma_max, int period, "
      "int seed, int step) -> float",
      [](c10::string_view schedule, double sigma, double sigma_min, c10::optional<double> sigma_max,
         int64_t period, int64_t seed, int64_t step) {
        TORCH_CHECK_VALUE(step >= 0, "Invalid step: ", step, " (must be >= 0)");
        return torch_mlsgd::ops::make_schedule(schedule, sigma, sigma_min, sigma_max, period, seed)
            .at(step);
      });
}

namespace torch_mlsgd {
namespace ops {

core::SigmaSchedule make_schedule(c10::string_view name, double sigma, double sigma_min,
                                  c10::optional<double> sigma_max, int64_t period, int64_t seed) {
  core::SigmaSchedule s;
  if (name == "constant") {
    s.kind = core::SigmaScheduleKind::Constant;
  } else if (name == "random") {
    s.kind = core::SigmaScheduleKind::Random;
  } else if (name == "cyclic") {
    s.kind = core::SigmaScheduleKind::Cyclic;
  } else if (name == "decay") {
    s.kind = core::SigmaScheduleKind::Decay;
  } else if (name == "growth") {
    s.kind = core::SigmaScheduleKind::Growth;
  } else {
    TORCH_CHECK_VALUE(false, "Invalid schedule: '", std::string(name.data(), name.size()),
                      "' (expected 'random', 'cyclic', 'constant', 'decay' or 'growth')");
  }
  check_sigma(sigma);
  TORCH_CHECK_VALUE(std::isfinite(sigma_min) && sigma_min >= 0, "Invalid sigma_min value: ",
                    sigma_min, " (must be finite and >= 0)");
  const double max = sigma_max.has_value() ? *sigma_max : 2.0 * sigma;
  TORCH_CHECK_VALUE(std::isfinite(max) && max >= sigma_min, "Invalid sigma_max value: ", max,
                    " (must be finite and >= sigma_min = ", sigma_min, ")");
  TORCH_CHECK_VALUE(period >= 1, "Invalid period value: ", period, " (must be >= 1)");
  TORCH_CHECK_VALUE(seed >= 0, "Invalid seed value: ", seed, " (must be >= 0)");
  s.sigma = sigma;
  s.sigma_min = sigma_min;
  s.sigma_max = max;
  s.period = period;
  s.seed = static_cast<uint64_t>(seed);
  return s;
}

}  // namespace ops
}  // namespace torch_mlsgd
