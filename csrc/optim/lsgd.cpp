#include <torch_mlsgd/lsgd.h>

#include <torch_mlsgd/lsgd_step.h>

#include "ops/smooth_args.h"

#include <ATen/ATen.h>
#include <c10/util/irange.h>
#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include <cmath>
#include <utility>

namespace torch_mlsgd {

LSGDOptions::LSGDOptions(double lr) : lr_(lr) {}

bool operator==(const LSGDOptions& lhs, const LSGDOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.sigma() == rhs.sigma() && lhs.order() == rhs.order() &&
         lhs.momentum() == rhs.momentum() && lhs.dampening() == rhs.dampening() &&
         lhs.weight_decay() == rhs.weight_decay() && lhs.nesterov() == rhs.nesterov() &&
         lhs.maximize() == rhs.maximize() && lhs.flatten() == rhs.flatten() &&
         lhs.backend() == rhs.backend();
}

namespace {

// Keys missing from an older archive keep their defaults, so checkpoints
// written before a hyper-parameter existed still load.
template <typename T, typename Setter>
void read_if_present(torch::serialize::InputArchive& archive, const char* key, Setter&& set) {
  c10::IValue value;
  if (archive.try_read(key, value)) {
    set(value.to<T>());
  }
}

}  // namespace

void LSGDOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(sigma);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(order);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(dampening);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(maximize);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(flatten);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(backend);
}

void LSGDOptions::serialize(torch::serialize::InputArchive& archive) {
  read_if_present<double>(archive, "lr", [&](double v) { lr(v); });
  read_if_present<double>(archive, "sigma", [&](double v) { sigma(v); });
  read_if_present<int64_t>(archive, "order", [&](int64_t v) { order(v); });
  read_if_present<double>(archive, "momentum", [&](double v) { momentum(v); });
  read_if_present<double>(archive, "dampening", [&](double v) { dampening(v); });
  read_if_present<double>(archive, "weight_decay", [&](double v) { weight_decay(v); });
  read_if_present<bool>(archive, "nesterov", [&](bool v) { nesterov(v); });
  read_if_present<bool>(archive, "maximize", [&](bool v) { maximize(v); });
  read_if_present<std::string>(archive, "flatten", [&](std::string v) { flatten(std::move(v)); });
  read_if_present<std::string>(archive, "backend", [&](std::string v) { backend(std::move(v)); });
}

double LSGDOptions::get_lr() const { return lr(); }

void LSGDOptions::set_lr(const double lr) { this->lr(lr); }

void check_options(const LSGDOptions& o) {
  TORCH_CHECK_VALUE(std::isfinite(o.lr()) && o.lr() >= 0, "Invalid learning rate: ", o.lr());
  ops::check_sigma(o.sigma());
  ops::check_order(o.order());
  TORCH_CHECK_VALUE(std::isfinite(o.momentum()) && o.momentum() >= 0,
                    "Invalid momentum value: ", o.momentum());
  TORCH_CHECK_VALUE(std::isfinite(o.dampening()), "Invalid dampening value: ", o.dampening());
  TORCH_CHECK_VALUE(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0,
                    "Invalid weight_decay value: ", o.weight_decay());
  TORCH_CHECK_VALUE(!o.nesterov() || (o.momentum() > 0 && o.dampening() == 0),
                    "Nesterov momentum requires a momentum and zero dampening");
  TORCH_CHECK_VALUE(o.flatten() == "tensor" || o.flatten() == "group", "Invalid flatten value: '",
                    o.flatten(), "' (expected 'tensor' or 'group')");
  ops::parse_backend(o.backend());
}

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
    : Optimizer(std::move(param_groups), std::make_unique<LSGDOptions>(defaults)) {
  check_options(defaults);
  for (const auto& group : param_groups_) {
    check_options(static_cast<const LSGDOptions&>(group.options()));
  }
}

LSGD::LSGD(std::vector<torch::Tensor> params, LSGDOptions defaults)
    : LSGD({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

namespace {

struct GroupWork {
  const LSGDOptions* options;
  std::vector<torch::Tensor> params;
  std::vector<torch::Tensor> grads;
};

void check_gradient(const torch::Tensor& grad) {
  TORCH_CHECK(!grad.is_sparse(), "LSGD does not support sparse gradients");
  TORCH_CHECK(!grad.is_complex(), "LSGD does not support complex gradients (got dtype ",
              grad.scalar_type(), ")");
  TORCH_CHECK(grad.is_floating_point(), "LSGD needs floating-point gradients, got dtype ",
              grad.scalar_type());
}

}  // namespace

torch::Tensor LSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }

  // Check everything first: a bad group or gradient must change nothing.
  std::vector<GroupWork> work;
  for (const auto& group : param_groups_) {
    GroupWork w{&static_cast<const LSGDOptions&>(group.options()), {}, {}};
    check_options(*w.options);
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) {
        continue;
      }
      check_gradient(p.grad());
      w.params.push_back(p);
      w.grads.push_back(p.grad());
    }
    if (w.options->flatten() == "group") {
      for (const auto& g : w.grads) {
        TORCH_CHECK(g.scalar_type() == w.grads[0].scalar_type() &&
                        g.device() == w.grads[0].device(),
                    "flatten='group' smooths a group's gradients as one vector, so they must "
                    "share one dtype and device; got ",
                    w.grads[0].scalar_type(), " on ", w.grads[0].device(), " and ",
                    g.scalar_type(), " on ", g.device());
      }
    }
    work.push_back(std::move(w));
  }

  for (const auto& w : work) {
    if (w.params.empty()) {
      continue;
    }
    const LSGDOptions& o = *w.options;
    std::vector<torch::Tensor> buffers;
    std::vector<bool> fresh;
    if (o.momentum() != 0) {
      for (const auto& p : w.params) {
        auto it = state_.find(c10::guts::to_string(p.unsafeGetTensorImpl()));
        fresh.push_back(it == state_.end());
        buffers.push_back(fresh.back()
                              ? torch::empty_like(p, at::MemoryFormat::Contiguous)
                              : static_cast<LSGDParamState&>(*it->second).momentum_buffer());
      }
    }
    lsgd_step_(w.params, w.grads, buffers, fresh, o);
    for (size_t i = 0; i < buffers.size(); ++i) {
      if (fresh[i]) {
        auto param_state = std::make_unique<LSGDParamState>();
        param_state->momentum_buffer(buffers[i]);
        state_[c10::guts::to_string(w.params[i].unsafeGetTensorImpl())] = std::move(param_state);
      }
    }
  }
  return loss;
}

void LSGD::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }

void LSGD::load(torch::serialize::InputArchive& archive) {
  c10::IValue pytorch_version;
  TORCH_CHECK(archive.try_read("pytorch_version", pytorch_version),
              "LSGD::load: the archive is not an optimizer checkpoint written by LSGD::save");
  // libtorch's loader restores per-parameter state only; a resumed run also
  // needs each group's hyper-parameters (as Python's load_state_dict does).
  // They are read and checked before anything changes.
  torch::serialize::InputArchive groups_archive;
  archive.read("param_groups", groups_archive);
  std::vector<std::pair<std::vector<std::string>, std::unique_ptr<torch::optim::OptimizerOptions>>>
      saved_groups;
  torch::optim::detail::serialize<LSGDOptions>(groups_archive, saved_groups);
  TORCH_CHECK(saved_groups.size() == param_groups_.size(), "LSGD::load: the checkpoint has ",
              saved_groups.size(), " parameter groups, the optimizer ", param_groups_.size());
  for (const auto& saved : saved_groups) {
    check_options(static_cast<const LSGDOptions&>(*saved.second));
  }
  serialize(*this, archive);
  for (const auto i : c10::irange(saved_groups.size())) {
    param_groups_[i].set_options(std::move(saved_groups[i].second));
  }
  // Buffers are read onto the CPU; they follow their parameter, as in Python.
  for (const auto& group : param_groups_) {
    for (const auto& p : group.params()) {
      auto it = state_.find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it != state_.end()) {
        auto& param_state = static_cast<LSGDParamState&>(*it->second);
        param_state.momentum_buffer(param_state.momentum_buffer().to(p.device(), p.scalar_type()));
      }
    }
  }
}

}  // namespace torch_mlsgd
