"""The main job's data loader and a short training run of examples/compare.py."""

import gzip
import json
import os
import struct

from common import fashion_mnist

import pytest
import torch

# examples/ is on the path (pyproject.toml's [tool.pytest.ini_options]), as it is for the scripts there.
import compare


def write_idx(path, magic, shape, payload, compress=True):
    data = struct.pack(">I", magic) + struct.pack(">" + "I" * len(shape), *shape) + payload
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(data)


def make_split(directory, prefix, n, compress=True, label_value=3):
    suffix = ".gz" if compress else ""
    write_idx(
        os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"),
        0x803,
        (n, 28, 28),
        bytes(range(256)) * (n * 784 // 256) + bytes(n * 784 % 256),
        compress,
    )
    write_idx(
        os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"), 0x801, (n,), bytes([label_value] * n), compress
    )


def test_loads_debians_files():
    images, labels = fashion_mnist.load("test")
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and torch.equal(labels.bincount(), torch.full((10,), 1000))
    normalized = fashion_mnist.normalize(images)
    assert normalized.shape == (10000, 1, 28, 28) and abs(normalized.mean().item()) < 0.05


@pytest.mark.parametrize("compress", [True, False])
def test_reads_gzipped_and_plain_files(tmp_path, compress):
    make_split(tmp_path, "train", 5, compress=compress)
    images, labels = fashion_mnist.load("train", str(tmp_path))
    assert images.shape == (5, 28, 28) and labels.tolist() == [3] * 5
    assert images.flatten()[:3].tolist() == [0, 1, 2]


def test_missing_files_name_the_path_and_the_package(tmp_path):
    with pytest.raises(fashion_mnist.DataError) as info:
        fashion_mnist.load("train", str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "train-images-idx3-ubyte") in message and "dataset-fashion-mnist" in message


def test_corrupt_files_are_refused(tmp_path):
    make_split(tmp_path, "train", 4)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 0x802, (4,), bytes(4))
    with pytest.raises(fashion_mnist.DataError, match="magic number"):
        fashion_mnist.load("train", str(tmp_path))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 0x801, (4,), bytes(3))
    with pytest.raises(fashion_mnist.DataError, match="found 3 bytes"):
        fashion_mnist.load("train", str(tmp_path))
    make_split(tmp_path, "train", 4, label_value=12)
    with pytest.raises(fashion_mnist.DataError, match="label 12"):
        fashion_mnist.load("train", str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(fashion_mnist.DataError, match="cannot read"):
        fashion_mnist.load("train", str(tmp_path))


def test_compare_reports_missing_data_clearly(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        compare.main(["--data-dir", str(tmp_path), "--no-progress", "--out", str(tmp_path / "out")])
    assert "dataset-fashion-mnist" in str(info.value.code)


def test_short_training_run_lowers_the_loss_of_every_optimizer(tmp_path):
    out = tmp_path / "run"
    summary = compare.main(
        [
            "--epochs",
            "2",
            "--subset",
            "1536",
            "--batch-size",
            "64",
            "--seeds",
            "0",
            "--threads",
            "2",
            "--no-progress",
            "--out",
            str(out),
            "--curve-every",
            "4",
        ]
    )
    assert [r["optimizer"] for r in summary] == ["SGD", "LSGD", "MLSGD"]
    results = json.loads((out / "results.json").read_text())
    for run in results["runs"]:
        curve = [x for epoch in run["epochs"] for x in epoch["loss_curve"]]
        assert curve[-1] < 0.8 * curve[0], run["optimizer"]
        assert run["epochs"][-1]["test_accuracy"] > 0.3, run["optimizer"]
    assert (out / "curves.png").stat().st_size > 10_000
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 3 * 2


def test_small_batch_preset_keeps_explicit_flags():
    args = compare.parse_args(["--small-batch", "--lr", "0.02"])
    assert (args.batch_size, args.subset, args.epochs, args.lr) == (4, 6000, 2, 0.02)
    with pytest.raises(SystemExit):
        compare.parse_args(["--optimizers", "adam"])
