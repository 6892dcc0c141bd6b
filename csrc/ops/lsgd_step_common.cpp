// The fused LSGD step's argument checks and the staging of the tensors the
// fused kernels do not take as they are (ops/lsgd_step.h).

#include "ops/lsgd_step.h"

#include <map>
#include <optional>

namespace torch_mlsgd {
namespace ops {

LSGDStepArgs check_lsgd_step_args(const TensorList& params, const TensorList& grads, const TensorList& momentum_buffers,
                                  const std::vector<bool>& fresh, double lr, double sigma, int64_t order,
                                  double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
                                  const std::string& flatten, const std::string& backend) {
  check(core::lsgd_error(lr, sigma, order, momentum, dampening, weight_decay, nesterov, flatten, backend));
  check(grads.size() == params.size(), "lsgd_step_: got ", params.size(), " parameters but ", grads.size(),
        " gradients");
  if (momentum != 0) {
    check(momentum_buffers.size() == params.size(), "lsgd_step_: momentum ", momentum,
          " needs one momentum buffer per parameter; got ", momentum_buffers.size(), " for ", params.size(),
          " parameters");
  } else {
    check(momentum_buffers.empty(), "lsgd_step_: momentum buffers given, but momentum is 0");
  }
  check(fresh.size() == momentum_buffers.size(), "lsgd_step_: got ", fresh.size(), " fresh_buffers flags for ",
        momentum_buffers.size(), " momentum buffers");
  // params[0].device() is two calls into torch: asked once, not once per tensor.
  const std::optional<torch::stable::Device> device =
      params.empty() ? std::nullopt : std::optional<torch::stable::Device>(params[0].device());
  for (size_t i = 0; i < params.size(); ++i) {
    check_smoothable(grads[i], "gradient");
    check(params[i].numel() == grads[i].numel(), "lsgd_step_: parameter ", i, " has ", params[i].numel(),
          " elements but its gradient ", grads[i].numel());
    check(params[i].device() == *device && grads[i].device() == *device,
          "lsgd_step_: every parameter and gradient of a call must be on one device; parameter ", i,
          " or its gradient is not on the device of parameter 0");
    if (!momentum_buffers.empty()) {
      check(momentum_buffers[i].numel() == params[i].numel() && momentum_buffers[i].device() == *device,
            "lsgd_step_: momentum buffer ", i, " does not match its parameter in size or device");
    }
  }
  if (flatten == "group") {
    for (size_t i = 1; i < grads.size(); ++i) {
      check(grads[i].scalar_type() == grads[0].scalar_type(),
            "flatten='group' smooths a group's gradients as one vector, so they must share one dtype "
            "and device; got ",
            grads[0].scalar_type(), " and ", grads[i].scalar_type());
    }
  }
  return LSGDStepArgs{lr,           sigma,    order,    momentum,           dampening,
                      weight_decay, nesterov, maximize, flatten == "group", backend,
                      AmpScaling{}};
}

AmpScaling amp_scaling(const std::optional<Tensor>& grad_scale, const std::optional<Tensor>& found_inf,
                       const std::optional<torch::stable::Device>& device, const char* op) {
  AmpScaling amp{grad_scale, found_inf};
  auto check_one = [&](const std::optional<Tensor>& t, const char* what) {
    if (!t.has_value()) {
      return;
    }
    check(t->scalar_type() == ScalarType::Float && t->numel() == 1, op, ": ", what,
          " must be a one-element float32 tensor (as GradScaler makes it); got ", t->numel(), " elements of ",
          t->scalar_type());
    check(!device.has_value() || t->device() == *device, op, ": ", what,
          " must be on the parameters' device (GradScaler puts it there)");
  };
  check_one(grad_scale, "grad_scale");
  check_one(found_inf, "found_inf");
  if (!device.has_value()) {
    return amp;  // no parameters: nothing steps, nothing is read
  }
  if (device->type() == torch::stable::DeviceType::CPU) {
    // CPU scalars: read directly, no op call.
    amp.skip = found_inf.has_value() && *found_inf->const_data_ptr<float>() != 0.0f;
    amp.unscale = grad_scale.has_value() ? 1.0 / static_cast<double>(*grad_scale->const_data_ptr<float>()) : 1.0;
  } else {
    amp.device_grad_scale = grad_scale.has_value() ? grad_scale->const_data_ptr<float>() : nullptr;
    amp.device_found_inf = found_inf.has_value() ? found_inf->const_data_ptr<float>() : nullptr;
  }
  return amp;
}

std::vector<double> host_values(const Tensor& t, size_t count, const char* what) {
  check(is_floating(t.scalar_type()), "lsgd_step_: Tensor ", what, " must be floating-point, got ", t.scalar_type());
  const int64_t n = t.numel();
  check(n == 1 || (n == static_cast<int64_t>(count) && count > 1), "lsgd_step_: Tensor ", what, " must hold one value",
        count > 1 ? words(" or one per parameter (", count, ")") : "", "; got ", n);
  const Tensor host = host_as(t, ScalarType::Double);
  const double* values = host.const_data_ptr<double>();
  return n == 1 ? std::vector<double>(count == 0 ? 1 : count, values[0]) : std::vector<double>(values, values + n);
}

void run_step(const TensorList& params, const TensorList& grads, const TensorList& momentum_buffers,
              const std::vector<bool>& fresh, const LSGDStepArgs& args, FusedStep fused) {
  if (params.empty()) {
    return;
  }
  const ScalarType first = params[0].scalar_type();
  bool direct = first == ScalarType::Float || first == ScalarType::Double;
  auto plain = [&](const Tensor& t) { return t.scalar_type() == first && t.is_contiguous(); };
  for (size_t i = 0; direct && i < params.size(); ++i) {
    direct = plain(params[i]) && plain(grads[i]) && (momentum_buffers.empty() || plain(momentum_buffers[i]));
  }
  if (direct) {
    fused(params, grads, momentum_buffers, fresh, args);
    return;
  }
  // Staged: each dtype's tensors in one call (flatten="group" has one dtype).
  struct Staged {
    TensorList params, grads, buffers;
    std::vector<bool> fresh;
    std::vector<size_t> index;
  };
  std::map<int, Staged> by_dtype;
  for (size_t i = 0; i < params.size(); ++i) {
    const ScalarType dtype = compute_dtype(grads[i].scalar_type());
    Staged& s = by_dtype[static_cast<int>(dtype)];
    s.params.push_back(contiguous_as(params[i], dtype));
    s.grads.push_back(contiguous_as(grads[i], dtype));
    if (!momentum_buffers.empty()) {
      s.buffers.push_back(contiguous_as(momentum_buffers[i], dtype));
      s.fresh.push_back(fresh[i]);
    }
    s.index.push_back(i);
  }
  for (auto& entry : by_dtype) {
    Staged& s = entry.second;
    fused(s.params, s.grads, s.buffers, s.fresh, args);
    for (size_t k = 0; k < s.index.size(); ++k) {
      Tensor param = params[s.index[k]];
      if (!same_storage(param, s.params[k])) {
        torch::stable::copy_(param, s.params[k]);
      }
      if (!momentum_buffers.empty()) {
        Tensor buffer = momentum_buffers[s.index[k]];
        if (!same_storage(buffer, s.buffers[k])) {
          torch::stable::copy_(buffer, s.buffers[k]);
        }
      }
    }
  }
}

}  // namespace ops
}  // namespace torch_mlsgd
