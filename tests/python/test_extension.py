"""The import-time check of the compiled extension and the version's single source."""

import importlib
import os
import re
import sys
import types

import pytest
import torch

import torch_mlsgd
from torch_mlsgd import _extension

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_extension_reports_the_torch_it_was_built_against():
    built = torch_mlsgd._C.torch_version
    assert built.split(".")[:2] == torch.__version__.split("+")[0].split(".")[:2]


def test_version_matches_the_cpp_header():
    with open(os.path.join(ROOT, "csrc", "include", "torch_mlsgd", "version.h")) as f:
        header = re.search(r'#define TORCH_MLSGD_VERSION "([0-9.]+)"', f.read()).group(1)
    assert torch_mlsgd.__version__ == header


def _reload_with_fake_extension(monkeypatch, torch_version, cuda_version=""):
    fake = types.ModuleType("torch_mlsgd._C")
    fake.torch_version = torch_version
    fake.cuda_version = cuda_version
    monkeypatch.setitem(sys.modules, "torch_mlsgd._C", fake)
    monkeypatch.setattr(torch_mlsgd, "_C", fake, raising=False)
    return importlib.reload(_extension)


def test_mismatched_torch_is_refused_with_a_rebuild_hint(monkeypatch):
    try:
        with pytest.raises(ImportError, match=r"built against torch 0\.1\.0.*make build"):
            _reload_with_fake_extension(monkeypatch, "0.1.0")
    finally:
        monkeypatch.undo()
        importlib.reload(_extension)


def test_build_info_names_the_same_torch_as_the_extension():
    from torch_mlsgd import _build_info

    assert _build_info.torch_version.split("+")[0].split(".")[:2] == torch_mlsgd._C.torch_version.split(".")[:2]


def test_mismatch_is_refused_before_the_extension_is_loaded(monkeypatch):
    # Loading an extension built against another torch can abort the process, so
    # _build_info is checked first and _C must not even be imported.
    info = types.ModuleType("torch_mlsgd._build_info")
    info.torch_version = "0.9.0"
    monkeypatch.setitem(sys.modules, "torch_mlsgd._build_info", info)
    monkeypatch.delitem(sys.modules, "torch_mlsgd._C")
    monkeypatch.delattr(torch_mlsgd, "_C")
    monkeypatch.setattr(torch_mlsgd, "_build_info", info, raising=False)
    imported = []
    real_import = __import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 1 and fromlist and "_C" in fromlist:
            imported.append(name)
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr("builtins.__import__", guarded_import)
    try:
        with pytest.raises(ImportError, match=r"built against torch 0\.9\.0.*make build"):
            importlib.reload(_extension)
        assert imported == []
    finally:
        monkeypatch.undo()
        importlib.reload(_extension)


@pytest.mark.skipif(torch.version.cuda is not None, reason="needs a torch without CUDA")
def test_cuda_extension_on_cpu_torch_is_refused(monkeypatch):
    try:
        with pytest.raises(ImportError, match=r"built with CUDA 12\.4"):
            _reload_with_fake_extension(monkeypatch, torch.__version__, "12.4")
    finally:
        monkeypatch.undo()
        importlib.reload(_extension)


def test_cuda_torch_with_a_cpu_only_extension_warns(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    try:
        with pytest.warns(UserWarning, match="no CUDA kernels"):
            _reload_with_fake_extension(monkeypatch, torch.__version__, "")
    finally:
        monkeypatch.undo()
        importlib.reload(_extension)
