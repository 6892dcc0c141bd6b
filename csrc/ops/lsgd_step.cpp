// The fused LSGD step op: its schema, C++ entry point, argument checks, the
// composite formulation, and the autograd glue. Kernels live in ops/cpu and
// ops/cuda.

#include "ops/lsgd_step.h"

#include <torch_mlsgd/laplacian_smooth.h>
#include <torch_mlsgd/lsgd.h>
#include <torch_mlsgd/lsgd_step.h>

#include "ops/smooth_args.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/library.h>

#include <cmath>

TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  m.def(
      "lsgd_step_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, "
      "bool[] fresh_buffers, float lr, float sigma, int order, float momentum, float dampening, "
      "float weight_decay, bool nesterov, bool maximize, str flatten, str backend) -> ()");
}

namespace torch_mlsgd {
namespace ops {

using StepSignature = void(at::TensorList, at::TensorList, at::TensorList, const c10::List<bool>&,
                           double, double, int64_t, double, double, double, bool, bool,
                           c10::string_view, c10::string_view);

LSGDStepArgs check_lsgd_step_args(at::TensorList params, at::TensorList grads,
                                  at::TensorList momentum_buffers, const c10::List<bool>& fresh,
                                  double lr, double sigma, int64_t order, double momentum,
                                  double dampening, double weight_decay, bool nesterov,
                                  bool maximize, c10::string_view flatten,
                                  c10::string_view backend) {
  TORCH_CHECK_VALUE(std::isfinite(lr) && lr >= 0, "Invalid learning rate: ", lr);
  check_sigma(sigma);
  check_order(order);
  TORCH_CHECK_VALUE(std::isfinite(momentum) && momentum >= 0, "Invalid momentum value: ",
                    momentum);
  TORCH_CHECK_VALUE(std::isfinite(dampening), "Invalid dampening value: ", dampening);
  TORCH_CHECK_VALUE(std::isfinite(weight_decay) && weight_decay >= 0,
                    "Invalid weight_decay value: ", weight_decay);
  TORCH_CHECK_VALUE(!nesterov || (momentum > 0 && dampening == 0),
                    "Nesterov momentum requires a momentum and zero dampening");
  TORCH_CHECK_VALUE(flatten == "tensor" || flatten == "group", "Invalid flatten value: '",
                    std::string(flatten.data(), flatten.size()),
                    "' (expected 'tensor' or 'group')");
  parse_backend(backend);

  TORCH_CHECK_VALUE(grads.size() == params.size(), "lsgd_step_: got ", params.size(),
                    " parameters but ", grads.size(), " gradients");
  if (momentum != 0) {
    TORCH_CHECK_VALUE(momentum_buffers.size() == params.size(), "lsgd_step_: momentum ",
                      momentum, " needs one momentum buffer per parameter; got ",
                      momentum_buffers.size(), " for ", params.size(), " parameters");
  } else {
    TORCH_CHECK_VALUE(momentum_buffers.empty(),
                      "lsgd_step_: momentum buffers given, but momentum is 0");
  }
  TORCH_CHECK_VALUE(fresh.size() == momentum_buffers.size(), "lsgd_step_: got ",
                    fresh.size(), " fresh_buffers flags for ", momentum_buffers.size(),
                    " momentum buffers");
  for (size_t i = 0; i < params.size(); ++i) {
    check_smoothable(grads[i], "gradient");
    TORCH_CHECK_VALUE(params[i].numel() == grads[i].numel(), "lsgd_step_: parameter ", i,
                      " has ", params[i].numel(), " elements but its gradient ",
                      grads[i].numel());
    TORCH_CHECK_VALUE(params[i].device() == grads[i].device(), "lsgd_step_: parameter ", i,
                      " is on ", params[i].device(), " but its gradient on ", grads[i].device());
    if (!momentum_buffers.empty()) {
      TORCH_CHECK_VALUE(momentum_buffers[i].numel() == params[i].numel() &&
                            momentum_buffers[i].device() == params[i].device(),
                        "lsgd_step_: momentum buffer ", i,
                        " does not match its parameter in size or device");
    }
  }
  if (flatten == "group") {
    for (size_t i = 1; i < grads.size(); ++i) {
      TORCH_CHECK(grads[i].scalar_type() == grads[0].scalar_type() &&
                      grads[i].device() == grads[0].device(),
                  "flatten='group' smooths a group's gradients as one vector, so they must "
                  "share one dtype and device; got ",
                  grads[0].scalar_type(), " on ", grads[0].device(), " and ",
                  grads[i].scalar_type(), " on ", grads[i].device());
    }
  }
  return LSGDStepArgs{lr,        sigma,    order,  momentum, dampening, weight_decay,
                      nesterov, maximize, flatten == "group", backend};
}

void lsgd_step_composite(at::TensorList params, at::TensorList grads,
                         at::TensorList momentum_buffers, const c10::List<bool>& fresh,
                         const LSGDStepArgs& a) {
  if (params.empty()) {
    return;
  }
  // Fresh tensors holding S(g); S(-g) == -S(g) bit for bit.
  std::vector<at::Tensor> directions;
  if (a.group_ring) {
    std::vector<at::Tensor> flat;
    for (const auto& g : grads) {
      flat.push_back(g.reshape({-1}));
    }
    const at::Tensor ring = laplacian_smooth(at::cat(flat), a.sigma, a.order, a.backend);
    int64_t offset = 0;
    for (const auto& g : grads) {
      directions.push_back(ring.narrow(0, offset, g.numel()).view(g.sizes()));
      offset += g.numel();
    }
  } else {
    for (const auto& g : grads) {
      directions.push_back(laplacian_smooth(g, a.sigma, a.order, a.backend));
    }
  }
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor param = params[i];
    at::Tensor d = directions[i].view(param.sizes());
    if (a.maximize) {
      d.neg_();
    }
    if (a.weight_decay != 0) {
      d.add_(param, a.weight_decay);
    }
    if (a.momentum != 0) {
      at::Tensor buf = momentum_buffers[i];
      if (fresh[i]) {
        buf.copy_(d);
      } else {
        buf.mul_(a.momentum).add_(d, 1 - a.dampening);
      }
      if (a.nesterov) {
        d.add_(buf, a.momentum);
      } else {
        d = buf;
      }
    }
    param.add_(d, -a.lr);
  }
}

namespace {

const c10::TypedOperatorHandle<StepSignature>& step_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mlsgd::lsgd_step_", "")
                             .typed<StepSignature>();
  return op;
}

// The step is an in-place update, not a differentiable function: run the
// kernel below autograd and tell autograd the tensors changed, so that a graph
// that saved a parameter before the step refuses to use the stale value.
void lsgd_step_autograd(at::TensorList params, at::TensorList grads,
                        at::TensorList momentum_buffers, const c10::List<bool>& fresh, double lr,
                        double sigma, int64_t order, double momentum, double dampening,
                        double weight_decay, bool nesterov, bool maximize,
                        c10::string_view flatten, c10::string_view backend) {
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    step_op().call(params, grads, momentum_buffers, fresh, lr, sigma, order, momentum, dampening,
                   weight_decay, nesterov, maximize, flatten, backend);
  }
  for (const auto& p : params) {
    torch::autograd::impl::bump_version(p);
  }
  for (const auto& b : momentum_buffers) {
    torch::autograd::impl::bump_version(b);
  }
}

}  // namespace
}  // namespace ops

TORCH_LIBRARY_IMPL(mlsgd, Autograd, m) {
  m.impl("lsgd_step_", &ops::lsgd_step_autograd);
}

void lsgd_step_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                const std::vector<bool>& fresh_buffers, const LSGDOptions& o) {
  if (params.empty()) {
    return;
  }
  c10::List<bool> fresh;
  for (bool f : fresh_buffers) {
    fresh.push_back(f);
  }
  ops::step_op().call(params, grads, momentum_buffers, fresh, o.lr(), o.sigma(), o.order(),
                      o.momentum(), o.dampening(), o.weight_decay(), o.nesterov(), o.maximize(),
                      o.flatten(), o.backend());
}

}  // namespace torch_mlsgd
