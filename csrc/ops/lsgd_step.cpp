// The fused LSGD step op's schema. Its argument checks and staging are in
// lsgd_step_common.cpp (shared by the CPU and CUDA libraries), its kernels in
// ops/cpu and ops/cuda.

#include "ops/stable.h"

STABLE_TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  m.def(
      "lsgd_step_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, "
      "bool[] fresh_buffers, float lr, float sigma, int order, float momentum, float dampening, "
      "float weight_decay, bool nesterov, bool maximize, str flatten, str backend) -> ()");
}
