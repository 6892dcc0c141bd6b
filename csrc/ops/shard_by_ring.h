#pragma once

// mlsgd::laplacian_smooth_shard on devices without a kernel of their own
// (CUDA): see shard_by_ring.cpp.

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace torch_mlsgd {
namespace ops {

at::Tensor laplacian_smooth_shard_by_ring(const at::Tensor& shard, const at::Tensor& left,
                                          const at::Tensor& right, double sigma, int64_t order);

}  // namespace ops
}  // namespace torch_mlsgd
