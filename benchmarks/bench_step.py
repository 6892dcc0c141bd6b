"""One optimizer step on real models' parameter shapes: LSGD against torch.optim.SGD.

    python3 benchmarks/bench_step.py [--quick]

Every optimizer steps the same float32 parameters with the same gradients
(momentum 0.9; LSGD with sigma = 1), timed in alternation; the table gives
median milliseconds per step and the ratio to the fastest of SGD's CPU
implementations on this torch: foreach=False (1.13's default), foreach=True,
and fused=True (torch >= 2.4 on the CPU). Small models' steps are timed in
batches of steps, so that every sample lasts a few milliseconds.
"""

import math

from common import command_line, interleaved_medians, median_seconds, print_table

import torch

import torch_mlsgd

import model_shapes


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


SGD_VARIANTS = {"SGD foreach=False": dict(foreach=False), "SGD foreach=True": dict(foreach=True),
                "SGD fused=True": dict(fused=True)}


def sgd_variants(params_for):
    """torch.optim.SGD in every CPU implementation this torch has."""
    optimizers = {}
    for name, kwargs in SGD_VARIANTS.items():
        try:
            optimizer = torch.optim.SGD(params_for(), lr=1e-6, momentum=0.9, **kwargs)
            optimizer.step()  # a torch without a CPU fused kernel raises here
        except (TypeError, RuntimeError):
            continue
        optimizers[name] = optimizer
    return optimizers


def best_sgd(times):
    return min(t for k, t in times.items() if k.startswith("SGD "))


def batched(step, count):
    def run():
        for _ in range(count):
            step()
    return run


def run(models, threads_list, repeats, with_reference):
    """Prints the table; returns {(model, threads): {optimizer: seconds}}."""
    rows, results = [], {}
    lr = 1e-6  # tiny steps keep the parameters bounded over many repetitions
    for name, shapes in models:
        for threads in threads_list:
            torch.set_num_threads(threads)
            optimizers = sgd_variants(lambda: make_params(shapes))
            # Samples of at least ~20 ms: a LeNet step takes ~0.1 ms, where one call is all noise.
            one_step = median_seconds(next(iter(optimizers.values())).step, repeats=5)
            batch = max(1, round(0.02 / one_step))
            optimizers["LSGD (fused)"] = torch_mlsgd.LSGD(make_params(shapes), lr=lr, sigma=1.0, momentum=0.9)
            optimizers["LSGD fused=False"] = torch_mlsgd.LSGD(make_params(shapes), lr=lr, sigma=1.0, momentum=0.9,
                                                              fused=False)
            if with_reference and name == "ResNet-18":
                optimizers["reference LS-SGD (torch.fft)"] = ReferenceLSSGD(make_params(shapes), lr, 1.0, 0.9)
            names = list(optimizers)
            samples = interleaved_medians([batched(optimizers[k].step, batch) for k in names],
                                          repeats=repeats * (3 if batch > 1 else 1))
            times = {k: t / batch for k, t in zip(names, samples)}
            results[(name, threads)] = times
            sgd = best_sgd(times)
            for k in names:
                rows.append([name, threads, k, f"{times[k] * 1e3:.3f}", f"{times[k] / sgd:.2f}"])
    print_table(
        "Optimizer step on model parameter shapes (float32, momentum 0.9, sigma 1; median ms)",
        ["model", "threads", "optimizer", "ms / step", "/ best SGD"],
        rows,
    )
    return results


def main(argv=None):
    args = command_line(__doc__, quick="ResNet-18 only, fewer repeats").parse_args(argv)
    models = [("LeNet-5", model_shapes.lenet5()), ("ResNet-18", model_shapes.resnet18())]
    if not args.quick:
        models.append(("GPT-2 small", model_shapes.gpt2_small()))
    return run(models, [1, 2], repeats=5 if args.quick else 7, with_reference=True)


if __name__ == "__main__":
    main()
