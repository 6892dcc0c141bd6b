#pragma once

// The rules of core/checks.h raised as c10 errors, the LibTorch API's own
// (c10::ValueError, c10::TypeError: ValueError/TypeError in Python), before a
// call reaches the op library.

#include "core/checks.h"

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <string>

namespace torch_mlsgd {
namespace api {

inline void check_value(const std::string& error) { TORCH_CHECK_VALUE(error.empty(), error); }

// The LSGD hyper-parameters of any options type with LSGDOptions' fields (LSGD,
// MLSGD, the fused step): the one check of the LibTorch sites.
template <typename Options>
void check_lsgd_fields(const Options& o) {
  check_value(core::lsgd_error(o.lr(), o.sigma(), o.order(), o.momentum(), o.dampening(), o.weight_decay(),
                               o.nesterov(), o.flatten(), o.backend()));
}

inline void check_smooth_scalars(double sigma, int64_t order, c10::string_view backend) {
  check_value(core::sigma_error(sigma));
  check_value(core::order_error(order));
  check_value(core::backend_error(std::string_view(backend.data(), backend.size())));
}

// A dense (strided), real floating-point tensor; `what` names it in the message.
inline void check_smoothable(const at::Tensor& tensor, const char* what) {
  TORCH_CHECK_VALUE(tensor.defined(), "laplacian_smooth: the ", what, " is an undefined tensor");
  TORCH_CHECK_TYPE(tensor.layout() == at::kStrided, "laplacian_smooth: sparse ", what,
                   "s are not supported (got layout ", tensor.layout(), ")");
  TORCH_CHECK_TYPE(!tensor.is_complex(), "laplacian_smooth: complex ", what, "s are not supported (got dtype ",
                   tensor.scalar_type(), ")");
  TORCH_CHECK_TYPE(tensor.is_floating_point(), "laplacian_smooth: expected a floating-point ", what, ", got dtype ",
                   tensor.scalar_type());
}

// core::truncation_tolerance for a tensor of `dtype` (the LibTorch code that sizes halos).
inline double truncation_tolerance(at::ScalarType dtype) { return core::truncation_tolerance(dtype == at::kDouble); }

}  // namespace api
}  // namespace torch_mlsgd
