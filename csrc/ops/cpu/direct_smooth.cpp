#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/smooth_kernels.h"

namespace torch_mlsgd {
namespace ops {
namespace cpu {

void direct_smooth(const Tensor& input, const Tensor& output, const core::RecursiveFilter& filter) {
  const int64_t n = input.numel();
  dispatch_float_double(input.scalar_type(), "direct_smooth", [&](auto zero) {
    using scalar_t = decltype(zero);
    SweepPlan<scalar_t> plan;
    plan.add_ring({Segment<scalar_t>{input.const_data_ptr<scalar_t>(), n}}, filter.warmup);
    const SmoothSink<scalar_t> sink{output.mutable_data_ptr<scalar_t>(), filter.gain};
    visit_cascade(filter, [&](const auto& cascade) {
      run_direct(cascade, plan, filter.warmup, [&](int64_t /*tag*/) { return sink; });
    });
  });
}

void direct_smooth_shard(const Tensor& shard, const Tensor& left, const Tensor& right, const Tensor& output,
                         const core::RecursiveFilter& filter) {
  dispatch_float_double(shard.scalar_type(), "direct_smooth_shard", [&](auto zero) {
    using scalar_t = decltype(zero);
    // The halos close the shard into a ring that no warm-up ever goes round:
    // the shard's first causal warm-up reads exactly `left`, its last
    // anti-causal start reads the shard's tail and `right`.
    SweepPlan<scalar_t> plan;
    plan.add_ring({Segment<scalar_t>{left.const_data_ptr<scalar_t>(), left.numel(), -1, true},
                   Segment<scalar_t>{shard.const_data_ptr<scalar_t>(), shard.numel(), 0},
                   Segment<scalar_t>{right.const_data_ptr<scalar_t>(), right.numel(), -1, true}},
                  filter.warmup);
    const SmoothSink<scalar_t> sink{output.mutable_data_ptr<scalar_t>(), filter.gain};
    visit_cascade(filter, [&](const auto& cascade) {
      run_direct(cascade, plan, filter.warmup, [&](int64_t /*tag*/) { return sink; });
    });
  });
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
