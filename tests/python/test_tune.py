"""The tuning protocol of examples/tune.py (examples/study/): splits, budgets, selection on validation
only, the verdict."""

import argparse
import csv
import json
import math
import os
import sysconfig

# examples/ is on the path (pyproject.toml's [tool.pytest.ini_options]), as it is for the scripts there.
from common import fashion_mnist, lm_training, stdlib_corpus, training

import pytest
import torch

from study import cli, dp, protocol, regimes, report, tuning


def trial(lr, loss, status="ok", optimizer="sgd", **config):
    return protocol.Trial(
        optimizer=optimizer,
        config=dict(lr=lr, momentum=0.9, **config),
        val_loss=loss,
        val_accuracy=None,
        status=status,
        seconds_per_epoch=1.0,
    )


# ------------------------------------------------------------------------------------- splits


def test_fashion_validation_part_is_disjoint_from_the_train_part():
    (train_lo, train_hi), (val_lo, val_hi) = regimes.fashion_split(60000)
    assert (train_lo, train_hi, val_lo, val_hi) == (0, 50000, 50000, 60000)
    (train_lo, train_hi), (val_lo, val_hi) = regimes.fashion_split(60000, 2048, 1000)
    assert (train_lo, train_hi) == (0, 2048) and (val_lo, val_hi) == (50000, 51000)
    assert train_hi <= val_lo
    for sizes in ((50001, 0), (0, 10001), (-1, 0)):
        with pytest.raises(ValueError):
            regimes.fashion_split(60000, *sizes)


@pytest.mark.skipif(not os.path.isdir(fashion_mnist.DEFAULT_DIR), reason="Debian's dataset-fashion-mnist is missing")
def test_fashion_data_takes_the_documented_images_and_loads_no_test_set_while_tuning():
    images, labels = fashion_mnist.load("train")
    data = regimes.FashionData(fashion_mnist.DEFAULT_DIR, 100, 50)
    assert torch.equal(data.train[1], labels[:100]) and torch.equal(data.val[1], labels[50000:50050])
    assert torch.equal(data.val[0], fashion_mnist.normalize(images[50000:50050]))
    assert data._test is None  # nothing has asked for the test set yet
    assert data.eval_split("val") is data.val


def test_charlm_splits_are_positional_and_disjoint():
    data = bytes(range(256)) * 40
    parts = stdlib_corpus.split_corpus(data)
    (a, b), (c, d), (e, f) = stdlib_corpus.split_positions(len(data))
    assert a == 0 and b == c and d == e and f == len(data)
    assert sum(p.numel() for p in parts.values()) == len(data)
    assert parts["val"].tolist() == list(data[c:d]) and parts["test"].tolist() == list(data[e:f])
    with pytest.raises(ValueError):
        stdlib_corpus.split_positions(100, (0.5, 0.5, 0.0))


def test_charlm_corpus_is_deterministic():
    root = sysconfig.get_paths()["stdlib"]
    relative = [os.path.relpath(p, root) for p in stdlib_corpus.stdlib_files()]
    assert relative == sorted(relative) and len(relative) > 100
    # No test packages, site-packages or dist-packages: they differ between machines.
    assert not any(set(r.split(os.sep)[:-1]) & stdlib_corpus.SKIP_DIRS for r in relative)
    corpus = stdlib_corpus.load_corpus(5000)
    assert len(corpus) == 5000 and corpus == stdlib_corpus.load_corpus(5000)


# ------------------------------------------------------------------------------------ budgets


@pytest.mark.parametrize("axes", ["small", "full"])
def test_every_optimizer_gets_the_same_number_of_trials(axes):
    second = cli.SECOND_AXES[axes]
    for regime in cli.REGIMES:
        lrs = cli.SIZES[regime][axes]["lrs"]
        adam_lrs = cli.SIZES[regime][axes]["adam_lrs"]
        space = protocol.make_space(lrs, second["sgd_momenta"], second["sigmas"], 0.9, training.OPTIMIZERS,
                                    adam_lrs=adam_lrs, weight_decays=second["weight_decays"])
        counts = {name: len(configs) for name, configs in space.items()}
        assert set(counts) == set(training.OPTIMIZERS)
        assert set(counts.values()) == {len(lrs) * len(second["sigmas"])}
        # Wide, log-spaced learning-rate grids: at least a factor 100 end to end.
        for grid in (lrs, adam_lrs):
            assert grid == sorted(grid) and grid[-1] / grid[0] >= 30
        assert {c["weight_decay"] for c in space["adamw"]} == set(second["weight_decays"])
        assert {(c["weight_decay"], c["sigma"]) for c in space["lsadamw"]} == {(0.01, s) for s in second["sigmas"]}


def test_unequal_budgets_are_refused():
    with pytest.raises(ValueError, match="equal budgets"):
        protocol.make_space([0.1, 1.0], [0.0, 0.9], [1.0], 0.9)
    with pytest.raises(ValueError, match="unequal"):
        protocol.check_equal_budget({"sgd": [{}, {}], "lsgd": [{}]})
    with pytest.raises(ValueError, match="AdamW weight decays"):
        protocol.make_space([0.1], [0.9], [1.0, 2.0], 0.9, ["adamw", "lsadamw"], adam_lrs=[1e-3],
                            weight_decays=[0.01])
    with pytest.raises(SystemExit):
        cli.parse_args(["--sgd-momenta", "0,0.9", "--sigmas", "1"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--optimizers", "adamw,lsadamw", "--weight-decays", "0,0.1", "--sigmas", "1"])
    with pytest.raises(SystemExit):  # a reported seed may not be the tuning seed
        cli.parse_args(["--seeds", str(cli.TUNE_SEED)])


# ---------------------------------------------------------------------------------- selection


class FakeRegime(regimes.Regime):
    """A quadratic in log10(lr), with its validation optimum at lr 0.1 and its test optimum at lr 1.

    Records every (optimizer, config, seed, split) it is asked to run.
    """

    name, chance_loss, description = "fake", 10.0, "fake objective"

    def __init__(self):
        self.calls = []

    def run(self, optimizer, config, seed, split):
        self.calls.append((optimizer, dict(config), seed, split))
        best = {"val": -1.0, "test": 0.0}[split]
        loss = 1.0 + (math.log10(config["lr"]) - best) ** 2 + 0.01 * seed
        if config["lr"] > 5:
            return dict(epochs=[], diverged=True, info={})
        epoch = dict(
            epoch=1,
            train_loss=loss,
            eval_loss=loss,
            eval_accuracy=1 / loss,
            seconds=0.1,
            step_ms=0.01,
            loss_curve=[loss],
        )
        return dict(epochs=[epoch], diverged=False, info={})


def test_selection_uses_validation_only_and_the_test_set_only_for_the_picks():
    regime = FakeRegime()
    space = protocol.make_space([0.01, 0.1, 1.0, 10.0], [0.9], [1.0], 0.9)
    result = tuning.run_study(regime, space, tune_seed=100, seeds=[0, 1, 2], log=lambda _: None)
    splits = [call[3] for call in regime.calls]
    first_test = splits.index("test")
    assert set(splits[:first_test]) == {"val"} and set(splits[first_test:]) == {"test"}
    trial_calls = regime.calls[:first_test]
    assert all(seed == 100 for _, _, seed, _ in trial_calls)
    assert {name: sum(c[0] == name for c in trial_calls) for name in space} == {name: 4 for name in space}
    # The picks are the validation optimum (lr 0.1), not the test optimum (lr 1).
    assert all(row["config"]["lr"] == 0.1 for row in result["summary"])
    reported = regime.calls[first_test:]
    assert len(reported) == 3 * 3 and all(c[1]["lr"] == 0.1 for c in reported)
    assert sorted({c[2] for c in reported}) == [0, 1, 2]
    # Trial records carry validation numbers only; the diverged lr 10 is flagged, not picked.
    for trials in result["trials"].values():
        assert all(not any(key.startswith("test") for key in t) for t in trials)
        assert [t["status"] for t in trials] == ["ok", "ok", "ok", "diverged"]
    row = result["summary"][0]
    assert row["largest_stable_lr"] == 1.0 and row["edges"] == {}
    assert row["test_loss"][0] == pytest.approx(1.0 + 1.0 + 0.01)  # (log10 0.1 - 0)^2 on test, mean seed 1


def test_select_prefers_finite_and_breaks_ties_by_grid_order():
    trials = [trial(0.01, 0.5), trial(0.1, 0.3), trial(1.0, 0.3), trial(10.0, math.inf, "diverged")]
    assert protocol.select(trials).config["lr"] == 0.1
    assert protocol.select([trial(1.0, math.inf, "diverged"), trial(0.1, 2.0, "no-progress")]).config["lr"] == 0.1
    with pytest.raises(ValueError):
        protocol.select([trial(0.1, 0.3)], select_by="accuracy")  # no accuracy measured
    assert protocol.trial_status(math.nan, False, 2.3) == "diverged"
    assert protocol.trial_status(2.31, False, math.log(10)) == "no-progress"
    assert protocol.trial_status(1.0, False, math.log(10)) == "ok"


def test_best_at_an_edge_of_the_grid_is_detected():
    configs = [dict(lr=lr, momentum=0.9, sigma=s) for s in (0.5, 1.0, 2.0) for lr in (0.01, 0.1, 1.0)]
    assert protocol.edges(trial(0.01, 0.1, sigma=1.0), configs) == {"lr": "lowest"}
    assert protocol.edges(trial(1.0, 0.1, sigma=2.0), configs) == {"lr": "highest", "sigma": "highest"}
    assert protocol.edges(trial(0.1, 0.1, sigma=1.0), configs) == {}
    two_point = [dict(lr=lr, momentum=0.9) for lr in (0.1, 1.0)]
    assert protocol.edges(trial(0.1, 0.1), two_point) == {}  # no interior to be outside of


def test_largest_stable_lr_holds_the_picks_other_values():
    trials = [
        trial(0.1, 0.5, sigma=1.0),
        trial(1.0, 0.4, sigma=1.0),
        trial(10.0, 9.0, "no-progress", sigma=1.0),
        trial(10.0, 0.2, sigma=2.0),
    ]
    assert protocol.largest_stable_lr(trials, trials[1]) == 1.0
    assert protocol.largest_stable_lr(trials, trials[3]) == 10.0
    assert protocol.log_grid(1e-3, 1, 4) == [0.001, 0.01, 0.1, 1.0]


# ------------------------------------------------------------------------------------ verdict


def summary_row(optimizer, loss, accuracy, edges=None, seeds=3):
    return dict(
        optimizer=optimizer,
        config=dict(lr=0.1, momentum=0.9),
        test_loss=loss,
        seeds=seeds,
        test_accuracy=accuracy,
        test_perplexity=math.exp(loss[0]),
        seconds_per_epoch=1.25,
        edges=edges or {},
        diverged_seeds=0,
        largest_stable_lr=0.3,
    )


def test_verdict_and_its_table():
    rows = [
        summary_row("sgd", (0.30, 0.01), (0.90, 0.002)),
        summary_row("lsgd", (0.28, 0.005), (0.89, 0.01)),
        summary_row("mlsgd", (0.35, 0.01), (0.88, 0.001), edges={"lr": "highest"}),
    ]
    by_loss = protocol.verdict(rows, "test_loss", higher_is_better=False)
    assert (by_loss["best"], by_loss["runner_up"]) == ("lsgd", "sgd")
    assert by_loss["margin"] == pytest.approx(0.02) and by_loss["spread"] == pytest.approx(0.015)
    assert by_loss["exceeds_spread"]
    by_accuracy = protocol.verdict(rows, "test_accuracy", higher_is_better=True)
    assert by_accuracy["best"] == "sgd" and not by_accuracy["exceeds_spread"]  # margin 0.01 < spread 0.012

    lm = [dict(summary_row("sgd", (2.5, 0.1), None)), dict(summary_row("lsgd", (2.6, 0.1), None))]
    text = report.format_verdict(
        [
            dict(regime="full", summary=rows, verdict=by_loss, note="MLSGD's pick is at the highest lr"),
            dict(regime="charlm", summary=lm, verdict=protocol.verdict(lm, "test_loss", False)),
        ]
    )
    lines = text.splitlines()
    assert lines[0].startswith("| regime") and set(lines[1]) <= {"|", "-"}
    assert len({len(line) for line in lines[:7]}) == 1  # columns aligned
    lsgd = next(line for line in lines if "| LSGD" in line and "full" in line)
    assert "best" in lsgd and "0.2800 ± 0.0050" in lsgd and "89.00 ± 1.00" in lsgd and "| 0.3 " in lsgd
    assert "edge: lr highest" in next(line for line in lines if "| MLSGD" in line)
    assert "ppl 12.18" in next(line for line in lines if "charlm" in line and "| SGD" in line)
    assert "full: best LSGD by test loss" in text and "exceeds the spread" in text
    assert "charlm: best SGD by test loss" in text and "is within the spread" in text
    # One seed: no spread, so no claim either way.
    single = [summary_row("sgd", (0.30, 0.0), None, seeds=1), summary_row("lsgd", (0.28, 0.0), None, seeds=1)]
    one_seed = protocol.verdict(single, "test_loss", higher_is_better=False)
    assert one_seed["best"] == "lsgd" and one_seed["exceeds_spread"] is None
    assert "cannot be judged" in report.format_verdict([dict(regime="x", summary=single, verdict=one_seed)])


# --------------------------------------------------------------------------------- end to end


def test_dp_regime_without_opacus_exits_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(dp, "import_opacus", lambda: None)
    with pytest.raises(SystemExit) as info:
        cli.main(["--regime", "dp", "--no-plots", "--quiet"])
    assert "Opacus" in str(info.value.code) and dp.OPACUS_PIN in str(info.value.code)


TINY_CHARLM = [
    "--regime",
    "charlm",
    "--lrs",
    "0.1,1",
    "--seeds",
    "0",
    "--batch-size",
    "8",
    "--charlm-chars",
    "6000",
    "--charlm-d-model",
    "16",
    "--charlm-layers",
    "1",
    "--charlm-heads",
    "2",
    "--charlm-context",
    "16",
    "--charlm-eval-windows",
    "8",
    "--threads",
    "1",
    "--quiet",
]


def test_tiny_charlm_study_end_to_end(tmp_path):
    out = tmp_path / "tune"
    results = cli.main(TINY_CHARLM + ["--out", str(out)])
    assert [r["regime"] for r in results] == ["charlm"]
    saved = json.loads((out / "results.json").read_text())["results"][0]
    assert {name: len(trials) for name, trials in saved["trials"].items()} == {"sgd": 2, "lsgd": 2, "mlsgd": 2}
    assert saved["protocol"]["split_bytes"] == {"train": 5400, "val": 300, "test": 300}
    for row in saved["summary"]:
        assert row["config"]["lr"] in (0.1, 1.0) and 0 < row["test_loss"][0] < math.log(256) + 1
    with open(out / "trials.csv") as f:
        assert len(list(csv.reader(f))) == 1 + 6
    with open(out / "finals.csv") as f:
        assert len(list(csv.reader(f))) == 1 + 3
    assert (out / "sensitivity.png").stat().st_size > 5_000 and (out / "curves.png").stat().st_size > 5_000


def test_tiny_adamw_study_tunes_weight_decay_against_sigma(tmp_path):
    out = tmp_path / "tune"
    results = cli.main(TINY_CHARLM + ["--out", str(out), "--optimizers", "adamw,lsadamw", "--adam-lrs", "1e-3,1e-2",
                                      "--weight-decays", "0,0.1", "--sigmas", "0.1,1", "--no-plots"])
    trials = results[0]["trials"]
    assert {name: len(t) for name, t in trials.items()} == {"adamw": 4, "lsadamw": 4}
    assert {t["config"]["weight_decay"] for t in trials["adamw"]} == {0.0, 0.1}
    assert {t["config"]["sigma"] for t in trials["lsadamw"]} == {0.1, 1.0}
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["optimizer"] for r in rows} == {"AdamW", "LSAdamW"} and all(r["weight_decay"] for r in rows)


def test_a_diverging_trial_is_recorded_and_never_picked(tmp_path):
    # SGD at lr 30 takes the tiny LM's loss to nan within the first epoch (as measured).
    results = cli.main(
        TINY_CHARLM + ["--optimizers", "sgd", "--lrs", "0.1,30", "--tag=-sgd-only", "--out", str(tmp_path)]
    )
    assert results[0]["regime"] == "charlm-sgd-only"  # --tag names a variant; its plots still know it is the LM
    assert (tmp_path / "sensitivity.png").stat().st_size > 5_000
    trials = results[0]["trials"]["sgd"]
    assert [(t["config"]["lr"], t["status"]) for t in trials] == [(0.1, "ok"), (30.0, "diverged")]
    assert results[0]["summary"][0]["config"]["lr"] == 0.1
    args = regimes.trial_args(
        argparse.Namespace(
            **dict(
                lm_training.SMALL,
                chars=6000,
                d_model=16,
                layers=1,
                heads=2,
                context=16,
                eval_windows=8,
                batch_size=8,
                curve_every=5,
                weight_decay=0.0,
                mlsgd_seed=0,
            )
        ),
        dict(lr=30.0, momentum=0.9),
        seed=0,
    )
    parts = stdlib_corpus.split_corpus(stdlib_corpus.load_corpus(args.chars))
    with pytest.raises(training.Diverged, match=r"SGD diverged \(loss (nan|inf)\) at epoch 1; try a smaller --lr"):
        lm_training.train("sgd", 0, parts["train"], parts["val"], args)


def test_report_prints_and_merges_earlier_runs_without_running_anything(tmp_path, capsys, monkeypatch):
    lm, small = tmp_path / "lm", tmp_path / "small"
    cli.main(TINY_CHARLM + ["--seeds", "0,1", "--no-plots", "--out", str(lm)])
    cli.main(
        [
            "--regime",
            "small-batch",
            "--train-size",
            "48",
            "--val-size",
            "32",
            "--lrs",
            "0.01",
            "--seeds",
            "0",
            "--threads",
            "1",
            "--quiet",
            "--no-plots",
            "--out",
            str(small),
        ]
    )
    capsys.readouterr()
    # --report trains nothing: any regime run would fail now.
    monkeypatch.setattr(tuning, "run_trials", lambda *a, **k: pytest.fail("--report ran a trial"))
    merged = tmp_path / "merged"
    results = cli.main(["--report", str(lm), str(small / "results.json"), "--out", str(merged), "--no-plots"])
    printed = capsys.readouterr().out
    assert [r["regime"] for r in results] == ["charlm", "small-batch"]
    for regime, optimizer in (("charlm", "SGD"), ("small-batch", "MLSGD")):
        assert any(line.startswith(f"| {regime} ") and f"| {optimizer} " in line for line in printed.splitlines())
    assert f"from {lm / 'results.json'}: regimes charlm, small default sizes" in printed
    assert f"{small / 'results.json'}: regimes small-batch" in printed
    saved = json.loads((merged / "results.json").read_text())
    assert len(saved["sources"]) == 2 and [r["regime"] for r in saved["results"]] == ["charlm", "small-batch"]
    originals = [json.loads((d / "results.json").read_text())["results"][0] for d in (lm, small)]
    assert [r["summary"] for r in saved["results"]] == [r["summary"] for r in originals]
    with open(merged / "trials.csv") as f:
        assert len(list(csv.reader(f))) == 1 + 6 + 3
    with open(merged / "finals.csv") as f:  # charlm: 3 optimizers x 2 seeds x 1 epoch; small-batch: 3 x 1 x 1
        assert len(list(csv.reader(f))) == 1 + 6 + 3

    # A merge reads back as the same table, its sources kept.
    cli.main(["--report", str(merged)])
    again = capsys.readouterr().out
    assert again.split("\nfrom ")[0] == printed.split("\nfrom ")[0] and str(small / "results.json") in again

    # A regime whose every reported run diverged was saved with nulls; it reads back as NaN.
    broken = json.loads((lm / "results.json").read_text())
    sgd = next(row for row in broken["results"][0]["summary"] if row["optimizer"] == "sgd")
    sgd.update(test_loss=[None, None], test_perplexity=None, seconds_per_epoch=None, diverged_seeds=2)
    broken["results"][0]["trials"]["sgd"][1].update(val_loss=None, seconds_per_epoch=None, status="diverged")
    for run in broken["results"][0]["finals"]["sgd"]:
        run["diverged"] = True
        for e in run["epochs"]:
            e.update(eval_loss=None, train_loss=None, loss_curve=[None] * len(e["loss_curve"]))
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    cli.main(["--report", str(tmp_path / "broken.json"), "--out", str(tmp_path / "broken"), "--no-plots"])
    text = capsys.readouterr().out
    assert "nan ± nan" in next(line for line in text.splitlines() if "| SGD " in line)
    with open(tmp_path / "broken" / "finals.csv") as f:
        assert any(row[1] == "SGD" and row[8] == "nan" for row in csv.reader(f))

    with pytest.raises(SystemExit, match="regime 'charlm' appears twice"):
        cli.main(["--report", str(lm), str(merged)])
    with pytest.raises(SystemExit, match="not a results.json written by tune.py"):
        (tmp_path / "other.json").write_text("[1, 2]")
        cli.main(["--report", str(tmp_path / "other.json")])
    with pytest.raises(SystemExit, match="cannot read results"):
        cli.main(["--report", str(tmp_path / "missing")])


def test_demo_retrains_the_committed_studys_validation_picks_and_scores_them_on_test(monkeypatch):
    import demo

    study_dir = os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "study"
    )
    result = demo.study_picks(study_dir)
    picks = {row["optimizer"]: row["config"] for row in result["summary"]}
    assert set(picks) == set(training.SGD_FAMILY)
    calls = []

    class Recording:
        """Stands in for the LeNet regime: records what it is asked to train, trains nothing."""

        def __init__(self, name, data, base, description, progress):
            self.base = base

        def run(self, optimizer, config, seed, split):
            calls.append((optimizer, dict(config), seed, split, self.base.epochs, self.base.batch_size))
            epoch = dict(
                epoch=3,
                train_loss=0.3,
                eval_loss=0.3 + seed / 100,
                eval_accuracy=0.88 - seed / 100,
                seconds=1.0,
                step_ms=0.1,
                loss_curve=[0.3],
            )
            return dict(epochs=[epoch], diverged=False, info={})

    monkeypatch.setattr(demo, "FashionData", lambda data_dir: None)
    monkeypatch.setattr(demo, "FashionRegime", Recording)
    rows = demo.run_demo(result, [0, 1], "unused")
    # Every pick, from every seed, at the study's sizes, scored on the test split only.
    assert sorted((c[0], c[2]) for c in calls) == sorted((name, seed) for name in picks for seed in (0, 1))
    assert all(c[1] == picks[c[0]] and c[3] == "test" and c[4:] == (3, 128) for c in calls)
    assert rows[0]["accuracy"] == pytest.approx((87.5, 0.7071), abs=1e-3)
    table = demo.format_rows(rows)
    assert "| SGD " in table and "87.50 ± 0.71" in table and "(3 seeds)" in table
