r"""The attraction-region instrument: how many starting points lead GD, LSGD and MLSGD into a saddle.

On a quadratic :math:`f(x) = \tfrac12 x^\top H x` with one negative curvature, every
method of this package without momentum is linear, :math:`x_{k+1} = M_k x_k` with
:math:`M_k = I - \eta\,A_{\sigma_k}^{-1} H`, so the set of starting points from which
the iterates converge to the saddle at 0 (its *attraction region*) can be computed
rather than guessed. This module measures it three ways (docs/design.md §5):

(a) :func:`attraction_dimension` -- the attraction region of one fixed sequence
    :math:`\sigma_0, \sigma_1, \dots` (a subspace): the number of negative Lyapunov
    exponents of the products of the :math:`M_k`. Exact eigenvalues for constant
    sequences, eigenvalues of the monodromy matrix for periodic ones, and for any other
    sequence exponents from QR iteration over ``steps`` steps; an exponent counts as
    negative below ``-threshold``, positive above ``+threshold``, and is reported as
    ambiguous in between.
(b) :func:`common_attraction_dimension` -- the points attracted under *every* sequence
    with values in a family (the intersection of their regions), bounded from below by
    the subspace that every circulant preconditioner leaves invariant and contracts, and
    from above by the intersection over the family's constant sequences, computed in
    high precision (mpmath) because the hyperplanes involved are nearly parallel.
(c) :func:`gd_intersection_dimension` -- the intersection of a sequence's region with
    that of gradient descent.

:func:`convergence_rate` measures the linear rate on strongly convex quadratics, and
:func:`cross_check` runs the package's actual optimizers from points inside and outside
a computed region. ``python3 -m torch_mlsgd.analysis`` writes the table and plot of
``docs/`` (see ``--help``).
"""

import argparse
import math
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple
from typing import Sequence as SequenceT

import numpy as np

__all__ = [
    "SigmaSequence",
    "AttractionResult",
    "saddle_curvatures",
    "convex_curvatures",
    "smoothing_matrix",
    "step_matrix",
    "attraction_dimension",
    "stable_subspace",
    "common_attraction_dimension",
    "gd_intersection_dimension",
    "subspace_intersection_dimension",
    "convergence_rate",
    "cross_check",
]

# ------------------------------------------------------------------ problems --


def saddle_curvatures(n: int, *, negative: float = -1.0, positive: float = 1.0,
                      spread: Optional[Tuple[float, float]] = None, position: Optional[int] = None) -> np.ndarray:
    """The diagonal of H: one ``negative`` curvature at ``position`` (default ``n // 2``),
    the others ``positive``, or spread geometrically over ``spread = (lo, hi)``."""
    if n < 1:
        raise ValueError(f"Invalid n: {n}")
    if negative >= 0:
        raise ValueError(f"Invalid negative curvature: {negative} (must be < 0)")
    j = n // 2 if position is None else position
    if not 0 <= j < n:
        raise ValueError(f"Invalid position: {position} (must be in [0, {n}))")
    if spread is None:
        if positive <= 0:
            raise ValueError(f"Invalid positive curvature: {positive} (must be > 0)")
        h = np.full(n, float(positive))
    else:
        lo, hi = spread
        if not 0 < lo <= hi:
            raise ValueError(f"Invalid spread: {spread} (need 0 < lo <= hi)")
        h = np.geomspace(lo, hi, n)
    h[j] = negative
    return h


def convex_curvatures(n: int, lo: float = 0.1, hi: float = 1.0) -> np.ndarray:
    """A strongly convex diagonal H with curvatures spread geometrically over [lo, hi]."""
    return np.geomspace(lo, hi, n)


# ----------------------------------------------------------------- operators --


def _symbol(n: int, sigma: float, order: int) -> np.ndarray:
    k = np.arange(n)
    return 1.0 + sigma * (4.0 * np.sin(np.pi * k / n) ** 2) ** order


def _circulant(column: np.ndarray) -> np.ndarray:
    n = column.size
    return column[(np.arange(n)[:, None] - np.arange(n)[None, :]) % n]


def smoothing_matrix(n: int, sigma: float, order: int = 1, power: float = 1.0) -> np.ndarray:
    """(I + sigma (-L)^order)^(-power) as a dense float64 matrix, from the closed-form symbol
    (independent of the package's kernels)."""
    return _circulant(np.fft.ifft(_symbol(n, sigma, order) ** -power).real)


def step_matrix(h: np.ndarray, eta: float, sigma: float, order: int = 1) -> np.ndarray:
    """M = I - eta A^{-1} H: one LSGD step (no momentum) on f = x^T diag(h) x / 2."""
    n = h.size
    return np.eye(n) - eta * smoothing_matrix(n, sigma, order) * h[None, :]


# ----------------------------------------------------------------- sequences --


@dataclass
class SigmaSequence:
    """A sequence sigma_0, sigma_1, ... of smoothing strengths.

    ``period`` is 1 for a constant sequence, p for one that repeats every p steps, and
    None for any other; ``label`` names it in tables.
    """

    at: Callable[[int], float]
    period: Optional[int]
    label: str

    @staticmethod
    def constant(sigma: float) -> "SigmaSequence":
        return SigmaSequence(lambda k: float(sigma), 1, "GD" if sigma == 0 else f"LSGD sigma={sigma:g}")

    @staticmethod
    def cycle(values: SequenceT[float]) -> "SigmaSequence":
        vals = [float(v) for v in values]
        return SigmaSequence(lambda k: vals[k % len(vals)], len(vals), f"cycle {vals}")

    @staticmethod
    def schedule(**kwargs) -> "SigmaSequence":
        """The sequence MLSGD draws with these schedule arguments (see scheduled_sigma)."""
        from .mlsgd import scheduled_sigma

        kind = kwargs.get("schedule", "random")
        period = {"constant": 1, "cyclic": int(kwargs.get("period", 100))}.get(kind)
        items = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "schedule")
        return SigmaSequence(lambda k: scheduled_sigma(k, **kwargs), period,
                             f"MLSGD {kind}" + (f" ({items})" if items else ""))


# ------------------------------------------------------------ notion (a) --


@dataclass
class AttractionResult:
    """Dimension of an attraction region and how it was measured."""

    dimension: int
    unstable: int
    ambiguous: int
    exponents: np.ndarray = field(repr=False)
    method: str
    threshold: float


def _constant_exponents(h, eta, sigma, order):
    # A^{-1} H is similar to the symmetric A^{-1/2} H A^{-1/2}: exact, well-conditioned.
    root = smoothing_matrix(h.size, sigma, order, power=0.5)
    eigenvalues = np.linalg.eigvalsh(np.eye(h.size) - eta * root @ np.diag(h) @ root)
    return np.sort(np.log(np.abs(eigenvalues)))[::-1]


def _monodromy(h, eta, seq, order, period):
    product = np.eye(h.size)
    for k in range(period):
        product = step_matrix(h, eta, seq.at(k), order) @ product
    return product


def _qr_exponents(h, eta, seq, order, steps):
    q = np.eye(h.size)
    total = np.zeros(h.size)
    for k in range(steps):
        q, r = np.linalg.qr(step_matrix(h, eta, seq.at(k), order) @ q)
        total += np.log(np.abs(np.diag(r)))
    return np.sort(total / steps)[::-1]


def attraction_dimension(h: np.ndarray, eta: float, seq: SigmaSequence, *, order: int = 1, steps: int = 4000,
                         threshold: float = 2e-3) -> AttractionResult:
    """Notion (a): the dimension of the attraction region of the saddle at 0 for one fixed
    sigma sequence, i.e. the number of negative Lyapunov exponents (per step) of
    x_{k+1} = (I - eta A_{sigma_k}^{-1} H) x_k.

    Constant and periodic sequences are measured exactly (eigenvalues; ``threshold`` is
    then only a guard against rounding, 1e-12). Other sequences use QR iteration over
    ``steps`` steps; exponents within ``threshold`` of 0 are counted as ambiguous, not
    as stable.
    """
    if seq.period == 1:
        exponents, method, tol = _constant_exponents(h, eta, seq.at(0), order), "eigenvalues", 1e-12
    elif seq.period is not None and seq.period <= 4096:
        eig = np.linalg.eigvals(_monodromy(h, eta, seq, order, seq.period))
        exponents = np.sort(np.log(np.abs(eig)) / seq.period)[::-1]
        method, tol = f"monodromy of period {seq.period}", 1e-12
    else:
        exponents, method, tol = _qr_exponents(h, eta, seq, order, steps), f"QR iteration, {steps} steps", threshold
    return AttractionResult(int(np.sum(exponents < -tol)), int(np.sum(exponents > tol)),
                            int(np.sum(np.abs(exponents) <= tol)), exponents, method, tol)


def stable_subspace(h: np.ndarray, eta: float, seq: SigmaSequence, *, order: int = 1,
                    steps: int = 4000, threshold: float = 2e-3) -> np.ndarray:
    """An orthonormal basis (columns) of the attraction region of one sequence, at time 0.

    Constant sequences: stable eigenvectors of the symmetric similar matrix. Periodic:
    the stable invariant subspace of the monodromy (ordered real Schur form). Others:
    backward QR iteration with the inverse step matrices over ``steps`` steps, whose
    leading vectors converge to the directions contracted fastest forward.
    """
    import scipy.linalg

    n = h.size
    if seq.period == 1:
        root = smoothing_matrix(n, seq.at(0), order, power=0.5)
        w, v = np.linalg.eigh(np.eye(n) - eta * root @ np.diag(h) @ root)
        q, _ = np.linalg.qr(root @ v[:, np.abs(w) < 1])
        return q
    if seq.period is not None and seq.period <= 4096:
        _, z, dim = scipy.linalg.schur(_monodromy(h, eta, seq, order, seq.period), output="real", sort="iuc")
        return z[:, :dim]
    dim = attraction_dimension(h, eta, seq, order=order, steps=steps, threshold=threshold).dimension
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((n, n)))[0]
    for k in reversed(range(steps)):
        q, _ = np.linalg.qr(np.linalg.solve(step_matrix(h, eta, seq.at(k), order), q))
    return q[:, :dim]


# ------------------------------------------------------------ notion (c) --


def subspace_intersection_dimension(a: np.ndarray, b: np.ndarray, tol: float = 1e-7) -> int:
    """dim(span a ∩ span b) for orthonormal bases: principal angles below ``tol`` (radians),
    with sines computed from residuals (accurate for small angles)."""
    if a.shape[1] == 0 or b.shape[1] == 0:
        return 0
    _, _, vt = np.linalg.svd(a.T @ b)
    principal = b @ vt.T
    sines = np.linalg.norm(principal - a @ (a.T @ principal), axis=0)
    return int(np.sum(sines < tol))


def gd_intersection_dimension(h: np.ndarray, eta: float, seq: SigmaSequence, **kwargs) -> int:
    """Notion (c): dim(attraction region of `seq` ∩ attraction region of GD)."""
    gd = stable_subspace(h, eta, SigmaSequence.constant(0.0), **kwargs)
    return subspace_intersection_dimension(stable_subspace(h, eta, seq, **kwargs), gd)


# ------------------------------------------------------------ notion (b) --


def common_attraction_dimension(n: int, sigmas: SequenceT[float], *, eta: float = 0.1, order: int = 1,
                                position: Optional[int] = None, positive: float = 1.0, negative: float = -1.0,
                                digits: Optional[int] = None) -> Tuple[int, int]:
    r"""Notion (b) on the canonical saddle (equal positive curvatures): bounds (lower, upper)
    on the dimension of the set of starting points attracted under *every* sigma
    sequence with values in ``sigmas`` (for a continuous family, pass samples of it).

    Write j for the negative coordinate. Vectors antisymmetric about j ("sine" modes,
    dimension floor((n-1)/2)) vanish at j, so H acts on them as ``positive`` times the
    identity, and every circulant A^{-1} maps them to themselves: they contract under
    every sequence. That subspace V is the lower bound (checked numerically here for each
    sigma, not assumed). The symmetric ("cosine") modes, m = floor(n/2) + 1 of them, hold
    the rest: on them each constant sequence attracts exactly the hyperplane orthogonal
    to its unstable left eigenvector u_sigma, which in cosine coordinates has the closed
    form u_k = d_k a_k / (nu d_k - positive), with a_k the modes' values at j, d_k the
    symbol and nu < 0 the root of 1 = (negative - positive) sum_k a_k^2 / (nu d_k - positive).
    A point attracted under every sequence is attracted under the constant ones, so
    upper = dim V + m - rank[u_sigma]. The u_sigma are nearly parallel (the smallest
    singular values of [u_sigma] fall like 10^(-n/2)), so the rank is computed with
    mpmath at ``digits`` (default 40 + 2 n) decimal digits and counts singular values
    above 10^(-digits/2). Both bounds assume 0 < eta * positive < 2 (as GD needs on the
    positive curvatures), which makes every eigenvalue of a step other than the unstable
    one lie inside the unit circle.
    """
    if not 0 < eta * positive < 2:
        raise ValueError(f"Invalid eta: {eta} (need 0 < eta * positive < 2)")
    import mpmath

    if not sigmas:
        raise ValueError("sigmas must not be empty")
    j = n // 2 if position is None else position
    lower = _verified_sine_dimension(n, sigmas, eta, order, j, positive, negative)
    m = n // 2 + 1
    digits = 40 + 2 * n if digits is None else digits
    with mpmath.workdps(digits):
        delta = mpmath.mpf(negative) - positive
        cos_values = [[mpmath.cos(2 * mpmath.pi * k * (i - j) / n) for i in range(n)] for k in range(m)]
        a = [1 / mpmath.sqrt(mpmath.fsum(c * c for c in row)) for row in cos_values]
        s = [(4 * mpmath.sin(mpmath.pi * k / n) ** 2) ** order for k in range(m)]
        columns = []
        for sigma in sigmas:
            d = [1 + mpmath.mpf(sigma) * sk for sk in s]

            def secular(nu, d=d):
                return 1 - delta * mpmath.fsum(ak * ak / (nu * dk - positive) for ak, dk in zip(a, d))

            # secular decreases on (-inf, 0) from 1 to (positive - negative... ) -1 at 0-:
            # bracket the root, then bisect-like Anderson iteration.
            lo, hi = mpmath.mpf(-1), mpmath.mpf(0)
            while secular(lo) < 0:
                lo *= 2
            nu = mpmath.findroot(secular, (lo, hi), solver="anderson")
            columns.append([dk * ak / (nu * dk - positive) for ak, dk in zip(a, d)])
        u = mpmath.matrix(m, len(columns))
        for c, column in enumerate(columns):
            norm = mpmath.sqrt(mpmath.fsum(x * x for x in column))
            for k in range(m):
                u[k, c] = column[k] / norm
        singular = mpmath.svd_r(u, compute_uv=False)
        rank = sum(1 for x in singular if x > mpmath.mpf(10) ** (-digits // 2))
    return lower, lower + m - min(rank, m)


def _verified_sine_dimension(n, sigmas, eta, order, j, positive, negative):
    """dim V, after checking that every sine mode about j is a contracted eigenvector of
    every A_sigma^{-1} H (up to rounding); raises if one is not."""
    h = np.full(n, float(positive))
    h[j] = negative
    count = 0
    for k in range(1, (n - 1) // 2 + 1):
        v = np.sin(2 * np.pi * k * (np.arange(n) - j) / n)
        v /= np.linalg.norm(v)
        for sigma in sigmas:
            pv = smoothing_matrix(n, sigma, order) @ (h * v)
            eigenvalue = v @ pv
            if np.linalg.norm(pv - eigenvalue * v) > 1e-10 or not abs(1 - eta * eigenvalue) < 1:
                raise AssertionError(f"sine mode {k} is not a stable eigenvector for sigma={sigma}")
        count += 1
    return count


# ------------------------------------------------------------------ rates --


def convergence_rate(h: np.ndarray, eta: float, seq: SigmaSequence, *, order: int = 1, steps: int = 4000) -> float:
    """The asymptotic contraction factor per step, exp(largest Lyapunov exponent), of
    x_{k+1} = (I - eta A_{sigma_k}^{-1} H) x_k on a strongly convex quadratic: the
    iterates shrink like rate^k. Exact for constant and periodic sequences."""
    return float(math.exp(attraction_dimension(h, eta, seq, order=order, steps=steps).exponents[0]))


# ------------------------------------------------------------ cross-check --


def cross_check(h: np.ndarray, eta: float, make_optimizer: Callable, basis: np.ndarray, *, steps: int = 600,
                trials: int = 3, seed: int = 0) -> Tuple[List[float], List[float]]:
    """Runs a real optimizer of this package on f = x^T diag(h) x / 2 (float64), from unit
    starting points inside span(basis) and from points with a component outside it.

    ``make_optimizer(param)`` returns the optimizer (lr must be ``eta``, no momentum).
    Returns the final norms (inside, outside): inside ones should shrink towards 0, outside
    ones grow (they leave the saddle).
    """
    import torch

    rng = np.random.default_rng(seed)
    n = h.size
    complement = np.linalg.qr(np.hstack([basis, rng.standard_normal((n, n))]))[0][:, basis.shape[1]:]
    hessian = torch.tensor(h, dtype=torch.float64)

    def run(x0):
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        optimizer = make_optimizer(x)
        for _ in range(steps):
            x.grad = hessian * x.detach()
            optimizer.step()
        return float(x.detach().norm())

    def unit(x):
        return x / np.linalg.norm(x)

    inside = [run(unit(basis @ rng.standard_normal(basis.shape[1]))) for _ in range(trials)] if basis.shape[1] else []
    outside = []
    if complement.shape[1]:
        for _ in range(trials):
            inner = basis @ rng.standard_normal(basis.shape[1]) if basis.shape[1] else np.zeros(n)
            outside.append(run(unit(inner + 1e-3 * complement @ rng.standard_normal(complement.shape[1]))))
    return inside, outside


# -------------------------------------------------------------------- CLI --


def _sequence_from_args(args) -> SigmaSequence:
    if args.optimizer == "gd":
        return SigmaSequence.constant(0.0)
    if args.optimizer == "lsgd":
        return SigmaSequence.constant(args.sigma)
    kwargs = dict(schedule=args.schedule, sigma=args.sigma, sigma_min=args.sigma_min, period=args.period,
                  seed=args.seed)
    if args.sigma_max is not None:
        kwargs["sigma_max"] = args.sigma_max
    return SigmaSequence.schedule(**kwargs)


def _family_samples(seq: SigmaSequence, count: int) -> List[float]:
    """The values a sequence takes in its first `count` steps (distinct ones kept)."""
    values: List[float] = []
    for k in range(count):
        v = seq.at(k)
        if v not in values:
            values.append(v)
        if seq.period is not None and k + 1 >= seq.period:
            break
    return values


def measure(n: int, eta: float, seq: SigmaSequence, *, order: int = 1, spread=None, position=None,
            steps: int = 4000, family: bool = True) -> dict:
    """All three notions for one configuration on one saddle; a dict for tables.

    Notion (b) treats the sequence's values (its first floor(n/2) + 4 draws) as a family
    and is defined here only for random schedules: a deterministic sequence is its own
    family, so its (b) equals its (a).
    """
    h = saddle_curvatures(n, spread=spread, position=position)
    a = attraction_dimension(h, eta, seq, order=order, steps=steps)
    row = {"n": n, "scheme": seq.label, "a": a.dimension, "a_unstable": a.unstable, "a_ambiguous": a.ambiguous,
           "a_method": a.method, "b_lower": "", "b_upper": "", "c": ""}
    if family and seq.label.startswith("MLSGD random") and spread is None:
        lower, upper = common_attraction_dimension(n, _family_samples(seq, n // 2 + 4), eta=eta, order=order,
                                                   position=position)
        row.update(b_lower=lower, b_upper=upper)
    if a.ambiguous == 0:
        row["c"] = gd_intersection_dimension(h, eta, seq, order=order, steps=steps)
    return row


def _table(args) -> None:
    import csv
    import os

    os.makedirs(args.out, exist_ok=True)
    schemes = [SigmaSequence.constant(0.0), SigmaSequence.constant(0.5), SigmaSequence.constant(1.0),
               SigmaSequence.constant(4.0), SigmaSequence.schedule(schedule="random", sigma=1.0),
               SigmaSequence.schedule(schedule="cyclic", sigma=1.0, period=10),
               SigmaSequence.schedule(schedule="decay", sigma=1.0, period=100),
               SigmaSequence.schedule(schedule="growth", sigma=1.0, period=100)]
    rows = []
    for n in range(args.n_min, args.n_max + 1):
        for seq in schemes:
            row = measure(n, args.eta, seq, steps=args.steps)
            row["floor((n-1)/2)"] = (n - 1) // 2
            rows.append(row)
        print(f"n={n}: " + ", ".join(f"{r['scheme']}: a={r['a']}" + (f" b=[{r['b_lower']},{r['b_upper']}]"
                                                                     if r["b_lower"] != "" else "")
                                    for r in rows[-len(schemes):]), flush=True)
    fields = ["n", "floor((n-1)/2)", "scheme", "a", "a_unstable", "a_ambiguous", "a_method", "b_lower", "b_upper",
              "c"]
    path = os.path.join(args.out, "attraction_dimensions.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")

    rates = []
    for name, h in (("spread curvatures [0.1, 1]", convex_curvatures(64, 0.1, 1.0)),
                    ("equal curvatures 1", np.ones(64))):
        gd = convergence_rate(h, args.eta, SigmaSequence.constant(0.0))
        for seq in schemes[:6] + [SigmaSequence.schedule(schedule="random", sigma=0.25)]:
            r = convergence_rate(h, args.eta, seq, steps=args.steps)
            rates.append({"problem": name, "n": 64, "scheme": seq.label, "rate per step": f"{r:.6f}",
                          "steps per decade": f"{math.log(0.1) / math.log(r):.0f}",
                          "steps / GD's": f"{math.log(gd) / math.log(r):.2f}"})
    path = os.path.join(args.out, "convergence_rates.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rates[0]))
        writer.writeheader()
        writer.writerows(rates)
    print(f"wrote {path}")
    _plot(rows, os.path.join(args.out, "attraction_dimensions.png"), args.eta)


def _plot(rows, path, eta) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    ns = sorted({r["n"] for r in rows})
    ax.plot(ns, [n - 1 for n in ns], color="0.7", lw=6, label="n - 1")
    ax.plot(ns, [(n - 1) // 2 for n in ns], color="0.7", lw=6, ls=":", label="floor((n-1)/2)  (paper's mLSGD)")
    styles = {"GD": ("k", "o"), "LSGD sigma=1": ("tab:blue", "s"), "MLSGD random (sigma=1.0)": ("tab:red", "^")}
    for label, (color, marker) in styles.items():
        pts = [(r["n"], r["a"]) for r in rows if r["scheme"] == label]
        ax.plot(*zip(*pts), color=color, marker=marker, ms=3, lw=1, label=f"{label}: (a) one sequence")
    pts = [(r["n"], r["b_upper"]) for r in rows if r["scheme"].startswith("MLSGD random") and r["b_upper"] != ""]
    ax.plot(*zip(*pts), color="tab:red", marker="v", ms=4, lw=1.5, ls="--",
            label="MLSGD random: (b) every sequence of its family")
    pts = [(r["n"], r["c"]) for r in rows if r["scheme"].startswith("MLSGD random") and r["c"] != ""]
    ax.plot(*zip(*pts), color="tab:orange", marker=".", ms=3, lw=1, ls="-.", label="MLSGD random: (c) ∩ GD's region")
    ax.set_xlabel("dimension n")
    ax.set_ylabel("dimension of the attraction region of the saddle")
    ax.set_title(f"Saddle of f = x^T H x / 2, H = diag(1, .., -1, .., 1), eta = {eta}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python3 -m torch_mlsgd.analysis", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("dimension", help="measure one configuration on one saddle")
    one.add_argument("--n", type=int, default=16)
    one.add_argument("--eta", type=float, default=0.1)
    one.add_argument("--optimizer", choices=("gd", "lsgd", "mlsgd"), default="mlsgd")
    one.add_argument("--sigma", type=float, default=1.0)
    one.add_argument("--order", type=int, default=1)
    one.add_argument("--schedule", default="random")
    one.add_argument("--sigma-min", type=float, default=0.0)
    one.add_argument("--sigma-max", type=float, default=None)
    one.add_argument("--period", type=int, default=100)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--spread", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                     help="spread the positive curvatures geometrically instead of equal 1")
    one.add_argument("--position", type=int, default=None, help="coordinate of the negative curvature")
    one.add_argument("--steps", type=int, default=4000, help="QR steps for aperiodic sequences")
    table = sub.add_parser("table", help="the docs/ table and plot: n = N_MIN..N_MAX for every scheme")
    table.add_argument("--n-min", type=int, default=2)
    table.add_argument("--n-max", type=int, default=64)
    table.add_argument("--eta", type=float, default=0.1)
    table.add_argument("--steps", type=int, default=4000)
    table.add_argument("--out", default="docs")
    args = parser.parse_args(argv)
    if args.command == "dimension":
        seq = _sequence_from_args(args)
        row = measure(args.n, args.eta, seq, order=args.order, spread=args.spread, position=args.position,
                      steps=args.steps)
        print(f"{seq.label} on the saddle of n = {args.n}, eta = {args.eta}")
        print(f"  (a) one sequence: dimension {row['a']} ({row['a_unstable']} unstable, "
              f"{row['a_ambiguous']} ambiguous exponents; {row['a_method']})")
        if row["b_lower"] != "":
            print(f"  (b) every sequence of the family: dimension in [{row['b_lower']}, {row['b_upper']}]")
        if row["c"] != "":
            print(f"  (c) intersection with GD's region: dimension {row['c']}")
        print(f"  GD: {args.n - 1}; floor((n-1)/2) = {(args.n - 1) // 2}")
    else:
        _table(args)


if __name__ == "__main__":
    main()
