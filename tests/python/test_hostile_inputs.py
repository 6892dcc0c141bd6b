"""Inputs that break naive code: a non-finite gradient, parameters with no elements, a
parameter in two groups, sigmas at the ends of their range."""

import numpy as np
import pytest
import torch

from torch_mlsgd import LSGD, laplacian_smooth

from reference import fft_smooth
from stepping import gradient_of


@pytest.mark.parametrize("flatten", ["tensor", "group"])
def test_non_finite_gradient_poisons_exactly_its_ring(flatten):
    def run(poison):
        torch.manual_seed(0)
        params = [torch.randn(40, dtype=torch.float64, requires_grad=True) for _ in range(3)]
        optimizer = LSGD([{"params": params[:2], "flatten": flatten}, {"params": params[2:]}], lr=0.1,
                         momentum=0.9)
        for step in range(3):
            for p in params:
                p.grad = gradient_of(p.detach())
            if poison and step == 1:
                params[0].grad[7] = float("nan")
            optimizer.step()
        return params, optimizer

    clean, _ = run(False)
    poisoned, optimizer = run(True)
    # The ring holding the NaN: parameter 0 (and parameter 1 when the group is one ring).
    ring = [0, 1] if flatten == "group" else [0]
    for i in ring:
        assert not torch.isfinite(poisoned[i]).any()
        assert not torch.isfinite(optimizer.state[poisoned[i]]["momentum_buffer"]).any()
    for i in set(range(3)) - set(ring):
        assert torch.equal(poisoned[i], clean[i])
        assert torch.isfinite(optimizer.state[poisoned[i]]["momentum_buffer"]).all()


def test_zero_size_parameters_are_stepped_without_harm():
    empty = torch.zeros(0, 5, requires_grad=True)
    full = torch.ones(6, requires_grad=True)
    for flatten in ("tensor", "group"):
        optimizer = LSGD([empty, full], lr=0.1, momentum=0.9, flatten=flatten)
        empty.grad, full.grad = torch.zeros(0, 5), torch.ones(6)
        optimizer.step()
        assert empty.shape == (0, 5) and torch.isfinite(full).all()


def test_a_parameter_in_two_groups_is_rejected():
    p = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        LSGD([{"params": [p]}, {"params": [p]}], lr=0.1)


@pytest.mark.parametrize("sigma", [1e-12, 1e8])
def test_extreme_sigmas_stay_accurate(sigma):
    v = np.random.default_rng(0).standard_normal(3000)
    for backend in ("direct", "fft", "auto"):
        out = laplacian_smooth(torch.tensor(v), sigma, backend=backend).numpy()
        expected = fft_smooth(v, sigma, 1)
        assert np.linalg.norm(out - expected) <= 1e-9 * np.linalg.norm(expected)


@pytest.mark.parametrize("name", ["LSGD", "MLSGD", "LSAdamW"])
def test_replaced_parameters_are_refused_even_after_a_load(name):
    """A group whose tensors were swapped for ones the optimizer was never given (what
    DeepSpeed ZeRO-1/2 does with one flat partition per rank) is refused before anything
    changes, also after load_state_dict of a state saved with the swapped tensors; tensors
    added with add_param_group, a copy and an unpickled optimizer step normally."""
    import copy
    import pickle

    import torch_mlsgd

    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(4))]
    optimizer = getattr(torch_mlsgd, name)(params, lr=0.1)
    added = torch.nn.Parameter(torch.randn(6))
    optimizer.add_param_group({"params": [added]})
    for p in [*params, added]:
        p.grad = torch.ones_like(p)
    optimizer.step()
    for clone in (copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        for p in clone.param_groups[0]["params"]:
            p.grad = torch.ones_like(p)
        clone.step()

    # Swapped before the first step, as DeepSpeed does at initialize.
    swapped = getattr(torch_mlsgd, name)(params, lr=0.1)
    flat = torch.nn.Parameter(torch.cat([p.detach().flatten() for p in params])[:10].clone())
    flat.grad = torch.ones_like(flat)
    swapped.param_groups[0]["params"] = [flat]
    before = flat.detach().clone()
    with pytest.raises(RuntimeError, match=r"param_groups\[0\]\['params'\] holds tensors this optimizer was never "
                                           r"given \(shapes \[\(10,\)\]\)"):
        swapped.step()
    swapped.load_state_dict(swapped.state_dict())
    with pytest.raises(RuntimeError, match="DeepSpeed ZeRO"):
        swapped.step()
    assert torch.equal(flat, before) and not swapped.state


def test_scaling_tensors_with_no_parameters_do_nothing():
    torch.ops.mlsgd.lsgd_step_([], [], [], [], 0.1, 1.0, 1, 0.0, 0.0, 0.0, False, False, "tensor", "auto",
                               torch.tensor(2.0), torch.tensor(1.0))
    torch.ops.mlsgd.lsadamw_step_([], [], [], [], [], [], torch.tensor(1e-3), 0.9, 0.999, 0.0, 1e-8, False, False,
                                  1.0, 1, "tensor", "auto", torch.tensor(2.0), torch.tensor(0.0))
