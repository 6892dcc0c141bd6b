"""The LibTorch optimizers (tests/cpp/optimizer_trajectory) and the Python ones take the same steps."""

import os
import subprocess

import numpy as np
import pytest
import torch

from torch_mlsgd import LSGD, MLSGD

BINARY = os.environ.get("MLSGD_TRAJECTORY_BIN", "")


def _binary():
    if not BINARY:
        pytest.skip("MLSGD_TRAJECTORY_BIN is not set (make test sets it to the CMake build's binary)")
    if not os.access(BINARY, os.X_OK):
        pytest.fail(f"MLSGD_TRAJECTORY_BIN={BINARY} is not an executable; build it with `make build-cpp`")
    return BINARY


LSGD_KEYS = ("lr", "sigma", "order", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "flatten",
             "backend")
CONFIGS = [
    ("lsgd", dict(lr=0.05, sigma=1.0, order=1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False,
                  maximize=False, flatten="tensor", backend="auto")),
    ("lsgd", dict(lr=0.02, sigma=3.0, order=2, momentum=0.8, dampening=0.0, weight_decay=0.05, nesterov=True,
                  maximize=True, flatten="group", backend="direct")),
    ("lsgd", dict(lr=0.1, sigma=0.5, order=3, momentum=0.5, dampening=0.2, weight_decay=0.0, nesterov=False,
                  maximize=False, flatten="tensor", backend="fft")),
    ("mlsgd", dict(lr=0.05, sigma=1.0, order=1, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=False,
                   maximize=False, flatten="tensor", backend="auto", schedule="random", seed=7)),
    ("mlsgd", dict(lr=0.05, sigma=2.0, order=2, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                   maximize=False, flatten="group", backend="auto", schedule="cyclic", seed=0)),
]


def python_trajectory(kind, config, steps):
    params = []
    for k, shape in enumerate([(5, 4), (7,), (1,)]):
        n = int(np.prod(shape))
        i = torch.arange(n, dtype=torch.float64)
        params.append(torch.sin(i * 0.7 + k).reshape(shape).requires_grad_())
    optimizer = (LSGD if kind == "lsgd" else MLSGD)(params, **config)
    for _ in range(steps):
        for p in params:
            value = p.detach()
            p.grad = torch.sin(3.0 * value) + 0.5 * value
        optimizer.step()
    return np.concatenate([p.detach().reshape(-1).numpy() for p in params])


def _arg(value):
    return str(int(value)) if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("kind, config", CONFIGS,
                         ids=["lsgd-plain", "lsgd-group-nesterov-maximize", "lsgd-order3-fft", "mlsgd-random",
                              "mlsgd-cyclic-group"])
def test_cpp_and_python_agree(kind, config):
    steps = 7
    args = [kind] + [_arg(config[k]) for k in LSGD_KEYS] + [str(steps)]
    if kind == "mlsgd":
        args += [config["schedule"], str(config["seed"])]
    result = subprocess.run([_binary(), *args], capture_output=True, text=True, check=True)
    cpp = np.array([float(line) for line in result.stdout.split()])
    python = python_trajectory(kind, config, steps)
    assert cpp.shape == python.shape
    np.testing.assert_allclose(cpp, python, rtol=1e-13, atol=1e-13)
    # The steps are not trivial: the parameters moved.
    assert np.abs(python - python_trajectory(kind, config, 0)).max() > 1e-2
