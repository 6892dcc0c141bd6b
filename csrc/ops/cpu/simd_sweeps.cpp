// AVX2 + FMA kernels of the direct route for groups of 8 chunks (see
// simd_sweeps.h).
//
// Every function here that uses AVX2 carries a target attribute instead of
// the file being compiled with -mavx2: inline functions from shared headers
// instantiated here then keep the baseline instruction set, so the linker can
// never hand an AVX2 copy of them to code that runs on an older CPU. For the
// same reason nothing here is a lambda (a lambda's call operator would not
// carry the attribute): callbacks are functors with attributed operators.
//
// Layout: the causal results live in `scratch` lane-interleaved, Y[i * 8 + l]
// for step i of lane l, so one step of all lanes is one 64-byte line.

#include "ops/cpu/simd_sweeps.h"

#include <cstdlib>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) && defined(__GNUC__)
#define TORCH_MLSGD_HAVE_AVX2_KERNELS 1
#include <immintrin.h>
#endif

namespace torch_mlsgd {
namespace ops {
namespace cpu {
namespace simd {
namespace {

// TORCH_MLSGD_DISABLE_SIMD=1 runs the portable kernels (for tests and for
// comparing the two paths); read once, at the first smoothing call.
bool disabled_by_environment() {
  const char* value = std::getenv("TORCH_MLSGD_DISABLE_SIMD");
  return value != nullptr && std::strcmp(value, "") != 0 && std::strcmp(value, "0") != 0;
}

// One step of a cascade of `sections` real sections for one lane whose state
// is [y1[0..sections), y2[0..sections)] (the tails of unequal chunks).
double scalar_push(int sections, const double* a1, const double* a2, double* state, double x) {
  for (int m = 0; m < sections; ++m) {
    const double y = a1[m] * state[m] + (x - a2[m] * state[sections + m]);
    state[sections + m] = state[m];
    state[m] = y;
    x = y;
  }
  return x;
}

}  // namespace

#ifdef TORCH_MLSGD_HAVE_AVX2_KERNELS

bool supported() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !disabled_by_environment();
  return ok;
}

#define TORCH_MLSGD_AVX2 __attribute__((target("avx2,fma")))
#define TORCH_MLSGD_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace {

// ------------------------------------------------------------ registers --

// In place: r[k][l] <- r[l][k] for an 8 x 8 block of floats.
TORCH_MLSGD_AVX2_INLINE void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
  const __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
  const __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
  const __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
  const __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// In place: r[k][l] <- r[l][k] for a 4 x 4 block of doubles.
TORCH_MLSGD_AVX2_INLINE void transpose4(__m256d& r0, __m256d& r1, __m256d& r2, __m256d& r3) {
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1);
  const __m256d t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3);
  const __m256d t3 = _mm256_unpackhi_pd(r2, r3);
  r0 = _mm256_permute2f128_pd(t0, t2, 0x20);
  r1 = _mm256_permute2f128_pd(t1, t3, 0x20);
  r2 = _mm256_permute2f128_pd(t0, t2, 0x31);
  r3 = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// Eight consecutive values of one lane, as two vectors of four doubles.
struct Run8 {
  __m256d lo;
  __m256d hi;
};

TORCH_MLSGD_AVX2_INLINE Run8 load8(const float* p) {
  const __m256 v = _mm256_loadu_ps(p);
  return {_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))};
}

TORCH_MLSGD_AVX2_INLINE Run8 load8(const double* p) { return {_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4)}; }

TORCH_MLSGD_AVX2_INLINE void store8(float* p, const Run8& v) {
  _mm256_storeu_ps(p, _mm256_set_m128(_mm256_cvtpd_ps(v.hi), _mm256_cvtpd_ps(v.lo)));
}

TORCH_MLSGD_AVX2_INLINE void store8(double* p, const Run8& v) {
  _mm256_storeu_pd(p, v.lo);
  _mm256_storeu_pd(p + 4, v.hi);
}

// The sweeps walk 8 streams at once (backwards in the anti-causal sweep),
// more than hardware prefetchers follow well: the lines a lane needs a few
// blocks ahead are requested explicitly.
constexpr int64_t kPrefetchSteps = 64;

template <typename T>
TORCH_MLSGD_AVX2_INLINE void prefetch_line(const T* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

// ---------------------------------------------------------------- sinks --
// Eight consecutive results of one lane at a time. Each functor keeps its
// pointers and broadcast constants in members: read through the sink on every
// call they would be reloaded after every store (the compiler cannot prove
// that a store to the data leaves the sink unchanged).

template <typename scalar_t>
struct SmoothApply {
  scalar_t* out;
  __m256d gain;

  TORCH_MLSGD_AVX2_INLINE explicit SmoothApply(const SmoothSink<scalar_t>& sink)
      : out(sink.out), gain(_mm256_set1_pd(sink.gain)) {}
  TORCH_MLSGD_AVX2_INLINE void operator()(int64_t j, const Run8& x) const {
    store8(out + j, {_mm256_mul_pd(gain, x.lo), _mm256_mul_pd(gain, x.hi)});
  }
  TORCH_MLSGD_AVX2_INLINE void prefetch(int64_t j) const { prefetch_line(out + j); }
};

// d = scale x + wd w; b = d | m buf + (1 - damp) d; d = d + m b | b; w -= lr d.
template <bool kBuffer, bool kFresh, bool kNesterov, typename scalar_t>
struct UpdateApply {
  scalar_t* param;
  scalar_t* buffer;
  __m256d scale, weight_decay, momentum, keep, lr;

  TORCH_MLSGD_AVX2_INLINE explicit UpdateApply(const UpdateSink<scalar_t>& sink)
      : param(sink.param),
        buffer(sink.buffer),
        scale(_mm256_set1_pd(sink.scale)),
        weight_decay(_mm256_set1_pd(sink.update.weight_decay)),
        momentum(_mm256_set1_pd(sink.update.momentum)),
        keep(_mm256_set1_pd(1.0 - sink.update.dampening)),
        lr(_mm256_set1_pd(sink.update.lr)) {}

  TORCH_MLSGD_AVX2_INLINE void step4(__m256d x, __m256d& w, __m256d& b) const {
    __m256d d = _mm256_fmadd_pd(scale, x, _mm256_mul_pd(weight_decay, w));
    if (kBuffer) {
      b = kFresh ? d : _mm256_fmadd_pd(momentum, b, _mm256_mul_pd(keep, d));
      d = kNesterov ? _mm256_fmadd_pd(momentum, b, d) : b;
    }
    w = _mm256_fnmadd_pd(lr, d, w);
  }

  TORCH_MLSGD_AVX2_INLINE void operator()(int64_t j, const Run8& x) const {
    Run8 w = load8(param + j);
    Run8 b = kBuffer && !kFresh ? load8(buffer + j) : w;
    step4(x.lo, w.lo, b.lo);
    step4(x.hi, w.hi, b.hi);
    if (kBuffer) {
      store8(buffer + j, b);
    }
    store8(param + j, w);
  }
  TORCH_MLSGD_AVX2_INLINE void prefetch(int64_t j) const {
    prefetch_line(param + j);
    if (kBuffer && !kFresh) {
      prefetch_line(buffer + j);
    }
  }
};

template <bool kBuffer, bool kFresh, bool kNesterov>
using UpdateApplyFloatData = UpdateApply<kBuffer, kFresh, kNesterov, float>;
template <bool kBuffer, bool kFresh, bool kNesterov>
using UpdateApplyDoubleData = UpdateApply<kBuffer, kFresh, kNesterov, double>;

// The same two sinks on eight floats, for the float32 pipeline.
struct SmoothApplyF {
  float* out;
  __m256 gain;

  TORCH_MLSGD_AVX2_INLINE explicit SmoothApplyF(const SmoothSink<float>& sink)
      : out(sink.out), gain(_mm256_set1_ps(static_cast<float>(sink.gain))) {}
  TORCH_MLSGD_AVX2_INLINE void operator()(int64_t j, __m256 x) const {
    _mm256_storeu_ps(out + j, _mm256_mul_ps(gain, x));
  }
  TORCH_MLSGD_AVX2_INLINE void prefetch(int64_t j) const { prefetch_line(out + j); }
};

template <bool kBuffer, bool kFresh, bool kNesterov>
struct UpdateApplyF {
  float* param;
  float* buffer;
  __m256 scale, weight_decay, momentum, keep, lr;

  TORCH_MLSGD_AVX2_INLINE explicit UpdateApplyF(const UpdateSink<float>& sink)
      : param(sink.param),
        buffer(sink.buffer),
        scale(_mm256_set1_ps(static_cast<float>(sink.scale))),
        weight_decay(_mm256_set1_ps(static_cast<float>(sink.update.weight_decay))),
        momentum(_mm256_set1_ps(static_cast<float>(sink.update.momentum))),
        keep(_mm256_set1_ps(static_cast<float>(1.0 - sink.update.dampening))),
        lr(_mm256_set1_ps(static_cast<float>(sink.update.lr))) {}

  TORCH_MLSGD_AVX2_INLINE void operator()(int64_t j, __m256 x) const {
    __m256 w = _mm256_loadu_ps(param + j);
    __m256 d = _mm256_fmadd_ps(scale, x, _mm256_mul_ps(weight_decay, w));
    if (kBuffer) {
      const __m256 b = kFresh ? d : _mm256_fmadd_ps(momentum, _mm256_loadu_ps(buffer + j), _mm256_mul_ps(keep, d));
      _mm256_storeu_ps(buffer + j, b);
      d = kNesterov ? _mm256_fmadd_ps(momentum, b, d) : b;
    }
    _mm256_storeu_ps(param + j, _mm256_fnmadd_ps(lr, d, w));
  }
  TORCH_MLSGD_AVX2_INLINE void prefetch(int64_t j) const {
    prefetch_line(param + j);
    if (kBuffer && !kFresh) {
      prefetch_line(buffer + j);
    }
  }
};

// The AdamW update (core/adamw_update.h) on eight values, in float64 as the
// scalar loop computes it; float32 data go through the same arithmetic.
template <bool kAmsgrad, typename scalar_t>
struct AdamWApply {
  scalar_t* param;
  scalar_t* exp_avg;
  scalar_t* exp_avg_sq;
  scalar_t* max_exp_avg_sq;
  __m256d scale, decay, keep1, beta2, keep2, eps, step_size, bias_correction2_sqrt;
  struct {
    __m256 scale, decay, keep1, beta2, keep2, eps, step_size, bias_correction2_sqrt;
  } f;  // the same constants in float32

  TORCH_MLSGD_AVX2_INLINE explicit AdamWApply(const AdamWSink<scalar_t>& sink)
      : param(sink.param),
        exp_avg(sink.exp_avg),
        exp_avg_sq(sink.exp_avg_sq),
        max_exp_avg_sq(sink.max_exp_avg_sq),
        scale(_mm256_set1_pd(sink.scale)),
        decay(_mm256_set1_pd(1.0 - sink.update.lr * sink.update.weight_decay)),
        keep1(_mm256_set1_pd(1.0 - sink.update.beta1)),
        beta2(_mm256_set1_pd(sink.update.beta2)),
        keep2(_mm256_set1_pd(1.0 - sink.update.beta2)),
        eps(_mm256_set1_pd(sink.update.eps)),
        step_size(_mm256_set1_pd(sink.update.step_size)),
        bias_correction2_sqrt(_mm256_set1_pd(sink.update.bias_correction2_sqrt)),
        f{narrow(scale), narrow(decay), narrow(keep1),     narrow(beta2),
          narrow(keep2), narrow(eps),   narrow(step_size), narrow(bias_correction2_sqrt)} {}

  TORCH_MLSGD_AVX2_INLINE void step4(__m256d x, __m256d& w, __m256d& m, __m256d& v, __m256d& vmax) const {
    const __m256d s = _mm256_mul_pd(scale, x);
    w = _mm256_mul_pd(w, decay);
    m = _mm256_fmadd_pd(keep1, _mm256_sub_pd(s, m), m);
    v = _mm256_add_pd(_mm256_mul_pd(beta2, v), _mm256_mul_pd(_mm256_mul_pd(keep2, s), s));
    __m256d second = v;
    if (kAmsgrad) {
      vmax = _mm256_max_pd(vmax, v);
      second = vmax;
    }
    const __m256d denom = _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(second), bias_correction2_sqrt), eps);
    w = _mm256_fnmadd_pd(step_size, _mm256_div_pd(m, denom), w);
  }

  TORCH_MLSGD_AVX2_INLINE void operator()(int64_t j, const Run8& x) const {
    Run8 w = load8(param + j);
    Run8 m = load8(exp_avg + j);
    Run8 v = load8(exp_avg_sq + j);
    Run8 vmax = kAmsgrad ? load8(max_exp_avg_sq + j) : v;
    step4(x.lo, w.lo, m.lo, v.lo, vmax.lo);
    step4(x.hi, w.hi, m.hi, v.hi, vmax.hi);
    store8(exp_avg + j, m);
    store8(exp_avg_sq + j, v);
    if (kAmsgrad) {
      store8(max_exp_avg_sq + j, vmax);
    }
    store8(param + j, w);
  }
  // The float32 pipeline's eight values (float64 data never take it).
  TORCH_MLSGD_AVX2_INLINE void operator()(int64_t j, __m256 x) const {
    if constexpr (std::is_same_v<scalar_t, float>) {
      apply_float(j, x);
    } else {
      (*this)(j, Run8{_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))});
    }
  }
  // float32 data in float32 arithmetic, as torch's fused CPU AdamW computes them:
  // eight lanes per vector and a float square root and division, which bound the
  // step's speed in float64.
  TORCH_MLSGD_AVX2_INLINE void apply_float(int64_t j, __m256 x) const {
    const __m256 s = _mm256_mul_ps(f.scale, x);
    const __m256 w = _mm256_mul_ps(_mm256_loadu_ps(param + j), f.decay);
    __m256 m = _mm256_loadu_ps(exp_avg + j);
    m = _mm256_fmadd_ps(f.keep1, _mm256_sub_ps(s, m), m);
    __m256 v = _mm256_loadu_ps(exp_avg_sq + j);
    v = _mm256_add_ps(_mm256_mul_ps(f.beta2, v), _mm256_mul_ps(_mm256_mul_ps(f.keep2, s), s));
    _mm256_storeu_ps(exp_avg + j, m);
    _mm256_storeu_ps(exp_avg_sq + j, v);
    if (kAmsgrad) {
      v = _mm256_max_ps(_mm256_loadu_ps(max_exp_avg_sq + j), v);
      _mm256_storeu_ps(max_exp_avg_sq + j, v);
    }
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(v), f.bias_correction2_sqrt), f.eps);
    _mm256_storeu_ps(param + j, _mm256_fnmadd_ps(f.step_size, _mm256_div_ps(m, denom), w));
  }
  static TORCH_MLSGD_AVX2_INLINE __m256 narrow(__m256d c) {  // a broadcast constant in float32
    return _mm256_set1_ps(static_cast<float>(_mm256_cvtsd_f64(c)));
  }
  TORCH_MLSGD_AVX2_INLINE void prefetch(int64_t j) const {
    prefetch_line(param + j);
    prefetch_line(exp_avg + j);
    prefetch_line(exp_avg_sq + j);
    if (kAmsgrad) {
      prefetch_line(max_exp_avg_sq + j);
    }
  }
};

// Calls run(apply) with the AdamW functor of the sink's amsgrad mode.
template <typename scalar_t, typename Run>
TORCH_MLSGD_AVX2_INLINE void with_adamw_mode(const AdamWSink<scalar_t>& sink, const Run& run) {
  if (sink.max_exp_avg_sq == nullptr) {
    run(AdamWApply<false, scalar_t>(sink));
  } else {
    run(AdamWApply<true, scalar_t>(sink));
  }
}

// Calls run(apply) with the update functor of the sink's momentum mode.
template <template <bool, bool, bool> class Apply, typename Sink, typename Run>
TORCH_MLSGD_AVX2_INLINE void with_update_mode(const Sink& sink, const Run& run) {
  if (sink.buffer == nullptr) {
    run(Apply<false, false, false>(sink));
  } else if (sink.fresh) {
    sink.update.nesterov ? run(Apply<true, true, true>(sink)) : run(Apply<true, true, false>(sink));
  } else {
    sink.update.nesterov ? run(Apply<true, false, true>(sink)) : run(Apply<true, false, false>(sink));
  }
}

// ------------------------------------------------- float64 state pipeline --

// A cascade of K sections for 8 lanes: lanes 0-3 in `lo`, 4-7 in `hi`.
template <int K, bool kFirstOrder>
struct VecCascade {
  __m256d a1[K], a2[K];
  __m256d y1lo[K], y1hi[K], y2lo[K], y2hi[K];

  TORCH_MLSGD_AVX2_INLINE VecCascade(const double* c1, const double* c2) {
    for (int m = 0; m < K; ++m) {
      a1[m] = _mm256_set1_pd(c1[m]);
      a2[m] = _mm256_set1_pd(c2[m]);
    }
  }

  // From / to lane-major states ([y1[0..K), y2[0..K)] per lane).
  TORCH_MLSGD_AVX2_INLINE void load(const double* s) {
    constexpr int w = 2 * K;
    for (int m = 0; m < K; ++m) {
      y1lo[m] = _mm256_set_pd(s[3 * w + m], s[2 * w + m], s[w + m], s[m]);
      y1hi[m] = _mm256_set_pd(s[7 * w + m], s[6 * w + m], s[5 * w + m], s[4 * w + m]);
      y2lo[m] = _mm256_set_pd(s[3 * w + K + m], s[2 * w + K + m], s[w + K + m], s[K + m]);
      y2hi[m] = _mm256_set_pd(s[7 * w + K + m], s[6 * w + K + m], s[5 * w + K + m], s[4 * w + K + m]);
    }
  }
  TORCH_MLSGD_AVX2_INLINE void store(double* s) const {
    constexpr int w = 2 * K;
    alignas(32) double t[4];
    for (int m = 0; m < K; ++m) {
      const __m256d parts[4] = {y1lo[m], y1hi[m], y2lo[m], y2hi[m]};
      for (int p = 0; p < 4; ++p) {
        _mm256_store_pd(t, parts[p]);
        const int lane0 = (p % 2) * 4;
        const int slot = (p / 2) * K + m;
        for (int l = 0; l < 4; ++l) {
          s[(lane0 + l) * w + slot] = t[l];
        }
      }
    }
  }

  // x <- the cascade's output for input x, for all 8 lanes.
  TORCH_MLSGD_AVX2_INLINE void push(__m256d& xlo, __m256d& xhi) {
    for (int m = 0; m < K; ++m) {
      if (kFirstOrder) {
        y1lo[m] = _mm256_fmadd_pd(a1[m], y1lo[m], xlo);
        y1hi[m] = _mm256_fmadd_pd(a1[m], y1hi[m], xhi);
      } else {
        const __m256d lo = _mm256_fmadd_pd(a1[m], y1lo[m], _mm256_fnmadd_pd(a2[m], y2lo[m], xlo));
        const __m256d hi = _mm256_fmadd_pd(a1[m], y1hi[m], _mm256_fnmadd_pd(a2[m], y2hi[m], xhi));
        y2lo[m] = y1lo[m];
        y2hi[m] = y1hi[m];
        y1lo[m] = lo;
        y1hi[m] = hi;
      }
      xlo = y1lo[m];
      xhi = y1hi[m];
    }
  }
};

// One step of all lanes: the cascade's outputs for inputs (lo, hi) go to `row`.
template <typename Cascade>
TORCH_MLSGD_AVX2_INLINE void push_and_store(Cascade& cascade, __m256d lo, __m256d hi, double* row) {
  cascade.push(lo, hi);
  _mm256_storeu_pd(row, lo);
  _mm256_storeu_pd(row + 4, hi);
}

// Causal steps [i, common) one at a time, gathering each step's 8 inputs.
template <typename scalar_t, typename Cascade>
TORCH_MLSGD_AVX2_INLINE void causal_steps(const scalar_t* in, const int64_t* begin, int64_t i, int64_t common,
                                          Cascade& cascade, double* Y) {
  for (; i < common; ++i) {
    push_and_store(cascade, _mm256_set_pd(in[begin[3] + i], in[begin[2] + i], in[begin[1] + i], in[begin[0] + i]),
                   _mm256_set_pd(in[begin[7] + i], in[begin[6] + i], in[begin[5] + i], in[begin[4] + i]), Y + i * 8);
  }
}

// Causal sweep of the common part into Y[i * 8 + l], i < common.
template <typename Cascade>
TORCH_MLSGD_AVX2_INLINE void causal(const float* in, const int64_t* begin, int64_t common, Cascade& cascade,
                                    double* Y) {
  int64_t i = 0;
  for (; i + 8 <= common; i += 8) {
    __m256 rows[8];
    for (int l = 0; l < 8; ++l) {
      prefetch_line(in + begin[l] + i + kPrefetchSteps);
      rows[l] = _mm256_loadu_ps(in + begin[l] + i);
    }
    transpose8(rows);
    for (int k = 0; k < 8; ++k) {
      push_and_store(cascade, _mm256_cvtps_pd(_mm256_castps256_ps128(rows[k])),
                     _mm256_cvtps_pd(_mm256_extractf128_ps(rows[k], 1)), Y + (i + k) * 8);
    }
  }
  causal_steps(in, begin, i, common, cascade, Y);
}

template <typename Cascade>
TORCH_MLSGD_AVX2_INLINE void causal(const double* in, const int64_t* begin, int64_t common, Cascade& cascade,
                                    double* Y) {
  int64_t i = 0;
  for (; i + 4 <= common; i += 4) {
    __m256d a[4];
    __m256d b[4];
    for (int l = 0; l < 4; ++l) {
      prefetch_line(in + begin[l] + i + kPrefetchSteps);
      prefetch_line(in + begin[l + 4] + i + kPrefetchSteps);
      a[l] = _mm256_loadu_pd(in + begin[l] + i);
      b[l] = _mm256_loadu_pd(in + begin[l + 4] + i);
    }
    transpose4(a[0], a[1], a[2], a[3]);
    transpose4(b[0], b[1], b[2], b[3]);
    for (int k = 0; k < 4; ++k) {
      push_and_store(cascade, a[k], b[k], Y + (i + k) * 8);
    }
  }
  causal_steps(in, begin, i, common, cascade, Y);
}

// Eight steps of eight lanes at Y (lane-interleaved) to the sink, lane by
// lane, through four 4 x 4 register transposes.
template <typename Apply8>
TORCH_MLSGD_AVX2_INLINE void drain8(const double* Y, const int64_t* begin, int64_t i, const Apply8& apply8) {
  __m256d lo[8];
  __m256d hi[8];
  for (int k = 0; k < 8; ++k) {
    lo[k] = _mm256_loadu_pd(Y + k * 8);
    hi[k] = _mm256_loadu_pd(Y + k * 8 + 4);
  }
  // Quadrants: lanes 0-3 / 4-7 by steps 0-3 / 4-7.
  transpose4(lo[0], lo[1], lo[2], lo[3]);
  transpose4(lo[4], lo[5], lo[6], lo[7]);
  transpose4(hi[0], hi[1], hi[2], hi[3]);
  transpose4(hi[4], hi[5], hi[6], hi[7]);
  for (int l = 0; l < 4; ++l) {
    apply8(begin[l] + i, Run8{lo[l], lo[l + 4]});
    apply8(begin[l + 4] + i, Run8{hi[l], hi[l + 4]});
  }
}

template <typename Cascade, typename scalar_t, typename Sink, typename Apply8>
TORCH_MLSGD_AVX2_INLINE void lanes8_double(const scalar_t* in, const Lanes8& g, const Sink& sink,
                                           const Apply8& apply8) {
  const int64_t* begin = g.begin;
  const int64_t* length = g.length;
  const int64_t common = g.common;
  const int w = 2 * g.sections;
  double* Y = g.scratch;
  Cascade cascade(g.a1, g.a2);

  cascade.load(g.causal_start);
  causal(in, begin, common, cascade, Y);
  double state[8 * 2 * kMaxSimdSections];
  cascade.store(state);
  for (int l = 0; l < 8; ++l) {  // lanes one longer than the rest
    if (length[l] > common) {
      Y[common * 8 + l] =
          scalar_push(g.sections, g.a1, g.a2, state + l * w, static_cast<double>(in[begin[l] + common]));
    }
  }

  std::memcpy(state, g.anticausal_start, sizeof(double) * 8 * w);
  for (int l = 0; l < 8; ++l) {
    if (length[l] > common) {
      const double x = scalar_push(g.sections, g.a1, g.a2, state + l * w, Y[common * 8 + l]);
      sink(begin[l] + common, &x, 1);
    }
  }
  cascade.load(state);
  // Backwards in blocks of eight steps, each handed to the sink as soon as it
  // is solved: the sink's independent work overlaps the recursion's latency.
  const int64_t rest = common % 8;
  for (int64_t i = common - 8; i >= rest; i -= 8) {
    if (i >= kPrefetchSteps) {
      for (int l = 0; l < 8; ++l) {
        apply8.prefetch(begin[l] + i - kPrefetchSteps);
      }
    }
    for (int k = 7; k >= 0; --k) {
      double* row = Y + (i + k) * 8;
      push_and_store(cascade, _mm256_loadu_pd(row), _mm256_loadu_pd(row + 4), row);
    }
    drain8(Y + i * 8, begin, i, apply8);
  }
  for (int64_t i = rest - 1; i >= 0; --i) {
    double* row = Y + i * 8;
    push_and_store(cascade, _mm256_loadu_pd(row), _mm256_loadu_pd(row + 4), row);
    for (int l = 0; l < 8; ++l) {
      sink(begin[l] + i, Y + i * 8 + l, 1);
    }
  }
}

template <typename scalar_t, typename Sink, typename Apply8>
TORCH_MLSGD_AVX2_INLINE void run_double(const scalar_t* in, const Lanes8& g, const Sink& sink, const Apply8& apply8) {
  if (g.sections == 1 && g.a2[0] == 0.0) {
    lanes8_double<VecCascade<1, true>>(in, g, sink, apply8);
  } else if (g.sections == 1) {
    lanes8_double<VecCascade<1, false>>(in, g, sink, apply8);
  } else {
    lanes8_double<VecCascade<2, false>>(in, g, sink, apply8);
  }
}

// ------------------------------------------------- float32 state pipeline --
// For float32 data and one real pole r <= kFloatStatePole, the recursions'
// rounding error stays below ~20 float32 ulps relative (it grows like
// 1 / (1 - r)), inside float32's own accuracy, and one vector carries all
// eight lanes: half the arithmetic of the float64 pipeline and no
// conversions. Larger poles (sigma above ~400 at order 1) and higher orders
// keep float64 state.
constexpr double kFloatStatePole = 0.95;

bool float_state_suffices(const Lanes8& g) { return g.sections == 1 && g.a2[0] == 0.0 && g.a1[0] <= kFloatStatePole; }

TORCH_MLSGD_AVX2_INLINE __m256 load_first_order_states(const double* s) {
  // One section: lane l's y1 is at 2 l.
  return _mm256_set_ps(static_cast<float>(s[14]), static_cast<float>(s[12]), static_cast<float>(s[10]),
                       static_cast<float>(s[8]), static_cast<float>(s[6]), static_cast<float>(s[4]),
                       static_cast<float>(s[2]), static_cast<float>(s[0]));
}

// The recursion y[k] = r y[k-1] + x[k] for all eight lanes, two steps ahead:
// y[k] = r^2 y[k-2] + (x[k] + r x[k-1]). Its chain of dependent FMAs then has
// two independent links per step, so a step costs half an FMA latency, not a
// whole one; the extra FMA per step is off the chain.
struct LookAhead2 {
  __m256 r, r2;
  __m256 y1, y2;  // y[k-1], y[k-2]
  __m256 x1;      // x[k-1]

  // From the state y[-1] = s. Step 0 needs r^2 y[-2] + r x[-1] = r s, which
  // y[-2] = 0 and x[-1] = s give; step 1 then reads y[-1] = s as its y[k-2].
  TORCH_MLSGD_AVX2_INLINE LookAhead2(float coefficient, __m256 s)
      : r(_mm256_set1_ps(coefficient)),
        r2(_mm256_set1_ps(coefficient * coefficient)),
        y1(s),
        y2(_mm256_setzero_ps()),
        x1(s) {}
  TORCH_MLSGD_AVX2_INLINE __m256 push(__m256 x) {
    const __m256 y = _mm256_fmadd_ps(r2, y2, _mm256_fmadd_ps(r, x1, x));
    y2 = y1;
    y1 = y;
    x1 = x;
    return y;
  }
};

template <typename Sink, typename Apply8>
TORCH_MLSGD_AVX2_INLINE void lanes8_float(const float* in, const Lanes8& g, const Sink& sink, const Apply8& apply8) {
  const int64_t* begin = g.begin;
  const int64_t* length = g.length;
  const int64_t common = g.common;
  float* Y = reinterpret_cast<float*>(g.scratch);
  const float r = static_cast<float>(g.a1[0]);
  const __m256 vr = _mm256_set1_ps(r);

  LookAhead2 causal(r, load_first_order_states(g.causal_start));
  int64_t i = 0;
  for (; i + 8 <= common; i += 8) {
    __m256 rows[8];
    for (int l = 0; l < 8; ++l) {
      prefetch_line(in + begin[l] + i + kPrefetchSteps);
      rows[l] = _mm256_loadu_ps(in + begin[l] + i);
    }
    transpose8(rows);
    for (int k = 0; k < 8; ++k) {
      _mm256_storeu_ps(Y + (i + k) * 8, causal.push(rows[k]));
    }
  }
  __m256 y = causal.y1;
  for (; i < common; ++i) {
    const __m256 x = _mm256_set_ps(in[begin[7] + i], in[begin[6] + i], in[begin[5] + i], in[begin[4] + i],
                                   in[begin[3] + i], in[begin[2] + i], in[begin[1] + i], in[begin[0] + i]);
    y = _mm256_fmadd_ps(vr, y, x);
    _mm256_storeu_ps(Y + i * 8, y);
  }
  alignas(32) float state[8];
  _mm256_store_ps(state, y);
  for (int l = 0; l < 8; ++l) {  // lanes one longer than the rest
    if (length[l] > common) {
      Y[common * 8 + l] = in[begin[l] + common] + r * state[l];
    }
  }

  for (int l = 0; l < 8; ++l) {
    state[l] = static_cast<float>(g.anticausal_start[2 * l]);
    if (length[l] > common) {
      state[l] = Y[common * 8 + l] + r * state[l];
      const double x = state[l];
      sink(begin[l] + common, &x, 1);
    }
  }
  LookAhead2 anticausal(r, _mm256_load_ps(state));
  const int64_t rest = common % 8;
  for (int64_t i = common - 8; i >= rest; i -= 8) {
    if (i >= kPrefetchSteps) {
      for (int l = 0; l < 8; ++l) {
        apply8.prefetch(begin[l] + i - kPrefetchSteps);
      }
    }
    __m256 rows[8];
    for (int k = 7; k >= 0; --k) {
      rows[k] = anticausal.push(_mm256_loadu_ps(Y + (i + k) * 8));
    }
    transpose8(rows);
    for (int l = 0; l < 8; ++l) {
      apply8(begin[l] + i, rows[l]);
    }
  }
  __m256 a = anticausal.y1;
  for (int64_t i = rest - 1; i >= 0; --i) {
    a = _mm256_fmadd_ps(vr, a, _mm256_loadu_ps(Y + i * 8));
    _mm256_store_ps(state, a);
    for (int l = 0; l < 8; ++l) {
      const double x = state[l];
      sink(begin[l] + i, &x, 1);
    }
  }
}

// ------------------------------------------------------------ start states --

// Step k of the eight windows, as the cascade's two input vectors.
template <typename scalar_t>
TORCH_MLSGD_AVX2_INLINE void gather8(const scalar_t* const* w, int64_t k, __m256d& lo, __m256d& hi) {
  lo = _mm256_set_pd(static_cast<double>(w[3][k]), static_cast<double>(w[2][k]), static_cast<double>(w[1][k]),
                     static_cast<double>(w[0][k]));
  hi = _mm256_set_pd(static_cast<double>(w[7][k]), static_cast<double>(w[6][k]), static_cast<double>(w[5][k]),
                     static_cast<double>(w[4][k]));
}

// The scalar chunk_start_states of recursive_sweeps.h for eight lanes at once:
// the same pushes in float64, eight independent chains per vector step.
template <typename Cascade, typename scalar_t>
TORCH_MLSGD_AVX2_INLINE void start_states(const scalar_t* const* causal_windows,
                                          const scalar_t* const* anticausal_windows, const StartWindows8& g) {
  const int64_t warmup = g.warmup;
  double zero[8 * 2 * kMaxSimdSections] = {};
  __m256d lo, hi;

  Cascade cascade(g.a1, g.a2);
  cascade.load(zero);
  for (int64_t k = 0; k < warmup; ++k) {
    gather8(causal_windows, k, lo, hi);
    cascade.push(lo, hi);
  }
  cascade.store(g.causal_start);

  // Causal results just after the chunk's end, then the anti-causal warm-up
  // over them, last to first.
  cascade.load(zero);
  for (int64_t k = 0; k < warmup; ++k) {
    gather8(anticausal_windows, k, lo, hi);
    cascade.push(lo, hi);
  }
  double* after = g.scratch;
  for (int64_t k = 0; k < warmup; ++k) {
    gather8(anticausal_windows, warmup + k, lo, hi);
    push_and_store(cascade, lo, hi, after + k * 8);
  }
  cascade.load(zero);
  for (int64_t k = warmup - 1; k >= 0; --k) {
    lo = _mm256_loadu_pd(after + k * 8);
    hi = _mm256_loadu_pd(after + k * 8 + 4);
    cascade.push(lo, hi);
  }
  cascade.store(g.anticausal_start);
}

template <typename scalar_t>
TORCH_MLSGD_AVX2_INLINE void run_start_states(const scalar_t* const* causal_windows,
                                              const scalar_t* const* anticausal_windows, const StartWindows8& g) {
  if (g.sections == 1 && g.a2[0] == 0.0) {
    start_states<VecCascade<1, true>>(causal_windows, anticausal_windows, g);
  } else if (g.sections == 1) {
    start_states<VecCascade<1, false>>(causal_windows, anticausal_windows, g);
  } else {
    start_states<VecCascade<2, false>>(causal_windows, anticausal_windows, g);
  }
}

// ------------------------------------------------------ elementwise update --

// The update functor over a run of smoothed values, eight at a time; the
// tail goes through the sink's own (scalar) loop.
template <typename scalar_t, typename Sink>
struct UpdateRun {
  const Sink& sink;
  int64_t begin;
  const scalar_t* s;
  int64_t n;

  template <typename Apply8>
  TORCH_MLSGD_AVX2_INLINE void operator()(const Apply8& apply8) const {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      if constexpr (std::is_same_v<scalar_t, float>) {
        apply8(begin + i, _mm256_loadu_ps(s + i));
      } else {
        apply8(begin + i, Run8{_mm256_loadu_pd(s + i), _mm256_loadu_pd(s + i + 4)});
      }
    }
    if (i < n) {
      sink(begin + i, s + i, n - i);
    }
  }
};

// The pipelines bound to their arguments, called with the sink's functor.
template <typename scalar_t, typename Sink>
struct DoublePipeline {
  const scalar_t* in;
  const Lanes8& group;
  const Sink& sink;
  template <typename Apply8>
  TORCH_MLSGD_AVX2_INLINE void operator()(const Apply8& apply8) const {
    run_double(in, group, sink, apply8);
  }
};

template <typename Sink>
struct FloatPipeline {
  const float* in;
  const Lanes8& group;
  const Sink& sink;
  template <typename Apply8>
  TORCH_MLSGD_AVX2_INLINE void operator()(const Apply8& apply8) const {
    lanes8_float(in, group, sink, apply8);
  }
};

}  // namespace

TORCH_MLSGD_AVX2 void update_run(const UpdateSink<float>& sink, int64_t begin, const float* s, int64_t n) {
  with_update_mode<UpdateApplyF>(sink, UpdateRun<float, UpdateSink<float>>{sink, begin, s, n});
}

TORCH_MLSGD_AVX2 void update_run(const UpdateSink<double>& sink, int64_t begin, const double* s, int64_t n) {
  with_update_mode<UpdateApplyDoubleData>(sink, UpdateRun<double, UpdateSink<double>>{sink, begin, s, n});
}

TORCH_MLSGD_AVX2 void start_states8(const float* const* causal_windows, const float* const* anticausal_windows,
                                    const StartWindows8& g) {
  run_start_states(causal_windows, anticausal_windows, g);
}

TORCH_MLSGD_AVX2 void start_states8(const double* const* causal_windows, const double* const* anticausal_windows,
                                    const StartWindows8& g) {
  run_start_states(causal_windows, anticausal_windows, g);
}

TORCH_MLSGD_AVX2 void sweep_lanes8(const float* in, const Lanes8& g, const SmoothSink<float>& sink) {
  if (float_state_suffices(g)) {
    lanes8_float(in, g, sink, SmoothApplyF(sink));
  } else {
    run_double(in, g, sink, SmoothApply<float>(sink));
  }
}

TORCH_MLSGD_AVX2 void sweep_lanes8(const double* in, const Lanes8& g, const SmoothSink<double>& sink) {
  run_double(in, g, sink, SmoothApply<double>(sink));
}

TORCH_MLSGD_AVX2 void sweep_lanes8(const float* in, const Lanes8& g, const UpdateSink<float>& sink) {
  if (float_state_suffices(g)) {
    with_update_mode<UpdateApplyF>(sink, FloatPipeline<UpdateSink<float>>{in, g, sink});
  } else {
    with_update_mode<UpdateApplyFloatData>(sink, DoublePipeline<float, UpdateSink<float>>{in, g, sink});
  }
}

TORCH_MLSGD_AVX2 void sweep_lanes8(const double* in, const Lanes8& g, const UpdateSink<double>& sink) {
  with_update_mode<UpdateApplyDoubleData>(sink, DoublePipeline<double, UpdateSink<double>>{in, g, sink});
}

TORCH_MLSGD_AVX2 void update_run(const AdamWSink<float>& sink, int64_t begin, const float* s, int64_t n) {
  with_adamw_mode(sink, UpdateRun<float, AdamWSink<float>>{sink, begin, s, n});
}

TORCH_MLSGD_AVX2 void update_run(const AdamWSink<double>& sink, int64_t begin, const double* s, int64_t n) {
  with_adamw_mode(sink, UpdateRun<double, AdamWSink<double>>{sink, begin, s, n});
}

TORCH_MLSGD_AVX2 void sweep_lanes8(const float* in, const Lanes8& g, const AdamWSink<float>& sink) {
  if (float_state_suffices(g)) {
    with_adamw_mode(sink, FloatPipeline<AdamWSink<float>>{in, g, sink});
  } else {
    with_adamw_mode(sink, DoublePipeline<float, AdamWSink<float>>{in, g, sink});
  }
}

TORCH_MLSGD_AVX2 void sweep_lanes8(const double* in, const Lanes8& g, const AdamWSink<double>& sink) {
  with_adamw_mode(sink, DoublePipeline<double, AdamWSink<double>>{in, g, sink});
}

#else  // no AVX2 kernels on this platform: supported() is false, nothing calls them

bool supported() {
  (void)disabled_by_environment;
  (void)scalar_push;
  return false;
}

void update_run(const UpdateSink<float>&, int64_t, const float*, int64_t) { std::abort(); }
void update_run(const UpdateSink<double>&, int64_t, const double*, int64_t) { std::abort(); }
void start_states8(const float* const*, const float* const*, const StartWindows8&) { std::abort(); }
void start_states8(const double* const*, const double* const*, const StartWindows8&) { std::abort(); }
void sweep_lanes8(const float*, const Lanes8&, const SmoothSink<float>&) { std::abort(); }
void sweep_lanes8(const double*, const Lanes8&, const SmoothSink<double>&) { std::abort(); }
void sweep_lanes8(const float*, const Lanes8&, const UpdateSink<float>&) { std::abort(); }
void sweep_lanes8(const double*, const Lanes8&, const UpdateSink<double>&) { std::abort(); }
void update_run(const AdamWSink<float>&, int64_t, const float*, int64_t) { std::abort(); }
void update_run(const AdamWSink<double>&, int64_t, const double*, int64_t) { std::abort(); }
void sweep_lanes8(const float*, const Lanes8&, const AdamWSink<float>&) { std::abort(); }
void sweep_lanes8(const double*, const Lanes8&, const AdamWSink<double>&) { std::abort(); }

#endif

}  // namespace simd
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
