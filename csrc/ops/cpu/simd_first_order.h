#pragma once

// A vectorised sweep for the most common case, order 1 with 8 lanes: the
// eight chunks of a group become the eight SIMD lanes (two AVX2 registers of
// doubles), their inputs are transposed in registers, and the recursions run
// as vector FMAs. Compiled with target attributes, chosen at run time, so the
// library still runs on CPUs without AVX2.

#include "ops/cpu/sinks.h"

#include <cstdint>

namespace torch_mlsgd {
namespace ops {
namespace cpu {
namespace simd {

// Whether this CPU runs the AVX2 + FMA kernels (checked once).
bool supported();

// Solves 8 chunks of y = Anti(Causal(in)) for one real pole r and hands the
// results to `sink`. Chunk l covers in[begin[l], begin[l] + length[l]);
// `common` = min(length) and every length is common or common + 1. `scratch`
// holds at least 8 * (common + 1) doubles. The starts are the lanes' causal
// and anti-causal start states. Call only when supported().
void first_order_lanes8(const float* in, const int64_t* begin, const int64_t* length,
                        int64_t common, double r, const double* causal_start,
                        const double* anticausal_start, double* scratch,
                        const SmoothSink<float>& sink);
void first_order_lanes8(const double* in, const int64_t* begin, const int64_t* length,
                        int64_t common, double r, const double* causal_start,
                        const double* anticausal_start, double* scratch,
                        const SmoothSink<double>& sink);
void first_order_lanes8(const float* in, const int64_t* begin, const int64_t* length,
                        int64_t common, double r, const double* causal_start,
                        const double* anticausal_start, double* scratch,
                        const UpdateSink<float>& sink);
void first_order_lanes8(const double* in, const int64_t* begin, const int64_t* length,
                        int64_t common, double r, const double* causal_start,
                        const double* anticausal_start, double* scratch,
                        const UpdateSink<double>& sink);

}  // namespace simd
}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
