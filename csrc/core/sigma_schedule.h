#pragma once

// The sigma schedules of MLSGD: sigma_k as a function of the step count k.
//
// Every schedule is a pure function of (its parameters, k), so an optimizer
// only has to store k to resume a run bit for bit, and C++ and Python draw
// the same sequence. Plain C++ with no torch dependency.

#include <cstdint>

namespace torch_mlsgd {
namespace core {

enum class SigmaScheduleKind {
  Constant,  // sigma
  Random,    // uniform in [sigma_min, sigma_max), independent across steps
  Cyclic,    // linear sweep from sigma_min to sigma_max over `period` steps, repeated
  Decay,     // sigma / (1 + k / period)
  Growth,    // sigma * (1 + k / period)
};

struct SigmaSchedule {
  SigmaScheduleKind kind = SigmaScheduleKind::Random;
  double sigma = 1.0;
  double sigma_min = 0.0;
  double sigma_max = 2.0;
  int64_t period = 100;
  uint64_t seed = 0;

  double at(int64_t step) const;
};

// A uniform double in [0, 1) from (seed, step): splitmix64 of their mix.
double uniform01(uint64_t seed, int64_t step);

}  // namespace core
}  // namespace torch_mlsgd
