"""Fashion-MNIST from the IDX files of Debian's dataset-fashion-mnist package.

    images, labels = load("train")            # uint8 (60000, 28, 28), int64 (60000,)
    images, labels = load("test", data_dir)   # another copy of the four files

Files may be gzipped (as Debian ships them) or not. A missing or corrupt file raises
DataError naming the path, the problem and how to get the data.
"""

import gzip
import os
import struct
from typing import Tuple

import numpy as np
import torch

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
PACKAGE = "dataset-fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Mean and standard deviation of the training images, for normalisation.
MEAN, STD = 0.2860, 0.3530


class DataError(RuntimeError):
    """A Fashion-MNIST file is missing or not a valid IDX file."""


def _read(data_dir: str, name: str) -> bytes:
    for candidate in (name + ".gz", name):
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            try:
                if candidate.endswith(".gz"):
                    with gzip.open(path, "rb") as f:
                        return f.read()
                with open(path, "rb") as f:
                    return f.read()
            except (OSError, EOFError) as error:
                raise DataError(f"cannot read Fashion-MNIST file {path}: {error}") from error
    raise DataError(
        f"Fashion-MNIST file not found: {os.path.join(data_dir, name)}.gz (nor uncompressed). Install Debian's "
        f"{PACKAGE} package (`sudo apt-get install {PACKAGE}`; `make demo` does it as root), or pass --data-dir "
        f"with a directory holding {', '.join(n + '.gz' for pair in FILES.values() for n in pair)}."
    )


def _parse(data: bytes, path: str, magic: int, dims: int) -> np.ndarray:
    if len(data) < 4 + 4 * dims:
        raise DataError(f"corrupt Fashion-MNIST file {path}: {len(data)} bytes is too short for an IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise DataError(f"corrupt Fashion-MNIST file {path}: IDX magic number {found:#010x}, expected {magic:#010x}")
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    body = data[4 + 4 * dims :]
    if len(body) != int(np.prod(shape)):
        raise DataError(
            f"corrupt Fashion-MNIST file {path}: header says {shape} ({int(np.prod(shape))} bytes), "
            f"found {len(body)} bytes of data"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load(split: str, data_dir: str = DEFAULT_DIR) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8, N x 28 x 28) and labels (int64, N) of the "train" or "test" split."""
    if split not in FILES:
        raise ValueError(f"Invalid split: {split!r} (expected 'train' or 'test')")
    image_name, label_name = FILES[split]
    images = _parse(_read(data_dir, image_name), os.path.join(data_dir, image_name), 0x00000803, 3)
    labels = _parse(_read(data_dir, label_name), os.path.join(data_dir, label_name), 0x00000801, 1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"Fashion-MNIST {split} files in {data_dir} disagree: {images.shape[0]} images, {labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"corrupt Fashion-MNIST file {os.path.join(data_dir, label_name)}: label {labels.max()}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32, one channel, zero mean and unit variance (training statistics)."""
    return ((images.float() / 255.0 - MEAN) / STD).unsqueeze(1)
