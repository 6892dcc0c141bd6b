"""What a study writes and reads: the verdict table, results.json and its CSVs, and reading them back.

results.json holds everything (NaN and infinity as null, which JSON has); ``load_results``
restores the NaNs, so that a saved study prints the same table as the run that made it.
"""

import csv
import json
import math
import os
from typing import Dict, List, Sequence, Tuple

from common.training import NAMES

from study.plots import plot
from study.protocol import Config


def describe_config(config: Config) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in config.items())


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded to their widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = [
        "| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |" for row in rows]
    return "\n".join(lines)


def format_verdict(results: Sequence[Dict]) -> str:
    """The closing table: per regime, each optimizer's pick and test numbers, then who is best.

    ``results`` holds one dict per regime with keys regime, summary (rows as made by
    :func:`summarize`), verdict (from :func:`verdict`) and optionally note.
    """
    header = [
        "regime",
        "optimizer",
        "pick (by validation)",
        "max stable lr",
        "test loss",
        "test acc. % / ppl",
        "s / epoch",
        "",
    ]
    rows = []
    for result in results:
        best = result["verdict"]["best"]
        for r in result["summary"]:
            if r["test_accuracy"] is not None:
                second = "{:.2f} ± {:.2f}".format(100 * r["test_accuracy"][0], 100 * r["test_accuracy"][1])
            else:
                second = f"ppl {r['test_perplexity']:.2f}"
            flags = []
            if r["optimizer"] == best:
                flags.append("best")
            if r["edges"]:
                flags.append("edge: " + ", ".join(f"{k} {v}" for k, v in r["edges"].items()))
            if r["diverged_seeds"]:
                flags.append(f"{r['diverged_seeds']} seed(s) diverged")
            stable = "none" if r["largest_stable_lr"] is None else f"{r['largest_stable_lr']:g}"
            rows.append(
                [
                    result["regime"],
                    NAMES[r["optimizer"]],
                    describe_config(r["config"]),
                    stable,
                    "{:.4f} ± {:.4f}".format(*r["test_loss"]),
                    second,
                    f"{r['seconds_per_epoch']:.2f}",
                    "; ".join(flags),
                ]
            )
    lines = [format_table(header, rows), ""]
    for result in results:
        v = result["verdict"]
        metric = v["metric"].replace("_", " ")
        if v["best"] is None:
            lines.append(f"{result['regime']}: no optimizer finished with a finite {metric}")
        elif v["runner_up"] is None:
            lines.append(f"{result['regime']}: only {NAMES[v['best']]} was compared")
        else:
            scale = 100 if v["metric"] == "test_accuracy" else 1
            unit = " points" if scale == 100 else ""
            head = (
                f"{result['regime']}: best {NAMES[v['best']]} by {metric}; its margin over "
                f"{NAMES[v['runner_up']]}, {scale * v['margin']:.4g}{unit}, "
            )
            if v["exceeds_spread"] is None:
                lines.append(head + "cannot be judged: fewer than two seeds finished, so there is no spread")
            else:
                word = "exceeds" if v["exceeds_spread"] else "is within"
                lines.append(
                    head + f"{word} the spread over seeds ({scale * v['spread']:.4g}{unit}, the sum of "
                    f"the two standard deviations)"
                )
        if result.get("note"):
            lines.append(f"  {result['note']}")
    return "\n".join(lines)


def write_csvs(results: Sequence[Dict], out: str) -> None:
    with open(os.path.join(out, "trials.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["regime", "optimizer", "lr", "momentum", "sigma", "weight_decay", "val_loss",
                         "val_accuracy", "status", "seconds_per_epoch"])
        for result in results:
            for name, trials in result["trials"].items():
                for t in trials:
                    writer.writerow(
                        [
                            result["regime"],
                            NAMES[name],
                            t["config"]["lr"],
                            t["config"].get("momentum", ""),
                            t["config"].get("sigma", ""),
                            t["config"].get("weight_decay", ""),
                            f"{t['val_loss']:.6f}",
                            "" if t["val_accuracy"] is None else f"{t['val_accuracy']:.6f}",
                            t["status"],
                            f"{t['seconds_per_epoch']:.3f}",
                        ]
                    )
    with open(os.path.join(out, "finals.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["regime", "optimizer", "lr", "momentum", "sigma", "weight_decay", "seed", "epoch",
                         "train_loss", "test_loss", "test_accuracy", "seconds", "step_ms", "epsilon"])
        for result in results:
            for name, runs in result["finals"].items():
                config = next(r["config"] for r in result["summary"] if r["optimizer"] == name)
                for run in runs:
                    for e in run["epochs"]:
                        writer.writerow(
                            [
                                result["regime"],
                                NAMES[name],
                                config["lr"],
                                config.get("momentum", ""),
                                config.get("sigma", ""),
                                config.get("weight_decay", ""),
                                run["seed"],
                                e["epoch"],
                                f"{e['train_loss']:.6f}",
                                f"{e['eval_loss']:.6f}",
                                "" if e["eval_accuracy"] is None else f"{e['eval_accuracy']:.6f}",
                                f"{e['seconds']:.3f}",
                                f"{e['step_ms']:.4f}",
                                run["info"].get("epsilon", ""),
                            ]
                        )


def _plain(value):
    """results.json without NaN/inf (not JSON): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _nan(value):
    return math.nan if value is None else value


def _restore(result: Dict) -> Dict:
    """Undo :func:`_plain` where a number is expected: the nulls that were NaN become NaN again.

    Only the numeric fields are touched; nulls that mean "none" (an accuracy the LM does
    not have, a largest stable lr that does not exist) stay null.
    """
    for trials in result["trials"].values():
        for t in trials:
            t["val_loss"] = _nan(t["val_loss"])
            t["seconds_per_epoch"] = _nan(t["seconds_per_epoch"])
            t["loss_curve"] = [_nan(x) for x in t.get("loss_curve", [])]
    for row in result["summary"]:
        row["test_loss"] = [_nan(x) for x in row["test_loss"]]
        if row["test_accuracy"] is not None:
            row["test_accuracy"] = [_nan(x) for x in row["test_accuracy"]]
        for key in ("val_loss", "test_perplexity", "seconds_per_epoch", "step_ms"):
            row[key] = _nan(row.get(key))
    for runs in result["finals"].values():
        for run in runs:
            for e in run["epochs"]:
                for key in ("train_loss", "eval_loss", "seconds", "step_ms"):
                    e[key] = _nan(e[key])
                e["loss_curve"] = [_nan(x) for x in e["loss_curve"]]
    return result


def load_results(paths: Sequence[str]) -> Tuple[List[Dict], List[Dict]]:
    """The regimes' results of earlier runs, in the order given, and where each came from.

    Each path is a results.json written by this script (one run, or a merge written by
    ``--report ... --out``) or a folder holding one. A regime that appears twice is an
    error: a table must not silently show one of two different runs.
    """
    results: List[Dict] = []
    sources: List[Dict] = []
    for path in paths:
        file = os.path.join(path, "results.json") if os.path.isdir(path) else path
        try:
            with open(file) as f:
                saved = json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read results from {path!r}: {error}") from error
        if not isinstance(saved, dict) or "results" not in saved:
            raise ValueError(f"{file!r} is not a results.json written by tune.py (it has no 'results')")
        # A merged file lists its own sources; a single run is its own source.
        sources.extend(
            saved.get("sources")
            or [
                dict(
                    path=file,
                    config=saved.get("config"),
                    torch=saved.get("torch"),
                    seconds=saved.get("seconds"),
                    torch_mlsgd=saved.get("torch_mlsgd"),
                )
            ]
        )
        for result in saved["results"]:
            if any(r["regime"] == result["regime"] for r in results):
                raise ValueError(f"regime {result['regime']!r} appears twice (again in {file!r})")
            results.append(_restore(result))
    return results, sources


def describe_source(source: Dict) -> str:
    """One line: which run a result came from (torch, sizes, seeds, wall-clock)."""
    config = source.get("config") or {}
    seconds = source.get("seconds")
    return (
        f"{source.get('path')}: regimes {','.join(config.get('regimes', []))}, "
        f"{'full' if config.get('full') else 'small default'} sizes, torch {source.get('torch')}, "
        f"{config.get('threads')} thread(s), tuning seed {config.get('tune_seed')}, reported seeds "
        f"{','.join(map(str, config.get('seeds', [])))}" + ("" if seconds is None else f", {seconds / 60:.0f} min")
    )


def write_outputs(out: str, saved: Dict, results: Sequence[Dict], plots: bool) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(_plain(saved), f, indent=1)
    write_csvs(results, out)
    if plots:
        plot(results, out)
    print(f"wrote {out}/results.json, trials.csv, finals.csv" + (", sensitivity.png, curves.png" if plots else ""))
