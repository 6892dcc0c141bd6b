"""torch_mlsgd.LSGD against the reference semantics of docs/design.md §3."""

import copy
import math

import numpy as np
import pytest
import torch

import torch_mlsgd
from torch_mlsgd import LSGD

from reference import ReferenceLSGD, fft_smooth
from stepping import fit, gradient_of, step_side_by_side, step_with_reference, train

SHAPES = [(5, 4), (7,), (1,), (3, 2, 2)]


def make_params(dtype=torch.float64):
    g = torch.Generator().manual_seed(11)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in SHAPES]


CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.1, sigma=0.0),
    dict(lr=0.05, sigma=2.0, order=2, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.05, sigma=3.0, weight_decay=0.01, momentum=0.5),
    dict(lr=0.05, maximize=True, momentum=0.9),
    dict(lr=0.05, flatten="group", momentum=0.9, order=3),
    dict(lr=0.05, flatten="group", backend="fft", weight_decay=0.1),
    dict(lr=0.05, sigma=10.0, backend="direct", nesterov=True, momentum=0.5),
    dict(lr=0.05, sigma=2.0, order=17, backend="direct", momentum=0.9),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_follows_reference_step_for_step(config):
    params = make_params()
    skipped = 1  # this parameter never gets a gradient
    backend = config.get("backend")
    reference = ReferenceLSGD([p.detach().numpy() for p in params],
                              **{k: v for k, v in config.items() if k != "backend"})
    optimizer = LSGD(params, **config) if backend else LSGD(params, **config)
    before_skipped = params[skipped].detach().clone()
    for step in range(5):
        grads = [None if i == skipped else gradient_of(p.detach()) for i, p in enumerate(params)]
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        reference.step([None if g is None else g.numpy() for g in grads])
        for i, p in enumerate(params):
            np.testing.assert_allclose(p.detach().numpy(), reference.params[i], rtol=1e-12, atol=1e-12,
                                       err_msg=f"step {step} param {i}")
    assert torch.equal(params[skipped].detach(), before_skipped)


def test_sigma_zero_is_torch_sgd():
    params, sgd_params = make_params(), make_params()
    lsgd = LSGD(params, lr=0.1, sigma=0.0, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)
    sgd = torch.optim.SGD(sgd_params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)
    step_side_by_side(lsgd, sgd, params, sgd_params, 5)
    for p, q in zip(params, sgd_params):
        torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-13)


def test_param_groups_keep_their_own_hyperparameters():
    params = make_params()
    optimizer = LSGD([{"params": params[:2]}, {"params": params[2:], "sigma": 5.0, "momentum": 0.9, "lr": 0.02}],
                     lr=0.1, sigma=1.0)
    assert optimizer.param_groups[1]["sigma"] == 5.0 and optimizer.param_groups[0]["sigma"] == 1.0
    ref_a = ReferenceLSGD([p.detach().numpy() for p in params[:2]], lr=0.1, sigma=1.0)
    ref_b = ReferenceLSGD([p.detach().numpy() for p in params[2:]], lr=0.02, sigma=5.0, momentum=0.9)
    for _ in range(3):
        grads = [gradient_of(p.detach()) for p in params]
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        ref_a.step([g.numpy() for g in grads[:2]])
        ref_b.step([g.numpy() for g in grads[2:]])
    for p, r in zip(params, ref_a.params + ref_b.params):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=1e-12, atol=1e-12)


def test_only_momentum_buffers_are_state():
    params = make_params()
    optimizer = LSGD(params, lr=0.1, momentum=0.9)
    train(optimizer, params, 1)
    for p in params:
        assert set(optimizer.state[p]) == {"momentum_buffer"}
        assert optimizer.state[p]["momentum_buffer"].shape == p.shape
    plain = LSGD(make_params(), lr=0.1)
    for p in plain.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    plain.step()
    assert len(plain.state) == 0


def test_old_state_dict_without_new_keys_loads():
    params = make_params()
    optimizer = LSGD(params, lr=0.1, sigma=2.0, order=2, flatten="group", backend="fft")
    state = optimizer.state_dict()
    for key in ("sigma", "order", "flatten", "backend", "maximize", "nesterov"):
        del state["param_groups"][0][key]
    fresh = LSGD(make_params(), lr=0.1)
    fresh.__setstate__({"state": {}, "param_groups": copy.deepcopy(state["param_groups"])})
    group = fresh.param_groups[0]
    assert (group["sigma"], group["order"], group["flatten"], group["backend"]) == (1.0, 1, "tensor", "auto")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (dict(lr=float("nan")), "Invalid learning rate: nan"),
        (dict(lr=0.1, sigma=-1.0), "Invalid sigma value: -1.0"),
        (dict(lr=0.1, sigma=float("inf")), "Invalid sigma value: inf"),
        (dict(lr=0.1, order=0), "Invalid order value: 0"),
        (dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
        (dict(lr=0.1, weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
        (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
        (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
        (dict(lr=0.1, flatten="layer"), "Invalid flatten value: 'layer'"),
        (dict(lr=0.1, backend="gpu"), "Invalid backend: 'gpu'"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, words):
    with pytest.raises(ValueError, match=words):
        LSGD(make_params(), **kwargs)


def test_bad_group_or_gradient_changes_nothing():
    params = make_params()
    complex_param = torch.zeros(3, dtype=torch.complex128, requires_grad=True)
    optimizer = LSGD([{"params": params[:2]}, {"params": params[2:] + [complex_param]}], lr=0.1, momentum=0.9)
    for p in params:
        p.grad = gradient_of(p.detach())
    before = [p.detach().clone() for p in params]
    optimizer.param_groups[1]["sigma"] = -2.0
    with pytest.raises(ValueError, match="Invalid sigma value: -2.0"):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before)) and len(optimizer.state) == 0
    optimizer.param_groups[1]["sigma"] = 1.0
    complex_param.grad = torch.ones(3, dtype=torch.complex128)
    with pytest.raises(RuntimeError, match="complex gradients"):
        optimizer.step()
    complex_param.grad = None
    params[3].grad = torch.zeros_like(params[3]).to_sparse()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before)) and len(optimizer.state) == 0


EDITS = [
    ("lr", -1.0, "Invalid learning rate: -1.0"),
    ("order", 0, "Invalid order value: 0"),
    ("momentum", float("nan"), "Invalid momentum value: nan"),
    ("dampening", float("inf"), "Invalid dampening value: inf"),
    ("weight_decay", -0.5, "Invalid weight_decay value: -0.5"),
    ("nesterov", True, "Nesterov momentum requires"),
    ("flatten", "layer", "Invalid flatten value: 'layer'"),
    ("backend", "gpu", "Invalid backend: 'gpu'"),
]


@pytest.mark.parametrize("key, value, words", EDITS, ids=[f"{e[0]}={e[1]}" for e in EDITS])
def test_a_hyperparameter_edited_after_construction_is_checked_again(key, value, words):
    """Every hyper-parameter edited in a group after construction (as schedulers do) is checked
    again at the next step, which raises ValueError before any parameter or buffer changes,
    also those of the other, valid group; restoring the value lets the run go on."""
    params = make_params()
    optimizer = LSGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1, momentum=0.9, dampening=0.1)
    train(optimizer, params, 1)
    before = [p.detach().clone() for p in params]
    buffers = [optimizer.state[p]["momentum_buffer"].clone() for p in params]
    group = optimizer.param_groups[1]
    old = group[key]
    group[key] = value
    with pytest.raises(ValueError, match=words):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert all(torch.equal(optimizer.state[p]["momentum_buffer"], b) for p, b in zip(params, buffers))
    group[key] = old
    optimizer.step()
    assert all(not torch.equal(p, b) for p, b in zip(params, before))


def test_an_edit_to_an_equal_value_of_another_type_is_checked_again():
    """order=1.0 equals 1 but is refused at construction: an edit to it must be refused
    too, not taken for "unchanged"."""
    key, value = "order", 1.0
    params = make_params()
    optimizer = LSGD(params, lr=0.1)
    train(optimizer, params, 1)
    with pytest.raises(TypeError):
        LSGD(make_params(), lr=0.1, **{key: value})
    optimizer.param_groups[0][key] = value
    before = [p.detach().clone() for p in params]
    with pytest.raises(TypeError):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))


def test_direct_route_order_limit():
    """backend="direct" takes orders up to 64 (docs/api.md): order 64 steps like the float64
    reference; order 65 raises the kernel's RuntimeError and changes nothing."""
    params = make_params()
    optimizer = LSGD(params, lr=0.1, sigma=1.0, order=64, momentum=0.9, backend="direct")
    reference = ReferenceLSGD([p.detach().numpy() for p in params], lr=0.1, sigma=1.0, order=64, momentum=0.9)
    step_with_reference(optimizer, reference, params)
    for p, r in zip(params, reference.params):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=1e-12, atol=1e-12)
    before = [p.detach().clone() for p in params]
    buffers = [optimizer.state[p]["momentum_buffer"].clone() for p in params]
    optimizer.param_groups[0]["order"] = 65
    with pytest.raises(RuntimeError, match="the direct backend supports orders up to 64"):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert all(torch.equal(optimizer.state[p]["momentum_buffer"], b) for p, b in zip(params, buffers))


def test_a_group_refused_by_the_direct_route_changes_no_other_group():
    """LSGD.step's promise ("every group and gradient is checked before any parameter changes")
    when the kernel refuses the second group (order 65 on the direct route)."""
    params = make_params()
    optimizer = LSGD([{"params": params[:2]}, {"params": params[2:], "order": 65, "backend": "direct"}], lr=0.1)
    for p in params:
        p.grad = gradient_of(p.detach())
    before = [p.detach().clone() for p in params]
    with pytest.raises(RuntimeError, match="orders up to 64"):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))


def test_group_flatten_needs_one_dtype():
    """flatten="group" over float32 and float64 gradients is refused (docs/api.md, Errors) before
    anything changes: no parameter or buffer of that group or of another group is updated.
    The same tensors step normally with flatten="tensor"."""
    a = torch.randn(3, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    other = torch.randn(5, dtype=torch.float64, requires_grad=True)
    optimizer = LSGD([{"params": [other]}, {"params": [a, b], "flatten": "group"}], lr=0.1, momentum=0.9)
    a.grad, b.grad, other.grad = torch.ones(3), torch.ones(3, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    before = [t.detach().clone() for t in (a, b, other)]
    with pytest.raises(RuntimeError, match="share one dtype and device"):
        optimizer.step()
    assert all(torch.equal(t, v) for t, v in zip((a, b, other), before)) and len(optimizer.state) == 0
    # The kernel refuses it too, with the same words, and changes nothing.
    with pytest.raises(RuntimeError, match="share one dtype and device"):
        torch.ops.mlsgd.lsgd_step_([a.detach(), b.detach()], [a.grad, b.grad], [], [], 0.1, 1.0, 1, 0.0, 0.0, 0.0,
                                   False, False, "group", "auto")
    assert all(torch.equal(t, v) for t, v in zip((a, b, other), before))
    optimizer.param_groups[1]["flatten"] = "tensor"
    optimizer.step()
    assert all(not torch.equal(t, v) for t, v in zip((a, b, other), before))


def test_closure_is_evaluated_with_grad():
    w = torch.zeros(4, requires_grad=True)
    optimizer = LSGD([w], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = ((w - 1.0) ** 2).sum()
        loss.backward()
        return loss

    first = optimizer.step(closure)
    assert math.isclose(first.item(), 4.0)
    assert optimizer.step(closure).item() < 4.0


def test_small_model_loss_falls():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    x = torch.randn(256, 8)
    y = 2 * x[:, :1] - x[:, 1:2]
    optimizer = LSGD(model.parameters(), lr=0.05, momentum=0.9, sigma=1.0)
    losses = fit(model, optimizer, torch.nn.functional.mse_loss, x, y, 200)
    assert losses[-1] < 0.1 * losses[0]


def test_works_with_lr_schedulers():
    """A step after scheduler.step() uses the new lr: without momentum each parameter moves
    by exactly lr_k * S(g), S from the float64 FFT reference (an optimizer that cached its lr
    would move by 1.0 * S(g) every step)."""
    params = make_params()
    optimizer = LSGD(params, lr=1.0, sigma=2.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for lr in (1.0, 1.0, 0.5, 0.5, 0.25):
        assert optimizer.param_groups[0]["lr"] == lr
        before = [p.detach().clone() for p in params]
        grads = [gradient_of(p.detach()) for p in params]
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        scheduler.step()
        for p, b, g in zip(params, before, grads):
            np.testing.assert_allclose((b - p.detach()).numpy(), lr * fft_smooth(g.numpy(), 2.0, 1).reshape(g.shape),
                                       rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", CONFIGS[2:], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_fused_foreach_and_single_tensor_agree(dtype, config):
    shapes = [(301, 40), (12_007,), (7,), (0,)]

    def run(**implementation):
        g = torch.Generator().manual_seed(5)
        params = [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]
        optimizer = LSGD(params, **config, **implementation)
        train(optimizer, params, 4)
        return params

    fused = run()
    for implementation in (dict(foreach=True), dict(foreach=False), dict(fused=False)):
        tol = dict(rtol=1e-11, atol=1e-11) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
        for a, b in zip(fused, run(**implementation)):
            torch.testing.assert_close(a, b, **tol)


def test_fused_and_foreach_are_exclusive():
    with pytest.raises(ValueError, match="`fused` and `foreach` cannot be `True` together"):
        LSGD(make_params(), lr=0.1, fused=True, foreach=True)
    with pytest.raises(ValueError, match="`fused` does not support `differentiable`"):
        LSGD(make_params(), lr=0.1, fused=True, differentiable=True)
    with pytest.raises(TypeError, match="differentiable must be a bool"):
        LSGD(make_params(), lr=0.1, differentiable=1)


def test_positional_arguments_are_sgds():
    """SGD's positional order: LSGD(params, 0.1, 0.9) has momentum 0.9 (not sigma 0.9), and
    lr has SGD's default, for frameworks that set it only in the param groups."""
    group = LSGD(make_params(), 0.1, 0.9, 0.1, 0.01).param_groups[0]
    assert (group["lr"], group["momentum"], group["dampening"], group["weight_decay"]) == (0.1, 0.9, 0.1, 0.01)
    assert group["sigma"] == 1.0 and group["order"] == 1 and group["differentiable"] is False
    assert LSGD(make_params(), 0.05, 0.9, 0.0, 1e-3, True, sigma=0).param_groups[0]["nesterov"] is True
    assert LSGD(make_params()).param_groups[0]["lr"] == torch.optim.SGD(make_params()).param_groups[0]["lr"]
    assert LSGD([{"params": make_params(), "lr": 0.3}]).param_groups[0]["lr"] == 0.3
    with pytest.raises(TypeError):
        LSGD(make_params(), 0.1, 0.9, 0.0, 0.0, False, 2.0)  # sigma only by keyword


def sgd_argument_combinations():
    """Every valid combination of SGD's arguments (positional ones in SGD's order)."""
    for momentum, dampening, nesterov in ((0.0, 0.0, False), (0.0, 0.3, False), (0.9, 0.0, False),
                                          (0.9, 0.0, True), (0.9, 0.3, False)):
        for weight_decay in (0.0, 0.01):
            for maximize in (False, True):
                for implementation in (dict(), dict(foreach=False), dict(foreach=True), dict(fused=True),
                                       dict(foreach=False, fused=True)):
                    yield (0.05, momentum, dampening, weight_decay, nesterov), dict(maximize=maximize, **implementation)


@pytest.mark.parametrize("optimizer_class", [LSGD, torch_mlsgd.MLSGD])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigma_zero_is_torch_sgd_bit_for_bit_for_every_combination(optimizer_class, dtype):
    """LSGD(params, *sgd_args, sigma=0, **sgd_kwargs) == SGD(params, *sgd_args, **sgd_kwargs),
    bit for bit, for every combination of SGD's arguments and implementations (and MLSGD,
    whose sigma_k are then all 0)."""
    combinations = list(sgd_argument_combinations())
    assert len(combinations) == 100
    for args, kwargs in combinations:
        params, sgd_params = make_params(dtype), make_params(dtype)
        ours = optimizer_class(params, *args, sigma=0.0, **kwargs)
        theirs = torch.optim.SGD(sgd_params, *args, **kwargs)
        step_side_by_side(ours, theirs, params, sgd_params, 3)
        for p, q in zip(params, sgd_params):
            assert torch.equal(p, q), (args, kwargs)
            if args[1]:
                assert torch.equal(ours.state[p]["momentum_buffer"], theirs.state[q]["momentum_buffer"])


@pytest.mark.parametrize("sigma", [0.0, 1.5])
@pytest.mark.parametrize("flatten", ["tensor", "group"])
def test_differentiable_step_passes_gradcheck(sigma, flatten):
    """differentiable=True: the step is a differentiable function of the parameters, the
    gradients and the momentum buffers (torch's test of SGD, applied to LSGD)."""
    def step(p, q, grad, buf):
        p, q = p.clone(), q.clone()
        p.grad, q.grad = grad[:7], grad[7:]
        optimizer = LSGD([p, q], lr=0.3, momentum=0.9, weight_decay=0.1, sigma=sigma, differentiable=True,
                         flatten=flatten)
        optimizer.state[p]["momentum_buffer"] = buf[:7].clone()
        optimizer.state[q]["momentum_buffer"] = buf[7:].clone()
        optimizer.step()
        return p, q, optimizer.state[p]["momentum_buffer"], optimizer.state[q]["momentum_buffer"]

    g = torch.Generator().manual_seed(3)
    inputs = [torch.randn(n, generator=g, dtype=torch.float64, requires_grad=True) for n in (7, 5, 12, 12)]
    torch.autograd.gradcheck(step, inputs)


def test_differentiable_step_gradient_is_the_smoothed_one():
    """d(sum(w * p_new)) / d(grad) = -lr S(w): the smoothing op's backward is used."""
    grad = torch.randn(40, dtype=torch.float64, requires_grad=True)
    p = torch.randn(40, dtype=torch.float64, requires_grad=True).clone()
    p.grad = grad
    LSGD([p], lr=0.5, sigma=2.0, differentiable=True).step()
    w = torch.linspace(-1, 1, 40, dtype=torch.float64)
    (p * w).sum().backward()
    np.testing.assert_allclose(grad.grad.numpy(), -0.5 * fft_smooth(w.numpy(), 2.0, 1), rtol=1e-12, atol=1e-12)


def test_checkpoints_without_differentiable_still_load():
    params = make_params()
    optimizer = LSGD(params, lr=0.1, momentum=0.9)
    train(optimizer, params, 1)
    state = optimizer.state_dict()
    for group in state["param_groups"]:
        del group["differentiable"]  # as written by torch_mlsgd 0.3.0
    resumed = LSGD(params, lr=0.1, momentum=0.9)
    resumed.load_state_dict(state)
    assert resumed.param_groups[0]["differentiable"] is False
    resumed.step()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", ["fft", "direct"])
@pytest.mark.parametrize("flatten", ["tensor", "group"])
def test_half_precision_step_is_float32_rounded_once(dtype, backend, flatten):
    """The fused step takes half-precision parameters by computing the whole step in float32
    and rounding parameters and buffers once (docs/design.md §3): bit for bit the float32
    step of the same values, rounded. A step run in half precision (smoothing, weight decay
    or momentum in float16/bfloat16) differs in many elements."""
    g = torch.Generator().manual_seed(2)
    params = [torch.randn(s, generator=g).to(dtype).requires_grad_() for s in ((640,), (30, 7))]
    config = dict(lr=0.1, sigma=2.0, order=2, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False,
                  maximize=False, flatten=flatten, backend=backend)
    optimizer = LSGD(params, **config)
    buffers = [None, None]
    for _ in range(3):
        grads = [gradient_of(p.detach().float()).to(dtype) for p in params]
        expected = [p.detach().float() for p in params]
        expected_buffers = [None if b is None else b.float() for b in buffers]
        torch_mlsgd.lsgd(expected, [grad.float() for grad in grads], expected_buffers, fused=True, **config)
        for p, grad in zip(params, grads):
            p.grad = grad
        optimizer.step()
        buffers = [optimizer.state[p]["momentum_buffer"] for p in params]
        for p, e, b, eb in zip(params, expected, buffers, expected_buffers):
            assert p.dtype == b.dtype == dtype
            assert torch.equal(p.detach(), e.to(dtype)) and torch.equal(b, eb.to(dtype))


def test_fused_kernel_handles_what_it_cannot_fuse():
    """float16 and non-contiguous parameters in one step: the half one is the float32 step
    rounded once, bit for bit; the strided one matches the unfused implementation."""
    half = torch.randn(64, dtype=torch.float16, requires_grad=True)
    strided = torch.randn(8, 6).t().requires_grad_()
    assert not strided.is_contiguous()
    ref_strided = strided.detach().clone()
    optimizer = LSGD([half, strided], lr=0.1, momentum=0.9)
    reference = LSGD([ref_strided.requires_grad_()], lr=0.1, momentum=0.9, fused=False)
    for _ in range(3):
        half.grad = gradient_of(half.detach().float()).half()
        expected, buffer = [half.detach().float()], [None]
        if "momentum_buffer" in optimizer.state[half]:
            buffer = [optimizer.state[half]["momentum_buffer"].float()]
        torch_mlsgd.lsgd(expected, [half.grad.float()], buffer, lr=0.1, sigma=1.0, order=1, momentum=0.9,
                         dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, flatten="tensor",
                         backend="auto", fused=True)
        strided.grad = gradient_of(strided.detach())
        ref_strided.grad = gradient_of(ref_strided.detach())
        optimizer.step()
        reference.step()
        assert torch.equal(half.detach(), expected[0].half())
        assert torch.equal(optimizer.state[half]["momentum_buffer"], buffer[0].half())
    torch.testing.assert_close(strided.detach(), ref_strided.detach())


def test_the_fused_op_checks_its_lists():
    # The op itself (a stable-ABI kernel) raises RuntimeError; the optimizers
    # check first and raise ValueError.
    p = torch.zeros(3)
    with pytest.raises(RuntimeError, match="needs one momentum buffer per parameter"):
        torch.ops.mlsgd.lsgd_step_([p], [torch.ones(3)], [], [], 0.1, 1.0, 1, 0.9, 0.0, 0.0, False, False,
                                   "tensor", "auto")
    with pytest.raises(RuntimeError, match="has 3 elements but its gradient 4"):
        torch.ops.mlsgd.lsgd_step_([p], [torch.ones(4)], [], [], 0.1, 1.0, 1, 0.0, 0.0, 0.0, False, False,
                                   "tensor", "auto")
    assert torch.equal(p, torch.zeros(3))


@pytest.mark.parametrize("implementation", [dict(), dict(fused=False), dict(foreach=False)],
                         ids=["fused", "foreach", "single"])
def test_autograd_sees_the_parameters_change(implementation):
    """A graph that saved a parameter before the step refuses to backpropagate through the
    stale value afterwards, as after torch's SGD (the fused kernel writes through data
    pointers, so the optimizer tells autograd)."""
    w = torch.randn(30, dtype=torch.float64, requires_grad=True)
    saved = (w ** 2).sum()  # saves w
    w.grad = torch.randn(30, dtype=torch.float64)
    LSGD([w], 0.1, 0.9, sigma=1.0, **implementation).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.backward()
