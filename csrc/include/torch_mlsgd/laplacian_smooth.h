#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <cstdint>
#include <vector>

namespace torch_mlsgd {

/// Laplacian smoothing of a tensor, flattened in row-major order:
///
///     S(v) = (I + sigma * (-L)^order)^{-1} v,
///
/// with L the 1-D discrete Laplacian on a periodic ring of input.numel()
/// points. Returns a new tensor of the input's shape and dtype; float16 and
/// bfloat16 are computed in float32.
///
/// `backend` is "fft" (real FFT divided by the closed-form symbol), "direct"
/// (O(n) causal/anti-causal recursions, exact to rounding) or "auto" (the
/// cheaper of the two for this size, sigma and order). The op is differentiable:
/// S is symmetric, so its backward is S again.
///
/// Raises c10::ValueError for negative or non-finite sigma, order < 1 or an
/// unknown backend, and c10::TypeError for non-floating, complex or sparse input.
at::Tensor laplacian_smooth(const at::Tensor& input, double sigma, int64_t order = 1,
                            c10::string_view backend = "auto");

/// In-place laplacian_smooth; returns `input`. On error `input` is unchanged.
at::Tensor& laplacian_smooth_(at::Tensor& input, double sigma, int64_t order = 1, c10::string_view backend = "auto");

/// Replaces the gradient of every parameter by its Laplacian smoothing, in place,
/// so that any optimizer steps on smoothed gradients (torch::optim::SGD after it
/// is LSGD), as torch_mlsgd.smooth_grad_ does in Python: each gradient its own
/// ring (flatten "tensor") or all of them, concatenated in order, one ring
/// ("group"). Parameters without a gradient are skipped; every argument and
/// gradient is checked (c10::ValueError / c10::TypeError) before any changes.
void smooth_grad_(const std::vector<at::Tensor>& parameters, double sigma = 1.0, int64_t order = 1,
                  c10::string_view flatten = "tensor", c10::string_view backend = "auto");

}  // namespace torch_mlsgd
