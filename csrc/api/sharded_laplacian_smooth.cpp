// sharded_laplacian_smooth over a c10d process group (see torch_mlsgd/sharded.h
// and torch_mlsgd/distributed.py, whose halo exchange this mirrors for one
// piece per rank).

#include <torch_mlsgd/laplacian_smooth.h>
#include <torch_mlsgd/sharded.h>

#include "api/checks.h"
#include "core/recursive_filter.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <string>
#include <vector>

namespace torch_mlsgd {
namespace {

std::vector<at::Tensor> all_gather(c10d::ProcessGroup& group, const at::Tensor& tensor, const char* what) {
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < group.getSize(); ++r) {
    out[0].push_back(at::empty_like(tensor));
  }
  std::vector<at::Tensor> in{tensor};
  try {
    group.allgather(out, in)->wait();
  } catch (const std::exception& error) {
    TORCH_CHECK(false, "torch_mlsgd: the ", what, " all-gather over ", group.getSize(),
                " ranks failed, so no parameter was changed on this rank (another rank may have "
                "died, or missed the collective until the process group's timeout): ",
                error.what());
  }
  return out[0];
}

at::Tensor smooth_shard(const at::Tensor& shard, const at::Tensor& left, const at::Tensor& right, double sigma,
                        int64_t order) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mlsgd::laplacian_smooth_shard", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, int64_t)>();
  return op.call(shard, left, right, sigma, order);
}

// The `warmup` ring elements after (forward) or before piece `index`, from the
// pieces' heads or tails, walking around the ring as often as needed.
at::Tensor halo(const std::vector<at::Tensor>& heads, const std::vector<at::Tensor>& tails, int64_t index,
                int64_t warmup, bool forward) {
  const int64_t count = static_cast<int64_t>(heads.size());
  std::vector<at::Tensor> parts;
  int64_t need = warmup;
  int64_t j = index;
  while (need > 0) {
    j = forward ? (j + 1) % count : (j - 1 + count) % count;
    const at::Tensor& edge = forward ? heads[j] : tails[j];
    const int64_t take = std::min(need, edge.numel());
    if (take == 0) {
      continue;
    }
    parts.push_back(forward ? edge.narrow(0, 0, take) : edge.narrow(0, edge.numel() - take, take));
    need -= take;
  }
  if (!forward) {
    std::reverse(parts.begin(), parts.end());
  }
  return parts.empty() ? heads[index].narrow(0, 0, 0) : at::cat(parts);
}

}  // namespace

at::Tensor sharded_laplacian_smooth(const at::Tensor& shard, double sigma, int64_t order,
                                    c10d::ProcessGroup& process_group, bool check_finite) {
  api::check_value(core::sigma_error(sigma));
  api::check_value(core::order_error(order));
  api::check_smoothable(shard, "shard");
  const int rank = process_group.getRank();
  const int world = process_group.getSize();
  const at::Tensor flat = shard.reshape({-1});
  const auto lengths_of =
      all_gather(process_group, at::full({1}, flat.numel(), flat.options().dtype(at::kLong)), "shard lengths");
  std::vector<int64_t> lengths;
  int64_t longest = 0;
  for (const auto& n : lengths_of) {
    lengths.push_back(n.item<int64_t>());
    longest = std::max(longest, lengths.back());
  }
  const auto filter = core::make_recursive_filter(sigma, order, api::truncation_tolerance(flat.scalar_type()));
  // A filter the direct route cannot take in pieces (an order above its
  // maximum, a warm-up beyond its limit): the shards are gathered whole.
  const bool whole = filter.warmup < 0 || order > core::kMaxDirectOrder;
  const int64_t edge = filter.is_identity() ? 0 : (whole ? longest : filter.warmup);

  // One all-gather: the finite flag, the head and the tail of every shard.
  int64_t payload = 0;
  for (int64_t n : lengths) {
    payload = std::max(payload, 1 + 2 * std::min(n, edge));
  }
  at::Tensor packed = at::zeros({payload}, flat.options());
  const int64_t k = std::min(flat.numel(), edge);
  packed.narrow(0, 1, k).copy_(flat.narrow(0, 0, k));
  packed.narrow(0, 1 + k, k).copy_(flat.narrow(0, flat.numel() - k, k));
  const bool finite = !check_finite || flat.numel() == 0 || at::isfinite(flat).all().item<bool>();
  packed.narrow(0, 0, 1).fill_(finite ? 1.0 : 0.0);
  const auto gathered = all_gather(process_group, packed, "halo");

  std::string bad;
  std::vector<at::Tensor> heads, tails;
  for (int r = 0; r < world; ++r) {
    if (gathered[r][0].item<double>() != 1.0) {
      bad += (bad.empty() ? "" : ", ") + std::to_string(r);
    }
    const int64_t kr = std::min(lengths[r], edge);
    heads.push_back(gathered[r].narrow(0, 1, kr));
    tails.push_back(gathered[r].narrow(0, 1 + kr, kr));
  }
  TORCH_CHECK(!check_finite || bad.empty(), "torch_mlsgd: the gradients of rank(s) [", bad,
              "] hold NaN or Inf; no rank changed its parameters");
  if (filter.is_identity() || flat.numel() == 0) {
    return shard.clone();
  }
  if (whole) {
    int64_t start = 0;
    for (int r = 0; r < rank; ++r) {
      start += lengths[r];
    }
    return laplacian_smooth(at::cat(heads), sigma, order).narrow(0, start, flat.numel()).view(shard.sizes());
  }
  const at::Tensor left = halo(heads, tails, rank, filter.warmup, /*forward=*/false);
  const at::Tensor right = halo(heads, tails, rank, filter.warmup, /*forward=*/true);
  return smooth_shard(flat, left, right, sigma, order).view(shard.sizes());
}

}  // namespace torch_mlsgd
