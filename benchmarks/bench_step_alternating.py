"""LSGD and MLSGD steps against torch's fastest SGD, timed two ways side by side (issue 20, item 9).

    python3 benchmarks/bench_step_alternating.py [--quick] [--repeats K] [--breakdown-only | --training-only]

The same optimizer objects (float32, lr 1e-6, momentum 0.9, sigma 1; MLSGD with its
default random schedule and with schedule="constant"; fixed gradients) are timed by

- *batched*: bench_step.py's method. interleaved_medians of batches of steps (each batch
  ~20 ms; order rotated each round); per step = median batch time / batch size.
- *rounds*: alternating rounds, one `optimizer.step()` of each optimizer in turn (order
  rotated each round), every call timed on its own; per step = median of the calls.
- *rounds, cold* (LeNet-5 only): as *rounds*, with 64 MiB written between calls (untimed),
  as a forward and backward pass would evict the optimizer's tensors from the caches.

The pair (batched, rounds) is repeated K times per model and thread count, alternating
which goes first; the table gives the median ratio over the K repeats and its range.
Ratios are against the faster of SGD(foreach=True) and SGD(fused=True).

Then a per-call breakdown of LeNet-5's step, one thread: each layer of `step()` and each
fused op called on its own in loops of 1000 calls, the loops timed in alternation (11
rounds; median and min per call), and steps on 10, 62 and 148 one-element tensors (the
tensor counts of LeNet-5, ResNet-18 and GPT-2 small: the cost apart from the data). Last,
whole LeNet-5 training steps (zero_grad, forward, loss, backward, step; batch 64; one model
per optimizer) in alternating rounds, with `optimizer.step()` timed inside them: what a
step costs between a forward and a backward.
"""

import argparse
import gc
import statistics
import time

from common import interleaved_medians, median_seconds  # first: it sets sys.path

import torch
from bench_step import batched, make_params

import torch_mlsgd
from torch_mlsgd.lsgd import check_direct_route

import model_shapes

LR = 1e-6


def optimizers_for(shapes):
    opts = {
        "SGD foreach=True": torch.optim.SGD(make_params(shapes), lr=LR, momentum=0.9, foreach=True),
        "SGD fused=True": torch.optim.SGD(make_params(shapes), lr=LR, momentum=0.9, fused=True),
        "LSGD": torch_mlsgd.LSGD(make_params(shapes), lr=LR, momentum=0.9, sigma=1.0),
        "MLSGD": torch_mlsgd.MLSGD(make_params(shapes), lr=LR, momentum=0.9, sigma=1.0),
        "MLSGD constant": torch_mlsgd.MLSGD(make_params(shapes), lr=LR, momentum=0.9, sigma=1.0,
                                            schedule="constant"),
    }
    for o in opts.values():
        o.step()  # momentum buffers exist: every timed step is a steady-state step
    return opts


def method_batched(opts, repeats):
    names = list(opts)
    one_step = median_seconds(opts["SGD foreach=True"].step, repeats=5)
    batch = max(1, round(0.02 / one_step))
    samples = interleaved_medians([batched(opts[k].step, batch) for k in names],
                                  repeats=repeats * (3 if batch > 1 else 1))
    return {k: t / batch for k, t in zip(names, samples)}


def method_rounds(opts, rounds, flush=None):
    names = list(opts)
    steps = [opts[k].step for k in names]
    times = [[] for _ in names]
    perf = time.perf_counter
    for r in range(rounds):
        for j in range(len(names)):
            i = (j + r) % len(names)
            if flush is not None:
                flush.add_(1.0)
            start = perf()
            steps[i]()
            times[i].append(perf() - start)
    return {k: statistics.median(t) for k, t in zip(names, times)}


def ratios(times):
    sgd = min(times["SGD foreach=True"], times["SGD fused=True"])
    return {k: t / sgd for k, t in times.items()}


def timing(models, threads_list, repeats):
    flush = torch.zeros(16 << 20)  # 64 MiB
    results = {}  # (model, threads, method) -> one {optimizer: seconds} per repeat
    for name, shapes, rounds, batched_repeats in models:
        for threads in threads_list:
            torch.set_num_threads(threads)
            gc.collect()
            opts = optimizers_for(shapes)
            for rep in range(repeats):
                order = ["batched", "rounds"] if rep % 2 == 0 else ["rounds", "batched"]
                for method in order:
                    if method == "batched":
                        t = method_batched(opts, batched_repeats)
                    else:
                        method_rounds(opts, 3)  # warm-up
                        t = method_rounds(opts, rounds)
                    results.setdefault((name, threads, method), []).append(t)
                if name == "LeNet-5":
                    t = method_rounds(opts, rounds // 4, flush=flush)
                    results.setdefault((name, threads, "rounds, cold"), []).append(t)
                print(f"  {name} threads={threads} repeat {rep + 1}/{repeats} done", flush=True)
            del opts
            gc.collect()
    return results


def print_results(results):
    print("\n## LSGD / MLSGD step over the faster of SGD foreach=True and fused=True "
          "(median over repeats [min-max]); ms per step (median)\n")
    header = ["model", "threads", "method", "SGD foreach", "SGD fused", "LSGD", "MLSGD", "MLSGD const",
              "LSGD / SGD", "MLSGD / SGD", "MLSGD const / SGD"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for (name, threads, method), runs in results.items():
        def ms(k):
            return f"{statistics.median(r[k] for r in runs) * 1e3:.3f}"

        def ratio(k):
            rs = sorted(ratios(r)[k] for r in runs)
            return f"{statistics.median(rs):.2f} [{rs[0]:.2f}-{rs[-1]:.2f}]"

        print(f"| {name} | {threads} | {method} | {ms('SGD foreach=True')} | {ms('SGD fused=True')} | "
              f"{ms('LSGD')} | {ms('MLSGD')} | {ms('MLSGD constant')} | {ratio('LSGD')} | {ratio('MLSGD')} | "
              f"{ratio('MLSGD constant')} |")


def loop(fn, calls):
    def run():
        for _ in range(calls):
            fn()
    return run


def sgd_rows(o):
    from torch.optim.sgd import sgd as sgd_functional

    g = o.param_groups[0]
    params, grads, bufs = [], [], []
    o._init_group(g, params, grads, bufs)
    return [
        ("SGD fused", "opt.step() (profile hook + record_function + step)", o.step),
        ("SGD fused", "step without the profile hook (SGD.step.__wrapped__)", lambda: type(o).step.__wrapped__(o)),
        ("SGD fused", "_init_group (lists of params, grads, buffers)", lambda: o._init_group(g, [], [], [])),
        ("SGD fused", "functional sgd(..., fused=True) (grouping by device/dtype + op)",
         lambda: sgd_functional(params, grads, bufs, weight_decay=0.0, momentum=0.9, lr=LR, dampening=0.0,
                                nesterov=False, maximize=False, fused=True, has_sparse_grad=False)),
        ("SGD fused", "torch._fused_sgd_ op alone",
         lambda: torch._fused_sgd_(params, grads, bufs, weight_decay=0.0, momentum=0.9, lr=LR, dampening=0.0,
                                   nesterov=False, maximize=False, is_first_step=False)),
    ]


def op_call(o, sigma):
    """The fused op alone on `o`'s (single) group, with smoothing strength `sigma`."""
    params, grads, bufs = [], [], []
    o._init_group(o.param_groups[0], params, grads, bufs)
    fresh = [False] * len(params)
    op = torch.ops.mlsgd.lsgd_step_.default
    return lambda: op(params, grads, bufs, fresh, LR, sigma, 1, 0.9, 0.0, 0.0, False, False, "tensor", "auto")


def lsgd_rows(key, o):
    g = o.param_groups[0]
    params, grads, bufs = [], [], []
    o._init_group(g, params, grads, bufs)
    sigmas = o._sigmas(g, params)
    sigma = g["sigma"] if sigmas is None else sigmas[0]
    rows = [
        (key, "opt.step() (profile hook + record_function + step)", o.step),
        (key, "step without the profile hook (LSGD.step.__wrapped__)", lambda: type(o).step.__wrapped__(o)),
        (key, "_step() (without set_grad_enabled)", o._step),
        (key, "_check_group", lambda: o._check_group(g)),
        (key, "_init_group", lambda: o._init_group(g, [], [], [])),
        (key, "_sigmas", lambda: o._sigmas(g, params)),
        (key, "check_direct_route", lambda: check_direct_route(o, g, params, grads, sigmas)),
        (key, "_step_group (incl. MLSGD's counters)", lambda: o._step_group(g, params, grads, bufs, sigmas)),
        (key, "_apply (implementation + state bookkeeping)", lambda: o._apply(g, params, grads, bufs, sigma)),
        (key, "lsgd_step_ op alone, sigma = 1", op_call(o, 1.0)),
    ]
    if key.startswith("MLSGD"):
        counters = o._counters(params)
        rows += [
            (key, "scheduled_sigma (checks + op), one call", lambda: o._sigma_at(g, 7)),
            (key, "_counters", lambda: o._counters(params)),
            (key, "torch._foreach_add_(counters, 1)", lambda: torch._foreach_add_(counters, 1)),
        ]
    return rows


def breakdown():
    """Each layer of the LeNet-5 step called on its own, one thread; microseconds per call."""
    torch.set_num_threads(1)
    shapes = model_shapes.lenet5()
    opts = optimizers_for(shapes)
    rows = []

    rows += sgd_rows(opts["SGD fused=True"])
    rows.append(("SGD foreach", "opt.step()", opts["SGD foreach=True"].step))
    for key in ("LSGD", "MLSGD", "MLSGD constant"):
        rows += lsgd_rows(key, opts[key])
    for s in (0.25, 0.5, 1.0, 1.5, 2.0):
        rows.append(("op", f"lsgd_step_ alone, sigma = {s}", op_call(opts["LSGD"], s)))
    # Fixed cost per call (ten one-element tensors) and per-element cost (the 48,000-element
    # tensor alone) of both fused kernels.
    for label, shapes_ in (("10 one-element tensors", [(1,)] * 10), ("the (120, 400) tensor alone", [(120, 400)])):
        lsgd = optimizers_for(shapes_)["LSGD"]
        sgd_opt = torch.optim.SGD(make_params(shapes_), lr=LR, momentum=0.9, fused=True)
        sgd_opt.step()
        rows.append(("op", f"lsgd_step_ on {label}", op_call(lsgd, 1.0)))
        rows.append(("op", f"torch._fused_sgd_ on {label}", sgd_rows(sgd_opt)[-1][2]))
    # Every row a loop of `calls` calls; the loops timed in alternation (order rotated),
    # so that the machine's drifts fall on all rows alike: median and min over the rounds.
    calls, rounds = 1000, 11
    samples = alternated_us_per_call([fn for _, _, fn in rows], calls, rounds)
    print(f"\n## LeNet-5 step, one thread: each layer called on its own (us per call; loops of {calls} calls "
          f"timed in alternation, {rounds} rounds: median [min])\n")
    print("| optimizer | what | us / call |")
    print("|---|---|---|")
    for (who, what, _), t in zip(rows, samples):
        print(f"| {who} | {what} | {statistics.median(t):.1f} [{min(t):.1f}] |")


def alternated_us_per_call(fns, calls, rounds):
    """Microseconds per call of each function: loops of `calls` calls (one warm-up loop
    each), timed in alternation with the order rotated every round; one sample per round."""
    loops = [loop(fn, calls) for fn in fns]
    for run in loops:
        run()
    samples = [[] for _ in loops]
    for r in range(rounds):
        for j in range(len(loops)):
            i = (j + r) % len(loops)
            start = time.perf_counter()
            loops[i]()
            samples[i].append((time.perf_counter() - start) / calls * 1e6)
    return samples


def fixed_costs(counts=(10, 62, 148), calls=500, rounds=9):
    """What a step costs apart from its data: steps on n one-element tensors (LeNet-5,
    ResNet-18 and GPT-2 small have 10, 62 and 148), one thread; us per call, medians of
    loops timed in alternation."""
    torch.set_num_threads(1)
    print("\n## Steps on n one-element tensors, one thread (us per call, median)\n")
    print("| n | SGD fused step | _fused_sgd_ | LSGD step | lsgd_step_ | MLSGD step |")
    print("|---|---|---|---|---|---|")
    for n in counts:
        opts = optimizers_for([(1,)] * n)
        fns = [opts["SGD fused=True"].step, sgd_rows(opts["SGD fused=True"])[-1][2], opts["LSGD"].step,
               op_call(opts["LSGD"], 1.0), opts["MLSGD"].step]
        samples = alternated_us_per_call(fns, calls, rounds)
        print(f"| {n} | " + " | ".join(f"{statistics.median(t):.1f}" for t in samples) + " |")


def lenet5_module():
    """The LeNet-5 of model_shapes.lenet5() (28 x 28 inputs) as a module."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def training_steps(batch=64, rounds=1500):
    """Whole LeNet-5 training steps (zero_grad, forward, loss, backward, step) on random
    28 x 28 batches, one model per optimizer, in alternating rounds; one thread."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g))
            for _ in range(8)]
    makers = {
        "SGD foreach=True": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True),
        "SGD fused=True": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, fused=True),
        "LSGD": lambda p: torch_mlsgd.LSGD(p, lr=0.01, momentum=0.9, sigma=1.0),
        "MLSGD": lambda p: torch_mlsgd.MLSGD(p, lr=0.01, momentum=0.9, sigma=1.0),
    }
    loss_fn = torch.nn.CrossEntropyLoss()
    names = list(makers)
    runs = []
    for k in names:
        torch.manual_seed(0)
        model = lenet5_module()
        runs.append((model, makers[k](model.parameters())))
    whole = [[] for _ in names]
    steps = [[] for _ in names]
    perf = time.perf_counter
    for r in range(rounds):
        x, y = data[r % len(data)]
        for j in range(len(names)):
            i = (j + r) % len(names)
            model, opt = runs[i]
            start = perf()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            mid = perf()
            opt.step()
            end = perf()
            if r >= 20:
                whole[i].append(end - start)
                steps[i].append(end - mid)
    sgd = min(statistics.median(whole[i]) for i in range(2))
    sgd_step = min(statistics.median(steps[i]) for i in range(2))
    print(f"\n## LeNet-5 training steps, batch {batch}, one thread, alternating rounds ({rounds}; median ms)\n")
    print("| optimizer | whole step ms | of which optimizer.step() ms | whole / SGD | step() / SGD step() |")
    print("|---|---|---|---|---|")
    for i, k in enumerate(names):
        w, s_ = statistics.median(whole[i]), statistics.median(steps[i])
        print(f"| {k} | {w * 1e3:.3f} | {s_ * 1e3:.3f} | {w / sgd:.3f} | {s_ / sgd_step:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="LeNet-5 and ResNet-18 only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--breakdown-only", action="store_true")
    parser.add_argument("--training-only", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, torch_mlsgd {torch_mlsgd.__version__} ({torch_mlsgd.__file__})")
    if args.training_only:
        training_steps()
        return
    if args.breakdown_only:
        breakdown()
        fixed_costs()
        return
    # (name, shapes, rounds of the rounds method, repeats of the batched method)
    models = [("LeNet-5", model_shapes.lenet5(), 2000, 7), ("ResNet-18", model_shapes.resnet18(), 40, 7)]
    if not args.quick:
        models += [("GPT-2 6 layers", model_shapes.gpt2_small(6), 12, 5),
                   ("GPT-2 small", model_shapes.gpt2_small(), 10, 5)]
    print_results(timing(models, [1, 2], args.repeats))
    breakdown()
    fixed_costs()
    training_steps()


if __name__ == "__main__":
    main()
