#pragma once

// Validation of the smoothing op's arguments, shared by every backend and by
// the optimizers, so that a bad value gets the same words everywhere and is
// rejected before anything is written.

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <cstdint>

namespace torch_mlsgd {
namespace ops {

enum class SmoothBackend { Auto, FFT, Direct };

// "auto" | "fft" | "direct"; anything else raises ValueError naming the string.
SmoothBackend parse_backend(c10::string_view name);

// sigma must be finite and >= 0; order must be >= 1. Raise ValueError.
void check_sigma(double sigma);
void check_order(int64_t order);

// A dense (strided), real floating-point tensor. Raises TypeError otherwise;
// `what` names the tensor in the message ("input", "gradient", ...).
void check_smoothable(const at::Tensor& tensor, const char* what);

void check_smooth_args(const at::Tensor& self, double sigma, int64_t order,
                       c10::string_view backend);

// laplacian_smooth_shard's arguments, on every device: three smoothable
// tensors of one dtype, a valid sigma and order. check_halo_lengths: each halo
// holds at least the `warmup` elements the direct route reads on its side.
void check_shard_args(const at::Tensor& shard, const at::Tensor& left, const at::Tensor& right,
                      double sigma, int64_t order);
void check_halo_lengths(const at::Tensor& left, const at::Tensor& right, int64_t warmup);

// Relative truncation tolerance of the direct route's start values for this
// compute dtype: about the unit roundoff of the stored result, with a margin.
double truncation_tolerance(at::ScalarType dtype);

// Float32 arithmetic for half types (there is no half FFT on CPU, and cuFFT's
// half path takes only powers of two); float32/float64 stay as they are.
at::ScalarType compute_dtype(at::ScalarType dtype);

}  // namespace ops
}  // namespace torch_mlsgd
