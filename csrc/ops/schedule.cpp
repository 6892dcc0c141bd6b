// mlsgd::scheduled_sigma: MLSGD's sigma_k, the same function of (schedule, k)
// that the LibTorch optimizer evaluates (core/sigma_schedule.h).

#include "core/checks.h"
#include "ops/smooth_args.h"

#include <optional>
#include <string>
#include <vector>

STABLE_TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  m.def(
      "scheduled_sigma(str schedule, float sigma, float sigma_min, float? sigma_max, int period, "
      "int seed, int step) -> float");
  // sigma_k for each step count (int64 tensors holding one value each) as one
  // float64 CPU tensor: MLSGD's schedule under torch.compile, where the counts
  // must stay tensors.
  m.def(
      "scheduled_sigmas(Tensor[] steps, str schedule, float sigma, float sigma_min, float? sigma_max, "
      "int period, int seed) -> Tensor");
}

namespace torch_mlsgd {
namespace ops {
namespace {

double scheduled_sigma(std::string schedule, double sigma, double sigma_min, std::optional<double> sigma_max,
                       int64_t period, int64_t seed, int64_t step) {
  check(step >= 0, "Invalid step: ", step, " (must be >= 0)");
  check(core::schedule_error(schedule, sigma, sigma_min, sigma_max, period, seed));
  return core::make_schedule(schedule, sigma, sigma_min, sigma_max, period, seed).at(step);
}

Tensor scheduled_sigmas(std::vector<Tensor> steps, std::string schedule, double sigma, double sigma_min,
                        std::optional<double> sigma_max, int64_t period, int64_t seed) {
  check(core::schedule_error(schedule, sigma, sigma_min, sigma_max, period, seed));
  const auto sequence = core::make_schedule(schedule, sigma, sigma_min, sigma_max, period, seed);
  Tensor out = torch::stable::empty({static_cast<int64_t>(steps.size())}, ScalarType::Double, std::nullopt,
                                    torch::stable::Device(torch::stable::DeviceType::CPU));
  double* values = out.mutable_data_ptr<double>();
  for (size_t i = 0; i < steps.size(); ++i) {
    check(steps[i].numel() == 1 && !is_floating(steps[i].scalar_type()),
          "scheduled_sigmas: each step count must be an integer tensor of one value");
    const int64_t k = host_as(steps[i], ScalarType::Long).const_data_ptr<int64_t>()[0];
    check(k >= 0, "Invalid step: ", k, " (must be >= 0)");
    values[i] = sequence.at(k);
  }
  return out;
}

}  // namespace
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CompositeExplicitAutograd, m) {
  m.impl("scheduled_sigma", TORCH_BOX(&torch_mlsgd::ops::scheduled_sigma));
  m.impl("scheduled_sigmas", TORCH_BOX(&torch_mlsgd::ops::scheduled_sigmas));
}
