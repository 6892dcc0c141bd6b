"""GD, LSGD and MLSGD at a strict saddle.

    python3 examples/saddle.py [--n 16] [--steps 4000] [--out runs/saddle.png]

f(x) = 1/2 sum_i h_i x_i^2 + 1/4 sum_i x_i^4 with h_j = -1 at the middle coordinate j
and h_i = 1 elsewhere: a strict saddle at 0 (f = 0) and minima at x = ±e_j (f = -1/4).
Each method starts from three kinds of points:

  A. GD's stable manifold, x_j = 0 (far from the saddle): GD can never move x_j, so it
     converges to the saddle;
  B. LSGD's (sigma = 1) stable subspace of the saddle's linearisation, near the saddle
     (|x| = 0.01): LSGD first converges towards the saddle and lingers there; it leaves
     only because the start lies on the tangent of its stable manifold, not on it;
  C. the subspace antisymmetric about j, dimension floor((n-1)/2), near the saddle: in
     exact arithmetic every method with a circulant smoothing (GD, LSGD, MLSGD alike)
     converges to the saddle from there -- the part of the attraction region MLSGD keeps.
     In floating point the smoothing's rounding breaks the antisymmetry, and LSGD and
     MLSGD drift off after many steps; GD keeps x_j = 0 exactly and never leaves.

It prints the number of steps each run needs to leave the saddle (f < -0.2, i.e. near a
minimum) and plots f along the runs.
"""

import argparse
import os

import numpy as np
import torch

import torch_mlsgd
from torch_mlsgd import analysis

LR = 0.1


def objective(h):
    def f(x):
        return 0.5 * (h * x * x).sum() + 0.25 * (x**4).sum()

    return f


def run(f, x0, make_optimizer, steps):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer(x)
    values = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = f(x)
        loss.backward()
        values.append(loss.item())
        optimizer.step()
    escaped = next((k for k, v in enumerate(values) if v < -0.2), None)
    return np.array(values), escaped


def starting_points(n, rng):
    j = n // 2
    h = analysis.saddle_curvatures(n)
    a = np.linspace(0.5, 1.5, n)
    a[j] = 0.0
    lsgd = analysis.stable_subspace(h, LR, analysis.SigmaSequence.constant(1.0))
    b = lsgd @ rng.standard_normal(lsgd.shape[1])
    sines = np.stack([np.sin(2 * np.pi * k * (np.arange(n) - j) / n) for k in range(1, (n - 1) // 2 + 1)], axis=1)
    c = sines @ rng.standard_normal(sines.shape[1])
    return {
        "A: GD's stable manifold (x_j = 0)": a,
        "B: LSGD's stable subspace, |x| = 0.01": 0.01 * b / np.linalg.norm(b),
        "C: antisymmetric about j, |x| = 0.01": 0.01 * c / np.linalg.norm(c),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16, help="dimension (>= 10)")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "saddle.png"))
    args = parser.parse_args(argv)
    if args.n < 10:
        parser.error(f"--n must be >= 10, got {args.n}")

    h = torch.tensor(analysis.saddle_curvatures(args.n), dtype=torch.float64)
    f = objective(h)
    methods = {
        "GD": lambda x: torch_mlsgd.LSGD([x], lr=LR, sigma=0.0),
        "LSGD sigma=1": lambda x: torch_mlsgd.LSGD([x], lr=LR, sigma=1.0),
        "MLSGD (random sigma in [0, 2))": lambda x: torch_mlsgd.MLSGD([x], lr=LR, sigma=1.0, seed=args.seed),
    }
    starts = starting_points(args.n, np.random.default_rng(args.seed))
    curves = {}
    print(f"n = {args.n}, lr = {LR}, {args.steps} steps; steps to leave the saddle (f < -0.2):")
    print(f"{'start':42s}" + "".join(f"{m:>34s}" for m in methods))
    for start, x0 in starts.items():
        line = f"{start:42s}"
        for method, make in methods.items():
            values, escaped = run(f, x0, make, args.steps)
            curves[(start, method)] = values
            line += f"{('never (stays at the saddle)' if escaped is None else str(escaped)):>34s}"
        print(line)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(starts), figsize=(5 * len(starts), 4), sharey=True)
    for ax, start in zip(axes, starts):
        for method in methods:
            values = curves[(start, method)]
            ax.plot(np.arange(1, values.size + 1), values, label=method)
        ax.axhline(0.0, color="0.6", ls=":", lw=1)
        ax.set_title(start, fontsize=9)
        ax.set_xlabel("step")
        ax.set_xscale("log")
        ax.set_ylim(-0.3, 0.3)
    axes[0].set_ylabel("f(x_k)  (saddle: 0, minima: -0.25; zoomed)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
