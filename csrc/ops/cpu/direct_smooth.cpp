#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/smooth_kernels.h"

#include <ATen/Dispatch.h>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

void direct_smooth(const at::Tensor& input, const at::Tensor& output,
                   const core::RecursiveFilter& filter) {
  const int64_t n = input.numel();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "direct_smooth", [&] {
    SweepPlan<scalar_t> plan;
    plan.add_ring({Segment<scalar_t>{input.data_ptr<scalar_t>(), n}}, filter.warmup);
    const SmoothSink<scalar_t> sink{output.data_ptr<scalar_t>(), filter.gain};
    visit_cascade(filter, [&](const auto& cascade) {
      run_direct(cascade, plan, filter.warmup, [&](int64_t /*tag*/) { return sink; });
    });
  });
}

void direct_smooth_shard(const at::Tensor& shard, const at::Tensor& left, const at::Tensor& right,
                         const at::Tensor& output, const core::RecursiveFilter& filter) {
  AT_DISPATCH_FLOATING_TYPES(shard.scalar_type(), "direct_smooth_shard", [&] {
    // The halos close the shard into a ring that no warm-up ever goes round:
    // the shard's first causal warm-up reads exactly `left`, its last
    // anti-causal start reads the shard's tail and `right`.
    SweepPlan<scalar_t> plan;
    plan.add_ring({Segment<scalar_t>{left.data_ptr<scalar_t>(), left.numel(), -1, true},
                   Segment<scalar_t>{shard.data_ptr<scalar_t>(), shard.numel(), 0},
                   Segment<scalar_t>{right.data_ptr<scalar_t>(), right.numel(), -1, true}},
                  filter.warmup);
    const SmoothSink<scalar_t> sink{output.data_ptr<scalar_t>(), filter.gain};
    visit_cascade(filter, [&](const auto& cascade) {
      run_direct(cascade, plan, filter.warmup, [&](int64_t /*tag*/) { return sink; });
    });
  });
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
