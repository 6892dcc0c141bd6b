"""tools/gpu_check.sh on a machine without a GPU: its dry run, its refusal to run without
a device, a failing step's exit status, and the pytest selection it runs on the GPU.

A lent GPU machine may run the script once; these tests keep it from breaking unseen."""

import os
import stat
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "gpu_check.sh")
GTEST_SOURCE = "/usr/src/googletest"  # libgtest-dev (make deps); `make gpu-stage` copies it to .gpu/
STEPS = ["build kernel tests", "build extension", "CUDA kernel tests", "pytest CUDA cases", "CUDA benchmark"]


def run_script(tmp_path, *args, python=sys.executable, **env):
    out = tmp_path / "out"
    environment = {**os.environ, "OUT": str(out), "GTEST_SOURCE": GTEST_SOURCE, "PYTHON": python, **env}
    start = time.monotonic()
    result = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=environment, timeout=120)
    return result, time.monotonic() - start, out


def test_dry_run_checks_and_prints_the_plan(tmp_path):
    result, seconds, out = run_script(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (out / "summary.txt").read_text()
    for name in STEPS:
        assert f"=== {name}" in result.stdout
        assert name in summary
    assert "setup.py -q build_ext --inplace" in result.stdout
    assert "-k cuda" in result.stdout and "bench_cuda.py --quick" in result.stdout
    assert seconds < 30


def test_without_a_device_it_fails_at_once_and_says_why(tmp_path):
    result, seconds, out = run_script(tmp_path, CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 2
    assert "no CUDA device" in result.stdout
    assert "nothing was run" in result.stdout and "=== build" not in result.stdout
    assert (out / "summary.txt").read_text().strip() == "no CUDA device"
    assert seconds < 60


def test_missing_googletest_sources_stop_it_before_anything_runs(tmp_path):
    result, _, _ = run_script(tmp_path, "--dry-run", GTEST_SOURCE=str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "make gpu-stage" in result.stderr


def test_bad_arguments_are_refused(tmp_path):
    result, _, _ = run_script(tmp_path, "--bogus")
    assert result.returncode == 64 and "usage" in result.stderr


def test_any_failing_step_makes_it_exit_non_zero(tmp_path):
    """The script once exited 0 whatever failed (the status never left a `| tee`
    subshell): with a device reported but every tool failing, it must exit 1 and
    name every failed step."""
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/bash\n"
                    "if [ \"$1\" = -c ]; then echo 'Fake GPU 90 2.x 13.0'; exit 0; fi\n"
                    "exit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result, seconds, out = run_script(tmp_path, python=str(fake), NVCC="/bin/false",
                                      GPU_CHECK_BUILD=str(tmp_path / "build"), GPU_CHECK_SKIP_BENCH="0")
    assert result.returncode == 1, result.stdout + result.stderr
    summary = (out / "summary.txt").read_text()
    for name in STEPS:
        assert name in summary and "FAILED" in summary.split(name, 1)[1].splitlines()[0], summary
    assert "5 step(s) failed" in result.stdout
    assert (out / "gpu_check.log").read_text().count("===") >= len(STEPS)
    assert seconds < 60


def test_the_pytest_selection_holds_every_cuda_test():
    """`-k cuda` (what the script runs) selects every test of test_cuda.py and the CUDA
    cases of the other files."""
    def collect(*args):
        result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                 *args], capture_output=True, text=True, cwd=os.getcwd(), timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return {line.split("::", 1)[1] if "::" in line else line
                for line in result.stdout.splitlines() if "::" in line}

    tests = os.path.join(ROOT, "tests", "python")
    selected = collect("-k", "cuda", tests)
    every_cuda_file_test = collect(os.path.join(tests, "test_cuda.py"))
    assert every_cuda_file_test and every_cuda_file_test <= selected
    assert "test_checkpoint_moves_between_cpu_and_cuda" in selected


def test_the_script_is_executable():
    assert os.stat(SCRIPT).st_mode & stat.S_IXUSR
