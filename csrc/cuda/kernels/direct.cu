// The direct route and the elementwise update on CUDA (see smoothing.h).

#include "cuda/kernels/smoothing.h"

#include <algorithm>
#include <vector>

namespace torch_mlsgd {
namespace cuda {
namespace {

constexpr int kWarp = 32;
constexpr int64_t kBlockRange = kWarp * kChunk;  // ring elements one direct block solves
constexpr int kUpdateThreads = 256;
constexpr int64_t kUpdateRange = kUpdateThreads * 4;  // elements one update block handles

// A ring as kernels see it; which pointers matter depends on the kernel.
struct DeviceRing {
  const void* input;
  void* output;   // smoothing: the results
  void* param;    // update: the parameter
  void* buffer;   // update: the momentum buffer (may be null)
  int64_t n;
  int64_t first_block;
  double scale;
  bool fresh;
};

__device__ __forceinline__ int64_t find_ring(const DeviceRing* rings, int64_t count, int64_t block) {
  int64_t lo = 0;
  int64_t hi = count - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (rings[mid].first_block <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// The cascade's state for one lane, in double.
template <bool kFirstOrder>
struct LaneState {
  double y1[kMaxSections];
  double y2[kMaxSections];

  __device__ __forceinline__ void clear(int sections) {
    for (int m = 0; m < sections; ++m) {
      y1[m] = 0.0;
      y2[m] = 0.0;
    }
  }

  __device__ __forceinline__ double push(const DeviceFilter& f, double x) {
    if constexpr (kFirstOrder) {
      y1[0] = fma(f.a1[0], y1[0], x);
      return y1[0];
    } else {
      for (int m = 0; m < f.sections; ++m) {
        const double y = fma(f.a1[m], y1[m], fma(-f.a2[m], y2[m], x));
        y2[m] = y1[m];
        y1[m] = y;
        x = y;
      }
      return x;
    }
  }
};

struct SmoothSinkDevice {
  template <typename scalar_t>
  __device__ __forceinline__ void operator()(const DeviceRing& ring, const DeviceFilter& f,
                                             const UpdateRule&, int64_t pos, double x) const {
    static_cast<scalar_t*>(ring.output)[pos] = static_cast<scalar_t>(f.gain * x);
  }
};

template <typename scalar_t>
__device__ __forceinline__ void update_element(const DeviceRing& ring, const UpdateRule& rule,
                                               int64_t pos, double smoothed) {
  scalar_t* buffer = static_cast<scalar_t*>(ring.buffer);
  rule.apply(smoothed, static_cast<scalar_t*>(ring.param) + pos,
             buffer == nullptr ? nullptr : buffer + pos, ring.fresh);
}

struct UpdateSinkDevice {
  template <typename scalar_t>
  __device__ __forceinline__ void operator()(const DeviceRing& ring, const DeviceFilter&,
                                             const UpdateRule& u, int64_t pos, double x) const {
    update_element<scalar_t>(ring, u, pos, ring.scale * x);
  }
};

// One warp solves 32 consecutive chunks of one ring in shared memory. See
// smoothing.h; the phases are separated by __syncwarp so that every read of
// another lane's values happens before that lane overwrites them.
template <typename scalar_t, bool kFirstOrder, typename Sink>
__global__ void __launch_bounds__(kWarp) direct_kernel(const DeviceRing* rings, int64_t count,
                                                       DeviceFilter f, UpdateRule rule, Sink sink) {
  extern __shared__ double shared_storage[];
  scalar_t* buf = reinterpret_cast<scalar_t*>(shared_storage);
  const int lane = static_cast<int>(threadIdx.x);
  const DeviceRing ring = rings[find_ring(rings, count, blockIdx.x)];
  const int64_t n = ring.n;
  const int64_t begin = (static_cast<int64_t>(blockIdx.x) - ring.first_block) * kBlockRange;
  const int64_t range = n - begin < kBlockRange ? n - begin : kBlockRange;
  const int64_t warmup = f.warmup;

  // Inputs at ring positions [begin - warmup, begin + range + warmup), wrapped.
  const scalar_t* in = static_cast<const scalar_t*>(ring.input);
  for (int64_t t = lane; t < range + 2 * warmup; t += kWarp) {
    int64_t pos = (begin - warmup + t) % n;
    pos += pos < 0 ? n : 0;
    buf[t] = in[pos];
  }
  __syncwarp();
  scalar_t* at = buf + warmup;  // at[t]: ring position begin + t
  const int64_t cb = static_cast<int64_t>(lane) * kChunk;
  const int64_t ce = cb + kChunk < range ? cb + kChunk : range;
  const bool active = cb < range;

  LaneState<kFirstOrder> state;
  state.clear(f.sections);
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
  state.clear(f.sections);
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
  for (int64_t t = lane; t < range; t += kWarp) {  // coalesced
    sink.template operator()<scalar_t>(ring, f, rule, begin + t, static_cast<double>(at[t]));
  }
}

template <typename scalar_t>
__global__ void update_kernel(const DeviceRing* rings, int64_t count, UpdateRule rule) {
  const DeviceRing ring = rings[find_ring(rings, count, blockIdx.x)];
  const int64_t begin = (static_cast<int64_t>(blockIdx.x) - ring.first_block) * kUpdateRange;
  const int64_t end = begin + kUpdateRange < ring.n ? begin + kUpdateRange : ring.n;
  const scalar_t* grad = static_cast<const scalar_t*>(ring.input);
  for (int64_t pos = begin + threadIdx.x; pos < end; pos += kUpdateThreads) {
    update_element<scalar_t>(ring, rule, pos, ring.scale * static_cast<double>(grad[pos]));
  }
}

// Copies ring descriptors (with their first blocks) to the workspace; returns
// the total number of blocks.
cudaError_t upload(std::vector<DeviceRing>& rings, int64_t range, void* workspace,
                   cudaStream_t stream, int64_t* blocks) {
  int64_t total = 0;
  for (auto& r : rings) {
    r.first_block = total;
    total += (r.n + range - 1) / range;
  }
  *blocks = total;
  return cudaMemcpyAsync(workspace, rings.data(), rings.size() * sizeof(DeviceRing),
                         cudaMemcpyHostToDevice, stream);
}

template <typename scalar_t, typename Sink>
cudaError_t launch_direct(std::vector<DeviceRing>& rings, const DeviceFilter& f,
                          const UpdateRule& rule, Sink sink, void* workspace, cudaStream_t stream) {
  // Empty rings have no blocks; sigma = 0 or a ring of one element is the
  // identity, which the glue handles before calling (the kernel needs n >= 1).
  rings.erase(std::remove_if(rings.begin(), rings.end(), [](const DeviceRing& r) { return r.n == 0; }),
              rings.end());
  if (rings.empty()) {
    return cudaSuccess;
  }
  int64_t blocks = 0;
  cudaError_t status = upload(rings, kBlockRange, workspace, stream, &blocks);
  if (status != cudaSuccess) {
    return status;
  }
  const size_t shared = direct_shared_bytes(f, sizeof(scalar_t));
  const auto* device_rings = static_cast<const DeviceRing*>(workspace);
  const int64_t count = static_cast<int64_t>(rings.size());
  if (f.first_order) {
    auto kernel = direct_kernel<scalar_t, true, Sink>;
    status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(shared));
    if (status == cudaSuccess) {
      kernel<<<static_cast<unsigned>(blocks), kWarp, shared, stream>>>(device_rings, count, f, rule, sink);
    }
  } else {
    auto kernel = direct_kernel<scalar_t, false, Sink>;
    status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(shared));
    if (status == cudaSuccess) {
      kernel<<<static_cast<unsigned>(blocks), kWarp, shared, stream>>>(device_rings, count, f, rule, sink);
    }
  }
  return status == cudaSuccess ? cudaGetLastError() : status;
}

}  // namespace

bool make_device_filter(const core::RecursiveFilter& filter, size_t element_bytes,
                        DeviceFilter* out) {
  if (filter.warmup < 0 || filter.sections.size() > static_cast<size_t>(kMaxSections)) {
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
  if (direct_shared_bytes(f, element_bytes) > kMaxSharedBytes) {
    return false;
  }
  *out = f;
  return true;
}

size_t direct_shared_bytes(const DeviceFilter& filter, size_t element_bytes) {
  return static_cast<size_t>(kBlockRange + 2 * filter.warmup) * element_bytes;
}

size_t direct_workspace_bytes(int64_t count) {
  return static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(DeviceRing);
}

template <typename scalar_t>
cudaError_t direct_smooth(const SmoothRing<scalar_t>* rings, int64_t count,
                          const DeviceFilter& filter, void* workspace, cudaStream_t stream) {
  std::vector<DeviceRing> device(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    device[i] = DeviceRing{rings[i].input, rings[i].output, nullptr, nullptr, rings[i].n, 0, 1.0, false};
  }
  return launch_direct<scalar_t>(device, filter, UpdateRule{}, SmoothSinkDevice{}, workspace, stream);
}

template <typename scalar_t>
cudaError_t direct_update(const UpdateRing<scalar_t>* rings, int64_t count,
                          const DeviceFilter& filter, const UpdateRule& rule, void* workspace,
                          cudaStream_t stream) {
  std::vector<DeviceRing> device(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    device[i] = DeviceRing{rings[i].grad, nullptr, rings[i].param, rings[i].buffer,
                           rings[i].n, 0, rings[i].scale, rings[i].fresh};
  }
  return launch_direct<scalar_t>(device, filter, rule, UpdateSinkDevice{}, workspace, stream);
}

template <typename scalar_t>
cudaError_t elementwise_update(const UpdateRing<scalar_t>* rings, int64_t count,
                               const UpdateRule& rule, void* workspace, cudaStream_t stream) {
  std::vector<DeviceRing> device;
  for (int64_t i = 0; i < count; ++i) {
    if (rings[i].n > 0) {
      device.push_back(DeviceRing{rings[i].grad, nullptr, rings[i].param, rings[i].buffer,
                                  rings[i].n, 0, rings[i].scale, rings[i].fresh});
    }
  }
  if (device.empty()) {
    return cudaSuccess;
  }
  int64_t blocks = 0;
  const cudaError_t status = upload(device, kUpdateRange, workspace, stream, &blocks);
  if (status != cudaSuccess) {
    return status;
  }
  update_kernel<scalar_t><<<static_cast<unsigned>(blocks), kUpdateThreads, 0, stream>>>(
      static_cast<const DeviceRing*>(workspace), static_cast<int64_t>(device.size()), rule);
  return cudaGetLastError();
}

#define TORCH_MLSGD_INSTANTIATE(scalar_t)                                                      \
  template cudaError_t direct_smooth<scalar_t>(const SmoothRing<scalar_t>*, int64_t,          \
                                               const DeviceFilter&, void*, cudaStream_t);     \
  template cudaError_t direct_update<scalar_t>(const UpdateRing<scalar_t>*, int64_t,          \
                                               const DeviceFilter&, const UpdateRule&, void*, \
                                               cudaStream_t);                                 \
  template cudaError_t elementwise_update<scalar_t>(const UpdateRing<scalar_t>*, int64_t,     \
                                                    const UpdateRule&, void*, cudaStream_t);
TORCH_MLSGD_INSTANTIATE(float)
TORCH_MLSGD_INSTANTIATE(double)
#undef TORCH_MLSGD_INSTANTIATE

}  // namespace cuda
}  // namespace torch_mlsgd
