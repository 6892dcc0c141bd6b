"""examples/tune.py's command line: the regimes' sizes, building the regimes asked for, running or reporting.

``main`` runs the protocol (study/tuning.py) on every regime asked for and writes the
outputs (study/report.py); with ``--report`` it runs nothing and prints earlier results.
"""

import argparse
import math
import os
import sys
import time
from typing import Callable, Dict, List, Tuple

from common import fashion_mnist, lm_training
from common.training import OPTIMIZERS, SGD_FAMILY

import torch

import torch_mlsgd

import study
from study import dp
from study.protocol import Space, log_grid, make_space
from study.regimes import TRAIN_IMAGES, CharLMRegime, FashionData, FashionRegime, Regime, fashion_base
from study.report import describe_source, format_verdict, load_results, write_outputs
from study.tuning import run_study

REGIMES = ("full", "small-batch", "dp", "charlm")
DEFAULT_OUT = os.path.join("runs", "tune")
TUNE_SEED = 100  # trials train from this seed; the reported runs use --seeds (0, 1, ... by default)
# Points of the training-loss curves: one per CURVE_EVERY steps (fewer on small subsets),
# the spacing compare.py uses (its --small-batch preset: 100), kept so that the committed
# study's curves are what a rerun draws.
CURVE_EVERY = {"small-batch": 100}

#: Per regime, the small default and the --full study size. Explicit flags win over both.
SIZES = {
    "full": dict(
        small=dict(train_size=8192, val_size=1000, epochs=1, batch_size=128, lrs=log_grid(3e-3, 3, 4),
                   adam_lrs=log_grid(3e-4, 3e-2, 4)),
        full=dict(train_size=0, val_size=0, epochs=3, batch_size=128, lrs=log_grid(3e-3, 0.3, 5),
                  adam_lrs=log_grid(3e-4, 3e-2, 5)),
    ),
    "small-batch": dict(
        small=dict(train_size=1200, val_size=1000, epochs=1, batch_size=4, lrs=log_grid(3e-4, 0.3, 4),
                   adam_lrs=log_grid(1e-4, 1e-2, 4)),
        full=dict(train_size=6000, val_size=0, epochs=2, batch_size=4, lrs=log_grid(1e-3, 0.1, 5),
                  adam_lrs=log_grid(1e-4, 1e-2, 5)),
    ),
    "dp": dict(
        small=dict(train_size=2048, val_size=1000, epochs=1, batch_size=128, lrs=log_grid(1e-2, 10, 4),
                   adam_lrs=log_grid(1e-3, 1e-1, 4)),
        full=dict(train_size=20000, val_size=0, epochs=2, batch_size=256, lrs=log_grid(0.01, 10, 7),
                  adam_lrs=log_grid(1e-3, 1e-1, 7)),
    ),
    "charlm": dict(
        small=dict(lm_training.SMALL, lrs=log_grid(1e-2, 10, 4), adam_lrs=log_grid(1e-3, 1e-1, 4)),
        full=dict(lm_training.FULL, chars=300_000, lrs=log_grid(1e-2, 1, 5), adam_lrs=log_grid(1e-3, 3e-2, 5)),
    ),
}
SECOND_AXES = dict(
    small=dict(sgd_momenta=[0.9], sigmas=[1.0], weight_decays=[0.01], seeds=[0, 1]),
    full=dict(sgd_momenta=[0.0, 0.5, 0.9], sigmas=[0.5, 1.0, 2.0], weight_decays=[0.0, 0.01, 0.1], seeds=[0, 1, 2]),
)


def floats(text: str) -> List[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tune.py", description=study.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--regime", default="full", help=f"comma-separated: {', '.join(REGIMES)}, or all")
    parser.add_argument("--full", action="store_true", help="the real study sizes instead of the small defaults")
    parser.add_argument("--optimizers", default=",".join(SGD_FAMILY), help=f"comma-separated: {', '.join(OPTIMIZERS)}")
    parser.add_argument("--lrs", type=floats, help="learning rates of every grid (default: per regime)")
    parser.add_argument("--sgd-momenta", type=floats, help="SGD's second axis (default 0.9; --full 0,0.5,0.9)")
    parser.add_argument("--sigmas", type=floats, help="LSGD/MLSGD's second axis (default 1; --full 0.5,1,2)")
    parser.add_argument("--momentum", type=float, default=0.9, help="LSGD/MLSGD's momentum")
    parser.add_argument("--adam-lrs", type=floats, help="AdamW/LSAdamW's learning rates (default: per regime)")
    parser.add_argument(
        "--weight-decays", type=floats, help="AdamW's second axis (default 0.01; --full 0,0.01,0.1); LSAdamW's is sigma"
    )
    parser.add_argument(
        "--select-by",
        choices=("loss", "accuracy"),
        default="loss",
        help="validation metric that picks each optimizer's setting (charlm: loss only)",
    )
    parser.add_argument("--tune-seed", type=int, default=TUNE_SEED)
    parser.add_argument(
        "--seeds",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        help="seeds of the reported runs (default 0,1; --full 0,1,2)",
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--train-size", type=int, help="images of the train part used (0: all 50000)")
    parser.add_argument("--val-size", type=int, help="images of the validation part used (0: all 10000)")
    parser.add_argument("--epsilons", type=floats, default=[1.0, 3.0], help="--regime dp: target epsilons")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="--regime dp: per-sample clipping norm")
    lm_training.add_model_arguments(parser, prefix="charlm-")
    parser.add_argument("--data-dir", default=fashion_mnist.DEFAULT_DIR)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", help=f"folder for the outputs (default {DEFAULT_OUT}; with --report: none)")
    parser.add_argument(
        "--tag",
        default="",
        help="appended to every regime's name, so that a variant's run "
        "(e.g. --momentum 0) can be reported next to the main one",
    )
    parser.add_argument(
        "--report",
        nargs="+",
        metavar="RESULTS",
        help="run nothing: print the verdict table of earlier runs (results.json files or their "
        "folders, e.g. docs/study); with --out, also write their merge there",
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="only the final table")
    args = parser.parse_args(argv)
    args.regimes = (
        list(REGIMES) if args.regime.strip() == "all" else [r.strip() for r in args.regime.split(",") if r.strip()]
    )
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
    if "sgd" in args.optimizers and len(args.sgd_momenta) != len(args.sigmas):
        parser.error("equal budgets: give as many --sgd-momenta as --sigmas")
    if "adamw" in args.optimizers and len(args.weight_decays) != len(args.sigmas):
        parser.error("equal budgets: give as many --weight-decays as --sigmas")
    if not args.seeds or args.tune_seed in args.seeds:
        parser.error("need at least one reporting seed, none of them the tuning seed")
    if args.select_by == "accuracy" and "charlm" in args.regimes:
        parser.error("--select-by accuracy: the charlm regime has no accuracy")
    return args


def regime_sizes(args: argparse.Namespace, regime: str) -> Dict:
    """The regime's size table (small or --full) with the explicit flags applied."""
    sizes = dict(SIZES[regime]["full" if args.full else "small"])
    for key in ("epochs", "batch_size", "train_size", "val_size", "lrs", "adam_lrs"):
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
        return make_space(sizes["lrs"], args.sgd_momenta, args.sigmas, args.momentum, args.optimizers,
                          adam_lrs=sizes["adam_lrs"], weight_decays=args.weight_decays)

    for name in args.regimes:
        sizes = regime_sizes(args, name)
        if name in ("full", "small-batch", "dp"):
            # At least ~16 points per epoch on the training curves, whatever the subset.
            curve_every = max(
                1,
                min(
                    CURVE_EVERY.get(name, 20),
                    math.ceil((sizes["train_size"] or TRAIN_IMAGES) / sizes["batch_size"]) // 16,
                ),
            )
            base = fashion_base(sizes["epochs"], sizes["batch_size"], curve_every)
        if name == "full":
            built.append((FashionRegime("full", data(sizes), base, f"LeNet, batch {base.batch_size}"), space(sizes)))
        elif name == "small-batch":
            built.append(
                (FashionRegime("small-batch", data(sizes), base, f"LeNet, batch {base.batch_size}"), space(sizes))
            )
        elif name == "dp":
            for epsilon in args.epsilons:
                regime = dp.DPRegime(f"dp-eps{epsilon:g}", data(sizes), base, epsilon, args.delta, args.max_grad_norm)
                log(
                    f"dp-eps{epsilon:g}{args.tag}: noise multiplier {regime.noise_multiplier:.4f} for epsilon "
                    f"{epsilon:g}, delta {args.delta:g}, sample rate {regime.sample_rate:.4g}, {base.epochs} epoch(s)"
                )
                built.append((regime, space(sizes)))
        else:
            base = argparse.Namespace(
                model="charlm",
                weight_decay=0.0,
                curve_every=5,
                lr=None,
                momentum=None,
                sigma=None,
                mlsgd_seed=0,
                **{k: v for k, v in sizes.items() if k not in ("lrs", "adam_lrs")},
            )
            built.append((CharLMRegime(base), space(sizes)))
    for regime, _ in built:
        regime.name += args.tag
    return built


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
    if "dp" in args.regimes and dp.import_opacus() is None:
        message = (
            f"tune.py: --regime dp needs Opacus, which is not installed for this Python "
            f"({sys.executable}, torch {torch.__version__}). It comes from PyPI: "
            f"`python -m pip install {dp.OPACUS_PIN}` (pinned in requirements/test.txt)."
        )
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
        results.append(run_study(regime, space, args.tune_seed, args.seeds, args.select_by, log))
        log(
            f"{regime.name}: {results[-1]['seconds']['tuning']:.0f} s tuning, "
            f"{results[-1]['seconds']['reporting']:.0f} s reported runs"
        )
    total = time.perf_counter() - started
    print()
    print(format_verdict(results))
    print(
        f"\ntotal {total:.0f} s, torch {torch.__version__}, {args.threads} thread(s), torch_mlsgd "
        f"{torch_mlsgd.__version__}; {'full' if args.full else 'small default'} sizes; selected by validation "
        f"{args.select_by}, tuning seed {args.tune_seed}, reported seeds {','.join(map(str, args.seeds))}"
    )
    config = {k: v for k, v in vars(args).items() if k not in ("quiet", "report")}
    write_outputs(
        args.out,
        dict(
            config=config, results=results, seconds=total, torch=torch.__version__, torch_mlsgd=torch_mlsgd.__version__
        ),
        results,
        not args.no_plots,
    )
    return results


if __name__ == "__main__":
    main()
