#pragma once

// torch_mlsgd::SmoothingOptimizer: what every optimizer of this library has
// besides its step — construction with per-group options kept whole, an
// optional process group for sharded smoothing, add_param_group, save and load.

#include <c10/util/intrusive_ptr.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <vector>

/// The members libtorch's OptimizerOptions interface asks of an options type
/// (its serialization, comparison and learning rate), declared alike by every
/// optimizer of the library.
#define TORCH_MLSGD_OPTIONS_MEMBERS(Options)                               \
 public:                                                                   \
  void serialize(torch::serialize::InputArchive& archive) override;        \
  void serialize(torch::serialize::OutputArchive& archive) const override; \
  friend bool operator==(const Options& lhs, const Options& rhs);          \
  ~Options() override = default;                                           \
  double get_lr() const override;                                          \
  void set_lr(const double lr) override;

/// The members libtorch's OptimizerParamState interface asks of a state type.
#define TORCH_MLSGD_PARAM_STATE_MEMBERS(State)                             \
 public:                                                                   \
  void serialize(torch::serialize::InputArchive& archive) override;        \
  void serialize(torch::serialize::OutputArchive& archive) const override; \
  friend bool operator==(const State& lhs, const State& rhs);              \
  ~State() override = default;

namespace torch_mlsgd {

/// The base of LSGD, MLSGD and LSAdamW. `Derived` names itself in error messages through
/// `Derived::kName`; `Options` and `ParamState` are its per-group options and
/// per-parameter state. The members are defined once in the library, for the
/// optimizers it ships (see the `extern template` lines of their headers).
template <typename Derived, typename Options, typename ParamState>
class SmoothingOptimizer : public torch::optim::Optimizer {
 public:
  using ProcessGroupPtr = c10::intrusive_ptr<c10d::ProcessGroup>;

  /// A group's own Options, when it has them, are used whole (libtorch 2.x's
  /// Optimizer would give a third-party optimizer's groups the defaults). Every
  /// group's options are checked (c10::ValueError naming the bad value).
  ///
  /// With a process group: each group's gradients on this rank are its shard of
  /// one ring spread over the group's ranks in rank order, smoothed exactly
  /// (sharded_laplacian_smooth; every group needs flatten == "group"), as the
  /// Python optimizers do with flatten="group", process_group=pg. A rank with
  /// non-finite gradients makes every rank throw before any change.
  explicit SmoothingOptimizer(std::vector<torch::optim::OptimizerParamGroup> param_groups, Options defaults,
                              ProcessGroupPtr process_group = {});
  explicit SmoothingOptimizer(std::vector<torch::Tensor> params, Options defaults, ProcessGroupPtr process_group = {});

  /// Adds a group whose own options, when it has them, are used whole, after
  /// checking them. (libtorch's Optimizer::add_param_group is not virtual:
  /// called through a torch::optim::Optimizer&, libtorch's own runs instead.)
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);

  /// Saves the per-parameter state and every group's options.
  void save(torch::serialize::OutputArchive& archive) const override;
  /// Restores both, after checking every saved group's options: a bad archive
  /// throws and changes nothing.
  void load(torch::serialize::InputArchive& archive) override;

 protected:
  ProcessGroupPtr process_group_;
};

}  // namespace torch_mlsgd
