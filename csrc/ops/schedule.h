#pragma once

// MLSGD's sigma schedules: validation and construction from user-facing
// arguments, shared by the Python op and the LibTorch optimizer.

#include "core/sigma_schedule.h"

#include <c10/util/Optional.h>
#include <c10/util/string_view.h>

#include <cstdint>

namespace torch_mlsgd {
namespace ops {

// Raises ValueError naming the first bad argument. sigma_max defaults to
// 2 * sigma (so that the random schedule's mean is sigma).
core::SigmaSchedule make_schedule(c10::string_view name, double sigma, double sigma_min,
                                  c10::optional<double> sigma_max, int64_t period, int64_t seed);

}  // namespace ops
}  // namespace torch_mlsgd
