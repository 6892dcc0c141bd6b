#include <torch_mlsgd/lsgd.h>

#include <torch_mlsgd/lsgd_step.h>

#include "optim/group_step.h"
#include "optim/options_io.h"

#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include <utility>

namespace torch_mlsgd {

LSGDOptions::LSGDOptions(double lr) : lr_(lr) {}

bool operator==(const LSGDOptions& lhs, const LSGDOptions& rhs) {
  return optim_detail::lsgd_fields_equal(lhs, rhs);
}

void LSGDOptions::serialize(torch::serialize::OutputArchive& archive) const {
  optim_detail::write_lsgd_fields(archive, *this);
}

void LSGDOptions::serialize(torch::serialize::InputArchive& archive) {
  optim_detail::read_lsgd_fields(archive, *this);
}

double LSGDOptions::get_lr() const { return lr(); }

void LSGDOptions::set_lr(const double lr) { this->lr(lr); }

void check_options(const LSGDOptions& options) { optim_detail::check_lsgd_fields(options); }

void LSGDParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void LSGDParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

bool operator==(const LSGDParamState& lhs, const LSGDParamState& rhs) {
  return torch::equal(lhs.momentum_buffer(), rhs.momentum_buffer());
}

LSGD::LSGD(std::vector<torch::optim::OptimizerParamGroup> param_groups, LSGDOptions defaults)
    : Optimizer(param_groups, std::make_unique<LSGDOptions>(defaults)) {
  optim_detail::keep_group_options(param_groups_, param_groups);
  check_options(defaults);
  for (const auto& group : param_groups_) {
    check_options(static_cast<const LSGDOptions&>(group.options()));
  }
}

LSGD::LSGD(std::vector<torch::Tensor> params, LSGDOptions defaults)
    : LSGD({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

void LSGD::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  optim_detail::add_group_keeping_options<LSGDOptions>(*this, param_groups_, param_group);
}

torch::Tensor LSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = optim_detail::evaluate_closure(closure);
  const auto work = optim_detail::checked_gradients<LSGDOptions>(param_groups_, "LSGD");
  for (size_t g = 0; g < work.size(); ++g) {
    if (!work[g].params.empty()) {
      optim_detail::fused_group_step<LSGDParamState>(
          state_, work[g].params, work[g].grads,
          static_cast<const LSGDOptions&>(param_groups_[g].options()));
    }
  }
  return loss;
}

void LSGD::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }

void LSGD::load(torch::serialize::InputArchive& archive) {
  auto saved = optim_detail::read_group_options<LSGDOptions>(
      archive, param_groups_.size(), "LSGD", [](const LSGDOptions& o) { check_options(o); });
  serialize(*this, archive);
  optim_detail::finish_load<LSGDParamState>(param_groups_, saved, state_);
}

}  // namespace torch_mlsgd
