#include "core/sigma_schedule.h"

#include <algorithm>

namespace torch_mlsgd {
namespace core {

double uniform01(uint64_t seed, int64_t step) {
  // splitmix64 (Steele, Lea, Flood 2014) of a mix of seed and step: a
  // counter-based generator, so draw k needs no draws before it.
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z = z ^ (z >> 31);
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

double SigmaSchedule::at(int64_t step) const {
  const double k = static_cast<double>(step);
  const double p = static_cast<double>(std::max<int64_t>(period, 1));
  switch (kind) {
    case SigmaScheduleKind::Constant:
      return sigma;
    case SigmaScheduleKind::Random:
      return sigma_min + (sigma_max - sigma_min) * uniform01(seed, step);
    case SigmaScheduleKind::Cyclic: {
      const int64_t phase = step % std::max<int64_t>(period, 1);
      const double t = period > 1 ? static_cast<double>(phase) / (p - 1.0) : 0.0;
      return sigma_min + (sigma_max - sigma_min) * t;
    }
    case SigmaScheduleKind::Decay:
      return sigma / (1.0 + k / p);
    case SigmaScheduleKind::Growth:
      return sigma * (1.0 + k / p);
  }
  return sigma;
}

}  // namespace core
}  // namespace torch_mlsgd
