#pragma once

// Validation of the ops' arguments, shared by every backend, so that a bad
// value gets the same words everywhere (core/checks.h) and is rejected before
// anything is written.

#include "core/checks.h"
#include "ops/stable.h"

#include <cstdint>
#include <string_view>

namespace torch_mlsgd {
namespace ops {

using core::SmoothBackend;

// Raise the message of core/checks.h for an invalid value.
void check_sigma(double sigma);
void check_order(int64_t order);
SmoothBackend parse_backend(std::string_view name);

// A dense (strided), real floating-point tensor; `what` names the tensor in
// the message ("input", "gradient", ...).
void check_smoothable(const Tensor& tensor, const char* what);

void check_smooth_args(const Tensor& self, double sigma, int64_t order, std::string_view backend);

// laplacian_smooth_shard's arguments, on every device: three smoothable
// tensors of one dtype, a valid sigma and order. check_halo_lengths: each halo
// holds at least the `warmup` elements the direct route reads on its side.
void check_shard_args(const Tensor& shard, const Tensor& left, const Tensor& right, double sigma, int64_t order);
void check_halo_lengths(const Tensor& left, const Tensor& right, int64_t warmup);

// core::truncation_tolerance for this compute dtype.
double truncation_tolerance(ScalarType dtype);

// Float32 arithmetic for half types (there is no half FFT on CPU, and cuFFT's
// half path takes only powers of two); float32/float64 stay as they are.
ScalarType compute_dtype(ScalarType dtype);

// `t` as a tensor of `dtype` (itself when it already is one), and the same
// contiguous.
Tensor as_dtype(const Tensor& t, ScalarType dtype);
Tensor contiguous_as(const Tensor& t, ScalarType dtype);
// `t` as a contiguous CPU tensor of `dtype` (a copy where it is not one; from a
// GPU, with a synchronisation): for values an op reads on the host.
Tensor host_as(const Tensor& t, ScalarType dtype);

}  // namespace ops
}  // namespace torch_mlsgd
