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

LSGD::LSGD(std::vector<torch::optim::OptimizerParamGroup> param_groups, LSGDOptions defaults,
           c10::intrusive_ptr<c10d::ProcessGroup> process_group)
    : Optimizer(param_groups, std::make_unique<LSGDOptions>(defaults)),
      process_group_(std::move(process_group)) {
  optim_detail::keep_group_options(param_groups_, param_groups);
  check_options(defaults);
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const LSGDOptions&>(group.options());
    check_options(options);
    if (process_group_) {
      optim_detail::check_process_group_options(options.flatten(), "LSGD");
    }
  }
}

LSGD::LSGD(std::vector<torch::optim::OptimizerParamGroup> param_groups, LSGDOptions defaults)
    : LSGD(std::move(param_groups), std::move(defaults), c10::intrusive_ptr<c10d::ProcessGroup>()) {}

LSGD::LSGD(std::vector<torch::Tensor> params, LSGDOptions defaults)
    : LSGD({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults), c10::intrusive_ptr<c10d::ProcessGroup>()) {}

LSGD::LSGD(std::vector<torch::Tensor> params, LSGDOptions defaults,
           c10::intrusive_ptr<c10d::ProcessGroup> process_group)
    : LSGD({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults),
           std::move(process_group)) {}

void LSGD::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  if (process_group_) {
    optim_detail::check_process_group_options(
        static_cast<const LSGDOptions&>(param_group.has_options() ? param_group.options() : *defaults_).flatten(),
        "LSGD");
  }
  optim_detail::add_group_keeping_options<LSGDOptions>(*this, param_groups_, param_group);
}

torch::Tensor LSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = optim_detail::evaluate_closure(closure);
  auto work = optim_detail::checked_gradients<LSGDOptions>(param_groups_, "LSGD");
  for (size_t g = 0; g < work.size() && !process_group_; ++g) {
    const auto& options = static_cast<const LSGDOptions&>(param_groups_[g].options());
    optim_detail::check_direct_route(work[g], options.sigma(), options.order(), options.backend());
  }
  if (process_group_) {  // every group's exchange before any parameter changes
    for (size_t g = 0; g < work.size(); ++g) {
      const auto& options = static_cast<const LSGDOptions&>(param_groups_[g].options());
      if (!param_groups_[g].params().empty()) {
        optim_detail::smooth_sharded_gradients(*process_group_, work[g], param_groups_[g].params()[0],
                                               options.sigma(), options.order());
      }
    }
  }
  for (size_t g = 0; g < work.size(); ++g) {
    if (!work[g].params.empty()) {
      LSGDOptions options = static_cast<const LSGDOptions&>(param_groups_[g].options());
      if (process_group_) {
        options.sigma(0.0);  // smoothed above, as one ring over the ranks
      }
      optim_detail::fused_group_step<LSGDParamState>(state_, work[g].params, work[g].grads, options);
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
