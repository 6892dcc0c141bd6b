"""Loads the compiled extension and checks that it matches the running torch."""

import warnings

import torch

_REBUILD = (
    "Rebuild it against the running torch from the repository root with "
    "`make build` (or `python3 setup.py build_ext --inplace`)."
)


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def _mismatch(built: str) -> ImportError:
    return ImportError(
        f"torch_mlsgd: the compiled extension was built against torch {built}, "
        f"but torch {torch.__version__} is running. {_REBUILD}"
    )


def _load():
    # Checked before _C is loaded: loading an extension built against another
    # torch can abort the process in its static initialisers.
    try:
        from ._build_info import torch_version as built
    except ImportError:  # built by a tool that does not write it (CMake); _C says below
        built = None
    if built is not None and _major_minor(built) != _major_minor(torch.__version__):
        raise _mismatch(built)
    try:
        from . import _C
    except ImportError as error:
        raise ImportError(
            f"torch_mlsgd: the compiled extension torch_mlsgd._C could not be loaded with "
            f"torch {torch.__version__}: {error}. {_REBUILD}"
        ) from error
    if _major_minor(_C.torch_version) != _major_minor(torch.__version__):
        raise _mismatch(_C.torch_version)
    built_cuda = _C.cuda_version or None
    if built_cuda is not None and torch.version.cuda is None:
        raise ImportError(
            f"torch_mlsgd: the compiled extension was built with CUDA {built_cuda}, but the "
            f"running torch {torch.__version__} has no CUDA. {_REBUILD}"
        )
    if built_cuda is None and torch.version.cuda is not None:
        warnings.warn(
            f"torch_mlsgd: the compiled extension has no CUDA kernels, but torch {torch.__version__} has CUDA "
            f"{torch.version.cuda}: CUDA tensors will fail in torch_mlsgd's ops. Rebuild with nvcc available "
            "(CUDA_HOME) to get them.",
            stacklevel=3,
        )
    elif built_cuda is not None and built_cuda.split(".")[0] != str(torch.version.cuda).split(".")[0]:
        warnings.warn(
            f"torch_mlsgd: the compiled extension was built with CUDA {built_cuda}, torch with CUDA "
            f"{torch.version.cuda}; a major-version mismatch may fail at run time. {_REBUILD}",
            stacklevel=3,
        )
    return _C


_C = _load()
