#pragma once

// What LSGD::step and MLSGD::step share: collecting and checking a group's
// gradients, and one call of the fused kernel with the momentum buffers the
// optimizer keeps in its per-parameter state.

#include <torch_mlsgd/lsgd.h>
#include <torch_mlsgd/lsgd_step.h>

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace optim_detail {

using StateMap =
    ska::flat_hash_map<std::string, std::unique_ptr<torch::optim::OptimizerParamState>>;

inline std::string state_key(const torch::Tensor& p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}

struct GroupGradients {
  std::vector<torch::Tensor> params;
  std::vector<torch::Tensor> grads;
};

// The parameters of `group` that have a gradient, and those gradients. Raises
// (naming `optimizer`) for sparse, complex or non-floating gradients, and for
// flatten == "group" over gradients of several dtypes or devices.
GroupGradients collect_gradients(const torch::optim::OptimizerParamGroup& group,
                                 const std::string& flatten, const char* optimizer);

// The closure's loss, evaluated with gradients enabled (a step itself runs
// under NoGradGuard); undefined without a closure.
torch::Tensor evaluate_closure(const torch::optim::Optimizer::LossClosure& closure);

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
      const bool has = it != state.end() &&
                       static_cast<ParamState&>(*it->second).momentum_buffer().defined();
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
