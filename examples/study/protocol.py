"""The protocol's rules as pure functions of configurations and validation results.

Nothing here trains or sees a test set: the grids and their equal budgets, a trial's
status, the selection of each optimizer's pick on validation, the grid-edge and
largest-stable-lr diagnostics, and the verdict over the reported (test) runs.
"""

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from common.training import SGD_FAMILY

Config = Dict[str, float]
Space = Dict[str, List[Config]]

# A trial is "ok" (stable and learning) when its final validation loss is at least 2 % below the
# chance level; a loss that merely grazes chance level is a network that has not learnt or has
# collapsed to a constant prediction, which is how too large a step shows up without a nan.
STABLE_FRACTION = 0.98


def log_grid(low: float, high: float, points: int) -> List[float]:
    """``points`` log-spaced values from ``low`` to ``high`` (both included), to 3 significant digits."""
    if points == 1:
        return [low]
    ratio = (high / low) ** (1 / (points - 1))
    return [float(f"{low * ratio**i:.3g}") for i in range(points)]


def make_space(
    lrs: Sequence[float],
    sgd_momenta: Sequence[float],
    sigmas: Sequence[float],
    momentum: float,
    optimizers: Sequence[str] = SGD_FAMILY,
    adam_lrs: Sequence[float] = (),
    weight_decays: Sequence[float] = (),
    adam_weight_decay: float = 1e-2,
) -> Space:
    """Every optimizer's grid: its learning rates times its second axis, the same number of
    trials each.

    SGD's second axis is its momentum; LSGD's and MLSGD's is sigma (at ``momentum``), over
    ``lrs``. AdamW's is its weight decay, LSAdamW's sigma (at ``adam_weight_decay``, AdamW's
    default), over ``adam_lrs`` (Adam's rates live on another scale). Every second axis must
    have the length of ``sigmas`` and ``adam_lrs`` that of ``lrs``, so that no optimizer
    gets more trials than another.
    """
    if not lrs:
        raise ValueError("need at least one learning rate")
    if "sgd" in optimizers and len(sgd_momenta) != len(sigmas):
        raise ValueError(f"equal budgets need as many SGD momenta ({len(sgd_momenta)}) as sigmas ({len(sigmas)})")
    if "adamw" in optimizers and len(weight_decays) != len(sigmas):
        raise ValueError(f"equal budgets need as many AdamW weight decays ({len(weight_decays)}) as sigmas "
                         f"({len(sigmas)})")
    space: Space = {}
    for name in optimizers:
        if name == "sgd":
            space[name] = [dict(lr=float(lr), momentum=float(m)) for m in sgd_momenta for lr in lrs]
        elif name == "adamw":
            space[name] = [dict(lr=float(lr), weight_decay=float(w)) for w in weight_decays for lr in adam_lrs]
        elif name == "lsadamw":
            space[name] = [dict(lr=float(lr), weight_decay=float(adam_weight_decay), sigma=float(s))
                           for s in sigmas for lr in adam_lrs]
        else:
            space[name] = [dict(lr=float(lr), momentum=float(momentum), sigma=float(s)) for s in sigmas for lr in lrs]
    check_equal_budget(space)
    return space


def check_equal_budget(space: Space) -> int:
    """The number of trials per optimizer; ValueError if the optimizers' budgets differ."""
    counts = {name: len(configs) for name, configs in space.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"unequal tuning budgets: {counts}")
    return next(iter(counts.values()))


@dataclass
class Trial:
    """One tuning run: a configuration and what it reached on the *validation* split only."""

    optimizer: str
    config: Config
    val_loss: float
    val_accuracy: Optional[float]
    status: str  # "ok", "diverged" (non-finite loss) or "no-progress" (see trial_status)
    seconds_per_epoch: float
    loss_curve: List[float] = field(default_factory=list)


def trial_status(val_loss: float, diverged: bool, chance_loss: float) -> str:
    """'diverged' (non-finite), 'ok' (below STABLE_FRACTION x chance level) or 'no-progress'."""
    if diverged or not math.isfinite(val_loss):
        return "diverged"
    return "ok" if val_loss < STABLE_FRACTION * chance_loss else "no-progress"


def score(trial: Trial, select_by: str = "loss") -> float:
    """Lower is better: the validation loss, or minus the validation accuracy; +inf if diverged."""
    if trial.status == "diverged":
        return math.inf
    if select_by == "loss":
        return trial.val_loss
    if trial.val_accuracy is None:
        raise ValueError("--select-by accuracy needs a regime that measures accuracy")
    return -trial.val_accuracy


def select(trials: Sequence[Trial], select_by: str = "loss") -> Trial:
    """The best trial by :func:`score` (ties: the first in grid order). Sees validation results only."""
    if not trials:
        raise ValueError("no trials to select from")
    return min(trials, key=lambda t: score(t, select_by))


def edges(pick: Trial, configs: Sequence[Config]) -> Dict[str, str]:
    """Hyper-parameters whose picked value is the lowest or highest of its grid axis.

    Only axes with at least three values count: a two-point axis has no interior. A pick at
    an edge means the optimum may lie outside the grid, and the grid should be widened.
    """
    found = {}
    for key, value in pick.config.items():
        values = sorted({c[key] for c in configs if key in c})
        if len(values) >= 3 and value in (values[0], values[-1]):
            found[key] = "lowest" if value == values[0] else "highest"
    return found


def largest_stable_lr(trials: Sequence[Trial], pick: Trial) -> Optional[float]:
    """The largest lr whose trial ended "ok", among the trials sharing the pick's other values."""
    others = {k: v for k, v in pick.config.items() if k != "lr"}
    stable = [
        t.config["lr"] for t in trials if t.status == "ok" and all(t.config.get(k) == v for k, v in others.items())
    ]
    return max(stable) if stable else None


def verdict(rows: Sequence[Dict], metric: str, higher_is_better: bool) -> Dict:
    """Which optimizer is best by ``metric`` (a key holding (mean, std)), and by how much.

    ``exceeds_spread``: the best mean differs from the runner-up's by more than the sum of
    their standard deviations over seeds, a deliberately plain criterion (with 2-3 seeds no
    test has much power; the numbers are in the table for a reader's own judgement); None
    when either has fewer than two finished seeds (rows carry ``seeds`` and ``diverged_seeds``).
    """
    usable = [r for r in rows if math.isfinite(r[metric][0])]
    if not usable:
        return dict(best=None, runner_up=None, margin=None, spread=None, exceeds_spread=False, metric=metric)
    ranked = sorted(usable, key=lambda r: -r[metric][0] if higher_is_better else r[metric][0])
    best = ranked[0]
    if len(ranked) == 1:
        return dict(
            best=best["optimizer"], runner_up=None, margin=None, spread=None, exceeds_spread=False, metric=metric
        )
    second = ranked[1]
    margin = abs(best[metric][0] - second[metric][0])
    spread = best[metric][1] + second[metric][1]
    # With fewer than two finished seeds there is no spread to measure the margin against.
    measured = min(r.get("seeds", 0) - r.get("diverged_seeds", 0) for r in (best, second)) >= 2
    return dict(
        best=best["optimizer"],
        runner_up=second["optimizer"],
        margin=margin,
        spread=spread,
        exceeds_spread=(margin > spread) if measured else None,
        metric=metric,
    )
