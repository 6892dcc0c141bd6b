#pragma once

// The per-element LSGD update, after smoothing (docs/design.md §3):
//
//     d = s + weight_decay * w
//     if momentum != 0:
//         buf = d (first step) | momentum * buf + (1 - dampening) * d
//         d = d + momentum * buf if nesterov else buf
//     w = w - lr * d
//
// Plain C++ with no torch dependency, so that every backend applies exactly
// this arithmetic (in double, rounded once when stored).

#include <cstdint>

#if defined(__CUDACC__)
#define TORCH_MLSGD_HOST_DEVICE __host__ __device__
#else
#define TORCH_MLSGD_HOST_DEVICE
#endif

namespace torch_mlsgd {
namespace core {

struct LSGDUpdate {
  double lr;
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;

  // `smoothed` is S(g) (already negated when maximizing). `buffer` is null
  // when momentum == 0; `fresh` marks a buffer that holds no value yet.
  template <typename scalar_t>
  TORCH_MLSGD_HOST_DEVICE void apply(double smoothed, scalar_t* param, scalar_t* buffer, bool fresh) const {
    const double w = static_cast<double>(*param);
    double d = smoothed + weight_decay * w;
    if (buffer != nullptr) {
      const double b = fresh ? d : momentum * static_cast<double>(*buffer) + (1.0 - dampening) * d;
      *buffer = static_cast<scalar_t>(b);
      d = nesterov ? d + momentum * b : b;
    }
    *param = static_cast<scalar_t>(w - lr * d);
  }

  // apply() over a run: param[i] and buffer[i] from scale * smoothed[i]. The
  // branches are hoisted so that each loop is straight-line and vectorises.
  template <typename in_t, typename scalar_t>
  void apply_run(const in_t* smoothed, double scale, scalar_t* param, scalar_t* buffer, bool fresh, int64_t n) const {
    if (buffer == nullptr) {
      run<false, false, false>(smoothed, scale, param, buffer, n);
    } else if (fresh) {
      nesterov ? run<true, true, true>(smoothed, scale, param, buffer, n)
               : run<true, true, false>(smoothed, scale, param, buffer, n);
    } else {
      nesterov ? run<true, false, true>(smoothed, scale, param, buffer, n)
               : run<true, false, false>(smoothed, scale, param, buffer, n);
    }
  }

 private:
  template <bool kBuffer, bool kFresh, bool kNesterov, typename in_t, typename scalar_t>
  void run(const in_t* smoothed, double scale, scalar_t* param, scalar_t* buffer, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) {
      const double w = static_cast<double>(param[i]);
      double d = scale * static_cast<double>(smoothed[i]) + weight_decay * w;
      if (kBuffer) {
        const double b = kFresh ? d : momentum * static_cast<double>(buffer[i]) + (1.0 - dampening) * d;
        buffer[i] = static_cast<scalar_t>(b);
        d = kNesterov ? d + momentum * b : b;
      }
      param[i] = static_cast<scalar_t>(w - lr * d);
    }
  }
};

}  // namespace core
}  // namespace torch_mlsgd
