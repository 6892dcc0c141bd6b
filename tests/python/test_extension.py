"""The import-time checks of the compiled ops, which CUDA kernels load, and the
version's single source."""

import importlib
import os
import re

import pytest
import torch

import torch_mlsgd
from torch_mlsgd import _build_info, _extension

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _supported_torches():
    """The torch pins of requirements/torch.txt: (floor, newest)."""
    with open(os.path.join(ROOT, "requirements", "torch.txt")) as f:
        pins = re.findall(r"^torch==([0-9.]+)", f.read(), flags=re.M)
    return pins


def test_version_matches_the_cpp_header():
    with open(os.path.join(ROOT, "csrc", "include", "torch_mlsgd", "version.h")) as f:
        header = re.search(r'#define TORCH_MLSGD_VERSION "([0-9.]+)"', f.read()).group(1)
    assert torch_mlsgd.__version__ == header


def test_floor_is_the_oldest_torch_the_suite_runs():
    floor, newest = _supported_torches()
    assert torch_mlsgd.TORCH_FLOOR == ".".join(floor.split(".")[:2])
    assert tuple(map(int, floor.split("."))) < tuple(map(int, newest.split(".")))
    assert torch.__version__.split("+")[0] in (floor, newest)


def test_older_torch_is_refused_naming_the_floor(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.10.1+cu130")
    try:
        with pytest.raises(ImportError, match=rf"needs torch >= {re.escape(_extension.TORCH_FLOOR)}.*2\.10\.1"):
            importlib.reload(_extension)
    finally:
        monkeypatch.undo()
        importlib.reload(_extension)


def _has_kernel(op, key):
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"mlsgd::{op}", key)


def test_cpu_kernels_of_every_op_are_registered():
    for op in ("laplacian_smooth", "laplacian_smooth_", "laplacian_smooth_shard", "lsgd_step_"):
        assert _has_kernel(op, "CPU"), op


def test_cuda_kernels_load_exactly_into_a_torch_with_cuda():
    # PyPI's Linux torch is a CUDA build, GPU or not: the wheel's CUDA library
    # loads into it (and registers its kernels) on this GPU-less machine too.
    expected = torch.version.cuda is not None and _build_info.cuda_version is not None
    assert torch_mlsgd.CUDA_KERNELS == expected
    for op in ("laplacian_smooth", "laplacian_smooth_", "lsgd_step_"):
        assert _has_kernel(op, "CUDA") == expected, op


def test_cuda_kernels_of_another_cuda_major_are_not_loaded(monkeypatch):
    if _build_info.cuda_version is None:
        pytest.skip("this build has no CUDA kernels")
    monkeypatch.setattr(torch.version, "cuda", "99.0")
    try:
        with pytest.warns(UserWarning, match=r"built with CUDA .* torch runs CUDA 99\.0"):
            assert importlib.reload(_extension).CUDA_KERNELS is False
    finally:
        monkeypatch.undo()
        importlib.reload(_extension)


def test_cpu_only_torch_loads_no_cuda_kernels(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    try:
        assert importlib.reload(_extension).CUDA_KERNELS is False
    finally:
        monkeypatch.undo()
        importlib.reload(_extension)
