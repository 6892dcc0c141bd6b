"""Timing helpers shared by the benchmarks: medians of repeated runs, side by side."""

import argparse
import os
import statistics
import sys
import time
from typing import Callable, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.environ.get("TORCH_MLSGD_USE_INSTALLED") != "1" and ROOT not in sys.path:  # else the installed one
    sys.path.insert(0, ROOT)


def command_line(description: str, quick: str) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as the description, and --quick, which
    does what `quick` says."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `repeats` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns, repeats: int = 5, warmup: int = 1, sync: Callable[[], object] = lambda: None):
    """Medians of several functions timed in alternation, so that a noisy
    neighbour slows all of them alike and their ratios stay meaningful.

    The order rotates every round: whatever a function leaves behind (evicted
    caches, memory handed back to the OS) then falls on each of the others in
    turn instead of always on the same successor. `sync` runs before and after
    every timed call (torch.cuda.synchronize for GPU work).
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    samples = [[] for _ in fns]
    for round_ in range(repeats):
        for k in range(len(fns)):
            i = (k + round_) % len(fns)
            sync()
            start = time.perf_counter()
            fns[i]()
            sync()
            samples[i].append(time.perf_counter() - start)
    return [statistics.median(s) for s in samples]


def print_table(title: str, header: List[str], rows: List[List[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |")
