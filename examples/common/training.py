"""The optimizers by name, one epoch of steps, and the image classifier's train/evaluate loop.

Every example trains the same way: the same initial weights and data order for every
optimizer of a seed, a cosine learning-rate decay to 0 over all steps, and only
``optimizer.step()`` inside the step timing. ``train_classifier`` evaluates on whichever
split it is handed (validation while tuning, test when reporting) and names the numbers
``eval_loss`` / ``eval_accuracy`` accordingly: the caller knows which split it gave.
"""

import argparse
import math
import statistics
import time
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

from common import models
from common.progress import quiet

import torch
import torch.nn.functional as F

import torch_mlsgd

SGD_FAMILY = ("sgd", "lsgd", "mlsgd")  # the examples' default comparison
ADAMW_FAMILY = ("adamw", "lsadamw")
OPTIMIZERS = SGD_FAMILY + ADAMW_FAMILY
NAMES = {"sgd": "SGD", "lsgd": "LSGD", "mlsgd": "MLSGD", "adamw": "AdamW", "lsadamw": "LSAdamW"}

Batch = Tuple[torch.Tensor, torch.Tensor]


def make_optimizer(name: str, params, args: argparse.Namespace) -> torch.optim.Optimizer:
    """SGD, LSGD or MLSGD with ``args``' lr, momentum, weight_decay, sigma and mlsgd_seed;
    AdamW or LSAdamW with its lr, weight_decay (decoupled) and sigma, the other arguments
    at their defaults."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    if name == "lsadamw":
        return torch_mlsgd.LSAdamW(params, lr=args.lr, weight_decay=args.weight_decay, sigma=args.sigma)
    shared = dict(lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, **shared)
    if name == "lsgd":
        return torch_mlsgd.LSGD(params, sigma=args.sigma, **shared)
    if name == "mlsgd":
        return torch_mlsgd.MLSGD(params, sigma=args.sigma, seed=args.mlsgd_seed, **shared)
    raise ValueError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")


class Diverged(RuntimeError):
    """A training loss became non-finite: the run cannot go on (a smaller lr may)."""


def train_epoch(
    optimizer: torch.optim.Optimizer,
    scheduler,
    batches: Iterable,
    loss_of: Callable,
    label: str,
    epoch: int,
    curve_every: int,
) -> Dict:
    """One epoch of steps over ``batches``: its training record (evaluation is the caller's).

    ``loss_of(batch)`` returns the batch's mean loss and its number of examples. A batch of
    none (Opacus' Poisson sampling can draw one) is stepped on all the same, as the privacy
    accounting assumes, but not counted in the losses. Only ``optimizer.step()`` is in
    ``step_ms``. Shared by every training loop of the examples, so that every optimizer is
    trained and timed the same way. Raises :class:`Diverged` on a non-finite loss.
    """
    losses: List[float] = []
    step_seconds, steps = 0.0, 0
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad()
        loss, count = loss_of(batch)
        loss.backward()
        tick = time.perf_counter()
        optimizer.step()
        step_seconds += time.perf_counter() - tick
        scheduler.step()
        steps += 1
        if count:
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                raise Diverged(f"{label} diverged (loss {losses[-1]}) at epoch {epoch}; try a smaller --lr")
    return dict(
        train_loss=statistics.fmean(losses),
        seconds=time.perf_counter() - start,
        step_ms=1e3 * step_seconds / steps,
        loss_curve=[statistics.fmean(losses[i : i + curve_every]) for i in range(0, len(losses), curve_every)],
    )


def evaluate_classifier(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 2000
) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``images`` (in eval mode, no gradients)."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            logits = model(images[start : start + batch_size])
            target = labels[start : start + batch_size]
            loss += F.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(1) == target).sum().item()
    model.train()
    return loss / images.shape[0], correct / images.shape[0]


def train_classifier(
    optimizer_name: str,
    seed: int,
    train: Batch,
    evaluation: Batch,
    args: argparse.Namespace,
    progress: Callable = quiet,
) -> List[Dict]:
    """Trains ``args.model`` on ``train`` and evaluates it on ``evaluation`` after every epoch.

    ``args`` carries model, epochs, batch_size, curve_every and what :func:`make_optimizer`
    reads. Returns one record per epoch: train_loss, eval_loss, eval_accuracy, seconds,
    step_ms, loss_curve. Raises :class:`Diverged` on a non-finite training loss.
    """
    train_x, train_y = train
    torch.manual_seed(seed)
    model = models.make_model(args.model)  # identical initial weights for every optimizer of a seed
    optimizer = make_optimizer(optimizer_name, model.parameters(), args)
    steps_per_epoch = math.ceil(train_x.shape[0] / args.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)
    order = torch.Generator().manual_seed(seed)  # identical data order for every optimizer of a seed

    def loss_of(batch):
        return F.cross_entropy(model(train_x[batch]), train_y[batch]), batch.numel()

    epochs = []
    for epoch in range(args.epochs):
        permutation = torch.randperm(train_x.shape[0], generator=order)
        steps = progress(
            range(steps_per_epoch), desc=f"{NAMES[optimizer_name]:5s} seed {seed} epoch {epoch + 1}", leave=False
        )
        record = train_epoch(
            optimizer,
            scheduler,
            (permutation[step * args.batch_size : (step + 1) * args.batch_size] for step in steps),
            loss_of,
            NAMES[optimizer_name],
            epoch + 1,
            args.curve_every,
        )
        eval_loss, eval_accuracy = evaluate_classifier(model, *evaluation)
        epochs.append(dict(epoch=epoch + 1, **record, eval_loss=eval_loss, eval_accuracy=eval_accuracy))
    return epochs


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
