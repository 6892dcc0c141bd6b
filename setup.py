"""Builds the Python extension torch_mlsgd._C from the sources in csrc/.

    python3 setup.py build_ext --inplace        # what `make build` runs
    python3 -m pip install --no-build-isolation .

No package index is needed: the only build requirement is the torch the
extension will run with, which must already be importable. When that torch has
CUDA and nvcc is found (CUDA_HOME), the extension is a CUDAExtension holding the
CUDA kernels too (TORCH_MLSGD_CUDA=0 turns them off; TORCH_CUDA_ARCH_LIST picks
the GPU architectures, as for any torch extension); otherwise a CppExtension.
"""

import glob
import os

from setuptools import setup
import torch
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension, include_paths

ROOT = os.path.dirname(os.path.abspath(__file__))


def with_cuda():
    return torch.version.cuda is not None and CUDA_HOME is not None and os.environ.get("TORCH_MLSGD_CUDA", "1") != "0"


def sources(cuda):
    patterns = ["csrc/core/*.cpp", "csrc/ops/*.cpp", "csrc/ops/cpu/*.cpp", "csrc/python/*.cpp"]
    if cuda:
        patterns += ["csrc/cuda/kernels/*.cu", "csrc/ops/cuda/*.cpp"]
    return sorted(f for p in patterns for f in glob.glob(os.path.join(ROOT, p)))


def headers():
    return sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*.h"), recursive=True))


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
        extra_compile_args={"cxx": ["-O3", "-std=c++17", "-fopenmp", "-Wall", "-Wextra"] + system_includes()},
        extra_link_args=["-fopenmp"],
    )
    if not cuda:
        return CppExtension(**kwargs)
    kwargs["extra_compile_args"]["cxx"].append("-DTORCH_MLSGD_WITH_CUDA")
    kwargs["extra_compile_args"]["nvcc"] = ["-O3", "-std=c++17", "-DTORCH_MLSGD_WITH_CUDA"]
    kwargs["libraries"] = ["cufft"]
    return CUDAExtension(**kwargs)


setup(
    name="torch_mlsgd",
    version="0.1.0",
    description="Laplacian-smoothing gradient descent (LSGD, mLSGD) optimizers for PyTorch",
    packages=["torch_mlsgd"],
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension},
    python_requires=">=3.8",
)
