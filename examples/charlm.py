"""A small character-level transformer language model on the Python standard library's source.

    python3 examples/charlm.py                                  # SGD, a short run, validation loss
    python3 examples/charlm.py --optimizer lsgd --sigma 1 --lr 0.1 --epochs 2
    python3 examples/charlm.py --full                            # tune.py's full size (0.28 M parameters)

The text is the machine's own: every ``.py`` file under ``sysconfig``'s stdlib path
(test packages, site-packages and dist-packages left out, so that what Debian splits into
other packages does not change it), in sorted path order, joined by newlines, cut to
``--chars`` UTF-8 bytes. The model reads bytes (vocabulary 256), so no tokenizer is
needed and nothing is lost; "character" means byte here (the stdlib is almost all ASCII).
The stream is split by position: the first 90 % trains, the next 5 % validates, the last
5 % tests (the splits never overlap, and no window spans two of them).

The model is a pre-norm transformer (``torch.nn.TransformerEncoderLayer`` with a causal
mask, learned positions, GELU, no dropout): 0.28 M parameters at --full's d_model 96, two
layers, four heads and context 64 (0.48 M at d_model 128, context 128). It runs on torch
1.13 and 2.x. ``examples/tune.py --regime charlm`` tunes SGD, LSGD and MLSGD on it (with
common/lm_training.py's SMALL and FULL sizes); this script trains one setting and reports
the validation loss and perplexity (the test split only with ``--test``). The corpus is
common/stdlib_corpus.py's, the model common/models.py's, the loop common/lm_training.py's.
"""

import argparse
import hashlib
import math
import os

from common import lm_training, stdlib_corpus
from common.models import VOCAB, CharTransformer, count_parameters
from common.training import OPTIMIZERS

import torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    parser.add_argument("--lr", type=float, default=0.1, help="initial learning rate (cosine decay to 0)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--sigma", type=float, default=1.0, help="LSGD's sigma; MLSGD's mean sigma")
    parser.add_argument("--mlsgd-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--full", action="store_true", help="the full size: " + str(lm_training.FULL))
    lm_training.add_model_arguments(parser)
    parser.add_argument("--curve-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--test",
        action="store_true",
        help="also report the test split once at the end (never use it to choose settings)",
    )
    args = parser.parse_args(argv)
    for key, value in (lm_training.FULL if args.full else lm_training.SMALL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = stdlib_corpus.load_corpus(args.chars)
    parts = stdlib_corpus.split_corpus(data)
    print(
        f"corpus: {len(data)} bytes of stdlib source (sha256 {hashlib.sha256(data).hexdigest()[:16]}), "
        f"train/val/test {parts['train'].numel()}/{parts['val'].numel()}/{parts['test'].numel()}"
    )
    model = CharTransformer(args.d_model, args.layers, args.heads, args.context)
    print(
        f"model: {count_parameters(model)} parameters (d_model {args.d_model}, {args.layers} layers, "
        f"{args.heads} heads, context {args.context}); uniform guess {math.log(VOCAB):.3f} nats"
    )
    model, epochs = lm_training.fit(args.optimizer, args.seed, parts["train"], parts["val"], args)
    for e in epochs:
        print(
            f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}, val loss {e['eval_loss']:.4f} "
            f"(perplexity {math.exp(e['eval_loss']):.2f}), {e['seconds']:.1f} s"
        )
    if args.test:
        loss = lm_training.evaluate(model, parts["test"], args.eval_windows)
        print(f"test loss {loss:.4f} (perplexity {math.exp(loss):.2f})")
    return epochs


if __name__ == "__main__":
    main()
