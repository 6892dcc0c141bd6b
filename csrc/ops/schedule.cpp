// mlsgd::scheduled_sigma: MLSGD's sigma_k, the same function of (schedule, k)
// that the LibTorch optimizer evaluates (core/sigma_schedule.h).

#include "core/checks.h"
#include "ops/stable.h"

#include <optional>
#include <string>

STABLE_TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  m.def(
      "scheduled_sigma(str schedule, float sigma, float sigma_min, float? sigma_max, int period, "
      "int seed, int step) -> float");
}

namespace torch_mlsgd {
namespace ops {
namespace {

double scheduled_sigma(std::string schedule, double sigma, double sigma_min,
                       std::optional<double> sigma_max, int64_t period, int64_t seed, int64_t step) {
  check(step >= 0, "Invalid step: ", step, " (must be >= 0)");
  check(core::schedule_error(schedule, sigma, sigma_min, sigma_max, period, seed));
  return core::make_schedule(schedule, sigma, sigma_min, sigma_max, period, seed).at(step);
}

}  // namespace
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CompositeExplicitAutograd, m) {
  m.impl("scheduled_sigma", TORCH_BOX(&torch_mlsgd::ops::scheduled_sigma));
}
