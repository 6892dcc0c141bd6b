"""examples/saddle_nets.py's command line: the sizes, the study of each problem, its outputs."""

import argparse
import csv
import json
import os
import time
from typing import Dict, List

import torch

import saddle_study
from saddle_study.plateaus import median_iqr
from saddle_study.plots import plot
from saddle_study.problems import Problem, deep_linear_problem, tanh_problem
from saddle_study.runs import checkpoints, methods, run, summarize_run, tune


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="saddle_nets.py", description=saddle_study.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small configuration (tests)")
    size.add_argument(
        "--full", action="store_true", help="the docs/ run: 5 seeds, 9 step sizes, 2 tuning seeds, 8000 steps"
    )
    parser.add_argument("--problems", default="dln,tanh", help="comma-separated: dln, tanh")
    parser.add_argument("--out", default=os.path.join("runs", "saddle_nets"))
    parser.add_argument("--sigmas", default=None, help="LSGD's sigma values (default 1,4; --full 0.5,1,4)")
    parser.add_argument("--schedules", default="random,cyclic", help="MLSGD's schedules (sigma = 1)")
    parser.add_argument("--period", type=int, default=20, help="MLSGD's period (cyclic)")
    parser.add_argument("--batch", type=int, default=8, help="mini-batch SGD's batch size")
    parser.add_argument("--perturbation", type=float, default=1e-4, help="perturbed GD's noise per step")
    parser.add_argument(
        "--target-fraction", type=float, default=0.05, help="target loss as a fraction of the last plateau level"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.sigmas is None:
        args.sigmas = "0.5,1,4" if args.full else "1,4"
    args.sigmas = [float(s) for s in args.sigmas.split(",") if s]
    args.schedules = [s for s in args.schedules.split(",") if s]
    # (evaluation seeds, tuning seeds, step sizes in the grid, step budget)
    if args.quick:
        args.seeds, args.tune_seeds, args.grid_points, args.steps = [0, 1], [100], 4, 1500
    elif args.full:
        args.seeds, args.tune_seeds, args.grid_points, args.steps = list(range(5)), [100, 101], 9, 8000
    else:
        args.seeds, args.tune_seeds, args.grid_points, args.steps = [0, 1, 2], [100], 5, 6000
    return args


# Log-spaced step sizes from lo to hi: wide enough that every method's pick is interior
# (LSGD takes steps several times larger than GD's largest stable one).
GRIDS = {"dln": (0.05, 12.8), "tanh": (0.05, 12.8)}


def lr_grid(problem: str, points: int) -> List[float]:
    lo, hi = GRIDS[problem]
    return [float(f"{lo * (hi / lo) ** (i / (points - 1)):.3g}") for i in range(points)]


def study(problem: Problem, args) -> Dict:
    target = args.target_fraction * problem.levels[-2]
    grid = lr_grid(problem.name, args.grid_points)
    picks, runs = {}, {}
    for method in methods(args):
        started = time.perf_counter()
        lr, scores = tune(problem, method, grid, args.tune_seeds, target)
        results = []
        for seed in args.seeds:
            r = run(problem, method, lr, seed, record_distances=True)
            r["summary"] = summarize_run(problem, r, target)
            results.append(r)
        picks[method.name] = {"lr": lr, "tuning": scores, "seconds": time.perf_counter() - started}
        runs[method.name] = results
        steps = [r["summary"]["steps_to_target"] for r in results]
        print(f"  {method.name:24s} lr {lr:<6g} steps to target {steps}", flush=True)
    return {"target": target, "grid": grid, "picks": picks, "runs": runs}


def write_outputs(problem: Problem, result: Dict, args, summary_rows: List[Dict]) -> None:
    os.makedirs(args.out, exist_ok=True)
    plateaus = len(problem.levels) - 1
    with open(os.path.join(args.out, f"saddle_nets_{problem.name}.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["method", "lr", "seed"]
            + [f"plateau_{k}_steps" for k in range(plateaus)]
            + ["steps_to_target", "final_loss", "diverged"]
        )
        for name, results in result["runs"].items():
            for seed, r in zip(args.seeds, results):
                s = r["summary"]
                writer.writerow(
                    [name, result["picks"][name]["lr"], seed]
                    + ["" if v is None else v for v in s["plateau_steps"]]
                    + [
                        "" if s["steps_to_target"] is None else s["steps_to_target"],
                        f"{s['final_loss']:.6g}",
                        s["diverged"],
                    ]
                )
    for name, results in result["runs"].items():
        cells = []
        for k in range(plateaus):
            values = [r["summary"]["plateau_steps"][k] for r in results]
            cells.append(median_iqr([v for v in values if v is not None], len(values)))
        reached = [r["summary"]["steps_to_target"] for r in results]
        summary_rows.append(
            {
                "problem": problem.name,
                "method": name,
                "lr": result["picks"][name]["lr"],
                "plateaus": cells,
                "steps to target": median_iqr([v for v in reached if v is not None], len(reached)),
                "final loss": median_iqr([r["summary"]["final_loss"] for r in results], len(results), "{:.3g}"),
            }
        )
    plot(problem, result["picks"], result["runs"], os.path.join(args.out, f"saddle_nets_{problem.name}.png"))


def main(argv=None) -> Dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    builders = {"dln": lambda: deep_linear_problem(args.steps), "tanh": lambda: tanh_problem(args.steps)}
    summary_rows: List[Dict] = []
    report = {"config": {k: v for k, v in vars(args).items()}, "problems": {}}
    for name in [p for p in args.problems.split(",") if p]:
        problem = builders[name]()
        print(
            f"\n{problem.title}\n  levels {['%.4g' % v for v in problem.levels]}, "
            f"target loss {args.target_fraction * problem.levels[-2]:.4g}, step sizes {lr_grid(name, args.grid_points)}"
        )
        result = study(problem, args)
        write_outputs(problem, result, args, summary_rows)
        report["problems"][name] = {
            "title": problem.title,
            "levels": problem.levels,
            "target": result["target"],
            "grid": result["grid"],
            "picks": result["picks"],
            "runs": {
                m: [
                    {
                        "seed": s,
                        **r["summary"],
                        "distances": r["distances"],
                        "losses_log": {i: r["losses"][i] for i in checkpoints(len(r["losses"]) - 1)},
                    }
                    for s, r in zip(args.seeds, rs)
                ]
                for m, rs in result["runs"].items()
            },
        }
    most = max(len(r["plateaus"]) for r in summary_rows)
    header = ["problem", "method", "lr"] + [f"plateau {k}" for k in range(most)] + ["steps to target", "final loss"]
    table = [
        [r["problem"], r["method"], r["lr"]]
        + r["plateaus"]
        + [""] * (most - len(r["plateaus"]))
        + [r["steps to target"], r["final loss"]]
        for r in summary_rows
    ]
    with open(os.path.join(args.out, "saddle_nets_summary.csv"), "w", newline="") as f:
        csv.writer(f).writerows([header] + table)
    with open(os.path.join(args.out, "saddle_nets.json"), "w") as f:
        json.dump(report, f, separators=(",", ":"))
    print(f"\nsteps on each plateau and to the target loss: median [quartiles] over seeds {args.seeds}\n")
    widths = [max(len(str(r[i])) for r in [header] + table) for i in range(len(header))]
    for r in [header] + table:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    print(f"\n{time.perf_counter() - started:.0f} s; outputs in {args.out}")
    return report


if __name__ == "__main__":
    main()
