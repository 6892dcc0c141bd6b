"""A problem's figure: the loss of the first seed, the plateau lengths, the distance to the saddles."""

import math
from typing import Dict

from saddle_study.plateaus import quartiles
from saddle_study.problems import Problem


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
        ax.plot(
            range(1, len(curve) + 1),
            curve,
            color=colors[i % len(colors)],
            lw=1.2,
            label=f"{name} (lr {picks[name]['lr']:g})",
        )
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
            values = [
                r["summary"]["plateau_steps"][k] for r in runs[name] if r["summary"]["plateau_steps"][k] is not None
            ]
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
