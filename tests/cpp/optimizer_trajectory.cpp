// Runs torch_mlsgd::LSGD or torch_mlsgd::MLSGD on a fixed problem and prints
// the final parameters, so that tests/python/test_cpp_python_parity.py can
// check that the C++ and Python optimizers take the same steps.
//
//   optimizer_trajectory lsgd  LR SIGMA ORDER MOMENTUM DAMPENING WEIGHT_DECAY NESTEROV MAXIMIZE
//                              FLATTEN BACKEND STEPS
//   optimizer_trajectory mlsgd (the same) SCHEDULE SEED
//
// The problem (shared with the Python test): parameters k = 0, 1, 2 of shapes
// (5, 4), (7,), (1,) hold sin(0.7 i + k) in float64; the gradient of p is
// sin(3 p) + p / 2.

#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

template <typename Options>
Options common_options(char** argv) {
  return Options(std::atof(argv[2]))
      .sigma(std::atof(argv[3]))
      .order(std::atoll(argv[4]))
      .momentum(std::atof(argv[5]))
      .dampening(std::atof(argv[6]))
      .weight_decay(std::atof(argv[7]))
      .nesterov(std::atoi(argv[8]) != 0)
      .maximize(std::atoi(argv[9]) != 0)
      .flatten(argv[10])
      .backend(argv[11]);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string kind = argc > 1 ? argv[1] : "";
  if (!((kind == "lsgd" && argc == 13) || (kind == "mlsgd" && argc == 15))) {
    std::fprintf(stderr,
                 "usage: %s lsgd|mlsgd LR SIGMA ORDER MOMENTUM DAMPENING WEIGHT_DECAY NESTEROV "
                 "MAXIMIZE FLATTEN BACKEND STEPS [SCHEDULE SEED (mlsgd)]\n",
                 argv[0]);
    return 2;
  }
  const int steps = std::atoi(argv[12]);

  const std::vector<std::vector<int64_t>> shapes = {{5, 4}, {7}, {1}};
  std::vector<torch::Tensor> params;
  for (size_t k = 0; k < shapes.size(); ++k) {
    int64_t n = 1;
    for (int64_t s : shapes[k]) {
      n *= s;
    }
    const torch::Tensor i = torch::arange(n, torch::kDouble);
    params.push_back(torch::sin(i * 0.7 + static_cast<double>(k)).reshape(shapes[k]));
    params.back().requires_grad_(true);
  }
  try {
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (kind == "lsgd") {
      optimizer = std::make_unique<torch_mlsgd::LSGD>(params, common_options<torch_mlsgd::LSGDOptions>(argv));
    } else {
      optimizer = std::make_unique<torch_mlsgd::MLSGD>(
          params, common_options<torch_mlsgd::MLSGDOptions>(argv).schedule(argv[13]).seed(std::atoll(argv[14])));
    }
    for (int step = 0; step < steps; ++step) {
      for (auto& p : params) {
        const torch::Tensor value = p.detach();
        p.mutable_grad() = torch::sin(3.0 * value) + 0.5 * value;
      }
      optimizer->step();
    }
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "%s\n", e.what_without_backtrace());
    return 1;
  }
  for (const auto& p : params) {
    const torch::Tensor flat = p.detach().reshape({-1}).contiguous();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      std::printf("%.17g\n", flat[i].item<double>());
    }
  }
  return 0;
}
