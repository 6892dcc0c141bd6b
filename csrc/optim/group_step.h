#pragma once

// What LSGD::step and MLSGD::step share: collecting and checking a group's
// gradients, and one call of the fused kernel with the momentum buffers the
// optimizer keeps in its per-parameter state.

#include <torch_mlsgd/lsgd.h>
#include <torch_mlsgd/lsgd_step.h>

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace torch_mlsgd {
namespace optim_detail {

// torch::optim::Optimizer's per-parameter state. libtorch keys it by the
// parameter's TensorImpl: as a printed pointer (std::string) up to torch 2.0,
// as the pointer itself (void*) since.
using StateMap = std::remove_reference_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;

template <typename Key = StateMap::key_type>
Key state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;  // how libtorch prints it (c10::guts::to_string)
    key << p.unsafeGetTensorImpl();
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

// libtorch 2.x's Optimizer::add_param_group keeps the options a group brings
// only for libtorch's own optimizers and gives any other optimizer's groups the
// defaults; libtorch 1.x kept them. Both torches: a group's options are its own,
// whole. `stored` are the optimizer's groups, `given` those it was built with.
inline void keep_group_options(std::vector<torch::optim::OptimizerParamGroup>& stored,
                               const std::vector<torch::optim::OptimizerParamGroup>& given) {
  for (size_t i = 0; i < given.size() && i < stored.size(); ++i) {
    if (given[i].has_options()) {
      stored[i].set_options(given[i].options().clone());
    }
  }
}

// Optimizer::add_param_group with keep_group_options' semantics, after checking
// the group's own options; for SmoothingOptimizer::add_param_group.
template <typename Options>
void add_group_keeping_options(torch::optim::Optimizer& optimizer,
                               std::vector<torch::optim::OptimizerParamGroup>& stored,
                               const torch::optim::OptimizerParamGroup& group) {
  if (group.has_options()) {
    const auto* options = dynamic_cast<const Options*>(&group.options());
    TORCH_CHECK_TYPE(options != nullptr, "add_param_group: the group's options are not the optimizer's");
    check_options(*options);
  }
  optimizer.torch::optim::Optimizer::add_param_group(group);
  if (group.has_options()) {
    stored.back().set_options(group.options().clone());
  }
}

struct GroupGradients {
  std::vector<torch::Tensor> params;
  std::vector<torch::Tensor> grads;
};

// The parameters of `group` that have a gradient, and those gradients. Raises
// (naming `optimizer`) for sparse, complex or non-floating gradients, and for
// flatten == "group" over gradients of several dtypes or devices.
GroupGradients collect_gradients(const torch::optim::OptimizerParamGroup& group, const std::string& flatten,
                                 const char* optimizer);

// The closure's loss, evaluated with gradients enabled (a step itself runs
// under NoGradGuard); undefined without a closure.
torch::Tensor evaluate_closure(const torch::optim::Optimizer::LossClosure& closure);

// With a process group (LSGD/MLSGD's constructors): a group's gradients are
// this rank's shard of one ring spread over the group's ranks; they are
// replaced by the smoothed shard (views of one tensor), to be stepped with
// sigma = 0. Throws, on every rank alike, when any rank's shard is not finite.
// Every rank calls it for every group (`like`: the group's first parameter,
// whose dtype an empty shard takes), gradients or not.
void smooth_sharded_gradients(c10d::ProcessGroup& process_group, GroupGradients& group, const torch::Tensor& like,
                              double sigma, int64_t order);

// With backend == "direct": throws, as the kernel would, where the direct route of
// a gradient's device cannot take sigma and order for its dtype
// (mlsgd::check_direct_route), as c10::ValueError. Called for every group (and
// sigma) before any group steps, so that a refusal changes nothing.
void check_direct_route(const GroupGradients& group, double sigma, int64_t order, const std::string& backend);

// A process group needs flatten == "group": the group's gradients form the shard.
void check_process_group_options(const std::string& flatten, const char* optimizer);

// Every group's options and gradients checked, before any parameter changes:
// a bad value in any group throws and changes nothing.
template <typename Options>
std::vector<GroupGradients> checked_gradients(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                                              const char* optimizer) {
  std::vector<GroupGradients> work;
  for (const auto& group : groups) {
    const auto& options = static_cast<const Options&>(group.options());
    check_options(options);
    work.push_back(collect_gradients(group, options.flatten(), optimizer));
  }
  return work;
}

// What a step steps: every group's gradients, checked (checked_gradients); with
// backend "direct", the route asked for each of `sigmas_of(g, gradients)`, the
// strengths group g smooths with in this step (check_direct_route); with a
// process group, every group's gradients replaced by their smoothed shards at
// the first of those strengths (smooth_sharded_gradients), to be stepped with
// sigma = 0. All of it before any parameter changes.
template <typename Options, typename SigmasOf>
std::vector<GroupGradients> gradients_to_step(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                                              c10d::ProcessGroup* process_group, const char* optimizer,
                                              SigmasOf&& sigmas_of) {
  auto work = checked_gradients<Options>(groups, optimizer);
  for (size_t g = 0; g < work.size(); ++g) {
    const auto& options = static_cast<const Options&>(groups[g].options());
    const std::vector<double> sigmas = sigmas_of(g, work[g]);
    if (process_group == nullptr) {
      for (double sigma : sigmas) {
        check_direct_route(work[g], sigma, options.order(), options.backend());
      }
    }
  }
  for (size_t g = 0; process_group != nullptr && g < work.size(); ++g) {  // every exchange before any change
    const auto& options = static_cast<const Options&>(groups[g].options());
    if (!groups[g].params().empty()) {
      smooth_sharded_gradients(*process_group, work[g], groups[g].params()[0], sigmas_of(g, work[g]).at(0),
                               options.order());
    }
  }
  return work;
}

// gradients_to_step for optimizers that smooth each group with its own sigma().
template <typename Options>
std::vector<GroupGradients> gradients_at_own_sigma(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                                                   c10d::ProcessGroup* process_group, const char* optimizer) {
  return gradients_to_step<Options>(groups, process_group, optimizer, [&](size_t g, const GroupGradients&) {
    return std::vector<double>{static_cast<const Options&>(groups[g].options()).sigma()};
  });
}

// Calls step(options, gradients) for every group of `work` that has gradients,
// with a copy of the group's options: sigma 0 where `presmoothed` (a process
// group smoothed them in gradients_to_step).
template <typename Options, typename Step>
void step_groups(const std::vector<torch::optim::OptimizerParamGroup>& groups, const std::vector<GroupGradients>& work,
                 bool presmoothed, Step&& step) {
  for (size_t g = 0; g < work.size(); ++g) {
    if (!work[g].params.empty()) {
      Options options = static_cast<const Options&>(groups[g].options());
      if (presmoothed) {
        options.sigma(0.0);
      }
      step(options, work[g]);
    }
  }
}

// One fused step of `params` with `options`; the momentum buffers live in
// `state` as ParamState::momentum_buffer. New buffers are stored only after
// the kernel succeeded. Returns nothing; params and buffers change in place.
template <typename ParamState>
void fused_group_step(StateMap& state, const std::vector<torch::Tensor>& params,
                      const std::vector<torch::Tensor>& grads, const LSGDOptions& options) {
  std::vector<torch::Tensor> buffers;
  std::vector<bool> fresh;
  if (options.momentum() != 0) {
    for (const auto& p : params) {
      auto it = state.find(state_key(p));
      const bool has = it != state.end() && static_cast<ParamState&>(*it->second).momentum_buffer().defined();
      fresh.push_back(!has);
      buffers.push_back(has ? static_cast<ParamState&>(*it->second).momentum_buffer()
                            : torch::empty_like(p, at::MemoryFormat::Contiguous));
    }
  }
  lsgd_step_(params, grads, buffers, fresh, options);
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (fresh[i]) {
      auto& slot = state[state_key(params[i])];
      if (!slot) {
        slot = std::make_unique<ParamState>();
      }
      static_cast<ParamState&>(*slot).momentum_buffer(buffers[i]);
    }
  }
}

}  // namespace optim_detail
}  // namespace torch_mlsgd
