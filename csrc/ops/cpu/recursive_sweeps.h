#pragma once

// The direct route on CPU: causal and anti-causal sweeps of a RecursiveFilter
// over rings stored as one or more contiguous segments.
//
// Why chunks and lanes: a first-order recursion is a chain of dependent
// multiply-adds, so one chain runs at the latency of an FMA (~4 cycles per
// element). A ring is therefore cut into chunks; each chunk starts from the
// state a zero-initialised cascade reaches after `warmup` preceding elements
// (DESIGN.md section 1), and up to kMaxLanes chunks of one segment are swept in
// lock-step so that their independent chains overlap in the pipeline, while
// threads take different groups of chunks.
//
// Why four phases: chunk start states are computed before any chunk is
// written, so a sweep may write over its own input (in-place smoothing) and
// the anti-causal sweep may overwrite the causal results it reads.

#include "core/recursive_filter.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

// ---------------------------------------------------------------- cascades --
// Each cascade keeps its state in double: the recursions add many terms of
// similar size when sigma is large, where float32 state would lose digits.

// Order 1: one real pole.
struct FirstOrderCascade {
  struct State {
    double y = 0.0;
  };
  double r;

  explicit FirstOrderCascade(const core::RecursiveFilter& filter) : r(filter.sections[0].a1) {}
  double push(State& s, double x) const {
    s.y = x + r * s.y;
    return s.y;
  }
};

// kSections real sections y = x + a1 y[-1] - a2 y[-2] (a2 = 0 for a real pole).
template <int kSections>
struct SectionCascade {
  struct State {
    double y1[kSections] = {};
    double y2[kSections] = {};
  };
  double a1[kSections];
  double a2[kSections];

  explicit SectionCascade(const core::RecursiveFilter& filter) {
    for (int m = 0; m < kSections; ++m) {
      a1[m] = filter.sections[m].a1;
      a2[m] = filter.sections[m].a2;
    }
  }
  double push(State& s, double x) const {
    for (int m = 0; m < kSections; ++m) {
      const double y = x + a1[m] * s.y1[m] - a2[m] * s.y2[m];
      s.y2[m] = s.y1[m];
      s.y1[m] = y;
      x = y;
    }
    return x;
  }
};

// Any number of sections up to kMaxDirectSections (high orders are rare).
constexpr int kMaxDirectSections = 32;

struct DynamicCascade {
  struct State {
    std::array<double, kMaxDirectSections> y1{};
    std::array<double, kMaxDirectSections> y2{};
  };
  int count;
  std::array<double, kMaxDirectSections> a1{};
  std::array<double, kMaxDirectSections> a2{};

  explicit DynamicCascade(const core::RecursiveFilter& filter)
      : count(static_cast<int>(filter.sections.size())) {
    for (int m = 0; m < count; ++m) {
      a1[m] = filter.sections[m].a1;
      a2[m] = filter.sections[m].a2;
    }
  }
  double push(State& s, double x) const {
    for (int m = 0; m < count; ++m) {
      const double y = x + a1[m] * s.y1[m] - a2[m] * s.y2[m];
      s.y2[m] = s.y1[m];
      s.y1[m] = y;
      x = y;
    }
    return x;
  }
};

// The highest order the direct route handles (two poles per section).
constexpr int64_t kMaxDirectOrder = 2 * kMaxDirectSections;

// Calls f(cascade) with the cheapest cascade type that represents `filter`.
template <typename F>
void visit_cascade(const core::RecursiveFilter& filter, F&& f) {
  TORCH_CHECK(!filter.is_identity(), "visit_cascade: the identity has no cascade");
  const size_t sections = filter.sections.size();
  TORCH_CHECK(sections <= static_cast<size_t>(kMaxDirectSections),
              "the direct backend supports orders up to ", kMaxDirectOrder);
  if (filter.is_single_first_order()) {
    f(FirstOrderCascade(filter));
  } else if (sections == 1) {
    f(SectionCascade<1>(filter));
  } else if (sections == 2) {
    f(SectionCascade<2>(filter));
  } else {
    f(DynamicCascade(filter));
  }
}

// ------------------------------------------------------------------ rings --

// A contiguous piece of a ring. The causal sweep reads `input` and writes
// `scratch`; the anti-causal sweep reads `scratch` (scratch may alias input).
template <typename scalar_t>
struct Segment {
  const scalar_t* input;
  scalar_t* scratch;
  int64_t offset;  // position of element 0 in the ring
  int64_t length;
};

// A ring: the segments [first, first + count) of a segment list, in ring order.
struct Ring {
  int64_t first;
  int64_t count;
  int64_t length;
};

// A chunk [begin, end) of one segment, in the segment's local indices.
struct Chunk {
  int64_t segment;
  int64_t ring;
  int64_t begin;
  int64_t end;
};

// Up to kMaxLanes consecutive chunks of one segment, swept together.
constexpr int kMaxLanes = 8;
struct ChunkGroup {
  int64_t first_chunk;
  int lanes;
};

// Reads a ring element by element across its segments, wrapping at its end.
template <typename scalar_t>
class RingCursor {
 public:
  RingCursor(const Segment<scalar_t>* segments, const Ring& ring, int64_t position, bool scratch)
      : segments_(segments + ring.first), count_(ring.count), scratch_(scratch) {
    position %= ring.length;
    if (position < 0) {
      position += ring.length;
    }
    // Binary search for the segment holding `position` (segments are sorted).
    int64_t lo = 0;
    int64_t hi = count_ - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (segments_[mid].offset <= position) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    segment_ = lo;
    index_ = position - segments_[lo].offset;
    skip_empty_forward();
  }

  double value() const {
    const Segment<scalar_t>& s = segments_[segment_];
    return static_cast<double>(scratch_ ? s.scratch[index_] : s.input[index_]);
  }

  void forward() {
    ++index_;
    skip_empty_forward();
  }

  void backward() {
    while (index_ == 0) {
      segment_ = segment_ == 0 ? count_ - 1 : segment_ - 1;
      index_ = segments_[segment_].length;
    }
    --index_;
  }

 private:
  void skip_empty_forward() {
    while (index_ >= segments_[segment_].length) {
      segment_ = segment_ + 1 == count_ ? 0 : segment_ + 1;
      index_ = 0;
    }
  }

  const Segment<scalar_t>* segments_;
  int64_t count_;
  bool scratch_;
  int64_t segment_ = 0;
  int64_t index_ = 0;
};

// The chunks and groups of a list of rings; sizes chosen so that the warm-up
// of each chunk costs a small fraction of its sweep.
template <typename scalar_t>
struct SweepPlan {
  std::vector<Segment<scalar_t>> segments;
  std::vector<Ring> rings;
  std::vector<Chunk> chunks;
  std::vector<ChunkGroup> groups;
  int64_t elements = 0;

  void add_ring(const std::vector<Segment<scalar_t>>& ring_segments, int64_t warmup) {
    Ring ring{static_cast<int64_t>(segments.size()), 0, 0};
    for (const auto& s : ring_segments) {
      Segment<scalar_t> placed = s;
      placed.offset = ring.length;
      ring.length += s.length;
      segments.push_back(placed);
      ++ring.count;
    }
    if (ring.length == 0) {
      segments.resize(ring.first);
      return;
    }
    const int64_t ring_id = static_cast<int64_t>(rings.size());
    rings.push_back(ring);
    elements += ring.length;
    // Long enough chunks keep the warm-up overhead under ~1/16 of the work.
    const int64_t target = std::max<int64_t>(int64_t{1} << 12, 16 * warmup);
    for (int64_t s = ring.first; s < ring.first + ring.count; ++s) {
      const int64_t length = segments[s].length;
      if (length == 0) {
        continue;
      }
      const int64_t count = std::max<int64_t>(1, length / target);
      const int64_t first_chunk = static_cast<int64_t>(chunks.size());
      for (int64_t c = 0; c < count; ++c) {
        chunks.push_back({s, ring_id, c * (length / count) + std::min(c, length % count),
                          (c + 1) * (length / count) + std::min(c + 1, length % count)});
      }
      // Groups of 8, then 4, 2, 1 for the remainder: lane counts are template
      // arguments, so only these four are compiled.
      int64_t next = first_chunk;
      int64_t left = count;
      for (int lanes = kMaxLanes; lanes >= 1; lanes /= 2) {
        while (left >= lanes) {
          groups.push_back({next, lanes});
          next += lanes;
          left -= lanes;
        }
      }
    }
  }
};

// ----------------------------------------------------------------- sweeps --

template <typename Cascade, typename scalar_t>
typename Cascade::State causal_start(const Cascade& cascade, const SweepPlan<scalar_t>& plan,
                                     const Chunk& chunk, int64_t warmup) {
  typename Cascade::State state{};
  const Ring& ring = plan.rings[chunk.ring];
  const int64_t start = plan.segments[chunk.segment].offset + chunk.begin;
  RingCursor<scalar_t> cursor(plan.segments.data(), ring, start - warmup, /*scratch=*/false);
  for (int64_t k = 0; k < warmup; ++k) {
    cascade.push(state, cursor.value());
    cursor.forward();
  }
  return state;
}

template <typename Cascade, typename scalar_t>
typename Cascade::State anticausal_start(const Cascade& cascade, const SweepPlan<scalar_t>& plan,
                                         const Chunk& chunk, int64_t warmup) {
  typename Cascade::State state{};
  const Ring& ring = plan.rings[chunk.ring];
  const int64_t end = plan.segments[chunk.segment].offset + chunk.end;
  RingCursor<scalar_t> cursor(plan.segments.data(), ring, end + warmup - 1, /*scratch=*/true);
  for (int64_t k = 0; k < warmup; ++k) {
    cascade.push(state, cursor.value());
    cursor.backward();
  }
  return state;
}

// Lock-step causal sweep of kLanes chunks of one segment: scratch = Causal(input).
template <int kLanes, typename Cascade, typename scalar_t>
void causal_group(const Cascade& cascade, const SweepPlan<scalar_t>& plan, int64_t first,
                  typename Cascade::State* states) {
  const Segment<scalar_t>& seg = plan.segments[plan.chunks[first].segment];
  typename Cascade::State st[kLanes];
  int64_t begin[kLanes];
  int64_t length[kLanes];
  int64_t common = INT64_MAX;
  for (int l = 0; l < kLanes; ++l) {
    st[l] = states[first + l];
    begin[l] = plan.chunks[first + l].begin;
    length[l] = plan.chunks[first + l].end - begin[l];
    common = std::min(common, length[l]);
  }
  const scalar_t* in = seg.input;
  scalar_t* out = seg.scratch;
  for (int64_t i = 0; i < common; ++i) {
    for (int l = 0; l < kLanes; ++l) {
      const int64_t j = begin[l] + i;
      out[j] = static_cast<scalar_t>(cascade.push(st[l], static_cast<double>(in[j])));
    }
  }
  for (int l = 0; l < kLanes; ++l) {
    for (int64_t j = begin[l] + common; j < begin[l] + length[l]; ++j) {
      out[j] = static_cast<scalar_t>(cascade.push(st[l], static_cast<double>(in[j])));
    }
  }
}

// Lock-step anti-causal sweep of kLanes chunks of one segment, from each
// chunk's end to its begin. Calls emit(j, x) with the unscaled result x at
// local index j; emit may overwrite scratch[j] (it is read only before).
template <int kLanes, typename Cascade, typename scalar_t, typename Emit>
void anticausal_group(const Cascade& cascade, const SweepPlan<scalar_t>& plan, int64_t first,
                      typename Cascade::State* states, Emit& emit) {
  const Segment<scalar_t>& seg = plan.segments[plan.chunks[first].segment];
  typename Cascade::State st[kLanes];
  int64_t last[kLanes];
  int64_t length[kLanes];
  int64_t common = INT64_MAX;
  for (int l = 0; l < kLanes; ++l) {
    st[l] = states[first + l];
    last[l] = plan.chunks[first + l].end - 1;
    length[l] = plan.chunks[first + l].end - plan.chunks[first + l].begin;
    common = std::min(common, length[l]);
  }
  const scalar_t* y = seg.scratch;
  for (int64_t i = 0; i < common; ++i) {
    for (int l = 0; l < kLanes; ++l) {
      const int64_t j = last[l] - i;
      emit(j, cascade.push(st[l], static_cast<double>(y[j])));
    }
  }
  for (int l = 0; l < kLanes; ++l) {
    for (int64_t j = last[l] - common; j > last[l] - length[l]; --j) {
      emit(j, cascade.push(st[l], static_cast<double>(y[j])));
    }
  }
}

template <typename F>
void dispatch_lanes(int lanes, F&& f) {
  switch (lanes) {
    case 8:
      f(std::integral_constant<int, 8>());
      break;
    case 4:
      f(std::integral_constant<int, 4>());
      break;
    case 2:
      f(std::integral_constant<int, 2>());
      break;
    default:
      f(std::integral_constant<int, 1>());
      break;
  }
}

// Runs the whole direct route over every ring of `plan`.
// make_emitter(segment_index) returns the per-element callback of the
// anti-causal sweep for that segment (see anticausal_group).
template <typename Cascade, typename scalar_t, typename MakeEmitter>
void run_sweeps(const Cascade& cascade, const SweepPlan<scalar_t>& plan, int64_t warmup,
                MakeEmitter&& make_emitter) {
  using State = typename Cascade::State;
  const int64_t num_chunks = static_cast<int64_t>(plan.chunks.size());
  const int64_t num_groups = static_cast<int64_t>(plan.groups.size());
  if (num_chunks == 0) {
    return;
  }
  std::vector<State> states(static_cast<size_t>(num_chunks));
  // Grain sizes keep small problems on one thread: a parallel region costs
  // more than sweeping a few thousand elements.
  const int64_t state_grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(warmup, 1));
  const int64_t per_group = std::max<int64_t>(1, plan.elements / num_groups);
  const int64_t group_grain = std::max<int64_t>(1, (int64_t{1} << 15) / per_group);

  at::parallel_for(0, num_chunks, state_grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      states[c] = causal_start(cascade, plan, plan.chunks[c], warmup);
    }
  });
  at::parallel_for(0, num_groups, group_grain, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const ChunkGroup& group = plan.groups[g];
      dispatch_lanes(group.lanes, [&](auto lanes) {
        causal_group<decltype(lanes)::value>(cascade, plan, group.first_chunk, states.data());
      });
    }
  });
  at::parallel_for(0, num_chunks, state_grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      states[c] = anticausal_start(cascade, plan, plan.chunks[c], warmup);
    }
  });
  at::parallel_for(0, num_groups, group_grain, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const ChunkGroup& group = plan.groups[g];
      auto emit = make_emitter(plan.chunks[group.first_chunk].segment);
      dispatch_lanes(group.lanes, [&](auto lanes) {
        anticausal_group<decltype(lanes)::value>(cascade, plan, group.first_chunk, states.data(),
                                                 emit);
      });
    }
  });
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
