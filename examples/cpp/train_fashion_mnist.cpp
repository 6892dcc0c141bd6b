// SGD vs LSGD vs MLSGD on Fashion-MNIST in a plain LibTorch loop: the C++
// counterpart of examples/compare.py (same LeNet, same data, same schedule).
//
//   ./train_fashion_mnist [--data-dir DIR] [--epochs 3] [--batch-size 128] [--lr 0.05]
//                         [--momentum 0.9] [--sigma 1] [--subset N] [--max-steps N]
//                         [--seeds 0,1] [--threads T] [--check]
//
// Every optimizer trains the same network from the same initial weights, on the
// same data in the same order, with the same cosine learning-rate decay (set
// through the options' set_lr, as a LibTorch LR scheduler does). Prints one
// table; with --check, exits with status 1 unless every run lowered its loss.

#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int64_t epochs = 3;
  int64_t batch_size = 128;
  double lr = 0.05;
  double momentum = 0.9;
  double sigma = 1.0;
  int64_t subset = 0;
  int64_t max_steps = 0;  // per epoch; 0: all
  std::vector<uint64_t> seeds = {0, 1};
  int threads = 0;
  bool check = false;
};

// ------------------------------------------------------------------ data --

std::vector<uint8_t> read_file(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");  // reads plain files too
  if (file == nullptr) {
    throw std::runtime_error("Fashion-MNIST file not found: " + path +
                             ". Install Debian's dataset-fashion-mnist package "
                             "(sudo apt-get install dataset-fashion-mnist) or pass --data-dir.");
  }
  std::vector<uint8_t> data;
  uint8_t buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) {
    data.insert(data.end(), buffer, buffer + n);
  }
  const bool failed = n < 0;
  gzclose(file);
  if (failed) {
    throw std::runtime_error("cannot read Fashion-MNIST file " + path);
  }
  return data;
}

uint32_t big_endian(const std::vector<uint8_t>& d, size_t at) {
  return (uint32_t{d[at]} << 24) | (uint32_t{d[at + 1]} << 16) | (uint32_t{d[at + 2]} << 8) | uint32_t{d[at + 3]};
}

// An IDX file as a uint8 tensor of its declared shape.
torch::Tensor read_idx(const std::string& path, uint32_t magic, int dims) {
  const std::vector<uint8_t> d = read_file(path);
  if (d.size() < 4u + 4u * dims || big_endian(d, 0) != magic) {
    throw std::runtime_error("corrupt Fashion-MNIST file " + path + ": bad IDX header");
  }
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (int i = 0; i < dims; ++i) {
    shape.push_back(big_endian(d, 4 + 4 * i));
    count *= shape.back();
  }
  const size_t offset = 4 + 4 * dims;
  if (d.size() - offset != static_cast<size_t>(count)) {
    throw std::runtime_error("corrupt Fashion-MNIST file " + path + ": size does not match header");
  }
  return torch::from_blob(const_cast<uint8_t*>(d.data() + offset), shape, torch::kUInt8).clone();
}

struct Split {
  torch::Tensor images;  // float32 N x 1 x 28 x 28, normalised
  torch::Tensor labels;  // int64 N
};

Split load(const std::string& dir, const std::string& prefix) {
  const torch::Tensor images = read_idx(dir + "/" + prefix + "-images-idx3-ubyte.gz", 0x803, 3);
  const torch::Tensor labels = read_idx(dir + "/" + prefix + "-labels-idx1-ubyte.gz", 0x801, 1);
  // Normalised with the training set's mean and standard deviation.
  return {((images.to(torch::kFloat) / 255.0 - 0.2860) / 0.3530).unsqueeze(1), labels.to(torch::kLong)};
}

// ----------------------------------------------------------------- model --

struct LeNetImpl : torch::nn::Module {
  LeNetImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).padding(2)))),
        conv2(register_module("conv2", torch::nn::Conv2d(6, 16, 5))),
        fc1(register_module("fc1", torch::nn::Linear(16 * 5 * 5, 120))),
        fc2(register_module("fc2", torch::nn::Linear(120, 84))),
        fc3(register_module("fc3", torch::nn::Linear(84, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    x = torch::relu(fc1->forward(x.flatten(1)));
    return fc3->forward(torch::relu(fc2->forward(x)));
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(LeNet);

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& name, LeNet& model, const Args& a) {
  if (name == "SGD") {
    return std::make_unique<torch::optim::SGD>(model->parameters(),
                                               torch::optim::SGDOptions(a.lr).momentum(a.momentum));
  }
  if (name == "LSGD") {
    return std::make_unique<torch_mlsgd::LSGD>(model->parameters(),
                                               torch_mlsgd::LSGDOptions(a.lr).sigma(a.sigma).momentum(a.momentum));
  }
  return std::make_unique<torch_mlsgd::MLSGD>(model->parameters(),
                                              torch_mlsgd::MLSGDOptions(a.lr).sigma(a.sigma).momentum(a.momentum));
}

// ------------------------------------------------------------- training --

struct RunResult {
  double first_loss = 0.0;
  double final_train_loss = 0.0;  // mean over the last epoch
  double test_accuracy = 0.0;
  double seconds_per_epoch = 0.0;
  double step_ms = 0.0;
};

double accuracy(LeNet& model, const Split& test) {
  torch::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  for (int64_t start = 0; start < test.images.size(0); start += 2000) {
    const int64_t end = std::min<int64_t>(start + 2000, test.images.size(0));
    const torch::Tensor logits = model->forward(test.images.slice(0, start, end));
    correct += logits.argmax(1).eq(test.labels.slice(0, start, end)).sum().item<int64_t>();
  }
  model->train();
  return 100.0 * static_cast<double>(correct) / static_cast<double>(test.images.size(0));
}

RunResult train(const std::string& name, uint64_t seed, const Split& train_set, const Split& test, const Args& a) {
  using clock = std::chrono::steady_clock;
  torch::manual_seed(seed);
  LeNet model;  // identical initial weights for every optimizer of a seed
  auto optimizer = make_optimizer(name, model, a);
  const int64_t n = train_set.images.size(0);
  int64_t steps = (n + a.batch_size - 1) / a.batch_size;
  if (a.max_steps > 0) {
    steps = std::min(steps, a.max_steps);
  }
  const double total = static_cast<double>(steps * a.epochs);
  auto order = at::detail::createCPUGenerator(seed);  // identical data order too
  RunResult result;
  double step_seconds = 0.0;
  double epoch_seconds = 0.0;
  for (int64_t epoch = 0; epoch < a.epochs; ++epoch) {
    const auto start = clock::now();
    const torch::Tensor permutation = torch::randperm(n, order, torch::kLong);
    double loss_sum = 0.0;
    for (int64_t step = 0; step < steps; ++step) {
      // Cosine decay to 0 over all steps, through the options' set_lr.
      const double t = static_cast<double>(epoch * steps + step) / total;
      for (auto& group : optimizer->param_groups()) {
        group.options().set_lr(0.5 * a.lr * (1.0 + std::cos(M_PI * t)));
      }
      const torch::Tensor batch = permutation.slice(0, step * a.batch_size, std::min(n, (step + 1) * a.batch_size));
      optimizer->zero_grad();
      const torch::Tensor loss = torch::cross_entropy_loss(model->forward(train_set.images.index_select(0, batch)),
                                                           train_set.labels.index_select(0, batch));
      loss.backward();
      const auto tick = clock::now();
      optimizer->step();
      step_seconds += std::chrono::duration<double>(clock::now() - tick).count();
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        throw std::runtime_error(name + " diverged; try a smaller --lr");
      }
      if (epoch == 0 && step == 0) {
        result.first_loss = value;
      }
      loss_sum += value;
    }
    epoch_seconds += std::chrono::duration<double>(clock::now() - start).count();
    result.final_train_loss = loss_sum / static_cast<double>(steps);
  }
  result.test_accuracy = accuracy(model, test);
  result.seconds_per_epoch = epoch_seconds / static_cast<double>(a.epochs);
  result.step_ms = 1e3 * step_seconds / total;
  return result;
}

// ------------------------------------------------------------------ main --

std::pair<double, double> mean_std(const std::vector<double>& v) {
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double sq = 0.0;
  for (double x : v) {
    sq += (x - mean) * (x - mean);
  }
  return {mean, v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0.0};
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        throw std::invalid_argument(flag + " needs a value");
      }
      return argv[++i];
    };
    if (flag == "--data-dir") {
      a.data_dir = value();
    } else if (flag == "--epochs") {
      a.epochs = std::stoll(value());
    } else if (flag == "--batch-size") {
      a.batch_size = std::stoll(value());
    } else if (flag == "--lr") {
      a.lr = std::stod(value());
    } else if (flag == "--momentum") {
      a.momentum = std::stod(value());
    } else if (flag == "--sigma") {
      a.sigma = std::stod(value());
    } else if (flag == "--subset") {
      a.subset = std::stoll(value());
    } else if (flag == "--max-steps") {
      a.max_steps = std::stoll(value());
    } else if (flag == "--threads") {
      a.threads = std::stoi(value());
    } else if (flag == "--seeds") {
      a.seeds.clear();
      std::string list = value();
      for (size_t pos = 0; pos <= list.size();) {
        const size_t comma = std::min(list.find(',', pos), list.size());
        a.seeds.push_back(std::stoull(list.substr(pos, comma - pos)));
        pos = comma + 1;
      }
    } else if (flag == "--check") {
      a.check = true;
    } else {
      throw std::invalid_argument("unknown flag " + flag + " (see the comment at the top of the source)");
    }
  }
  if (a.epochs < 1 || a.batch_size < 1 || a.seeds.empty()) {
    throw std::invalid_argument("need at least one epoch, a positive batch size and one seed");
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (a.threads > 0) {
      torch::set_num_threads(a.threads);
    }
    Split train_set = load(a.data_dir, "train");
    const Split test = load(a.data_dir, "t10k");
    if (a.subset > 0) {
      train_set.images = train_set.images.slice(0, 0, a.subset);
      train_set.labels = train_set.labels.slice(0, 0, a.subset);
    }
    const std::vector<std::string> names = {"SGD", "LSGD", "MLSGD"};
    std::vector<std::vector<RunResult>> results(names.size());
    bool all_lowered = true;
    for (uint64_t seed : a.seeds) {
      for (size_t o = 0; o < names.size(); ++o) {
        results[o].push_back(train(names[o], seed, train_set, test, a));
        const RunResult& r = results[o].back();
        all_lowered = all_lowered && r.final_train_loss < r.first_loss;
        std::printf("%-5s seed %llu: train loss %.4f (first batch %.4f), test accuracy %.2f %%\n", names[o].c_str(),
                    static_cast<unsigned long long>(seed), r.final_train_loss, r.first_loss, r.test_accuracy);
      }
    }
    std::printf(
        "\nFashion-MNIST, LeNet (LibTorch), %lld epoch(s), batch %lld, lr %g (cosine), "
        "momentum %g, sigma %g; mean ± std over %zu seed(s)\n\n",
        static_cast<long long>(a.epochs), static_cast<long long>(a.batch_size), a.lr, a.momentum, a.sigma,
        a.seeds.size());
    std::printf("| optimizer | train loss        | test accuracy %%  | s / epoch | optimizer step ms |\n");
    std::printf("|-----------|-------------------|------------------|-----------|-------------------|\n");
    for (size_t o = 0; o < names.size(); ++o) {
      std::vector<double> loss, acc, seconds, step;
      for (const auto& r : results[o]) {
        loss.push_back(r.final_train_loss);
        acc.push_back(r.test_accuracy);
        seconds.push_back(r.seconds_per_epoch);
        step.push_back(r.step_ms);
      }
      const auto l = mean_std(loss);
      const auto t = mean_std(acc);
      std::printf("| %-9s | %.4f ± %.4f   | %5.2f ± %4.2f    | %9.1f | %17.3f |\n", names[o].c_str(), l.first, l.second,
                  t.first, t.second, mean_std(seconds).first, mean_std(step).first);
    }
    if (a.check && !all_lowered) {
      std::fprintf(stderr, "check failed: a run did not lower its training loss\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 2;
  }
}
