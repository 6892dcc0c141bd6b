// The smoothing op: its schema, its C++ entry points and its autograd rule.
// Backends live in ops/cpu and ops/cuda and only register kernels.

#include <torch_mlsgd/laplacian_smooth.h>

#include "core/recursive_filter.h"
#include "ops/cpu/simd_sweeps.h"
#include "ops/smooth_args.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <string>

TORCH_LIBRARY(mlsgd, m) {
  m.def("laplacian_smooth(Tensor self, float sigma, int order=1, str backend=\"auto\") -> Tensor");
  // The in-place op returns nothing: torch.compile's functionalization takes no
  // custom op whose output aliases an input (the C++ and Python APIs return self).
  m.def("laplacian_smooth_(Tensor(a!) self, float sigma, int order=1, str backend=\"auto\") -> ()");
  // One shard of a ring split across processes, given the ring elements just
  // before and after it (see torch_mlsgd.distributed): not differentiable.
  m.def(
      "laplacian_smooth_shard(Tensor shard, Tensor left_halo, Tensor right_halo, float sigma, "
      "int order=1) -> Tensor");
  // The halo length laplacian_smooth_shard needs (the direct route's warm-up).
  m.def("direct_warmup(float sigma, int order, ScalarType dtype) -> int",
        [](double sigma, int64_t order, c10::ScalarType dtype) {
          torch_mlsgd::ops::check_sigma(sigma);
          torch_mlsgd::ops::check_order(order);
          const auto compute = torch_mlsgd::ops::compute_dtype(dtype);
          return torch_mlsgd::core::make_recursive_filter(
                     sigma, order, torch_mlsgd::ops::truncation_tolerance(compute))
              .warmup;
        });
  // Which CPU kernels run here: "avx2" or "portable" (diagnostics and tests).
  m.def("cpu_kernels() -> str", [] {
    return std::string(torch_mlsgd::ops::cpu::simd::supported() ? "avx2" : "portable");
  });
}

namespace torch_mlsgd {
namespace {

using SmoothSignature = at::Tensor(const at::Tensor&, double, int64_t, c10::string_view);
using SmoothInplaceSignature = void(at::Tensor&, double, int64_t, c10::string_view);

const c10::TypedOperatorHandle<SmoothSignature>& smooth_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mlsgd::laplacian_smooth", "")
                             .typed<SmoothSignature>();
  return op;
}

const c10::TypedOperatorHandle<SmoothInplaceSignature>& smooth_inplace_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mlsgd::laplacian_smooth_", "")
                             .typed<SmoothInplaceSignature>();
  return op;
}

// S = A^{-1} with A symmetric, so the vector-Jacobian product is S(grad).
class LaplacianSmoothFunction : public torch::autograd::Function<LaplacianSmoothFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            double sigma, int64_t order, const std::string& backend) {
    ctx->saved_data["sigma"] = sigma;
    ctx->saved_data["order"] = order;
    ctx->saved_data["backend"] = backend;
    at::AutoDispatchBelowADInplaceOrView guard;
    return smooth_op().call(input, sigma, order, backend);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto backend = ctx->saved_data["backend"].toStringRef();
    at::Tensor grad_input = laplacian_smooth(grad_outputs[0], ctx->saved_data["sigma"].toDouble(),
                                             ctx->saved_data["order"].toInt(), backend);
    return {grad_input, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor smooth_autograd(const at::Tensor& self, double sigma, int64_t order,
                           c10::string_view backend) {
  ops::check_smooth_args(self, sigma, order, backend);
  return LaplacianSmoothFunction::apply(self, sigma, order,
                                        std::string(backend.data(), backend.size()));
}

void smooth_inplace_autograd(at::Tensor& self, double sigma, int64_t order, c10::string_view backend) {
  ops::check_smooth_args(self, sigma, order, backend);
  TORCH_CHECK(!(c10::GradMode::is_enabled() && self.requires_grad()),
              "laplacian_smooth_: cannot smooth in place a tensor that requires grad; "
              "use laplacian_smooth (out of place) or run under torch.no_grad()");
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    smooth_inplace_op().call(self, sigma, order, backend);
  }
  // Autograd must see that the tensor changed (saved copies become stale).
  torch::autograd::impl::bump_version(self);
}

}  // namespace

TORCH_LIBRARY_IMPL(mlsgd, Autograd, m) {
  m.impl("laplacian_smooth", &smooth_autograd);
  m.impl("laplacian_smooth_", &smooth_inplace_autograd);
}

at::Tensor laplacian_smooth(const at::Tensor& input, double sigma, int64_t order,
                            c10::string_view backend) {
  // Checked here too: sparse tensors would otherwise end in a dispatcher error.
  ops::check_smooth_args(input, sigma, order, backend);
  return smooth_op().call(input, sigma, order, backend);
}

at::Tensor& laplacian_smooth_(at::Tensor& input, double sigma, int64_t order,
                              c10::string_view backend) {
  ops::check_smooth_args(input, sigma, order, backend);
  smooth_inplace_op().call(input, sigma, order, backend);
  return input;
}

}  // namespace torch_mlsgd
