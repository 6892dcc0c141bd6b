#pragma once

// (De)serialization shared by LSGDOptions and MLSGDOptions (which have the
// same LSGD fields), and the loading steps every optimizer adds to libtorch's.

#include "api/checks.h"
#include "optim/group_step.h"

#include <torch_mlsgd/lsadamw.h>

#include <c10/util/Exception.h>
#include <c10/util/irange.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch_mlsgd {
namespace optim_detail {

template <typename Options>
bool lsgd_fields_equal(const Options& a, const Options& b) {
  return a.lr() == b.lr() && a.sigma() == b.sigma() && a.order() == b.order() && a.momentum() == b.momentum() &&
         a.dampening() == b.dampening() && a.weight_decay() == b.weight_decay() && a.nesterov() == b.nesterov() &&
         a.maximize() == b.maximize() && a.flatten() == b.flatten() && a.backend() == b.backend();
}

template <typename T>
void write_value(torch::serialize::OutputArchive& archive, const char* key, const T& value) {
  archive.write(key, c10::IValue(value));
}

// Keys missing from an older archive keep their defaults, so checkpoints
// written before a hyper-parameter existed still load.
template <typename T, typename Setter>
void read_if_present(torch::serialize::InputArchive& archive, const char* key, Setter&& set) {
  c10::IValue value;
  if (archive.try_read(key, value)) {
    set(value.to<T>());
  }
}

template <typename Options>
void write_lsgd_fields(torch::serialize::OutputArchive& archive, const Options& o) {
  write_value(archive, "lr", o.lr());
  write_value(archive, "sigma", o.sigma());
  write_value(archive, "order", o.order());
  write_value(archive, "momentum", o.momentum());
  write_value(archive, "dampening", o.dampening());
  write_value(archive, "weight_decay", o.weight_decay());
  write_value(archive, "nesterov", o.nesterov());
  write_value(archive, "maximize", o.maximize());
  write_value(archive, "flatten", o.flatten());
  write_value(archive, "backend", o.backend());
}

template <typename Options>
void read_lsgd_fields(torch::serialize::InputArchive& archive, Options& o) {
  read_if_present<double>(archive, "lr", [&](double v) { o.lr(v); });
  read_if_present<double>(archive, "sigma", [&](double v) { o.sigma(v); });
  read_if_present<int64_t>(archive, "order", [&](int64_t v) { o.order(v); });
  read_if_present<double>(archive, "momentum", [&](double v) { o.momentum(v); });
  read_if_present<double>(archive, "dampening", [&](double v) { o.dampening(v); });
  read_if_present<double>(archive, "weight_decay", [&](double v) { o.weight_decay(v); });
  read_if_present<bool>(archive, "nesterov", [&](bool v) { o.nesterov(v); });
  read_if_present<bool>(archive, "maximize", [&](bool v) { o.maximize(v); });
  read_if_present<std::string>(archive, "flatten", [&](std::string v) { o.flatten(std::move(v)); });
  read_if_present<std::string>(archive, "backend", [&](std::string v) { o.backend(std::move(v)); });
}

using SavedGroups = std::vector<std::pair<std::vector<std::string>, std::unique_ptr<torch::optim::OptimizerOptions>>>;

// libtorch's loader restores per-parameter state only; a resumed run also
// needs each group's hyper-parameters (as Python's load_state_dict does).
// They are read and checked here, before anything changes.
template <typename Options, typename Check>
SavedGroups read_group_options(torch::serialize::InputArchive& archive, size_t expected_groups, const char* optimizer,
                               Check&& check) {
  c10::IValue pytorch_version;
  TORCH_CHECK(archive.try_read("pytorch_version", pytorch_version), optimizer,
              "::load: the archive is not an optimizer checkpoint written by ", optimizer, "::save");
  torch::serialize::InputArchive groups_archive;
  archive.read("param_groups", groups_archive);
  SavedGroups saved;
  torch::optim::detail::serialize<Options>(groups_archive, saved);
  TORCH_CHECK(saved.size() == expected_groups, optimizer, "::load: the checkpoint has ", saved.size(),
              " parameter groups, the optimizer ", expected_groups);
  for (const auto& group : saved) {
    check(static_cast<const Options&>(*group.second));
  }
  return saved;
}

// A loaded state tensor (read onto the CPU) on its parameter's device and dtype.
inline torch::Tensor on_param(const torch::Tensor& t, const torch::Tensor& p) {
  return t.defined() ? t.to(p.device(), p.scalar_type()) : t;
}

// A loaded per-parameter state moved to its parameter: the momentum buffer of
// LSGD and MLSGD, AdamW's moments.
template <typename ParamState>
void move_to_param(ParamState& s, const torch::Tensor& p) {
  s.momentum_buffer(on_param(s.momentum_buffer(), p));
}

inline void move_to_param(LSAdamWParamState& s, const torch::Tensor& p) {
  s.exp_avg(on_param(s.exp_avg(), p));
  s.exp_avg_sq(on_param(s.exp_avg_sq(), p));
  s.max_exp_avg_sq(on_param(s.max_exp_avg_sq(), p));
}

// Installs the saved hyper-parameters and moves every loaded state to its parameter.
template <typename ParamState>
void finish_load(std::vector<torch::optim::OptimizerParamGroup>& groups, SavedGroups& saved, StateMap& state) {
  for (const auto i : c10::irange(saved.size())) {
    groups[i].set_options(std::move(saved[i].second));
  }
  for (const auto& group : groups) {
    for (const auto& p : group.params()) {
      auto it = state.find(state_key(p));
      if (it != state.end()) {
        move_to_param(static_cast<ParamState&>(*it->second), p);
      }
    }
  }
}

}  // namespace optim_detail
}  // namespace torch_mlsgd
