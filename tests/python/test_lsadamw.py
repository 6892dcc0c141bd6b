"""LSAdamW against independent references: torch.optim.AdamW (sigma = 0, and after
smooth_grad_), a float64 NumPy LS-AdamW, and its own implementations against each other."""

import copy
import io

import numpy as np
import pytest
import torch

import torch_mlsgd
from torch_mlsgd import LSAdamW

from reference import ReferenceLSAdamW
from stepping import gradient_of, step_with_reference, train

IMPLEMENTATIONS = {"fused": dict(fused=True), "foreach": dict(foreach=True), "single": dict(foreach=False),
                   "default": dict()}


def _params(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(40,), (7, 9), (1,), (3, 4, 5), (0,)]
    return [torch.randn(shape, generator=g, dtype=dtype).requires_grad_() for shape in shapes]


def _twin(params):
    return [p.detach().clone().requires_grad_() for p in params]


@pytest.mark.parametrize("implementation", ["default", "foreach", "single", "fused"])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("tensor_lr", [False, True])
def test_sigma_zero_is_torch_adamw_bit_for_bit(implementation, amsgrad, maximize, weight_decay, tensor_lr):
    kwargs = dict(IMPLEMENTATIONS[implementation], amsgrad=amsgrad, maximize=maximize, weight_decay=weight_decay)
    params = _params()
    theirs = _twin(params)
    lr = 2.0**-6  # a float32 Tensor holds it exactly
    ours = LSAdamW(params, torch.tensor(lr) if tensor_lr else lr, sigma=0, **kwargs)
    # torch's foreach AdamW refuses a Tensor lr on the CPU (not capturable): its float then.
    their_lr = torch.tensor(lr) if tensor_lr and implementation != "foreach" else lr
    reference = torch.optim.AdamW(theirs, their_lr, **kwargs)
    train(ours, params, 4)
    train(reference, theirs, 4)
    for p, q in zip(params, theirs):
        assert torch.equal(p, q)
    for p, q in zip(params, theirs):
        for key, value in reference.state[q].items():
            assert torch.equal(ours.state[p][key].cpu(), value.cpu()), key


@pytest.mark.parametrize("implementation", ["default", "foreach", "single", "fused"])
@pytest.mark.parametrize("options", [
    dict(), dict(amsgrad=True), dict(maximize=True), dict(flatten="group"), dict(order=2, sigma=3.0),
    dict(backend="fft"), dict(backend="direct", weight_decay=0.0), dict(betas=(0.5, 0.9), eps=1e-3)])
def test_matches_the_float64_reference(implementation, options):
    params = _params(torch.float64)
    reference = ReferenceLSAdamW([p.detach().numpy() for p in params], lr=0.01,
                                 **{k: v for k, v in options.items() if k != "backend"})
    optimizer = LSAdamW(params, lr=0.01, **IMPLEMENTATIONS[implementation], **options)
    for _ in range(5):
        step_with_reference(optimizer, reference, params)
    for p, expected in zip(params, reference.params):
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("implementation", ["foreach", "single"])
@pytest.mark.parametrize("flatten", ["tensor", "group"])
def test_equals_smooth_grad_then_adamw(implementation, flatten):
    params = _params()
    theirs = _twin(params)
    ours = LSAdamW(params, lr=0.01, sigma=0.7, flatten=flatten, **IMPLEMENTATIONS[implementation])
    reference = torch.optim.AdamW(theirs, lr=0.01, **IMPLEMENTATIONS[implementation])
    for _ in range(4):
        for p, q in zip(params, theirs):
            p.grad = gradient_of(p.detach())
            q.grad = gradient_of(q.detach())
        ours.step()
        torch_mlsgd.smooth_grad_(theirs, 0.7, flatten=flatten)
        reference.step()
    for p, q in zip(params, theirs):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("options", [dict(), dict(amsgrad=True), dict(maximize=True, flatten="group")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_kernel_agrees_with_the_others(options, dtype):
    """The one-pass kernel (SIMD where the CPU has it) against smoothing + torch's
    AdamW, on sizes that take the direct route's groups of chunks and their tails."""
    g = torch.Generator().manual_seed(3)
    params = [torch.randn(shape, generator=g, dtype=dtype).requires_grad_() for shape in [(70_001,), (300, 257)]]
    theirs = _twin(params)
    fused = LSAdamW(params, lr=1e-3, sigma=2.0, fused=True, **options)
    foreach = LSAdamW(theirs, lr=1e-3, sigma=2.0, foreach=True, **options)
    train(fused, params, 3)
    train(foreach, theirs, 3)
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)
    for p, q in zip(params, theirs):
        torch.testing.assert_close(p, q, **tolerance)
        for key in fused.state[p]:
            torch.testing.assert_close(fused.state[p][key], foreach.state[q][key], **tolerance)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_and_strided_parameters(dtype):
    """Staged by the fused op (float32 arithmetic, rounded once), as the foreach path does
    (eps=1e-3: float16 rounds 1e-8 to 0, and AdamW's denominator with it)."""
    base = torch.randn(30, 20, generator=torch.Generator().manual_seed(5))
    params = [torch.nn.Parameter(base.to(dtype)), torch.nn.Parameter(base.t().contiguous().t())]  # strided
    theirs = _twin(params)
    fused = LSAdamW(params, lr=1e-2, eps=1e-3, sigma=1.0, fused=True)
    foreach = LSAdamW(theirs, lr=1e-2, eps=1e-3, sigma=1.0, foreach=True)
    train(fused, params, 3)
    train(foreach, theirs, 3)
    assert not params[1].is_contiguous()
    for p, q in zip(params, theirs):
        assert p.dtype == q.dtype
        # Adam divides by sqrt(v): one rounding in a small v moves a half-precision update.
        torch.testing.assert_close(p, q, rtol=0.1, atol=0.05)


@pytest.mark.parametrize("implementation", ["fused", "foreach"])
def test_state_dict_resumes_bit_for_bit(implementation):
    params = _params()
    optimizer = LSAdamW(params, lr=0.01, sigma=1.0, amsgrad=True, **IMPLEMENTATIONS[implementation])
    train(optimizer, params, 3)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "optimizer": optimizer.state_dict()}, buffer)
    train(optimizer, params, 3)

    buffer.seek(0)
    saved = torch.load(buffer)
    resumed = [p.clone().requires_grad_() for p in saved["params"]]
    again = LSAdamW(resumed, lr=0.5, sigma=0.1, **IMPLEMENTATIONS[implementation])
    again.load_state_dict(saved["optimizer"])
    assert again.param_groups[0]["sigma"] == 1.0 and again.param_groups[0]["amsgrad"]
    train(again, resumed, 3)
    for p, q in zip(params, resumed):
        assert torch.equal(p, q)


def test_checkpoints_move_between_lsadamw_and_torch_adamw():
    params = _params()
    ours = LSAdamW(params, lr=0.01, sigma=0)
    train(ours, params, 2)
    theirs = _twin(params)
    adamw = torch.optim.AdamW(theirs, lr=0.01)
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)  # (load_state_dict would share the state's tensors)
    buffer.seek(0)
    adamw.load_state_dict(torch.load(buffer))
    train(adamw, theirs, 2)
    train(ours, params, 2)
    for p, q in zip(params, theirs):
        assert torch.equal(p, q)


@pytest.mark.parametrize("implementation", ["fused", "foreach"])
def test_tensor_lr_steps_as_the_float_does(implementation):
    """(The single-tensor path is torch's AdamW, which rounds a Tensor lr's step size in
    float32: test_sigma_zero_is_torch_adamw_bit_for_bit covers it.)"""
    params = _params()
    theirs = _twin(params)
    # 2**-6: a float32 Tensor holds it exactly.
    ours = LSAdamW(params, torch.tensor(2.0**-6), sigma=0.5, **IMPLEMENTATIONS[implementation])
    reference = LSAdamW(theirs, 2.0**-6, sigma=0.5, **IMPLEMENTATIONS[implementation])
    scheduler = torch.optim.lr_scheduler.StepLR(ours, step_size=2, gamma=0.5)
    scheduler_ref = torch.optim.lr_scheduler.StepLR(reference, step_size=2, gamma=0.5)
    for _ in range(5):
        train(ours, params, 1)
        train(reference, theirs, 1)
        scheduler.step()
        scheduler_ref.step()
    assert isinstance(ours.param_groups[0]["lr"], torch.Tensor)
    for p, q in zip(params, theirs):
        assert torch.equal(p, q)


def test_differentiable_step_matches_and_carries_gradients():
    """As torch's differentiable AdamW (whose arithmetic differs from its plain one in the
    last bits) on the smoothed gradients, and differentiable through the step."""
    params = _params(torch.float64)[:2]
    theirs = [p.detach().clone().requires_grad_().clone() for p in params]
    adamw = torch.optim.AdamW(theirs, lr=0.01, differentiable=True)
    for q in theirs:
        q.grad = torch_mlsgd.laplacian_smooth(gradient_of(q.detach()), 1.0)
    adamw.step()
    weights = [p.detach().clone().requires_grad_() for p in params]
    optimizer = LSAdamW([w.clone() for w in weights], lr=0.01, sigma=1.0, differentiable=True)
    stepped = optimizer.param_groups[0]["params"]
    for w, p in zip(weights, stepped):
        p.grad = gradient_of(w)  # a gradient that depends on the weights
    optimizer.step()
    for p, q in zip(stepped, theirs):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-14)
    sum(p.sum() for p in stepped).backward()
    assert all(w.grad is not None and torch.isfinite(w.grad).all() for w in weights)


def test_parameters_without_gradients_are_skipped():
    params = _params()
    optimizer = LSAdamW(params, lr=0.01)
    before = params[1].detach().clone()
    for p in params:
        p.grad = None if p is params[1] else gradient_of(p.detach())
    optimizer.step()
    assert torch.equal(params[1], before) and params[1] not in optimizer.state
    assert optimizer.state[params[0]]["step"].item() == 1


def test_the_fused_step_tells_autograd_the_parameters_changed():
    p = torch.randn(50, requires_grad=True)
    optimizer = LSAdamW([p], lr=0.01, fused=True)
    loss = (p * p).sum()  # saves p
    p.grad = torch.ones(50)
    optimizer.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    (dict(lr=torch.tensor(float("nan"))), ValueError, "Invalid learning rate: nan"),
    (dict(eps=-1e-8), ValueError, "Invalid epsilon value: -1e-08"),
    (dict(betas=(1.0, 0.999)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), ValueError, "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.5), ValueError, "Invalid weight_decay value: -0.5"),
    (dict(sigma=-1.0), ValueError, "Invalid sigma value: -1.0"),
    (dict(order=0), ValueError, "Invalid order value: 0"),
    (dict(order=1.0), TypeError, "order must be an integer"),
    (dict(flatten="layer"), ValueError, "Invalid flatten value: 'layer'"),
    (dict(backend="cuFFT"), ValueError, "Invalid backend: 'cuFFT'"),
    (dict(fused=True, foreach=True), ValueError, "cannot be `True` together"),
    (dict(fused=True, differentiable=True), ValueError, "does not support `differentiable`"),
    (dict(process_group=object()), ValueError, "process_group needs flatten='group'"),
])
def test_bad_arguments_name_the_value(kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        LSAdamW(_params(), **kwargs)


def test_a_bad_value_set_later_is_refused_before_anything_changes():
    params = _params()
    optimizer = LSAdamW([{"params": params[:2]}, {"params": params[2:]}], lr=0.01)
    train(optimizer, params, 1)
    before = [p.detach().clone() for p in params]
    state = copy.deepcopy(optimizer.state_dict())
    optimizer.param_groups[1]["eps"] = -1.0
    with pytest.raises(ValueError, match="Invalid epsilon value"):
        train(optimizer, params, 1)
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert all(torch.equal(optimizer.state[p]["step"], state["state"][i]["step"]) for i, p in enumerate(params[:4]))


def test_the_direct_route_refuses_before_any_group_steps():
    params = _params()
    optimizer = LSAdamW([{"params": params[:2]}, {"params": params[2:], "order": 100}], lr=0.01, backend="direct")
    before = [p.detach().clone() for p in params]
    with pytest.raises(RuntimeError, match="order"):
        train(optimizer, params, 1)
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert all(s["step"].item() == 0 for s in optimizer.state.values())


def test_opcheck():
    params = [torch.randn(50), torch.randn(4, 5)]
    make = lambda: ([p.clone() for p in params], [torch.randn_like(p) for p in params],  # noqa: E731
                    [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params])
    p, g, m, v = make()
    steps = [torch.tensor(1.0), torch.tensor(1.0)]
    torch.library.opcheck(torch.ops.mlsgd.lsadamw_step_.default,
                          (p, g, m, v, [], steps, torch.tensor(0.01), 0.9, 0.999, 0.01, 1e-8, False, False, 1.0, 1,
                           "tensor", "auto"))


def test_the_op_refuses_a_count_of_zero_before_writing():
    p = torch.randn(10)
    before = p.clone()
    with pytest.raises(RuntimeError, match="this step included"):
        torch.ops.mlsgd.lsadamw_step_([p], [torch.ones(10)], [torch.zeros(10)], [torch.zeros(10)], [],
                                      [torch.tensor(0.0)], torch.tensor(0.01), 0.9, 0.999, 0.0, 1e-8, False, False,
                                      1.0, 1, "tensor", "auto")
    assert torch.equal(p, before)
