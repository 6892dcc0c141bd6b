// The FFT route on CUDA: cuFFT plans checked out of a cache per (n, batch,
// precision, device), bound to the caller's stream, run in a work area the
// caller provides, and one kernel between the transforms that divides by
// n d_k (see smoothing.h).

#include "core/laplacian_symbol.h"
#include "cuda/kernels/smoothing.h"

#include <cufft.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>

namespace torch_mlsgd {
namespace cuda {
namespace {

thread_local std::string fft_error;

struct PlanKey {
  int64_t n;
  int64_t batch;
  bool dbl;
  int device;
  bool operator==(const PlanKey& o) const {
    return std::tie(n, batch, dbl, device) == std::tie(o.n, o.batch, o.dbl, o.device);
  }
};

// One cuFFT handle, destroyed with its owner.
class Handle {
 public:
  Handle() = default;
  Handle(Handle&& other) noexcept
      : handle_(std::exchange(other.handle_, 0)), created_(std::exchange(other.created_, false)) {}
  Handle& operator=(Handle&& other) noexcept {
    std::swap(handle_, other.handle_);
    std::swap(created_, other.created_);
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (created_) {
      cufftDestroy(handle_);
    }
  }

  // Creates the handle and plans `batch` 1-D transforms of n points, `type`,
  // without a work area of its own; `work` receives the bytes it needs.
  cufftResult plan(long long n, long long in_distance, long long out_distance, cufftType type, long long batch,
                   size_t* work) {
    cufftResult status = cufftCreate(&handle_);
    created_ = status == CUFFT_SUCCESS;
    if (status == CUFFT_SUCCESS) {
      status = cufftSetAutoAllocation(handle_, 0);
    }
    if (status == CUFFT_SUCCESS) {
      status =
          cufftMakePlanMany64(handle_, 1, &n, nullptr, 1, in_distance, nullptr, 1, out_distance, type, batch, work);
    }
    return status;
  }
  cufftHandle get() const { return handle_; }

 private:
  cufftHandle handle_ = 0;
  bool created_ = false;
};

// The forward and inverse plans of one key, planned without a work area of
// their own: cuFFT's automatic allocation would be one cudaMalloc per plan,
// outside torch's caching allocator, and shared by every stream that runs it.
struct Plans {
  Handle forward;
  Handle inverse;
  size_t work_bytes = 0;  // what either transform needs; they run one after the other

  static cufftResult make(const PlanKey& key, Plans* out) {
    const long long n = key.n;
    const long long half = key.n / 2 + 1;
    Plans plans;
    size_t forward_work = 0;
    size_t inverse_work = 0;
    cufftResult status = plans.forward.plan(n, n, half, key.dbl ? CUFFT_D2Z : CUFFT_R2C, key.batch, &forward_work);
    if (status == CUFFT_SUCCESS) {
      status = plans.inverse.plan(n, half, n, key.dbl ? CUFFT_Z2D : CUFFT_C2R, key.batch, &inverse_work);
    }
    if (status == CUFFT_SUCCESS) {
      plans.work_bytes = std::max(forward_work, inverse_work);
      *out = std::move(plans);
    }
    return status;  // on failure, the handles made so far are destroyed here
  }
};

// A training step asks for the same few sizes every step. As many plans as
// torch's own cuFFT plan cache keeps: a model's distinct lengths never evict
// each other, and a plan that a captured CUDA graph uses stays alive.
using PlanCache = CheckoutCache<PlanKey, Plans>;

PlanCache& plan_cache() {
  // Leaked on purpose: plans must not be destroyed after the CUDA runtime
  // has shut down at process exit.
  static PlanCache* cache = new PlanCache(4096);
  return *cache;
}

// spectrum[b, k] *= 1 / (n d_k), d_k = 1 + sigma (4 sin^2(pi k / n))^order,
// from the closed form the CPU route uses (core/laplacian_symbol.h; never stored). Rows
// run along the grid's y, so a bin's index needs no division.
template <typename complex_t>
__global__ void divide_by_symbol(complex_t* spectrum, int64_t n, int64_t half, int64_t batch, double sigma,
                                 int64_t order) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < half; k += stride) {
    const double factor = 1.0 / (static_cast<double>(n) * core::laplacian_symbol(k, n, sigma, order));
    for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
      complex_t& bin = spectrum[b * half + k];
      bin.x *= factor;
      bin.y *= factor;
    }
  }
}

cudaError_t fail(const char* what, cufftResult status) {
  fft_error = std::string("cuFFT ") + what + " failed with status " + std::to_string(static_cast<int>(status));
  cudaGetLastError();  // whatever cuFFT's launches left, so that torch's next check does not report it
  return cudaErrorUnknown;
}

// Runs forward, divide, inverse on checked-out plans.
template <typename scalar_t>
cudaError_t run_plans(const Plans& p, const scalar_t* input, scalar_t* output, int64_t n, int64_t batch, double sigma,
                      int64_t order, void* spectrum, void* work, cudaStream_t stream) {
  constexpr bool kDouble = sizeof(scalar_t) == sizeof(double);
  cufftResult status;
  if ((status = cufftSetStream(p.forward.get(), stream)) != CUFFT_SUCCESS ||
      (status = cufftSetStream(p.inverse.get(), stream)) != CUFFT_SUCCESS) {
    return fail("cufftSetStream", status);
  }
  if ((status = cufftSetWorkArea(p.forward.get(), work)) != CUFFT_SUCCESS ||
      (status = cufftSetWorkArea(p.inverse.get(), work)) != CUFFT_SUCCESS) {
    return fail("cufftSetWorkArea", status);
  }
  // cuFFT takes non-const inputs; an out-of-place R2C transform does not write them.
  auto* in = const_cast<scalar_t*>(input);
  const int64_t half = n / 2 + 1;
  const int threads = 256;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((half + threads - 1) / threads, 1024)),
                  static_cast<unsigned>(std::min<int64_t>(batch, 65535)));
  cudaError_t error = cudaSuccess;
  if constexpr (kDouble) {
    auto* freq = static_cast<cufftDoubleComplex*>(spectrum);
    if ((status = cufftExecD2Z(p.forward.get(), in, freq)) != CUFFT_SUCCESS) {
      return fail("D2Z", status);
    }
    divide_by_symbol<<<grid, threads, 0, stream>>>(freq, n, half, batch, sigma, order);
    if ((error = cudaGetLastError()) != cudaSuccess) {  // also clears it
      return error;
    }
    if ((status = cufftExecZ2D(p.inverse.get(), freq, output)) != CUFFT_SUCCESS) {
      return fail("Z2D", status);
    }
  } else {
    auto* freq = static_cast<cufftComplex*>(spectrum);
    if ((status = cufftExecR2C(p.forward.get(), in, freq)) != CUFFT_SUCCESS) {
      return fail("R2C", status);
    }
    divide_by_symbol<<<grid, threads, 0, stream>>>(freq, n, half, batch, sigma, order);
    if ((error = cudaGetLastError()) != cudaSuccess) {  // also clears it
      return error;
    }
    if ((status = cufftExecC2R(p.inverse.get(), freq, output)) != CUFFT_SUCCESS) {
      return fail("C2R", status);
    }
  }
  return cudaSuccess;
}

}  // namespace

template <typename scalar_t>
cudaError_t fft_smooth(const scalar_t* input, scalar_t* output, int64_t n, int64_t batch, double sigma, int64_t order,
                       const ScratchAllocator& scratch, cudaStream_t stream) {
  if (n == 0 || batch == 0) {
    return cudaSuccess;
  }
  if (!complex_aligned(input, sizeof(scalar_t)) || !complex_aligned(output, sizeof(scalar_t))) {
    return cudaErrorMisalignedAddress;
  }
  int device = 0;
  cudaError_t error = cudaGetDevice(&device);
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (error == cudaSuccess) {
    error = cudaStreamIsCapturing(stream, &capture);
  }
  if (error != cudaSuccess) {
    cudaGetLastError();
    return error;
  }
  // cufftDestroy frees device memory, which a stream capture forbids: no
  // eviction while capturing (the cache may exceed its capacity until later).
  const bool may_evict = capture == cudaStreamCaptureStatusNone;
  const PlanKey key{n, batch, sizeof(scalar_t) == sizeof(double), device};
  // This caller holds the plans until its transforms are queued: another
  // thread asking for the same key meanwhile gets a pair of its own.
  std::optional<Plans> plans = plan_cache().take(key);
  if (!plans) {
    plans.emplace();
    if (const cufftResult status = Plans::make(key, &*plans); status != CUFFT_SUCCESS) {
      return fail("plan creation", status);
    }
  }
  void* spectrum = scratch(static_cast<size_t>((n / 2 + 1) * batch) * 2 * sizeof(scalar_t));
  void* work = plans->work_bytes == 0 ? nullptr : scratch(plans->work_bytes);
  if (spectrum == nullptr || (plans->work_bytes != 0 && work == nullptr)) {
    plan_cache().give_back(key, std::move(*plans), may_evict);
    return cudaErrorMemoryAllocation;
  }
  error = run_plans(*plans, input, output, n, batch, sigma, order, spectrum, work, stream);
  plan_cache().give_back(key, std::move(*plans), may_evict);
  return error;
}

template cudaError_t fft_smooth<float>(const float*, float*, int64_t, int64_t, double, int64_t, const ScratchAllocator&,
                                       cudaStream_t);
template cudaError_t fft_smooth<double>(const double*, double*, int64_t, int64_t, double, int64_t,
                                        const ScratchAllocator&, cudaStream_t);

void clear_fft_plans() { plan_cache().clear(); }

std::string last_fft_error() { return fft_error; }

}  // namespace cuda
}  // namespace torch_mlsgd
