"""The "dp" regime: differentially private training, Opacus' DP-SGD construction around each optimizer.

Opacus comes from PyPI (pinned in requirements/test.txt); without it the regime is refused
with a message that says how to install it.
"""

import argparse
import math
import warnings
from typing import Dict, List, Tuple

from common.models import make_model
from common.training import NAMES, Diverged, evaluate_classifier, make_optimizer, train_epoch

import torch
import torch.nn.functional as F

from study.protocol import Config
from study.regimes import FashionData, FashionRegime, _diverged, trial_args

OPACUS_PIN = "opacus==1.6.0"
# RDP orders for the accountant: Opacus' defaults (1.1 ... 63) and more. Short runs with a
# small epsilon have their best bound beyond order 63, where the defaults stop (Opacus then
# warns that the bound is not tight).
RDP_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + list(range(64, 513, 8))


def import_opacus():
    """Opacus, or None when it is not installed (it is on PyPI only: the torch 2.x venv has it)."""
    try:
        import opacus.accountants.utils  # get_noise_multiplier, which DPRegime needs
    except ImportError:
        return None
    return opacus


class DPRegime(FashionRegime):
    """DP-SGD / DP-LSGD / DP-MLSGD: Opacus' per-sample clipping and Gaussian noise, then the optimizer.

    Opacus' DPOptimizer clips every per-sample gradient to norm ``max_grad_norm``, sums,
    adds N(0, (noise_multiplier * max_grad_norm)^2) noise, divides by the expected batch
    size, and then calls the wrapped optimizer's step, so LSGD and MLSGD smooth the *noised*
    gradient (the DP-LSSGD construction of Wang et al., 2019). Batches are Poisson-sampled
    (what the accountant assumes); the noise multiplier comes from the RDP accountant for
    (``epsilon``, ``delta``) and is the same for every optimizer. Each run reports the
    accountant's epsilon. Tuning itself is not privately accounted (see docs/study.md).
    """

    def __init__(
        self, name: str, data: FashionData, base: argparse.Namespace, epsilon: float, delta: float, max_grad_norm: float
    ):
        from opacus.accountants.utils import get_noise_multiplier

        super().__init__(name, data, base, f"DP, epsilon {epsilon:g}, delta {delta:g}")
        self.epsilon, self.delta, self.max_grad_norm = epsilon, delta, max_grad_norm
        n = data.train[0].shape[0]
        # make_private uses sample rate 1 / len(data_loader), i.e. 1 / ceil(n / batch): the same here.
        self.sample_rate = 1 / math.ceil(n / base.batch_size)
        self.noise_multiplier = get_noise_multiplier(
            target_epsilon=epsilon,
            target_delta=delta,
            sample_rate=self.sample_rate,
            epochs=base.epochs,
            accountant="rdp",
            alphas=RDP_ALPHAS,
        )

    def run(self, optimizer: str, config: Config, seed: int, split: str) -> Dict:
        eval_x, eval_y = self.data.eval_split(split)
        args = trial_args(self.base, config, seed)
        epochs: List[Dict] = []
        try:
            epsilon = train_dp(
                optimizer,
                seed,
                self.data.train,
                (eval_x, eval_y),
                args,
                self.noise_multiplier,
                self.max_grad_norm,
                self.delta,
                epochs,
            )
        except Diverged as error:
            return _diverged(epochs, error)
        return dict(epochs=epochs, diverged=not math.isfinite(epochs[-1]["eval_loss"]), info=dict(epsilon=epsilon))

    def protocol(self) -> Dict:
        return dict(
            super().protocol(),
            target_epsilon=self.epsilon,
            delta=self.delta,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            sample_rate=self.sample_rate,
            accountant="rdp",
            sampling="Poisson",
        )


def train_dp(
    optimizer_name: str,
    seed: int,
    train: Tuple[torch.Tensor, torch.Tensor],
    evaluation: Tuple[torch.Tensor, torch.Tensor],
    args: argparse.Namespace,
    noise_multiplier: float,
    max_grad_norm: float,
    delta: float,
    epochs: List[Dict],
) -> float:
    """Opacus training of LeNet with one optimizer; appends per-epoch records to ``epochs``.

    Returns the accountant's epsilon at ``delta`` after the run. Raises common.training.Diverged
    when the training loss becomes non-finite (the records so far stay in ``epochs``).
    """
    from opacus import PrivacyEngine

    with warnings.catch_warnings():
        # Opacus' notices on every run, not about this code: the non-cryptographic RNG (fine
        # for experiments) and its backward hooks on a model whose input needs no gradient.
        warnings.filterwarnings("ignore", "Secure RNG turned off", UserWarning)
        warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
        return _train_dp(
            PrivacyEngine, optimizer_name, seed, train, evaluation, args, noise_multiplier, max_grad_norm, delta, epochs
        )


def _train_dp(
    PrivacyEngine, optimizer_name, seed, train, evaluation, args, noise_multiplier, max_grad_norm, delta, epochs
):
    torch.manual_seed(seed)  # identical initial weights for every optimizer of a seed
    model = make_model("lenet")
    optimizer = make_optimizer(optimizer_name, model.parameters(), args)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*train),
        batch_size=args.batch_size,
        generator=torch.Generator().manual_seed(seed),
    )
    engine = PrivacyEngine(accountant="rdp")
    # Same sampling and noise draws for every optimizer of a seed (they see the same shapes).
    model, optimizer, loader = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        noise_generator=torch.Generator().manual_seed(seed + 1),
    )
    steps_per_epoch = len(loader)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)

    def loss_of(batch):
        x, y = batch
        # sum / count rather than reduction="mean": a Poisson batch can be empty, and then the
        # loss is 0 instead of nan (Opacus scales per-sample gradients by the batch length).
        return F.cross_entropy(model(x), y, reduction="sum") / max(1, y.shape[0]), y.shape[0]

    for epoch in range(args.epochs):
        record = train_epoch(
            optimizer, scheduler, loader, loss_of, f"DP-{NAMES[optimizer_name]}", epoch + 1, args.curve_every
        )
        eval_loss, eval_accuracy = evaluate_classifier(model, *evaluation)
        epochs.append(dict(epoch=epoch + 1, **record, eval_loss=eval_loss, eval_accuracy=eval_accuracy))
    return engine.accountant.get_epsilon(delta, alphas=RDP_ALPHAS)
