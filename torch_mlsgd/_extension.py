"""Loads the compiled extension and checks that it matches the running torch."""

import torch

_REBUILD = (
    "Rebuild it against the running torch from the repository root with "
    "`make build` (or `python3 setup.py build_ext --inplace`)."
)


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def _load():
    try:
        from . import _C
    except ImportError as error:
        raise ImportError(
            f"torch_mlsgd: the compiled extension torch_mlsgd._C could not be loaded with "
            f"torch {torch.__version__}: {error}. {_REBUILD}"
        ) from error
    if _major_minor(_C.torch_version) != _major_minor(torch.__version__):
        raise ImportError(
            f"torch_mlsgd: the compiled extension was built against torch {_C.torch_version}, "
            f"but torch {torch.__version__} is running. {_REBUILD}"
        )
    built_cuda = _C.cuda_version or None
    if built_cuda is not None and torch.version.cuda is None:
        raise ImportError(
            f"torch_mlsgd: the compiled extension was built with CUDA {built_cuda}, but the "
            f"running torch {torch.__version__} has no CUDA. {_REBUILD}"
        )
    return _C


_C = _load()
