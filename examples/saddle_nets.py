"""Saddle escape in neural networks: GD, LSGD and MLSGD where training stalls at saddles.

    python3 examples/saddle_nets.py [--quick | --full] [--out DIR] [--problems dln,tanh]

Two saddle-dominated problems, full batch and deterministic (float64):

1. **Deep linear network** (Saxe, McClelland and Ganguli, 2014): depth 3, all widths 32,
   whitened inputs (the 32 x 32 identity: n = 32 samples), target map
   W* = U diag(s) V^T with singular values s = (8, 4, 2, 1) and random orthonormal U, V.
   Loss 1/(2n) ||W3 W2 W1 - W*||_F^2. From a small initialisation (every weight
   N(0, (0.01 / sqrt(32))^2): the origin is a saddle) full-batch GD learns the modes
   one at a time, resting on a plateau (a saddle) before each: with k modes learnt the
   loss sits at L_k = 1/(2n) sum_{j>k} s_j^2, exactly.
2. **tanh network**: the same task, widths and small initialisation with tanh between
   the layers. Near the origin tanh(z) = z + O(z^3), so the saddles of the small-weight
   region are the linear network's to first order and the same levels L_k cut its
   plateaus (exact for the linear network, approximate for this one, whose exits are
   cut at the same midpoints). Its nonlinearity changes how long it rests on each saddle.

Plateau exit (both problems): plateau k ends at the first step at which the loss falls
below the midpoint (L_k + L_{k+1}) / 2; the steps spent on plateau k are its exit step
minus the previous plateau's exit step (the first counts from step 0). The target loss
is a fixed fraction of the last level (--target-fraction of L_{last}, below every plateau).

Methods: GD (torch.optim.SGD without momentum), LSGD at several sigma, MLSGD with its
schedules, and two references: mini-batch SGD (batch 8, the usual noisy escape) and
perturbed GD (GD plus isotropic Gaussian noise of standard deviation --perturbation on
every weight at every step). Every method gets its own step size: the one of the grid
that reaches the target loss in the fewest steps (median over separate tuning seeds,
never the evaluation seeds; if no step size reaches it, the lowest final loss). Each
picked setting then runs from --seeds initialisations.

Reported per method: steps on each plateau, steps to the target loss, final loss (median
and quartiles over seeds), and the distance to the saddles over time: in function space,
||f_t - f_k|| over the training inputs, where f_k is the network function at saddle k (the
rank-k truncation of W*, for both networks).

Writes DIR/saddle_nets.json, DIR/saddle_nets_<problem>.csv (every run),
DIR/saddle_nets_summary.csv and DIR/saddle_nets_<problem>.png.
"""

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch

if os.environ.get("TORCH_MLSGD_USE_INSTALLED") != "1":  # else the installed torch_mlsgd
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch_mlsgd  # noqa: E402

DTYPE = torch.float64
INIT_SCALE = 0.01


# ----------------------------------------------------------------- plateaus --

def plateau_exits(losses: Sequence[float], levels: Sequence[float]) -> List[Optional[int]]:
    """exit[k]: the first step at which the loss is below (levels[k] + levels[k+1]) / 2,
    searched from the previous exit on (None when it never gets there); one entry per
    plateau, i.e. len(levels) - 1 entries. `levels` must decrease."""
    exits: List[Optional[int]] = []
    start = 0
    for k in range(len(levels) - 1):
        threshold = 0.5 * (levels[k] + levels[k + 1])
        step = next((i for i in range(start, len(losses)) if losses[i] < threshold), None)
        exits.append(step)
        if step is None:
            exits.extend([None] * (len(levels) - 2 - k))
            break
        start = step
    return exits


def plateau_lengths(exits: Sequence[Optional[int]]) -> List[Optional[int]]:
    """Steps spent on each plateau: exit[k] - exit[k-1], the first from step 0."""
    lengths: List[Optional[int]] = []
    previous = 0
    for e in exits:
        if e is None:
            lengths.append(None)
            previous = None
            continue
        lengths.append(None if previous is None else e - previous)
        previous = e
    return lengths


def first_below(losses: Sequence[float], target: float) -> Optional[int]:
    return next((i for i, v in enumerate(losses) if v <= target), None)


# ----------------------------------------------------------------- problems --

@dataclass
class Problem:
    name: str
    title: str
    inputs: torch.Tensor            # (n, d_in)
    targets: torch.Tensor           # (n, d_out)
    widths: List[int]               # d_in, hidden..., d_out
    activation: Optional[Callable]  # None: linear network
    levels: List[float]             # plateau levels, decreasing, last = final level
    saddle_outputs: List[torch.Tensor]  # the network function at each saddle, on `inputs`
    steps: int                      # the step budget of a run

    def init(self, seed: int) -> List[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        weights = []
        for d_in, d_out in zip(self.widths[:-1], self.widths[1:]):
            w = torch.randn(d_out, d_in, generator=g, dtype=DTYPE) * (INIT_SCALE / math.sqrt(d_in))
            weights.append(w.requires_grad_())
        return weights

    def forward(self, weights, x):
        h = x
        for i, w in enumerate(weights):
            h = h @ w.t()
            if self.activation is not None and i < len(weights) - 1:
                h = self.activation(h)
        return h

    def loss(self, weights, rows=None):
        x, y = (self.inputs, self.targets) if rows is None else (self.inputs[rows], self.targets[rows])
        return 0.5 * ((self.forward(weights, x) - y) ** 2).sum() / x.shape[0]


def deep_linear_problem(steps: int, depth: int = 3, width: int = 32,
                        singular_values: Sequence[float] = (8.0, 4.0, 2.0, 1.0)) -> Problem:
    g = torch.Generator().manual_seed(1234)
    u, _ = torch.linalg.qr(torch.randn(width, width, generator=g, dtype=DTYPE))
    v, _ = torch.linalg.qr(torch.randn(width, width, generator=g, dtype=DTYPE))
    s = torch.tensor(singular_values, dtype=DTYPE)
    r = len(singular_values)
    target_map = u[:, :r] @ torch.diag(s) @ v[:, :r].t()
    x = torch.eye(width, dtype=DTYPE)  # whitened inputs: sample i is e_i
    n = x.shape[0]
    levels = [0.5 * float((s[k:] ** 2).sum()) / n for k in range(r)] + [0.0]
    saddles = [(x @ (u[:, :k] @ torch.diag(s[:k]) @ v[:, :k].t()).t()) for k in range(r)]
    return Problem("dln", f"deep linear network (depth {depth}, width {width}, s = {tuple(singular_values)})",
                   x, x @ target_map.t(), [width] * (depth + 1), None, levels, saddles, steps)


def tanh_problem(steps: int, depth: int = 3, width: int = 32,
                 singular_values: Sequence[float] = (8.0, 4.0, 2.0, 1.0)) -> Problem:
    """The deep linear network's task and initialisation with tanh between the layers.
    Near the origin tanh(z) = z + O(z^3): the saddles of the small-weight region are the
    linear network's to first order, and so are the levels used to cut the plateaus
    (exact for the linear network, approximate here)."""
    linear = deep_linear_problem(steps, depth, width, singular_values)
    return Problem("tanh", f"tanh network (depth {depth}, width {width}) on the same task",
                   linear.inputs, linear.targets, linear.widths, torch.tanh, linear.levels,
                   linear.saddle_outputs, steps)


# ------------------------------------------------------------------ methods --

@dataclass
class Method:
    name: str
    make: Callable          # (weights, lr, seed) -> optimizer
    batch: Optional[int] = None         # mini-batch size (None: full batch)
    perturbation: float = 0.0           # std of the noise perturbed GD adds per step


def methods(args) -> List[Method]:
    out = [Method("GD", lambda w, lr, seed: torch.optim.SGD(w, lr=lr))]
    for sigma in args.sigmas:
        out.append(Method(f"LSGD sigma={sigma:g}", lambda w, lr, seed, s=sigma: torch_mlsgd.LSGD(w, lr=lr, sigma=s)))
    for schedule in args.schedules:
        # MLSGD's random draws are keyed by the run's seed, like its initialisation.
        out.append(Method(f"MLSGD {schedule}", lambda w, lr, seed, sc=schedule: torch_mlsgd.MLSGD(
            w, lr=lr, sigma=1.0, schedule=sc, period=args.period, seed=seed)))
    out.append(Method(f"SGD batch {args.batch}", lambda w, lr, seed: torch.optim.SGD(w, lr=lr), batch=args.batch))
    out.append(Method(f"perturbed GD ({args.perturbation:g})", lambda w, lr, seed: torch.optim.SGD(w, lr=lr),
                      perturbation=args.perturbation))
    return out


# --------------------------------------------------------------------- runs --

def checkpoints(steps: int, count: int = 60) -> List[int]:
    """Log-spaced steps at which the distances to the saddles are recorded."""
    points = {0, steps}
    for i in range(count):
        points.add(int(round(10 ** (i / (count - 1) * math.log10(max(steps, 1))))))
    return sorted(p for p in points if p <= steps)


def run(problem: Problem, method: Method, lr: float, seed: int, stop_at: Optional[float] = None,
        record_distances: bool = False, max_steps: Optional[int] = None) -> Dict:
    """One training run of problem.steps steps (or max_steps, if fewer), stopping early
    once the loss is at most `stop_at`. Returns the loss per step (before each step), the
    distances to the saddles at log-spaced steps, and whether it diverged."""
    weights = problem.init(seed)
    optimizer = method.make(weights, lr, seed)
    g = torch.Generator().manual_seed(10_000 + seed)
    losses: List[float] = []
    distances: Dict[int, List[float]] = {}
    marks = set(checkpoints(problem.steps)) if record_distances else set()
    n = problem.inputs.shape[0]
    diverged = False
    steps = problem.steps if max_steps is None else min(problem.steps, max_steps)
    for step in range(steps + 1):
        # Full batch: the loss that is differentiated is the one recorded (one forward
        # pass per step); mini-batch: the full loss is evaluated on its own.
        loss = problem.loss(weights) if method.batch is None else None
        with torch.no_grad():
            full = float(loss) if loss is not None else float(problem.loss(weights))
            if step in marks:
                output = problem.forward(weights, problem.inputs)
                distances[step] = [float((output - f).norm()) / math.sqrt(n) for f in problem.saddle_outputs]
        losses.append(full)
        if not math.isfinite(full) or full > 1e6:
            diverged = True
            break
        if step == steps or (stop_at is not None and full <= stop_at):
            break
        optimizer.zero_grad()
        if loss is None:
            loss = problem.loss(weights, torch.randperm(n, generator=g)[: method.batch])
        loss.backward()
        optimizer.step()
        if method.perturbation:
            with torch.no_grad():
                for w in weights:
                    w.add_(torch.randn(w.shape, generator=g, dtype=DTYPE), alpha=method.perturbation)
    return {"losses": losses, "distances": distances, "diverged": diverged}


def summarize_run(problem: Problem, result: Dict, target: float) -> Dict:
    losses = result["losses"]
    exits = plateau_exits(losses, problem.levels)
    return {
        "plateau_steps": plateau_lengths(exits),
        "exits": exits,
        "steps_to_target": None if result["diverged"] else first_below(losses, target),
        "final_loss": losses[-1] if not result["diverged"] else float("inf"),
        "diverged": result["diverged"],
    }


def tune(problem: Problem, method: Method, grid: Sequence[float], seeds: Sequence[int], target: float):
    """The step size of `grid` reaching `target` in the fewest steps (median over
    `seeds`); among step sizes none of whose runs reaches it, the lowest median final
    loss. Ties go to the smaller step. Returns (lr, {lr: median steps or None}).

    A run is cut off once it has taken as many steps as the best median so far: it
    can no longer make its step size win, so the pick is the same as without the cut."""
    scores, finals = {}, {}
    best = math.inf
    for lr in grid:
        steps, losses = [], []
        for seed in seeds:
            cap = None if math.isinf(best) else int(best)
            r = run(problem, method, lr, seed, stop_at=target, max_steps=cap)
            s = summarize_run(problem, r, target)["steps_to_target"]
            steps.append(math.inf if s is None else s)
            losses.append(r["losses"][-1] if not r["diverged"] else math.inf)
        scores[lr], finals[lr] = statistics.median(steps), statistics.median(losses)
        best = min(best, scores[lr])
    pick = min(grid, key=lambda lr: (scores[lr], finals[lr] if math.isinf(scores[lr]) else 0.0, lr))
    return pick, {lr: (None if math.isinf(v) else v) for lr, v in scores.items()}


def quartiles(values: Sequence[float]):
    values = sorted(values)
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


# -------------------------------------------------------------------- plots --

def plot(problem: Problem, picks: Dict, runs: Dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(picks)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    ax = axes[0]
    for i, name in enumerate(names):
        curve = runs[name][0]["losses"]
        ax.plot(range(1, len(curve) + 1), curve, color=colors[i % len(colors)], lw=1.2,
                label=f"{name} (lr {picks[name]['lr']:g})")
        for e in runs[name][0]["summary"]["exits"]:
            if e is not None:
                ax.plot(e + 1, curve[e], "o", color=colors[i % len(colors)], ms=3)
    for level in problem.levels[:-1]:
        ax.axhline(level, color="gray", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    # A diverging run would stretch the axis over tens of decades: cut it above the first level.
    finite = [v for name in names for v in runs[name][0]["losses"] if 0 < v < math.inf]
    ax.set_ylim(max(min(finite), 1e-12) / 2, 3 * problem.levels[0])
    ax.set_xlabel("step (log)")
    ax.set_ylabel("training loss")
    ax.set_title("loss of the first seed; dotted: plateau levels, dots: exits", fontsize=10)
    ax.legend(fontsize=7)

    ax = axes[1]
    plateaus = len(problem.levels) - 1
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        for k in range(plateaus):
            values = [r["summary"]["plateau_steps"][k] for r in runs[name] if r["summary"]["plateau_steps"][k] is not None]
            if not values:
                continue
            q1, med, q3 = quartiles(values)
            x = k + (i - len(names) / 2 + 0.5) * width
            ax.bar(x, med, width=width, color=colors[i % len(colors)], label=name if k == 0 else None)
            ax.errorbar(x, med, yerr=[[med - q1], [q3 - med]], color="black", lw=0.8, capsize=2)
    ax.set_xticks(range(plateaus))
    ax.set_xticklabels([f"plateau {k}" for k in range(plateaus)])
    ax.set_yscale("log")
    ax.set_ylabel("steps on the plateau (median, quartiles)")
    ax.set_title("plateau lengths at each method's tuned step size", fontsize=10)
    ax.legend(fontsize=7)

    ax = axes[2]
    for i, name in enumerate(names):
        distances = runs[name][0]["distances"]
        steps = sorted(distances)
        nearest = [min(distances[s]) for s in steps]
        ax.plot([s + 1 for s in steps], nearest, color=colors[i % len(colors)], lw=1.2, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step (log)")
    ax.set_ylabel("RMS distance of the network function to the nearest saddle")
    ax.set_title("distance to the saddles (first seed)", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle(problem.title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------- main --

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small configuration (tests)")
    size.add_argument("--full", action="store_true", help="the docs/ run: 5 seeds, 9 step sizes, 2 tuning seeds, 8000 steps")
    parser.add_argument("--problems", default="dln,tanh", help="comma-separated: dln, tanh")
    parser.add_argument("--out", default=os.path.join("runs", "saddle_nets"))
    parser.add_argument("--sigmas", default=None, help="LSGD's sigma values (default 1,4; --full 0.5,1,4)")
    parser.add_argument("--schedules", default="random,cyclic", help="MLSGD's schedules (sigma = 1)")
    parser.add_argument("--period", type=int, default=20, help="MLSGD's period (cyclic)")
    parser.add_argument("--batch", type=int, default=8, help="mini-batch SGD's batch size")
    parser.add_argument("--perturbation", type=float, default=1e-4, help="perturbed GD's noise per step")
    parser.add_argument("--target-fraction", type=float, default=0.05,
                        help="target loss as a fraction of the last plateau level")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.sigmas is None:
        args.sigmas = "0.5,1,4" if args.full else "1,4"
    args.sigmas = [float(s) for s in args.sigmas.split(",") if s]
    args.schedules = [s for s in args.schedules.split(",") if s]
    # (evaluation seeds, tuning seeds, step sizes in the grid, step budget)
    if args.quick:
        args.seeds, args.tune_seeds, args.grid_points, args.steps = [0, 1], [100], 4, 1500
    elif args.full:
        args.seeds, args.tune_seeds, args.grid_points, args.steps = list(range(5)), [100, 101], 9, 8000
    else:
        args.seeds, args.tune_seeds, args.grid_points, args.steps = [0, 1, 2], [100], 5, 6000
    return args


# Log-spaced step sizes from lo to hi: wide enough that every method's pick is interior
# (LSGD takes steps several times larger than GD's largest stable one).
GRIDS = {"dln": (0.05, 12.8), "tanh": (0.05, 12.8)}


def lr_grid(problem: str, points: int) -> List[float]:
    lo, hi = GRIDS[problem]
    return [float(f"{lo * (hi / lo) ** (i / (points - 1)):.3g}") for i in range(points)]


def study(problem: Problem, args) -> Dict:
    target = args.target_fraction * problem.levels[-2]
    grid = lr_grid(problem.name, args.grid_points)
    picks, runs = {}, {}
    for method in methods(args):
        started = time.perf_counter()
        lr, scores = tune(problem, method, grid, args.tune_seeds, target)
        results = []
        for seed in args.seeds:
            r = run(problem, method, lr, seed, record_distances=True)
            r["summary"] = summarize_run(problem, r, target)
            results.append(r)
        picks[method.name] = {"lr": lr, "tuning": scores, "seconds": time.perf_counter() - started}
        runs[method.name] = results
        steps = [r["summary"]["steps_to_target"] for r in results]
        print(f"  {method.name:24s} lr {lr:<6g} steps to target {steps}", flush=True)
    return {"target": target, "grid": grid, "picks": picks, "runs": runs}


def write_outputs(problem: Problem, result: Dict, args, summary_rows: List[Dict]) -> None:
    os.makedirs(args.out, exist_ok=True)
    plateaus = len(problem.levels) - 1
    with open(os.path.join(args.out, f"saddle_nets_{problem.name}.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "lr", "seed"] + [f"plateau_{k}_steps" for k in range(plateaus)] +
                        ["steps_to_target", "final_loss", "diverged"])
        for name, results in result["runs"].items():
            for seed, r in zip(args.seeds, results):
                s = r["summary"]
                writer.writerow([name, result["picks"][name]["lr"], seed] +
                                ["" if v is None else v for v in s["plateau_steps"]] +
                                ["" if s["steps_to_target"] is None else s["steps_to_target"],
                                 f"{s['final_loss']:.6g}", s["diverged"]])
    for name, results in result["runs"].items():
        cells = []
        for k in range(plateaus):
            values = [r["summary"]["plateau_steps"][k] for r in results]
            cells.append(_median_iqr([v for v in values if v is not None], len(values)))
        reached = [r["summary"]["steps_to_target"] for r in results]
        summary_rows.append({
            "problem": problem.name, "method": name, "lr": result["picks"][name]["lr"], "plateaus": cells,
            "steps to target": _median_iqr([v for v in reached if v is not None], len(reached)),
            "final loss": _median_iqr([r["summary"]["final_loss"] for r in results], len(results), "{:.3g}"),
        })
    plot(problem, result["picks"], result["runs"], os.path.join(args.out, f"saddle_nets_{problem.name}.png"))


def _median_iqr(values, total, fmt="{:.0f}"):
    """Median [quartiles] of the finite values, with (k/total) when some are missing or
    infinite (runs that never got there, or diverged)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return f"never (0/{total})"
    q1, med, q3 = quartiles(values)
    text = f"{fmt.format(med)} [{fmt.format(q1)}, {fmt.format(q3)}]"
    return text if len(values) == total else f"{text} ({len(values)}/{total})"


def main(argv=None) -> Dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    builders = {"dln": lambda: deep_linear_problem(args.steps), "tanh": lambda: tanh_problem(args.steps)}
    summary_rows: List[Dict] = []
    report = {"config": {k: v for k, v in vars(args).items()}, "problems": {}}
    for name in [p for p in args.problems.split(",") if p]:
        problem = builders[name]()
        print(f"\n{problem.title}\n  levels {['%.4g' % v for v in problem.levels]}, "
              f"target loss {args.target_fraction * problem.levels[-2]:.4g}, step sizes {lr_grid(name, args.grid_points)}")
        result = study(problem, args)
        write_outputs(problem, result, args, summary_rows)
        report["problems"][name] = {
            "title": problem.title, "levels": problem.levels, "target": result["target"], "grid": result["grid"],
            "picks": result["picks"],
            "runs": {m: [{"seed": s, **r["summary"], "distances": r["distances"],
                          "losses_log": {i: r["losses"][i] for i in checkpoints(len(r["losses"]) - 1)}}
                         for s, r in zip(args.seeds, rs)] for m, rs in result["runs"].items()},
        }
    most = max(len(r["plateaus"]) for r in summary_rows)
    header = ["problem", "method", "lr"] + [f"plateau {k}" for k in range(most)] + ["steps to target", "final loss"]
    table = [[r["problem"], r["method"], r["lr"]] + r["plateaus"] + [""] * (most - len(r["plateaus"])) +
             [r["steps to target"], r["final loss"]] for r in summary_rows]
    with open(os.path.join(args.out, "saddle_nets_summary.csv"), "w", newline="") as f:
        csv.writer(f).writerows([header] + table)
    with open(os.path.join(args.out, "saddle_nets.json"), "w") as f:
        json.dump(report, f, separators=(",", ":"))
    print("\nsteps on each plateau and to the target loss: median [quartiles] over seeds "
          f"{args.seeds}\n")
    widths = [max(len(str(r[i])) for r in [header] + table) for i in range(len(header))]
    for r in [header] + table:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    print(f"\n{time.perf_counter() - started:.0f} s; outputs in {args.out}")
    return report


if __name__ == "__main__":
    main()
