"""The saddle-escape study's measuring machinery (examples/saddle_nets.py, examples/saddle_study/): the plateau
detector on curves with known plateaus, the problems' exact plateau levels, and GD on
the deep linear network resting on one plateau per singular value of the target."""

import pytest
import torch

# examples/ is on the path (pyproject.toml's [tool.pytest.ini_options]), as it is for the scripts there.
from saddle_study import cli, plateaus, problems, runs


def staircase(levels, lengths, noise=0.0):
    """A loss curve resting on each level for the given number of steps, with smooth
    drops between levels (a quarter of the way per step) and optional wiggles."""
    curve = []
    g = torch.Generator().manual_seed(0)
    for level, length in zip(levels, lengths):
        value = curve[-1] if curve else level
        for _ in range(length):
            value = value + (level - value) * 0.25
            wiggle = noise * level * float(torch.rand((), generator=g) - 0.5)
            curve.append(value + wiggle)
    return curve


def test_plateau_exits_and_lengths_on_a_known_staircase():
    levels = [10.0, 4.0, 1.0, 0.25, 0.0]
    curve = staircase(levels, [100, 250, 40, 300, 50], noise=0.05)
    exits = plateaus.plateau_exits(curve, levels)
    # The midpoint between plateau k and k+1 is crossed within the few steps of each drop.
    for exit, boundary in zip(exits, [100, 350, 390, 690]):
        assert boundary <= exit <= boundary + 5
    lengths = plateaus.plateau_lengths(exits)
    assert lengths[0] == exits[0] and lengths[1:] == [b - a for a, b in zip(exits, exits[1:])]
    assert abs(lengths[1] - 250) <= 5 and abs(lengths[3] - 300) <= 5


def test_a_curve_that_stalls_has_no_later_exits():
    levels = [10.0, 4.0, 1.0, 0.0]
    curve = staircase([10.0, 4.0], [50, 500])  # never leaves the second plateau
    exits = plateaus.plateau_exits(curve, levels)
    assert 50 <= exits[0] <= 55 and exits[1:] == [None, None]
    assert plateaus.plateau_lengths(exits) == [exits[0], None, None]
    assert plateaus.first_below(curve, 0.5) is None


def test_deep_linear_levels_are_the_truncated_targets_losses():
    problem = problems.deep_linear_problem(steps=10)
    n = problem.inputs.shape[0]
    # Level k is the loss of the best rank-k map, which is also the saddle's function.
    for k, saddle in enumerate(problem.saddle_outputs):
        loss = 0.5 * float(((saddle - problem.targets) ** 2).sum()) / n
        assert loss == pytest.approx(problem.levels[k], rel=1e-12)
    assert problem.levels == sorted(problem.levels, reverse=True) and problem.levels[-1] == 0.0


def test_the_tanh_network_is_the_linear_one_with_tanh_between_layers():
    linear, tanh = problems.deep_linear_problem(steps=10), problems.tanh_problem(steps=10)
    weights = linear.init(seed=3)
    x = linear.inputs
    expected = torch.tanh(torch.tanh(x @ weights[0].t()) @ weights[1].t()) @ weights[2].t()
    torch.testing.assert_close(tanh.forward(weights, x), expected, rtol=0, atol=0)
    torch.testing.assert_close(linear.forward(weights, x), x @ weights[0].t() @ weights[1].t() @ weights[2].t())
    assert tanh.levels == linear.levels


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny matrices: one thread is fastest, and spares a busy machine oversubscription.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_gd_on_the_deep_linear_network_rests_on_one_plateau_per_singular_value():
    problem = problems.deep_linear_problem(steps=5000)
    gd = runs.Method("GD", lambda w, lr, seed: torch.optim.SGD(w, lr=lr))
    result = runs.run(problem, gd, lr=1.13, seed=0)
    losses = result["losses"]
    exits = plateaus.plateau_exits(losses, problem.levels)
    assert None not in exits, f"GD left only {sum(e is not None for e in exits)} of {len(exits)} plateaus"
    # Between two exits the loss rests near the plateau's level: at the midpoint step of
    # plateau k (k >= 1), within 10 % of level k.
    for k in range(1, len(exits)):
        middle = (exits[k - 1] + exits[k]) // 2
        assert abs(losses[middle] - problem.levels[k]) < 0.1 * problem.levels[k]
    # Plateaus last long: each spans at least 3 % of the run before the next drop.
    lengths = plateaus.plateau_lengths(exits)
    assert min(lengths) > 0.03 * exits[-1]


def test_quick_study_writes_its_outputs(tmp_path):
    report = cli.main(
        ["--quick", "--problems", "dln", "--out", str(tmp_path), "--sigmas", "1", "--schedules", "random"]
    )
    for name in ("saddle_nets.json", "saddle_nets_summary.csv", "saddle_nets_dln.csv", "saddle_nets_dln.png"):
        assert (tmp_path / name).exists()
    picks = report["problems"]["dln"]["picks"]
    assert set(picks) == {"GD", "LSGD sigma=1", "MLSGD random", "SGD batch 8", "perturbed GD (0.0001)"}
    grid = report["problems"]["dln"]["grid"]
    assert all(p["lr"] in grid for p in picks.values())
