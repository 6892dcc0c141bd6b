"""The study's figures: validation loss against lr (sensitivity.png), training loss of the picks (curves.png)."""

import math
import os
from typing import Dict, Sequence

from common.models import VOCAB
from common.training import NAMES


def plot(results: Sequence[Dict], out: str) -> None:
    """sensitivity.png: validation loss against lr; curves.png: training loss of the picks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colors = dict(sgd="C0", lsgd="C1", mlsgd="C2", adamw="C3", lsadamw="C4")
    columns = len(results)
    fig, axes = plt.subplots(1, columns, figsize=(4.6 * columns, 4), squeeze=False)
    for ax, result in zip(axes[0], results):
        chance = math.log(VOCAB) if result["regime"].startswith("charlm") else math.log(10)
        for name, trials in result["trials"].items():
            second = dict(sgd="momentum", adamw="weight_decay").get(name, "sigma")
            values = sorted({t["config"][second] for t in trials})
            for i, value in enumerate(values):
                mine = sorted((t for t in trials if t["config"][second] == value), key=lambda t: t["config"]["lr"])
                lrs = [t["config"]["lr"] for t in mine]
                # Diverged trials are drawn at 1.1 x chance level, with an x; losses above it are clipped.
                losses = [min(t["val_loss"], 1.1 * chance) for t in mine]
                style = ["-", "--", ":"][i % 3]
                ax.plot(
                    lrs, losses, style, color=colors[name], marker="o", ms=3, label=f"{NAMES[name]} {second} {value:g}"
                )
                bad = [(lr, loss) for lr, loss, t in zip(lrs, losses, mine) if t["status"] == "diverged"]
                if bad:
                    ax.plot(*zip(*bad), "x", color=colors[name], ms=8)
        for row in result["summary"]:
            if row["largest_stable_lr"] is not None:  # dash patterns keep coinciding lines visible
                ax.axvline(
                    row["largest_stable_lr"],
                    color=colors[row["optimizer"]],
                    alpha=0.6,
                    lw=2,
                    ls=dict(sgd="-", lsgd="--", mlsgd=":", adamw="-.", lsadamw=(0, (5, 1)))[row["optimizer"]],
                )
        ax.axhline(chance, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_ylim(top=1.15 * chance)
        _label(ax, "initial learning rate", "final validation loss",
               f"{result['regime']}: validation loss; vertical: largest stable lr; x: diverged", fontsize=8)
    _save(fig, os.path.join(out, "sensitivity.png"))

    fig, axes = plt.subplots(1, columns, figsize=(4.6 * columns, 4), squeeze=False)
    for ax, result in zip(axes[0], results):
        for name, runs in result["finals"].items():
            curves = [[x for e in r["epochs"] for x in e["loss_curve"]] for r in runs if not r["diverged"]]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            curves = np.array([c[:length] for c in curves])
            epochs = len(runs[0]["epochs"])
            x = np.linspace(0, epochs, length, endpoint=False)
            ax.plot(x, curves.mean(0), color=colors[name], label=NAMES[name])
            ax.fill_between(x, curves.min(0), curves.max(0), color=colors[name], alpha=0.2)
        ax.set_yscale("log")
        _label(ax, "epoch", "training loss",
               f"{result['regime']}: the picks over {len(result['seeds'])} seeds (band: min-max)", fontsize=9)
    _save(fig, os.path.join(out, "curves.png"))


def _label(ax, xlabel: str, ylabel: str, title: str, fontsize: int) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=fontsize)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=fontsize - 1)


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
