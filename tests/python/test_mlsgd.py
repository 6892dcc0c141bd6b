"""torch_mlsgd.MLSGD: schedules, steps, state, older checkpoints, errors (resuming a
checkpoint: test_checkpoints.py)."""

import copy
import io
import math

import numpy as np
import pytest
import torch

from torch_mlsgd import LSGD, MLSGD, SCHEDULES, scheduled_sigma

from reference import ReferenceLSGD, reference_sigma, splitmix64_uniform
from stepping import gradient_of, step_side_by_side, train


def make_params(dtype=torch.float64):
    g = torch.Generator().manual_seed(4)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in ((40, 30), (17,), (1,))]


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


def test_random_schedule_is_the_documented_generator():
    """The random schedule, bit for bit, against a pure-Python splitmix64 (reference.py):
    a changed constant, mix or scaling, or a stateful generator, changes the draws."""
    steps = list(range(200)) + [2 ** 31, 2 ** 32 + 1, 2 ** 40, 2 ** 53 + 1, 2 ** 62, 2 ** 63 - 1]
    for seed in (0, 1, 3, 11, 2 ** 31 - 1, 2 ** 40 + 5, 2 ** 63 - 1):
        for sigma_min, sigma_max in ((0.0, None), (0.5, 3.0)):
            expected = [reference_sigma(k, sigma=1.0, sigma_min=sigma_min, sigma_max=sigma_max, seed=seed)
                        for k in steps]
            assert [scheduled_sigma(k, sigma=1.0, sigma_min=sigma_min, sigma_max=sigma_max, seed=seed)
                    for k in steps] == expected, (seed, sigma_min, sigma_max)


def test_random_schedule_literal_values():
    """A few draws written out (computed once with reference.py's generator and checked
    against the library), so that a change of generator shows even if both implementations
    of the test moved together; step 2**40 needs no draws before it (counter-based)."""
    literal = {(0, 0): 0.8571408262183529, (0, 1): 0.871419748364749, (3, 0): 1.974938367226472,
               (12345, 99): 0.7678589033761993, (0, 2 ** 40): 1.1055656519614507,
               (7, 2 ** 40): 1.811433940707973}
    for (seed, step), value in literal.items():
        assert 2.0 * splitmix64_uniform(seed, step) == value  # sigma = 1: uniform in [0, 2)
        assert scheduled_sigma(step, seed=seed) == value
    assert torch.ops.mlsgd.scheduled_sigma("random", 1.0, 0.0, None, 100, 7, 2 ** 40) == 1.811433940707973
    assert scheduled_sigma(5, sigma=2.0, sigma_min=1.0, sigma_max=4.0, seed=11) == 2.2029492383642713


def test_every_schedule_matches_its_definition():
    """All five schedules against reference.py's transcription of docs/api.md's table, exactly."""
    kwargs = dict(sigma=1.5, sigma_min=0.25, sigma_max=2.75, period=7, seed=9)
    for schedule in SCHEDULES:
        for k in (0, 1, 6, 7, 8, 100, 12345):
            assert scheduled_sigma(k, schedule=schedule, **kwargs) == reference_sigma(k, schedule, **kwargs), \
                (schedule, k)


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
        sigma_k = reference_sigma(k, **kwargs)  # not the library's
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


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_sigma_k_from_the_optimizers_tables_is_the_schedules_own(schedule):
    """MLSGD reads sigma_k eagerly from tables of consecutive steps: at any count, in any
    order (parameters far apart in count, table edges, a schedule edited between steps), the
    value is scheduled_sigma's bit for bit and the reference's."""
    optimizer = MLSGD(make_params(), lr=0.05, schedule=schedule, period=7, seed=5)
    group = optimizer.param_groups[0]
    kwargs = dict(schedule=schedule, period=7, seed=5)
    for k in [0, 63, 64, 1, 10**12, 127, 5000, 64, 2**40 + 3, *range(120, 200)]:
        assert optimizer._sigma_at(group, k) == scheduled_sigma(k, **kwargs)
        assert optimizer._sigma_at(group, k) == pytest.approx(reference_sigma(k, **kwargs), rel=1e-14, abs=0)
    group["sigma"] = 3.0
    assert optimizer._sigma_at(group, 130) == scheduled_sigma(130, sigma=3.0, **kwargs)


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
    lsgd = LSGD([ref_b], lr=0.1, sigma=reference_sigma(0))
    ref_b.grad = torch.ones(50, dtype=torch.float64)
    lsgd.step()
    assert torch.equal(b, ref_b)


def test_step_counts_stay_exact_whatever_changes_them_between_steps():
    """The counts of parameters stepped together advance as the elements of one int64
    tensor (one add_ per step, not one op per parameter); each is still its own 0-dim
    int64 state tensor, and a count changed outside a step (another set of parameters
    with gradients, a hand-set count, a checkpoint loaded, through torch.save too) is seen:
    every parameter steps with sigma_k of its own count k, checked against a plain LSGD
    step with the reference schedule's sigma_k."""
    g = torch.Generator().manual_seed(11)
    params = [torch.randn(30, generator=g, dtype=torch.float64).requires_grad_() for _ in range(3)]
    optimizer = MLSGD(params, lr=0.1, seed=3)
    counts = [0, 0, 0]

    def step(which):
        expected = []
        for i, p in enumerate(params):
            p.grad = torch.linspace(-1, 1, 30, dtype=torch.float64) * (i + 1) if i in which else None
            reference = p.detach().clone().requires_grad_()
            if i in which:
                reference.grad = p.grad.clone()
                LSGD([reference], lr=0.1, sigma=reference_sigma(counts[i], seed=3)).step()
            expected.append(reference)
        optimizer.step()
        for i in which:
            counts[i] += 1
        for p, reference in zip(params, expected):
            assert torch.equal(p, reference)
        for p, count in zip(params, counts):
            if count:
                step_count = optimizer.state[p]["step"]
                assert step_count.dtype == torch.int64 and step_count.dim() == 0 and int(step_count) == count

    for which in ({0, 1, 2}, {0, 1, 2}, {0, 2}, {0, 1, 2}):
        step(which)
    stepped = [optimizer.state[p]["step"] for p in params]
    assert stepped[0]._base is not None and all(c._base is stepped[0]._base for c in stepped)
    optimizer.state[params[1]]["step"] = torch.tensor(7)
    counts[1] = 7
    step({0, 1, 2})
    saved = io.BytesIO()
    torch.save(optimizer.state_dict(), saved)
    optimizer.load_state_dict(torch.load(io.BytesIO(saved.getvalue())))
    step({1, 2})
    optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    step({0, 1, 2})
    assert counts == [6, 10, 7]


def test_group_ring_steps_at_the_count_of_its_first_parameter_with_a_gradient():
    """flatten="group": the ring of the parameters that have gradients is smoothed with
    sigma_k, k the step count of the first of them (MLSGD's docstring), while every
    parameter keeps counting its own steps. Catches a ring that follows the first
    parameter of the group, the largest count, or each parameter's own count."""
    g = torch.Generator().manual_seed(8)
    a, b, c = [torch.randn(n, generator=g, dtype=torch.float64).requires_grad_() for n in (30, 20, 10)]
    optimizer = MLSGD([a, b, c], lr=0.1, momentum=0.9, flatten="group", seed=5)
    reference = ReferenceLSGD([p.detach().numpy() for p in (a, b, c)], lr=0.1, momentum=0.9, flatten="group")
    # (which parameters have gradients, the count the ring then uses)
    plan = [((b, c), 0), ((b, c), 1), ((a, b, c), 0), ((b, c), 3), ((c, a), 1)]
    for live, k in plan:
        grads = [gradient_of(p.detach()) if any(p is q for q in live) else None for p in (a, b, c)]
        for p, grad in zip((a, b, c), grads):
            p.grad = grad
        optimizer.step()
        reference.h["sigma"] = reference_sigma(k, seed=5)
        reference.step([None if grad is None else grad.numpy() for grad in grads])
        for p, r in zip((a, b, c), reference.params):
            np.testing.assert_allclose(p.detach().numpy(), r, rtol=1e-11, atol=1e-11)
    assert [int(optimizer.state[p]["step"]) for p in (a, b, c)] == [2, 4, 5]


EDITS = [
    ("sigma", -1.0, ValueError, "Invalid sigma value: -1.0"),
    ("lr", float("nan"), ValueError, "Invalid learning rate: nan"),
    ("order", 0, ValueError, "Invalid order value: 0"),
    ("schedule", "noisy", ValueError, "Invalid schedule: 'noisy'"),
    ("sigma_min", 5.0, ValueError, "Invalid sigma_max value: 3.0"),
    ("sigma_max", float("inf"), ValueError, "Invalid sigma_max value: inf"),
    ("period", 0, ValueError, "Invalid period value: 0"),
    ("seed", -3, ValueError, "Invalid seed value: -3"),
    ("period", 2.5, TypeError, "period must be an integer"),
]


def _snapshot(optimizer, params):
    return ([p.detach().clone() for p in params],
            {i: {k: v.clone() for k, v in optimizer.state[p].items()} for i, p in enumerate(params)
             if p in optimizer.state})


def _assert_unchanged(optimizer, params, snapshot):
    values, state = snapshot
    assert all(torch.equal(p, v) for p, v in zip(params, values))
    assert {i for i, p in enumerate(params) if p in optimizer.state} == set(state)
    for i, entries in state.items():
        now = optimizer.state[params[i]]
        assert set(now) == set(entries) and all(torch.equal(now[k], v) for k, v in entries.items())


@pytest.mark.parametrize("key, value, error, words", EDITS, ids=[f"{e[0]}={e[1]}" for e in EDITS])
def test_a_hyperparameter_edited_after_construction_is_checked_again(key, value, error, words):
    """Editing a group after construction (as a scheduler or a user does) is re-validated
    at the next step: it raises before any parameter, buffer or step counter changes, and
    once the value is restored the run goes on from the same step count."""
    params = make_params()
    optimizer = MLSGD(params, lr=0.05, momentum=0.9, sigma_max=3.0, seed=1)
    train(optimizer, params, 2)
    snapshot = _snapshot(optimizer, params)
    group = optimizer.param_groups[0]
    old = group[key]
    group[key] = value
    with pytest.raises(error, match=words):
        optimizer.step()
    _assert_unchanged(optimizer, params, snapshot)
    group[key] = old
    optimizer.step()
    assert all(int(optimizer.state[p]["step"]) == 3 for p in params)


@pytest.mark.parametrize("failure", ["complex gradient", "sparse gradient", "mixed dtypes in a ring",
                                     "direct route beyond its order"])
def test_a_failed_step_changes_no_parameter_buffer_or_counter(failure):
    """A step that raises leaves MLSGD as it was, step counters included (so the sigma
    sequence does not skip a draw): whether the refusal comes from the optimizer's checks
    or from the kernel."""
    params = make_params() + [torch.randn(9, dtype=torch.float32, requires_grad=True)]
    spare = torch.zeros(3, dtype=torch.complex128, requires_grad=True)
    optimizer = MLSGD([{"params": params}, {"params": [spare]}], lr=0.05, momentum=0.9, seed=1)
    train(optimizer, params, 2)
    snapshot = _snapshot(optimizer, params)
    group = optimizer.param_groups[0]
    if failure == "complex gradient":
        spare.grad, words = torch.ones(3, dtype=torch.complex128), "complex gradients"
    elif failure == "sparse gradient":
        params[1].grad, words = torch.zeros(17, dtype=torch.float64).to_sparse(), "sparse gradients"
    elif failure == "mixed dtypes in a ring":  # float64 and float32 gradients in one ring
        group["flatten"], words = "group", "share one dtype and device"
    else:
        group["order"], group["backend"], words = 65, "direct", "orders up to 64"
    with pytest.raises(RuntimeError, match=words):
        optimizer.step()
    _assert_unchanged(optimizer, params, snapshot)
    assert all(int(optimizer.state[p]["step"]) == 2 for p in params)


def test_a_step_refused_by_the_direct_route_changes_nothing():
    """The documented promise (LSGD.step: "a bad value raises and leaves parameters and
    state as they were") when the kernel refuses one of a group's calls: b (count 0) steps
    with sigma_0, a (count 2) with sigma_2 = 3.97e9, beyond the float64 direct route's
    warm-up limit (about 3.1e9 at order 1)."""
    a = torch.ones(50, dtype=torch.float64, requires_grad=True)
    b = torch.ones(50, dtype=torch.float64, requires_grad=True)
    optimizer = MLSGD([b, a], lr=0.1, sigma_max=6e9, backend="direct", seed=16)
    assert [reference_sigma(k, sigma_max=6e9, seed=16) < 3e9 for k in range(3)] == [True, True, False]
    for _ in range(2):
        a.grad = torch.linspace(-1, 1, 50, dtype=torch.float64)
        optimizer.step()
    a.grad = b.grad = torch.linspace(-1, 1, 50, dtype=torch.float64)
    snapshot = _snapshot(optimizer, [b, a])
    with pytest.raises(RuntimeError, match="direct backend supports"):
        optimizer.step()
    _assert_unchanged(optimizer, [b, a], snapshot)


def test_constant_schedule_is_lsgd():
    params, lsgd_params = make_params(), make_params()
    mlsgd = MLSGD(params, lr=0.05, sigma=1.5, momentum=0.9, nesterov=True, schedule="constant")
    lsgd = LSGD(lsgd_params, lr=0.05, sigma=1.5, momentum=0.9, nesterov=True)
    step_side_by_side(mlsgd, lsgd, params, lsgd_params, 4)
    assert all(torch.equal(p, q) for p, q in zip(params, lsgd_params))


def test_checkpoint_with_integer_steps_resumes():
    # torch_mlsgd 0.1 saved state["step"] as a Python int.
    params = make_params()
    optimizer = MLSGD(params, lr=0.05, momentum=0.9, seed=5)
    train(optimizer, params, 2)
    saved = optimizer.state_dict()
    old = copy.deepcopy(saved)
    for state in old["state"].values():
        state["step"] = int(state["step"])
    resumed_params = [p.detach().clone().requires_grad_() for p in params]
    resumed = MLSGD(resumed_params, lr=0.05)
    resumed.load_state_dict(old)
    step_side_by_side(optimizer, resumed, params, resumed_params, 2)
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


@pytest.mark.parametrize("cast", [None, torch.float32])
def test_fused_step_counts_survive_torchs_load_casting(cast):
    """torch's load_state_dict casts "step" to float32 in fused=True groups; MLSGD keeps its
    counts exact int64 CPU tensors, so a run resumed past 2**24 steps (where float32 rounds
    the count) through torch.save/torch.load, and a checkpoint whose counts were cast to
    float32 on the way (exact below 2**24), equal the uninterrupted run bit for bit."""
    start = 2**24 + 1 if cast is None else 1000

    def fresh():
        params = make_params(torch.float32)
        optimizer = MLSGD(params, lr=0.05, momentum=0.9, fused=True, sigma_max=4.0, seed=3)
        train(optimizer, params, 1)
        for p in params:
            optimizer.state[p]["step"] = torch.tensor(start, dtype=torch.int64)
        return params, optimizer

    params, optimizer = fresh()
    train(optimizer, params, 2)
    saved = optimizer.state_dict()
    if cast is not None:
        saved = copy.deepcopy(saved)
        for entry in saved["state"].values():
            entry["step"] = entry["step"].to(cast)
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    resumed_params = [p.detach().clone().requires_grad_() for p in params]
    resumed = MLSGD(resumed_params, lr=0.05, momentum=0.9, fused=True, sigma_max=4.0, seed=3)
    resumed.load_state_dict(torch.load(buffer))
    for p, q in zip(params, resumed_params):
        step = resumed.state[q]["step"]
        assert step.dtype == torch.int64 and step.device.type == "cpu"
        assert step.item() == optimizer.state[p]["step"].item() == start + 2
    if cast is None:  # the count float32 would make of it draws another sigma
        rounded = int(torch.tensor(start + 2, dtype=torch.float32).item())
        assert rounded != start + 2
        assert reference_sigma(rounded, sigma_max=4.0, seed=3) != reference_sigma(start + 2, sigma_max=4.0, seed=3)
    step_side_by_side(optimizer, resumed, params, resumed_params, 3)
    for p, q in zip(params, resumed_params):
        assert torch.equal(p, q)
