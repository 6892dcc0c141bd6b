"""Laplacian smoothing of tensors: thin typed wrappers over ``torch.ops.mlsgd``."""

import numbers

import torch
from torch import Tensor

from ._extension import _C  # noqa: F401  (registers torch.ops.mlsgd)

__all__ = ["laplacian_smooth", "laplacian_smooth_", "cpu_kernels", "BACKENDS"]

#: The smoothing routes ``backend=`` accepts.
BACKENDS = ("auto", "fft", "direct")


def _check_scalars(sigma, order, backend) -> None:
    # The op validates values; here only the Python types, which the
    # dispatcher would otherwise coerce silently or reject with less clear words.
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"sigma must be a real number, got {type(sigma).__name__}")
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise TypeError(f"order must be an integer, got {type(order).__name__}")
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, got {type(backend).__name__}")


def laplacian_smooth(input: Tensor, sigma: float, order: int = 1, *, backend: str = "auto") -> Tensor:
    r"""Laplacian smoothing of ``input``, flattened in row-major order.

    Returns :math:`S(v) = (I + \sigma (-L)^p)^{-1} v` reshaped like ``input``, where
    :math:`v` is ``input.reshape(-1)``, :math:`p` is ``order`` and :math:`L` is the
    1-D discrete Laplacian on a periodic ring of ``input.numel()`` points,
    :math:`(Lv)_i = v_{i-1} - 2 v_i + v_{i+1}`. The mean is kept, the norm never
    grows, and ``sigma=0`` is the identity.

    Args:
        input: a real floating-point tensor of any shape (float16 and bfloat16 are
            computed in float32); CPU, or CUDA when the extension was built with it.
        sigma: smoothing strength, finite and ``>= 0``.
        order: power :math:`p \ge 1` of the Laplacian.
        backend: ``"fft"`` (real FFT divided by the closed-form symbol
            :math:`1 + \sigma (4 \sin^2(\pi k / n))^p`), ``"direct"`` (O(n) recursions,
            exact to rounding) or ``"auto"`` (the cheaper one for this size).

    Returns:
        A new tensor with the shape and dtype of ``input``. Differentiable: the
        backward of a symmetric operator is the operator itself.

    Raises:
        ValueError: negative or non-finite ``sigma``, ``order < 1``, unknown ``backend``.
        TypeError: integer, complex or sparse ``input``.
    """
    _check_scalars(sigma, order, backend)
    return torch.ops.mlsgd.laplacian_smooth.default(input, float(sigma), int(order), backend)


def laplacian_smooth_(input: Tensor, sigma: float, order: int = 1, *, backend: str = "auto") -> Tensor:
    """In-place :func:`laplacian_smooth`; returns ``input``.

    On any error ``input`` is left unchanged. A tensor that requires grad can only
    be smoothed in place under :func:`torch.no_grad`.
    """
    _check_scalars(sigma, order, backend)
    torch.ops.mlsgd.laplacian_smooth_.default(input, float(sigma), int(order), backend)
    return input


def cpu_kernels() -> str:
    """Which CPU kernels this machine runs: ``"avx2"`` (vectorised, chosen at run
    time when the CPU has AVX2 and FMA) or ``"portable"``. Setting the environment
    variable ``TORCH_MLSGD_DISABLE_SIMD=1`` before the first call forces the
    portable ones; both give the same results to rounding."""
    return torch.ops.mlsgd.cpu_kernels.default()
