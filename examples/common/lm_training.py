"""The byte-level language model's training loop, its evaluation and its two sizes.

Used by examples/charlm.py (one setting) and the study's charlm regime (study/regimes.py),
which tunes SGD, LSGD and MLSGD on it at the SMALL or FULL size below.
"""

import argparse
from typing import Callable, Dict, List, Tuple

from common.models import VOCAB, CharTransformer
from common.progress import quiet
from common.training import NAMES, make_optimizer, train_epoch

import torch
import torch.nn.functional as F

#: The default (short) and the full configuration; explicit flags win over both.
SMALL = dict(chars=60_000, d_model=48, layers=2, heads=4, context=48, eval_windows=32, batch_size=16, epochs=1)
FULL = dict(chars=1_000_000, d_model=96, layers=2, heads=4, context=64, eval_windows=0, batch_size=32, epochs=2)


def add_model_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The corpus and model flags, shared by charlm.py and tune.py (which passes ``prefix="charlm-"``)."""
    p = "--" + prefix
    parser.add_argument(p + "chars", type=int, default=None, help="bytes of stdlib source to use")
    parser.add_argument(p + "d-model", type=int, default=None)
    parser.add_argument(p + "layers", type=int, default=None)
    parser.add_argument(p + "heads", type=int, default=None)
    parser.add_argument(p + "context", type=int, default=None)
    parser.add_argument(p + "eval-windows", type=int, default=None, help="validation/test windows scored (0: all)")


def windows(tokens: torch.Tensor, starts: torch.Tensor, context: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``tokens[s:s+context]`` and next-byte targets ``tokens[s+1:s+context+1]`` for each start."""
    index = starts[:, None] + torch.arange(context + 1)[None, :]
    chunk = tokens[index]
    return chunk[:, :-1], chunk[:, 1:]


def evaluate(model: CharTransformer, tokens: torch.Tensor, max_windows: int = 0, batch_size: int = 64) -> float:
    """Mean next-byte cross-entropy (nats) over non-overlapping windows of ``tokens``.

    Every window predicts all of its positions, so each byte but the first of a window is
    scored once. ``max_windows`` (0: all) caps the cost; the windows taken are the first
    ones, so the estimate is the same for every model.
    """
    context = model.context
    starts = torch.arange(0, tokens.numel() - context, context)
    if max_windows:
        starts = starts[:max_windows]
    if starts.numel() == 0:
        raise ValueError(f"{tokens.numel()} tokens are too few for one window of {context}")
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, starts.numel(), batch_size):
            x, y = windows(tokens, starts[i : i + batch_size], context)
            total += F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1), reduction="sum").item()
    model.train()
    return total / (starts.numel() * context)


def steps_per_epoch(n_tokens: int, batch_size: int, context: int) -> int:
    """Steps that show the model about as many tokens as the training part holds."""
    return max(1, n_tokens // (batch_size * context))


def fit(optimizer_name: str, seed: int, train_tokens: torch.Tensor, eval_tokens: torch.Tensor,
        args: argparse.Namespace, progress: Callable = quiet) -> Tuple[CharTransformer, List[Dict]]:
    """Trains one optimizer setting from seed ``seed``: the model and one record per epoch.

    Each epoch record holds the mean training loss, the loss on ``eval_tokens`` after the
    epoch (``eval_loss``), the wall-clock seconds, the optimizer step's milliseconds and the
    training-loss curve (means of ``curve_every`` steps).

    ``args`` carries the model size (d_model, layers, heads, context), batch_size, epochs,
    eval_windows, curve_every and what ``make_optimizer`` reads (lr, momentum,
    weight_decay, sigma, mlsgd_seed). The learning rate decays to 0 on a cosine over all
    steps. Raises common.training.Diverged on a non-finite training loss.
    """
    torch.manual_seed(seed)  # identical initial weights for every optimizer of a seed
    model = CharTransformer(args.d_model, args.layers, args.heads, args.context)
    optimizer = make_optimizer(optimizer_name, model.parameters(), args)
    per_epoch = steps_per_epoch(train_tokens.numel(), args.batch_size, args.context)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * per_epoch)
    order = torch.Generator().manual_seed(seed)  # identical windows for every optimizer of a seed
    last_start = train_tokens.numel() - args.context - 1

    def loss_of(starts):
        x, y = windows(train_tokens, starts, args.context)
        return F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1)), starts.numel()

    epochs = []
    for epoch in range(args.epochs):
        steps = progress(
            range(per_epoch), desc=f"{NAMES[optimizer_name]:5s} seed {seed} epoch {epoch + 1}", leave=False
        )
        record = train_epoch(
            optimizer,
            scheduler,
            (torch.randint(0, last_start + 1, (args.batch_size,), generator=order) for _ in steps),
            loss_of,
            NAMES[optimizer_name],
            epoch + 1,
            args.curve_every,
        )
        eval_loss = evaluate(model, eval_tokens, args.eval_windows)
        epochs.append(dict(epoch=epoch + 1, **record, eval_loss=eval_loss))
    return model, epochs


def train(optimizer_name: str, seed: int, train_tokens: torch.Tensor, eval_tokens: torch.Tensor,
          args: argparse.Namespace, progress: Callable = quiet) -> List[Dict]:
    """:func:`fit` without the model: the per-epoch records (the shape of ``train_classifier``'s)."""
    return fit(optimizer_name, seed, train_tokens, eval_tokens, args, progress)[1]
