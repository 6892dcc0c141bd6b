#include "ops/symbol_cache.h"

#include "core/laplacian_symbol.h"

#include <cstring>
#include <iterator>
#include <list>
#include <mutex>
#include <tuple>

namespace torch_mlsgd {
namespace ops {
namespace {

struct SymbolKey {
  int64_t n;
  double sigma;
  int64_t order;
  ScalarType dtype;
  int32_t device_type;
  int32_t device_index;

  bool operator==(const SymbolKey& other) const {
    // Compare sigma bitwise: the cache must return the symbol of exactly this sigma.
    return n == other.n && std::memcmp(&sigma, &other.sigma, sizeof(double)) == 0 && order == other.order &&
           dtype == other.dtype && device_type == other.device_type && device_index == other.device_index;
  }
};

// A small LRU: a training step asks for a handful of sizes over and over.
class SymbolCache {
 public:
  Tensor get(const SymbolKey& key, const torch::stable::Device& device) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->first == key) {
          entries_.splice(entries_.begin(), entries_, it);
          return it->second;
        }
      }
    }
    Tensor symbol = compute(key, device);  // outside the lock: it may be large
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.emplace_front(key, symbol);
    bytes_ += symbol.numel() * static_cast<int64_t>(symbol.element_size());
    while (entries_.size() > 1 && (bytes_ > kMaxBytes || entries_.size() > kMaxEntries)) {
      const Tensor& evicted = entries_.back().second;
      bytes_ -= evicted.numel() * static_cast<int64_t>(evicted.element_size());
      entries_.pop_back();
    }
    return symbol;
  }

 private:
  static constexpr int64_t kMaxBytes = int64_t{256} << 20;
  static constexpr size_t kMaxEntries = 512;

  static Tensor compute(const SymbolKey& key, const torch::stable::Device& device) {
    const int64_t half = key.n / 2 + 1;
    Tensor symbol = torch::stable::empty({half}, ScalarType::Double);
    double* data = symbol.mutable_data_ptr<double>();
    torch::stable::parallel_for(0, half, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        data[k] = 1.0 / core::laplacian_symbol(k, key.n, key.sigma, key.order);
      }
    });
    return torch::stable::to(symbol, key.dtype, std::nullopt, device);
  }

  std::mutex mutex_;
  std::list<std::pair<SymbolKey, Tensor>> entries_;
  int64_t bytes_ = 0;
};

SymbolCache& cache() {
  // Leaked on purpose: tensors must not be freed after the device runtime
  // has shut down at process exit.
  static SymbolCache* instance = new SymbolCache();
  return *instance;
}

}  // namespace

Tensor inverse_symbol(int64_t n, double sigma, int64_t order, ScalarType dtype, const torch::stable::Device& device) {
  const SymbolKey key{n, sigma, order, dtype, static_cast<int32_t>(device.type()), device.index()};
  return cache().get(key, device);
}

}  // namespace ops
}  // namespace torch_mlsgd
