// SmoothingOptimizer's members, defined once and instantiated for the
// optimizers the library ships.

#include <torch_mlsgd/lsadamw.h>
#include <torch_mlsgd/lsgd.h>
#include <torch_mlsgd/mlsgd.h>
#include <torch_mlsgd/smoothing_optimizer.h>

#include "optim/group_step.h"
#include "optim/options_io.h"

#include <torch/optim/serialize.h>

#include <memory>
#include <utility>

namespace torch_mlsgd {

template <typename Derived, typename Options, typename ParamState>
SmoothingOptimizer<Derived, Options, ParamState>::SmoothingOptimizer(
    std::vector<torch::optim::OptimizerParamGroup> param_groups, Options defaults, ProcessGroupPtr process_group)
    : Optimizer(param_groups, std::make_unique<Options>(defaults)), process_group_(std::move(process_group)) {
  optim_detail::keep_group_options(param_groups_, param_groups);
  check_options(defaults);
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const Options&>(group.options());
    check_options(options);
    if (process_group_) {
      optim_detail::check_process_group_options(options.flatten(), Derived::kName);
    }
  }
}

template <typename Derived, typename Options, typename ParamState>
SmoothingOptimizer<Derived, Options, ParamState>::SmoothingOptimizer(std::vector<torch::Tensor> params,
                                                                     Options defaults, ProcessGroupPtr process_group)
    : SmoothingOptimizer({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults),
                         std::move(process_group)) {}

template <typename Derived, typename Options, typename ParamState>
void SmoothingOptimizer<Derived, Options, ParamState>::add_param_group(
    const torch::optim::OptimizerParamGroup& param_group) {
  if (process_group_) {
    optim_detail::check_process_group_options(
        static_cast<const Options&>(param_group.has_options() ? param_group.options() : *defaults_).flatten(),
        Derived::kName);
  }
  optim_detail::add_group_keeping_options<Options>(*this, param_groups_, param_group);
}

template <typename Derived, typename Options, typename ParamState>
void SmoothingOptimizer<Derived, Options, ParamState>::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<ParamState, Options>(archive, *this);
}

template <typename Derived, typename Options, typename ParamState>
void SmoothingOptimizer<Derived, Options, ParamState>::load(torch::serialize::InputArchive& archive) {
  auto saved = optim_detail::read_group_options<Options>(archive, param_groups_.size(), Derived::kName,
                                                         [](const Options& o) { check_options(o); });
  torch::optim::serialize<ParamState, Options>(archive, *this);
  optim_detail::finish_load<ParamState>(param_groups_, saved, state_);
}

template class SmoothingOptimizer<LSGD, LSGDOptions, LSGDParamState>;
template class SmoothingOptimizer<MLSGD, MLSGDOptions, MLSGDParamState>;
template class SmoothingOptimizer<LSAdamW, LSAdamWOptions, LSAdamWParamState>;

}  // namespace torch_mlsgd
