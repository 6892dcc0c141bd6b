#include "ops/symbol_cache.h"

#include "core/laplacian_symbol.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>

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
  at::ScalarType dtype;
  at::Device device;

  bool operator==(const SymbolKey& other) const {
    // Compare sigma bitwise: the cache must return the symbol of exactly this sigma.
    return n == other.n && std::memcmp(&sigma, &other.sigma, sizeof(double)) == 0 &&
           order == other.order && dtype == other.dtype && device == other.device;
  }
};

// A small LRU: a training step asks for a handful of sizes over and over.
class SymbolCache {
 public:
  at::Tensor get(const SymbolKey& key) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->first == key) {
          entries_.splice(entries_.begin(), entries_, it);
          return it->second;
        }
      }
    }
    at::Tensor symbol = compute(key);  // outside the lock: it may be large
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.emplace_front(key, symbol);
    bytes_ += symbol.numel() * static_cast<int64_t>(symbol.element_size());
    while (entries_.size() > 1 && (bytes_ > kMaxBytes || entries_.size() > kMaxEntries)) {
      const at::Tensor& evicted = entries_.back().second;
      bytes_ -= evicted.numel() * static_cast<int64_t>(evicted.element_size());
      entries_.pop_back();
    }
    return symbol;
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
    bytes_ = 0;
  }

 private:
  static constexpr int64_t kMaxBytes = int64_t{256} << 20;
  static constexpr size_t kMaxEntries = 512;

  static at::Tensor compute(const SymbolKey& key) {
    const int64_t half = key.n / 2 + 1;
    at::Tensor symbol = at::empty({half}, at::TensorOptions().dtype(at::kDouble));
    double* data = symbol.data_ptr<double>();
    at::parallel_for(0, half, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        data[k] = 1.0 / core::laplacian_symbol(k, key.n, key.sigma, key.order);
      }
    });
    return symbol.to(at::TensorOptions().dtype(key.dtype).device(key.device));
  }

  std::mutex mutex_;
  std::list<std::pair<SymbolKey, at::Tensor>> entries_;
  int64_t bytes_ = 0;
};

SymbolCache& cache() {
  // Leaked on purpose: tensors must not be freed after the device runtime
  // has shut down at process exit.
  static SymbolCache* instance = new SymbolCache();
  return *instance;
}

}  // namespace

at::Tensor inverse_symbol(int64_t n, double sigma, int64_t order, at::ScalarType dtype,
                          at::Device device) {
  return cache().get(SymbolKey{n, sigma, order, dtype, device});
}

void clear_symbol_cache() { cache().clear(); }

}  // namespace ops
}  // namespace torch_mlsgd
