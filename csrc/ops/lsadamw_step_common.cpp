// The fused LSAdamW step's argument checks and the staging of the tensors the
// fused kernels do not take as they are (ops/lsadamw_step.h).

#include "ops/lsadamw_step.h"

#include <map>

namespace torch_mlsgd {
namespace ops {

double step_value(const Tensor& step) {
  // torch.optim keeps counts as float32 CPU scalars: read them without an op call.
  if (step.device().type() == torch::stable::DeviceType::CPU && step.scalar_type() == ScalarType::Float) {
    return static_cast<double>(*step.const_data_ptr<float>());
  }
  if (step.device().type() == torch::stable::DeviceType::CPU && step.scalar_type() == ScalarType::Double) {
    return *step.const_data_ptr<double>();
  }
  return *host_as(step, ScalarType::Double).const_data_ptr<double>();
}

AdamWStepArgs check_lsadamw_step_args(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                                      const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs,
                                      const TensorList& state_steps, double lr, double beta1, double beta2,
                                      double weight_decay, double eps, bool amsgrad, bool maximize, double sigma,
                                      int64_t order, const std::string& flatten, const std::string& backend) {
  check(core::adamw_error(lr, beta1, beta2, eps, weight_decay, sigma, order, flatten, backend));
  const size_t n = params.size();
  check(grads.size() == n && exp_avgs.size() == n && exp_avg_sqs.size() == n && state_steps.size() == n,
        "lsadamw_step_: got ", n, " parameters, ", grads.size(), " gradients, ", exp_avgs.size(), " exp_avgs, ",
        exp_avg_sqs.size(), " exp_avg_sqs and ", state_steps.size(), " state_steps; one of each per parameter");
  check(max_exp_avg_sqs.size() == (amsgrad ? n : 0), "lsadamw_step_: amsgrad=", amsgrad ? "True" : "False", " needs ",
        amsgrad ? n : 0, " max_exp_avg_sqs; got ", max_exp_avg_sqs.size());
  for (size_t i = 0; i < n; ++i) {
    const torch::stable::Device device = params[0].device();
    check_smoothable(grads[i], "gradient");
    check(params[i].device() == device && grads[i].device() == device,
          "lsadamw_step_: every parameter and gradient of a call must be on one device; parameter ", i,
          " or its gradient is not on the device of parameter 0");
    const int64_t numel = params[i].numel();
    bool matches = grads[i].numel() == numel && exp_avgs[i].numel() == numel && exp_avg_sqs[i].numel() == numel &&
                   exp_avgs[i].device() == device && exp_avg_sqs[i].device() == device;
    if (amsgrad) {
      matches = matches && max_exp_avg_sqs[i].numel() == numel && max_exp_avg_sqs[i].device() == device;
    }
    check(matches, "lsadamw_step_: the gradient or a moment of parameter ", i,
          " does not match the parameter in size or device");
    check(state_steps[i].numel() == 1, "lsadamw_step_: a step count must hold one value; parameter ", i, "'s holds ",
          state_steps[i].numel());
  }
  if (flatten == "group") {
    for (size_t i = 1; i < n; ++i) {
      check(grads[i].scalar_type() == grads[0].scalar_type(),
            "flatten='group' smooths a group's gradients as one vector, so they must share one dtype and device; got ",
            grads[0].scalar_type(), " and ", grads[i].scalar_type());
    }
  }
  return AdamWStepArgs{lr,       beta1, beta2, weight_decay,       eps,     amsgrad,
                       maximize, sigma, order, flatten == "group", backend, AmpScaling{}};
}

void run_adamw_step(const AdamWStepTensors& t, const AdamWStepArgs& args,
                    const std::function<void(const AdamWStepTensors&, const AdamWStepArgs&)>& fused) {
  if (t.params.empty()) {
    return;
  }
  const ScalarType first = t.params[0].scalar_type();
  bool direct = first == ScalarType::Float || first == ScalarType::Double;
  auto plain = [&](const Tensor& x) { return x.scalar_type() == first && x.is_contiguous(); };
  for (size_t i = 0; direct && i < t.params.size(); ++i) {
    direct = plain(t.params[i]) && plain(t.grads[i]) && plain(t.exp_avgs[i]) && plain(t.exp_avg_sqs[i]) &&
             (t.max_exp_avg_sqs.empty() || plain(t.max_exp_avg_sqs[i]));
  }
  if (direct) {
    fused(t, args);
    return;
  }
  // Staged: each dtype's tensors in one call (flatten="group" has one dtype).
  std::map<int, std::pair<AdamWStepTensors, std::vector<size_t>>> by_dtype;
  for (size_t i = 0; i < t.params.size(); ++i) {
    const ScalarType dtype = compute_dtype(t.grads[i].scalar_type());
    auto& [s, index] = by_dtype[static_cast<int>(dtype)];
    s.params.push_back(contiguous_as(t.params[i], dtype));
    s.grads.push_back(contiguous_as(t.grads[i], dtype));
    s.exp_avgs.push_back(contiguous_as(t.exp_avgs[i], dtype));
    s.exp_avg_sqs.push_back(contiguous_as(t.exp_avg_sqs[i], dtype));
    if (!t.max_exp_avg_sqs.empty()) {
      s.max_exp_avg_sqs.push_back(contiguous_as(t.max_exp_avg_sqs[i], dtype));
    }
    s.steps.push_back(t.steps[i]);
    index.push_back(i);
  }
  auto write_back = [](Tensor original, const Tensor& staged) {
    if (!same_storage(original, staged)) {
      torch::stable::copy_(original, staged);
    }
  };
  for (auto& entry : by_dtype) {
    const auto& [s, index] = entry.second;
    fused(s, args);
    for (size_t k = 0; k < index.size(); ++k) {
      write_back(t.params[index[k]], s.params[k]);
      write_back(t.exp_avgs[index[k]], s.exp_avgs[k]);
      write_back(t.exp_avg_sqs[index[k]], s.exp_avg_sqs[k]);
      if (!t.max_exp_avg_sqs.empty()) {
        write_back(t.max_exp_avg_sqs[index[k]], s.max_exp_avg_sqs[k]);
      }
    }
  }
}

}  // namespace ops
}  // namespace torch_mlsgd
