// LSGD in a plain LibTorch training loop: fit y = sin(3x) with a small MLP,
// side by side with torch::optim::SGD from the same initial weights.
//
//   ./lsgd_quickstart            prints the loss of both optimizers every 100 steps
//
// Exits with status 1 if LSGD fails to lower the loss (so it doubles as a smoke test).

#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>

#include <cstdio>
#include <memory>

namespace {

torch::nn::Sequential make_model() {
  return torch::nn::Sequential(torch::nn::Linear(1, 64), torch::nn::Tanh(), torch::nn::Linear(64, 64),
                               torch::nn::Tanh(), torch::nn::Linear(64, 1));
}

}  // namespace

int main() {
  torch::manual_seed(0);
  const torch::Tensor x = torch::linspace(-1, 1, 256).unsqueeze(1);
  const torch::Tensor y = torch::sin(3 * x);

  auto sgd_model = make_model();
  auto lsgd_model = make_model();
  // Same initial weights for both.
  {
    torch::NoGradGuard no_grad;
    auto source = sgd_model->parameters();
    auto target = lsgd_model->parameters();
    for (size_t i = 0; i < source.size(); ++i) {
      target[i].copy_(source[i]);
    }
  }

  torch::optim::SGD sgd(sgd_model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  torch_mlsgd::LSGD lsgd(lsgd_model->parameters(), torch_mlsgd::LSGDOptions(0.05).sigma(1.0).momentum(0.9));

  auto train_step = [&](torch::nn::Sequential& model, torch::optim::Optimizer& optimizer) {
    optimizer.zero_grad();
    torch::Tensor loss = torch::mse_loss(model->forward(x), y);
    loss.backward();
    optimizer.step();
    return loss.item<double>();
  };

  double first = 0.0;
  double last = 0.0;
  std::printf("%6s %12s %12s\n", "step", "SGD loss", "LSGD loss");
  for (int step = 0; step <= 1000; ++step) {
    const double sgd_loss = train_step(sgd_model, sgd);
    const double lsgd_loss = train_step(lsgd_model, lsgd);
    if (step == 0) {
      first = lsgd_loss;
    }
    last = lsgd_loss;
    if (step % 100 == 0) {
      std::printf("%6d %12.6f %12.6f\n", step, sgd_loss, lsgd_loss);
    }
  }
  return last < first ? 0 : 1;
}
