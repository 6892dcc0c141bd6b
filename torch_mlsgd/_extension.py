"""Loads the compiled ops: the CPU library ``_C`` always, the CUDA library
``_C_cuda`` when the running torch has CUDA.

Both are built on PyTorch's stable ABI, so they load into every torch from the
floor the wheel was built for (``_build_info.torch_floor``) on; an older torch
is refused here, before anything is loaded, with the version it needs.
"""

import os
import warnings

import torch

try:
    from . import _build_info
except ImportError:  # pragma: no cover - a checkout whose extension was never built
    raise ImportError(
        "torch_mlsgd: the compiled extension is not built. Install the wheel (`make wheel`, then "
        "`pip install dist/torch_mlsgd-*.whl`) or build it in place with `make build` (docs/install.md)."
    ) from None

__all__ = ["TORCH_FLOOR", "CUDA_KERNELS"]

#: The oldest torch the compiled ops run on, as "major.minor".
TORCH_FLOOR: str = _build_info.torch_floor


def _release(version: str) -> tuple:
    return tuple(int(part) for part in version.split("+")[0].split(".")[:2])


def _check_torch() -> None:
    if _release(torch.__version__) < _release(TORCH_FLOOR):
        raise ImportError(
            f"torch_mlsgd needs torch >= {TORCH_FLOOR} (its ops are built on PyTorch's stable ABI of "
            f"{TORCH_FLOOR}); torch {torch.__version__} is installed. Upgrade torch: "
            f"pip install 'torch>={TORCH_FLOOR}'."
        )


def _load_cuda() -> bool:
    """Loads the CUDA kernels into a torch with CUDA; False when there are none to load."""
    if torch.version.cuda is None or _build_info.cuda_version is None:
        return False
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_C_cuda.abi3.so")
    if not os.path.exists(path):
        return False
    built, running = _build_info.cuda_version.split(".")[0], torch.version.cuda.split(".")[0]
    if built != running:
        warnings.warn(
            f"torch_mlsgd: its CUDA kernels were built with CUDA {_build_info.cuda_version}, torch runs CUDA "
            f"{torch.version.cuda}; they are not loaded, so CUDA tensors fail in torch_mlsgd's ops. Build from "
            "source with a CUDA toolkit of torch's major version (docs/install.md).",
            stacklevel=3,
        )
        return False
    torch.ops.load_library(path)
    return True


_check_torch()
from . import _C  # noqa: E402, F401  (registers the ops and their CPU kernels)

#: Whether the CUDA kernels are loaded (a CUDA build of torch, and a wheel built with them).
CUDA_KERNELS: bool = _load_cuda()
