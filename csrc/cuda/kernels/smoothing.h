#pragma once

// The CUDA kernel layer: Laplacian smoothing and the fused LSGD and LSAdamW updates on raw
// device pointers and a caller's stream. No torch dependency: it links only
// the CUDA runtime and cuFFT, so it builds (and its tests build) wherever
// nvcc is, and the torch glue in csrc/ops/cuda only adapts tensors to it.
//
// Direct route: each ring is cut into chunks of kChunk elements; a block of
// one warp takes 32 consecutive chunks, loads them with the `warmup` ring
// elements on either side into shared memory (coalesced), runs every lane's
// causal and anti-causal recursion there (warm-ups included, docs/design.md
// §2), and writes the results back coalesced: one read and one write
// of global memory per element. The rings' descriptors travel in the kernel's
// parameters (up to kRingsPerLaunch per launch), never through a host copy,
// so a step can be captured in a CUDA graph.
//
// FFT route: cuFFT R2C, one kernel multiplying by 1 / (n d_k) (the symbol is
// computed in the kernel from its closed form), cuFFT C2R. Plans are checked
// out of a cache per (n, batch, precision, device) by one caller at a time,
// bound to that caller's stream, and run in a work area the caller provides
// (torch's caching allocator, in the ops).

#include "core/adamw_update.h"
#include "core/lsgd_update.h"
#include "core/recursive_filter.h"
#include "cuda/kernels/launch_rules.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace torch_mlsgd {
namespace cuda {

// Rings one direct or update launch takes (their descriptors fill most of the
// 32 KiB of kernel parameters CUDA 12.1+ allows); more rings, more launches.
constexpr int64_t kRingsPerLaunch = 384;

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
// warm-up too long for `shared_limit` bytes of shared memory): use the FFT route.
bool make_device_filter(const core::RecursiveFilter& filter, size_t element_bytes, size_t shared_limit,
                        DeviceFilter* out);

// The shared memory one block may use on `device` (opt-in maximum), read once
// per device; 48 KiB, which every CUDA GPU grants, if the query fails.
size_t direct_shared_limit(int device);

// What the direct kernels do with a ring's results x (unscaled).
template <typename scalar_t>
struct SmoothRing {
  const scalar_t* input;
  scalar_t* output;  // output = gain * x; must not alias input (blocks read their neighbours' inputs as halos)
  int64_t n;
};

// The LSGD update rule (docs/design.md §3), the same arithmetic as the CPU's,
// and GradScaler's tensors as device pointers the kernels read themselves (no
// host synchronisation): a nonzero *found_inf leaves every parameter and
// buffer as it was; the smoothed values are divided by *grad_scale. Null: absent.
struct UpdateRule {
  core::LSGDUpdate update;
  const float* grad_scale = nullptr;
  const float* found_inf = nullptr;
};

template <typename scalar_t>
struct UpdateRing {
  const scalar_t* grad;  // the ring's input
  scalar_t* param;
  scalar_t* buffer;  // null without momentum
  int64_t n;
  bool fresh;    // the buffer holds no value yet
  double scale;  // gain (negated when maximizing); 1 for already smoothed input
};

// The AdamW update (core::AdamWUpdate's arithmetic) and GradScaler's tensors,
// as in UpdateRule. Each ring's bias corrections come from its own count,
// read on the device.
struct AdamWRule {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
  const float* grad_scale = nullptr;
  const float* found_inf = nullptr;
};

template <typename scalar_t>
struct AdamWRing {
  const scalar_t* grad;
  scalar_t* param;
  scalar_t* exp_avg;
  scalar_t* exp_avg_sq;
  scalar_t* max_exp_avg_sq;  // null without amsgrad
  const float* step;         // the tensor's count, this step included (float32, on the device)
  int64_t n;
  double scale;  // gain, negated when maximizing
};

// Smooths `count` rings (host array) in one launch per kRingsPerLaunch rings.
template <typename scalar_t>
cudaError_t direct_smooth(const SmoothRing<scalar_t>* rings, int64_t count, const DeviceFilter& filter,
                          cudaStream_t stream);

// The whole LSGD step for `count` rings, one launch per kRingsPerLaunch rings:
// smoothing, weight decay, momentum and the parameter update.
template <typename scalar_t>
cudaError_t direct_update(const UpdateRing<scalar_t>* rings, int64_t count, const DeviceFilter& filter,
                          const UpdateRule& rule, cudaStream_t stream);

// The whole LSAdamW step for `count` rings, one launch per kRingsPerLaunch
// rings: smoothing and AdamW's update in one pass over memory.
template <typename scalar_t>
cudaError_t direct_adamw(const AdamWRing<scalar_t>* rings, int64_t count, const DeviceFilter& filter,
                         const AdamWRule& rule, cudaStream_t stream);

// The update alone, for inputs already smoothed (FFT route, sigma = 0), one
// launch per kRingsPerLaunch rings; each ring's grad is read as its smoothed values.
template <typename scalar_t>
cudaError_t elementwise_update(const UpdateRing<scalar_t>* rings, int64_t count, const UpdateRule& rule,
                               cudaStream_t stream);

// Device memory of `bytes` bytes, usable in stream order on the stream passed
// with it, alive until the caller's launches are queued (the ops hand out
// torch's caching allocator; null when it cannot).
using ScratchAllocator = std::function<void*(size_t bytes)>;

// output[b] = S(input[b]) for `batch` contiguous rings of n elements each.
// `input` must be complex_aligned (launch_rules.h): cudaErrorMisalignedAddress
// otherwise, before anything runs. The spectrum and cuFFT's work area come
// from `scratch`.
template <typename scalar_t>
cudaError_t fft_smooth(const scalar_t* input, scalar_t* output, int64_t n, int64_t batch, double sigma, int64_t order,
                       const ScratchAllocator& scratch, cudaStream_t stream);

// Drops the cached cuFFT plans of every device.
void clear_fft_plans();

// A readable message for the last error of fft_smooth (cuFFT status codes
// are not cudaError_t values).
std::string last_fft_error();

}  // namespace cuda
}  // namespace torch_mlsgd
