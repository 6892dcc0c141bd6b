"""The methods compared, one training run, and each method's step size (tuned on separate seeds)."""

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch

import torch_mlsgd

from saddle_study.plateaus import first_below, plateau_exits, plateau_lengths
from saddle_study.problems import DTYPE, Problem


@dataclass
class Method:
    name: str
    make: Callable  # (weights, lr, seed) -> optimizer
    batch: Optional[int] = None  # mini-batch size (None: full batch)
    perturbation: float = 0.0  # std of the noise perturbed GD adds per step


def methods(args) -> List[Method]:
    out = [Method("GD", lambda w, lr, seed: torch.optim.SGD(w, lr=lr))]
    for sigma in args.sigmas:
        out.append(Method(f"LSGD sigma={sigma:g}", lambda w, lr, seed, s=sigma: torch_mlsgd.LSGD(w, lr=lr, sigma=s)))
    for schedule in args.schedules:
        # MLSGD's random draws are keyed by the run's seed, like its initialisation.
        out.append(
            Method(
                f"MLSGD {schedule}",
                lambda w, lr, seed, sc=schedule: torch_mlsgd.MLSGD(
                    w, lr=lr, sigma=1.0, schedule=sc, period=args.period, seed=seed
                ),
            )
        )
    out.append(Method(f"SGD batch {args.batch}", lambda w, lr, seed: torch.optim.SGD(w, lr=lr), batch=args.batch))
    out.append(
        Method(
            f"perturbed GD ({args.perturbation:g})",
            lambda w, lr, seed: torch.optim.SGD(w, lr=lr),
            perturbation=args.perturbation,
        )
    )
    return out


# --------------------------------------------------------------------- runs --


def checkpoints(steps: int, count: int = 60) -> List[int]:
    """Log-spaced steps at which the distances to the saddles are recorded."""
    points = {0, steps}
    for i in range(count):
        points.add(int(round(10 ** (i / (count - 1) * math.log10(max(steps, 1))))))
    return sorted(p for p in points if p <= steps)


def run(
    problem: Problem,
    method: Method,
    lr: float,
    seed: int,
    stop_at: Optional[float] = None,
    record_distances: bool = False,
    max_steps: Optional[int] = None,
) -> Dict:
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
