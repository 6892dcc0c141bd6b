"""torch.optim's LR schedulers driving LSGD and MLSGD: every step uses the lr set just
before it, the schedulers' state round-trips with the optimizer's, and ReduceLROnPlateau
changes the step."""

import math
import warnings

import pytest
import torch

import torch_mlsgd

from reference import fft_smooth, reference_sigma
from stepping import mse, small_model_and_data

OPTIMIZERS = [torch_mlsgd.LSGD, torch_mlsgd.MLSGD]


def warmup_then_cosine(optimizer):
    """Linear warm-up from half the lr over 2 steps, then cosine annealing over 4."""
    return torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.5, total_iters=2),
         torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)],
        milestones=[2])


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS)
def test_lr_schedulers(optimizer_class):
    """The schedulers set the lr sequence, and every step uses the lr set just before it:
    each parameter moves by exactly lr_k times the step's direction, the momentum buffer of
    the smoothed gradients recomputed here in float64 (reference.py's FFT, and MLSGD's sigma_k
    from reference.py's schedule), so that a step using a stale or cached lr fails."""
    model, x, y = small_model_and_data()
    model, x, y = model.double(), x.double(), y.double()
    optimizer = optimizer_class(model.parameters(), lr=0.2, momentum=0.9)
    schedule = warmup_then_cosine(optimizer)
    lrs = []
    buffers = [None] * len(list(model.parameters()))
    with warnings.catch_warnings():
        # e.g. "Detected call of lr_scheduler.step() before optimizer.step()"
        warnings.simplefilter("error")
        for k in range(6):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad()
            mse(model, x, y).backward()
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
    restored = warmup_then_cosine(restored_opt)
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
