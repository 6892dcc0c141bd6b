"""torch_mlsgd.MLSGD: schedules, steps, state, checkpoints, errors."""

import copy
import io
import math

import numpy as np
import pytest
import torch

from torch_mlsgd import LSGD, MLSGD, SCHEDULES, scheduled_sigma

from reference import ReferenceLSGD


def make_params(dtype=torch.float64):
    g = torch.Generator().manual_seed(4)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in ((40, 30), (17,), (1,))]


def gradient_of(p):
    return torch.sin(3.0 * p) + 0.5 * p


def test_schedule_formulas():
    for k in (0, 1, 9, 10, 123):
        assert scheduled_sigma(k, schedule="constant", sigma=2.0) == 2.0
        assert math.isclose(scheduled_sigma(k, schedule="decay", sigma=2.0, period=10), 2.0 / (1 + k / 10))
        assert math.isclose(scheduled_sigma(k, schedule="growth", sigma=2.0, period=10), 2.0 * (1 + k / 10))
        assert math.isclose(scheduled_sigma(k, schedule="cyclic", sigma_min=1.0, sigma_max=4.0, period=10),
                            1.0 + 3.0 * (k % 10) / 9)
    draws = np.array([scheduled_sigma(k, sigma=1.5) for k in range(5000)])
    assert draws.min() >= 0.0 and draws.max() < 3.0  # sigma_max defaults to 2 * sigma
    assert abs(draws.mean() - 1.5) < 0.05 and abs(draws.std() - 3.0 / math.sqrt(12)) < 0.05
    assert scheduled_sigma(77, seed=3) == scheduled_sigma(77, seed=3) != scheduled_sigma(77, seed=4)
    assert set(SCHEDULES) == {"random", "cyclic", "constant", "decay", "growth"}


@pytest.mark.parametrize("schedule", ["random", "cyclic", "decay", "growth"])
@pytest.mark.parametrize("flatten", ["tensor", "group"])
def test_each_step_is_an_lsgd_step_with_the_scheduled_sigma(schedule, flatten):
    params = make_params()
    kwargs = dict(schedule=schedule, period=3, seed=2)
    optimizer = MLSGD(params, lr=0.05, momentum=0.9, flatten=flatten, **kwargs)
    reference = [ReferenceLSGD([p.detach().numpy()], lr=0.05, momentum=0.9) for p in params]
    group_reference = ReferenceLSGD([p.detach().numpy() for p in params], lr=0.05, momentum=0.9, flatten="group")
    for k in range(5):
        grads = [gradient_of(p.detach()) for p in params]
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        sigma_k = scheduled_sigma(k, **kwargs)
        if flatten == "group":
            group_reference.h["sigma"] = sigma_k
            group_reference.step([g.numpy() for g in grads])
        else:
            for r, g in zip(reference, grads):
                r.h["sigma"] = sigma_k
                r.step([g.numpy()])
    expected = group_reference.params if flatten == "group" else [r.params[0] for r in reference]
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-11, atol=1e-11)
    assert all(optimizer.state[p]["step"] == 5 for p in params)


def test_parameters_count_their_own_steps():
    a = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    optimizer = MLSGD([a, b], lr=0.1)
    a.grad = torch.ones(50, dtype=torch.float64)
    optimizer.step()  # b has no gradient: skipped, its count stays 0
    b.grad = torch.ones(50, dtype=torch.float64)
    optimizer.step()
    assert optimizer.state[a]["step"] == 2 and optimizer.state[b]["step"] == 1
    # b's first step used sigma_0, a's second sigma_1: both are plain LSGD steps.
    ref_b = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    lsgd = LSGD([ref_b], lr=0.1, sigma=scheduled_sigma(0))
    ref_b.grad = torch.ones(50, dtype=torch.float64)
    lsgd.step()
    assert torch.equal(b, ref_b)


def test_constant_schedule_is_lsgd():
    params, lsgd_params = make_params(), make_params()
    mlsgd = MLSGD(params, lr=0.05, sigma=1.5, momentum=0.9, nesterov=True, schedule="constant")
    lsgd = LSGD(lsgd_params, lr=0.05, sigma=1.5, momentum=0.9, nesterov=True)
    for _ in range(4):
        for p, q in zip(params, lsgd_params):
            p.grad, q.grad = gradient_of(p.detach()), gradient_of(q.detach())
        mlsgd.step()
        lsgd.step()
    assert all(torch.equal(p, q) for p, q in zip(params, lsgd_params))


def test_checkpoint_resumes_the_same_sequence():
    params = make_params()
    optimizer = MLSGD(params, lr=0.05, momentum=0.9, seed=11, sigma_max=3.0)

    def run(ps, opt, steps):
        for _ in range(steps):
            for p in ps:
                p.grad = gradient_of(p.detach())
            opt.step()

    run(params, optimizer, 3)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer)
    resumed_params = [p.clone().requires_grad_() for p in checkpoint["params"]]
    resumed = MLSGD(resumed_params, lr=9.0)
    resumed.load_state_dict(checkpoint["optimizer"])
    assert resumed.param_groups[0]["seed"] == 11 and resumed.param_groups[0]["sigma_max"] == 3.0
    run(params, optimizer, 3)
    run(resumed_params, resumed, 3)
    assert all(torch.equal(p, q) for p, q in zip(params, resumed_params))
    # The step counter is an int64 tensor, as torch.optim keeps "step" (0.1 kept an int).
    assert all(resumed.state[p]["step"].dtype == torch.int64 and int(resumed.state[p]["step"]) == 6
               for p in resumed_params)


def test_checkpoint_with_integer_steps_resumes():
    # torch_mlsgd 0.1 saved state["step"] as a Python int.
    params = make_params()
    optimizer = MLSGD(params, lr=0.05, momentum=0.9, seed=5)
    for _ in range(2):
        for p in params:
            p.grad = gradient_of(p.detach())
        optimizer.step()
    saved = optimizer.state_dict()
    old = copy.deepcopy(saved)
    for state in old["state"].values():
        state["step"] = int(state["step"])
    resumed_params = [p.detach().clone().requires_grad_() for p in params]
    resumed = MLSGD(resumed_params, lr=0.05)
    resumed.load_state_dict(old)
    for _ in range(2):
        for p, q in zip(params, resumed_params):
            p.grad = gradient_of(p.detach())
            q.grad = gradient_of(q.detach())
        optimizer.step()
        resumed.step()
    assert all(torch.equal(p, q) for p, q in zip(params, resumed_params))
    assert all(torch.is_tensor(resumed.state[q]["step"]) for q in resumed_params)


def test_old_state_dict_without_schedule_keys_loads():
    optimizer = MLSGD(make_params(), lr=0.1)
    groups = copy.deepcopy(optimizer.state_dict()["param_groups"])
    for key in ("schedule", "sigma_min", "sigma_max", "period", "seed"):
        del groups[0][key]
    fresh = MLSGD(make_params(), lr=0.1)
    fresh.__setstate__({"state": {}, "param_groups": groups})
    assert fresh.param_groups[0]["schedule"] == "random" and fresh.param_groups[0]["period"] == 100


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(schedule="noisy"), ValueError, "Invalid schedule: 'noisy'"),
        (dict(sigma_min=-1.0), ValueError, "Invalid sigma_min value: -1"),
        (dict(sigma_min=3.0, sigma_max=1.0), ValueError, "Invalid sigma_max value: 1"),
        (dict(period=0), ValueError, "Invalid period value: 0"),
        (dict(seed=-2), ValueError, "Invalid seed value: -2"),
        (dict(period=2.5), TypeError, "period must be an integer"),
        (dict(sigma=-1.0), ValueError, "Invalid sigma value: -1.0"),
    ],
)
def test_bad_arguments_raise(kwargs, error, words):
    with pytest.raises(error, match=words):
        MLSGD(make_params(), lr=0.1, **kwargs)


def test_leaves_a_saddle_that_gd_converges_to():
    # f(x) = sum(h x^2) / 2 + sum(x^4) / 4 with one negative h: a strict saddle at 0.
    # Started on GD's attracting manifold (here: x_j = 0 at the negative coordinate),
    # GD converges to the saddle; MLSGD leaves it and reaches a minimum (f < 0).
    n, j = 12, 5
    h = torch.ones(n, dtype=torch.float64)
    h[j] = -1.0

    def f(x):
        return 0.5 * (h * x * x).sum() + 0.25 * (x ** 4).sum()

    x0 = torch.linspace(0.5, 1.5, n, dtype=torch.float64)
    x0[j] = 0.0
    results = {}
    for name, make in (("GD", lambda x: LSGD([x], lr=0.1, sigma=0.0)), ("MLSGD", lambda x: MLSGD([x], lr=0.1))):
        x = x0.clone().requires_grad_()
        optimizer = make(x)
        for _ in range(3000):
            optimizer.zero_grad()
            f(x).backward()
            optimizer.step()
        results[name] = f(x).item()
    assert abs(results["GD"]) < 1e-12  # stuck at the saddle, f = 0
    assert results["MLSGD"] < -0.2  # at a minimum: f = -1/4 there
