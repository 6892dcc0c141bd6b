"""smooth_grad_ and register_smoothing: Laplacian smoothing for any optimizer, checked
against the float64 NumPy FFT reference and against LSGD (SGD on smoothed gradients)."""

import copy

import numpy as np
import pytest
import torch

import torch_mlsgd
from torch_mlsgd import LSGD, register_smoothing, smooth_grad_

from reference import fft_smooth

SHAPES = [(40, 30), (30,), (7, 3, 3), (1,)]


def make_params(dtype=torch.float64, seed=3):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in SHAPES]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=dtype)
    return params


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("backend", ["auto", "fft", "direct"])
def test_every_gradient_becomes_its_smoothing(dtype, tolerance, order, backend):
    params = make_params(dtype)
    grads = [p.grad.clone() for p in params]
    smooth_grad_(params, 2.0, order, backend=backend)
    for p, g in zip(params, grads):
        expected = fft_smooth(g.double().numpy(), 2.0, order).reshape(g.shape)
        np.testing.assert_allclose(p.grad.double().numpy(), expected, rtol=0, atol=tolerance * np.abs(expected).max())


def test_flatten_group_smooths_one_ring_in_parameter_order():
    params = make_params()
    ring = torch.cat([p.grad.reshape(-1) for p in params]).numpy()
    smooth_grad_(params, 1.5, flatten="group")
    expected = fft_smooth(ring, 1.5, 1)
    np.testing.assert_allclose(torch.cat([p.grad.reshape(-1) for p in params]).numpy(), expected, atol=1e-12)


def test_parameters_without_gradients_and_a_single_tensor():
    params = make_params()
    params[1].grad = None
    before = params[0].grad.clone()
    smooth_grad_(params, 1.0)
    assert params[1].grad is None
    single = params[0].detach().clone().requires_grad_()
    single.grad = before.clone()
    smooth_grad_(single, 1.0)  # a tensor, as clip_grad_norm_ takes it
    assert torch.equal(single.grad, params[0].grad)


def test_half_precision_and_non_contiguous_gradients():
    p = torch.zeros(12, 10, dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn(10, 12).t()  # a transposed view: not contiguous
    p.grad = g.to(torch.bfloat16)
    q = torch.zeros(12, 10, requires_grad=True)
    q.grad = g.contiguous()
    smooth_grad_([p, q], 1.0)
    expected = fft_smooth(g.contiguous().double().numpy(), 1.0, 1).reshape(12, 10)
    np.testing.assert_allclose(q.grad.double().numpy(), expected, atol=1e-6)
    assert torch.equal(p.grad, torch_mlsgd.laplacian_smooth(g.to(torch.bfloat16), 1.0))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(sigma=-1.0), ValueError, "Invalid sigma value: -1.0"),
    (dict(sigma=float("nan")), ValueError, "Invalid sigma value: nan"),
    (dict(sigma="1"), TypeError, "sigma must be a real number, got str"),
    (dict(order=0), ValueError, "Invalid order value: 0"),
    (dict(order=1.0), TypeError, "order must be an integer, got float"),
    (dict(flatten="layer"), ValueError, "Invalid flatten value: 'layer'"),
    (dict(backend="cufft"), ValueError, "Invalid backend: 'cufft'"),
    (dict(process_group=object()), ValueError, "process_group needs flatten='group'"),
])
def test_bad_arguments_name_the_value_and_change_nothing(kwargs, error, words):
    params = make_params()
    before = [p.grad.clone() for p in params]
    sigma = kwargs.pop("sigma", 1.0)
    order = kwargs.pop("order", 1)
    with pytest.raises(error, match=words):
        smooth_grad_(params, sigma, order, **kwargs)
    assert all(torch.equal(p.grad, b) for p, b in zip(params, before))
    with pytest.raises(error, match=words):
        register_smoothing(torch.optim.SGD(params, 0.1), sigma, order, **kwargs)


@pytest.mark.parametrize("bad, words", [
    (torch.arange(6), "expected a floating-point gradient, got dtype torch.int64"),
    (torch.randn(6, dtype=torch.complex64), "complex gradients are not supported"),
    (torch.eye(6).to_sparse(), "sparse gradients are not supported"),
])
def test_a_bad_gradient_is_refused_before_any_changes(bad, words):
    params = make_params()
    before = [p.grad.clone() for p in params]
    odd = torch.zeros(bad.shape, dtype=bad.dtype)
    odd.grad = bad
    with pytest.raises(TypeError, match=words):
        smooth_grad_([*params, odd], 1.0)
    assert all(torch.equal(p.grad, b) for p, b in zip(params, before))


def test_flatten_group_over_mixed_dtypes_is_refused():
    params = make_params()
    params[2] = params[2].detach().float().requires_grad_()
    params[2].grad = torch.ones_like(params[2])
    before = [p.grad.clone() for p in params]
    with pytest.raises(ValueError, match="must share one dtype and device"):
        smooth_grad_(params, 1.0, flatten="group")
    assert all(torch.equal(p.grad, b) for p, b in zip(params, before))


def test_sigma_zero_leaves_the_gradients_as_they_are():
    params = make_params()
    before = [p.grad.clone() for p in params]
    smooth_grad_(params, 0.0)
    assert all(torch.equal(p.grad, b) for p, b in zip(params, before))


def run(make_optimizer, hook=None, steps=4, seed=1):
    params = [p.detach().clone().requires_grad_() for p in make_params(seed=seed)]
    optimizer = make_optimizer(params)
    handle = register_smoothing(optimizer, **hook) if hook is not None else None
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.sin(p.detach() * 3) + 0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype)
        optimizer.step()
    return params, optimizer, handle


@pytest.mark.parametrize("flatten", ["tensor", "group"])
def test_sgd_with_the_hook_is_lsgd(flatten):
    """SGD stepping on smoothed gradients is LSGD (weight decay after the smoothing in
    both); foreach LSGD runs the same arithmetic as foreach SGD: equal bit for bit."""
    ours, _, _ = run(lambda ps: torch.optim.SGD(ps, 0.05, 0.9, weight_decay=1e-3, foreach=True),
                     hook=dict(sigma=1.5, flatten=flatten))
    theirs, _, _ = run(lambda ps: LSGD(ps, 0.05, 0.9, weight_decay=1e-3, sigma=1.5, flatten=flatten, foreach=True))
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)


def test_adamw_with_the_hook_steps_on_smoothed_gradients():
    """AdamW under the hook equals AdamW fed S(g) by hand: its moments see S(g)."""
    hooked, optimizer, handle = run(lambda ps: torch.optim.AdamW(ps, 1e-2), hook=dict(sigma=2.0, order=2))
    params = [p.detach().clone().requires_grad_() for p in make_params(seed=1)]
    manual = torch.optim.AdamW(params, 1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        for p in params:
            noise = 0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype)
            p.grad = torch_mlsgd.laplacian_smooth(torch.sin(p.detach() * 3) + noise, 2.0, 2)
        manual.step()
    for p, q in zip(hooked, params):
        assert torch.equal(p, q)
    # Removing the hook restores the plain optimizer.
    handle.remove()
    grads = [torch.ones_like(p) for p in hooked]
    for p, grad in zip(hooked, grads):
        p.grad = grad.clone()
    optimizer.step()
    assert all(torch.equal(p.grad, grad) for p, grad in zip(hooked, grads))


def test_the_hook_smooths_one_ring_per_group():
    params = [p.detach().clone().requires_grad_() for p in make_params()]
    optimizer = torch.optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.0)
    register_smoothing(optimizer, 1.0, flatten="group")
    for p in params:
        p.grad = torch.cos(torch.arange(p.numel(), dtype=p.dtype)).reshape(p.shape)
    rings = [torch.cat([p.grad.reshape(-1) for p in ps]).numpy() for ps in (params[:2], params[2:])]
    optimizer.step()
    for ps, ring in zip((params[:2], params[2:]), rings):
        np.testing.assert_allclose(torch.cat([p.grad.reshape(-1) for p in ps]).numpy(), fft_smooth(ring, 1.0, 1),
                                   atol=1e-12)


def test_under_grad_scaler_and_clipping():
    """scaler.unscale_, clip, smooth_grad_, scaler.step: the parameters move as SGD on
    clipped-then-smoothed unscaled gradients; a step with an inf gradient is skipped
    (and nothing is smoothed)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), 0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x, y = torch.randn(16, 8), torch.randn(16, 4)
    scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    smooth_grad_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()

    torch.nn.functional.mse_loss(reference(x), y).backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.1 * torch_mlsgd.laplacian_smooth(p.grad, 1.0)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)

    before = [p.detach().clone() for p in model.parameters()]
    register_smoothing(optimizer, 1.0)
    optimizer.zero_grad()
    scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
    next(model.parameters()).grad[0, 0] = float("inf")
    scaler.step(optimizer)  # skipped: found an inf
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))


def test_compiled_smoothing_matches_eager():
    params = make_params(torch.float32)
    grads = [p.grad.clone() for p in params]
    compiled = torch.compile(lambda ps: smooth_grad_(ps, 1.0), fullgraph=False)
    compiled(params)
    for p, g in zip(params, grads):
        assert torch.equal(p.grad, torch_mlsgd.laplacian_smooth(g, 1.0))


def test_a_refusal_of_the_direct_route_changes_no_gradient():
    """sigma = 4e9 is past the float64 direct route's warm-up limit but not float32's:
    the float64 gradient's refusal comes before the float32 one is written."""
    a = torch.zeros(50, requires_grad=True)
    b = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    a.grad, b.grad = torch.randn(50), torch.randn(50, dtype=torch.float64)
    before = [a.grad.clone(), b.grad.clone()]
    with pytest.raises(RuntimeError, match="direct backend supports"):
        smooth_grad_([a, b], 4e9, backend="direct")
    assert torch.equal(a.grad, before[0]) and torch.equal(b.grad, before[1])


def test_a_gradient_listed_twice_is_smoothed_once():
    params = make_params()
    expected = [torch_mlsgd.laplacian_smooth(p.grad, 1.0) for p in params]
    smooth_grad_([*params, params[0], params[2]], 1.0)
    assert all(torch.equal(p.grad, e) for p, e in zip(params, expected))


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
def test_autograd_sees_the_gradients_change():
    """A graph that saved a gradient (a gradient penalty) refuses the smoothed one, as it
    would after clip_grad_norm_'s in-place scaling."""
    w = torch.randn(20, dtype=torch.float64, requires_grad=True)
    (w.sin() ** 2).sum().backward(create_graph=True)
    penalty = (w.grad ** 2).sum()
    smooth_grad_([w], 1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        penalty.backward()
