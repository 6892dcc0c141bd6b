#pragma once

// The per-element AdamW update on a smoothed gradient s (docs/design.md §3b),
// with torch.optim.AdamW's arithmetic:
//
//     w = w * (1 - lr * weight_decay)                 (decoupled weight decay)
//     m = m + (1 - beta1) * (s - m)
//     v = beta2 * v + (1 - beta2) * s^2
//     vmax = max(vmax, v)                              (amsgrad; v below is vmax)
//     w = w - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
//
// with step_size = lr / (1 - beta1^t) and bias_correction2_sqrt =
// sqrt(1 - beta2^t) at the tensor's step t. Plain C++ with no torch
// dependency, in double, rounded once when stored.

#include "core/lsgd_update.h"  // TORCH_MLSGD_HOST_DEVICE

#include <cmath>
#include <cstdint>

namespace torch_mlsgd {
namespace core {

struct AdamWUpdate {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
  double step_size;              // lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)

  // The update of a tensor at step t >= 1 (the count after this step's increment).
  static AdamWUpdate at_step(double lr, double beta1, double beta2, double eps, double weight_decay, double t) {
    return AdamWUpdate{
        lr, beta1, beta2, eps, weight_decay, lr / (1.0 - std::pow(beta1, t)), std::sqrt(1.0 - std::pow(beta2, t))};
  }

  // The update of one element from its smoothed gradient s, with this tensor's
  // step_size and bias_correction2_sqrt (the CUDA kernels read the count on the
  // device and pass them in); `max_exp_avg_sq` is null without amsgrad.
  template <typename scalar_t>
  TORCH_MLSGD_HOST_DEVICE static void apply(double s, double lr, double beta1, double beta2, double eps,
                                            double weight_decay, double step_size, double bias_correction2_sqrt,
                                            scalar_t* param, scalar_t* exp_avg, scalar_t* exp_avg_sq,
                                            scalar_t* max_exp_avg_sq) {
    const double w = static_cast<double>(*param) * (1.0 - lr * weight_decay);
    const double m0 = static_cast<double>(*exp_avg);
    const double m = m0 + (1.0 - beta1) * (s - m0);
    double v = beta2 * static_cast<double>(*exp_avg_sq) + (1.0 - beta2) * s * s;
    *exp_avg = static_cast<scalar_t>(m);
    *exp_avg_sq = static_cast<scalar_t>(v);
    if (max_exp_avg_sq != nullptr) {
      const double vmax = static_cast<double>(*max_exp_avg_sq);
      v = vmax < v ? v : vmax;  // std::max(vmax, v), which device code lacks
      *max_exp_avg_sq = static_cast<scalar_t>(v);
    }
    *param = static_cast<scalar_t>(w - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps));
  }

  // The update over a run: param[i] and the moments from scale * smoothed[i].
  // `max_exp_avg_sq` is null without amsgrad. The branch is hoisted so that
  // each loop is straight-line.
  template <typename in_t, typename scalar_t>
  void apply_run(const in_t* smoothed, double scale, scalar_t* param, scalar_t* exp_avg, scalar_t* exp_avg_sq,
                 scalar_t* max_exp_avg_sq, int64_t n) const {
    if (max_exp_avg_sq == nullptr) {
      run<false>(smoothed, scale, param, exp_avg, exp_avg_sq, max_exp_avg_sq, n);
    } else {
      run<true>(smoothed, scale, param, exp_avg, exp_avg_sq, max_exp_avg_sq, n);
    }
  }

 private:
  template <bool kAmsgrad, typename in_t, typename scalar_t>
  void run(const in_t* smoothed, double scale, scalar_t* param, scalar_t* exp_avg, scalar_t* exp_avg_sq,
           scalar_t* max_exp_avg_sq, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) {
      apply(scale * static_cast<double>(smoothed[i]), lr, beta1, beta2, eps, weight_decay, step_size,
            bias_correction2_sqrt, param + i, exp_avg + i, exp_avg_sq + i, kAmsgrad ? max_exp_avg_sq + i : nullptr);
    }
  }
};

}  // namespace core
}  // namespace torch_mlsgd
