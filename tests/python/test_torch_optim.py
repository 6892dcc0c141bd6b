"""LSGD and MLSGD in the torch.optim.Optimizer machinery that torch 2.x users rely on:
step pre- and post-hooks (per optimizer and global), state-dict hooks, zero_grad's
default, and torch.amp.GradScaler on the CPU."""

import pytest
import torch

import torch_mlsgd

from stepping import mse, small_model_and_data

OPTIMIZERS = [torch_mlsgd.LSGD, torch_mlsgd.MLSGD]


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_step_pre_and_post_hooks(optimizer_class):
    model, x, y = small_model_and_data()
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
    mse(model, x, y).backward()
    optimizer.step()
    assert calls == ["pre", "post"]
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)

    pre.remove()
    post.remove()
    optimizer.zero_grad()
    mse(model, x, y).backward()
    optimizer.step()
    assert calls == ["pre", "post"]  # removed hooks stay silent
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_global_step_hooks_see_the_optimizer(optimizer_class):
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    model, x, y = small_model_and_data()
    optimizer = optimizer_class(model.parameters(), lr=0.1)
    seen = []
    handles = [register_optimizer_step_pre_hook(lambda opt, a, k: seen.append(("pre", type(opt)))),
               register_optimizer_step_post_hook(lambda opt, a, k: seen.append(("post", type(opt))))]
    try:
        mse(model, x, y).backward()
        optimizer.step()
    finally:
        for h in handles:
            h.remove()
    assert seen == [("pre", optimizer_class), ("post", optimizer_class)]


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_state_dict_hooks(optimizer_class):
    model, x, y = small_model_and_data()
    optimizer = optimizer_class(model.parameters(), lr=0.1, momentum=0.9)
    mse(model, x, y).backward()
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
    model, x, y = small_model_and_data()
    optimizer = optimizer_class(model.parameters(), lr=0.1)
    mse(model, x, y).backward()
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    mse(model, x, y).backward()
    optimizer.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_grad_scaler_on_cpu(optimizer_class):
    scaled_model, x, y = small_model_and_data()
    plain_model, _, _ = small_model_and_data()
    scaled_opt = optimizer_class(scaled_model.parameters(), lr=0.1, momentum=0.9)
    plain_opt = optimizer_class(plain_model.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
    for _ in range(4):
        scaled_opt.zero_grad()
        scaler.scale(mse(scaled_model, x, y)).backward()
        scaler.step(scaled_opt)
        scaler.update()
        plain_opt.zero_grad()
        mse(plain_model, x, y).backward()
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
    scaler.scale(mse(scaled_model, x, y)).backward()
    next(scaled_model.parameters()).grad[0, 0] = float("inf")
    scaler.step(scaled_opt)
    scaler.update()
    assert scaler.get_scale() == 2.0**11
    for p, b, m in zip(scaled_model.parameters(), before, buffers):
        assert torch.equal(p, b) and torch.equal(scaled_opt.state[p]["momentum_buffer"], m)
