"""Builds the Python extension torch_mlsgd._C from the sources in csrc/.

    python3 setup.py build_ext --inplace        # what `make build` runs
    python3 -m pip install --no-build-isolation .

No package index is needed: the only build requirement is the torch the
extension will run with, which must already be importable.
"""

import glob
import os

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension, include_paths

ROOT = os.path.dirname(os.path.abspath(__file__))


def sources():
    patterns = ["csrc/core/*.cpp", "csrc/ops/*.cpp", "csrc/ops/cpu/*.cpp", "csrc/python/*.cpp"]
    return sorted(f for p in patterns for f in glob.glob(os.path.join(ROOT, p)))


def headers():
    return sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*.h"), recursive=True))


def system_includes():
    # torch's headers as system headers: -Wall -Wextra then reports our code only
    # (gcc ignores a -I directory that is also given with -isystem).
    return [flag for path in include_paths() for flag in ("-isystem", path)]


def extension():
    return CppExtension(
        name="torch_mlsgd._C",
        sources=[os.path.relpath(s, ROOT) for s in sources()],
        depends=[os.path.relpath(h, ROOT) for h in headers()],
        include_dirs=[os.path.join(ROOT, "csrc"), os.path.join(ROOT, "csrc", "include")],
        extra_compile_args={"cxx": ["-O3", "-std=c++17", "-fopenmp", "-Wall", "-Wextra"] + system_includes()},
        extra_link_args=["-fopenmp"],
    )


setup(
    name="torch_mlsgd",
    version="0.1.0",
    description="Laplacian-smoothing gradient descent (LSGD, mLSGD) optimizers for PyTorch",
    packages=["torch_mlsgd"],
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension},
    python_requires=">=3.8",
)
