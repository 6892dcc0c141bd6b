#pragma once

// The direct route on CPU: causal and anti-causal sweeps of a RecursiveFilter
// over rings stored as one or more contiguous segments.
//
// Why chunks: each ring is cut into chunks that are solved independently.
// A chunk starts from the state a zero-initialised cascade reaches after
// `warmup` elements (docs/design.md §2): the causal start from the inputs
// before the chunk, the anti-causal start from the causal results just after
// it (recomputed from the inputs there). With both start states known, a chunk
// runs its causal sweep into a small scratch that stays in cache and its
// anti-causal sweep straight out of it, so each input element is read from
// memory once and each result written once: no full-size intermediate.
//
// Why lanes: a recursion is a chain of dependent multiply-adds, one FMA
// latency per element. Up to kMaxLanes chunks of one segment are swept in
// lock-step so that their independent chains overlap in the pipeline.
//
// Why two phases: all start states are computed (from the inputs only) before
// any chunk is written, so results may overwrite their own inputs (in-place
// smoothing) while other chunks still need those inputs for their warm-ups.

#include "core/recursive_filter.h"
#include "ops/cpu/simd_sweeps.h"
#include "ops/cpu/sinks.h"

#include "ops/stable.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

// ---------------------------------------------------------------- cascades --
// State is kept in double: when sigma is large the recursions add many terms
// of similar size, where float32 state would lose digits.

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

  // Coefficients and states in the layout of simd::Lanes8.
  int sections() const { return 1; }
  void coefficients(double* a1, double* a2) const {
    a1[0] = r;
    a2[0] = 0.0;
  }
  static void export_state(const State& s, double* out) {
    out[0] = s.y;
    out[1] = 0.0;
  }
  static void import_state(const double* in, State& s) { s.y = in[0]; }
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
      // a2 * y2 is known a step early, so the dependent chain is one FMA.
      const double y = a1[m] * s.y1[m] + (x - a2[m] * s.y2[m]);
      s.y2[m] = s.y1[m];
      s.y1[m] = y;
      x = y;
    }
    return x;
  }

  // Coefficients and states in the layout of simd::Lanes8.
  int sections() const { return kSections; }
  void coefficients(double* c1, double* c2) const {
    for (int m = 0; m < kSections; ++m) {
      c1[m] = a1[m];
      c2[m] = a2[m];
    }
  }
  static void export_state(const State& s, double* out) {
    for (int m = 0; m < kSections; ++m) {
      out[m] = s.y1[m];
      out[kSections + m] = s.y2[m];
    }
  }
  static void import_state(const double* in, State& s) {
    for (int m = 0; m < kSections; ++m) {
      s.y1[m] = in[m];
      s.y2[m] = in[kSections + m];
    }
  }
};

// Any number of sections up to kMaxDirectSections (high orders are rare).
constexpr int kMaxDirectSections = static_cast<int>(core::kMaxDirectOrder / 2);

struct DynamicCascade {
  struct State {
    std::array<double, kMaxDirectSections> y1{};
    std::array<double, kMaxDirectSections> y2{};
  };
  int count;
  std::array<double, kMaxDirectSections> a1{};
  std::array<double, kMaxDirectSections> a2{};

  explicit DynamicCascade(const core::RecursiveFilter& filter) : count(static_cast<int>(filter.sections.size())) {
    for (int m = 0; m < count; ++m) {
      a1[m] = filter.sections[m].a1;
      a2[m] = filter.sections[m].a2;
    }
  }
  double push(State& s, double x) const {
    for (int m = 0; m < count; ++m) {
      const double y = a1[m] * s.y1[m] + (x - a2[m] * s.y2[m]);
      s.y2[m] = s.y1[m];
      s.y1[m] = y;
      x = y;
    }
    return x;
  }
};

using core::kMaxDirectOrder;

inline bool direct_supports(const core::RecursiveFilter& filter) {
  return filter.sections.size() <= static_cast<size_t>(kMaxDirectSections) && filter.warmup >= 0;
}

// Calls f(cascade) with the cheapest cascade type that represents `filter`.
template <typename F>
void visit_cascade(const core::RecursiveFilter& filter, F&& f) {
  check(!filter.is_identity(), "visit_cascade: the identity has no cascade");
  check(direct_supports(filter), "the direct backend supports orders up to ", kMaxDirectOrder, " and warm-ups up to ",
        core::kMaxWarmup, " elements");
  const size_t sections = filter.sections.size();
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

// ------------------------------------------------------------------ plans --

// A contiguous piece of a ring; `input` is what the causal sweep reads.
// A context segment is read by the warm-ups of its neighbours but gets no
// chunks of its own (the halos of a shard of a ring split across processes).
template <typename scalar_t>
struct Segment {
  const scalar_t* input;
  int64_t length;
  int64_t tag = 0;       // the caller's name for the segment, handed to its emitter
  bool context = false;  // read only, never solved
  int64_t offset = 0;    // position of element 0 in its ring (set by add_ring)
};

// A ring: the segments [first, first + count) of a plan, in ring order.
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

// Up to kMaxLanes consecutive chunks of one segment, swept in lock-step.
// Chunks of a segment differ in length by at most one element.
constexpr int kMaxLanes = 8;
struct ChunkGroup {
  int64_t first_chunk;
  int lanes;
};

constexpr int64_t kChunkElements = 6000;

// Elements per chunk: long enough that the 4 * warmup start-up work of a
// chunk stays near 1/16 of its sweep, short enough that kMaxLanes chunks of
// float64 scratch stay in a core's L2 cache. Not a power of two: chunks of
// power-of-two tensors would otherwise start at addresses that share cache
// sets, and the lanes would evict each other.
inline int64_t chunk_length(int64_t warmup) { return std::max<int64_t>(kChunkElements, 64 * warmup); }

// How many chunks a segment of `length` elements is cut into: about
// length / target, rounded to a multiple of kMaxLanes so that every chunk runs
// in a full group (the vectorised kernels take full groups only). A shorter
// segment still gets one full group while its chunks stay at least
// kShortestChunkWarmups warm-ups long: a lone chunk sweeps one dependent chain,
// eight lanes sweep eight at once, which outweighs their start-up work (4
// warm-ups each) down to chunks of a few hundred elements (LeNet's layers).
constexpr int64_t kShortestChunkWarmups = 4;
inline int64_t chunk_count(int64_t length, int64_t target, int64_t warmup) {
  const int64_t count = std::max<int64_t>(1, length / target);
  if (count >= kMaxLanes) {
    return (count + kMaxLanes / 2) / kMaxLanes * kMaxLanes;
  }
  const int64_t shortest = kShortestChunkWarmups * std::max<int64_t>(warmup, 1);
  return length >= kMaxLanes * shortest ? kMaxLanes : count;
}

// Calls f(pointer, length) for the contiguous runs that make up `count`
// consecutive ring elements from `position` on, wrapping around the ring as
// many times as needed (a warm-up may be longer than the ring).
template <typename scalar_t, typename F>
void for_each_run(const Segment<scalar_t>* segments, const Ring& ring, int64_t position, int64_t count, F&& f) {
  const Segment<scalar_t>* ring_segments = segments + ring.first;
  position %= ring.length;
  if (position < 0) {
    position += ring.length;
  }
  // The last segment starting at or before `position` (offsets are sorted).
  int64_t lo = 0;
  int64_t hi = ring.count - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (ring_segments[mid].offset <= position) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  int64_t segment = lo;
  int64_t index = position - ring_segments[lo].offset;
  while (count > 0) {
    const Segment<scalar_t>& s = ring_segments[segment];
    const int64_t run = std::min(count, s.length - index);
    if (run > 0) {
      f(s.input + index, run);
      count -= run;
    }
    segment = segment + 1 == ring.count ? 0 : segment + 1;
    index = 0;
  }
}

template <typename scalar_t>
struct SweepPlan {
  std::vector<Segment<scalar_t>> segments;
  std::vector<Ring> rings;
  std::vector<Chunk> chunks;
  std::vector<ChunkGroup> groups;
  int64_t elements = 0;
  int64_t max_chunk = 0;

  // Appends a ring made of `ring_segments` (offsets are assigned here).
  // Empty rings are dropped; empty segments are kept but get no chunks.
  void add_ring(const std::vector<Segment<scalar_t>>& ring_segments, int64_t warmup) {
    Ring ring{static_cast<int64_t>(segments.size()), 0, 0};
    for (const auto& s : ring_segments) {
      segments.push_back({s.input, s.length, s.tag, s.context, ring.length});
      ring.length += s.length;
      ++ring.count;
    }
    if (ring.length == 0) {
      segments.resize(static_cast<size_t>(ring.first));
      return;
    }
    const int64_t ring_id = static_cast<int64_t>(rings.size());
    rings.push_back(ring);
    elements += ring.length;
    const int64_t target = chunk_length(warmup);
    for (int64_t s = ring.first; s < ring.first + ring.count; ++s) {
      const int64_t length = segments[s].length;
      if (length == 0 || segments[s].context) {
        continue;
      }
      const int64_t count = chunk_count(length, target, warmup);
      const int64_t base = length / count;
      const int64_t extra = length % count;
      const int64_t first_chunk = static_cast<int64_t>(chunks.size());
      for (int64_t c = 0; c < count; ++c) {
        const int64_t begin = c * base + std::min(c, extra);
        chunks.push_back({s, ring_id, begin, begin + base + (c < extra ? 1 : 0)});
      }
      max_chunk = std::max(max_chunk, base + (extra > 0 ? 1 : 0));
      // Groups of 8, then 4, 2, 1: lane counts are template arguments.
      int64_t next = first_chunk;
      int64_t left = count;
      for (int lanes = kMaxLanes; lanes >= 1; lanes /= 2) {
        for (; left >= lanes; left -= lanes, next += lanes) {
          groups.push_back({next, lanes});
        }
      }
    }
  }
};

// --------------------------------------------------------- start states --

template <typename Cascade>
struct StartStates {
  typename Cascade::State causal;
  typename Cascade::State anticausal;
};

// Per-thread scratch that survives across calls, so that no step pays for
// fresh pages (page faults cost more than the sweeps themselves).
inline std::vector<double>& thread_scratch(size_t size) {
  thread_local std::vector<double> scratch;
  if (scratch.size() < size) {
    scratch.resize(size);
  }
  return scratch;
}

template <typename Cascade, typename scalar_t>
StartStates<Cascade> chunk_start_states(const Cascade& cascade, const SweepPlan<scalar_t>& plan, const Chunk& chunk,
                                        int64_t warmup) {
  using State = typename Cascade::State;
  const Ring& ring = plan.rings[chunk.ring];
  const Segment<scalar_t>* segments = plan.segments.data();
  const int64_t begin = segments[chunk.segment].offset + chunk.begin;
  const int64_t end = segments[chunk.segment].offset + chunk.end;
  StartStates<Cascade> starts{};

  for_each_run(segments, ring, begin - warmup, warmup, [&](const scalar_t* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      cascade.push(starts.causal, static_cast<double>(x[i]));
    }
  });

  // The causal results y[end .. end + warmup) from the inputs around them,
  // then the anti-causal warm-up over them, last to first.
  State state{};
  for_each_run(segments, ring, end - warmup, warmup, [&](const scalar_t* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      cascade.push(state, static_cast<double>(x[i]));
    }
  });
  double* after = thread_scratch(static_cast<size_t>(warmup)).data();
  for_each_run(segments, ring, end, warmup, [&](const scalar_t* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      *after++ = cascade.push(state, static_cast<double>(x[i]));
    }
  });
  for (int64_t k = 0; k < warmup; ++k) {
    cascade.push(starts.anticausal, *--after);
  }
  return starts;
}

// Sinks and cascades with a vectorised kernel (simd_sweeps.h).
template <typename Sink>
struct has_simd_kernel : std::false_type {};
template <typename T>
struct has_simd_kernel<SmoothSink<T>> : std::true_type {};
template <typename T>
struct has_simd_kernel<UpdateSink<T>> : std::true_type {};
template <typename T>
struct has_simd_kernel<AdamWSink<T>> : std::true_type {};

template <typename Cascade>
struct has_simd_cascade : std::false_type {};
template <>
struct has_simd_cascade<FirstOrderCascade> : std::true_type {};
template <>
struct has_simd_cascade<SectionCascade<1>> : std::true_type {};
template <>
struct has_simd_cascade<SectionCascade<2>> : std::true_type {};

// The start states of the 8 chunks of a group at once (simd::start_states8).
// A lane whose warm-up windows are not contiguous inside its segment (its
// chunk touches the segment's edge: they cross into other segments or wrap
// around the ring) reads copies of them gathered into `copies`.
template <typename Cascade, typename scalar_t>
void group_start_states(const Cascade& cascade, const SweepPlan<scalar_t>& plan, int64_t first, int64_t warmup,
                        StartStates<Cascade>* starts) {
  constexpr int kLanes = 8;
  constexpr int kWidth = 2 * simd::kMaxSimdSections;
  thread_local std::vector<scalar_t> copies;
  thread_local std::vector<double> after;
  copies.resize(static_cast<size_t>(kLanes * 3 * warmup));
  after.resize(static_cast<size_t>(kLanes * warmup));
  const scalar_t* causal_windows[kLanes];
  const scalar_t* anticausal_windows[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const Chunk& chunk = plan.chunks[first + l];
    const Segment<scalar_t>& segment = plan.segments[chunk.segment];
    if (chunk.begin >= warmup && chunk.end + warmup <= segment.length) {
      causal_windows[l] = segment.input + chunk.begin - warmup;
      anticausal_windows[l] = segment.input + chunk.end - warmup;
      continue;
    }
    const Ring& ring = plan.rings[chunk.ring];
    scalar_t* causal = copies.data() + l * 3 * warmup;
    scalar_t* anticausal = causal + warmup;
    auto gather = [&](scalar_t* out, int64_t position, int64_t count) {
      for_each_run(plan.segments.data(), ring, position, count, [&](const scalar_t* x, int64_t n) {
        std::copy(x, x + n, out);
        out += n;
      });
    };
    gather(causal, segment.offset + chunk.begin - warmup, warmup);
    gather(anticausal, segment.offset + chunk.end - warmup, 2 * warmup);
    causal_windows[l] = causal;
    anticausal_windows[l] = anticausal;
  }
  double a1[simd::kMaxSimdSections];
  double a2[simd::kMaxSimdSections];
  double causal[kLanes * kWidth];
  double anticausal[kLanes * kWidth];
  cascade.coefficients(a1, a2);
  const int sections = cascade.sections();
  simd::start_states8(causal_windows, anticausal_windows, {warmup, sections, a1, a2, causal, anticausal, after.data()});
  for (int l = 0; l < kLanes; ++l) {
    Cascade::import_state(causal + 2 * sections * l, starts[first + l].causal);
    Cascade::import_state(anticausal + 2 * sections * l, starts[first + l].anticausal);
  }
}

// The start states of every chunk of a group.
template <typename Cascade, typename scalar_t>
void start_states_of_group(const Cascade& cascade, const SweepPlan<scalar_t>& plan, const ChunkGroup& group,
                           int64_t warmup, StartStates<Cascade>* starts) {
  if constexpr (has_simd_cascade<Cascade>::value) {
    if (group.lanes == 8 && simd::supported()) {
      group_start_states(cascade, plan, group.first_chunk, warmup, starts);
      return;
    }
  }
  for (int64_t c = group.first_chunk; c < group.first_chunk + group.lanes; ++c) {
    starts[c] = chunk_start_states(cascade, plan, plan.chunks[c], warmup);
  }
}

// ----------------------------------------------------------------- sweeps --

// Solves kLanes chunks of one segment and hands the unscaled results
// x = Anti(Causal(input)) of each chunk to emit(begin, x, n): one contiguous
// run per chunk, so the emitter's loop is sequential and vectorisable.
template <int kLanes, typename Cascade, typename scalar_t, typename Emit>
void sweep_group(const Cascade& cascade, const SweepPlan<scalar_t>& plan, int64_t first,
                 const StartStates<Cascade>* starts, Emit& emit) {
  using State = typename Cascade::State;
  const scalar_t* in = plan.segments[plan.chunks[first].segment].input;
  int64_t begin[kLanes];
  int64_t length[kLanes];
  int64_t common = plan.chunks[first].end - plan.chunks[first].begin;
  for (int l = 0; l < kLanes; ++l) {
    begin[l] = plan.chunks[first + l].begin;
    length[l] = plan.chunks[first + l].end - begin[l];
    common = std::min(common, length[l]);
  }
  // Lane-major scratch; the odd stride keeps the lanes out of each other's
  // cache sets (a power-of-two stride would make them all collide).
  const int64_t stride = (common + 1) | 1;
  double* y = thread_scratch(static_cast<size_t>(stride * kLanes)).data();

  if constexpr (kLanes == 8 && has_simd_cascade<Cascade>::value && has_simd_kernel<Emit>::value) {
    if (simd::supported()) {
      constexpr int kWidth = 2 * simd::kMaxSimdSections;
      double a1[simd::kMaxSimdSections];
      double a2[simd::kMaxSimdSections];
      double causal[kLanes * kWidth];
      double anticausal[kLanes * kWidth];
      const int sections = cascade.sections();
      cascade.coefficients(a1, a2);
      for (int l = 0; l < kLanes; ++l) {
        Cascade::export_state(starts[first + l].causal, causal + 2 * sections * l);
        Cascade::export_state(starts[first + l].anticausal, anticausal + 2 * sections * l);
      }
      simd::sweep_lanes8(in, {begin, length, common, sections, a1, a2, causal, anticausal, y}, emit);
      return;
    }
  }

  State st[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    st[l] = starts[first + l].causal;
  }
  for (int64_t i = 0; i < common; ++i) {
    for (int l = 0; l < kLanes; ++l) {
      y[l * stride + i] = cascade.push(st[l], static_cast<double>(in[begin[l] + i]));
    }
  }
  for (int l = 0; l < kLanes; ++l) {
    for (int64_t i = common; i < length[l]; ++i) {
      y[l * stride + i] = cascade.push(st[l], static_cast<double>(in[begin[l] + i]));
    }
  }

  for (int l = 0; l < kLanes; ++l) {
    st[l] = starts[first + l].anticausal;
  }
  for (int l = 0; l < kLanes; ++l) {
    for (int64_t i = length[l] - 1; i >= common; --i) {
      y[l * stride + i] = cascade.push(st[l], y[l * stride + i]);
    }
  }
  for (int64_t i = common - 1; i >= 0; --i) {
    for (int l = 0; l < kLanes; ++l) {
      y[l * stride + i] = cascade.push(st[l], y[l * stride + i]);
    }
  }
  for (int l = 0; l < kLanes; ++l) {
    emit(begin[l], y + l * stride, length[l]);
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

// Runs the direct route over every ring of `plan`. make_emitter(tag) returns
// the callback that receives the results of the segment with that tag (see
// sweep_group); it may write over the segment's own input.
template <typename Cascade, typename scalar_t, typename MakeEmitter>
void run_direct(const Cascade& cascade, const SweepPlan<scalar_t>& plan, int64_t warmup, MakeEmitter&& make_emitter) {
  const int64_t num_chunks = static_cast<int64_t>(plan.chunks.size());
  const int64_t num_groups = static_cast<int64_t>(plan.groups.size());
  if (num_chunks == 0) {
    return;
  }
  std::vector<StartStates<Cascade>> starts(static_cast<size_t>(num_chunks));
  // Grain sizes keep small problems on one thread: opening a parallel region
  // costs more than sweeping a few thousand elements.
  const int64_t start_grain = std::max<int64_t>(1, (int64_t{1} << 11) / (4 * warmup + 1));
  const int64_t group_grain =
      std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, plan.elements / num_groups));

  torch::stable::parallel_for(0, num_groups, start_grain, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      start_states_of_group(cascade, plan, plan.groups[g], warmup, starts.data());
    }
  });
  torch::stable::parallel_for(0, num_groups, group_grain, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const ChunkGroup& group = plan.groups[g];
      auto emit = make_emitter(plan.segments[plan.chunks[group.first_chunk].segment].tag);
      dispatch_lanes(group.lanes, [&](auto lanes) {
        sweep_group<decltype(lanes)::value>(cascade, plan, group.first_chunk, starts.data(), emit);
      });
    }
  });
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
