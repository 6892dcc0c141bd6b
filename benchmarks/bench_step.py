"""One optimizer step on real models' parameter shapes: LSGD against torch.optim.SGD.

    python3 benchmarks/bench_step.py [--quick]

Every optimizer steps the same float32 parameters with the same gradients
(momentum 0.9; LSGD with sigma = 1), timed in alternation; the table gives
median milliseconds per step and the ratio to the faster of SGD's two CPU
implementations (foreach=False, the 1.13 default, and foreach=True).
"""

import argparse
import math

import torch

from common import interleaved_medians, print_table
import model_shapes

import torch_mlsgd


class ReferenceLSSGD:
    """The public reference formulation: per-tensor torch.fft smoothing in Python,
    then SGD with momentum. Denominators are precomputed per size."""

    def __init__(self, params, lr, sigma, momentum):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.denominators = {}
        self.buffers = [None] * len(self.params)
        for p in self.params:
            n = p.numel()
            if n not in self.denominators:
                k = torch.arange(n // 2 + 1, dtype=torch.float64)
                self.denominators[n] = (1 + sigma * 4 * torch.sin(math.pi * k / n) ** 2).float()

    @torch.no_grad()
    def step(self):
        for i, p in enumerate(self.params):
            g = p.grad.reshape(-1)
            d = torch.fft.irfft(torch.fft.rfft(g) / self.denominators[g.numel()], g.numel()).view_as(p)
            if self.buffers[i] is None:
                self.buffers[i] = d.clone()
            else:
                self.buffers[i].mul_(self.momentum).add_(d)
            p.add_(self.buffers[i], alpha=-self.lr)


def make_params(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = []
    for s in shapes:
        p = torch.randn(s, generator=g).mul_(0.01).requires_grad_()
        p.grad = torch.randn(s, generator=g)
        params.append(p)
    return params


def run(models, threads_list, repeats, with_reference):
    """Prints the table; returns {(model, threads): {optimizer: seconds}}."""
    rows, results = [], {}
    lr = 1e-6  # tiny steps keep the parameters bounded over many repetitions
    for name, shapes in models:
        for threads in threads_list:
            torch.set_num_threads(threads)
            optimizers = {
                "SGD foreach=False": torch.optim.SGD(make_params(shapes), lr=lr, momentum=0.9, foreach=False),
                "SGD foreach=True": torch.optim.SGD(make_params(shapes), lr=lr, momentum=0.9, foreach=True),
                "LSGD (fused)": torch_mlsgd.LSGD(make_params(shapes), lr=lr, sigma=1.0, momentum=0.9),
                "LSGD fused=False": torch_mlsgd.LSGD(make_params(shapes), lr=lr, sigma=1.0, momentum=0.9,
                                                     fused=False),
            }
            if with_reference and name == "ResNet-18":
                optimizers["reference LS-SGD (torch.fft)"] = ReferenceLSSGD(make_params(shapes), lr, 1.0, 0.9)
            names = list(optimizers)
            times = dict(zip(names, interleaved_medians([optimizers[k].step for k in names], repeats=repeats)))
            results[(name, threads)] = times
            sgd = min(times["SGD foreach=False"], times["SGD foreach=True"])
            for k in names:
                rows.append([name, threads, k, f"{times[k] * 1e3:.1f}", f"{times[k] / sgd:.2f}"])
    print_table(
        "Optimizer step on model parameter shapes (float32, momentum 0.9, sigma 1; median ms)",
        ["model", "threads", "optimizer", "ms / step", "/ best SGD"],
        rows,
    )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="ResNet-18 only, fewer repeats")
    args = parser.parse_args(argv)
    models = [("ResNet-18", model_shapes.resnet18())]
    if not args.quick:
        models.append(("GPT-2 small", model_shapes.gpt2_small()))
    return run(models, [1, 2], repeats=5 if args.quick else 7, with_reference=True)


if __name__ == "__main__":
    main()
