#pragma once

// Where the direct route's results go. A sink takes runs of unscaled results
// x (contiguous in memory, starting at element `begin` of its segment).
// Plain C++ with no torch dependency: the SIMD kernels specialise on them.

#include "core/adamw_update.h"
#include "core/lsgd_update.h"

#include <cstdint>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

// Smoothing: out = gain * x.
template <typename scalar_t>
struct SmoothSink {
  scalar_t* out;
  double gain;

  void operator()(int64_t begin, const double* x, int64_t n) const {
    scalar_t* o = out + begin;
    for (int64_t i = 0; i < n; ++i) {
      o[i] = static_cast<scalar_t>(gain * x[i]);
    }
  }
};

// The LSGD update of one parameter from S(g) = scale * x.
template <typename scalar_t>
struct UpdateSink {
  core::LSGDUpdate update;
  scalar_t* param;
  scalar_t* buffer;  // null without momentum
  bool fresh;        // the buffer holds no value yet
  double scale;      // the filter's gain, negated when maximizing

  template <typename in_t>
  void operator()(int64_t begin, const in_t* x, int64_t n) const {
    update.apply_run(x, scale, param + begin, buffer == nullptr ? nullptr : buffer + begin, fresh, n);
  }
};

// The AdamW update of one parameter from S(g) = scale * x.
template <typename scalar_t>
struct AdamWSink {
  core::AdamWUpdate update;
  scalar_t* param;
  scalar_t* exp_avg;
  scalar_t* exp_avg_sq;
  scalar_t* max_exp_avg_sq;  // null without amsgrad
  double scale;              // the filter's gain, negated when maximizing

  template <typename in_t>
  void operator()(int64_t begin, const in_t* x, int64_t n) const {
    update.apply_run(x, scale, param + begin, exp_avg + begin, exp_avg_sq + begin,
                     max_exp_avg_sq == nullptr ? nullptr : max_exp_avg_sq + begin, n);
  }
};

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
