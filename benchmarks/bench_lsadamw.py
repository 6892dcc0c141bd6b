"""The LSAdamW step against torch's fastest AdamW (issue 21, item 2), side by side.

    python3 benchmarks/bench_lsadamw.py [--quick]

float32 parameters of ResNet-18 and GPT-2 small (12 layers) shapes with fixed gradients,
lr 1e-6; one and two threads. Each optimizer's steps are timed in batches (~20 ms),
the batches of all optimizers interleaved and their order rotated each round
(common.interleaved_medians); the table gives the median time per step and its ratio to
the faster of AdamW(foreach=True) and AdamW(fused=True). LSAdamW runs its fused step
(one pass on CPU) with sigma = 1 and, as a reference, with sigma = 0 (torch's own AdamW,
the default implementation) and with smoothing followed by torch's foreach AdamW.
"""

from common import command_line, interleaved_medians, median_seconds, print_table  # first: it sets sys.path

import torch
from bench_step import batched, make_params

import torch_mlsgd

import model_shapes

LR = 1e-6
ADAMW_VARIANTS = {"AdamW foreach=True": dict(foreach=True), "AdamW fused=True": dict(fused=True)}


def optimizers_for(shapes):
    optimizers = {name: torch.optim.AdamW(make_params(shapes), lr=LR, **kw) for name, kw in ADAMW_VARIANTS.items()}
    optimizers["LSAdamW (fused)"] = torch_mlsgd.LSAdamW(make_params(shapes), lr=LR, sigma=1.0)
    optimizers["LSAdamW (smoothing + foreach)"] = torch_mlsgd.LSAdamW(make_params(shapes), lr=LR, sigma=1.0,
                                                                      foreach=True)
    return optimizers


def main(argv=None):
    args = command_line(__doc__, "fewer repeats").parse_args(argv)
    repeats = 5 if args.quick else 9
    rows, results = [], {}
    for name, shapes in (("ResNet-18", model_shapes.resnet18()), ("GPT-2 small", model_shapes.gpt2_small())):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            optimizers = optimizers_for(shapes)
            for opt in optimizers.values():
                opt.step()  # state appears
            count = {k: max(1, round(0.02 / median_seconds(o.step, repeats=3))) for k, o in optimizers.items()}
            fns = [batched(o.step, count[k]) for k, o in optimizers.items()]
            medians = interleaved_medians(fns, repeats=repeats)
            times = {k: t / count[k] for k, t in zip(optimizers, medians)}
            best = min(times[k] for k in ADAMW_VARIANTS)
            results[(name, threads)] = times
            for k, t in times.items():
                rows.append([name, str(threads), k, f"{t * 1e3:.2f}", f"{t / best:.2f}x"])
    print_table("Step time against the faster of torch's foreach and fused AdamW (float32)",
                ["model", "threads", "optimizer", "ms/step", "ratio"], rows)
    return results


if __name__ == "__main__":
    main()
