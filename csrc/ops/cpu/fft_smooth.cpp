#include "ops/cpu/smooth_kernels.h"

#include "ops/symbol_cache.h"

#include <ATen/Functions.h>

namespace torch_mlsgd {
namespace ops {
namespace cpu {

void fft_smooth(const at::Tensor& input, const at::Tensor& output, double sigma, int64_t order) {
  const int64_t n = input.numel();
  at::Tensor spectrum = at::fft_rfft(input);
  spectrum.mul_(inverse_symbol(n, sigma, order, input.scalar_type(), input.device()));
  output.copy_(at::fft_irfft(spectrum, n));
}

}  // namespace cpu
}  // namespace ops
}  // namespace torch_mlsgd
