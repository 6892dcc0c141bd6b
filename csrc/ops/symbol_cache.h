#pragma once

#include "ops/stable.h"

#include <cstdint>

namespace torch_mlsgd {
namespace ops {

// 1 / d_k for k = 0 .. n/2 (the half spectrum rfft produces), as a real tensor
// of `dtype` on `device`. Cached by (n, sigma, order, dtype, device) in a
// process-wide LRU bounded in bytes, so repeated steps do not recompute it; the
// cache never enters optimizer state. Thread-safe.
Tensor inverse_symbol(int64_t n, double sigma, int64_t order, ScalarType dtype, const torch::stable::Device& device);

}  // namespace ops
}  // namespace torch_mlsgd
