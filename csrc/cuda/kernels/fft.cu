// The FFT route on CUDA: cuFFT plans cached per (n, batch, precision,
// device), bound to the caller's stream on every call, and one kernel between
// the transforms that divides by n d_k (see smoothing.h).

#include "cuda/kernels/smoothing.h"

#include <cufft.h>

#include <list>
#include <mutex>
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

struct Plans {
  cufftHandle forward;
  cufftHandle inverse;
};

// A small LRU of plan pairs; a training step asks for the same few sizes.
class PlanCache {
 public:
  cufftResult get(const PlanKey& key, Plans* out) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.splice(entries_.begin(), entries_, it);
        *out = it->second;
        return CUFFT_SUCCESS;
      }
    }
    Plans plans{};
    cufftResult status = make(key, &plans);
    if (status != CUFFT_SUCCESS) {
      return status;
    }
    entries_.emplace_front(key, plans);
    while (entries_.size() > kMaxPlans) {
      destroy(entries_.back().second);
      entries_.pop_back();
    }
    *out = plans;
    return CUFFT_SUCCESS;
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& entry : entries_) {
      destroy(entry.second);
    }
    entries_.clear();
  }

 private:
  static constexpr size_t kMaxPlans = 64;

  static cufftResult make(const PlanKey& key, Plans* plans) {
    long long n = key.n;
    long long half = key.n / 2 + 1;
    size_t work = 0;
    cufftResult status = cufftCreate(&plans->forward);
    if (status == CUFFT_SUCCESS) {
      status = cufftMakePlanMany64(plans->forward, 1, &n, nullptr, 1, n, nullptr, 1, half,
                                   key.dbl ? CUFFT_D2Z : CUFFT_R2C, key.batch, &work);
    }
    if (status == CUFFT_SUCCESS) {
      status = cufftCreate(&plans->inverse);
    }
    if (status == CUFFT_SUCCESS) {
      status = cufftMakePlanMany64(plans->inverse, 1, &n, nullptr, 1, half, nullptr, 1, n,
                                   key.dbl ? CUFFT_Z2D : CUFFT_C2R, key.batch, &work);
    }
    return status;
  }

  static void destroy(const Plans& plans) {
    cufftDestroy(plans.forward);
    cufftDestroy(plans.inverse);
  }

  std::mutex mutex_;
  std::list<std::pair<PlanKey, Plans>> entries_;
};

PlanCache& plans() {
  // Leaked on purpose: plans must not be destroyed after the CUDA runtime
  // has shut down at process exit.
  static PlanCache* cache = new PlanCache();
  return *cache;
}

// spectrum[b, k] *= 1 / (n d_k), d_k = 1 + sigma (4 sin^2(pi k / n))^order,
// from the closed form (as the CPU route; the symbol is never stored).
template <typename complex_t>
__global__ void divide_by_symbol(complex_t* spectrum, int64_t n, int64_t batch, double sigma,
                                 double order) {
  const int64_t half = n / 2 + 1;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < half * batch;
       i += stride) {
    const int64_t k = i % half;
    const double s = sinpi(static_cast<double>(k) / static_cast<double>(n));
    const double d = 1.0 + sigma * pow(4.0 * s * s, order);
    const double factor = 1.0 / (static_cast<double>(n) * d);
    spectrum[i].x *= factor;
    spectrum[i].y *= factor;
  }
}

cudaError_t fail(const char* what, cufftResult status) {
  fft_error = std::string("cuFFT ") + what + " failed with status " + std::to_string(static_cast<int>(status));
  return cudaErrorUnknown;
}

}  // namespace

size_t fft_workspace_bytes(int64_t n, int64_t batch, size_t element_bytes) {
  return static_cast<size_t>((n / 2 + 1) * batch) * 2 * element_bytes;
}

template <typename scalar_t>
cudaError_t fft_smooth(const scalar_t* input, scalar_t* output, int64_t n, int64_t batch,
                       double sigma, int64_t order, void* spectrum, cudaStream_t stream) {
  constexpr bool kDouble = sizeof(scalar_t) == sizeof(double);
  if (n == 0 || batch == 0) {
    return cudaSuccess;
  }
  int device = 0;
  cudaError_t error = cudaGetDevice(&device);
  if (error != cudaSuccess) {
    return error;
  }
  Plans p{};
  cufftResult status = plans().get(PlanKey{n, batch, kDouble, device}, &p);
  if (status != CUFFT_SUCCESS) {
    return fail("plan creation", status);
  }
  if ((status = cufftSetStream(p.forward, stream)) != CUFFT_SUCCESS ||
      (status = cufftSetStream(p.inverse, stream)) != CUFFT_SUCCESS) {
    return fail("cufftSetStream", status);
  }
  // cuFFT takes non-const inputs; an out-of-place R2C transform does not write them.
  auto* in = const_cast<scalar_t*>(input);
  const int threads = 256;
  const int64_t work = (n / 2 + 1) * batch;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((work + threads - 1) / threads, 65535));
  if constexpr (kDouble) {
    auto* freq = static_cast<cufftDoubleComplex*>(spectrum);
    if ((status = cufftExecD2Z(p.forward, reinterpret_cast<cufftDoubleReal*>(in), freq)) != CUFFT_SUCCESS) {
      return fail("D2Z", status);
    }
    divide_by_symbol<<<blocks, threads, 0, stream>>>(freq, n, batch, sigma, static_cast<double>(order));
    if ((error = cudaGetLastError()) != cudaSuccess) {
      return error;
    }
    if ((status = cufftExecZ2D(p.inverse, freq, reinterpret_cast<cufftDoubleReal*>(output))) != CUFFT_SUCCESS) {
      return fail("Z2D", status);
    }
  } else {
    auto* freq = static_cast<cufftComplex*>(spectrum);
    if ((status = cufftExecR2C(p.forward, reinterpret_cast<cufftReal*>(in), freq)) != CUFFT_SUCCESS) {
      return fail("R2C", status);
    }
    divide_by_symbol<<<blocks, threads, 0, stream>>>(freq, n, batch, sigma, static_cast<double>(order));
    if ((error = cudaGetLastError()) != cudaSuccess) {
      return error;
    }
    if ((status = cufftExecC2R(p.inverse, freq, reinterpret_cast<cufftReal*>(output))) != CUFFT_SUCCESS) {
      return fail("C2R", status);
    }
  }
  return cudaSuccess;
}

template cudaError_t fft_smooth<float>(const float*, float*, int64_t, int64_t, double, int64_t, void*,
                                       cudaStream_t);
template cudaError_t fft_smooth<double>(const double*, double*, int64_t, int64_t, double, int64_t, void*,
                                        cudaStream_t);

void clear_fft_plans() { plans().clear(); }

std::string last_fft_error() { return fft_error; }

}  // namespace cuda
}  // namespace torch_mlsgd
