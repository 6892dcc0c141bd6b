#pragma once

// Shared pieces of the fused LSGD step op (mlsgd::lsgd_step_): argument
// checks, and the staging every backend uses for tensors its fused kernel
// does not take directly.

#include "ops/smooth_args.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace ops {

using TensorList = std::vector<Tensor>;

// GradScaler's tensors, as torch's fused optimizers take them (its
// _step_supports_amp_scaling contract): `grad_scale`, the factor the gradients
// carry, and `found_inf`, nonzero when they hold an inf or NaN, so that the step
// must change nothing. The smoothing is linear, so the kernels smooth the
// gradients as they are and divide S(g) by the scale: the gradients are not
// written. On the CPU both values are read directly; on CUDA the kernels read
// them on the device (no host synchronisation). Hidden, as the stable ABI's
// Tensor it holds.
struct [[gnu::visibility("hidden")]] AmpScaling {
  std::optional<Tensor> grad_scale;
  std::optional<Tensor> found_inf;
  double unscale = 1.0;  // CPU: 1 / grad_scale
  bool skip = false;     // CPU: found_inf is nonzero
  // CUDA: device pointers for the kernels (null when absent).
  const float* device_grad_scale = nullptr;
  const float* device_found_inf = nullptr;
};

// Checks grad_scale and found_inf (one-element float32 tensors on `device`, or
// absent; `op` names the op in the message) and reads them as AmpScaling says.
AmpScaling amp_scaling(const std::optional<Tensor>& grad_scale, const std::optional<Tensor>& found_inf,
                       const std::optional<torch::stable::Device>& device, const char* op);

struct [[gnu::visibility("hidden")]] LSGDStepArgs {
  double lr;
  double sigma;
  int64_t order;
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  bool maximize;
  bool group_ring;  // flatten == "group"
  std::string backend;
  AmpScaling amp;
};

// Checks hyper-parameters and list shapes; raises before anything is written.
LSGDStepArgs check_lsgd_step_args(const TensorList& params, const TensorList& grads, const TensorList& momentum_buffers,
                                  const std::vector<bool>& fresh, double lr, double sigma, int64_t order,
                                  double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
                                  const std::string& flatten, const std::string& backend);

// A fused kernel: the step over tensors that are all contiguous, of one
// dtype (float32 or float64) and on one device.
using FusedStep = void (*)(const TensorList& params, const TensorList& grads, const TensorList& buffers,
                           const std::vector<bool>& fresh, const LSGDStepArgs& args);

// Runs `fused` on the arguments as they are when it takes them; otherwise
// (half precision, non-contiguous tensors, float32 beside float64) on
// contiguous copies in each gradient's compute dtype, one call per dtype,
// and writes the copies back: the same arithmetic, rounded once at the end.
void run_step(const TensorList& params, const TensorList& grads, const TensorList& momentum_buffers,
              const std::vector<bool>& fresh, const LSGDStepArgs& args, FusedStep fused);

// The device of a call's tensors (parameter 0's), if it has any.
inline std::optional<torch::stable::Device> device_of(const TensorList& params) {
  return params.empty() ? std::nullopt : std::optional<torch::stable::Device>(params[0].device());
}

// A backend's kernel of mlsgd::lsgd_step_ (the schema's argument list): the
// checks, then run_step with the backend's fused step (none when found_inf is
// set on the CPU).
template <FusedStep fused>
void lsgd_step_kernel(TensorList params, TensorList grads, TensorList momentum_buffers, std::vector<bool> fresh,
                      double lr, double sigma, int64_t order, double momentum, double dampening, double weight_decay,
                      bool nesterov, bool maximize, std::string flatten, std::string backend,
                      std::optional<Tensor> grad_scale, std::optional<Tensor> found_inf) {
  LSGDStepArgs args = check_lsgd_step_args(params, grads, momentum_buffers, fresh, lr, sigma, order, momentum,
                                           dampening, weight_decay, nesterov, maximize, flatten, backend);
  args.amp = amp_scaling(grad_scale, found_inf, device_of(params), "lsgd_step_");
  if (!args.amp.skip) {
    run_step(params, grads, momentum_buffers, fresh, args, fused);
  }
}

// The values of a hyper-parameter tensor, read on the host (a CUDA tensor with
// a synchronisation): `count` of them, from one value or from `count`.
std::vector<double> host_values(const Tensor& t, size_t count, const char* what);

// A backend's kernel of mlsgd::lsgd_step_.tensor: one lsgd_step_kernel call per
// distinct sigma, every call's arguments checked before any runs.
template <FusedStep fused>
void lsgd_step_tensor_kernel(TensorList params, TensorList grads, TensorList momentum_buffers, std::vector<bool> fresh,
                             Tensor lr, Tensor sigma, int64_t order, double momentum, double dampening,
                             double weight_decay, bool nesterov, bool maximize, std::string flatten,
                             std::string backend, std::optional<Tensor> grad_scale, std::optional<Tensor> found_inf) {
  const double lr_value = host_values(lr, 1, "lr")[0];
  const std::vector<double> sigmas = host_values(sigma, params.size(), "sigma");
  std::vector<double> distinct;
  std::vector<std::vector<size_t>> members;
  for (size_t i = 0; i < sigmas.size(); ++i) {
    size_t k = 0;
    while (k < distinct.size() && distinct[k] != sigmas[i]) {
      ++k;
    }
    if (k == distinct.size()) {
      distinct.push_back(sigmas[i]);
      members.emplace_back();
    }
    members[k].push_back(i);
  }
  check(distinct.size() <= 1 || flatten != "group",
        "lsgd_step_: flatten='group' smooths one ring, with one sigma; got ", distinct.size());
  if (distinct.size() <= 1) {
    lsgd_step_kernel<fused>(params, grads, momentum_buffers, fresh, lr_value, distinct.empty() ? 0.0 : distinct[0],
                            order, momentum, dampening, weight_decay, nesterov, maximize, flatten, backend, grad_scale,
                            found_inf);
    return;
  }
  std::vector<LSGDStepArgs> args;
  std::vector<TensorList> p(distinct.size()), g(distinct.size()), b(distinct.size());
  std::vector<std::vector<bool>> f(distinct.size());
  for (size_t k = 0; k < distinct.size(); ++k) {
    for (size_t i : members[k]) {
      p[k].push_back(params[i]);
      g[k].push_back(grads[i]);
      if (!momentum_buffers.empty()) {
        b[k].push_back(momentum_buffers[i]);
        f[k].push_back(fresh[i]);
      }
    }
    args.push_back(check_lsgd_step_args(p[k], g[k], b[k], f[k], lr_value, distinct[k], order, momentum, dampening,
                                        weight_decay, nesterov, maximize, flatten, backend));
  }
  const AmpScaling amp = amp_scaling(grad_scale, found_inf, device_of(params), "lsgd_step_");
  if (amp.skip) {
    return;
  }
  for (size_t k = 0; k < distinct.size(); ++k) {
    args[k].amp = amp;
    run_step(p[k], g[k], b[k], f[k], args[k], fused);
  }
}

}  // namespace ops
}  // namespace torch_mlsgd
