#pragma once

// The fused LSGD step: the kernel behind torch_mlsgd::LSGD and torch_mlsgd.LSGD.

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <vector>

namespace torch_mlsgd {

struct LSGDOptions;

/// One LSGD step over the parameters of one group, in place: smoothing,
/// weight decay, momentum and the parameter update in as few passes over
/// memory as the math allows (the direct route reads each gradient once and
/// writes each parameter and momentum buffer once).
///
/// `momentum_buffers` is empty when options.momentum() == 0, else one buffer
/// per parameter; `fresh_buffers[i]` marks a buffer that holds no value yet
/// (the step then sets it to the update direction, as torch.optim.SGD does).
/// With options.flatten() == "group" the gradients form one ring in list order.
/// Every argument is checked before anything is written.
void lsgd_step_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                const std::vector<bool>& fresh_buffers, const LSGDOptions& options);

}  // namespace torch_mlsgd
