#include "optim/group_step.h"

namespace torch_mlsgd {
namespace optim_detail {

torch::Tensor evaluate_closure(const torch::optim::Optimizer::LossClosure& closure) {
  if (closure == nullptr) {
    return {};
  }
  at::AutoGradMode enable_grad(true);
  return closure();
}

GroupGradients collect_gradients(const torch::optim::OptimizerParamGroup& group,
                                 const std::string& flatten, const char* optimizer) {
  GroupGradients out;
  for (const auto& p : group.params()) {
    const torch::Tensor& grad = p.grad();
    if (!grad.defined()) {
      continue;
    }
    TORCH_CHECK(!grad.is_sparse(), optimizer, " does not support sparse gradients");
    TORCH_CHECK(!grad.is_complex(), optimizer, " does not support complex gradients (got dtype ",
                grad.scalar_type(), ")");
    TORCH_CHECK(grad.is_floating_point(), optimizer,
                " needs floating-point gradients, got dtype ", grad.scalar_type());
    out.params.push_back(p);
    out.grads.push_back(grad);
  }
  if (flatten == "group") {
    for (const auto& g : out.grads) {
      TORCH_CHECK(g.scalar_type() == out.grads[0].scalar_type() &&
                      g.device() == out.grads[0].device(),
                  "flatten='group' smooths a group's gradients as one vector, so they must "
                  "share one dtype and device; got ",
                  out.grads[0].scalar_type(), " on ", out.grads[0].device(), " and ",
                  g.scalar_type(), " on ", g.device());
    }
  }
  return out;
}

}  // namespace optim_detail
}  // namespace torch_mlsgd
