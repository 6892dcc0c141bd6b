#include <torch_mlsgd/lsadamw.h>

#include "api/checks.h"
#include "optim/group_step.h"
#include "optim/options_io.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include <memory>
#include <utility>

namespace torch_mlsgd {
namespace {

using StepSignature = void(at::TensorList, at::TensorList, at::TensorList, at::TensorList, at::TensorList,
                           at::TensorList, const at::Tensor&, double, double, double, double, bool, bool, double,
                           int64_t, c10::string_view, c10::string_view, const std::optional<at::Tensor>&,
                           const std::optional<at::Tensor>&);

const c10::TypedOperatorHandle<StepSignature>& step_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mlsgd::lsadamw_step_", "").typed<StepSignature>();
  return op;
}

// One call of mlsgd::lsadamw_step_ over a group's parameters with gradients; the
// moments live in `state`, new ones stored only after the kernel succeeded.
void group_step(optim_detail::StateMap& state, const std::vector<torch::Tensor>& params,
                const std::vector<torch::Tensor>& grads, const LSAdamWOptions& o) {
  std::vector<torch::Tensor> exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps;
  std::vector<std::unique_ptr<LSAdamWParamState>> fresh(params.size());
  std::vector<LSAdamWParamState*> states;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    auto it = state.find(optim_detail::state_key(p));
    LSAdamWParamState* s = nullptr;
    if (it != state.end()) {
      s = static_cast<LSAdamWParamState*>(it->second.get());
    } else {
      fresh[i] = std::make_unique<LSAdamWParamState>();
      s = fresh[i].get();
      s->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
      s->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
    }
    if (o.amsgrad() && !s->max_exp_avg_sq().defined()) {
      s->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
    }
    states.push_back(s);
    exp_avgs.push_back(s->exp_avg());
    exp_avg_sqs.push_back(s->exp_avg_sq());
    if (o.amsgrad()) {
      max_exp_avg_sqs.push_back(s->max_exp_avg_sq());
    }
    // The count with this step included, where the kernel of p's device reads it
    // (torch's fused CUDA AdamW reads float32 counts on the device).
    steps.push_back(p.is_cpu() ? torch::scalar_tensor(static_cast<double>(s->step() + 1), torch::kFloat64)
                               : torch::scalar_tensor(static_cast<double>(s->step() + 1),
                                                      torch::TensorOptions(torch::kFloat32).device(p.device())));
  }
  {
    // An in-place update, not a differentiable function: below autograd, then
    // autograd is told the tensors changed.
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto [beta1, beta2] = o.betas();
    step_op().call(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                   torch::scalar_tensor(o.lr(), torch::kFloat64), beta1, beta2, o.weight_decay(), o.eps(), o.amsgrad(),
                   o.maximize(), o.sigma(), o.order(), o.flatten(), o.backend(), std::nullopt, std::nullopt);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    torch::autograd::impl::bump_version(params[i]);
    torch::autograd::impl::bump_version(exp_avgs[i]);
    torch::autograd::impl::bump_version(exp_avg_sqs[i]);
    if (o.amsgrad()) {
      torch::autograd::impl::bump_version(max_exp_avg_sqs[i]);
    }
    states[i]->step(states[i]->step() + 1);
    if (fresh[i]) {
      state[optim_detail::state_key(params[i])] = std::move(fresh[i]);
    }
  }
}

}  // namespace

LSAdamWOptions::LSAdamWOptions(double lr) : lr_(lr) {}

bool operator==(const LSAdamWOptions& lhs, const LSAdamWOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.betas() == rhs.betas() && lhs.eps() == rhs.eps() &&
         lhs.weight_decay() == rhs.weight_decay() && lhs.amsgrad() == rhs.amsgrad() && lhs.sigma() == rhs.sigma() &&
         lhs.order() == rhs.order() && lhs.maximize() == rhs.maximize() && lhs.flatten() == rhs.flatten() &&
         lhs.backend() == rhs.backend();
}

void LSAdamWOptions::serialize(torch::serialize::OutputArchive& archive) const {
  optim_detail::write_value(archive, "lr", lr());
  optim_detail::write_value(archive, "beta1", std::get<0>(betas()));
  optim_detail::write_value(archive, "beta2", std::get<1>(betas()));
  optim_detail::write_value(archive, "eps", eps());
  optim_detail::write_value(archive, "weight_decay", weight_decay());
  optim_detail::write_value(archive, "amsgrad", amsgrad());
  optim_detail::write_value(archive, "sigma", sigma());
  optim_detail::write_value(archive, "order", order());
  optim_detail::write_value(archive, "maximize", maximize());
  optim_detail::write_value(archive, "flatten", flatten());
  optim_detail::write_value(archive, "backend", backend());
}

void LSAdamWOptions::serialize(torch::serialize::InputArchive& archive) {
  using optim_detail::read_if_present;
  read_if_present<double>(archive, "lr", [&](double v) { lr(v); });
  read_if_present<double>(archive, "beta1", [&](double v) { std::get<0>(betas()) = v; });
  read_if_present<double>(archive, "beta2", [&](double v) { std::get<1>(betas()) = v; });
  read_if_present<double>(archive, "eps", [&](double v) { eps(v); });
  read_if_present<double>(archive, "weight_decay", [&](double v) { weight_decay(v); });
  read_if_present<bool>(archive, "amsgrad", [&](bool v) { amsgrad(v); });
  read_if_present<double>(archive, "sigma", [&](double v) { sigma(v); });
  read_if_present<int64_t>(archive, "order", [&](int64_t v) { order(v); });
  read_if_present<bool>(archive, "maximize", [&](bool v) { maximize(v); });
  read_if_present<std::string>(archive, "flatten", [&](std::string v) { flatten(std::move(v)); });
  read_if_present<std::string>(archive, "backend", [&](std::string v) { backend(std::move(v)); });
}

double LSAdamWOptions::get_lr() const { return lr(); }

void LSAdamWOptions::set_lr(const double lr) { this->lr(lr); }

void check_options(const LSAdamWOptions& o) {
  api::check_value(core::adamw_error(o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()), o.eps(), o.weight_decay(),
                                     o.sigma(), o.order(), o.flatten(), o.backend()));
}

void LSAdamWParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(max_exp_avg_sq);
}

void LSAdamWParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, max_exp_avg_sq);
}

bool operator==(const LSAdamWParamState& lhs, const LSAdamWParamState& rhs) {
  auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
    return a.defined() == b.defined() && (!a.defined() || torch::equal(a, b));
  };
  return lhs.step() == rhs.step() && same(lhs.exp_avg(), rhs.exp_avg()) && same(lhs.exp_avg_sq(), rhs.exp_avg_sq()) &&
         same(lhs.max_exp_avg_sq(), rhs.max_exp_avg_sq());
}

torch::Tensor LSAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = optim_detail::evaluate_closure(closure);
  const auto work = optim_detail::gradients_at_own_sigma<LSAdamWOptions>(param_groups_, process_group_.get(), kName);
  optim_detail::step_groups<LSAdamWOptions>(
      param_groups_, work, process_group_ != nullptr,
      [&](const LSAdamWOptions& options, const optim_detail::GroupGradients& group) {
        group_step(state_, group.params, group.grads, options);
      });
  return loss;
}

}  // namespace torch_mlsgd
