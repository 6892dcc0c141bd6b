"""GradScaler's fused-optimizer contract (_step_supports_amp_scaling): with fused=True
the steps take grad_scale and found_inf themselves, as torch's fused SGD and AdamW do. A scaled
run equals the unscaled one, the gradients stay as backward left them (no unscale
pass), and a step with inf/NaN changes nothing: parameters, buffers, moments, counts."""

import pytest
import torch

import torch_mlsgd

from stepping import mse, small_model_and_data

SCALE = 2.0**10  # a power of two: dividing S(g) by it is exact, so scaled runs equal plain ones bit for bit

OPTIMIZERS = {
    "LSGD": lambda params: torch_mlsgd.LSGD(params, lr=0.1, momentum=0.9, fused=True),
    "LSGD-group": lambda params: torch_mlsgd.LSGD(params, lr=0.1, momentum=0.9, flatten="group", fused=True),
    "LSGD-nesterov": lambda params: torch_mlsgd.LSGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2,
                                                     fused=True),
    "MLSGD": lambda params: torch_mlsgd.MLSGD(params, lr=0.1, momentum=0.9, fused=True),
    "LSAdamW": lambda params: torch_mlsgd.LSAdamW(params, lr=1e-2, fused=True),
    "LSAdamW-amsgrad": lambda params: torch_mlsgd.LSAdamW(params, lr=1e-2, amsgrad=True, maximize=True, fused=True),
}


def _state(optimizer, model):
    """Every tensor the optimizer keeps for the model's parameters, cloned."""
    return [{k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
            for p in model.parameters()]


def _assert_same_state(a, b):
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]) if torch.is_tensor(sa[key]) else sa[key] == sb[key], key


def _scaled_step(model, optimizer, scaler, x, y, poison=False):
    optimizer.zero_grad()
    scaler.scale(mse(model, x, y)).backward()
    if poison:
        next(model.parameters()).grad[0, 0] = float("nan")
    scaled = [p.grad.clone() for p in model.parameters()]
    scaler.step(optimizer)
    scaler.update()
    return scaled


def _plain_step(model, optimizer, x, y):
    optimizer.zero_grad()
    mse(model, x, y).backward()
    optimizer.step()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_scaled_run_equals_plain_run_and_skips_non_finite_steps(name):
    scaled_model, x, y = small_model_and_data()
    plain_model, _, _ = small_model_and_data()
    scaled_opt = OPTIMIZERS[name](scaled_model.parameters())
    plain_opt = OPTIMIZERS[name](plain_model.parameters())
    assert scaled_opt._step_supports_amp_scaling
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE, growth_interval=1000)

    # A first step with a NaN: skipped, and nothing is created or counted.
    before = [p.detach().clone() for p in scaled_model.parameters()]
    _scaled_step(scaled_model, scaled_opt, scaler, x, y, poison=True)
    assert scaler.get_scale() == SCALE / 2
    assert all(torch.equal(p, b) for p, b in zip(scaled_model.parameters(), before))

    for step in range(5):
        scaled = _scaled_step(scaled_model, scaled_opt, scaler, x, y, poison=step == 3)
        # The scaler did not unscale: the gradients are as backward left them.
        assert all(torch.allclose(p.grad, g, rtol=0, atol=0, equal_nan=True)
                   for p, g in zip(scaled_model.parameters(), scaled))
        if step != 3:
            _plain_step(plain_model, plain_opt, x, y)
        for a, b in zip(scaled_model.parameters(), plain_model.parameters()):
            assert torch.equal(a, b), (name, step)
        _assert_same_state(_state(scaled_opt, scaled_model), _state(plain_opt, plain_model))
    assert scaler.get_scale() == SCALE / 4


def test_sigma_zero_under_grad_scaler():
    """LSGD with sigma 0 steps through the kernel under GradScaler (a skipped first step
    leaves no momentum behind): torch's SGD without scaling, to rounding. LSAdamW with
    sigma 0 is torch's fused AdamW under the same scaler, bit for bit."""
    for ours, theirs, scaled_theirs in [
        (lambda params: torch_mlsgd.LSGD(params, lr=0.1, momentum=0.9, dampening=0.1, sigma=0.0, fused=True),
         lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, dampening=0.1), False),
        (lambda params: torch_mlsgd.LSAdamW(params, lr=1e-2, sigma=0.0, fused=True),
         lambda params: torch.optim.AdamW(params, lr=1e-2, fused=True), True),
    ]:
        our_model, x, y = small_model_and_data()
        their_model, _, _ = small_model_and_data()
        our_opt, their_opt = ours(our_model.parameters()), theirs(their_model.parameters())
        our_scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
        their_scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
        for step in range(5):
            poison = step in (0, 2)
            _scaled_step(our_model, our_opt, our_scaler, x, y, poison=poison)
            if scaled_theirs:
                _scaled_step(their_model, their_opt, their_scaler, x, y, poison=poison)
            elif not poison:
                _plain_step(their_model, their_opt, x, y)
            for a, b in zip(our_model.parameters(), their_model.parameters()):
                if scaled_theirs:
                    assert torch.equal(a, b), step
                else:
                    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dampening", [0.0, 0.5])
def test_a_skipped_first_step_creates_no_momentum(dampening):
    """A new momentum buffer starts from the first step that runs, with or without
    dampening (with it, LSGD reads found_inf before creating buffers)."""
    scaled_model, x, y = small_model_and_data()
    plain_model, _, _ = small_model_and_data()
    scaled_opt = torch_mlsgd.LSGD(scaled_model.parameters(), lr=0.1, momentum=0.9, dampening=dampening, fused=True)
    plain_opt = torch_mlsgd.LSGD(plain_model.parameters(), lr=0.1, momentum=0.9, dampening=dampening, fused=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    _scaled_step(scaled_model, scaled_opt, scaler, x, y, poison=True)
    for _ in range(3):
        _scaled_step(scaled_model, scaled_opt, scaler, x, y)
        _plain_step(plain_model, plain_opt, x, y)
    for a, b in zip(scaled_model.parameters(), plain_model.parameters()):
        assert torch.equal(a, b)
        assert torch.equal(scaled_opt.state[a]["momentum_buffer"], plain_opt.state[b]["momentum_buffer"])


def test_unscaled_before_the_step_is_taken_as_it_is():
    """scaler.unscale_ before step (to clip, say): GradScaler then hands found_inf only."""
    scaled_model, x, y = small_model_and_data()
    plain_model, _, _ = small_model_and_data()
    scaled_opt = torch_mlsgd.LSGD(scaled_model.parameters(), lr=0.1, momentum=0.9, fused=True)
    plain_opt = torch_mlsgd.LSGD(plain_model.parameters(), lr=0.1, momentum=0.9, fused=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    for _ in range(3):
        scaled_opt.zero_grad()
        scaler.scale(mse(scaled_model, x, y)).backward()
        scaler.unscale_(scaled_opt)
        scaler.step(scaled_opt)
        scaler.update()
        _plain_step(plain_model, plain_opt, x, y)
    for a, b in zip(scaled_model.parameters(), plain_model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("make", [
    lambda params: torch_mlsgd.LSGD(params),
    lambda params: torch_mlsgd.LSAdamW(params),
    lambda params: torch_mlsgd.LSGD(params, foreach=True),
    lambda params: torch_mlsgd.MLSGD(params, fused=False),
    lambda params: torch_mlsgd.LSAdamW(params, foreach=True),
    lambda params: torch_mlsgd.LSAdamW(params, fused=False),
])
def test_unfused_steps_leave_scaling_to_the_scaler(make):
    """Without fused=True (as for torch's optimizers) the step takes no grad_scale:
    GradScaler unscales first, and the scaled run still equals the plain one."""
    scaled_model, x, y = small_model_and_data()
    plain_model, _, _ = small_model_and_data()
    scaled_opt, plain_opt = make(scaled_model.parameters()), make(plain_model.parameters())
    assert not scaled_opt._step_supports_amp_scaling
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    for _ in range(3):
        _scaled_step(scaled_model, scaled_opt, scaler, x, y)
        _plain_step(plain_model, plain_opt, x, y)
    for a, b in zip(scaled_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_the_property_follows_the_groups():
    model, _, _ = small_model_and_data()
    optimizer = torch_mlsgd.LSGD(model.parameters(), fused=True)
    assert optimizer._step_supports_amp_scaling
    optimizer.param_groups[0]["fused"] = None
    assert not optimizer._step_supports_amp_scaling
    optimizer.param_groups[0]["fused"] = True
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(3))], "fused": False})
    assert not optimizer._step_supports_amp_scaling
    assert torch_mlsgd.MLSGD(model.parameters(), fused=True)._step_supports_amp_scaling
    assert torch_mlsgd.LSAdamW(model.parameters(), fused=True)._step_supports_amp_scaling
    assert not torch_mlsgd.LSAdamW(model.parameters())._step_supports_amp_scaling


@pytest.mark.parametrize("op", ["lsgd", "lsadamw"])
@pytest.mark.parametrize("grad_scale, found_inf, words", [
    (torch.tensor([2.0, 2.0]), None, "grad_scale must be a one-element float32 tensor"),
    (torch.tensor(2.0, dtype=torch.float64), None, "grad_scale must be a one-element float32 tensor"),
    (None, torch.tensor(0, dtype=torch.int32), "found_inf must be a one-element float32 tensor"),
])
def test_bad_scaling_tensors_are_refused_before_anything_changes(op, grad_scale, found_inf, words):
    p = torch.randn(64)
    g = torch.randn(64)
    before = p.clone()
    with pytest.raises(RuntimeError, match=words):
        if op == "lsgd":
            torch.ops.mlsgd.lsgd_step_(
                [p], [g], [], [], 0.1, 1.0, 1, 0.0, 0.0, 0.0, False, False, "tensor", "auto", grad_scale, found_inf)
        else:
            m, v, step = torch.zeros(64), torch.zeros(64), torch.ones(())
            torch.ops.mlsgd.lsadamw_step_([p], [g], [m], [v], [], [step], torch.tensor(1e-3), 0.9, 0.999, 0.01, 1e-8,
                                          False, False, 1.0, 1, "tensor", "auto", grad_scale, found_inf)
    assert torch.equal(p, before)


def test_the_op_divides_the_smoothed_gradient_and_leaves_the_gradient():
    """lsgd_step_ with grad_scale s on s * g equals it on g (S is linear), and g is not written."""
    torch.manual_seed(0)
    g = torch.randn(1000, dtype=torch.float64)
    p = torch.randn(1000, dtype=torch.float64)
    q = p.clone()
    scaled = g * 3.0
    kept = scaled.clone()
    torch.ops.mlsgd.lsgd_step_([p], [scaled], [], [], 0.1, 2.0, 1, 0.0, 0.0, 0.0, False, False, "tensor", "auto",
                               torch.tensor(3.0), torch.tensor(0.0))
    torch.ops.mlsgd.lsgd_step_([q], [g], [], [], 0.1, 2.0, 1, 0.0, 0.0, 0.0, False, False, "tensor", "auto")
    torch.testing.assert_close(p, q, rtol=1e-14, atol=1e-15)
    assert torch.equal(scaled, kept)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_parameters_are_unscaled_in_the_staged_step(dtype):
    """Half-precision tensors step through float32 copies (staged): the scale is divided
    out there too, and a set found_inf leaves parameter and buffer as they were."""
    torch.manual_seed(0)
    p = torch.randn(3000).to(dtype)
    q = p.clone()
    g = torch.randn(3000).to(dtype)
    bp = torch.randn(3000).to(dtype)
    bq = bp.clone()
    step = torch.ops.mlsgd.lsgd_step_
    args = (0.1, 1.0, 1, 0.9, 0.0, 0.0, False, False, "tensor", "auto")
    step([p], [g * 256], [bp], [False], *args, torch.tensor(256.0), torch.tensor(0.0))
    step([q], [g], [bq], [False], *args)
    assert torch.equal(p, q) and torch.equal(bp, bq)
    before = p.clone(), bp.clone()
    step([p], [g * 256], [bp], [False], *args, torch.tensor(256.0), torch.tensor(1.0))
    assert torch.equal(p, before[0]) and torch.equal(bp, before[1])
