// AVX2 + FMA kernels of the order-1 direct route (see simd_first_order.h).
//
// Every function here that uses AVX2 carries a target attribute instead of
// the file being compiled with -mavx2: inline functions from shared headers
// instantiated here then keep the baseline instruction set, so the linker can
// never hand an AVX2 copy of them to code that runs on an older CPU.
//
// Layout: the causal results live in `scratch` lane-interleaved, Y[i * 8 + l]
// for step i of lane l, so one step of all lanes is one 64-byte line.

#include "ops/cpu/simd_first_order.h"

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

}  // namespace

#ifdef TORCH_MLSGD_HAVE_AVX2_KERNELS

bool supported() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         !disabled_by_environment();
  return ok;
}

#define TORCH_MLSGD_AVX2 __attribute__((target("avx2,fma")))
#define TORCH_MLSGD_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace {

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

TORCH_MLSGD_AVX2_INLINE Run8 load8(const double* p) {
  return {_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4)};
}

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

// ---- sinks, eight consecutive results of one lane at a time ----
// Each keeps its pointers and broadcast constants in members: read through
// the sink on every call, they would be reloaded after every store (the
// compiler cannot prove that a store to the data does not change the sink).

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

// ---- the two sweeps ----

// Causal sweep of the common part: Y[i * 8 + l] for i < common.
TORCH_MLSGD_AVX2_INLINE void causal(const float* in, const int64_t* begin, int64_t common, __m256d r,
                                    __m256d& ylo, __m256d& yhi, double* Y) {
  int64_t i = 0;
  for (; i + 8 <= common; i += 8) {
    __m256 rows[8];
    for (int l = 0; l < 8; ++l) {
      prefetch_line(in + begin[l] + i + kPrefetchSteps);
      rows[l] = _mm256_loadu_ps(in + begin[l] + i);
    }
    transpose8(rows);
    for (int k = 0; k < 8; ++k) {
      ylo = _mm256_fmadd_pd(r, ylo, _mm256_cvtps_pd(_mm256_castps256_ps128(rows[k])));
      yhi = _mm256_fmadd_pd(r, yhi, _mm256_cvtps_pd(_mm256_extractf128_ps(rows[k], 1)));
      _mm256_storeu_pd(Y + (i + k) * 8, ylo);
      _mm256_storeu_pd(Y + (i + k) * 8 + 4, yhi);
    }
  }
  for (; i < common; ++i) {
    const __m256d lo = _mm256_set_pd(in[begin[3] + i], in[begin[2] + i], in[begin[1] + i], in[begin[0] + i]);
    const __m256d hi = _mm256_set_pd(in[begin[7] + i], in[begin[6] + i], in[begin[5] + i], in[begin[4] + i]);
    ylo = _mm256_fmadd_pd(r, ylo, lo);
    yhi = _mm256_fmadd_pd(r, yhi, hi);
    _mm256_storeu_pd(Y + i * 8, ylo);
    _mm256_storeu_pd(Y + i * 8 + 4, yhi);
  }
}

TORCH_MLSGD_AVX2_INLINE void causal(const double* in, const int64_t* begin, int64_t common, __m256d r,
                                    __m256d& ylo, __m256d& yhi, double* Y) {
  int64_t i = 0;
  for (; i + 4 <= common; i += 4) {
    __m256d a0 = _mm256_loadu_pd(in + begin[0] + i);
    __m256d a1 = _mm256_loadu_pd(in + begin[1] + i);
    __m256d a2 = _mm256_loadu_pd(in + begin[2] + i);
    __m256d a3 = _mm256_loadu_pd(in + begin[3] + i);
    __m256d b0 = _mm256_loadu_pd(in + begin[4] + i);
    __m256d b1 = _mm256_loadu_pd(in + begin[5] + i);
    __m256d b2 = _mm256_loadu_pd(in + begin[6] + i);
    __m256d b3 = _mm256_loadu_pd(in + begin[7] + i);
    transpose4(a0, a1, a2, a3);
    transpose4(b0, b1, b2, b3);
    const __m256d lo[4] = {a0, a1, a2, a3};
    const __m256d hi[4] = {b0, b1, b2, b3};
    for (int k = 0; k < 4; ++k) {
      ylo = _mm256_fmadd_pd(r, ylo, lo[k]);
      yhi = _mm256_fmadd_pd(r, yhi, hi[k]);
      _mm256_storeu_pd(Y + (i + k) * 8, ylo);
      _mm256_storeu_pd(Y + (i + k) * 8 + 4, yhi);
    }
  }
  for (; i < common; ++i) {
    const __m256d lo = _mm256_set_pd(in[begin[3] + i], in[begin[2] + i], in[begin[1] + i], in[begin[0] + i]);
    const __m256d hi = _mm256_set_pd(in[begin[7] + i], in[begin[6] + i], in[begin[5] + i], in[begin[4] + i]);
    ylo = _mm256_fmadd_pd(r, ylo, lo);
    yhi = _mm256_fmadd_pd(r, yhi, hi);
    _mm256_storeu_pd(Y + i * 8, ylo);
    _mm256_storeu_pd(Y + i * 8 + 4, yhi);
  }
}

// Eight steps of eight lanes at Y (lane-interleaved) to the sink, lane by
// lane, through four 4 x 4 register transposes.
template <typename Apply8>
TORCH_MLSGD_AVX2_INLINE void drain8(const double* Y, const int64_t* begin, int64_t i,
                                    const Apply8& apply8) {
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

template <typename scalar_t, typename Sink, typename Apply8>
TORCH_MLSGD_AVX2_INLINE void lanes8(const scalar_t* in, const int64_t* begin, const int64_t* length,
                                    int64_t common, double r, const double* causal_start,
                                    const double* anticausal_start, double* Y, const Sink& sink,
                                    const Apply8& apply8) {
  const __m256d vr = _mm256_set1_pd(r);
  __m256d lo = _mm256_loadu_pd(causal_start);
  __m256d hi = _mm256_loadu_pd(causal_start + 4);
  causal(in, begin, common, vr, lo, hi, Y);
  alignas(32) double state[8];
  _mm256_store_pd(state, lo);
  _mm256_store_pd(state + 4, hi);
  for (int l = 0; l < 8; ++l) {  // lanes one longer than the rest
    if (length[l] > common) {
      Y[common * 8 + l] = static_cast<double>(in[begin[l] + common]) + r * state[l];
    }
  }

  for (int l = 0; l < 8; ++l) {
    state[l] = anticausal_start[l];
    if (length[l] > common) {
      state[l] = Y[common * 8 + l] + r * state[l];
      Y[common * 8 + l] = state[l];
    }
  }
  for (int l = 0; l < 8; ++l) {
    if (length[l] > common) {
      sink(begin[l] + common, Y + common * 8 + l, 1);
    }
  }
  // Backwards in blocks of eight steps, each handed to the sink as soon as it
  // is solved: the sink's independent work overlaps the recursion's latency.
  lo = _mm256_load_pd(state);
  hi = _mm256_load_pd(state + 4);
  const int64_t rest = common % 8;
  for (int64_t i = common - 8; i >= rest; i -= 8) {
    for (int k = 7; k >= 0; --k) {
      lo = _mm256_fmadd_pd(vr, lo, _mm256_loadu_pd(Y + (i + k) * 8));
      hi = _mm256_fmadd_pd(vr, hi, _mm256_loadu_pd(Y + (i + k) * 8 + 4));
      _mm256_storeu_pd(Y + (i + k) * 8, lo);
      _mm256_storeu_pd(Y + (i + k) * 8 + 4, hi);
    }
    if (i >= kPrefetchSteps) {
      for (int l = 0; l < 8; ++l) {
        apply8.prefetch(begin[l] + i - kPrefetchSteps);
      }
    }
    drain8(Y + i * 8, begin, i, apply8);
  }
  for (int64_t i = rest - 1; i >= 0; --i) {
    lo = _mm256_fmadd_pd(vr, lo, _mm256_loadu_pd(Y + i * 8));
    hi = _mm256_fmadd_pd(vr, hi, _mm256_loadu_pd(Y + i * 8 + 4));
    _mm256_storeu_pd(Y + i * 8, lo);
    _mm256_storeu_pd(Y + i * 8 + 4, hi);
    for (int l = 0; l < 8; ++l) {
      sink(begin[l] + i, Y + i * 8 + l, 1);
    }
  }
}

// ---- float32 lanes: the whole pipeline in single precision ----
// For float32 data and a pole r <= kFloatStatePole, the recursions' rounding
// error stays below ~20 float32 ulps relative (it grows like 1 / (1 - r)),
// well inside float32's own accuracy target, and a vector then carries all
// eight lanes: half the arithmetic of the float64 pipeline and no conversions.
// Larger poles (sigma above ~400 at order 1) keep float64 state.
constexpr double kFloatStatePole = 0.95;

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
      const __m256 b = kFresh ? d
                              : _mm256_fmadd_ps(momentum, _mm256_loadu_ps(buffer + j),
                                                _mm256_mul_ps(keep, d));
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

TORCH_MLSGD_AVX2_INLINE __m256 load_starts(const double* starts) {
  return _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(starts + 4)),
                         _mm256_cvtpd_ps(_mm256_loadu_pd(starts)));
}

// As lanes8, with float32 state and results; Y holds floats, 8 per step.
template <typename Sink, typename Apply8>
TORCH_MLSGD_AVX2_INLINE void lanes8_float(const float* in, const int64_t* begin,
                                          const int64_t* length, int64_t common, double r,
                                          const double* causal_start,
                                          const double* anticausal_start, float* Y,
                                          const Sink& sink, const Apply8& apply8) {
  const __m256 vr = _mm256_set1_ps(static_cast<float>(r));
  const float rf = static_cast<float>(r);
  __m256 y = load_starts(causal_start);
  int64_t i = 0;
  for (; i + 8 <= common; i += 8) {
    __m256 rows[8];
    for (int l = 0; l < 8; ++l) {
      prefetch_line(in + begin[l] + i + kPrefetchSteps);
      rows[l] = _mm256_loadu_ps(in + begin[l] + i);
    }
    transpose8(rows);
    for (int k = 0; k < 8; ++k) {
      y = _mm256_fmadd_ps(vr, y, rows[k]);
      _mm256_storeu_ps(Y + (i + k) * 8, y);
    }
  }
  for (; i < common; ++i) {
    const __m256 x = _mm256_set_ps(in[begin[7] + i], in[begin[6] + i], in[begin[5] + i],
                                   in[begin[4] + i], in[begin[3] + i], in[begin[2] + i],
                                   in[begin[1] + i], in[begin[0] + i]);
    y = _mm256_fmadd_ps(vr, y, x);
    _mm256_storeu_ps(Y + i * 8, y);
  }
  alignas(32) float state[8];
  _mm256_store_ps(state, y);
  for (int l = 0; l < 8; ++l) {  // lanes one longer than the rest
    if (length[l] > common) {
      Y[common * 8 + l] = in[begin[l] + common] + rf * state[l];
    }
  }

  for (int l = 0; l < 8; ++l) {
    state[l] = static_cast<float>(anticausal_start[l]);
    if (length[l] > common) {
      state[l] = Y[common * 8 + l] + rf * state[l];
      const double x = state[l];
      sink(begin[l] + common, &x, 1);
    }
  }
  __m256 a = _mm256_load_ps(state);
  const int64_t rest = common % 8;
  for (int64_t i = common - 8; i >= rest; i -= 8) {
    if (i >= kPrefetchSteps) {
      for (int l = 0; l < 8; ++l) {
        apply8.prefetch(begin[l] + i - kPrefetchSteps);
      }
    }
    __m256 rows[8];
    for (int k = 7; k >= 0; --k) {
      a = _mm256_fmadd_ps(vr, a, _mm256_loadu_ps(Y + (i + k) * 8));
      rows[k] = a;
    }
    transpose8(rows);
    for (int l = 0; l < 8; ++l) {
      apply8(begin[l] + i, rows[l]);
    }
  }
  for (int64_t i = rest - 1; i >= 0; --i) {
    a = _mm256_fmadd_ps(vr, a, _mm256_loadu_ps(Y + i * 8));
    _mm256_store_ps(state, a);
    for (int l = 0; l < 8; ++l) {
      const double x = state[l];
      sink(begin[l] + i, &x, 1);
    }
  }
}

template <typename scalar_t>
TORCH_MLSGD_AVX2_INLINE void smooth_lanes8(const scalar_t* in, const int64_t* begin,
                                           const int64_t* length, int64_t common, double r,
                                           const double* cs, const double* as, double* Y,
                                           const SmoothSink<scalar_t>& sink) {
  if constexpr (std::is_same<scalar_t, float>::value) {
    if (r <= kFloatStatePole) {
      lanes8_float(in, begin, length, common, r, cs, as, reinterpret_cast<float*>(Y), sink,
                   SmoothApplyF(sink));
      return;
    }
  }
  lanes8(in, begin, length, common, r, cs, as, Y, sink, SmoothApply<scalar_t>(sink));
}

// lanes8_float bound to its arguments, called with the sink's functor (a
// functor, since a lambda's call operator would not carry the target).
struct FloatLanes {
  const float* in;
  const int64_t* begin;
  const int64_t* length;
  int64_t common;
  double r;
  const double* cs;
  const double* as;
  float* Y;
  const UpdateSink<float>& sink;

  template <typename Apply8>
  TORCH_MLSGD_AVX2_INLINE void operator()(const Apply8& apply8) const {
    lanes8_float(in, begin, length, common, r, cs, as, Y, sink, apply8);
  }
};

// Calls run(apply8) with the update functor of the sink's momentum mode.
template <template <bool, bool, bool> class Apply, typename SinkT, typename Run>
TORCH_MLSGD_AVX2_INLINE void with_update_mode(const SinkT& sink, const Run& run) {
  if (sink.buffer == nullptr) {
    run(Apply<false, false, false>(sink));
  } else if (sink.fresh) {
    sink.update.nesterov ? run(Apply<true, true, true>(sink)) : run(Apply<true, true, false>(sink));
  } else {
    sink.update.nesterov ? run(Apply<true, false, true>(sink))
                         : run(Apply<true, false, false>(sink));
  }
}

template <typename scalar_t>
TORCH_MLSGD_AVX2_INLINE void update_lanes8(const scalar_t* in, const int64_t* begin,
                                           const int64_t* length, int64_t common, double r,
                                           const double* cs, const double* as, double* Y,
                                           const UpdateSink<scalar_t>& sink) {
  if constexpr (std::is_same<scalar_t, float>::value) {
    if (r <= kFloatStatePole) {
      with_update_mode<UpdateApplyF>(
          sink, FloatLanes{in, begin, length, common, r, cs, as, reinterpret_cast<float*>(Y), sink});
      return;
    }
  }
  if (sink.buffer == nullptr) {
    lanes8(in, begin, length, common, r, cs, as, Y, sink,
           UpdateApply<false, false, false, scalar_t>(sink));
  } else if (sink.fresh) {
    if (sink.update.nesterov) {
      lanes8(in, begin, length, common, r, cs, as, Y, sink,
             UpdateApply<true, true, true, scalar_t>(sink));
    } else {
      lanes8(in, begin, length, common, r, cs, as, Y, sink,
             UpdateApply<true, true, false, scalar_t>(sink));
    }
  } else if (sink.update.nesterov) {
    lanes8(in, begin, length, common, r, cs, as, Y, sink,
           UpdateApply<true, false, true, scalar_t>(sink));
  } else {
    lanes8(in, begin, length, common, r, cs, as, Y, sink,
           UpdateApply<true, false, false, scalar_t>(sink));
  }
}

}  // namespace

TORCH_MLSGD_AVX2 void first_order_lanes8(const float* in, const int64_t* begin,
                                         const int64_t* length, int64_t common, double r,
                                         const double* cs, const double* as, double* Y,
                                         const SmoothSink<float>& sink) {
  smooth_lanes8(in, begin, length, common, r, cs, as, Y, sink);
}

TORCH_MLSGD_AVX2 void first_order_lanes8(const double* in, const int64_t* begin,
                                         const int64_t* length, int64_t common, double r,
                                         const double* cs, const double* as, double* Y,
                                         const SmoothSink<double>& sink) {
  smooth_lanes8(in, begin, length, common, r, cs, as, Y, sink);
}

TORCH_MLSGD_AVX2 void first_order_lanes8(const float* in, const int64_t* begin,
                                         const int64_t* length, int64_t common, double r,
                                         const double* cs, const double* as, double* Y,
                                         const UpdateSink<float>& sink) {
  update_lanes8(in, begin, length, common, r, cs, as, Y, sink);
}

TORCH_MLSGD_AVX2 void first_order_lanes8(const double* in, const int64_t* begin,
                                         const int64_t* length, int64_t common, double r,
                                         const double* cs, const double* as, double* Y,
                                         const UpdateSink<double>& sink) {
  update_lanes8(in, begin, length, common, r, cs, as, Y, sink);
}

#else  // no AVX2 kernels on this platform: supported() is false, nothing calls them

bool supported() {
  (void)disabled_by_environment;
  return false;
}

#define TORCH_MLSGD_NO_KERNEL(scalar_t, Sink)                                                    \
  void first_order_lanes8(const scalar_t*, const int64_t*, const int64_t*, int64_t, double,      \
                          const double*, const double*, double*, const Sink&) {                  \
    std::abort();                                                                                \
  }
TORCH_MLSGD_NO_KERNEL(float, SmoothSink<float>)
TORCH_MLSGD_NO_KERNEL(double, SmoothSink<double>)
TORCH_MLSGD_NO_KERNEL(float, UpdateSink<float>)
TORCH_MLSGD_NO_KERNEL(double, UpdateSink<double>)
#undef TORCH_MLSGD_NO_KERNEL

#endif

}  // namespace simd
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
