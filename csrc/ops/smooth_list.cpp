// mlsgd::laplacian_smooth_list_: every tensor of a list smoothed in place, each
// as its own ring (flatten="tensor") or all of them as one ring, concatenated in
// list order (flatten="group"). torch_mlsgd.smooth_grad_ makes one call of it
// per step. Every tensor is checked before any is written; the smoothing itself
// goes through the dispatcher, so every device with laplacian_smooth has it.

#include "ops/smooth_args.h"

#include <string>
#include <vector>

STABLE_TORCH_LIBRARY_FRAGMENT(mlsgd, m) {
  m.def(
      "laplacian_smooth_list_(Tensor(a!)[] tensors, float sigma, int order=1, str flatten=\"tensor\", "
      "str backend=\"auto\") -> ()");
}

namespace torch_mlsgd {
namespace ops {
namespace {

// Raises, as backend="direct" would, where the direct route of t's device cannot
// take its dtype with these parameters: asked for every tensor before any is written.
void check_direct_route_op(const Tensor& t, double sigma, int64_t order) {
  using torch::stable::detail::from;
  std::array<StableIValue, 3> stack{from(t), from(sigma), from(order)};
  aten::call("mlsgd::check_direct_route", "", stack);
}

void smooth_in_place_op(const Tensor& t, double sigma, int64_t order, const std::string& backend) {
  using torch::stable::detail::from;
  std::array<StableIValue, 4> stack{from(t), from(sigma), from(order), from(backend)};
  aten::call("mlsgd::laplacian_smooth_", "", stack);
}

void laplacian_smooth_list_(std::vector<Tensor> tensors, double sigma, int64_t order, std::string flatten,
                            std::string backend) {
  check_sigma(sigma);
  check_order(order);
  parse_backend(backend);
  check(flatten == "tensor" || flatten == "group", "laplacian_smooth_list_: Invalid flatten value: '", flatten,
        "' (expected 'tensor' or 'group')");
  for (const Tensor& t : tensors) {
    check_smoothable(t, "input");
  }
  if (flatten == "tensor") {
    if (backend == "direct") {
      for (const Tensor& t : tensors) {
        check_direct_route_op(t, sigma, order);
      }
    }
    for (const Tensor& t : tensors) {
      smooth_in_place_op(t, sigma, order, backend);
    }
    return;
  }
  if (tensors.empty()) {
    return;
  }
  for (size_t i = 1; i < tensors.size(); ++i) {
    check(tensors[i].scalar_type() == tensors[0].scalar_type() && tensors[i].device() == tensors[0].device(),
          "flatten='group' smooths the tensors as one vector, so they must share one dtype and device; tensor ", i,
          " (", tensors[i].scalar_type(), ") differs from tensor 0 (", tensors[0].scalar_type(), ") in one of them");
  }
  std::vector<Tensor> pieces;
  for (const Tensor& t : tensors) {
    pieces.push_back(aten::flat(t));
  }
  Tensor smoothed = smooth_op(aten::cat(pieces), sigma, order, backend);
  int64_t offset = 0;
  for (Tensor t : tensors) {
    const int64_t n = t.numel();
    torch::stable::copy_(t, torch::stable::reshape(torch::stable::narrow(smoothed, 0, offset, n), t.sizes()));
    offset += n;
  }
}

}  // namespace
}  // namespace ops
}  // namespace torch_mlsgd

STABLE_TORCH_LIBRARY_IMPL(mlsgd, CompositeExplicitAutograd, m) {
  m.impl("laplacian_smooth_list_", TORCH_BOX(&torch_mlsgd::ops::laplacian_smooth_list_));
}
