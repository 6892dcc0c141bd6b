#pragma once

// Vectorised sweeps for groups of 8 chunks: the chunks become the eight SIMD
// lanes (two AVX2 registers of doubles, or one of floats), their inputs are
// transposed in registers, and the recursions run as vector FMAs. Covers
// cascades of up to kMaxSimdSections real sections (orders 1 to 4).
// Compiled with target attributes and chosen at run time, so the library
// still runs on CPUs without AVX2.

#include "ops/cpu/sinks.h"

#include <cstdint>

namespace torch_mlsgd {
namespace ops {
namespace cpu {
namespace simd {

constexpr int kMaxSimdSections = 2;

// Whether this CPU runs the AVX2 + FMA kernels (checked once; false when
// TORCH_MLSGD_DISABLE_SIMD is set to a non-empty value other than 0).
bool supported();

// A group of 8 chunks of one segment and the cascade that solves them.
// Chunk l covers in[begin[l], begin[l] + length[l]); common = min(length)
// and every length is common or common + 1. The cascade has `sections`
// sections y = x + a1 y[-1] - a2 y[-2] (a2 = 0 for a real pole). Start states
// are lane-major: for lane l, [y1[0..sections), y2[0..sections)] at
// 2 * sections * l. `scratch` holds at least 8 * (common + 1) doubles.
struct Lanes8 {
  const int64_t* begin;
  const int64_t* length;
  int64_t common;
  int sections;
  const double* a1;
  const double* a2;
  const double* causal_start;
  const double* anticausal_start;
  double* scratch;
};

// The start states of 8 chunks (docs/design.md §2), in Lanes8's layout:
// lane l's causal start from the `warmup` inputs at causal_windows[l], its
// anti-causal start from the causal results over the 2 * warmup inputs at
// anticausal_windows[l] (warmup before the chunk's end, warmup after it).
// Call only when supported().
struct StartWindows8 {
  int64_t warmup;
  int sections;
  const double* a1;
  const double* a2;
  double* causal_start;      // 8 * 2 * sections
  double* anticausal_start;  // 8 * 2 * sections
  double* scratch;           // 8 * warmup
};
void start_states8(const float* const* causal_windows, const float* const* anticausal_windows,
                   const StartWindows8& group);
void start_states8(const double* const* causal_windows, const double* const* anticausal_windows,
                   const StartWindows8& group);

// The sink's update for already smoothed values: param[begin + i] and
// buffer[begin + i] from s[i], i < n (UpdateSink::operator() vectorised, for the
// FFT route and sigma = 0). Call only when supported().
void update_run(const UpdateSink<float>& sink, int64_t begin, const float* s, int64_t n);
void update_run(const UpdateSink<double>& sink, int64_t begin, const double* s, int64_t n);

void update_run(const AdamWSink<float>& sink, int64_t begin, const float* s, int64_t n);
void update_run(const AdamWSink<double>& sink, int64_t begin, const double* s, int64_t n);

// y = Anti(Causal(in)) handed to the sink. Call only when supported().
void sweep_lanes8(const float* in, const Lanes8& group, const SmoothSink<float>& sink);
void sweep_lanes8(const double* in, const Lanes8& group, const SmoothSink<double>& sink);
void sweep_lanes8(const float* in, const Lanes8& group, const UpdateSink<float>& sink);
void sweep_lanes8(const double* in, const Lanes8& group, const UpdateSink<double>& sink);
void sweep_lanes8(const float* in, const Lanes8& group, const AdamWSink<float>& sink);
void sweep_lanes8(const double* in, const Lanes8& group, const AdamWSink<double>& sink);

}  // namespace simd
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
