#pragma once

// Smoothing a ring spread over the ranks of a c10d process group: the C++
// side of torch_mlsgd.distributed, for LibTorch training loops that shard
// their parameters themselves (and for LSGD/MLSGD with a process group).

#include <ATen/core/Tensor.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <cstdint>

namespace torch_mlsgd {

/// This rank's part of S(v), where the ring v is the concatenation of every
/// rank's `shard` (flattened, row-major) in rank order; shards may differ in
/// length and be empty. Every rank of `process_group` must call it with the
/// same sigma, order and dtype. Ranks exchange only the first and last
/// mlsgd::direct_warmup(sigma, order, dtype) elements of their shards (two
/// all-gathers: the lengths, then the edges) and smooth their own shard alone;
/// the result equals smoothing the whole vector in one process to the direct
/// route's accuracy. With `check_finite`, a NaN or Inf in any rank's shard
/// throws on every rank before anything is smoothed. A failed collective (a
/// dead rank, a timeout) throws c10::Error saying that nothing was changed.
at::Tensor sharded_laplacian_smooth(const at::Tensor& shard, double sigma, int64_t order,
                                    c10d::ProcessGroup& process_group, bool check_finite = false);

}  // namespace torch_mlsgd
