// The LibTorch entry points of the smoothing op (torch_mlsgd/laplacian_smooth.h):
// argument checks with c10 errors, autograd, and the call through the
// dispatcher into the op library (csrc/ops), which registers the kernels.

#include <torch_mlsgd/laplacian_smooth.h>

#include "api/checks.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>

#include <string>

namespace torch_mlsgd {
namespace {

using SmoothSignature = at::Tensor(const at::Tensor&, double, int64_t, c10::string_view);
using SmoothInplaceSignature = void(at::Tensor&, double, int64_t, c10::string_view);
using SmoothListSignature = void(at::TensorList, double, int64_t, c10::string_view, c10::string_view);

const c10::TypedOperatorHandle<SmoothSignature>& smooth_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mlsgd::laplacian_smooth", "").typed<SmoothSignature>();
  return op;
}

const c10::TypedOperatorHandle<SmoothInplaceSignature>& smooth_inplace_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mlsgd::laplacian_smooth_", "").typed<SmoothInplaceSignature>();
  return op;
}

const c10::TypedOperatorHandle<SmoothListSignature>& smooth_list_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mlsgd::laplacian_smooth_list_", "").typed<SmoothListSignature>();
  return op;
}

// S = A^{-1} with A symmetric, so the vector-Jacobian product is S(grad).
// (Python registers the same formula with torch.library.register_autograd.)
class LaplacianSmoothFunction : public torch::autograd::Function<LaplacianSmoothFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, double sigma, int64_t order,
                            const std::string& backend) {
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

}  // namespace

at::Tensor laplacian_smooth(const at::Tensor& input, double sigma, int64_t order, c10::string_view backend) {
  api::check_smoothable(input, "input");
  api::check_smooth_scalars(sigma, order, backend);
  return LaplacianSmoothFunction::apply(input, sigma, order, std::string(backend.data(), backend.size()));
}

at::Tensor& laplacian_smooth_(at::Tensor& input, double sigma, int64_t order, c10::string_view backend) {
  api::check_smoothable(input, "input");
  api::check_smooth_scalars(sigma, order, backend);
  TORCH_CHECK(!(c10::GradMode::is_enabled() && input.requires_grad()),
              "laplacian_smooth_: cannot smooth in place a tensor that requires grad; "
              "use laplacian_smooth (out of place) or run under torch::NoGradGuard");
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    smooth_inplace_op().call(input, sigma, order, backend);
  }
  // Autograd must see that the tensor changed (saved copies become stale).
  torch::autograd::impl::bump_version(input);
  return input;
}

void smooth_grad_(const std::vector<at::Tensor>& parameters, double sigma, int64_t order, c10::string_view flatten,
                  c10::string_view backend) {
  api::check_smooth_scalars(sigma, order, backend);
  TORCH_CHECK_VALUE(flatten == "tensor" || flatten == "group", "Invalid flatten value: '", flatten,
                    "' (expected 'tensor' or 'group')");
  std::vector<at::Tensor> grads;
  for (const auto& p : parameters) {
    if (p.grad().defined()) {
      api::check_smoothable(p.grad(), "gradient");
      grads.push_back(p.grad());
    }
  }
  if (flatten == "group") {
    for (const auto& g : grads) {
      TORCH_CHECK_VALUE(g.scalar_type() == grads[0].scalar_type() && g.device() == grads[0].device(),
                        "flatten='group' smooths the gradients as one vector, so they must share one dtype and "
                        "device; got ",
                        grads[0].scalar_type(), " on ", grads[0].device(), " and ", g.scalar_type(), " on ",
                        g.device());
    }
  }
  if (grads.empty() || sigma == 0) {
    return;
  }
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    smooth_list_op().call(grads, sigma, order, flatten, backend);
  }
  for (auto& g : grads) {
    torch::autograd::impl::bump_version(g);
  }
}

}  // namespace torch_mlsgd
