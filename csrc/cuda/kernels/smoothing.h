#pragma once

// The CUDA kernel layer: Laplacian smoothing and the fused LSGD update on raw
// device pointers and a caller's stream. No torch dependency: it links only
// the CUDA runtime and cuFFT, so it builds (and its tests build) wherever
// nvcc is, and the torch glue in csrc/ops/cuda only adapts tensors to it.
//
// Direct route: each ring is cut into chunks of kChunk elements; a block of
// one warp takes 32 consecutive chunks, loads them with the `warmup` ring
// elements on either side into shared memory (coalesced), runs every lane's
// causal and anti-causal recursion there (warm-ups included, docs/design.md
// §2), and writes the results back coalesced: one read and one write
// of global memory per element, one launch for any number of rings.
//
// FFT route: cuFFT R2C, one kernel multiplying by 1 / (n d_k) (the symbol is
// computed in the kernel from its closed form), cuFFT C2R. Plans are cached
// per (n, batch, precision, device) and bound to the caller's stream on
// every call.

#include "core/lsgd_update.h"
#include "core/recursive_filter.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace torch_mlsgd {
namespace cuda {

// Orders up to 2 * kMaxSections on the GPU's direct route.
constexpr int kMaxSections = 4;
// Chunk length: 1 more than a multiple of 32, so the 32 lanes' chunks start
// in different shared-memory banks.
constexpr int64_t kChunk = 257;
// Shared memory a direct block may use.
constexpr size_t kMaxSharedBytes = 96 * 1024;

// A RecursiveFilter in a form kernels take by value.
struct DeviceFilter {
  int sections = 0;
  bool first_order = false;  // one real pole: the cheapest recursion
  double a1[kMaxSections] = {};
  double a2[kMaxSections] = {};
  double gain = 1.0;
  int64_t warmup = 0;
};

// False when the GPU direct route cannot take `filter` (too many sections, a
// warm-up too long for shared memory): use the FFT route.
bool make_device_filter(const core::RecursiveFilter& filter, size_t element_bytes,
                        DeviceFilter* out);

// Shared memory of one direct block for this filter.
size_t direct_shared_bytes(const DeviceFilter& filter, size_t element_bytes);

// What the direct kernels do with a ring's results x (unscaled).
template <typename scalar_t>
struct SmoothRing {
  const scalar_t* input;
  scalar_t* output;  // output = gain * x (may alias input)
  int64_t n;
};

// The LSGD update rule (docs/design.md §3), the same arithmetic as the CPU's.
using UpdateRule = core::LSGDUpdate;

template <typename scalar_t>
struct UpdateRing {
  const scalar_t* grad;    // the ring's input
  scalar_t* param;
  scalar_t* buffer;        // null without momentum
  int64_t n;
  bool fresh;              // the buffer holds no value yet
  double scale;            // gain (negated when maximizing); 1 for already smoothed input
};

// Device memory the direct launchers need for `count` rings (metadata).
size_t direct_workspace_bytes(int64_t count);

// One launch smoothing `count` rings (host array). `workspace` is device
// memory of direct_workspace_bytes(count) bytes.
template <typename scalar_t>
cudaError_t direct_smooth(const SmoothRing<scalar_t>* rings, int64_t count,
                          const DeviceFilter& filter, void* workspace, cudaStream_t stream);

// One launch of the whole LSGD step for `count` rings: smoothing, weight
// decay, momentum and the parameter update.
template <typename scalar_t>
cudaError_t direct_update(const UpdateRing<scalar_t>* rings, int64_t count,
                          const DeviceFilter& filter, const UpdateRule& rule, void* workspace,
                          cudaStream_t stream);

// The update alone, for inputs already smoothed (FFT route, sigma = 0): one
// launch over `count` rings; each ring's grad is read as its smoothed values.
template <typename scalar_t>
cudaError_t elementwise_update(const UpdateRing<scalar_t>* rings, int64_t count,
                               const UpdateRule& rule, void* workspace, cudaStream_t stream);

// Bytes of the complex spectrum fft_smooth needs for `batch` rings of n.
size_t fft_workspace_bytes(int64_t n, int64_t batch, size_t element_bytes);

// output[b] = S(input[b]) for `batch` contiguous rings of n elements each.
// `spectrum` holds fft_workspace_bytes(n, batch, sizeof(scalar_t)) bytes.
template <typename scalar_t>
cudaError_t fft_smooth(const scalar_t* input, scalar_t* output, int64_t n, int64_t batch,
                       double sigma, int64_t order, void* spectrum, cudaStream_t stream);

// Drops the cached cuFFT plans of every device.
void clear_fft_plans();

// A readable message for the last error of fft_smooth (cuFFT status codes
// are not cudaError_t values).
std::string last_fft_error();

}  // namespace cuda
}  // namespace torch_mlsgd
