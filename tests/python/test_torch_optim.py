"""torch 2.x integration: fake kernels, opcheck, torch.compile, and the torch.optim
machinery that 2.x users rely on (step and state-dict hooks, zero_grad's default,
lr schedulers, torch.amp.GradScaler on the CPU).

`make test` runs them against the oldest and the newest supported torch, and
tools/gpu_check.sh on a GPU machine.
"""

import math

import pytest
import torch

import torch_mlsgd

from reference import fft_smooth, reference_sigma


def _opcheck():
    return torch.library.opcheck


def devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices())
def test_opcheck_of_every_op(device):
    opcheck = _opcheck()
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(3, 700, device=device, dtype=dtype)
        opcheck(torch.ops.mlsgd.laplacian_smooth.default, (x, 1.0, 2, "direct"))
        opcheck(torch.ops.mlsgd.laplacian_smooth.default, (x, 1.0, 1, "fft"))
        opcheck(torch.ops.mlsgd.laplacian_smooth_.default, (x.clone(), 0.5, 1, "auto"))
        params = [torch.randn(50, device=device, dtype=dtype), torch.randn(4, 5, device=device, dtype=dtype)]
        grads = [torch.randn_like(p) for p in params]
        buffers = [torch.zeros_like(p) for p in params]
        opcheck(torch.ops.mlsgd.lsgd_step_.default,
                (params, grads, buffers, [True, True], 0.1, 1.0, 1, 0.9, 0.0, 0.0, False, False, "tensor", "auto"))
        opcheck(torch.ops.mlsgd.lsgd_step_.tensor,
                (params, grads, buffers, [False, False], torch.tensor(0.1), torch.tensor([1.0, 2.0], dtype=torch.float64),
                 1, 0.9, 0.0, 0.0, False, False, "tensor", "auto"))
        warmup = torch.ops.mlsgd.direct_warmup.default(1.0, 1, dtype)
        halos = [torch.randn(warmup + 3, device=device, dtype=dtype) for _ in range(2)]
        opcheck(torch.ops.mlsgd.laplacian_smooth_shard.default, (x[0], *halos, 1.0, 1))
        opcheck(torch.ops.mlsgd.direct_warmup.default, (1.0, 1, dtype))
        opcheck(torch.ops.mlsgd.check_direct_route.default, (x, 1.0, 2))
    opcheck(torch.ops.mlsgd.scheduled_sigma.default, ("random", 1.0, 0.0, None, 100, 0, 3))
    steps = [torch.tensor(k, dtype=torch.int64) for k in (0, 3, 2**40)]
    opcheck(torch.ops.mlsgd.scheduled_sigmas.default, (steps, "random", 1.0, 0.0, None, 100, 0))
    assert torch.ops.mlsgd.scheduled_sigmas(steps, "cyclic", 1.0, 0.0, 2.0, 10, 0).tolist() == [
        torch.ops.mlsgd.scheduled_sigma("cyclic", 1.0, 0.0, 2.0, 10, 0, k) for k in (0, 3, 2**40)]
    # opcheck's AOT test cannot compare string outputs; the other three apply.
    opcheck(torch.ops.mlsgd.cpu_kernels.default, (),
            test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


@pytest.mark.parametrize("device", devices())
def test_compiled_op_matches_eager(device):
    x = torch.randn(1000, device=device)
    compiled = torch.compile(lambda t: torch_mlsgd.laplacian_smooth(t, 1.0) * 2, fullgraph=True)
    torch.testing.assert_close(compiled(x), torch_mlsgd.laplacian_smooth(x, 1.0) * 2)


@pytest.mark.parametrize("optimizer_class", [torch_mlsgd.LSGD, torch_mlsgd.MLSGD])
def test_compiled_training_step_matches_eager(optimizer_class):
    def setup():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
        return model, optimizer_class(model.parameters(), lr=0.05, momentum=0.9)

    x, y = torch.randn(64, 10), torch.randn(64, 1)

    def step(model, optimizer):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    eager_model, eager_opt = setup()
    compiled_model, compiled_opt = setup()
    compiled_step = torch.compile(step)
    for _ in range(4):
        step(eager_model, eager_opt)
        compiled_step(compiled_model, compiled_opt)
    for a, b in zip(eager_model.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# What torch 2.x users rely on besides torch.compile: the torch.optim.Optimizer
# machinery (hooks, zero_grad, schedulers, GradScaler) working on LSGD and MLSGD.

OPTIMIZERS = [torch_mlsgd.LSGD, torch_mlsgd.MLSGD]


def _model_and_data(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    return model, torch.randn(32, 8), torch.randn(32, 2)


def _loss(model, x, y):
    return torch.nn.functional.mse_loss(model(x), y)


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_step_pre_and_post_hooks(optimizer_class):
    model, x, y = _model_and_data()
    optimizer = optimizer_class(model.parameters(), lr=0.1, momentum=0.9)
    calls = []

    def pre_hook(opt, args, kwargs):
        assert opt is optimizer
        calls.append("pre")
        # A pre-hook may edit the gradients the step then uses: zeroing them must
        # leave the parameters where they are on the first step.
        for p in model.parameters():
            p.grad.zero_()

    def post_hook(opt, args, kwargs):
        calls.append("post")

    pre = optimizer.register_step_pre_hook(pre_hook)
    post = optimizer.register_step_post_hook(post_hook)
    before = [p.detach().clone() for p in model.parameters()]
    _loss(model, x, y).backward()
    optimizer.step()
    assert calls == ["pre", "post"]
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)

    pre.remove()
    post.remove()
    optimizer.zero_grad()
    _loss(model, x, y).backward()
    optimizer.step()
    assert calls == ["pre", "post"]  # removed hooks stay silent
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_global_step_hooks_see_the_optimizer(optimizer_class):
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    model, x, y = _model_and_data()
    optimizer = optimizer_class(model.parameters(), lr=0.1)
    seen = []
    handles = [register_optimizer_step_pre_hook(lambda opt, a, k: seen.append(("pre", type(opt)))),
               register_optimizer_step_post_hook(lambda opt, a, k: seen.append(("post", type(opt))))]
    try:
        _loss(model, x, y).backward()
        optimizer.step()
    finally:
        for h in handles:
            h.remove()
    assert seen == [("pre", optimizer_class), ("post", optimizer_class)]


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_state_dict_hooks(optimizer_class):
    model, x, y = _model_and_data()
    optimizer = optimizer_class(model.parameters(), lr=0.1, momentum=0.9)
    _loss(model, x, y).backward()
    optimizer.step()

    events = []
    optimizer.register_state_dict_pre_hook(lambda opt: events.append("save pre"))

    def tag(opt, state_dict):
        events.append("save post")
        state_dict["saved_by"] = "hook"
        return state_dict

    optimizer.register_state_dict_post_hook(tag)
    saved = optimizer.state_dict()
    assert saved["saved_by"] == "hook" and events == ["save pre", "save post"]

    restored = optimizer_class(model.parameters(), lr=0.5)

    def untag(opt, state_dict):
        events.append("load pre")
        state_dict = dict(state_dict)
        assert state_dict.pop("saved_by") == "hook"
        return state_dict

    restored.register_load_state_dict_pre_hook(untag)
    restored.register_load_state_dict_post_hook(lambda opt: events.append("load post"))
    restored.load_state_dict(saved)
    assert events[2:] == ["load pre", "load post"]
    assert restored.param_groups[0]["lr"] == 0.1
    for p in model.parameters():
        assert torch.equal(restored.state[p]["momentum_buffer"], optimizer.state[p]["momentum_buffer"])


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_zero_grad_sets_gradients_to_none_by_default(optimizer_class):
    model, x, y = _model_and_data()
    optimizer = optimizer_class(model.parameters(), lr=0.1)
    _loss(model, x, y).backward()
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    _loss(model, x, y).backward()
    optimizer.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_grad_scaler_on_cpu(optimizer_class):
    scaled_model, x, y = _model_and_data()
    plain_model, _, _ = _model_and_data()
    scaled_opt = optimizer_class(scaled_model.parameters(), lr=0.1, momentum=0.9)
    plain_opt = optimizer_class(plain_model.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
    for _ in range(4):
        scaled_opt.zero_grad()
        scaler.scale(_loss(scaled_model, x, y)).backward()
        scaler.step(scaled_opt)
        scaler.update()
        plain_opt.zero_grad()
        _loss(plain_model, x, y).backward()
        plain_opt.step()
    # A power-of-two scale unscales exactly: the scaled run is the plain run.
    assert scaler.get_scale() == 2.0**12
    for a, b in zip(scaled_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)

    # A non-finite gradient: the step is skipped (parameters and state unchanged)
    # and the scale backs off.
    before = [p.detach().clone() for p in scaled_model.parameters()]
    buffers = [scaled_opt.state[p]["momentum_buffer"].clone() for p in scaled_model.parameters()]
    scaled_opt.zero_grad()
    scaler.scale(_loss(scaled_model, x, y)).backward()
    next(scaled_model.parameters()).grad[0, 0] = float("inf")
    scaler.step(scaled_opt)
    scaler.update()
    assert scaler.get_scale() == 2.0**11
    for p, b, m in zip(scaled_model.parameters(), before, buffers):
        assert torch.equal(p, b) and torch.equal(scaled_opt.state[p]["momentum_buffer"], m)


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_lr_schedulers(optimizer_class):
    """The schedulers set the lr sequence, and every step uses the lr set just before it:
    each parameter moves by exactly lr_k times the step's direction, the momentum buffer of
    the smoothed gradients recomputed here in float64 (reference.py's FFT, and MLSGD's sigma_k
    from reference.py's schedule), so that a step using a stale or cached lr fails."""
    import warnings

    model, x, y = _model_and_data()
    model, x, y = model.double(), x.double(), y.double()
    optimizer = optimizer_class(model.parameters(), lr=0.2, momentum=0.9)
    schedule = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.5, total_iters=2),
         torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)],
        milestones=[2])
    lrs = []
    buffers = [None] * len(list(model.parameters()))
    with warnings.catch_warnings():
        # e.g. "Detected call of lr_scheduler.step() before optimizer.step()"
        warnings.simplefilter("error")
        for k in range(6):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad()
            _loss(model, x, y).backward()
            before = [p.detach().clone() for p in model.parameters()]
            sigma = 1.0 if optimizer_class is torch_mlsgd.LSGD else reference_sigma(k)
            for i, p in enumerate(model.parameters()):
                smoothed = torch.from_numpy(fft_smooth(p.grad.numpy(), sigma, 1)).view_as(p)
                buffers[i] = smoothed if buffers[i] is None else 0.9 * buffers[i] + smoothed
            optimizer.step()
            for p, b, d in zip(model.parameters(), before, buffers):
                torch.testing.assert_close(b - p.detach(), lrs[-1] * d, rtol=1e-9, atol=1e-14)
            schedule.step()
    torch.testing.assert_close(torch.tensor(lrs), torch.tensor([0.1, 0.15, 0.2, 0.2 * (1 + math.cos(math.pi / 4)) / 2,
                                                                0.1, 0.2 * (1 + math.cos(3 * math.pi / 4)) / 2]),
                               rtol=1e-12, atol=1e-12)

    # The scheduler's state round-trips with the optimizer's.
    restored_opt = optimizer_class(model.parameters(), lr=0.2, momentum=0.9)
    restored_opt.load_state_dict(optimizer.state_dict())
    restored = torch.optim.lr_scheduler.SequentialLR(
        restored_opt,
        [torch.optim.lr_scheduler.LinearLR(restored_opt, start_factor=0.5, total_iters=2),
         torch.optim.lr_scheduler.CosineAnnealingLR(restored_opt, T_max=4)],
        milestones=[2])
    restored.load_state_dict(schedule.state_dict())
    assert restored.get_last_lr() == schedule.get_last_lr()


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_reduce_lr_on_plateau_changes_the_step(optimizer_class):
    params = [torch.nn.Parameter(torch.ones(10, dtype=torch.float64))]
    optimizer = optimizer_class(params, lr=1.0, sigma=0.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=0)
    for _ in range(2):
        params[0].grad = torch.ones(10, dtype=torch.float64)
        optimizer.step()
        plateau.step(1.0)  # no improvement after the first: lr drops to 0.1
    before = params[0].detach().clone()
    params[0].grad = torch.ones(10, dtype=torch.float64)
    optimizer.step()
    torch.testing.assert_close(before - params[0].detach(), torch.full((10,), 0.1, dtype=torch.float64))


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_compiled_model_with_eager_optimizer_step(optimizer_class):
    eager_model, x, y = _model_and_data()
    compiled_source, _, _ = _model_and_data()
    compiled_model = torch.compile(compiled_source)
    eager_opt = optimizer_class(eager_model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    compiled_opt = optimizer_class(compiled_model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for _ in range(5):
        for model, opt in ((eager_model, eager_opt), (compiled_model, compiled_opt)):
            opt.zero_grad()
            _loss(model, x, y).backward()
            opt.step()
    for a, b in zip(eager_model.parameters(), compiled_source.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # The compiled model's parameters are the original module's.
    assert all(a is b for a, b in zip(compiled_model.parameters(), compiled_source.parameters()))
