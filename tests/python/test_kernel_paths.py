"""Both CPU kernel paths, vectorised and portable, against float64 references.

Each runs in a fresh process: the choice between them is made once per process,
from the CPU and TORCH_MLSGD_DISABLE_SIMD.
"""

import json
import os
import platform
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


def cpu_flags():
    """The flags of /proc/cpuinfo's first processor, or None where there is no such file."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return set()


def test_the_environment_variable_selects_the_portable_kernels(reports):
    assert reports["portable"]["kernels"] == "portable"
    assert reports["default"]["kernels"] in ("avx2", "portable")


def test_an_avx2_cpu_runs_the_avx2_kernels(reports):
    """On an x86-64 CPU with AVX2 and FMA the run-time choice must take the vectorised
    kernels (docs/performance.md): a build without them, or a broken CPU check, would
    otherwise pass every other test here on the portable path."""
    flags = cpu_flags()
    if flags is None or platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("needs an x86-64 CPU whose flags /proc/cpuinfo lists")
    expected = "avx2" if {"avx2", "fma"} <= flags else "portable"
    assert reports["default"]["kernels"] == expected, sorted(flags & {"avx", "avx2", "fma"})


@pytest.mark.parametrize("path", ["default", "portable"])
def test_smoothing_is_accurate_on_every_path(reports, path):
    assert reports[path]["smooth"]["float64"] < 1e-10
    assert reports[path]["smooth"]["float32"] < 1e-5


@pytest.mark.parametrize("path", ["default", "portable"])
def test_fused_step_is_accurate_on_every_path(reports, path):
    assert reports[path]["step"]["float64"] < 1e-10
    assert reports[path]["step"]["float32"] < 1e-5
