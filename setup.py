"""Builds the Python extension torch_mlsgd._C from the sources in csrc/.

    python3 setup.py build_ext --inplace            # what `make build` runs (Debian's torch)
    python3 -m pip install --no-build-isolation .   # as users install it
    python3 -m pip wheel --no-build-isolation .     # a wheel (what `make test` installs)

The only build requirement is the torch the extension will run with, which must
already be importable: without --no-build-isolation, pip would build against a
fresh copy of PyPI's newest torch instead (see pyproject.toml). The wheel requires
the same torch major.minor it was built against. When that torch has CUDA and nvcc
is found (CUDA_HOME), the extension is a CUDAExtension holding the CUDA kernels too
(TORCH_MLSGD_CUDA=0 turns them off; TORCH_CUDA_ARCH_LIST picks the GPU
architectures, by default the visible GPUs' or, with none, the running torch's
own); otherwise a CppExtension.
"""

import glob
import os
import re

from setuptools import setup
import torch
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension, include_paths

ROOT = os.path.dirname(os.path.abspath(__file__))
TORCH_MAJOR_MINOR = ".".join(torch.__version__.split("+")[0].split(".")[:2])


def version():
    """The one version of the project: csrc/include/torch_mlsgd/version.h (CMake reads it too)."""
    with open(os.path.join(ROOT, "csrc", "include", "torch_mlsgd", "version.h")) as f:
        return re.search(r'#define TORCH_MLSGD_VERSION "([0-9.]+)"', f.read()).group(1)


def with_cuda():
    return torch.version.cuda is not None and CUDA_HOME is not None and os.environ.get("TORCH_MLSGD_CUDA", "1") != "0"


def default_cuda_arch_list():
    """The GPU architectures to build for when TORCH_CUDA_ARCH_LIST is unset and no
    GPU is visible (a build machine, or CI): those of the running torch, the newest
    also as PTX, so the extension runs wherever that torch runs. torch's own default
    takes the visible GPUs' architectures, and has none to take here."""
    archs = [a[len("sm_"):] for a in torch.cuda.get_arch_list() if a.startswith("sm_")]
    archs = sorted({f"{a[:-1]}.{a[-1]}" for a in archs}, key=lambda a: tuple(map(int, a.split("."))))
    if not archs:
        return None
    archs[-1] += "+PTX"
    return ";".join(archs)


def sources(cuda):
    patterns = ["csrc/core/*.cpp", "csrc/ops/*.cpp", "csrc/ops/cpu/*.cpp", "csrc/python/*.cpp"]
    if cuda:
        patterns += ["csrc/cuda/kernels/*.cu", "csrc/ops/cuda/*.cpp"]
    return sorted(f for p in patterns for f in glob.glob(os.path.join(ROOT, p)))


def headers():
    return sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*.h"), recursive=True))


def cxx_standard():
    # The sources need C++17. torch 1.x's default is C++14; torch 2.x picks its own
    # (C++17, then C++20 once its headers needed it), which must not be lowered.
    return ["-std=c++17"] if int(TORCH_MAJOR_MINOR.split(".")[0]) < 2 else []


def system_includes():
    # torch's headers as system headers: -Wall -Wextra then reports our code only
    # (gcc ignores a -I directory that is also given with -isystem).
    return [flag for path in include_paths() for flag in ("-isystem", path)]


def extension():
    cuda = with_cuda()
    kwargs = dict(
        name="torch_mlsgd._C",
        sources=[os.path.relpath(s, ROOT) for s in sources(cuda)],
        depends=[os.path.relpath(h, ROOT) for h in headers()],
        include_dirs=[os.path.join(ROOT, "csrc"), os.path.join(ROOT, "csrc", "include")],
        extra_compile_args={"cxx": ["-O3", "-fopenmp", "-Wall", "-Wextra"] + cxx_standard() + system_includes()},
        extra_link_args=["-fopenmp"],
    )
    if not cuda:
        return CppExtension(**kwargs)
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        arch_list = default_cuda_arch_list()
        if arch_list:
            os.environ["TORCH_CUDA_ARCH_LIST"] = arch_list
    kwargs["extra_compile_args"]["cxx"].append("-DTORCH_MLSGD_WITH_CUDA")
    kwargs["extra_compile_args"]["nvcc"] = ["-O3", "-std=c++17", "-DTORCH_MLSGD_WITH_CUDA"]
    kwargs["libraries"] = ["cufft"]
    return CUDAExtension(**kwargs)


class BuildExtensionWithInfo(BuildExtension):
    """BuildExtension that also writes torch_mlsgd/_build_info.py beside the
    extension: the torch it was built against, which the package checks before it
    loads _C (loading an extension into another torch can crash the process
    before any check inside it runs)."""

    def run(self):
        super().run()
        package = os.path.join(ROOT if self.inplace else self.build_lib, "torch_mlsgd")
        os.makedirs(package, exist_ok=True)
        with open(os.path.join(package, "_build_info.py"), "w") as f:
            f.write('"""Written by setup.py when the extension was built."""\n\n'
                    f"torch_version = {str(torch.__version__)!r}\n")


setup(
    name="torch_mlsgd",
    version=version(),
    description="Laplacian-smoothing gradient descent (LSGD, mLSGD) optimizers for PyTorch",
    packages=["torch_mlsgd"],
    # The compiled extension loads only into the torch it was built against.
    install_requires=[f"torch=={TORCH_MAJOR_MINOR}.*"],
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtensionWithInfo},
    python_requires=">=3.8",
)
