#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/smooth_kernels.h"

#include <ATen/Dispatch.h>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

double direct_tolerance(at::ScalarType dtype) {
  // About the unit roundoff of the stored result, with a margin.
  return dtype == at::kDouble ? 1e-17 : 1e-9;
}

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

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
