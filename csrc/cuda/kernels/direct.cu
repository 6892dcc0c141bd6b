// The direct route and the elementwise update on CUDA (see smoothing.h).
//
// Why one-warp blocks: a block's phases (load, causal and anti-causal sweeps,
// write) exchange values only within the warp, so __syncwarp orders them and
// no block-wide barrier is needed; how many blocks an SM holds is set by the
// shared memory per element, not by the block size, so larger blocks would
// not keep more warps in flight. Memory-level parallelism comes instead from
// the batched loads and stores below (kLoadBatch, kStoreBatch per lane).

#include "cuda/kernels/smoothing.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <vector>

namespace torch_mlsgd {
namespace cuda {
namespace {

constexpr int kUpdateThreads = 256;
constexpr int64_t kUpdateRange = kUpdateThreads * 4;  // elements one update block handles
// Global loads each lane has in flight while filling shared memory: 128 bytes,
// so that the few warps an SM holds (shared memory bounds them) still keep
// enough bytes in flight to cover the memory latency.
template <typename scalar_t>
constexpr int kLoadBatch = static_cast<int>(128 / sizeof(scalar_t));
constexpr int kStoreBatch = 8;  // elements each lane updates per round of the write phase

// A ring as kernels see it; which pointers matter depends on the kernel.
struct DeviceRing {
  const void* input;
  void* output;       // smoothing: the results; AdamW: exp_avg
  void* param;        // updates: the parameter
  void* buffer;       // LSGD: the momentum buffer (may be null); AdamW: exp_avg_sq
  void* extra;        // AdamW: max_exp_avg_sq (null without amsgrad)
  const float* step;  // AdamW: the count
  int64_t n;
  int64_t first_block;
  double scale;
  bool fresh;
};

// Up to kRingsPerLaunch rings, passed by value as a kernel parameter: nothing
// is copied from the host at launch, so the launch can be captured in a graph.
struct RingTable {
  DeviceRing rings[kRingsPerLaunch];
  int64_t count;
};
// CUDA 12.1+ on sm_70+ allows 32,764 bytes of kernel parameters.
static_assert(sizeof(RingTable) + sizeof(DeviceFilter) + std::max(sizeof(UpdateRule), sizeof(AdamWRule)) + 64 <= 32764,
              "kRingsPerLaunch is too large for the kernel parameter space");

__device__ __forceinline__ const DeviceRing& find_ring(const RingTable& table, int64_t block) {
  int64_t lo = 0;
  int64_t hi = table.count - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (table.rings[mid].first_block <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return table.rings[lo];
}

// The cascade's state for one lane, in double. The loops run over the
// compile-time kMaxSections with a predicate, so that the state stays in
// registers (a loop bounded by f.sections would put it in local memory).
template <bool kFirstOrder>
struct LaneState {
  double y1[kMaxSections];
  double y2[kMaxSections];

  __device__ __forceinline__ void clear() {
#pragma unroll
    for (int m = 0; m < kMaxSections; ++m) {
      y1[m] = 0.0;
      y2[m] = 0.0;
    }
  }

  __device__ __forceinline__ double push(const DeviceFilter& f, double x) {
    if constexpr (kFirstOrder) {
      y1[0] = fma(f.a1[0], y1[0], x);
      return y1[0];
    } else {
#pragma unroll
      for (int m = 0; m < kMaxSections; ++m) {
        if (m < f.sections) {
          const double y = fma(f.a1[m], y1[m], fma(-f.a2[m], y2[m], x));
          y2[m] = y1[m];
          y1[m] = y;
          x = y;
        }
      }
      return x;
    }
  }
};

// The write phase: at[t] holds the unscaled result x of ring position begin + t.
// Each lane takes positions t0, t0 + 32, ... (coalesced across the warp).
struct SmoothSinkDevice {
  template <typename scalar_t>
  __device__ __forceinline__ void operator()(const DeviceRing& ring, const DeviceFilter& f, const UpdateRule&,
                                             const scalar_t* at, int64_t begin, int64_t range, int lane) const {
    scalar_t* out = static_cast<scalar_t*>(ring.output) + begin;
    for (int64_t t = lane; t < range; t += kWarp) {
      out[t] = static_cast<scalar_t>(f.gain * static_cast<double>(at[t]));
    }
  }
};

// GradScaler's part of an update (UpdateRule): whether the step is skipped,
// and the factor the gradients carry. Every thread of a launch reads the same
// value, so a skipped launch returns from every block before any write.
template <typename Rule>
__device__ __forceinline__ bool skipped(const Rule& rule) {
  return rule.found_inf != nullptr && *rule.found_inf != 0.0f;
}

template <typename Rule>
__device__ __forceinline__ double grad_scale(const Rule& rule) {
  return rule.grad_scale == nullptr ? 1.0 : static_cast<double>(*rule.grad_scale);
}

struct UpdateSinkDevice {
  // The parameter's (and buffer's) values of kStoreBatch positions are loaded
  // before any is updated, so that their loads are in flight together.
  template <typename scalar_t>
  __device__ __forceinline__ void operator()(const DeviceRing& ring, const DeviceFilter&, const UpdateRule& rule,
                                             const scalar_t* at, int64_t begin, int64_t range, int lane) const {
    scalar_t* param = static_cast<scalar_t*>(ring.param) + begin;
    scalar_t* buffer = ring.buffer == nullptr ? nullptr : static_cast<scalar_t*>(ring.buffer) + begin;
    const bool read_buffer = buffer != nullptr && !ring.fresh;
    const double scale = ring.scale / grad_scale(rule);
    for (int64_t t0 = lane; t0 < range; t0 += kWarp * kStoreBatch) {
      scalar_t w[kStoreBatch];
      scalar_t b[kStoreBatch];
#pragma unroll
      for (int j = 0; j < kStoreBatch; ++j) {
        const int64_t t = t0 + j * kWarp;
        if (t < range) {
          w[j] = param[t];
          b[j] = read_buffer ? buffer[t] : scalar_t(0);
        }
      }
#pragma unroll
      for (int j = 0; j < kStoreBatch; ++j) {
        const int64_t t = t0 + j * kWarp;
        if (t < range) {
          scalar_t wj = w[j];
          scalar_t bj = b[j];
          rule.update.apply(scale * static_cast<double>(at[t]), &wj, buffer == nullptr ? nullptr : &bj, ring.fresh);
          param[t] = wj;
          if (buffer != nullptr) {
            buffer[t] = bj;
          }
        }
      }
    }
  }
};

// The AdamW update of a ring's positions from the smoothed values, its bias
// corrections from its count (read once per lane), the parameter and moments
// of kStoreBatch positions loaded before any is updated (as UpdateSinkDevice).
struct AdamWSinkDevice {
  template <typename scalar_t>
  __device__ __forceinline__ void operator()(const DeviceRing& ring, const DeviceFilter&, const AdamWRule& rule,
                                             const scalar_t* at, int64_t begin, int64_t range, int lane) const {
    const double t = static_cast<double>(*ring.step);
    const double step_size = rule.lr / (1.0 - pow(rule.beta1, t));
    const double bias_correction2_sqrt = sqrt(1.0 - pow(rule.beta2, t));
    const double scale = ring.scale / grad_scale(rule);
    scalar_t* param = static_cast<scalar_t*>(ring.param) + begin;
    scalar_t* exp_avg = static_cast<scalar_t*>(ring.output) + begin;
    scalar_t* exp_avg_sq = static_cast<scalar_t*>(ring.buffer) + begin;
    scalar_t* max_exp_avg_sq = ring.extra == nullptr ? nullptr : static_cast<scalar_t*>(ring.extra) + begin;
    for (int64_t t0 = lane; t0 < range; t0 += kWarp * kStoreBatch) {
      scalar_t w[kStoreBatch], m[kStoreBatch], v[kStoreBatch], vmax[kStoreBatch];
#pragma unroll
      for (int j = 0; j < kStoreBatch; ++j) {
        const int64_t i = t0 + j * kWarp;
        if (i < range) {
          w[j] = param[i];
          m[j] = exp_avg[i];
          v[j] = exp_avg_sq[i];
          vmax[j] = max_exp_avg_sq == nullptr ? scalar_t(0) : max_exp_avg_sq[i];
        }
      }
#pragma unroll
      for (int j = 0; j < kStoreBatch; ++j) {
        const int64_t i = t0 + j * kWarp;
        if (i < range) {
          core::AdamWUpdate::apply(scale * static_cast<double>(at[i]), rule.lr, rule.beta1, rule.beta2, rule.eps,
                                   rule.weight_decay, step_size, bias_correction2_sqrt, &w[j], &m[j], &v[j],
                                   max_exp_avg_sq == nullptr ? nullptr : &vmax[j]);
          param[i] = w[j];
          exp_avg[i] = m[j];
          exp_avg_sq[i] = v[j];
          if (max_exp_avg_sq != nullptr) {
            max_exp_avg_sq[i] = vmax[j];
          }
        }
      }
    }
  }
};

// One warp solves 32 consecutive chunks of one ring in shared memory. See
// smoothing.h; the phases are separated by __syncwarp so that every read of
// another lane's values happens before that lane overwrites them.
template <typename scalar_t, bool kFirstOrder, typename Rule, typename Sink>
__global__ void __launch_bounds__(kWarp)
    direct_kernel(const __grid_constant__ RingTable table, DeviceFilter f, Rule rule, Sink sink) {
  if (skipped(rule)) {
    return;
  }
  extern __shared__ double shared_storage[];
  scalar_t* buf = reinterpret_cast<scalar_t*>(shared_storage);
  const int lane = static_cast<int>(threadIdx.x);
  const DeviceRing& ring = find_ring(table, blockIdx.x);
  const int64_t n = ring.n;
  const int64_t begin = (static_cast<int64_t>(blockIdx.x) - ring.first_block) * kBlockRange;
  const int64_t range = n - begin < kBlockRange ? n - begin : kBlockRange;
  const int64_t warmup = f.warmup;

  // Inputs at ring positions [begin - warmup, begin + range + warmup), wrapped.
  // Positions lie in [-warmup, n + warmup): where the warm-up is no longer
  // than the ring, one add or subtract wraps them (no 64-bit division).
  const scalar_t* in = static_cast<const scalar_t*>(ring.input);
  const int64_t total = range + 2 * warmup;
  const bool short_warmup = warmup <= n;
  constexpr int kBatch = kLoadBatch<scalar_t>;
  for (int64_t t0 = lane; t0 < total; t0 += kWarp * kBatch) {
    scalar_t v[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int64_t t = t0 + j * kWarp;
      if (t < total) {
        int64_t pos = begin - warmup + t;
        if (short_warmup) {
          pos += pos < 0 ? n : (pos >= n ? -n : 0);
        } else {
          pos %= n;
          pos += pos < 0 ? n : 0;
        }
        v[j] = in[pos];
      }
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int64_t t = t0 + j * kWarp;
      if (t < total) {
        buf[t] = v[j];
      }
    }
  }
  __syncwarp();
  scalar_t* at = buf + warmup;  // at[t]: ring position begin + t
  const int64_t cb = static_cast<int64_t>(lane) * kChunk;
  const int64_t ce = cb + kChunk < range ? cb + kChunk : range;
  const bool active = cb < range;

  LaneState<kFirstOrder> state;
  state.clear();
  if (active) {  // causal start from the inputs before the chunk
    for (int64_t t = cb - warmup; t < cb; ++t) {
      state.push(f, static_cast<double>(at[t]));
    }
  }
  __syncwarp();
  if (active) {  // causal sweep; the last chunk runs on through the right halo
    const int64_t stop = ce == range ? range + warmup : ce;
    for (int64_t t = cb; t < stop; ++t) {
      at[t] = static_cast<scalar_t>(state.push(f, static_cast<double>(at[t])));
    }
  }
  __syncwarp();
  state.clear();
  if (active) {  // anti-causal start from the causal results after the chunk
    for (int64_t t = ce + warmup - 1; t >= ce; --t) {
      state.push(f, static_cast<double>(at[t]));
    }
  }
  __syncwarp();
  if (active) {
    for (int64_t t = ce - 1; t >= cb; --t) {
      at[t] = static_cast<scalar_t>(state.push(f, static_cast<double>(at[t])));
    }
  }
  __syncwarp();
  sink.template operator()<scalar_t>(ring, f, rule, at, begin, range, lane);
}

template <typename scalar_t>
__global__ void update_kernel(const __grid_constant__ RingTable table, UpdateRule rule) {
  if (skipped(rule)) {
    return;
  }
  const DeviceRing& ring = find_ring(table, blockIdx.x);
  const double scale = ring.scale / grad_scale(rule);
  const int64_t begin = (static_cast<int64_t>(blockIdx.x) - ring.first_block) * kUpdateRange;
  const int64_t end = begin + kUpdateRange < ring.n ? begin + kUpdateRange : ring.n;
  const scalar_t* grad = static_cast<const scalar_t*>(ring.input);
  scalar_t* param = static_cast<scalar_t*>(ring.param);
  scalar_t* buffer = static_cast<scalar_t*>(ring.buffer);
  for (int64_t pos = begin + threadIdx.x; pos < end; pos += kUpdateThreads) {
    rule.update.apply(scale * static_cast<double>(grad[pos]), param + pos, buffer == nullptr ? nullptr : buffer + pos,
                      ring.fresh);
  }
}

// Launches `launch(table, blocks)` once per kRingsPerLaunch non-empty rings,
// each ring taking ceil(n / range) consecutive blocks.
template <typename Launch>
cudaError_t for_each_table(const std::vector<DeviceRing>& rings, int64_t range, Launch launch) {
  RingTable table;
  table.count = 0;
  int64_t blocks = 0;
  auto flush = [&]() {
    const cudaError_t status = table.count == 0 ? cudaSuccess : launch(table, blocks);
    table.count = 0;
    blocks = 0;
    return status;
  };
  for (const DeviceRing& ring : rings) {
    if (ring.n == 0) {
      continue;
    }
    table.rings[table.count] = ring;
    table.rings[table.count].first_block = blocks;
    blocks += (ring.n + range - 1) / range;
    if (++table.count == kRingsPerLaunch) {
      if (const cudaError_t status = flush(); status != cudaSuccess) {
        return status;
      }
    }
  }
  return flush();
}

template <typename scalar_t, bool kFirstOrder, typename Rule, typename Sink>
cudaError_t launch_direct_kernel(const std::vector<DeviceRing>& rings, const DeviceFilter& f, const Rule& rule,
                                 Sink sink, cudaStream_t stream) {
  const size_t shared = direct_shared_bytes(f.warmup, sizeof(scalar_t));
  auto kernel = direct_kernel<scalar_t, kFirstOrder, Rule, Sink>;
  // The attribute is the process's, not this launch's: set it to the device's
  // limit (the same value from every thread), so that a thread launching a
  // smaller block cannot lower it under another's larger launch.
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) {
    status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(direct_shared_limit(device)));
  }
  if (status != cudaSuccess) {
    cudaGetLastError();  // leave no error behind for torch's next launch check
    return status;
  }
  return for_each_table(rings, kBlockRange, [&](const RingTable& table, int64_t blocks) {
    kernel<<<static_cast<unsigned>(blocks), kWarp, shared, stream>>>(table, f, rule, sink);
    return cudaGetLastError();
  });
}

// Rings of n = 1 or sigma = 0 are the identity, which the glue handles before
// calling; the kernel needs n >= 1 and skips empty rings.
template <typename scalar_t, typename Rule, typename Sink>
cudaError_t launch_direct(const std::vector<DeviceRing>& rings, const DeviceFilter& f, const Rule& rule, Sink sink,
                          cudaStream_t stream) {
  return f.first_order ? launch_direct_kernel<scalar_t, true>(rings, f, rule, sink, stream)
                       : launch_direct_kernel<scalar_t, false>(rings, f, rule, sink, stream);
}

}  // namespace

bool make_device_filter(const core::RecursiveFilter& filter, size_t element_bytes, size_t shared_limit,
                        DeviceFilter* out) {
  if (!direct_fits(filter.sections.size(), filter.warmup, element_bytes, shared_limit)) {
    return false;
  }
  DeviceFilter f;
  f.sections = static_cast<int>(filter.sections.size());
  f.first_order = filter.is_single_first_order();
  for (int m = 0; m < f.sections; ++m) {
    f.a1[m] = filter.sections[m].a1;
    f.a2[m] = filter.sections[m].a2;
  }
  f.gain = filter.gain;
  f.warmup = filter.warmup;
  *out = f;
  return true;
}

size_t direct_shared_limit(int device) {
  constexpr size_t kFallback = 48 * 1024;
  static std::array<std::atomic<size_t>, 64> known{};  // 0: not read yet
  const bool cached = device >= 0 && device < static_cast<int>(known.size());
  if (cached) {
    if (const size_t bytes = known[device].load(std::memory_order_relaxed); bytes != 0) {
      return bytes;
    }
  }
  int bytes = 0;
  if (cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess || bytes <= 0) {
    cudaGetLastError();  // not sticky; leave no error behind for the caller's next check
    return kFallback;
  }
  if (cached) {
    known[device].store(static_cast<size_t>(bytes), std::memory_order_relaxed);
  }
  return static_cast<size_t>(bytes);
}

template <typename scalar_t>
cudaError_t direct_smooth(const SmoothRing<scalar_t>* rings, int64_t count, const DeviceFilter& filter,
                          cudaStream_t stream) {
  std::vector<DeviceRing> device(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    device[i] =
        DeviceRing{rings[i].input, rings[i].output, nullptr, nullptr, nullptr, nullptr, rings[i].n, 0, 1.0, false};
  }
  return launch_direct<scalar_t>(device, filter, UpdateRule{}, SmoothSinkDevice{}, stream);
}

template <typename scalar_t>
cudaError_t direct_update(const UpdateRing<scalar_t>* rings, int64_t count, const DeviceFilter& filter,
                          const UpdateRule& rule, cudaStream_t stream) {
  std::vector<DeviceRing> device(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    device[i] = DeviceRing{rings[i].grad, nullptr, rings[i].param, rings[i].buffer, nullptr, nullptr,
                           rings[i].n,    0,       rings[i].scale, rings[i].fresh};
  }
  return launch_direct<scalar_t>(device, filter, rule, UpdateSinkDevice{}, stream);
}

template <typename scalar_t>
cudaError_t direct_adamw(const AdamWRing<scalar_t>* rings, int64_t count, const DeviceFilter& filter,
                         const AdamWRule& rule, cudaStream_t stream) {
  std::vector<DeviceRing> device(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const AdamWRing<scalar_t>& r = rings[i];
    device[i] = DeviceRing{r.grad, r.exp_avg, r.param, r.exp_avg_sq, r.max_exp_avg_sq, r.step, r.n, 0, r.scale, false};
  }
  return launch_direct<scalar_t>(device, filter, rule, AdamWSinkDevice{}, stream);
}

template <typename scalar_t>
cudaError_t elementwise_update(const UpdateRing<scalar_t>* rings, int64_t count, const UpdateRule& rule,
                               cudaStream_t stream) {
  std::vector<DeviceRing> device(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    device[i] = DeviceRing{rings[i].grad, nullptr, rings[i].param, rings[i].buffer, nullptr, nullptr,
                           rings[i].n,    0,       rings[i].scale, rings[i].fresh};
  }
  return for_each_table(device, kUpdateRange, [&](const RingTable& table, int64_t blocks) {
    update_kernel<scalar_t><<<static_cast<unsigned>(blocks), kUpdateThreads, 0, stream>>>(table, rule);
    return cudaGetLastError();
  });
}

#define TORCH_MLSGD_INSTANTIATE(scalar_t)                                                                    \
  template cudaError_t direct_smooth<scalar_t>(const SmoothRing<scalar_t>*, int64_t, const DeviceFilter&,    \
                                               cudaStream_t);                                                \
  template cudaError_t direct_update<scalar_t>(const UpdateRing<scalar_t>*, int64_t, const DeviceFilter&,    \
                                               const UpdateRule&, cudaStream_t);                             \
  template cudaError_t elementwise_update<scalar_t>(const UpdateRing<scalar_t>*, int64_t, const UpdateRule&, \
                                                    cudaStream_t);                                           \
  template cudaError_t direct_adamw<scalar_t>(const AdamWRing<scalar_t>*, int64_t, const DeviceFilter&,      \
                                              const AdamWRule&, cudaStream_t);
TORCH_MLSGD_INSTANTIATE(float)
TORCH_MLSGD_INSTANTIATE(double)
#undef TORCH_MLSGD_INSTANTIATE

}  // namespace cuda
}  // namespace torch_mlsgd
