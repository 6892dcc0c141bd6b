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
  auto work = optim_detail::checked_gradients<LSGDOptions>(param_groups_, kName);
  for (size_t g = 0; g < work.size() && !process_group_; ++g) {
    const auto& options = static_cast<const LSGDOptions&>(param_groups_[g].options());
    optim_detail::check_direct_route(work[g], options.sigma(), options.order(), options.backend());
  }
  if (process_group_) {  // every group's exchange before any parameter changes
    for (size_t g = 0; g < work.size(); ++g) {
      const auto& options = static_cast<const LSGDOptions&>(param_groups_[g].options());
      if (!param_groups_[g].params().empty()) {
        optim_detail::smooth_sharded_gradients(*process_group_, work[g], param_groups_[g].params()[0], options.sigma(),
                                               options.order());
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

}  // namespace torch_mlsgd
