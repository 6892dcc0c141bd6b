// CPU kernel of mlsgd::lsgd_step_: the whole LSGD step of a parameter group.
//
// Direct route (the usual case): every ring's chunks go through the sweeps of
// recursive_sweeps.h and their results straight into the update rule, so a
// step reads each gradient once and reads and writes each parameter and
// momentum buffer once - the memory traffic of SGD with momentum - with one
// cache-sized scratch per thread and no full-size temporaries. All rings of
// the group share two parallel regions. FFT route: the smoothed ring is a
// temporary, then one elementwise pass applies the update. Tensors the fused
// loops do not take as they are (half precision, non-contiguous, mixed
// dtypes) are staged by run_step (ops/lsgd_step.h).

#include "core/lsgd_update.h"
#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/smooth_kernels.h"
#include "ops/lsgd_step.h"

#include <vector>

namespace torch_mlsgd {
namespace ops {
namespace cpu {
namespace {

// The update over a whole tensor for already smoothed values `s`.
template <typename scalar_t>
void elementwise_update(const UpdateSink<scalar_t>& sink, const scalar_t* s, int64_t n) {
  const bool vectorised = simd::supported();
  torch::stable::parallel_for(0, n, int64_t{1} << 15, [&](int64_t begin, int64_t end) {
    if (vectorised) {
      simd::update_run(sink, begin, s + begin, end - begin);
    } else {
      sink(begin, s + begin, end - begin);
    }
  });
}

template <typename scalar_t>
void fused_step(const TensorList& params, const TensorList& grads, const TensorList& buffers,
                const std::vector<bool>& fresh, const LSGDStepArgs& a) {
  const core::LSGDUpdate update{a.lr, a.momentum, a.dampening, a.weight_decay, a.nesterov};
  const double sign = a.maximize ? -1.0 : 1.0;
  const auto filter = core::make_recursive_filter(a.sigma, a.order, truncation_tolerance(params[0].scalar_type()));
  // Raw pointers once, outside the parallel regions (each is a call into torch).
  std::vector<scalar_t*> param_data, buffer_data(params.size(), nullptr);
  for (size_t i = 0; i < params.size(); ++i) {
    param_data.push_back(params[i].mutable_data_ptr<scalar_t>());
    if (!buffers.empty()) {
      buffer_data[i] = buffers[i].mutable_data_ptr<scalar_t>();
    }
  }
  // One sink per parameter; `scale` turns the values a route produces into S(g).
  auto sink_for = [&](size_t i, double scale) {
    return UpdateSink<scalar_t>{update, param_data[i], buffer_data[i], !buffers.empty() && fresh[i], scale};
  };
  if (filter.is_identity()) {  // sigma == 0: SGD
    for (size_t i = 0; i < params.size(); ++i) {
      elementwise_update(sink_for(i, sign), grads[i].const_data_ptr<scalar_t>(), grads[i].numel());
    }
    return;
  }

  // Rings: the whole group, or one per tensor. Direct rings go into one plan.
  std::vector<std::vector<int64_t>> rings;
  if (a.group_ring) {
    rings.emplace_back();
    for (size_t i = 0; i < params.size(); ++i) {
      rings.back().push_back(static_cast<int64_t>(i));
    }
  } else {
    for (size_t i = 0; i < params.size(); ++i) {
      rings.push_back({static_cast<int64_t>(i)});
    }
  }
  const SmoothBackend requested = parse_backend(a.backend);
  SweepPlan<scalar_t> plan;
  std::vector<const std::vector<int64_t>*> fft_rings;
  for (const auto& ring : rings) {
    int64_t length = 0;
    std::vector<Segment<scalar_t>> segments;
    for (int64_t i : ring) {
      segments.push_back({grads[i].const_data_ptr<scalar_t>(), grads[i].numel(), i});
      length += grads[i].numel();
    }
    if (length == 0) {
      continue;
    }
    if (length == 1) {  // S is exactly the identity on a ring of one element
      for (int64_t i : ring) {
        elementwise_update(sink_for(static_cast<size_t>(i), sign), grads[i].const_data_ptr<scalar_t>(),
                           grads[i].numel());
      }
      continue;
    }
    if (choose_backend(requested, length, filter) == SmoothBackend::Direct) {
      plan.add_ring(segments, filter.warmup);
    } else {
      fft_rings.push_back(&ring);
    }
  }

  if (!plan.chunks.empty()) {
    const double scale = sign * filter.gain;
    visit_cascade(filter, [&](const auto& cascade) {
      run_direct(cascade, plan, filter.warmup, [&](int64_t tag) { return sink_for(static_cast<size_t>(tag), scale); });
    });
  }

  for (const auto* ring : fft_rings) {
    std::vector<Tensor> flat;
    for (int64_t i : *ring) {
      flat.push_back(aten::flat(grads[i]));
    }
    const Tensor input = flat.size() == 1 ? flat[0] : aten::cat(flat);
    const Tensor smoothed = torch::stable::empty_like(input);
    fft_smooth(input, smoothed, a.sigma, a.order);
    const scalar_t* s = smoothed.const_data_ptr<scalar_t>();
    for (int64_t i : *ring) {
      elementwise_update(sink_for(static_cast<size_t>(i), sign), s, grads[i].numel());
      s += grads[i].numel();
    }
  }
}

void fused_step_cpu(const TensorList& params, const TensorList& grads, const TensorList& buffers,
                    const std::vector<bool>& fresh, const LSGDStepArgs& args) {
  dispatch_float_double(params[0].scalar_type(), "lsgd_step_cpu",
                        [&](auto zero) { fused_step<decltype(zero)>(params, grads, buffers, fresh, args); });
}

}  // namespace
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CPU, m) {
  m.impl("lsgd_step_", TORCH_BOX(&torch_mlsgd::ops::lsgd_step_kernel<&torch_mlsgd::ops::cpu::fused_step_cpu>));
  m.impl("lsgd_step_.tensor",
         TORCH_BOX(&torch_mlsgd::ops::lsgd_step_tensor_kernel<&torch_mlsgd::ops::cpu::fused_step_cpu>));
}
