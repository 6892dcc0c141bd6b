// The fused LSGD step op's schema. Its argument checks and staging are in
// lsgd_step_common.cpp (shared by the CPU and CUDA libraries), its kernels in
// ops/cpu and ops/cuda.

#include "ops/stable.h"

STABLE_TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  m.def(
      "lsgd_step_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, "
      "bool[] fresh_buffers, float lr, float sigma, int order, float momentum, float dampening, "
      "float weight_decay, bool nesterov, bool maximize, str flatten, str backend, Tensor? grad_scale=None, "
      "Tensor? found_inf=None) -> ()");
  // lr and sigma as tensors, for torch.compile: no Python float to specialise on,
  // so an LR scheduler's new rate (or MLSGD's next sigma_k) recompiles nothing.
  // lr holds one value; sigma one, or one per parameter. Both are read on the host.
  // grad_scale and found_inf: GradScaler's, as torch's fused SGD takes them (a
  // nonzero found_inf: the step changes nothing; see AmpScaling in lsgd_step.h).
  m.def(
      "lsgd_step_.tensor(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, "
      "bool[] fresh_buffers, Tensor lr, Tensor sigma, int order, float momentum, float dampening, "
      "float weight_decay, bool nesterov, bool maximize, str flatten, str backend, Tensor? grad_scale=None, "
      "Tensor? found_inf=None) -> ()");
}
