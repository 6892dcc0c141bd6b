#include <torch_mlsgd/mlsgd.h>

#include "api/checks.h"
#include "optim/group_step.h"
#include "optim/options_io.h"

#include <torch/utils.h>

#include <map>
#include <set>
#include <utility>

namespace torch_mlsgd {

MLSGDOptions::MLSGDOptions(double lr) : lr_(lr) {}

bool operator==(const MLSGDOptions& lhs, const MLSGDOptions& rhs) {
  return optim_detail::lsgd_fields_equal(lhs, rhs) && lhs.schedule() == rhs.schedule() &&
         lhs.sigma_min() == rhs.sigma_min() && lhs.sigma_max() == rhs.sigma_max() && lhs.period() == rhs.period() &&
         lhs.seed() == rhs.seed();
}

void MLSGDOptions::serialize(torch::serialize::OutputArchive& archive) const {
  optim_detail::write_lsgd_fields(archive, *this);
  optim_detail::write_value(archive, "schedule", schedule());
  optim_detail::write_value(archive, "sigma_min", sigma_min());
  archive.write("sigma_max", sigma_max().has_value() ? c10::IValue(*sigma_max()) : c10::IValue());
  optim_detail::write_value(archive, "period", period());
  optim_detail::write_value(archive, "seed", seed());
}

void MLSGDOptions::serialize(torch::serialize::InputArchive& archive) {
  optim_detail::read_lsgd_fields(archive, *this);
  optim_detail::read_if_present<std::string>(archive, "schedule", [&](std::string v) { schedule(std::move(v)); });
  optim_detail::read_if_present<double>(archive, "sigma_min", [&](double v) { sigma_min(v); });
  c10::IValue max;
  if (archive.try_read("sigma_max", max)) {
    sigma_max(max.isNone() ? c10::nullopt : c10::optional<double>(max.toDouble()));
  }
  optim_detail::read_if_present<int64_t>(archive, "period", [&](int64_t v) { period(v); });
  optim_detail::read_if_present<int64_t>(archive, "seed", [&](int64_t v) { seed(v); });
}

double MLSGDOptions::get_lr() const { return lr(); }

void MLSGDOptions::set_lr(const double lr) { this->lr(lr); }

namespace {

std::optional<double> optional_of(const c10::optional<double>& value) {
  return value.has_value() ? std::optional<double>(*value) : std::nullopt;
}

}  // namespace

double MLSGDOptions::sigma_at(int64_t step) const {
  api::check_value(core::schedule_error(schedule(), sigma(), sigma_min(), optional_of(sigma_max()), period(), seed()));
  return core::make_schedule(schedule(), sigma(), sigma_min(), optional_of(sigma_max()), period(), seed()).at(step);
}

LSGDOptions MLSGDOptions::lsgd_options(double sigma) const {
  return LSGDOptions(lr())
      .sigma(sigma)
      .order(order())
      .momentum(momentum())
      .dampening(dampening())
      .weight_decay(weight_decay())
      .nesterov(nesterov())
      .maximize(maximize())
      .flatten(flatten())
      .backend(backend());
}

void check_options(const MLSGDOptions& o) {
  api::check_lsgd_fields(o);
  api::check_value(
      core::schedule_error(o.schedule(), o.sigma(), o.sigma_min(), optional_of(o.sigma_max()), o.period(), o.seed()));
}

void MLSGDParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
}

void MLSGDParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
}

bool operator==(const MLSGDParamState& lhs, const MLSGDParamState& rhs) {
  return lhs.step() == rhs.step() && lhs.momentum_buffer().defined() == rhs.momentum_buffer().defined() &&
         (!lhs.momentum_buffer().defined() || torch::equal(lhs.momentum_buffer(), rhs.momentum_buffer()));
}

torch::Tensor MLSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = optim_detail::evaluate_closure(closure);
  auto step_of = [&](const torch::Tensor& p) -> int64_t {
    auto it = state_.find(optim_detail::state_key(p));
    return it == state_.end() ? 0 : static_cast<MLSGDParamState&>(*it->second).step();
  };
  // Every sigma_k of the step (a group ring's, and a sharded ring's, first: its first parameter's).
  auto work = optim_detail::gradients_to_step<MLSGDOptions>(
      param_groups_, process_group_.get(), kName, [&](size_t g, const optim_detail::GroupGradients& group) {
        const auto& options = static_cast<const MLSGDOptions&>(param_groups_[g].options());
        std::vector<double> sigmas{options.sigma_at(group.params.empty() ? 0 : step_of(group.params[0]))};
        std::set<int64_t> steps;
        for (const auto& p : group.params) {
          steps.insert(options.flatten() == "group" ? step_of(group.params[0]) : step_of(p));
        }
        for (int64_t k : steps) {
          sigmas.push_back(options.sigma_at(k));
        }
        return sigmas;
      });
  for (size_t g = 0; g < work.size(); ++g) {
    const auto& options = static_cast<const MLSGDOptions&>(param_groups_[g].options());
    const auto& params = work[g].params;
    if (params.empty()) {
      continue;
    }
    // Parameters at the same step count share sigma_k and one kernel call; a
    // group ring follows its first parameter.
    std::map<int64_t, std::vector<size_t>> by_step;
    for (size_t i = 0; i < params.size(); ++i) {
      by_step[options.flatten() == "group" ? step_of(params[0]) : step_of(params[i])].push_back(i);
    }
    for (const auto& entry : by_step) {
      std::vector<torch::Tensor> ps;
      std::vector<torch::Tensor> gs;
      for (size_t i : entry.second) {
        ps.push_back(params[i]);
        gs.push_back(work[g].grads[i]);
      }
      // With a process group the gradients were smoothed above, as one ring over the ranks.
      optim_detail::fused_group_step<MLSGDParamState>(
          state_, ps, gs, options.lsgd_options(process_group_ ? 0.0 : options.sigma_at(entry.first)));
    }
    for (const auto& p : params) {
      auto& slot = state_[optim_detail::state_key(p)];
      if (!slot) {
        slot = std::make_unique<MLSGDParamState>();
      }
      auto& param_state = static_cast<MLSGDParamState&>(*slot);
      param_state.step(param_state.step() + 1);
    }
  }
  return loss;
}

}  // namespace torch_mlsgd
