"""Where a loss curve leaves each plateau, and the median/quartile summaries of the steps spent there."""

import math
import statistics
from typing import List, Optional, Sequence


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


def quartiles(values: Sequence[float]):
    values = sorted(values)
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


def median_iqr(values, total, fmt="{:.0f}"):
    """Median [quartiles] of the finite values, with (k/total) when some are missing or
    infinite (runs that never got there, or diverged)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return f"never (0/{total})"
    q1, med, q3 = quartiles(values)
    text = f"{fmt.format(med)} [{fmt.format(q1)}, {fmt.format(q3)}]"
    return text if len(values) == total else f"{text} ({len(values)}/{total})"
