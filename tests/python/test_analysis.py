"""The attraction-region instrument on cases with known answers, and against the real optimizers."""

import math

import numpy as np
import pytest

import torch_mlsgd
from torch_mlsgd import analysis as A

ETA = 0.1


def curvatures_with_negatives(n, k):
    h = np.ones(n)
    h[:k] = -np.linspace(0.5, 1.5, k)
    return h


@pytest.mark.parametrize("n", [2, 3, 4, 7, 10])
def test_gd_and_fixed_sigma_lsgd_attract_from_n_minus_1_dimensions(n):
    h = A.saddle_curvatures(n)
    for sigma in (0.0, 0.5, 4.0):
        for order in (1, 2):
            result = A.attraction_dimension(h, ETA, A.SigmaSequence.constant(sigma), order=order)
            assert (result.dimension, result.unstable, result.ambiguous) == (n - 1, 1, 0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_k_unstable_directions_leave_n_minus_k(k):
    n = 8
    h = curvatures_with_negatives(n, k)
    assert A.attraction_dimension(h, ETA, A.SigmaSequence.constant(0.0)).dimension == n - k
    # The same answer through the QR route, for an aperiodic sequence.
    random = A.SigmaSequence.schedule(schedule="random", sigma=1.0)
    result = A.attraction_dimension(h, ETA, random, steps=3000)
    assert (result.dimension, result.unstable, result.ambiguous) == (n - k, k, 0)


def test_qr_exponents_agree_with_exact_ones():
    h = A.saddle_curvatures(9)
    cycle = A.SigmaSequence.cycle([0.0, 2.0, 0.5])
    exact = A.attraction_dimension(h, ETA, cycle)
    assert exact.method.startswith("monodromy")
    aperiodic = A.SigmaSequence(cycle.at, None, "same values, treated as aperiodic")
    estimated = A.attraction_dimension(h, ETA, aperiodic, steps=6000)
    assert estimated.dimension == exact.dimension == 8
    np.testing.assert_allclose(estimated.exponents, exact.exponents, atol=2e-3)


def test_stable_subspaces_are_invariant_and_contracted():
    h = A.saddle_curvatures(10)
    for seq in (A.SigmaSequence.constant(1.0), A.SigmaSequence.cycle([0.0, 1.5])):
        basis = A.stable_subspace(h, ETA, seq)
        assert basis.shape == (10, 9)
        np.testing.assert_allclose(basis.T @ basis, np.eye(9), atol=1e-12)
        # One period maps the subspace into itself and contracts it. (Iterating instead
        # would let rounding errors along the unstable direction take over.)
        period = np.eye(10)
        for k in range(seq.period):
            period = A.step_matrix(h, ETA, seq.at(k)) @ period
        restricted = basis.T @ period @ basis
        assert np.linalg.norm(period @ basis - basis @ restricted) < 1e-10
        assert np.max(np.abs(np.linalg.eigvals(restricted))) < 1


def test_common_region_is_the_sine_subspace_given_enough_values():
    for n in (3, 6, 9, 12):
        m = n // 2 + 1
        sigmas = list(np.linspace(0.0, 2.0, m + 2))
        assert A.common_attraction_dimension(n, sigmas) == ((n - 1) // 2, (n - 1) // 2)
        # One value is one constant sequence: its whole region.
        assert A.common_attraction_dimension(n, [1.0]) == ((n - 1) // 2, n - 1)
    # Each extra value cuts one more dimension off the upper bound.
    assert A.common_attraction_dimension(9, [0.0, 1.0]) == (4, 7)


def test_high_precision_upper_bound_matches_float64_where_float64_suffices():
    for n in (4, 7, 10):
        h = A.saddle_curvatures(n)
        sigmas = [0.0, 0.3, 1.0, 3.0]
        bases = [A.stable_subspace(h, ETA, A.SigmaSequence.constant(s)) for s in sigmas]
        common = bases[0]
        for b in bases[1:]:
            dim = A.subspace_intersection_dimension(common, b)
            _, _, vt = np.linalg.svd(common.T @ b)
            principal = b @ vt.T
            sines = np.linalg.norm(principal - common @ (common.T @ principal), axis=0)
            common = principal[:, sines < 1e-7]
            assert common.shape[1] == dim
        assert A.common_attraction_dimension(n, sigmas)[1] == common.shape[1]


def test_intersection_with_gd():
    h = A.saddle_curvatures(8)
    assert A.gd_intersection_dimension(h, ETA, A.SigmaSequence.constant(0.0)) == 7
    assert A.gd_intersection_dimension(h, ETA, A.SigmaSequence.constant(1.0)) == 6


def test_convergence_rate_of_gd_is_its_spectral_radius():
    h = A.convex_curvatures(12, 0.1, 1.0)
    assert math.isclose(A.convergence_rate(h, ETA, A.SigmaSequence.constant(0.0)), 1 - ETA * 0.1, rel_tol=1e-12)
    random = A.convergence_rate(h, ETA, A.SigmaSequence.schedule(schedule="random", sigma=1.0), steps=3000)
    assert 1 - ETA * 0.1 <= random < 1  # linear, and no faster than GD at the same step


def test_the_real_mlsgd_converges_inside_its_computed_region_and_escapes_outside():
    n = 8
    h = A.saddle_curvatures(n)
    sequence = A.SigmaSequence.schedule(schedule="random", sigma=1.0, seed=3)
    basis = A.stable_subspace(h, ETA, sequence)
    inside, outside = A.cross_check(h, ETA, lambda x: torch_mlsgd.MLSGD([x], lr=ETA, sigma=1.0, seed=3), basis)
    assert max(inside) < 1e-3 and min(outside) > 1e3


def test_mlsgd_escapes_from_gds_region_where_gd_converges():
    n = 8
    h = A.saddle_curvatures(n)
    gd_region = A.stable_subspace(h, ETA, A.SigmaSequence.constant(0.0))
    gd_inside, _ = A.cross_check(h, ETA, lambda x: torch_mlsgd.LSGD([x], lr=ETA, sigma=0.0), gd_region)
    assert max(gd_inside) < 1e-10
    for seed in range(3):
        escaped, _ = A.cross_check(h, ETA, lambda x: torch_mlsgd.MLSGD([x], lr=ETA, sigma=1.0, seed=seed),
                                   gd_region, seed=seed)
        assert min(escaped) > 1e3


def test_the_sine_subspace_attracts_mlsgd_whatever_the_seed():
    n = 9
    h = A.saddle_curvatures(n)
    j = n // 2
    sines = np.stack([np.sin(2 * np.pi * k * (np.arange(n) - j) / n) for k in range(1, (n - 1) // 2 + 1)], axis=1)
    basis = np.linalg.qr(sines)[0]
    for seed in range(3):
        inside, _ = A.cross_check(h, ETA, lambda x: torch_mlsgd.MLSGD([x], lr=ETA, sigma=1.0, seed=seed), basis)
        assert max(inside) < 1e-3


def test_bad_problems_raise():
    with pytest.raises(ValueError, match="Invalid n"):
        A.saddle_curvatures(0)
    with pytest.raises(ValueError, match="must be < 0"):
        A.saddle_curvatures(4, negative=0.5)
    with pytest.raises(ValueError, match="Invalid position"):
        A.saddle_curvatures(4, position=7)
    with pytest.raises(ValueError, match="Invalid eta"):
        A.common_attraction_dimension(5, [1.0], eta=3.0)


def test_command_line(capsys):
    A.main(["dimension", "--n", "7", "--optimizer", "mlsgd"])
    out = capsys.readouterr().out
    assert "(a) one sequence: dimension 6" in out
    assert "(b) every sequence of the family: dimension in [3, 3]" in out
