#pragma once

// CPU implementations of the two smoothing routes. Both take contiguous 1-D
// float32/float64 tensors of equal length; `output` may alias `input`.

#include "core/recursive_filter.h"
#include "ops/smooth_args.h"

#include <cstdint>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

// rfft -> multiply by the cached 1 / d_k -> irfft.
void fft_smooth(const Tensor& input, const Tensor& output, double sigma, int64_t order);

// The causal/anti-causal recursions of `filter`, chunked over threads.
void direct_smooth(const Tensor& input, const Tensor& output, const core::RecursiveFilter& filter);

// The route for a ring of n elements: `requested` unless it is Auto, else the
// one with the lower modelled cost. Raises for "direct" beyond its orders.
SmoothBackend choose_backend(SmoothBackend requested, int64_t n, const core::RecursiveFilter& filter);

// The direct route for one shard of a longer ring: `left` holds the
// filter.warmup ring elements just before the shard, `right` those just after
// it (contiguous, same dtype). Exactly the shard's part of smoothing the
// whole ring, to the same truncation tolerance.
void direct_smooth_shard(const Tensor& shard, const Tensor& left, const Tensor& right, const Tensor& output,
                         const core::RecursiveFilter& filter);

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
