"""The two saddle-dominated problems: a deep linear network and the same network with tanh.

Both are full batch and float64; their plateau levels and the network function at each
saddle are exact for the linear network (saddle_study/__init__.py says why they serve
the tanh network too).
"""

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch

DTYPE = torch.float64
INIT_SCALE = 0.01


@dataclass
class Problem:
    name: str
    title: str
    inputs: torch.Tensor  # (n, d_in)
    targets: torch.Tensor  # (n, d_out)
    widths: List[int]  # d_in, hidden..., d_out
    activation: Optional[Callable]  # None: linear network
    levels: List[float]  # plateau levels, decreasing, last = final level
    saddle_outputs: List[torch.Tensor]  # the network function at each saddle, on `inputs`
    steps: int  # the step budget of a run

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


def deep_linear_problem(
    steps: int, depth: int = 3, width: int = 32, singular_values: Sequence[float] = (8.0, 4.0, 2.0, 1.0)
) -> Problem:
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
    return Problem(
        "dln",
        f"deep linear network (depth {depth}, width {width}, s = {tuple(singular_values)})",
        x,
        x @ target_map.t(),
        [width] * (depth + 1),
        None,
        levels,
        saddles,
        steps,
    )


def tanh_problem(
    steps: int, depth: int = 3, width: int = 32, singular_values: Sequence[float] = (8.0, 4.0, 2.0, 1.0)
) -> Problem:
    """The deep linear network's task and initialisation with tanh between the layers.
    Near the origin tanh(z) = z + O(z^3): the saddles of the small-weight region are the
    linear network's to first order, and so are the levels used to cut the plateaus
    (exact for the linear network, approximate here)."""
    linear = deep_linear_problem(steps, depth, width, singular_values)
    return Problem(
        "tanh",
        f"tanh network (depth {depth}, width {width}) on the same task",
        linear.inputs,
        linear.targets,
        linear.widths,
        torch.tanh,
        linear.levels,
        linear.saddle_outputs,
        steps,
    )
