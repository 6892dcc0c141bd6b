"""Both CPU kernel paths, vectorised and portable, against float64 references.

Each runs in a fresh process: the choice between them is made once per process,
from the CPU and TORCH_MLSGD_DISABLE_SIMD.
"""

import json
import os
import subprocess
import sys

import pytest

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_paths_probe.py")


def run_probe(disable_simd: bool):
    env = dict(os.environ)
    env.pop("TORCH_MLSGD_DISABLE_SIMD", None)
    if disable_simd:
        env["TORCH_MLSGD_DISABLE_SIMD"] = "1"
    out = subprocess.run([sys.executable, PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reports():
    return {"default": run_probe(False), "portable": run_probe(True)}


def test_the_environment_variable_selects_the_portable_kernels(reports):
    assert reports["portable"]["kernels"] == "portable"
    assert reports["default"]["kernels"] in ("avx2", "portable")


@pytest.mark.parametrize("path", ["default", "portable"])
def test_smoothing_is_accurate_on_every_path(reports, path):
    assert reports[path]["smooth"]["float64"] < 1e-10
    assert reports[path]["smooth"]["float32"] < 1e-5


@pytest.mark.parametrize("path", ["default", "portable"])
def test_fused_step_is_accurate_on_every_path(reports, path):
    assert reports[path]["step"]["float64"] < 1e-10
    assert reports[path]["step"]["float32"] < 1e-5
