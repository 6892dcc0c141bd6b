"""Tensor hyper-parameters and torch.compile without recompiles (the torch-2 recipe):
lr and weight_decay as 0-dim Tensors in every implementation (lr updated in place by LR
schedulers), saved and loaded; a compiled step that recompiles nothing after its first
steps, for LSGD and MLSGD."""

import copy

import pytest
import torch
import torch._dynamo

from torch_mlsgd import LSGD, MLSGD, LSAdamW

IMPLEMENTATIONS = [dict(), dict(fused=False), dict(foreach=False), dict(fused=False, foreach=True)]


def make_params(dtype=torch.float32):
    g = torch.Generator().manual_seed(5)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in [(40, 30), (30,), (7, 3, 3)]]


def set_grads(params):
    for p in params:
        p.grad = torch.sin(3 * p.detach()) + 0.5 * p.detach()


def run(optimizer_class, lr, steps=5, scheduler=False, weight_decay=0.01, sigma=1.5, **kwargs):
    params = make_params()
    optimizer = optimizer_class(params, lr, 0.9, weight_decay=weight_decay, sigma=sigma, **kwargs)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 0.8 ** k) if scheduler else None
    for _ in range(steps):
        set_grads(params)
        optimizer.step()
        if schedule is not None:
            schedule.step()
    return params, optimizer


@pytest.mark.parametrize("optimizer_class", [LSGD, MLSGD])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS,
                         ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) or "default")
@pytest.mark.parametrize("scheduler", [False, True])
def test_tensor_lr_steps_as_the_float_does(optimizer_class, implementation, scheduler):
    """A 0-dim Tensor lr gives the float lr's steps bit for bit, with or without a
    scheduler updating it in place (the group keeps the same tensor). float64, so that it
    holds the float's value (a float32 tensor holds float32's nearest one, and is used as such)."""
    lr = torch.tensor(0.05, dtype=torch.float64)
    ours, optimizer = run(optimizer_class, lr, scheduler=scheduler, **implementation)
    theirs, _ = run(optimizer_class, 0.05, scheduler=scheduler, **implementation)
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
    assert optimizer.param_groups[0]["lr"] is lr
    if scheduler:
        assert lr.item() == pytest.approx(0.05 * 0.8 ** 5)


@pytest.mark.parametrize("optimizer_class", [LSGD, MLSGD])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS,
                         ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) or "default")
@pytest.mark.parametrize("sigma", [1.5, 0.0])
def test_tensor_weight_decay_steps_as_the_float_does(optimizer_class, implementation, sigma):
    """A 0-dim float64 Tensor weight_decay gives the float's steps bit for bit, smoothing
    or not (sigma=0 is torch's own SGD step, given the same values)."""
    decay = torch.tensor(0.01, dtype=torch.float64)
    ours, optimizer = run(optimizer_class, 0.05, weight_decay=decay, sigma=sigma, **implementation)
    theirs, _ = run(optimizer_class, 0.05, weight_decay=0.01, sigma=sigma, **implementation)
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
    assert optimizer.param_groups[0]["weight_decay"] is decay
    state = copy.deepcopy(optimizer.state_dict())
    resumed = optimizer_class(ours, 0.05, 0.9, weight_decay=0.5, sigma=sigma)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.param_groups[0]["weight_decay"], decay)


@pytest.mark.parametrize("sigma", [1.5, 0.0])
def test_a_one_element_weight_decay_of_any_shape(sigma):
    """A shape-(1,) weight_decay steps as the float, also where torch's SGD (sigma = 0)
    takes only 0-dim tensors."""
    ours, _ = run(LSGD, 0.05, weight_decay=torch.tensor([0.01], dtype=torch.float64), sigma=sigma)
    theirs, _ = run(LSGD, 0.05, weight_decay=0.01, sigma=sigma)
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs))


def test_the_step_is_differentiable_in_a_tensor_weight_decay():
    """With differentiable=True the step is a function of a weight_decay that requires
    grad: without momentum, w' = w - lr (S(g) + wd w), so d(sum w')/d wd = -lr sum(w)."""
    params = [p.detach().double().requires_grad_(False) for p in make_params()]
    for p in params:
        p.grad = torch.sin(3 * p)
    decay = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    optimizer = LSGD(params, 0.05, weight_decay=decay, sigma=1.5, differentiable=True)
    before = sum(p.sum() for p in params).item()
    optimizer.step()
    sum(p.sum() for p in params).backward()
    assert decay.grad.item() == pytest.approx(-0.05 * before, rel=1e-12)


def test_tensor_lr_is_saved_and_loaded():
    params, optimizer = run(LSGD, torch.tensor(0.05), scheduler=True)
    state = copy.deepcopy(optimizer.state_dict())
    assert isinstance(state["param_groups"][0]["lr"], torch.Tensor)
    resumed = LSGD(params, torch.tensor(0.5), 0.9, weight_decay=0.01, sigma=1.5)
    resumed.load_state_dict(state)
    assert isinstance(resumed.param_groups[0]["lr"], torch.Tensor)
    assert resumed.param_groups[0]["lr"].item() == optimizer.param_groups[0]["lr"].item()


@pytest.mark.parametrize("name, label", [("lr", "learning rate"), ("weight_decay", "weight_decay value")])
@pytest.mark.parametrize("value, error, words", [
    (torch.tensor(-0.1), ValueError, "Invalid {label}: -0.1"),
    (torch.tensor(float("nan")), ValueError, "Invalid {label}: nan"),
    (torch.tensor(float("inf")), ValueError, "Invalid {label}: inf"),
    (torch.tensor([0.1, 0.2]), ValueError, "Tensor {name} must be 1-element"),
    (torch.tensor(1), TypeError, "Tensor {name} must be floating-point"),
])
def test_a_bad_tensor_hyperparameter_gets_the_floats_error(name, label, value, error, words):
    words = words.format(name=name, label=label)
    hyper = dict(lr=torch.tensor(0.1), weight_decay=torch.tensor(0.01))
    for optimizer_class in (LSGD, MLSGD):
        with pytest.raises(error, match=words):
            optimizer_class(make_params(), momentum=0.9, **{**hyper, name: value})
    # Set after construction, or changed in place: refused at the step, nothing changes.
    params = make_params()
    optimizer = LSGD(params, momentum=0.9, **hyper)
    set_grads(params)
    optimizer.step()
    before = [p.detach().clone() for p in params]
    optimizer.param_groups[0][name] = value
    with pytest.raises(error, match=words):
        optimizer.step()
    if value.numel() == 1 and value.is_floating_point():
        optimizer.param_groups[0][name] = hyper[name]
        hyper[name].fill_(value.item())
        with pytest.raises(error, match=words):
            optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))


def test_an_lr_changed_in_place_to_a_bad_value_is_refused():
    params = make_params()
    lr = torch.tensor(0.1)
    optimizer = LSGD(params, lr)
    set_grads(params)
    optimizer.step()
    lr.fill_(-1.0)
    before = [p.detach().clone() for p in params]
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def train(model, x, optimizer, step, steps, scheduler=None):
    """`steps` training steps of `model` on `x` through `step`, the lr changing after each:
    by `scheduler`, or (without one) in place, as schedulers change it."""
    for _ in range(steps):
        for p in model.parameters():
            p.grad = None
        model(x).square().mean().backward()
        step()
        if scheduler is not None:
            scheduler.step()
        else:
            for group in optimizer.param_groups:
                group["lr"].mul_(0.95)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer_class", [LSGD, MLSGD, LSAdamW])
@pytest.mark.parametrize("scheduler", [False, True])
def test_compiled_step_recompiles_nothing(optimizer_class, scheduler, device):
    """torch's compiled-optimizer recipe (Tensor lr, fullgraph=False): after the first
    steps, 12 more steps with a changing lr (and, for MLSGD, a new sigma_k every step)
    recompile nothing, and the parameters equal eager ones. No graph break in the step;
    with a scheduler attached, torch's own wrapper of `step` (lr_scheduler.py, which
    dynamo skips) is one, as it is for torch.optim.SGD."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(device)
    eager_model = copy.deepcopy(model)
    x = torch.randn(32, 12, generator=torch.Generator().manual_seed(0)).to(device)

    def setup(m):
        momentum = {} if optimizer_class is LSAdamW else {"momentum": 0.9}
        optimizer = optimizer_class(m.parameters(), torch.tensor(0.05), sigma=1.0, **momentum)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 0.9 ** k) if scheduler else None
        return optimizer, schedule

    optimizer, schedule = setup(model)
    eager_optimizer, eager_schedule = setup(eager_model)
    compiled_step = torch.compile(optimizer.step, fullgraph=False)
    train(model, x, optimizer, compiled_step, 3, schedule)  # the first steps may compile (state appears)
    with torch._dynamo.config.patch(error_on_recompile=True):
        train(model, x, optimizer, compiled_step, 12, schedule)
    train(eager_model, x, eager_optimizer, eager_optimizer.step, 15, eager_schedule)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert optimizer.param_groups[0]["lr"].item() == eager_optimizer.param_groups[0]["lr"].item() < 0.05 * 0.6
    breaks = list(counters["graph_break"])
    if scheduler:
        assert all("lr_scheduler.py" in reason for reason in breaks), breaks
    else:
        assert not breaks, breaks


@pytest.mark.parametrize("device", DEVICES)
def test_mlsgd_switches_between_eager_and_compiled_steps(device):
    """Eager MLSGD keeps the counts of parameters stepped together as views of one
    tensor; compiled steps then take them as they are (recompiling nothing after their
    first steps), eager steps take the compiled ones' counts back, and the run equals an
    eager one exactly."""
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(device)
    eager_model = copy.deepcopy(model)
    x = torch.randn(32, 12, generator=torch.Generator().manual_seed(0)).to(device)
    optimizer = MLSGD(model.parameters(), torch.tensor(0.05), momentum=0.9)
    eager_optimizer = MLSGD(eager_model.parameters(), torch.tensor(0.05), momentum=0.9)
    train(model, x, optimizer, optimizer.step, 3)
    compiled_step = torch.compile(optimizer.step, fullgraph=False)
    train(model, x, optimizer, compiled_step, 3)
    with torch._dynamo.config.patch(error_on_recompile=True):
        train(model, x, optimizer, compiled_step, 9)
    train(model, x, optimizer, optimizer.step, 2)
    train(eager_model, x, eager_optimizer, eager_optimizer.step, 17)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
        assert optimizer.state[p]["step"].dtype == torch.int64 and int(optimizer.state[p]["step"]) == 17
