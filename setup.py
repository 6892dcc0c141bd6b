"""Builds torch_mlsgd's compiled ops on PyTorch's stable ABI (one wheel for every
torch from the floor below on, and, through CPython's limited API, which torch's
build helpers set to 3.10, for every CPython from 3.10 on):

    python3 -m pip wheel --no-build-isolation --no-deps .   # what `make wheel` runs
    python3 -m pip install --no-build-isolation .           # from source (docs/install.md)

Two libraries go into the package:

- ``torch_mlsgd/_C.abi3.so``: the Python module and the CPU kernels;
- ``torch_mlsgd/_C_cuda.abi3.so``: the CUDA kernels, built when the build's torch
  has CUDA and nvcc is found (CUDA_HOME); loaded at import only into a torch with
  CUDA. TORCH_MLSGD_CUDA=0 leaves it out. The GPU architectures are explicit
  (TORCH_CUDA_ARCH_LIST, by default CUDA_ARCHS below), never guessed from a GPU.

Both use torch's stable C++ API only, with TORCH_TARGET_VERSION at TORCH_FLOOR, so
the torch they are built against may be any release from the floor on. The build
needs that torch, setuptools and wheel already installed (hence
--no-build-isolation: isolation would download a fresh multi-GB torch to build).
"""

import glob
import os
import re
import subprocess

# setuptools before torch.utils.cpp_extension, as torch asks.
from setuptools import setup

# isort: split
import torch
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension, include_paths

ROOT = os.path.dirname(os.path.abspath(__file__))
# The oldest torch the ops run on: the stable ABI version the sources target.
TORCH_FLOOR = (2, 11)
TORCH_TARGET_VERSION = f"0x{TORCH_FLOOR[0]:02x}{TORCH_FLOOR[1]:02x}000000000000"
# sm_80 (A100), sm_90 (H100/H200), sm_100 (B200), and PTX for newer GPUs.
CUDA_ARCHS = "8.0;9.0;10.0+PTX"


def version():
    """The one version of the project: csrc/include/torch_mlsgd/version.h (CMake reads it too)."""
    with open(os.path.join(ROOT, "csrc", "include", "torch_mlsgd", "version.h")) as f:
        return re.search(r'#define TORCH_MLSGD_VERSION "([0-9.]+)"', f.read()).group(1)


def with_cuda():
    return torch.version.cuda is not None and CUDA_HOME is not None and os.environ.get("TORCH_MLSGD_CUDA", "1") != "0"


def nvcc_version():
    out = subprocess.run([os.path.join(CUDA_HOME, "bin", "nvcc"), "--version"], capture_output=True, text=True).stdout
    return re.search(r"release ([0-9]+\.[0-9]+)", out).group(1)


def glob_sources(*patterns):
    return sorted(os.path.relpath(f, ROOT) for p in patterns for f in glob.glob(os.path.join(ROOT, p)))


# Torch-free math and the helpers both libraries call (no op registration in them).
SHARED = ["csrc/core/*.cpp", "csrc/ops/smooth_args.cpp", "csrc/ops/*_step_common.cpp"]


def cpu_sources():
    ops = [s for s in glob_sources("csrc/ops/*.cpp") if s not in glob_sources(*SHARED)]
    return glob_sources(*SHARED, "csrc/ops/cpu/*.cpp", "csrc/python/*.cpp") + ops


def cuda_sources():
    return glob_sources(*SHARED, "csrc/cuda/kernels/*.cu", "csrc/ops/cuda/*.cpp")


def headers():
    return sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*.h"), recursive=True))


def system_includes():
    # torch's headers as system headers: -Wall -Wextra then reports our code only
    # (gcc ignores a -I directory that is also given with -isystem).
    return [flag for path in include_paths() for flag in ("-isystem", path)]


def common(name, sources):
    return dict(
        name=name,
        sources=sources,
        depends=[os.path.relpath(h, ROOT) for h in headers()],
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=[("TORCH_TARGET_VERSION", TORCH_TARGET_VERSION)],
        extra_compile_args={"cxx": ["-O3", "-Wall", "-Wextra", "-fvisibility=hidden"] + system_includes()},
        py_limited_api=True,
    )


def extensions():
    exts = [CppExtension(**common("torch_mlsgd._C", cpu_sources()))]
    if with_cuda():
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", CUDA_ARCHS)
        kwargs = common("torch_mlsgd._C_cuda", cuda_sources())
        kwargs["define_macros"].append(("USE_CUDA", "1"))
        kwargs["extra_compile_args"]["nvcc"] = ["-O3", "-std=c++17", f"-DTORCH_TARGET_VERSION={TORCH_TARGET_VERSION}"]
        kwargs["libraries"] = ["cufft"]
        exts.append(CUDAExtension(**kwargs))
    return exts


class BuildExtensionWithInfo(BuildExtension):
    """BuildExtension that also writes torch_mlsgd/_build_info.py: the torch floor
    and the CUDA release of _C_cuda (or None), which the package checks at import."""

    def run(self):
        super().run()
        package = os.path.join(ROOT if self.inplace else self.build_lib, "torch_mlsgd")
        os.makedirs(package, exist_ok=True)
        cuda = nvcc_version() if with_cuda() else None
        with open(os.path.join(package, "_build_info.py"), "w") as f:
            f.write('"""Written by setup.py when the extension was built."""\n\n'
                    f"torch_floor = {'.'.join(map(str, TORCH_FLOOR))!r}\n"
                    f"cuda_version = {cuda!r}\n"
                    f"cuda_archs = {os.environ.get('TORCH_CUDA_ARCH_LIST') if cuda else None!r}\n")


setup(
    name="torch_mlsgd",
    version=version(),
    description="Laplacian-smoothing gradient descent (LSGD, mLSGD) optimizers for PyTorch",
    packages=["torch_mlsgd"],
    install_requires=[f"torch>={TORCH_FLOOR[0]}.{TORCH_FLOOR[1]}"],
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExtensionWithInfo},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
    python_requires=">=3.10",
)
