"""The other torch of the test matrix (the newest for the floor's run, and the
reverse): checkpoints cross between them, continuing as an uninterrupted run does,
and the very files of this installation (its compiled ops included) run in the
other torch too, as the stable ABI promises.

`make test` sets MLSGD_OTHER_TORCH to the command that runs the other torch's Python
(with torch_mlsgd importable there), so each leg of the matrix checks both
directions against itself.
"""

import os
import shlex
import shutil
import subprocess

import pytest
import torch

import checkpoint_worker as worker

OTHER = os.environ.get("MLSGD_OTHER_TORCH")
pytestmark = pytest.mark.skipif(not OTHER, reason="MLSGD_OTHER_TORCH is not set (make test sets it to the "
                                                   "other torch's Python)")
WORKER = os.path.abspath(worker.__file__)


def other_torch(*args):
    result = subprocess.run(shlex.split(OTHER) + [WORKER, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, f"the other torch failed:\n{result.stdout}\n{result.stderr}"


def test_this_installation_runs_in_the_other_torch(tmp_path):
    import torch_mlsgd

    # This installation's files (its compiled _C and _C_cuda included), first on
    # the other Python's path: the same binaries load there and agree with a
    # float64 FFT reference.
    shutil.copytree(os.path.dirname(torch_mlsgd.__file__), tmp_path / "torch_mlsgd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import torch, torch_mlsgd; assert torch_mlsgd.__file__.startswith(%r), torch_mlsgd.__file__; "
            "x = torch.randn(1000, dtype=torch.float64); k = torch.arange(1000, dtype=torch.float64); "
            "d = 1 + 2.0 * (2 * torch.sin(torch.pi * k / 1000)) ** 2; "
            "ref = torch.fft.ifft(torch.fft.fft(x) / d).real; "
            "out = torch_mlsgd.laplacian_smooth(x, 2.0, backend='direct'); "
            "assert (out - ref).abs().max() < 1e-12; print(torch.__version__)") % str(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), TORCH_MLSGD_USE_INSTALLED="1")
    result = subprocess.run(shlex.split(OTHER) + ["-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != torch.__version__


def uninterrupted(name, steps):
    model = worker.make_model()
    optimizer = worker.make_optimizer(name, model)
    worker.train(model, optimizer, 0, steps)
    return model, optimizer


def assert_same_run(model, optimizer, reference_model, reference_optimizer):
    # Float64 throughout; the torches' kernels may round differently in the
    # forward and backward passes, so equality is to a few ulps, not bits.
    for a, b in zip(model.parameters(), reference_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    for a, b in zip(model.parameters(), reference_model.parameters()):
        sa, sb = optimizer.state[a], reference_optimizer.state[b]
        assert sa.keys() == sb.keys()
        torch.testing.assert_close(sa["momentum_buffer"], sb["momentum_buffer"], rtol=1e-12, atol=1e-14)
        if "step" in sb:
            assert int(sa["step"]) == int(sb["step"])
    assert optimizer.param_groups[0].keys() == reference_optimizer.param_groups[0].keys()


@pytest.mark.parametrize("name", ["lsgd", "mlsgd"])
def test_resumes_a_checkpoint_of_the_other_torch(name, tmp_path):
    path = tmp_path / "other.pt"
    other_torch(name, 3, path)
    model, optimizer, done = worker.resume(name, str(path))
    assert done == 3
    worker.train(model, optimizer, done, 3)
    assert_same_run(model, optimizer, *uninterrupted(name, 6))


@pytest.mark.parametrize("name", ["lsgd", "mlsgd"])
def test_the_other_torch_resumes_a_checkpoint_of_this_one(name, tmp_path):
    model, optimizer = uninterrupted(name, 3)
    worker.save(str(tmp_path / "this.pt"), model, optimizer, 3)
    other_torch(name, 3, tmp_path / "other.pt", tmp_path / "this.pt")
    checkpoint = torch.load(str(tmp_path / "other.pt"))
    assert checkpoint["torch"] != torch.__version__ and checkpoint["steps"] == 6
    model, optimizer, _ = worker.resume(name, str(tmp_path / "other.pt"))
    assert_same_run(model, optimizer, *uninterrupted(name, 6))
