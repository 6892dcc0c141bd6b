"""Checkpoints of LSGD and MLSGD: a run saved and resumed continues bit for bit as the
uninterrupted run does, and a checkpoint loads into parameters of another dtype or device.

The formats of older releases are tested with each optimizer (test_lsgd.py,
test_mlsgd.py), and checkpoints crossing between torch versions in test_other_torch.py.
"""

import io

import pytest
import torch

from torch_mlsgd import LSGD, MLSGD

from stepping import step_side_by_side, train


def make_params():
    g = torch.Generator().manual_seed(11)
    return [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_()
            for s in ((40, 30), (5, 4), (17,), (7,), (1,), (3, 2, 2))]


RESUMED = [
    (LSGD, dict(lr=0.05, momentum=0.9, sigma=2.0)),
    (LSGD, dict(lr=0.05, momentum=0.9, nesterov=True, flatten="group")),
    (MLSGD, dict(lr=0.05, momentum=0.9, seed=11, sigma_max=3.0)),
]


@pytest.mark.parametrize("optimizer_class, config", RESUMED,
                         ids=[f"{c.__name__}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for c, kw in RESUMED])
def test_checkpoint_resumes_bit_for_bit(optimizer_class, config):
    """Saved after 3 steps with its parameters, loaded into an optimizer made with other
    hyper-parameters: the checkpoint's replace them, and 3 more steps equal the original
    run's bit for bit (for MLSGD: the same sigma sequence)."""
    params = make_params()
    optimizer = optimizer_class(params, **config)
    train(optimizer, params, 3)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer)
    resumed_params = [p.clone().requires_grad_() for p in checkpoint["params"]]
    resumed = optimizer_class(resumed_params, lr=123.0)
    resumed.load_state_dict(checkpoint["optimizer"])
    assert all(resumed.param_groups[0][key] == value for key, value in config.items())
    step_side_by_side(optimizer, resumed, params, resumed_params, 3)
    for p, q in zip(params, resumed_params):
        assert torch.equal(p, q)
    if optimizer_class is MLSGD:
        # The step counter is an int64 tensor, as torch.optim keeps "step" (0.1 kept an int).
        assert all(resumed.state[p]["step"].dtype == torch.int64 and int(resumed.state[p]["step"]) == 6
                   for p in resumed_params)


@pytest.mark.parametrize("optimizer_class", [LSGD, MLSGD])
@pytest.mark.parametrize("saved_dtype, loaded_dtype", [(torch.float64, torch.float32),
                                                       (torch.float32, torch.float64)])
def test_checkpoint_loads_into_another_dtype(optimizer_class, saved_dtype, loaded_dtype):
    params = [torch.randn(50, 20, dtype=saved_dtype, requires_grad=True)]
    optimizer = optimizer_class(params, lr=0.05, momentum=0.9)
    train(optimizer, params, 3)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    moved = [params[0].detach().to(loaded_dtype).requires_grad_()]
    resumed = optimizer_class(moved, lr=1.0)
    resumed.load_state_dict(torch.load(buffer))
    assert resumed.state[moved[0]]["momentum_buffer"].dtype == loaded_dtype
    step_side_by_side(optimizer, resumed, params, moved, 3)
    torch.testing.assert_close(moved[0].detach().double(), params[0].detach().double(), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_checkpoint_moves_between_cpu_and_cuda():
    params = [torch.randn(100, requires_grad=True)]
    optimizer = LSGD(params, lr=0.05, momentum=0.9)
    train(optimizer, params, 1)
    state = optimizer.state_dict()
    moved = [params[0].detach().cuda().requires_grad_()]
    resumed = LSGD(moved, lr=0.05, momentum=0.9)
    resumed.load_state_dict(state)
    assert resumed.state[moved[0]]["momentum_buffer"].is_cuda
    step_side_by_side(resumed, optimizer, moved, params, 1)
    torch.testing.assert_close(moved[0].detach().cpu(), params[0].detach(), rtol=1e-5, atol=1e-6)
