"""Laplacian smoothing of tensors: thin typed wrappers over ``torch.ops.mlsgd``."""

import torch
from torch import Tensor

from ._extension import _C  # noqa: F401  (registers torch.ops.mlsgd)
from ._validation import BACKENDS, check_smooth_args

__all__ = ["laplacian_smooth", "laplacian_smooth_", "cpu_kernels", "BACKENDS"]

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
    check_smooth_args(input, sigma, order, backend)
    return torch.ops.mlsgd.laplacian_smooth.default(input, float(sigma), int(order), backend)


def laplacian_smooth_(input: Tensor, sigma: float, order: int = 1, *, backend: str = "auto") -> Tensor:
    """In-place :func:`laplacian_smooth`; returns ``input``.

    On any error ``input`` is left unchanged. A tensor that requires grad can only
    be smoothed in place under :func:`torch.no_grad`.
    """
    check_smooth_args(input, sigma, order, backend)
    if torch.is_grad_enabled() and input.requires_grad:
        raise RuntimeError("laplacian_smooth_: cannot smooth in place a tensor that requires grad; "
                           "use laplacian_smooth (out of place) or run under torch.no_grad()")
    torch.ops.mlsgd.laplacian_smooth_.default(input, float(sigma), int(order), backend)
    return input


def cpu_kernels() -> str:
    """Which CPU kernels this machine runs: ``"avx2"`` (vectorised, chosen at run
    time when the CPU has AVX2 and FMA) or ``"portable"``. Setting the environment
    variable ``TORCH_MLSGD_DISABLE_SIMD=1`` before the first call forces the
    portable ones; both give the same results to rounding."""
    return torch.ops.mlsgd.cpu_kernels.default()
