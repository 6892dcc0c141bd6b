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
the SMALL and FULL sizes below); this script trains one setting and reports the
validation loss and perplexity (the test split only with ``--test``).
"""

import argparse
import hashlib
import math
import os
import sys
import sysconfig
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare  # noqa: E402  (make_optimizer, OPTIMIZERS, NAMES; it also puts torch_mlsgd on the path)

VOCAB = 256
SPLIT_FRACTIONS = (0.90, 0.05, 0.05)  # train, validation, test: by position in the stream
# Directories of the stdlib tree that are not the library itself, or that distributions
# ship in separate packages (Debian's libpython3.X-testsuite): leaving them out keeps the
# corpus the same on machines with and without those packages.
SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


def stdlib_files(root: Optional[str] = None) -> List[str]:
    """The standard library's ``.py`` files under ``root`` (default: sysconfig's stdlib), sorted."""
    root = root or sysconfig.get_paths()["stdlib"]
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS)
        found.extend(os.path.join(directory, f) for f in files if f.endswith(".py"))
    # Sort on the path relative to the root, so the order does not depend on where it lives.
    return sorted(found, key=lambda path: os.path.relpath(path, root))


def load_corpus(n_chars: int, root: Optional[str] = None) -> bytes:
    """The first ``n_chars`` bytes of the stdlib's sources joined by newlines (deterministic)."""
    pieces, total = [], 0
    for path in stdlib_files(root):
        with open(path, "rb") as f:
            piece = f.read() + b"\n"
        pieces.append(piece)
        total += len(piece)
        if total >= n_chars:
            break
    data = b"".join(pieces)[:n_chars]
    if len(data) < n_chars:
        raise RuntimeError(f"the stdlib under {root or sysconfig.get_paths()['stdlib']} holds only {len(data)} "
                           f"bytes of .py files, fewer than --chars {n_chars}")
    return data


def split_positions(n: int, fractions: Sequence[float] = SPLIT_FRACTIONS) -> List[Tuple[int, int]]:
    """``[start, stop)`` of the train, validation and test parts of a stream of ``n`` tokens."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    train_end = int(round(n * fractions[0]))
    val_end = train_end + int(round(n * fractions[1]))
    return [(0, train_end), (train_end, val_end), (val_end, n)]


def split_corpus(data: bytes, fractions: Sequence[float] = SPLIT_FRACTIONS) -> Dict[str, torch.Tensor]:
    """The byte stream as int64 tokens, cut by position into "train", "val" and "test"."""
    tokens = torch.tensor(list(data), dtype=torch.int64)
    return {name: tokens[start:stop]
            for name, (start, stop) in zip(("train", "val", "test"), split_positions(len(tokens), fractions))}


class CharTransformer(torch.nn.Module):
    """A pre-norm causal transformer over bytes: embedding, ``layers`` encoder layers, a linear head."""

    def __init__(self, d_model: int = 128, layers: int = 2, heads: int = 4, context: int = 128,
                 vocab: int = VOCAB):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not a multiple of heads {heads}")
        self.context = context
        self.embed = torch.nn.Embedding(vocab, d_model)
        self.position = torch.nn.Parameter(torch.zeros(context, d_model))
        torch.nn.init.normal_(self.position, std=0.02)
        # A ModuleList rather than nn.TransformerEncoder: the latter warns about its nested-tensor
        # fast path on torch 2.x when norm_first is set, and adds nothing here.
        self.blocks = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=0.0,
                                             activation="gelu", batch_first=True, norm_first=True)
            for _ in range(layers))
        self.norm = torch.nn.LayerNorm(d_model)
        self.head = torch.nn.Linear(d_model, vocab)
        # -inf above the diagonal: position t attends to positions <= t only. A float mask,
        # which torch 1.13 and 2.x both take.
        self.register_buffer("mask", torch.triu(torch.full((context, context), float("-inf")), diagonal=1),
                             persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, vocab) of the next byte at every position of ``tokens`` (batch, time)."""
        length = tokens.shape[1]
        if length > self.context:
            raise ValueError(f"sequence of {length} tokens is longer than the context {self.context}")
        x = self.embed(tokens) + self.position[:length]
        mask = self.mask[:length, :length]
        for block in self.blocks:
            x = block(x, src_mask=mask)
        return self.head(self.norm(x))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def windows(tokens: torch.Tensor, starts: torch.Tensor, context: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``tokens[s:s+context]`` and next-byte targets ``tokens[s+1:s+context+1]`` for each start."""
    index = starts[:, None] + torch.arange(context + 1)[None, :]
    chunk = tokens[index]
    return chunk[:, :-1], chunk[:, 1:]


def evaluate(model: CharTransformer, tokens: torch.Tensor, max_windows: int = 0,
             batch_size: int = 64) -> float:
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
            x, y = windows(tokens, starts[i:i + batch_size], context)
            total += F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1), reduction="sum").item()
    model.train()
    return total / (starts.numel() * context)


def steps_per_epoch(n_tokens: int, batch_size: int, context: int) -> int:
    """Steps that show the model about as many tokens as the training part holds."""
    return max(1, n_tokens // (batch_size * context))


def fit(optimizer_name: str, seed: int, train_tokens: torch.Tensor, eval_tokens: torch.Tensor, args,
        progress: Callable = lambda iterable, **_: iterable) -> Tuple[CharTransformer, List[Dict]]:
    """Trains one optimizer setting from seed ``seed``: the model and one record per epoch.

    Each epoch record holds the mean training loss, the loss on ``eval_tokens`` after the
    epoch (``eval_loss``), the wall-clock seconds, the optimizer step's milliseconds and the
    training-loss curve (means of ``curve_every`` steps).

    ``args`` carries the model size (d_model, layers, heads, context), batch_size, epochs,
    eval_windows, curve_every and what ``compare.make_optimizer`` reads (lr, momentum,
    weight_decay, sigma, mlsgd_seed). The learning rate decays to 0 on a cosine over all
    steps, as in compare.py. Raises compare.Diverged on a non-finite training loss.
    """
    torch.manual_seed(seed)  # identical initial weights for every optimizer of a seed
    model = CharTransformer(args.d_model, args.layers, args.heads, args.context)
    optimizer = compare.make_optimizer(optimizer_name, model.parameters(), args)
    per_epoch = steps_per_epoch(train_tokens.numel(), args.batch_size, args.context)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * per_epoch)
    order = torch.Generator().manual_seed(seed)  # identical windows for every optimizer of a seed
    last_start = train_tokens.numel() - args.context - 1

    def loss_of(starts):
        x, y = windows(train_tokens, starts, args.context)
        return F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1)), starts.numel()

    epochs = []
    for epoch in range(args.epochs):
        bar = progress(range(per_epoch), desc=f"{compare.NAMES[optimizer_name]:5s} seed {seed} epoch {epoch + 1}",
                       leave=False)
        record = compare.train_epoch(
            optimizer, scheduler, (torch.randint(0, last_start + 1, (args.batch_size,), generator=order) for _ in bar),
            loss_of, compare.NAMES[optimizer_name], epoch + 1, args.curve_every)
        eval_loss = evaluate(model, eval_tokens, args.eval_windows)
        epochs.append(dict(epoch=epoch + 1, **record, eval_loss=eval_loss))
    return model, epochs


def train(optimizer_name: str, seed: int, train_tokens: torch.Tensor, eval_tokens: torch.Tensor, args,
          progress: Callable = lambda iterable, **_: iterable) -> List[Dict]:
    """:func:`fit` without the model: the per-epoch records (the shape of ``compare.train``'s)."""
    return fit(optimizer_name, seed, train_tokens, eval_tokens, args, progress)[1]


def add_model_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The corpus and model flags, shared with tune.py (which passes ``prefix="charlm-"``)."""
    p = "--" + prefix
    parser.add_argument(p + "chars", type=int, default=None, help="bytes of stdlib source to use")
    parser.add_argument(p + "d-model", type=int, default=None)
    parser.add_argument(p + "layers", type=int, default=None)
    parser.add_argument(p + "heads", type=int, default=None)
    parser.add_argument(p + "context", type=int, default=None)
    parser.add_argument(p + "eval-windows", type=int, default=None,
                        help="validation/test windows scored (0: all)")


#: The default (short) and the full configuration; explicit flags win over both.
SMALL = dict(chars=60_000, d_model=48, layers=2, heads=4, context=48, eval_windows=32, batch_size=16, epochs=1)
FULL = dict(chars=1_000_000, d_model=96, layers=2, heads=4, context=64, eval_windows=0, batch_size=32, epochs=2)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizer", choices=compare.OPTIMIZERS, default="sgd")
    parser.add_argument("--lr", type=float, default=0.1, help="initial learning rate (cosine decay to 0)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--sigma", type=float, default=1.0, help="LSGD's sigma; MLSGD's mean sigma")
    parser.add_argument("--mlsgd-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--full", action="store_true", help="the full size: " + str(FULL))
    add_model_arguments(parser)
    parser.add_argument("--curve-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--test", action="store_true",
                        help="also report the test split once at the end (never use it to choose settings)")
    args = parser.parse_args(argv)
    for key, value in (FULL if args.full else SMALL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_corpus(args.chars)
    parts = split_corpus(data)
    print(f"corpus: {len(data)} bytes of stdlib source (sha256 {hashlib.sha256(data).hexdigest()[:16]}), "
          f"train/val/test {parts['train'].numel()}/{parts['val'].numel()}/{parts['test'].numel()}")
    model = CharTransformer(args.d_model, args.layers, args.heads, args.context)
    print(f"model: {count_parameters(model)} parameters (d_model {args.d_model}, {args.layers} layers, "
          f"{args.heads} heads, context {args.context}); uniform guess {math.log(VOCAB):.3f} nats")
    model, epochs = fit(args.optimizer, args.seed, parts["train"], parts["val"], args)
    for e in epochs:
        print(f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}, val loss {e['eval_loss']:.4f} "
              f"(perplexity {math.exp(e['eval_loss']):.2f}), {e['seconds']:.1f} s")
    if args.test:
        loss = evaluate(model, parts["test"], args.eval_windows)
        print(f"test loss {loss:.4f} (perplexity {math.exp(loss):.2f})")
    return epochs


if __name__ == "__main__":
    main()
