#pragma once

// The smoothing half of the CPU fused steps (mlsgd::lsgd_step_ and
// mlsgd::lsadamw_step_): S(g) of every gradient handed, run by run, to the
// step's sink, which applies the optimizer's update in the same pass.
//
// Direct route (the usual case): every ring's chunks go through the sweeps of
// recursive_sweeps.h and their results straight into the sink, so a step reads
// each gradient once and reads and writes each parameter and state tensor
// once, with one cache-sized scratch per thread and no full-size temporaries.
// All rings of the call share two parallel regions. FFT route: the smoothed
// ring is a temporary, then one elementwise pass feeds the sink.

#include "ops/cpu/recursive_sweeps.h"
#include "ops/cpu/simd_sweeps.h"
#include "ops/cpu/smooth_kernels.h"
#include "ops/smooth_args.h"

#include <string>
#include <type_traits>
#include <vector>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

// Sinks with a vectorised kernel for already smoothed values (simd::update_run):
// the optimizers' sinks among those with vectorised sweeps.
template <typename Sink>
constexpr bool has_simd_update = has_simd_kernel<Sink>::value && !std::is_same_v<Sink, SmoothSink<float>> &&
                                 !std::is_same_v<Sink, SmoothSink<double>>;

// The sink over a whole tensor of already smoothed values `s`.
template <typename Sink, typename scalar_t>
void elementwise_update(const Sink& sink, const scalar_t* s, int64_t n) {
  const bool vectorised = has_simd_update<Sink> && simd::supported();
  torch::stable::parallel_for(0, n, int64_t{1} << 15, [&](int64_t begin, int64_t end) {
    if constexpr (has_simd_update<Sink>) {
      if (vectorised) {
        simd::update_run(sink, begin, s + begin, end - begin);
        return;
      }
    }
    sink(begin, s + begin, end - begin);
  });
}

// Feeds sink_for(i, scale), for every gradient i, the values x whose
// scale * x is sign * S(g_i): smoothing with (sigma, order) along rings of one
// gradient each, or of all of them in list order when `group_ring`. The
// gradients are contiguous float32/float64 of one dtype (scalar_t).
template <typename scalar_t, typename SinkFor>
void smooth_into_sinks(const std::vector<Tensor>& grads, double sigma, int64_t order, bool group_ring,
                       const std::string& backend, double sign, SinkFor&& sink_for) {
  const auto filter = core::make_recursive_filter(sigma, order, truncation_tolerance(grads[0].scalar_type()));
  if (filter.is_identity()) {  // sigma == 0: the optimizer's plain update
    for (size_t i = 0; i < grads.size(); ++i) {
      elementwise_update(sink_for(i, sign), grads[i].const_data_ptr<scalar_t>(), grads[i].numel());
    }
    return;
  }

  // Rings: the whole list, or one per tensor. Direct rings go into one plan.
  std::vector<std::vector<int64_t>> rings;
  if (group_ring) {
    rings.emplace_back();
    for (size_t i = 0; i < grads.size(); ++i) {
      rings.back().push_back(static_cast<int64_t>(i));
    }
  } else {
    for (size_t i = 0; i < grads.size(); ++i) {
      rings.push_back({static_cast<int64_t>(i)});
    }
  }
  const SmoothBackend requested = parse_backend(backend);
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
    fft_smooth(input, smoothed, sigma, order);
    const scalar_t* s = smoothed.const_data_ptr<scalar_t>();
    for (int64_t i : *ring) {
      elementwise_update(sink_for(static_cast<size_t>(i), sign), s, grads[i].numel());
      s += grads[i].numel();
    }
  }
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
