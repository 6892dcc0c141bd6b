"""SGD vs LSGD vs MLSGD, each tuned with the same budget on a validation split.

    python3 examples/tune.py                                # --regime full, small defaults (~1 min)
    python3 examples/tune.py --regime all --threads 1       # every regime, small defaults (a few minutes)
    python3 examples/tune.py --regime full --full           # the study's size (about 30 min on one thread)
    .venv/bin/python examples/tune.py --regime dp           # DP-SGD vs DP-LSGD vs DP-MLSGD (needs Opacus)
    python3 examples/tune.py --report docs/study            # the committed study's verdict table; runs nothing

The protocol, the same for every regime (docs/study.md has the grids and the sizes):

1. Splits. Fashion-MNIST's 60 000 training images are cut by position: images [0, 50000)
   are the *train part*, images [50000, 60000) the *validation part*. The small defaults
   take the first --train-size images of the train part and the first --val-size of the
   validation part. The 10 000 test images are touched only in step 4. The character LM
   cuts its byte stream by position (examples/charlm.py: 90 % train, 5 % validation, 5 % test).
2. Budget. Every optimizer gets the same number of trials: its grid is --lrs (log-spaced,
   wide) times one second axis of the same length, momentum for SGD (--sgd-momenta) and
   sigma for LSGD and MLSGD (--sigmas, at momentum --momentum, compare.py's 0.9). Every
   trial trains on the train part from the tuning seed (--tune-seed, never a reporting
   seed) for the same epochs with the same cosine learning-rate decay, as compare.py does.
3. Selection. Each optimizer's pick is its trial with the lowest final validation loss
   (--select-by accuracy: the highest validation accuracy); a trial whose loss became
   non-finite is never picked. Reported with it: whether the pick's lr (or second value)
   is at an edge of its grid (then the grid should be widened), and the largest stable lr
   (the largest lr, at the pick's other values, whose trial ended finite and at least 2 %
   below the chance-level loss, ln(classes) or ln(256)).
4. Report. Each pick is retrained on the train part from every --seeds seed (the same
   steps as in tuning, so the tuned schedule is the one reported) and evaluated once per
   epoch on the test set: mean ± std over seeds of the test loss and accuracy (perplexity
   for the LM), and wall-clock per epoch. The verdict names the best optimizer by the test
   counterpart of the selection metric and says whether its margin over the runner-up
   exceeds the spread (the sum of the two standard deviations over seeds).

Regimes (--regime, comma-separated, or all): "full" (LeNet, batch 128, as compare.py),
"small-batch" (batch 4 on a 6000-image subset, compare.py's --small-batch), "dp"
(differentially private training with Opacus, one sub-regime per --epsilons value, same
noise multiplier, clipping norm, epochs and batch size for every optimizer) and "charlm"
(examples/charlm.py's byte-level transformer on the stdlib's source; no accuracy, so
selection by validation loss). Defaults are small (subsets, 1 epoch, 4 trials per
optimizer, 2 seeds) so that every regime runs in a few minutes on 2 cores; --full gives the
study's sizes (15 trials per optimizer, 21 for dp; 3 seeds; docs/study holds its results).
Written to --out: results.json (everything), trials.csv, finals.csv, sensitivity.png
(validation loss against lr) and curves.png (training loss of the picks). --report reads
such results.json files back, prints their verdict table and, with --out, writes their merge.
"""

import argparse
import copy
import csv
import json
import math
import os
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import charlm  # noqa: E402
import compare  # noqa: E402  (it also puts the right torch_mlsgd first on sys.path)
import fashion_mnist  # noqa: E402
import torch_mlsgd  # noqa: E402

OPTIMIZERS = compare.OPTIMIZERS
NAMES = compare.NAMES
REGIMES = ("full", "small-batch", "dp", "charlm")
TRAIN_IMAGES, VAL_IMAGES = 50_000, 10_000  # Fashion-MNIST's 60 000 training images, cut by position
DEFAULT_OUT = os.path.join("runs", "tune")
TUNE_SEED = 100  # trials train from this seed; the reported runs use --seeds (0, 1, ... by default)
OPACUS_PIN = "opacus==1.6.0"
# RDP orders for the accountant: Opacus' defaults (1.1 ... 63) and more. Short runs with a
# small epsilon have their best bound beyond order 63, where the defaults stop (Opacus then
# warns that the bound is not tight).
RDP_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + list(range(64, 513, 8))

Config = Dict[str, float]
Space = Dict[str, List[Config]]


# ----------------------------------------------------------------------------------------------
# Protocol machinery: pure functions over configurations and validation results.
# ----------------------------------------------------------------------------------------------

def log_grid(low: float, high: float, points: int) -> List[float]:
    """``points`` log-spaced values from ``low`` to ``high`` (both included), to 3 significant digits."""
    if points == 1:
        return [low]
    ratio = (high / low) ** (1 / (points - 1))
    return [float(f"{low * ratio ** i:.3g}") for i in range(points)]


def make_space(lrs: Sequence[float], sgd_momenta: Sequence[float], sigmas: Sequence[float], momentum: float,
               optimizers: Sequence[str] = OPTIMIZERS) -> Space:
    """Every optimizer's grid: ``lrs`` times its second axis, the same number of trials each.

    SGD's second axis is its momentum; LSGD's and MLSGD's is sigma (at ``momentum``). The
    two axes must have the same length, so that no optimizer gets more trials than another.
    """
    if not lrs:
        raise ValueError("need at least one learning rate")
    if len(sgd_momenta) != len(sigmas):
        raise ValueError(f"equal budgets need as many SGD momenta ({len(sgd_momenta)}) as sigmas ({len(sigmas)})")
    space: Space = {}
    for name in optimizers:
        if name == "sgd":
            space[name] = [dict(lr=float(lr), momentum=float(m)) for m in sgd_momenta for lr in lrs]
        else:
            space[name] = [dict(lr=float(lr), momentum=float(momentum), sigma=float(s)) for s in sigmas for lr in lrs]
    check_equal_budget(space)
    return space


def check_equal_budget(space: Space) -> int:
    """The number of trials per optimizer; ValueError if the optimizers' budgets differ."""
    counts = {name: len(configs) for name, configs in space.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"unequal tuning budgets: {counts}")
    return next(iter(counts.values()))


@dataclass
class Trial:
    """One tuning run: a configuration and what it reached on the *validation* split only."""

    optimizer: str
    config: Config
    val_loss: float
    val_accuracy: Optional[float]
    status: str  # "ok", "diverged" (non-finite loss) or "no-progress" (see trial_status)
    seconds_per_epoch: float
    loss_curve: List[float] = field(default_factory=list)


# A trial is "ok" (stable and learning) when its final validation loss is at least 2 % below the
# chance level; a loss that merely grazes chance level is a network that has not learnt or has
# collapsed to a constant prediction, which is how too large a step shows up without a nan.
STABLE_FRACTION = 0.98


def trial_status(val_loss: float, diverged: bool, chance_loss: float) -> str:
    """'diverged' (non-finite), 'ok' (below STABLE_FRACTION x chance level) or 'no-progress'."""
    if diverged or not math.isfinite(val_loss):
        return "diverged"
    return "ok" if val_loss < STABLE_FRACTION * chance_loss else "no-progress"


def score(trial: Trial, select_by: str = "loss") -> float:
    """Lower is better: the validation loss, or minus the validation accuracy; +inf if diverged."""
    if trial.status == "diverged":
        return math.inf
    if select_by == "loss":
        return trial.val_loss
    if trial.val_accuracy is None:
        raise ValueError("--select-by accuracy needs a regime that measures accuracy")
    return -trial.val_accuracy


def select(trials: Sequence[Trial], select_by: str = "loss") -> Trial:
    """The best trial by :func:`score` (ties: the first in grid order). Sees validation results only."""
    if not trials:
        raise ValueError("no trials to select from")
    return min(trials, key=lambda t: score(t, select_by))


def edges(pick: Trial, configs: Sequence[Config]) -> Dict[str, str]:
    """Hyper-parameters whose picked value is the lowest or highest of its grid axis.

    Only axes with at least three values count: a two-point axis has no interior. A pick at
    an edge means the optimum may lie outside the grid, and the grid should be widened.
    """
    found = {}
    for key, value in pick.config.items():
        values = sorted({c[key] for c in configs if key in c})
        if len(values) >= 3 and value in (values[0], values[-1]):
            found[key] = "lowest" if value == values[0] else "highest"
    return found


def largest_stable_lr(trials: Sequence[Trial], pick: Trial) -> Optional[float]:
    """The largest lr whose trial ended "ok", among the trials sharing the pick's other values."""
    others = {k: v for k, v in pick.config.items() if k != "lr"}
    stable = [t.config["lr"] for t in trials
              if t.status == "ok" and all(t.config.get(k) == v for k, v in others.items())]
    return max(stable) if stable else None


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    return compare.mean_std(list(values))


def verdict(rows: Sequence[Dict], metric: str, higher_is_better: bool) -> Dict:
    """Which optimizer is best by ``metric`` (a key holding (mean, std)), and by how much.

    ``exceeds_spread``: the best mean differs from the runner-up's by more than the sum of
    their standard deviations over seeds, a deliberately plain criterion (with 2-3 seeds no
    test has much power; the numbers are in the table for a reader's own judgement); None
    when either has fewer than two finished seeds (rows carry ``seeds`` and ``diverged_seeds``).
    """
    usable = [r for r in rows if math.isfinite(r[metric][0])]
    if not usable:
        return dict(best=None, runner_up=None, margin=None, spread=None, exceeds_spread=False, metric=metric)
    ranked = sorted(usable, key=lambda r: -r[metric][0] if higher_is_better else r[metric][0])
    best = ranked[0]
    if len(ranked) == 1:
        return dict(best=best["optimizer"], runner_up=None, margin=None, spread=None, exceeds_spread=False,
                    metric=metric)
    second = ranked[1]
    margin = abs(best[metric][0] - second[metric][0])
    spread = best[metric][1] + second[metric][1]
    # With fewer than two finished seeds there is no spread to measure the margin against.
    measured = min(r.get("seeds", 0) - r.get("diverged_seeds", 0) for r in (best, second)) >= 2
    return dict(best=best["optimizer"], runner_up=second["optimizer"], margin=margin, spread=spread,
                exceeds_spread=(margin > spread) if measured else None, metric=metric)


def describe_config(config: Config) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in config.items())


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded to their widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |" for row in rows]
    return "\n".join(lines)


def format_verdict(results: Sequence[Dict]) -> str:
    """The closing table: per regime, each optimizer's pick and test numbers, then who is best.

    ``results`` holds one dict per regime with keys regime, summary (rows as made by
    :func:`summarize`), verdict (from :func:`verdict`) and optionally note.
    """
    header = ["regime", "optimizer", "pick (by validation)", "max stable lr", "test loss", "test acc. % / ppl",
              "s / epoch", ""]
    rows = []
    for result in results:
        best = result["verdict"]["best"]
        for r in result["summary"]:
            if r["test_accuracy"] is not None:
                second = "{:.2f} ± {:.2f}".format(100 * r["test_accuracy"][0], 100 * r["test_accuracy"][1])
            else:
                second = f"ppl {r['test_perplexity']:.2f}"
            flags = []
            if r["optimizer"] == best:
                flags.append("best")
            if r["edges"]:
                flags.append("edge: " + ", ".join(f"{k} {v}" for k, v in r["edges"].items()))
            if r["diverged_seeds"]:
                flags.append(f"{r['diverged_seeds']} seed(s) diverged")
            stable = "none" if r["largest_stable_lr"] is None else f"{r['largest_stable_lr']:g}"
            rows.append([result["regime"], NAMES[r["optimizer"]], describe_config(r["config"]), stable,
                         "{:.4f} ± {:.4f}".format(*r["test_loss"]), second, f"{r['seconds_per_epoch']:.2f}",
                         "; ".join(flags)])
    lines = [format_table(header, rows), ""]
    for result in results:
        v = result["verdict"]
        metric = v["metric"].replace("_", " ")
        if v["best"] is None:
            lines.append(f"{result['regime']}: no optimizer finished with a finite {metric}")
        elif v["runner_up"] is None:
            lines.append(f"{result['regime']}: only {NAMES[v['best']]} was compared")
        else:
            scale = 100 if v["metric"] == "test_accuracy" else 1
            unit = " points" if scale == 100 else ""
            head = (f"{result['regime']}: best {NAMES[v['best']]} by {metric}; its margin over "
                    f"{NAMES[v['runner_up']]}, {scale * v['margin']:.4g}{unit}, ")
            if v["exceeds_spread"] is None:
                lines.append(head + "cannot be judged: fewer than two seeds finished, so there is no spread")
            else:
                word = "exceeds" if v["exceeds_spread"] else "is within"
                lines.append(head + f"{word} the spread over seeds ({scale * v['spread']:.4g}{unit}, the sum of "
                             f"the two standard deviations)")
        if result.get("note"):
            lines.append(f"  {result['note']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Regimes: a training problem with a train part, a validation part and a test set.
# ----------------------------------------------------------------------------------------------

class Regime:
    """One training problem. :meth:`run` trains a configuration and evaluates it on one split.

    ``split`` is "val" while tuning and "test" only for the reported runs; the returned
    record holds ``epochs`` (train_loss, eval_loss, eval_accuracy or None, seconds, step_ms,
    loss_curve per epoch), ``diverged`` and ``info``.
    """

    name: str = ""
    chance_loss: float = math.inf  # the loss of the uniform prediction
    has_accuracy: bool = True
    description: str = ""

    def run(self, optimizer: str, config: Config, seed: int, split: str) -> Dict:
        raise NotImplementedError

    def protocol(self) -> Dict:
        """What a reader needs to reproduce the regime (sizes, splits); stored in results.json."""
        return {}


def trial_args(base: argparse.Namespace, config: Config, seed: int) -> argparse.Namespace:
    """``base`` with one trial's hyper-parameters (what compare.make_optimizer reads)."""
    args = copy.copy(base)
    args.lr = config["lr"]
    args.momentum = config["momentum"]
    args.sigma = config.get("sigma", 1.0)
    args.mlsgd_seed = seed  # MLSGD's sigma draws vary with the seed, like everything else
    return args


def _diverged(epochs_done: List[Dict], error: Exception) -> Dict:
    return dict(epochs=epochs_done, diverged=True, info=dict(error=str(error)))


def _quiet(iterable, **_):
    return iterable


class FashionData:
    """Fashion-MNIST cut into the train part, the validation part and (loaded on demand) the test set."""

    def __init__(self, data_dir: str, train_size: int = 0, val_size: int = 0):
        images, labels = fashion_mnist.load("train", data_dir)
        (train_lo, train_hi), (val_lo, val_hi) = fashion_split(images.shape[0], train_size, val_size)
        self.train = (fashion_mnist.normalize(images[train_lo:train_hi]), labels[train_lo:train_hi])
        self.val = (fashion_mnist.normalize(images[val_lo:val_hi]), labels[val_lo:val_hi])
        self.ranges = dict(train=(train_lo, train_hi), val=(val_lo, val_hi))
        self.data_dir = data_dir
        self._test = None

    def eval_split(self, split: str) -> Tuple[torch.Tensor, torch.Tensor]:
        if split == "val":
            return self.val
        if split != "test":
            raise ValueError(f"unknown split {split!r}")
        if self._test is None:  # loaded the first time a reported run needs it, never while tuning
            images, labels = fashion_mnist.load("test", self.data_dir)
            self._test = (fashion_mnist.normalize(images), labels)
        return self._test


def fashion_split(n_images: int, train_size: int = 0, val_size: int = 0) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """``[start, stop)`` of the train part and the validation part of the training images.

    The last VAL_IMAGES of the ``n_images`` are the validation part, the rest the train part;
    ``train_size``/``val_size`` (0: all) keep the first images of each.
    """
    if n_images <= VAL_IMAGES:
        raise ValueError(f"{n_images} training images leave nothing to train on after {VAL_IMAGES} for validation")
    train_hi = n_images - VAL_IMAGES
    for name, size, limit in (("train", train_size, train_hi), ("validation", val_size, VAL_IMAGES)):
        if size < 0 or size > limit:
            raise ValueError(f"{name} size {size} is not in [0, {limit}]")
    return (0, train_size or train_hi), (train_hi, train_hi + (val_size or VAL_IMAGES))


class FashionRegime(Regime):
    """LeNet-5 on Fashion-MNIST, trained by compare.train (batch size and epochs from ``base``)."""

    chance_loss = math.log(10)

    def __init__(self, name: str, data: FashionData, base: argparse.Namespace, description: str):
        self.name, self.data, self.base, self.description = name, data, base, description

    def run(self, optimizer: str, config: Config, seed: int, split: str) -> Dict:
        train_x, train_y = self.data.train
        eval_x, eval_y = self.data.eval_split(split)
        args = trial_args(self.base, config, seed)
        try:
            epochs = compare.train(optimizer, seed, (train_x, train_y, eval_x, eval_y), args, _quiet)
        except compare.Diverged as error:
            return _diverged([], error)
        # compare.train calls its evaluation split "test"; here it is whichever split was asked for.
        epochs = [dict(epoch=e["epoch"], train_loss=e["train_loss"], eval_loss=e["test_loss"],
                       eval_accuracy=e["test_accuracy"], seconds=e["seconds"], step_ms=e["step_ms"],
                       loss_curve=e["loss_curve"]) for e in epochs]
        return dict(epochs=epochs, diverged=not math.isfinite(epochs[-1]["eval_loss"]), info={})

    def protocol(self) -> Dict:
        return dict(model=self.base.model, batch_size=self.base.batch_size, epochs=self.base.epochs,
                    train_images=self.data.ranges["train"], val_images=self.data.ranges["val"],
                    test_images="all 10000 of the test file", lr_schedule="cosine to 0 over all steps")


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

    def __init__(self, name: str, data: FashionData, base: argparse.Namespace, epsilon: float, delta: float,
                 max_grad_norm: float):
        from opacus.accountants.utils import get_noise_multiplier

        super().__init__(name, data, base, f"DP, epsilon {epsilon:g}, delta {delta:g}")
        self.epsilon, self.delta, self.max_grad_norm = epsilon, delta, max_grad_norm
        n = data.train[0].shape[0]
        # make_private uses sample rate 1 / len(data_loader), i.e. 1 / ceil(n / batch): the same here.
        self.sample_rate = 1 / math.ceil(n / base.batch_size)
        self.noise_multiplier = get_noise_multiplier(target_epsilon=epsilon, target_delta=delta,
                                                     sample_rate=self.sample_rate, epochs=base.epochs,
                                                     accountant="rdp", alphas=RDP_ALPHAS)

    def run(self, optimizer: str, config: Config, seed: int, split: str) -> Dict:
        eval_x, eval_y = self.data.eval_split(split)
        args = trial_args(self.base, config, seed)
        epochs: List[Dict] = []
        try:
            epsilon = train_dp(optimizer, seed, self.data.train, (eval_x, eval_y), args, self.noise_multiplier,
                               self.max_grad_norm, self.delta, epochs)
        except compare.Diverged as error:
            return _diverged(epochs, error)
        return dict(epochs=epochs, diverged=not math.isfinite(epochs[-1]["eval_loss"]), info=dict(epsilon=epsilon))

    def protocol(self) -> Dict:
        return dict(super().protocol(), target_epsilon=self.epsilon, delta=self.delta,
                    noise_multiplier=self.noise_multiplier, max_grad_norm=self.max_grad_norm,
                    sample_rate=self.sample_rate, accountant="rdp", sampling="Poisson")


def train_dp(optimizer_name: str, seed: int, train: Tuple[torch.Tensor, torch.Tensor],
             evaluation: Tuple[torch.Tensor, torch.Tensor], args: argparse.Namespace, noise_multiplier: float,
             max_grad_norm: float, delta: float, epochs: List[Dict]) -> float:
    """Opacus training of LeNet with one optimizer; appends per-epoch records to ``epochs``.

    Returns the accountant's epsilon at ``delta`` after the run. Raises compare.Diverged
    when the training loss becomes non-finite (the records so far stay in ``epochs``).
    """
    from opacus import PrivacyEngine

    with warnings.catch_warnings():
        # Opacus' notices on every run, not about this code: the non-cryptographic RNG (fine
        # for experiments) and its backward hooks on a model whose input needs no gradient.
        warnings.filterwarnings("ignore", "Secure RNG turned off", UserWarning)
        warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
        return _train_dp(PrivacyEngine, optimizer_name, seed, train, evaluation, args, noise_multiplier,
                         max_grad_norm, delta, epochs)


def _train_dp(PrivacyEngine, optimizer_name, seed, train, evaluation, args, noise_multiplier, max_grad_norm, delta,
              epochs):
    torch.manual_seed(seed)  # identical initial weights for every optimizer of a seed
    model = compare.make_model("lenet")
    optimizer = compare.make_optimizer(optimizer_name, model.parameters(), args)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train), batch_size=args.batch_size,
                                         generator=torch.Generator().manual_seed(seed))
    engine = PrivacyEngine(accountant="rdp")
    # Same sampling and noise draws for every optimizer of a seed (they see the same shapes).
    model, optimizer, loader = engine.make_private(module=model, optimizer=optimizer, data_loader=loader,
                                                   noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
                                                   noise_generator=torch.Generator().manual_seed(seed + 1))
    steps_per_epoch = len(loader)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)

    def loss_of(batch):
        x, y = batch
        # sum / count rather than reduction="mean": a Poisson batch can be empty, and then the
        # loss is 0 instead of nan (Opacus scales per-sample gradients by the batch length).
        return F.cross_entropy(model(x), y, reduction="sum") / max(1, y.shape[0]), y.shape[0]

    for epoch in range(args.epochs):
        record = compare.train_epoch(optimizer, scheduler, loader, loss_of, f"DP-{NAMES[optimizer_name]}", epoch + 1,
                                     args.curve_every)
        eval_loss, eval_accuracy = compare.evaluate(model, *evaluation)
        epochs.append(dict(epoch=epoch + 1, **record, eval_loss=eval_loss, eval_accuracy=eval_accuracy))
    return engine.accountant.get_epsilon(delta, alphas=RDP_ALPHAS)


class CharLMRegime(Regime):
    """examples/charlm.py's byte-level transformer; validation and test are positional slices."""

    chance_loss = math.log(charlm.VOCAB)
    has_accuracy = False

    def __init__(self, base: argparse.Namespace):
        self.name, self.base = "charlm", base
        self.parts = charlm.split_corpus(charlm.load_corpus(base.chars))
        self.description = (f"byte-level transformer, d_model {base.d_model}, {base.layers} layers, "
                            f"context {base.context}, {base.chars} bytes")

    def run(self, optimizer: str, config: Config, seed: int, split: str) -> Dict:
        if split not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}")
        args = trial_args(self.base, config, seed)
        try:
            epochs = charlm.train(optimizer, seed, self.parts["train"], self.parts[split], args)
        except compare.Diverged as error:
            return _diverged([], error)
        for e in epochs:
            e["eval_accuracy"] = None
        return dict(epochs=epochs, diverged=not math.isfinite(epochs[-1]["eval_loss"]), info={})

    def protocol(self) -> Dict:
        sizes = {k: int(v.numel()) for k, v in self.parts.items()}
        return dict(model=dict(d_model=self.base.d_model, layers=self.base.layers, heads=self.base.heads,
                               context=self.base.context,
                               parameters=charlm.count_parameters(charlm.CharTransformer(
                                   self.base.d_model, self.base.layers, self.base.heads, self.base.context))),
                    corpus_bytes=self.base.chars, split_bytes=sizes, batch_size=self.base.batch_size,
                    epochs=self.base.epochs, eval_windows=self.base.eval_windows,
                    lr_schedule="cosine to 0 over all steps")


# ----------------------------------------------------------------------------------------------
# The study: tune on validation, pick, report on test.
# ----------------------------------------------------------------------------------------------

def run_trials(regime: Regime, space: Space, seed: int, log: Callable[[str], None] = print) -> Dict[str, List[Trial]]:
    """Trains every configuration of ``space`` from ``seed``, evaluating on the validation split only."""
    trials: Dict[str, List[Trial]] = {}
    for optimizer, configs in space.items():
        trials[optimizer] = []
        for config in configs:
            record = regime.run(optimizer, config, seed, "val")
            last = record["epochs"][-1] if record["epochs"] else None
            val_loss = last["eval_loss"] if last and not record["diverged"] else math.inf
            trial = Trial(optimizer=optimizer, config=dict(config), val_loss=val_loss,
                          val_accuracy=last["eval_accuracy"] if last and not record["diverged"] else None,
                          status=trial_status(val_loss, record["diverged"], regime.chance_loss),
                          seconds_per_epoch=statistics.fmean(e["seconds"] for e in record["epochs"])
                          if record["epochs"] else math.nan,
                          loss_curve=[x for e in record["epochs"] for x in e["loss_curve"]])
            trials[optimizer].append(trial)
            accuracy = "" if trial.val_accuracy is None else f", val acc {100 * trial.val_accuracy:.2f} %"
            log(f"  [{regime.name}] {NAMES[optimizer]:5s} {describe_config(config)}: val loss {val_loss:.4f}"
                f"{accuracy} ({trial.status})")
    return trials


def summarize(regime: Regime, picks: Dict[str, Trial], finals: Dict[str, List[Dict]], trials: Dict[str, List[Trial]],
              space: Space) -> List[Dict]:
    """One row per optimizer: its pick, and the final-epoch test numbers, mean ± std over seeds."""
    rows = []
    for optimizer, runs in finals.items():
        finished = [r for r in runs if not r["diverged"]]
        losses = [r["epochs"][-1]["eval_loss"] for r in finished]
        row = dict(optimizer=optimizer, config=picks[optimizer].config, val_loss=picks[optimizer].val_loss,
                   edges=edges(picks[optimizer], space[optimizer]),
                   largest_stable_lr=largest_stable_lr(trials[optimizer], picks[optimizer]),
                   seeds=len(runs), diverged_seeds=len(runs) - len(finished),
                   test_loss=mean_std(losses) if losses else (math.nan, math.nan), test_accuracy=None,
                   test_perplexity=math.exp(statistics.fmean(losses)) if losses else math.nan,
                   seconds_per_epoch=statistics.fmean(e["seconds"] for r in finished for e in r["epochs"])
                   if finished else math.nan,
                   step_ms=statistics.fmean(e["step_ms"] for r in finished for e in r["epochs"])
                   if finished else math.nan)
        if regime.has_accuracy:
            accuracies = [r["epochs"][-1]["eval_accuracy"] for r in finished]
            row["test_accuracy"] = mean_std(accuracies) if accuracies else (math.nan, math.nan)
        epsilons = [r["info"]["epsilon"] for r in finished if "epsilon" in r["info"]]
        if epsilons:
            row["epsilon"] = max(epsilons)
        rows.append(row)
    return rows


def notes_for(regime: Regime, summary: Sequence[Dict]) -> str:
    """What a reader of the verdict must know besides the numbers: picks at a grid edge, DP's budget."""
    notes = [f"{NAMES[r['optimizer']]}'s pick is at the {' and '.join(f'{v} {k}' for k, v in r['edges'].items())} "
             f"of its grid" for r in summary if r["edges"]]
    if notes:
        notes[-1] += "; widen the grid"
    epsilons = [r["epsilon"] for r in summary if "epsilon" in r]
    if epsilons:
        p = regime.protocol()
        notes.append(f"noise multiplier {p['noise_multiplier']:.4f}, clipping norm {p['max_grad_norm']:g} for every "
                     f"optimizer; accountant's epsilon {max(epsilons):.3f} at delta {p['delta']:g} (target "
                     f"{p['target_epsilon']:g}), per training run, the tuning runs not included")
    return "; ".join(notes)


def study(regime: Regime, space: Space, tune_seed: int, seeds: Sequence[int], select_by: str = "loss",
          log: Callable[[str], None] = print) -> Dict:
    """The whole protocol for one regime: trials on validation, picks, reported runs on test."""
    started = time.perf_counter()
    log(f"{regime.name}: {check_equal_budget(space)} trials per optimizer on the validation split "
        f"({regime.description})")
    trials = run_trials(regime, space, tune_seed, log)
    picks = {name: select(trials[name], select_by) for name in space}
    tuned = time.perf_counter()
    finals: Dict[str, List[Dict]] = {}
    for name, pick in picks.items():
        finals[name] = []
        for seed in seeds:
            record = regime.run(name, pick.config, seed, "test")
            finals[name].append(dict(record, seed=seed))
            if record["diverged"]:
                log(f"  [{regime.name}] {NAMES[name]:5s} pick, seed {seed}: diverged")
            else:
                last = record["epochs"][-1]
                log(f"  [{regime.name}] {NAMES[name]:5s} pick ({describe_config(pick.config)}), seed {seed}: "
                    f"test loss {last['eval_loss']:.4f}"
                    + ("" if last["eval_accuracy"] is None else f", test acc {100 * last['eval_accuracy']:.2f} %"))
    summary = summarize(regime, picks, finals, trials, space)
    if regime.has_accuracy and select_by == "accuracy":
        decision = verdict(summary, "test_accuracy", higher_is_better=True)
    else:
        decision = verdict(summary, "test_loss", higher_is_better=False)
    return dict(regime=regime.name, description=regime.description, protocol=regime.protocol(),
                space=space, select_by=select_by, tune_seed=tune_seed, seeds=list(seeds),
                trials={k: [asdict(t) for t in v] for k, v in trials.items()}, summary=summary, verdict=decision,
                finals=finals, note=notes_for(regime, summary),
                seconds=dict(tuning=tuned - started, reporting=time.perf_counter() - tuned))


# ----------------------------------------------------------------------------------------------
# Sizes, command line, output.
# ----------------------------------------------------------------------------------------------

#: Per regime, the small default and the --full study size. Explicit flags win over both.
SIZES = {
    "full": dict(small=dict(train_size=8192, val_size=1000, epochs=1, batch_size=128, lrs=log_grid(3e-3, 3, 4)),
                 full=dict(train_size=0, val_size=0, epochs=3, batch_size=128, lrs=log_grid(3e-3, 0.3, 5))),
    "small-batch": dict(small=dict(train_size=1200, val_size=1000, epochs=1, batch_size=4,
                                   lrs=log_grid(3e-4, 0.3, 4)),
                        full=dict(train_size=6000, val_size=0, epochs=2, batch_size=4, lrs=log_grid(1e-3, 0.1, 5))),
    "dp": dict(small=dict(train_size=2048, val_size=1000, epochs=1, batch_size=128, lrs=log_grid(1e-2, 10, 4)),
               full=dict(train_size=20000, val_size=0, epochs=2, batch_size=256, lrs=log_grid(0.01, 10, 7))),
    "charlm": dict(small=dict(charlm.SMALL, lrs=log_grid(1e-2, 10, 4)),
                   full=dict(charlm.FULL, chars=300_000, lrs=log_grid(1e-2, 1, 5))),
}
SECOND_AXES = dict(small=dict(sgd_momenta=[0.9], sigmas=[1.0], seeds=[0, 1]),
                   full=dict(sgd_momenta=[0.0, 0.5, 0.9], sigmas=[0.5, 1.0, 2.0], seeds=[0, 1, 2]))


def floats(text: str) -> List[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regime", default="full", help=f"comma-separated: {', '.join(REGIMES)}, or all")
    parser.add_argument("--full", action="store_true", help="the real study sizes instead of the small defaults")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--lrs", type=floats, help="learning rates of every grid (default: per regime)")
    parser.add_argument("--sgd-momenta", type=floats, help="SGD's second axis (default 0.9; --full 0,0.5,0.9)")
    parser.add_argument("--sigmas", type=floats, help="LSGD/MLSGD's second axis (default 1; --full 0.5,1,2)")
    parser.add_argument("--momentum", type=float, default=0.9, help="LSGD/MLSGD's momentum (compare.py's)")
    parser.add_argument("--select-by", choices=("loss", "accuracy"), default="loss",
                        help="validation metric that picks each optimizer's setting (charlm: loss only)")
    parser.add_argument("--tune-seed", type=int, default=TUNE_SEED)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",") if x.strip()],
                        help="seeds of the reported runs (default 0,1; --full 0,1,2)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--train-size", type=int, help="images of the train part used (0: all 50000)")
    parser.add_argument("--val-size", type=int, help="images of the validation part used (0: all 10000)")
    parser.add_argument("--epsilons", type=floats, default=[1.0, 3.0], help="--regime dp: target epsilons")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="--regime dp: per-sample clipping norm")
    charlm.add_model_arguments(parser, prefix="charlm-")
    parser.add_argument("--data-dir", default=fashion_mnist.DEFAULT_DIR)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", help=f"folder for the outputs (default {DEFAULT_OUT}; with --report: none)")
    parser.add_argument("--tag", default="", help="appended to every regime's name, so that a variant's run "
                        "(e.g. --momentum 0) can be reported next to the main one")
    parser.add_argument("--report", nargs="+", metavar="RESULTS",
                        help="run nothing: print the verdict table of earlier runs (results.json files or their "
                             "folders, e.g. docs/study); with --out, also write their merge there")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="only the final table")
    args = parser.parse_args(argv)
    args.regimes = list(REGIMES) if args.regime.strip() == "all" else \
        [r.strip() for r in args.regime.split(",") if r.strip()]
    for r in args.regimes:
        if r not in REGIMES:
            parser.error(f"unknown regime {r!r} (choose from {', '.join(REGIMES)}, or all)")
    args.optimizers = [o.strip().lower() for o in args.optimizers.split(",") if o.strip()]
    for o in args.optimizers:
        if o not in OPTIMIZERS:
            parser.error(f"unknown optimizer {o!r} (choose from {', '.join(OPTIMIZERS)})")
    size = "full" if args.full else "small"
    for key, value in SECOND_AXES[size].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if len(args.sgd_momenta) != len(args.sigmas):
        parser.error("equal budgets: give as many --sgd-momenta as --sigmas")
    if not args.seeds or args.tune_seed in args.seeds:
        parser.error("need at least one reporting seed, none of them the tuning seed")
    if args.select_by == "accuracy" and "charlm" in args.regimes:
        parser.error("--select-by accuracy: the charlm regime has no accuracy")
    return args


def regime_sizes(args: argparse.Namespace, regime: str) -> Dict:
    """The regime's size table (small or --full) with the explicit flags applied."""
    sizes = dict(SIZES[regime]["full" if args.full else "small"])
    for key in ("epochs", "batch_size", "train_size", "val_size", "lrs"):
        if getattr(args, key, None) is not None and key in sizes:
            sizes[key] = getattr(args, key)
    for key in ("chars", "d_model", "layers", "heads", "context", "eval_windows"):
        value = getattr(args, "charlm_" + key)
        if value is not None and key in sizes:
            sizes[key] = value
    return sizes


def build_regimes(args: argparse.Namespace, log: Callable[[str], None]) -> List[Tuple[Regime, Space]]:
    """The regimes asked for, each with its grid. Loads the data each needs, once."""
    built = []
    fashion: Dict[Tuple[int, int], FashionData] = {}

    def data(sizes: Dict) -> FashionData:
        key = (sizes["train_size"], sizes["val_size"])
        if key not in fashion:
            fashion[key] = FashionData(args.data_dir, *key)
        return fashion[key]

    def space(sizes: Dict) -> Space:
        return make_space(sizes["lrs"], args.sgd_momenta, args.sigmas, args.momentum, args.optimizers)

    for name in args.regimes:
        sizes = regime_sizes(args, name)
        if name in ("full", "small-batch", "dp"):
            # compare.py's own defaults (LeNet, momentum, curve spacing; --small-batch's preset),
            # then this regime's sizes.
            base = compare.parse_args(["--small-batch"] if name == "small-batch" else [])
            base.epochs, base.batch_size = sizes["epochs"], sizes["batch_size"]
            # At least ~16 points per epoch on the training curves, whatever the subset.
            base.curve_every = max(1, min(base.curve_every, math.ceil(
                (sizes["train_size"] or TRAIN_IMAGES) / sizes["batch_size"]) // 16))
        if name == "full":
            built.append((FashionRegime("full", data(sizes), base, f"LeNet, batch {base.batch_size}"), space(sizes)))
        elif name == "small-batch":
            built.append((FashionRegime("small-batch", data(sizes), base, f"LeNet, batch {base.batch_size}"),
                          space(sizes)))
        elif name == "dp":
            for epsilon in args.epsilons:
                regime = DPRegime(f"dp-eps{epsilon:g}", data(sizes), base, epsilon, args.delta, args.max_grad_norm)
                log(f"dp-eps{epsilon:g}{args.tag}: noise multiplier {regime.noise_multiplier:.4f} for epsilon {epsilon:g}, "
                    f"delta {args.delta:g}, sample rate {regime.sample_rate:.4g}, {base.epochs} epoch(s)")
                built.append((regime, space(sizes)))
        else:
            base = argparse.Namespace(model="charlm", weight_decay=0.0, curve_every=5, lr=None, momentum=None,
                                      sigma=None, mlsgd_seed=0, **{k: v for k, v in sizes.items() if k != "lrs"})
            built.append((CharLMRegime(base), space(sizes)))
    for regime, _ in built:
        regime.name += args.tag
    return built


def write_csvs(results: Sequence[Dict], out: str) -> None:
    with open(os.path.join(out, "trials.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["regime", "optimizer", "lr", "momentum", "sigma", "val_loss", "val_accuracy", "status",
                         "seconds_per_epoch"])
        for result in results:
            for name, trials in result["trials"].items():
                for t in trials:
                    writer.writerow([result["regime"], NAMES[name], t["config"]["lr"], t["config"]["momentum"],
                                     t["config"].get("sigma", ""), f"{t['val_loss']:.6f}",
                                     "" if t["val_accuracy"] is None else f"{t['val_accuracy']:.6f}", t["status"],
                                     f"{t['seconds_per_epoch']:.3f}"])
    with open(os.path.join(out, "finals.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["regime", "optimizer", "lr", "momentum", "sigma", "seed", "epoch", "train_loss",
                         "test_loss", "test_accuracy", "seconds", "step_ms", "epsilon"])
        for result in results:
            for name, runs in result["finals"].items():
                config = next(r["config"] for r in result["summary"] if r["optimizer"] == name)
                for run in runs:
                    for e in run["epochs"]:
                        writer.writerow([result["regime"], NAMES[name], config["lr"], config["momentum"],
                                         config.get("sigma", ""), run["seed"], e["epoch"], f"{e['train_loss']:.6f}",
                                         f"{e['eval_loss']:.6f}",
                                         "" if e["eval_accuracy"] is None else f"{e['eval_accuracy']:.6f}",
                                         f"{e['seconds']:.3f}", f"{e['step_ms']:.4f}",
                                         run["info"].get("epsilon", "")])


def plot(results: Sequence[Dict], out: str) -> None:
    """sensitivity.png: validation loss against lr; curves.png: training loss of the picks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colors = dict(sgd="C0", lsgd="C1", mlsgd="C2")
    columns = len(results)
    fig, axes = plt.subplots(1, columns, figsize=(4.6 * columns, 4), squeeze=False)
    for ax, result in zip(axes[0], results):
        chance = math.log(charlm.VOCAB) if result["regime"].startswith("charlm") else math.log(10)
        for name, trials in result["trials"].items():
            second = "momentum" if name == "sgd" else "sigma"
            values = sorted({t["config"][second] for t in trials})
            for i, value in enumerate(values):
                mine = sorted((t for t in trials if t["config"][second] == value), key=lambda t: t["config"]["lr"])
                lrs = [t["config"]["lr"] for t in mine]
                # Diverged trials are drawn at 1.1 x chance level, with an x; losses above it are clipped.
                losses = [min(t["val_loss"], 1.1 * chance) for t in mine]
                style = ["-", "--", ":"][i % 3]
                ax.plot(lrs, losses, style, color=colors[name], marker="o", ms=3,
                        label=f"{NAMES[name]} {second} {value:g}")
                bad = [(lr, loss) for lr, loss, t in zip(lrs, losses, mine) if t["status"] == "diverged"]
                if bad:
                    ax.plot(*zip(*bad), "x", color=colors[name], ms=8)
        for row in result["summary"]:
            if row["largest_stable_lr"] is not None:  # dash patterns keep coinciding lines visible
                ax.axvline(row["largest_stable_lr"], color=colors[row["optimizer"]], alpha=0.6, lw=2,
                           ls=dict(sgd="-", lsgd="--", mlsgd=":")[row["optimizer"]])
        ax.axhline(chance, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_ylim(top=1.15 * chance)
        ax.set_xlabel("initial learning rate")
        ax.set_ylabel("final validation loss")
        ax.set_title(f"{result['regime']}: validation loss; vertical: largest stable lr; x: diverged",
                     fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sensitivity.png"), dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, columns, figsize=(4.6 * columns, 4), squeeze=False)
    for ax, result in zip(axes[0], results):
        for name, runs in result["finals"].items():
            curves = [[x for e in r["epochs"] for x in e["loss_curve"]] for r in runs if not r["diverged"]]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            curves = np.array([c[:length] for c in curves])
            epochs = len(runs[0]["epochs"])
            x = np.linspace(0, epochs, length, endpoint=False)
            ax.plot(x, curves.mean(0), color=colors[name], label=NAMES[name])
            ax.fill_between(x, curves.min(0), curves.max(0), color=colors[name], alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_title(f"{result['regime']}: the picks over {len(result['seeds'])} seeds (band: min-max)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=100)
    plt.close(fig)


def _plain(value):
    """results.json without NaN/inf (not JSON): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _nan(value):
    return math.nan if value is None else value


def _restore(result: Dict) -> Dict:
    """Undo :func:`_plain` where a number is expected: the nulls that were NaN become NaN again.

    Only the numeric fields are touched; nulls that mean "none" (an accuracy the LM does
    not have, a largest stable lr that does not exist) stay null.
    """
    for trials in result["trials"].values():
        for t in trials:
            t["val_loss"] = _nan(t["val_loss"])
            t["seconds_per_epoch"] = _nan(t["seconds_per_epoch"])
            t["loss_curve"] = [_nan(x) for x in t.get("loss_curve", [])]
    for row in result["summary"]:
        row["test_loss"] = [_nan(x) for x in row["test_loss"]]
        if row["test_accuracy"] is not None:
            row["test_accuracy"] = [_nan(x) for x in row["test_accuracy"]]
        for key in ("val_loss", "test_perplexity", "seconds_per_epoch", "step_ms"):
            row[key] = _nan(row.get(key))
    for runs in result["finals"].values():
        for run in runs:
            for e in run["epochs"]:
                for key in ("train_loss", "eval_loss", "seconds", "step_ms"):
                    e[key] = _nan(e[key])
                e["loss_curve"] = [_nan(x) for x in e["loss_curve"]]
    return result


def load_results(paths: Sequence[str]) -> Tuple[List[Dict], List[Dict]]:
    """The regimes' results of earlier runs, in the order given, and where each came from.

    Each path is a results.json written by this script (one run, or a merge written by
    ``--report ... --out``) or a folder holding one. A regime that appears twice is an
    error: a table must not silently show one of two different runs.
    """
    results: List[Dict] = []
    sources: List[Dict] = []
    for path in paths:
        file = os.path.join(path, "results.json") if os.path.isdir(path) else path
        try:
            with open(file) as f:
                saved = json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read results from {path!r}: {error}") from error
        if not isinstance(saved, dict) or "results" not in saved:
            raise ValueError(f"{file!r} is not a results.json written by tune.py (it has no 'results')")
        # A merged file lists its own sources; a single run is its own source.
        sources.extend(saved.get("sources") or [dict(path=file, config=saved.get("config"),
                                                     torch=saved.get("torch"), seconds=saved.get("seconds"),
                                                     torch_mlsgd=saved.get("torch_mlsgd"))])
        for result in saved["results"]:
            if any(r["regime"] == result["regime"] for r in results):
                raise ValueError(f"regime {result['regime']!r} appears twice (again in {file!r})")
            results.append(_restore(result))
    return results, sources


def describe_source(source: Dict) -> str:
    """One line: which run a result came from (torch, sizes, seeds, wall-clock)."""
    config = source.get("config") or {}
    seconds = source.get("seconds")
    return (f"{source.get('path')}: regimes {','.join(config.get('regimes', []))}, "
            f"{'full' if config.get('full') else 'small default'} sizes, torch {source.get('torch')}, "
            f"{config.get('threads')} thread(s), tuning seed {config.get('tune_seed')}, reported seeds "
            f"{','.join(map(str, config.get('seeds', [])))}"
            + ("" if seconds is None else f", {seconds / 60:.0f} min"))


def write_outputs(out: str, saved: Dict, results: Sequence[Dict], plots: bool) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(_plain(saved), f, indent=1)
    write_csvs(results, out)
    if plots:
        plot(results, out)
    print(f"wrote {out}/results.json, trials.csv, finals.csv" + (", sensitivity.png, curves.png" if plots else ""))


def report(args: argparse.Namespace) -> List[Dict]:
    """--report: the verdict table of earlier runs; with --out, their merge (JSON, CSVs, plots)."""
    try:
        results, sources = load_results(args.report)
    except ValueError as error:
        sys.exit(f"tune.py: {error}")
    print(format_verdict(results))
    print("\nfrom " + "\n     ".join(describe_source(s) for s in sources))
    if args.out is not None:
        write_outputs(args.out, dict(sources=sources, results=results), results, not args.no_plots)
    return results


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    if args.report:
        return report(args)
    if args.out is None:
        args.out = DEFAULT_OUT
    torch.set_num_threads(args.threads)
    log = (lambda _: None) if args.quiet else (lambda line: print(line, flush=True))
    if "dp" in args.regimes and import_opacus() is None:
        message = (f"tune.py: --regime dp needs Opacus, which is not installed for this Python "
                   f"({sys.executable}, torch {torch.__version__}). It comes from PyPI: "
                   f"`python -m pip install {OPACUS_PIN}` (pinned in requirements/test.txt).")
        if args.regime.strip() != "all":
            sys.exit(message)
        print(message + " Skipping the dp regime.", file=sys.stderr)
        args.regimes.remove("dp")
    started = time.perf_counter()
    try:
        regimes = build_regimes(args, log)
    except fashion_mnist.DataError as error:
        sys.exit(f"tune.py: {error}")
    results = []
    for regime, space in regimes:
        results.append(study(regime, space, args.tune_seed, args.seeds, args.select_by, log))
        log(f"{regime.name}: {results[-1]['seconds']['tuning']:.0f} s tuning, "
            f"{results[-1]['seconds']['reporting']:.0f} s reported runs")
    total = time.perf_counter() - started
    print()
    print(format_verdict(results))
    print(f"\ntotal {total:.0f} s, torch {torch.__version__}, {args.threads} thread(s), torch_mlsgd "
          f"{torch_mlsgd.__version__}; {'full' if args.full else 'small default'} sizes; selected by validation "
          f"{args.select_by}, tuning seed {args.tune_seed}, reported seeds {','.join(map(str, args.seeds))}")
    config = {k: v for k, v in vars(args).items() if k not in ("quiet", "report")}
    write_outputs(args.out, dict(config=config, results=results, seconds=total, torch=torch.__version__,
                                 torch_mlsgd=torch_mlsgd.__version__), results, not args.no_plots)
    return results


if __name__ == "__main__":
    main()
