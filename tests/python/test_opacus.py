"""LSGD, MLSGD and SGD with register_smoothing inside Opacus: GradSampleModule +
DPOptimizer, with no special cases.

Opacus' DPOptimizer clips each per-sample gradient, sums, adds Gaussian noise, divides by
the expected batch size, writes the result to ``p.grad`` and then calls the wrapped
optimizer's ``step``. So DP-LSGD must be exactly LSGD applied to that privatised gradient
(the DP-LSSGD construction): each test below computes the expected update independently
(per-sample gradients by a plain loop, smoothing by a float64 FFT, the momentum update
and MLSGD's sigma_k written out in tests/python/reference.py, no torch_mlsgd code) and
compares. Opacus is pinned in requirements/test.txt, so they run on both torches.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from reference import ReferenceLSGD, fft_smooth, reference_sigma

opacus = pytest.importorskip("opacus", reason="Opacus is not installed (make test installs it from "
                                              "requirements/test.txt)")
from opacus import GradSampleModule, PrivacyEngine  # noqa: E402
from opacus.optimizers import DPOptimizer  # noqa: E402

import torch_mlsgd  # noqa: E402

# Opacus' own notices, not about this code: its hooks on a model whose input needs no
# gradient, and the non-cryptographic RNG that experiments use.
pytestmark = [pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning"),
              pytest.mark.filterwarnings("ignore:Secure RNG turned off:UserWarning")]

BATCH = 8
LR, SIGMA, MOMENTUM, SEED = 0.1, 1.0, 0.9, 3
OPTIMIZERS = {
    "lsgd": lambda params: torch_mlsgd.LSGD(params, lr=LR, sigma=SIGMA, momentum=MOMENTUM),
    "mlsgd": lambda params: torch_mlsgd.MLSGD(params, lr=LR, sigma=SIGMA, momentum=MOMENTUM, seed=SEED),
    "sgd+smoothing": lambda params: with_smoothing(torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)),
}


def with_smoothing(optimizer):
    """torch's SGD made DP-LSGD by torch_mlsgd.register_smoothing: Opacus' DPOptimizer calls
    the wrapped optimizer's step, whose pre-hook smooths the privatised gradient."""
    torch_mlsgd.register_smoothing(optimizer, SIGMA)
    return optimizer


def sigma_at(name, k):
    """The smoothing strength of step k (from 0), by reference.py's schedule, not the library's."""
    return reference_sigma(k, sigma=SIGMA, seed=SEED) if name == "mlsgd" else SIGMA


def make_problem():
    """A small float64 MLP (every weight tensor long enough for smoothing to matter) and a batch."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    x = torch.randn(BATCH, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (BATCH,))
    return model, x, y


def dp_step(name, model, x, y, *, noise_multiplier, max_grad_norm, steps=1, hook=None):
    """``steps`` DPOptimizer steps of optimizer ``name`` on (x, y); returns the trained copy."""
    dp_model = GradSampleModule(copy.deepcopy(model))
    optimizer = DPOptimizer(OPTIMIZERS[name](dp_model.parameters()), noise_multiplier=noise_multiplier,
                            max_grad_norm=max_grad_norm, expected_batch_size=BATCH,
                            generator=torch.Generator().manual_seed(5))
    if hook is not None:
        optimizer.attach_step_hook(hook)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(dp_model(x), y).backward()
        optimizer.step()
    return dp_model._module


def per_sample_grads(model, x, y):
    """Per-sample gradients by a plain loop (no Opacus): a list over samples of lists over parameters."""
    grads = []
    for i in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        grads.append([p.grad.detach().clone() for p in model.parameters()])
    return grads


def reference_steps(name, model, x, y, *, max_grad_norm=None, steps=1):
    """Independent expected parameters: ``steps`` float64 reference steps (reference.ReferenceLSGD:
    FFT smoothing and the SGD-momentum update written out) fed the mean of the (optionally
    clipped) per-sample gradients, each computed at the reference's own parameters."""
    model = copy.deepcopy(model)
    params = list(model.parameters())
    reference = ReferenceLSGD([p.detach().numpy() for p in params], lr=LR, sigma=SIGMA, momentum=MOMENTUM)
    for k in range(steps):
        samples = per_sample_grads(model, x, y)
        factors = [1.0] * len(samples)
        if max_grad_norm is not None:
            norms = [torch.sqrt(sum((g ** 2).sum() for g in sample)).item() for sample in samples]
            # Opacus' clipping factor: C / (norm + 1e-6), at most 1.
            factors = [min(1.0, max_grad_norm / (n + 1e-6)) for n in norms]
        grads = [sum(f * sample[i] for f, sample in zip(factors, samples)) / len(samples) for i in range(len(params))]
        reference.h["sigma"] = sigma_at(name, k)
        reference.step([g.numpy() for g in grads])
        with torch.no_grad():
            for p, r in zip(params, reference.params):
                p.copy_(torch.from_numpy(r))
    return model


def assert_same_parameters(a, b, atol=1e-12):
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=atol)


def differ(a, b, tol=1e-6):
    return any((p - q).abs().max().item() > tol for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_without_noise_or_clipping_a_dp_step_is_a_plain_step(name):
    model, x, y = make_problem()
    dp = dp_step(name, model, x, y, noise_multiplier=0.0, max_grad_norm=1e6, steps=3)
    # Three reference steps on the mean per-sample gradient, which is the batch gradient.
    assert_same_parameters(dp, reference_steps(name, model, x, y, steps=3))
    # Not vacuous: smoothing changed the result, so an unsmoothed DP step would have failed.
    sgd = copy.deepcopy(model)
    sgd_optimizer = torch.optim.SGD(sgd.parameters(), lr=LR, momentum=MOMENTUM)
    for _ in range(3):
        sgd_optimizer.zero_grad()
        F.cross_entropy(sgd(x), y).backward()
        sgd_optimizer.step()
    assert differ(dp, sgd)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_with_clipping_a_dp_step_smooths_the_mean_of_the_clipped_per_sample_gradients(name):
    model, x, y = make_problem()
    norms = [torch.sqrt(sum((g ** 2).sum() for g in sample)).item() for sample in per_sample_grads(model, x, y)]
    clip = 0.5 * min(norms)  # every sample is clipped, by a different factor
    dp = dp_step(name, model, x, y, noise_multiplier=0.0, max_grad_norm=clip, steps=2)
    assert_same_parameters(dp, reference_steps(name, model, x, y, max_grad_norm=clip, steps=2))
    assert differ(dp, reference_steps(name, model, x, y, max_grad_norm=None, steps=2))  # clipping mattered


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_with_noise_the_update_is_the_smoothed_noised_gradient(name):
    model, x, y = make_problem()
    seen = {}

    def record(optimizer):
        # Opacus calls the step hook after clipping, noising and scaling, just before the
        # wrapped optimizer's step: p.grad is then the privatised gradient LSGD receives.
        seen["grads"] = [p.grad.detach().clone() for p in optimizer.params]

    clean = reference_steps(name, model, x, y, max_grad_norm=1.0)  # what no noise would give
    dp = dp_step(name, model, x, y, noise_multiplier=1.0, max_grad_norm=1.0, hook=record)
    for before, after, grad in zip(model.parameters(), dp.parameters(), seen["grads"]):
        # First step: the momentum buffer is the smoothed gradient itself, so the update is lr * S(g).
        update = (before - after) / LR
        expected = torch.from_numpy(fft_smooth(grad.numpy(), sigma_at(name, 0), 1)).view_as(grad)
        torch.testing.assert_close(update, expected, rtol=1e-9, atol=1e-12)
        if grad.numel() > 1:
            assert (update - grad).abs().max() > 1e-3  # smoothing changed the noised gradient
    assert differ(dp, clean, tol=1e-3)  # the noise was there


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_privacy_engine_trains_with_the_optimizer(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    x = torch.randn(256, 4)
    y = (x[:, 0] + x[:, 1] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32,
                                         generator=torch.Generator().manual_seed(0))
    optimizer = OPTIMIZERS[name](model.parameters())
    engine = PrivacyEngine(accountant="rdp")
    model, optimizer, loader = engine.make_private(module=model, optimizer=optimizer, data_loader=loader,
                                                   noise_multiplier=0.5, max_grad_norm=1.0,
                                                   noise_generator=torch.Generator().manual_seed(1))
    assert isinstance(optimizer.original_optimizer, torch.optim.SGD if name == "sgd+smoothing" else torch_mlsgd.LSGD)
    with torch.no_grad():
        before = F.cross_entropy(model(x), y).item()
    for _ in range(5):
        for xb, yb in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb, reduction="sum").div(max(1, len(yb))).backward()
            optimizer.step()
    with torch.no_grad():
        after = F.cross_entropy(model(x), y).item()
    assert after < 0.8 * before
    epsilon = engine.get_epsilon(1e-5)
    assert 0 < epsilon < float("inf")
    # The optimizer's own state (MLSGD's step counter) advanced under the wrapper.
    if name == "mlsgd":
        assert all(int(optimizer.state[p]["step"]) == 5 * len(loader) for p in model.parameters())
