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
    plan.add_ring({Segment<scalar_t>{input.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(), 0, n}},
                  filter.warmup);
    const double gain = filter.gain;
    visit_cascade(filter, [&](const auto& cascade) {
      run_sweeps(cascade, plan, filter.warmup, [&](int64_t segment) {
        scalar_t* out = plan.segments[segment].scratch;
        return [out, gain](int64_t j, double x) { out[j] = static_cast<scalar_t>(gain * x); };
      });
    });
  });
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
