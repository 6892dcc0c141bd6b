"""torch_mlsgd: Laplacian-smoothing gradient descent (LSGD and mLSGD) for PyTorch.

Importing the package loads its compiled kernels, registered with PyTorch's
dispatcher as ``torch.ops.mlsgd.*``.
"""

from ._extension import CUDA_KERNELS, TORCH_FLOOR
from ._meta import register as _register_meta
from .functional import BACKENDS, cpu_kernels, laplacian_smooth, laplacian_smooth_
from .grad_smoothing import register_smoothing, smooth_grad_
from .lsadamw import LSAdamW
from .lsgd import LSGD, lsgd
from .mlsgd import MLSGD, SCHEDULES, scheduled_sigma

__version__ = "0.3.0"

_register_meta()

__all__ = ["BACKENDS", "LSGD", "MLSGD", "LSAdamW", "SCHEDULES", "cpu_kernels", "scheduled_sigma", "laplacian_smooth",
           "laplacian_smooth_", "lsgd", "smooth_grad_", "register_smoothing", "__version__", "CUDA_KERNELS",
           "TORCH_FLOOR"]
