#include "optim/group_step.h"

#include <torch_mlsgd/sharded.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <set>
#include <tuple>

namespace torch_mlsgd {
namespace optim_detail {

void smooth_sharded_gradients(c10d::ProcessGroup& process_group, GroupGradients& group, const torch::Tensor& like,
                              double sigma, int64_t order) {
  std::vector<torch::Tensor> flat;
  for (const auto& g : group.grads) {
    flat.push_back(g.reshape({-1}));
  }
  const torch::Tensor local = flat.empty() ? torch::empty({0}, like.options().requires_grad(false)) : torch::cat(flat);
  const torch::Tensor smoothed = sharded_laplacian_smooth(local, sigma, order, process_group, /*check_finite=*/true);
  int64_t offset = 0;
  for (auto& g : group.grads) {
    const int64_t n = g.numel();
    g = smoothed.narrow(0, offset, n).view(g.sizes());
    offset += n;
  }
}

void check_direct_route(const GroupGradients& group, double sigma, int64_t order, const std::string& backend) {
  if (backend != "direct") {
    return;
  }
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mlsgd::check_direct_route", "")
                             .typed<void(const at::Tensor&, double, int64_t)>();
  std::set<std::tuple<int, int, int>> checked;  // dtype, device type, device index
  for (const auto& g : group.grads) {
    const auto key = std::make_tuple(static_cast<int>(g.scalar_type()), static_cast<int>(g.device().type()),
                                     static_cast<int>(g.device().index()));
    if (!checked.insert(key).second) {
      continue;
    }
    try {
      op.call(g, sigma, order);
    } catch (const c10::Error&) {
      throw;
    } catch (const std::exception& error) {  // the op library's error, as the LibTorch API's own
      TORCH_CHECK_VALUE(false, error.what());
    }
  }
}

void check_process_group_options(const std::string& flatten, const char* optimizer) {
  TORCH_CHECK_VALUE(flatten == "group", optimizer,
                    ": a process group needs flatten = 'group' (the group's gradients form this "
                    "rank's shard of the ring); got '",
                    flatten, "'");
}

torch::Tensor evaluate_closure(const torch::optim::Optimizer::LossClosure& closure) {
  if (closure == nullptr) {
    return {};
  }
  at::AutoGradMode enable_grad(true);
  return closure();
}

GroupGradients collect_gradients(const torch::optim::OptimizerParamGroup& group, const std::string& flatten,
                                 const char* optimizer) {
  GroupGradients out;
  for (const auto& p : group.params()) {
    const torch::Tensor& grad = p.grad();
    if (!grad.defined()) {
      continue;
    }
    TORCH_CHECK(!grad.is_sparse(), optimizer, " does not support sparse gradients");
    TORCH_CHECK(!grad.is_complex(), optimizer, " does not support complex gradients (got dtype ", grad.scalar_type(),
                ")");
    TORCH_CHECK(grad.is_floating_point(), optimizer, " needs floating-point gradients, got dtype ", grad.scalar_type());
    out.params.push_back(p);
    out.grads.push_back(grad);
  }
  if (flatten == "group") {
    for (const auto& g : out.grads) {
      TORCH_CHECK(g.scalar_type() == out.grads[0].scalar_type() && g.device() == out.grads[0].device(),
                  "flatten='group' smooths a group's gradients as one vector, so they must "
                  "share one dtype and device; got ",
                  out.grads[0].scalar_type(), " on ", out.grads[0].device(), " and ", g.scalar_type(), " on ",
                  g.device());
    }
  }
  return out;
}

}  // namespace optim_detail
}  // namespace torch_mlsgd
