"""Runs the protocol on one regime: every trial on validation, the picks, the reported runs on test."""

import math
import statistics
import time
from dataclasses import asdict
from typing import Callable, Dict, List, Sequence

from common.training import NAMES, mean_std

from study.protocol import Space, Trial, check_equal_budget, edges, largest_stable_lr, select, trial_status, verdict
from study.regimes import Regime
from study.report import describe_config


def run_trials(regime: Regime, space: Space, seed: int, log: Callable[[str], None] = print) -> Dict[str, List[Trial]]:
    """Trains every configuration of ``space`` from ``seed``, evaluating on the validation split only."""
    trials: Dict[str, List[Trial]] = {}
    for optimizer, configs in space.items():
        trials[optimizer] = []
        for config in configs:
            record = regime.run(optimizer, config, seed, "val")
            last = record["epochs"][-1] if record["epochs"] else None
            val_loss = last["eval_loss"] if last and not record["diverged"] else math.inf
            trial = Trial(
                optimizer=optimizer,
                config=dict(config),
                val_loss=val_loss,
                val_accuracy=last["eval_accuracy"] if last and not record["diverged"] else None,
                status=trial_status(val_loss, record["diverged"], regime.chance_loss),
                seconds_per_epoch=statistics.fmean(e["seconds"] for e in record["epochs"])
                if record["epochs"]
                else math.nan,
                loss_curve=[x for e in record["epochs"] for x in e["loss_curve"]],
            )
            trials[optimizer].append(trial)
            accuracy = "" if trial.val_accuracy is None else f", val acc {100 * trial.val_accuracy:.2f} %"
            log(
                f"  [{regime.name}] {NAMES[optimizer]:5s} {describe_config(config)}: val loss {val_loss:.4f}"
                f"{accuracy} ({trial.status})"
            )
    return trials


def summarize(
    regime: Regime, picks: Dict[str, Trial], finals: Dict[str, List[Dict]], trials: Dict[str, List[Trial]], space: Space
) -> List[Dict]:
    """One row per optimizer: its pick, and the final-epoch test numbers, mean ± std over seeds."""
    rows = []
    for optimizer, runs in finals.items():
        finished = [r for r in runs if not r["diverged"]]
        losses = [r["epochs"][-1]["eval_loss"] for r in finished]
        row = dict(
            optimizer=optimizer,
            config=picks[optimizer].config,
            val_loss=picks[optimizer].val_loss,
            edges=edges(picks[optimizer], space[optimizer]),
            largest_stable_lr=largest_stable_lr(trials[optimizer], picks[optimizer]),
            seeds=len(runs),
            diverged_seeds=len(runs) - len(finished),
            test_loss=mean_std(losses) if losses else (math.nan, math.nan),
            test_accuracy=None,
            test_perplexity=math.exp(statistics.fmean(losses)) if losses else math.nan,
            seconds_per_epoch=statistics.fmean(e["seconds"] for r in finished for e in r["epochs"])
            if finished
            else math.nan,
            step_ms=statistics.fmean(e["step_ms"] for r in finished for e in r["epochs"]) if finished else math.nan,
        )
        if regime.has_accuracy:
            accuracies = [r["epochs"][-1]["eval_accuracy"] for r in finished]
            row["test_accuracy"] = mean_std(accuracies) if accuracies else (math.nan, math.nan)
        epsilons = [r["info"]["epsilon"] for r in finished if "epsilon" in r["info"]]
        if epsilons:
            row["epsilon"] = max(epsilons)
        rows.append(row)
    return rows


def notes_for(regime: Regime, summary: Sequence[Dict]) -> str:
    """What a reader of the verdict must know besides the numbers: picks at a grid edge, DP's budget."""
    notes = [
        f"{NAMES[r['optimizer']]}'s pick is at the {' and '.join(f'{v} {k}' for k, v in r['edges'].items())} "
        f"of its grid"
        for r in summary
        if r["edges"]
    ]
    if notes:
        notes[-1] += "; widen the grid"
    epsilons = [r["epsilon"] for r in summary if "epsilon" in r]
    if epsilons:
        p = regime.protocol()
        notes.append(
            f"noise multiplier {p['noise_multiplier']:.4f}, clipping norm {p['max_grad_norm']:g} for every "
            f"optimizer; accountant's epsilon {max(epsilons):.3f} at delta {p['delta']:g} (target "
            f"{p['target_epsilon']:g}), per training run, the tuning runs not included"
        )
    return "; ".join(notes)


def run_study(
    regime: Regime,
    space: Space,
    tune_seed: int,
    seeds: Sequence[int],
    select_by: str = "loss",
    log: Callable[[str], None] = print,
) -> Dict:
    """The whole protocol for one regime: trials on validation, picks, reported runs on test."""
    started = time.perf_counter()
    log(
        f"{regime.name}: {check_equal_budget(space)} trials per optimizer on the validation split "
        f"({regime.description})"
    )
    trials = run_trials(regime, space, tune_seed, log)
    picks = {name: select(trials[name], select_by) for name in space}
    tuned = time.perf_counter()
    finals: Dict[str, List[Dict]] = {}
    for name, pick in picks.items():
        finals[name] = []
        for seed in seeds:
            record = regime.run(name, pick.config, seed, "test")
            finals[name].append(dict(record, seed=seed))
            if record["diverged"]:
                log(f"  [{regime.name}] {NAMES[name]:5s} pick, seed {seed}: diverged")
            else:
                last = record["epochs"][-1]
                log(
                    f"  [{regime.name}] {NAMES[name]:5s} pick ({describe_config(pick.config)}), seed {seed}: "
                    f"test loss {last['eval_loss']:.4f}"
                    + ("" if last["eval_accuracy"] is None else f", test acc {100 * last['eval_accuracy']:.2f} %")
                )
    summary = summarize(regime, picks, finals, trials, space)
    if regime.has_accuracy and select_by == "accuracy":
        decision = verdict(summary, "test_accuracy", higher_is_better=True)
    else:
        decision = verdict(summary, "test_loss", higher_is_better=False)
    return dict(
        regime=regime.name,
        description=regime.description,
        protocol=regime.protocol(),
        space=space,
        select_by=select_by,
        tune_seed=tune_seed,
        seeds=list(seeds),
        trials={k: [asdict(t) for t in v] for k, v in trials.items()},
        summary=summary,
        verdict=decision,
        finals=finals,
        note=notes_for(regime, summary),
        seconds=dict(tuning=tuned - started, reporting=time.perf_counter() - tuned),
    )
