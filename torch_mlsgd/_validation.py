"""Hyper-parameter checks shared by the optimizers, in torch.optim's words."""

import math
import numbers
from typing import Any, Dict

from .functional import BACKENDS

FLATTEN_MODES = ("tensor", "group")


def _real(name: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"Invalid {name}: {value}")
    return float(value)


def check_lsgd_hyperparameters(group: Dict[str, Any]) -> None:
    """Raises ValueError/TypeError naming the first bad value of an LSGD group."""
    _real("learning rate", group["lr"], "lr")
    _real("sigma value", group["sigma"], "sigma")
    _real("momentum value", group["momentum"], "momentum")
    _real("weight_decay value", group["weight_decay"], "weight_decay")
    dampening = group["dampening"]
    if isinstance(dampening, bool) or not isinstance(dampening, numbers.Real) or not math.isfinite(dampening):
        raise ValueError(f"Invalid dampening value: {dampening}")
    order = group["order"]
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise TypeError(f"order must be an integer, got {type(order).__name__}")
    if order < 1:
        raise ValueError(f"Invalid order value: {order}")
    if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    if group["flatten"] not in FLATTEN_MODES:
        raise ValueError(f"Invalid flatten value: {group['flatten']!r} (expected 'tensor' or 'group')")
    if group["backend"] not in BACKENDS:
        raise ValueError(f"Invalid backend: {group['backend']!r} (expected 'auto', 'fft' or 'direct')")
