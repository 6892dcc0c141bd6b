"""Run by test_kernel_paths.py in a fresh process (so that TORCH_MLSGD_DISABLE_SIMD
takes effect): smooths and steps fixed inputs and prints, as JSON, the kernels in
use, the worst errors against float64 references, and the raw results."""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if os.environ.get("TORCH_MLSGD_USE_INSTALLED") != "1":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch_mlsgd  # noqa: E402

from reference import ReferenceLSGD, fft_smooth, relative_error  # noqa: E402

# Sizes around every boundary of the chunking: single chunks, groups of 8
# lanes with and without a remainder of one element, 8-step blocks and not.
SIZES = [5, 1000, 11_999, 12_007, 50_000, 100_003]
SIGMAS = [0.5, 1.0, 300.0, 5000.0]  # poles below and above the float32-state limit


def main():
    rng = np.random.default_rng(0)
    report = {"kernels": torch_mlsgd.cpu_kernels(), "smooth": {}, "step": {}}
    for dtype in ("float32", "float64"):
        worst = 0.0
        for n in SIZES:
            v = rng.standard_normal(n)
            for sigma in SIGMAS:
                for order in (1, 2, 3, 4):
                    out = torch_mlsgd.laplacian_smooth(torch.tensor(v, dtype=getattr(torch, dtype)), sigma,
                                                       order, backend="direct")
                    worst = max(worst, relative_error(out.double().numpy(), fft_smooth(v, sigma, order)))
        # Many chunks and groups, once.
        v = rng.standard_normal(1_000_001)
        out = torch_mlsgd.laplacian_smooth(torch.tensor(v, dtype=getattr(torch, dtype)), 1.0, backend="direct")
        worst = max(worst, relative_error(out.double().numpy(), fft_smooth(v, 1.0, 1)))
        report["smooth"][dtype] = worst

    shapes = [(7,), (12_007,), (301, 400), (3, 3, 64, 64)]
    configs = [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
               dict(momentum=0.8, dampening=0.2, weight_decay=0.01), dict(momentum=0.9, maximize=True),
               dict(momentum=0.9, flatten="group"), dict(momentum=0.9, order=2), dict(order=3, sigma=20.0)]
    for dtype in ("float32", "float64"):
        worst = 0.0
        for config in configs:
            g = torch.Generator().manual_seed(3)
            params = [torch.randn(s, generator=g, dtype=getattr(torch, dtype)).requires_grad_() for s in shapes]
            config = {"sigma": 1.0, **config}
            reference = ReferenceLSGD([p.detach().double().numpy() for p in params], lr=0.1, **config)
            optimizer = torch_mlsgd.LSGD(params, lr=0.1, **config)
            for _ in range(3):
                grads = [torch.sin(3 * p.detach()) + 0.5 * p.detach() for p in params]
                for p, grad in zip(params, grads):
                    p.grad = grad
                optimizer.step()
                reference.step([grad.double().numpy() for grad in grads])
            for p, r in zip(params, reference.params):
                worst = max(worst, relative_error(p.detach().double().numpy(), r))
        report["step"][dtype] = worst
    print(json.dumps(report))


if __name__ == "__main__":
    main()
