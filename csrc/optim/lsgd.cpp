#include <torch_mlsgd/lsgd.h>

#include <torch_mlsgd/lsgd_step.h>

#include "api/checks.h"
#include "optim/group_step.h"
#include "optim/options_io.h"

#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include <utility>

namespace torch_mlsgd {

LSGDOptions::LSGDOptions(double lr) : lr_(lr) {}

bool operator==(const LSGDOptions& lhs, const LSGDOptions& rhs) { return optim_detail::lsgd_fields_equal(lhs, rhs); }

void LSGDOptions::serialize(torch::serialize::OutputArchive& archive) const {
  optim_detail::write_lsgd_fields(archive, *this);
}

void LSGDOptions::serialize(torch::serialize::InputArchive& archive) { optim_detail::read_lsgd_fields(archive, *this); }

double LSGDOptions::get_lr() const { return lr(); }

void LSGDOptions::set_lr(const double lr) { this->lr(lr); }

void check_options(const LSGDOptions& options) { api::check_lsgd_fields(options); }

void LSGDParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void LSGDParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

bool operator==(const LSGDParamState& lhs, const LSGDParamState& rhs) {
  return torch::equal(lhs.momentum_buffer(), rhs.momentum_buffer());
}

torch::Tensor LSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = optim_detail::evaluate_closure(closure);
  const auto work = optim_detail::gradients_at_own_sigma<LSGDOptions>(param_groups_, process_group_.get(), kName);
  optim_detail::step_groups<LSGDOptions>(param_groups_, work, process_group_ != nullptr,
                                         [&](const LSGDOptions& options, const optim_detail::GroupGradients& group) {
                                           optim_detail::fused_group_step<LSGDParamState>(state_, group.params,
                                                                                          group.grads, options);
                                         });
  return loss;
}

}  // namespace torch_mlsgd
