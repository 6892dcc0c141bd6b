"""The training problems a study compares the optimizers on, each with a train part, a validation
part and a test set: LeNet-5 on Fashion-MNIST (the "full" and "small-batch" regimes) and the
byte-level language model ("charlm"). The "dp" regime is study/dp.py's.

A regime's :meth:`Regime.run` trains one configuration from one seed and evaluates it on
the split it is asked for: "val" while tuning, "test" only for the reported runs.
"""

import argparse
import copy
import math
from typing import Callable, Dict, List, Tuple

from common import fashion_mnist, lm_training, stdlib_corpus
from common.models import VOCAB, CharTransformer, count_parameters
from common.progress import quiet
from common.training import Diverged, train_classifier

import torch

from study.protocol import Config

TRAIN_IMAGES, VAL_IMAGES = 50_000, 10_000  # Fashion-MNIST's 60 000 training images, cut by position


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
    """``base`` with one trial's hyper-parameters (what common.training.make_optimizer reads)."""
    args = copy.copy(base)
    args.lr = config["lr"]
    args.momentum = config.get("momentum", 0.0)  # (AdamW's configurations have none)
    args.weight_decay = config.get("weight_decay", base.weight_decay)
    args.sigma = config.get("sigma", 1.0)
    args.mlsgd_seed = seed  # MLSGD's sigma draws vary with the seed, like everything else
    return args


def _diverged(epochs_done: List[Dict], error: Exception) -> Dict:
    return dict(epochs=epochs_done, diverged=True, info=dict(error=str(error)))


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


def fashion_base(epochs: int, batch_size: int, curve_every: int, model: str = "lenet") -> argparse.Namespace:
    """What a Fashion-MNIST regime trains with besides a trial's hyper-parameters (no weight decay)."""
    return argparse.Namespace(
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        curve_every=curve_every,
        weight_decay=0.0,
        lr=None,
        momentum=None,
        sigma=None,
        mlsgd_seed=0,
    )


class FashionRegime(Regime):
    """LeNet-5 on Fashion-MNIST, trained by common.training.train_classifier (sizes from ``base``).

    ``progress`` draws each run's progress (common.progress.bar), or nothing (the default).
    """

    chance_loss = math.log(10)

    def __init__(
        self, name: str, data: FashionData, base: argparse.Namespace, description: str, progress: Callable = quiet
    ):
        self.name, self.data, self.base, self.description = name, data, base, description
        self.progress = progress

    def run(self, optimizer: str, config: Config, seed: int, split: str) -> Dict:
        args = trial_args(self.base, config, seed)
        try:
            epochs = train_classifier(
                optimizer, seed, self.data.train, self.data.eval_split(split), args, self.progress
            )
        except Diverged as error:
            return _diverged([], error)
        return dict(epochs=epochs, diverged=not math.isfinite(epochs[-1]["eval_loss"]), info={})

    def protocol(self) -> Dict:
        return dict(
            model=self.base.model,
            batch_size=self.base.batch_size,
            epochs=self.base.epochs,
            train_images=self.data.ranges["train"],
            val_images=self.data.ranges["val"],
            test_images="all 10000 of the test file",
            lr_schedule="cosine to 0 over all steps",
        )


class CharLMRegime(Regime):
    """examples/charlm.py's byte-level transformer; validation and test are positional slices."""

    chance_loss = math.log(VOCAB)
    has_accuracy = False

    def __init__(self, base: argparse.Namespace):
        self.name, self.base = "charlm", base
        self.parts = stdlib_corpus.split_corpus(stdlib_corpus.load_corpus(base.chars))
        self.description = (
            f"byte-level transformer, d_model {base.d_model}, {base.layers} layers, "
            f"context {base.context}, {base.chars} bytes"
        )

    def run(self, optimizer: str, config: Config, seed: int, split: str) -> Dict:
        if split not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}")
        args = trial_args(self.base, config, seed)
        try:
            epochs = lm_training.train(optimizer, seed, self.parts["train"], self.parts[split], args)
        except Diverged as error:
            return _diverged([], error)
        for e in epochs:
            e["eval_accuracy"] = None
        return dict(epochs=epochs, diverged=not math.isfinite(epochs[-1]["eval_loss"]), info={})

    def protocol(self) -> Dict:
        sizes = {k: int(v.numel()) for k, v in self.parts.items()}
        return dict(
            model=dict(
                d_model=self.base.d_model,
                layers=self.base.layers,
                heads=self.base.heads,
                context=self.base.context,
                parameters=count_parameters(
                    CharTransformer(self.base.d_model, self.base.layers, self.base.heads, self.base.context)
                ),
            ),
            corpus_bytes=self.base.chars,
            split_bytes=sizes,
            batch_size=self.base.batch_size,
            epochs=self.base.epochs,
            eval_windows=self.base.eval_windows,
            lr_schedule="cosine to 0 over all steps",
        )
