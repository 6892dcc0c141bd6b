"""torch_mlsgd: Laplacian-smoothing gradient descent (LSGD and mLSGD) for PyTorch.

Importing the package loads its compiled kernels, registered with PyTorch's
dispatcher as ``torch.ops.mlsgd.*``.
"""

from ._extension import _C
from ._fake import register_fake_kernels as _register_fake_kernels
from .functional import BACKENDS, cpu_kernels, laplacian_smooth, laplacian_smooth_
from .lsgd import LSGD, lsgd
from .mlsgd import MLSGD, SCHEDULES, scheduled_sigma

__version__ = "0.2.0"

#: Whether this torch traces the ops with fake kernels (torch.compile); False on torch 1.x.
HAS_FAKE_KERNELS = _register_fake_kernels()

__all__ = ["BACKENDS", "LSGD", "MLSGD", "SCHEDULES", "cpu_kernels", "scheduled_sigma", "laplacian_smooth", "laplacian_smooth_", "lsgd", "__version__"]
