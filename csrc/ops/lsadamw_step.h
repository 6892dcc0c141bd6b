#pragma once

// Shared pieces of the fused LSAdamW step op (mlsgd::lsadamw_step_): argument
// checks and the staging of tensors a backend's kernel does not take as they are.

#include "ops/lsgd_step.h"  // host_values
#include "ops/smooth_args.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace ops {

using TensorList = std::vector<Tensor>;

struct [[gnu::visibility("hidden")]] AdamWStepArgs {
  double lr;
  double beta1;
  double beta2;
  double weight_decay;
  double eps;
  bool amsgrad;
  bool maximize;
  double sigma;
  int64_t order;
  bool group_ring;  // flatten == "group"
  std::string backend;
  AmpScaling amp;
};

// The tensors of one step: a state list is empty or holds one tensor per
// parameter; `steps` are the parameters' counts, this step included. (Hidden,
// as the stable ABI's Tensor it holds.)
struct [[gnu::visibility("hidden")]] AdamWStepTensors {
  TensorList params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs;
  std::vector<double> steps;
};

// Checks hyper-parameters and list shapes; raises before anything is written.
AdamWStepArgs check_lsadamw_step_args(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                                      const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs,
                                      const TensorList& state_steps, double lr, double beta1, double beta2,
                                      double weight_decay, double eps, bool amsgrad, bool maximize, double sigma,
                                      int64_t order, const std::string& flatten, const std::string& backend);

// A step count's value, read on the host (a CUDA count with a synchronisation).
double step_value(const Tensor& step);

// Runs `fused` on the tensors as they are when they are all contiguous
// float32/float64 of one dtype; otherwise on contiguous copies in each
// gradient's compute dtype, one call per dtype, written back after it.
void run_adamw_step(const AdamWStepTensors& tensors, const AdamWStepArgs& args,
                    const std::function<void(const AdamWStepTensors&, const AdamWStepArgs&)>& fused);

// A backend's step over checked, non-empty arguments.
using AdamWStep = void (*)(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                           const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs,
                           const TensorList& state_steps, const AdamWStepArgs& args);

// A backend's kernel of mlsgd::lsadamw_step_ (the schema's argument list): lr
// read on the host, every argument checked, then the backend's step (none when
// found_inf is set on the CPU).
template <AdamWStep step>
void lsadamw_step_kernel(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                         TensorList max_exp_avg_sqs, TensorList state_steps, Tensor lr, double beta1, double beta2,
                         double weight_decay, double eps, bool amsgrad, bool maximize, double sigma, int64_t order,
                         std::string flatten, std::string backend, std::optional<Tensor> grad_scale,
                         std::optional<Tensor> found_inf) {
  AdamWStepArgs args = check_lsadamw_step_args(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                                               host_values(lr, 1, "lr")[0], beta1, beta2, weight_decay, eps, amsgrad,
                                               maximize, sigma, order, flatten, backend);
  args.amp = amp_scaling(grad_scale, found_inf, device_of(params), "lsadamw_step_");
  if (!params.empty() && !args.amp.skip) {
    step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, args);
  }
}

}  // namespace ops
}  // namespace torch_mlsgd
