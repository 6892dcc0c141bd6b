"""`make demo`: SGD, LSGD and MLSGD on Fashion-MNIST at the settings the committed study picked.

    python3 examples/demo.py                      # 3 optimizers x 2 seeds x 3 epochs (~3 min on 2 cores)
    python3 examples/demo.py --seeds 0,1,2        # the study's three seeds

Nothing is tuned here, and nothing here looks at the test set before the end. Each
optimizer's learning rate, momentum and sigma are its pick in the committed study
(docs/study/results.json, regime "full"): the setting with the lowest validation loss of
its 15 trials, trained on the train part and scored on the validation part only
(docs/study.md has the protocol). This script retrains each pick as the study's reported
runs did: LeNet-5 on the train part (the first 50 000 of the 60 000 training images),
batch 128, 3 epochs, cosine learning-rate decay to 0, from each seed, and then scores it
once on the 10 000 test images. It prints the test accuracy and loss, mean ± std over the
seeds, next to the study's own numbers (same runs; other thread counts can change the last
digits). `make demo` then prints the study's verdict table for all its regimes.
"""

import argparse
import math
import os
import sys
import time
from typing import Dict, List, Sequence

from common import fashion_mnist, progress
from common.training import NAMES, mean_std

import torch

import torch_mlsgd

from study.regimes import FashionData, FashionRegime, fashion_base
from study.report import describe_config, format_table, load_results

STUDY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "study")
REGIME = "full"  # the study's LeNet regime on all of Fashion-MNIST


def study_picks(path: str) -> Dict:
    """The "full" regime of a saved study: its protocol, and each optimizer's pick and test numbers."""
    results, _ = load_results([path])
    found = [r for r in results if r["regime"] == REGIME]
    if not found:
        raise ValueError(f"{path} has no {REGIME!r} regime (it has {', '.join(r['regime'] for r in results)})")
    return found[0]


def run_demo(result: Dict, seeds: Sequence[int], data_dir: str) -> List[Dict]:
    """Retrains every optimizer's pick from every seed; one row of test numbers per optimizer."""
    protocol = result["protocol"]
    data = FashionData(data_dir)  # the whole train part; its validation part stays unused
    # The study's curve spacing (one point per 20 steps); only the records use it.
    base = fashion_base(protocol["epochs"], protocol["batch_size"], 20, protocol["model"])
    regime = FashionRegime(REGIME, data, base, f"LeNet, batch {base.batch_size}", progress=progress.bar)
    rows, done = [], 0
    total = len(result["summary"]) * len(seeds)
    for pick in result["summary"]:
        name, runs = pick["optimizer"], []
        for seed in seeds:
            record = regime.run(name, pick["config"], seed, "test")
            done += 1
            if record["diverged"]:
                print(f"[{done}/{total}] {NAMES[name]:5s} seed {seed}: diverged", flush=True)
                continue
            last = record["epochs"][-1]
            runs.append(last)
            seconds = sum(e["seconds"] for e in record["epochs"])
            print(
                f"[{done}/{total}] {NAMES[name]:5s} seed {seed}: test accuracy {100 * last['eval_accuracy']:.2f} %, "
                f"test loss {last['eval_loss']:.4f} ({len(record['epochs'])} epochs, {seconds:.0f} s)",
                flush=True,
            )
        nan = (math.nan, math.nan)
        rows.append(
            dict(
                optimizer=name,
                config=pick["config"],
                seeds=len(runs),
                accuracy=mean_std([100 * r["eval_accuracy"] for r in runs]) if runs else nan,
                loss=mean_std([r["eval_loss"] for r in runs]) if runs else nan,
                study_accuracy=[100 * x for x in pick["test_accuracy"]],
                study_loss=pick["test_loss"],
                study_seeds=pick["seeds"],
            )
        )
    return rows


def format_rows(rows: Sequence[Dict]) -> str:
    """The demo's table: the setting picked on validation, then this run's and the study's test numbers."""
    header = ["optimizer", "setting (picked on validation)", "test accuracy %", "test loss", "study's test accuracy %"]
    return format_table(
        header,
        [
            [
                NAMES[r["optimizer"]],
                describe_config(r["config"]),
                "{:.2f} ± {:.2f}".format(*r["accuracy"]),
                "{:.4f} ± {:.4f}".format(*r["loss"]),
                "{:.2f} ± {:.2f} ({} seeds)".format(*r["study_accuracy"], r["study_seeds"]),
            ]
            for r in rows
        ],
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default=STUDY, help="the saved study whose picks are trained (default: docs/study)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds, at least two for a spread")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--data-dir", default=fashion_mnist.DEFAULT_DIR)
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not args.seeds or args.threads < 1:
        parser.error("need at least one seed and one thread")
    return args


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        result = study_picks(args.study)
    except ValueError as error:
        sys.exit(f"demo.py: {error}")
    p = result["protocol"]
    trials = max(len(t) for t in result["trials"].values())
    print(
        f"Fashion-MNIST, LeNet-5, batch {p['batch_size']}, {p['epochs']} epochs, cosine decay; seeds "
        f"{','.join(map(str, args.seeds))}, {args.threads} thread(s).\n"
        f"Each optimizer runs at the setting the committed study picked on its validation split "
        f"({os.path.relpath(args.study)}, regime {REGIME}, best of {trials} trials),\n"
        f"trains on the train part (images {p['train_images'][0]} to {p['train_images'][1]}) and is scored once "
        f"on the 10 000 test images.\n",
        flush=True,
    )
    started = time.perf_counter()
    try:
        rows = run_demo(result, args.seeds, args.data_dir)
    except fashion_mnist.DataError as error:
        sys.exit(f"demo.py: {error}")
    print(f"\ntest numbers, mean ± std over {len(args.seeds)} seed(s)\n")
    print(format_rows(rows))
    print(f"\n{time.perf_counter() - started:.0f} s, torch {torch.__version__}, torch_mlsgd {torch_mlsgd.__version__}")
    return rows


if __name__ == "__main__":
    main()
