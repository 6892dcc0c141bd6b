"""Hyper-parameter checks shared by the optimizers, in torch.optim's words."""

import math
import numbers
from typing import Any, Dict

import torch
from torch import Tensor

#: The smoothing routes ``backend=`` accepts.
BACKENDS = ("auto", "fft", "direct")
FLATTEN_MODES = ("tensor", "group")


def check_smooth_scalars(sigma: Any, order: Any, backend: Any) -> None:
    """Raises TypeError/ValueError for a smoothing strength, order or route the ops refuse."""
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"sigma must be a real number, got {type(sigma).__name__}")
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise TypeError(f"order must be an integer, got {type(order).__name__}")
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, got {type(backend).__name__}")
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"Invalid sigma value: {sigma} (must be finite and >= 0)")
    if order < 1:
        raise ValueError(f"Invalid order value: {order} (must be >= 1)")
    if backend not in BACKENDS:
        raise ValueError(f"Invalid backend: {backend!r} (expected 'auto', 'fft' or 'direct')")


def check_smoothable(t: Any, who: str, what: str) -> None:
    """Raises TypeError unless `t` is a dense real floating-point tensor; `who` and `what`
    name the function and the tensor in the message."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{who}: expected a Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(f"{who}: sparse {what}s are not supported (got layout {t.layout})")
    if t.is_complex():
        raise TypeError(f"{who}: complex {what}s are not supported (got dtype {t.dtype})")
    if not t.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point {what}, got dtype {t.dtype}")


def check_smooth_args(input: Tensor, sigma: Any, order: Any, backend: Any) -> None:
    """Raises TypeError/ValueError for arguments the smoothing ops refuse, before
    they reach them (the compiled ops raise RuntimeError with the same words)."""
    check_smooth_scalars(sigma, order, backend)
    check_smoothable(input, "laplacian_smooth", "input")


def _real(name: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"Invalid {name}: {value}")
    return float(value)


def _real_or_tensor(name: str, value: Any, what: str) -> None:
    """A real number, or (as torch.optim takes lr and weight_decay) a one-element
    floating-point Tensor holding one: the same errors as the number would get."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {what} must be 1-element, got shape {tuple(value.shape)}")
        if not value.is_floating_point():
            raise TypeError(f"Tensor {what} must be floating-point, got dtype {value.dtype}")
        value = value.item()  # on a GPU a synchronisation: only when the tensor is new or changed
    _real(name, value, what)


def check_lsgd_hyperparameters(group: Dict[str, Any]) -> None:
    """Raises ValueError/TypeError naming the first bad value of an LSGD group."""
    _real_or_tensor("learning rate", group["lr"], "lr")
    _real("sigma value", group["sigma"], "sigma")
    _real("momentum value", group["momentum"], "momentum")
    _real_or_tensor("weight_decay value", group["weight_decay"], "weight_decay")
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


def check_lsadamw_hyperparameters(group: Dict[str, Any]) -> None:
    """Raises ValueError/TypeError naming the first bad value of an LSAdamW group, in
    torch.optim.AdamW's words."""
    _real_or_tensor("learning rate", group["lr"], "lr")
    _real("epsilon value", group["eps"], "eps")
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair of numbers, got {betas!r}")
    for index, beta in enumerate(betas):
        if isinstance(beta, Tensor):
            raise TypeError("betas must be real numbers; Tensor betas are not supported by LSAdamW")
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
            raise TypeError(f"beta parameter at index {index} must be a real number, got {type(beta).__name__}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
    _real_or_tensor("weight_decay value", group["weight_decay"], "weight_decay")
    _real("sigma value", group["sigma"], "sigma")
    order = group["order"]
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise TypeError(f"order must be an integer, got {type(order).__name__}")
    if order < 1:
        raise ValueError(f"Invalid order value: {order}")
    for flag in ("amsgrad", "maximize", "capturable", "differentiable"):
        if not isinstance(group[flag], bool):
            raise TypeError(f"{flag} must be a bool, got {type(group[flag]).__name__}")
    if group.get("decoupled_weight_decay", True) is not True:
        raise ValueError("LSAdamW's weight decay is AdamW's, decoupled: decoupled_weight_decay must be True")
    if group["flatten"] not in FLATTEN_MODES:
        raise ValueError(f"Invalid flatten value: {group['flatten']!r} (expected 'tensor' or 'group')")
    if group["backend"] not in BACKENDS:
        raise ValueError(f"Invalid backend: {group['backend']!r} (expected 'auto', 'fft' or 'direct')")
