#include "ops/cpu/smooth_kernels.h"

#include "ops/symbol_cache.h"

namespace torch_mlsgd {
namespace ops {
namespace cpu {

void fft_smooth(const Tensor& input, const Tensor& output, double sigma, int64_t order) {
  const int64_t n = input.numel();
  const Tensor spectrum = aten::fft_rfft(input);
  aten::mul_(spectrum, inverse_symbol(n, sigma, order, input.scalar_type(), input.device()));
  Tensor out = output;
  torch::stable::copy_(out, aten::fft_irfft(spectrum, n));
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
