"""The byte-level language model's text: the Python standard library's own source, cut by position.

The text is the machine's own: every ``.py`` file under ``sysconfig``'s stdlib path (test
packages, site-packages and dist-packages left out, so that what Debian splits into other
packages does not change it), in sorted path order, joined by newlines, cut to a number of
UTF-8 bytes. The stream is split by position: the first 90 % trains, the next 5 %
validates, the last 5 % tests (the splits never overlap).
"""

import os
import sysconfig
from typing import Dict, List, Optional, Sequence, Tuple

import torch

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
        raise RuntimeError(
            f"the stdlib under {root or sysconfig.get_paths()['stdlib']} holds only {len(data)} "
            f"bytes of .py files, fewer than --chars {n_chars}"
        )
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
    return {
        name: tokens[start:stop]
        for name, (start, stop) in zip(("train", "val", "test"), split_positions(len(tokens), fractions))
    }
