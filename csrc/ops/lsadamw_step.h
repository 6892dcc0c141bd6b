#pragma once

// Shared pieces of the fused LSAdamW step op (mlsgd::lsadamw_step_): argument
// checks and the staging of tensors a backend's kernel does not take as they are.

#include "ops/smooth_args.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace ops {

using TensorList = std::vector<Tensor>;

struct AdamWStepArgs {
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

}  // namespace ops
}  // namespace torch_mlsgd
