"""SGD vs LSGD vs MLSGD on Fashion-MNIST at one shared learning rate, tuned for none of them.

    python3 examples/compare.py                       # defaults: LeNet, 3 epochs, 2 seeds (~5 min, 2 cores)
    python3 examples/compare.py --small-batch         # batch size 4 on a 6000-image subset, as in the LSGD paper
    python3 examples/compare.py --epochs 20 --seeds 0,1,2,3,4 --out runs/full

Every optimizer trains the same network from the same initial weights, on the same data in
the same order, with the same learning-rate schedule (cosine decay over all steps), for
each seed. Written to --out: results.json (every number), results.csv (one row per
optimizer, seed and epoch) and curves.png (training loss and test accuracy). The data,
the model and the training loop are common/'s, the ones examples/tune.py tunes with; that
script compares the optimizers fairly, each at its own tuned setting (docs/study.md).
"""

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time

from common import fashion_mnist, progress
from common.training import NAMES, OPTIMIZERS, SGD_FAMILY, mean_std, train_classifier

import torch

import torch_mlsgd


def train(optimizer_name, seed, data, args, bar):
    """One optimizer from one seed on the whole training set; test loss and accuracy after each epoch."""
    train_x, train_y, test_x, test_y = data
    epochs = train_classifier(optimizer_name, seed, (train_x, train_y), (test_x, test_y), args, bar)
    # Evaluated on the test set: the records say so.
    return [
        dict(
            {k: v for k, v in e.items() if not k.startswith("eval_")},
            test_loss=e["eval_loss"],
            test_accuracy=e["eval_accuracy"],
        )
        for e in epochs
    ]


def summarize(runs, optimizers):
    """Final-epoch numbers per optimizer, mean and standard deviation over seeds."""
    rows = []
    for name in optimizers:
        finals = [r["epochs"][-1] for r in runs if r["optimizer"] == name]
        seconds = [e["seconds"] for r in runs if r["optimizer"] == name for e in r["epochs"]]
        step_ms = [e["step_ms"] for r in runs if r["optimizer"] == name for e in r["epochs"]]
        rows.append(
            dict(
                optimizer=NAMES[name],
                train_loss=mean_std([f["train_loss"] for f in finals]),
                test_loss=mean_std([f["test_loss"] for f in finals]),
                test_accuracy=mean_std([100 * f["test_accuracy"] for f in finals]),
                seconds_per_epoch=statistics.median(seconds),
                step_ms=statistics.median(step_ms),
                seeds=len(finals),
            )
        )
    return rows


def print_table(summary, args):
    print(
        f"\nFashion-MNIST, {args.model}, {args.epochs} epochs, batch {args.batch_size}, "
        f"{'all 60000' if not args.subset else args.subset} training images, lr {args.lr} (cosine), "
        f"momentum {args.momentum}, sigma {args.sigma}; mean ± std over {summary[0]['seeds']} seed(s)\n"
    )
    header = ["optimizer", "train loss", "test loss", "test accuracy %", "s / epoch", "optimizer step ms"]
    rows = [
        [
            r["optimizer"],
            "{:.4f} ± {:.4f}".format(*r["train_loss"]),
            "{:.4f} ± {:.4f}".format(*r["test_loss"]),
            "{:.2f} ± {:.2f}".format(*r["test_accuracy"]),
            f"{r['seconds_per_epoch']:.1f}",
            f"{r['step_ms']:.3f}",
        ]
        for r in summary
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |")


def plot(runs, optimizers, args, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    steps_per_epoch = math.ceil((args.subset or 60000) / args.batch_size)
    for name in optimizers:
        mine = [r for r in runs if r["optimizer"] == name]
        curves = np.array([[x for e in r["epochs"] for x in e["loss_curve"]] for r in mine])
        x = np.arange(curves.shape[1]) * args.curve_every / steps_per_epoch
        ax_loss.plot(x, curves.mean(0), label=NAMES[name])
        ax_loss.fill_between(x, curves.min(0), curves.max(0), alpha=0.2)
        acc = np.array([[100 * e["test_accuracy"] for e in r["epochs"]] for r in mine])
        epochs = np.arange(1, acc.shape[1] + 1)
        ax_acc.errorbar(
            epochs, acc.mean(0), yerr=acc.std(0) if acc.shape[0] > 1 else None, marker="o", capsize=3, label=NAMES[name]
        )
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel(f"training loss (mean of {args.curve_every} steps)")
    ax_loss.set_yscale("log")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy %")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Fashion-MNIST, {args.model}, batch {args.batch_size}, band/bars: spread over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizers", default=",".join(SGD_FAMILY), help=f"comma-separated: {','.join(OPTIMIZERS)}")
    parser.add_argument("--model", choices=("lenet", "mlp"), default="lenet")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05, help="initial learning rate (cosine decay to 0)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--sigma", type=float, default=1.0, help="LSGD's sigma; MLSGD's mean sigma")
    parser.add_argument("--mlsgd-seed", type=int, default=0, help="seed of MLSGD's sigma draws")
    parser.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all 60000)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument(
        "--small-batch",
        action="store_true",
        help="the LSGD paper's small-batch setting: batch 4, 6000 images, lr 0.01, 2 epochs (explicit flags still win)",
    )
    parser.add_argument("--data-dir", default=fashion_mnist.DEFAULT_DIR)
    parser.add_argument("--out", default=os.path.join("runs", "compare"))
    parser.add_argument("--curve-every", type=int, default=20, help="steps per point of the loss curve")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.small_batch:
        given = {a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:])}
        for flag, attr, value in (
            ("--batch-size", "batch_size", 4),
            ("--subset", "subset", 6000),
            ("--lr", "lr", 0.01),
            ("--epochs", "epochs", 2),
            ("--curve-every", "curve_every", 100),
        ):
            if flag not in given:
                setattr(args, attr, value)
    args.optimizers = [o.strip().lower() for o in args.optimizers.split(",") if o.strip()]
    for o in args.optimizers:
        if o not in OPTIMIZERS:
            parser.error(f"unknown optimizer {o!r} (choose from {', '.join(OPTIMIZERS)})")
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not args.seeds or args.epochs < 1 or args.batch_size < 1 or args.threads < 1:
        parser.error("need at least one seed, one epoch, a positive batch size and thread count")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        train_x, train_y = fashion_mnist.load("train", args.data_dir)
        test_x, test_y = fashion_mnist.load("test", args.data_dir)
    except fashion_mnist.DataError as error:
        sys.exit(f"compare.py: {error}")
    if args.subset:
        train_x, train_y = train_x[: args.subset], train_y[: args.subset]
    data = (fashion_mnist.normalize(train_x), train_y, fashion_mnist.normalize(test_x), test_y)
    bar = progress.quiet if args.no_progress else progress.bar

    runs = []
    started = time.perf_counter()
    for seed in args.seeds:
        for name in args.optimizers:
            epochs = train(name, seed, data, args, bar)
            runs.append(dict(optimizer=name, seed=seed, epochs=epochs))
            last = epochs[-1]
            print(
                f"{NAMES[name]:5s} seed {seed}: train loss {last['train_loss']:.4f}, test accuracy "
                f"{100 * last['test_accuracy']:.2f} %, {last['seconds']:.1f} s/epoch",
                flush=True,
            )
    summary = summarize(runs, args.optimizers)
    print_table(summary, args)
    print(
        f"\ntotal {time.perf_counter() - started:.0f} s, torch {torch.__version__}, {args.threads} thread(s), "
        f"torch_mlsgd {torch_mlsgd.__version__} ({torch_mlsgd.cpu_kernels()} CPU kernels)"
    )

    os.makedirs(args.out, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "no_progress"}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(dict(config=config, summary=summary, runs=runs, torch=torch.__version__), f, indent=1)
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["optimizer", "seed", "epoch", "train_loss", "test_loss", "test_accuracy", "seconds", "step_ms"]
        )
        for r in runs:
            for e in r["epochs"]:
                writer.writerow(
                    [
                        NAMES[r["optimizer"]],
                        r["seed"],
                        e["epoch"],
                        f"{e['train_loss']:.6f}",
                        f"{e['test_loss']:.6f}",
                        f"{e['test_accuracy']:.6f}",
                        f"{e['seconds']:.3f}",
                        f"{e['step_ms']:.4f}",
                    ]
                )
    plot(runs, args.optimizers, args, os.path.join(args.out, "curves.png"))
    print(f"wrote {args.out}/results.json, results.csv, curves.png")
    return summary


if __name__ == "__main__":
    main()
