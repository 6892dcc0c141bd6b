// The fused LSAdamW step op's schema. Its argument checks and staging are in
// lsadamw_step_common.cpp (shared by the CPU and CUDA libraries), its kernels
// in ops/cpu and ops/cuda.

#include "ops/stable.h"

STABLE_TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  // AdamW on the Laplacian-smoothed gradients. state_steps hold each
  // parameter's count with this step included (as torch's _fused_adamw_ takes
  // them); max_exp_avg_sqs is empty unless amsgrad. lr is a tensor (one value,
  // read on the host), so that torch.compile has no Python float to
  // specialise on and an LR scheduler recompiles nothing. grad_scale and
  // found_inf: GradScaler's, as torch's fused AdamW takes them (the counts are
  // the caller's to take back after a skipped step, as torch's AdamW does).
  m.def(
      "lsadamw_step_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor(c!)[] exp_avg_sqs, "
      "Tensor(d!)[] max_exp_avg_sqs, Tensor[] state_steps, Tensor lr, float beta1, float beta2, "
      "float weight_decay, float eps, bool amsgrad, bool maximize, float sigma, int order, str flatten, "
      "str backend, Tensor? grad_scale=None, Tensor? found_inf=None) -> ()");
}
