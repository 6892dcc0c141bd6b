// The LibTorch entry point of the fused LSGD step (torch_mlsgd/lsgd_step.h):
// the call through the dispatcher into the op library (csrc/ops).

#include <torch_mlsgd/lsgd.h>
#include <torch_mlsgd/lsgd_step.h>

#include "api/checks.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/variable.h>

namespace torch_mlsgd {
namespace {

using StepSignature = void(at::TensorList, at::TensorList, at::TensorList, const c10::List<bool>&, double, double,
                           int64_t, double, double, double, bool, bool, c10::string_view, c10::string_view,
                           const std::optional<at::Tensor>&, const std::optional<at::Tensor>&);

const c10::TypedOperatorHandle<StepSignature>& step_op() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("mlsgd::lsgd_step_", "").typed<StepSignature>();
  return op;
}

}  // namespace

void lsgd_step_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                const std::vector<bool>& fresh_buffers, const LSGDOptions& o) {
  if (params.empty()) {
    return;
  }
  api::check_lsgd_fields(o);
  c10::List<bool> fresh;
  for (bool f : fresh_buffers) {
    fresh.push_back(f);
  }
  {
    // The step is an in-place update, not a differentiable function: run it
    // below autograd and tell autograd the tensors changed, so that a graph
    // that saved a parameter before the step refuses to use the stale value.
    at::AutoDispatchBelowADInplaceOrView guard;
    step_op().call(params, grads, momentum_buffers, fresh, o.lr(), o.sigma(), o.order(), o.momentum(), o.dampening(),
                   o.weight_decay(), o.nesterov(), o.maximize(), o.flatten(), o.backend(), std::nullopt, std::nullopt);
  }
  for (const auto& p : params) {
    torch::autograd::impl::bump_version(p);
  }
  for (const auto& b : momentum_buffers) {
    torch::autograd::impl::bump_version(b);
  }
}

}  // namespace torch_mlsgd
