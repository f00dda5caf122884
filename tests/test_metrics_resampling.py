"""Permutation null, stratified bootstrap and the isotropy test: seeded, and consistent with the metrics."""

import numpy as np
import pytest

from subspacelens.metrics import (
    bootstrap_ci,
    epps_pulley,
    isotropy_test,
    permutation_null,
    rate_reduction,
    subspace_overlap,
)
from subspacelens.metrics.bootstrap import STATISTICS


@pytest.fixture
def clustered():
    """Four classes of 6 around distinct means in 30 dims, and their labels."""
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(4), 6)
    Z = rng.standard_normal((30, 24)) + 3.0 * np.repeat(rng.standard_normal((30, 4)), 6, axis=1)
    return Z, labels


def test_permutation_null_values_are_rate_reductions_of_shuffled_labels(clustered):
    Z, labels = clustered
    result = permutation_null(Z, labels, n_permutations=20, seed=3)
    assert float(result.observed) == pytest.approx(float(rate_reduction(Z, labels).delta_R), rel=1e-12)
    # Recreate the shuffles: position permutation[i] takes the label of position i.
    shuffles = np.random.default_rng(3).permuted(np.tile(np.arange(24), (20, 1)), axis=1)
    for k in (0, 7, 19):
        shuffled_labels = np.empty_like(labels)
        shuffled_labels[shuffles[k]] = labels
        assert result.null[k] == pytest.approx(float(rate_reduction(Z, shuffled_labels).delta_R), rel=1e-10)


def test_permutation_null_p_value_and_z_score(clustered):
    Z, labels = clustered
    result = permutation_null(Z, labels, n_permutations=99, seed=0)
    assert result.null.shape == (99,)
    assert float(result.p_value) == pytest.approx(1 / 100)  # planted classes beat every shuffle
    expected_z = (result.observed - result.null.mean()) / result.null.std(ddof=1)
    assert float(result.z_score) == pytest.approx(float(expected_z))
    assert result.z_score > 5


def test_permutation_null_without_structure_is_not_significant():
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((3, 20, 30))
    result = permutation_null(Z, np.repeat([0, 1, 2], 10), n_permutations=200, seed=5)
    assert result.null.shape == (3, 200)
    assert np.all(result.p_value > 0.01)
    assert np.all(np.abs(result.z_score) < 4)


def test_permutation_null_is_deterministic_and_batched(clustered):
    Z, labels = clustered
    first = permutation_null(np.stack([Z, 2 * Z]), labels, n_permutations=30, seed=11)
    again = permutation_null(np.stack([Z, 2 * Z]), labels, n_permutations=30, seed=11)
    single = permutation_null(2 * Z, labels, n_permutations=30, seed=11)
    np.testing.assert_array_equal(first.null, again.null)
    np.testing.assert_allclose(first.null[1], single.null, rtol=1e-12)


def test_permutation_null_with_unequal_class_sizes(clustered):
    Z, _ = clustered
    labels = np.array([0] * 4 + [1] * 9 + [2] * 11)
    result = permutation_null(Z, labels, n_permutations=10, seed=2)
    shuffles = np.random.default_rng(2).permuted(np.tile(np.arange(24), (10, 1)), axis=1)
    shuffled_labels = np.empty_like(labels)
    shuffled_labels[shuffles[4]] = labels
    assert result.null[4] == pytest.approx(float(rate_reduction(Z, shuffled_labels).delta_R), rel=1e-10)


@pytest.mark.parametrize("center, normalize", [(False, False), (True, False), (True, True)])
def test_bootstrap_estimates_equal_the_metrics(clustered, center, normalize):
    Z, labels = clustered
    rr = rate_reduction(Z, labels, center=center, normalize=normalize)
    overlap = subspace_overlap(Z, labels, rank=2, center=center, normalize=normalize)
    expected = {
        "delta_R": rr.delta_R,
        "R": rr.R,
        "Rc": rr.Rc,
        "Rc_over_R": rr.Rc / rr.R,
        "mean_overlap": overlap.mean_offdiagonal,
    }
    for statistic in STATISTICS:
        ci = bootstrap_ci(Z, labels, statistic, n_boot=8, rank=2, center=center, normalize=normalize)
        assert float(ci.estimate) == pytest.approx(float(expected[statistic]), rel=1e-10)


def test_bootstrap_resamples_are_stratified_and_seeded(clustered):
    Z, labels = clustered
    ci = bootstrap_ci(np.stack([Z, Z]), labels, "delta_R", n_boot=50, level=0.9, seed=4)
    again = bootstrap_ci(Z, labels, "delta_R", n_boot=50, level=0.9, seed=4)
    assert ci.samples.shape == (2, 50) and ci.statistic == "delta_R" and ci.level == 0.9
    np.testing.assert_allclose(ci.samples[0], again.samples, rtol=1e-12)
    np.testing.assert_allclose(ci.low[0], np.quantile(again.samples, 0.05))
    np.testing.assert_allclose(ci.high[0], np.quantile(again.samples, 0.95))
    assert np.all(ci.low <= ci.high)
    # Rebuild the first resample by hand: N_j draws with replacement inside every class, class by class.
    rng = np.random.default_rng(4)
    draws = [rng.integers(0, 6, size=(50, 6)) for _ in range(4)]
    first = np.concatenate([np.flatnonzero(labels == j)[draws[j][0]] for j in range(4)])
    assert ci.samples[0, 0] == pytest.approx(float(rate_reduction(Z[:, first], labels[first]).delta_R), rel=1e-10)


def test_isotropy_gaussian_versus_structured():
    rng = np.random.default_rng(0)
    gaussian = rng.standard_normal((20, 400))
    # Two well-separated clusters: every projection is bimodal.
    structured = gaussian + 4.0 * np.outer(rng.standard_normal(20), np.repeat([-1.0, 1.0], 200))
    result = isotropy_test(np.stack([gaussian, structured]), n_projections=64, alpha=0.01, seed=9)
    assert result.p_values.shape == result.epps_pulley.shape == (2, 64)
    assert result.rejection_rate[0] < 0.1 and result.rejection_rate[1] > 0.5
    assert result.sigreg[1] > 5 * result.sigreg[0]
    assert result.sigreg[0] == pytest.approx(result.sigreg_null, rel=1.0)  # same order as the null
    assert 0 <= result.null_rejection_rate < 0.1


def test_isotropy_is_deterministic_under_seed():
    Z = np.random.default_rng(3).exponential(size=(10, 60))
    first, again = isotropy_test(Z, 32, seed=1), isotropy_test(Z, 32, seed=1)
    np.testing.assert_array_equal(first.p_values, again.p_values)
    assert first.sigreg_null == again.sigreg_null
    assert not np.array_equal(first.p_values, isotropy_test(Z, 32, seed=2).p_values)


def test_epps_pulley_quadrature_matches_closed_form():
    # ∫|φ̂ − g|² g dt with g = e^{−t²/2} expands into Gaussian integrals:
    # (1/N²)Σ√(2π)e^{−(x_j−x_k)²/2} − (2/N)Σ√π e^{−x_j²/4} + √(2π/3).
    rng = np.random.default_rng(5)
    for x in (rng.standard_normal(300), rng.exponential(size=300), rng.standard_t(3, size=300)):
        x = (x - x.mean()) / x.std()
        closed = x.size * (
            np.sqrt(2 * np.pi) * np.exp(-0.5 * np.subtract.outer(x, x) ** 2).mean()
            - 2 * np.sqrt(np.pi) * np.exp(-(x**2) / 4).mean()
            + np.sqrt(2 * np.pi / 3)
        )
        assert epps_pulley(x) == pytest.approx(closed, rel=1e-9)


@pytest.mark.parametrize("center, normalize", [(False, False), (True, True)])
def test_bootstrap_with_more_samples_than_dimensions_matches_direct_resamples(center, normalize):
    # d < N: the total rate of each resample comes from the d×d second moment of its prepared columns.
    rng = np.random.default_rng(8)
    labels = np.repeat([0, 1, 2], 10)
    Z = rng.standard_normal((5, 30)) + 2.0
    ci = bootstrap_ci(Z, labels, "Rc_over_R", n_boot=6, seed=1, center=center, normalize=normalize)
    direct = rate_reduction(Z, labels, center=center, normalize=normalize)
    assert float(ci.estimate) == pytest.approx(float(direct.Rc / direct.R), rel=1e-10)
    rng = np.random.default_rng(1)
    draws = [rng.integers(0, 10, size=(6, 10)) for _ in range(3)]
    for b in (0, 5):
        order = np.concatenate([np.flatnonzero(labels == j)[draws[j][b]] for j in range(3)])
        resample = rate_reduction(Z[:, order], labels[order], center=center, normalize=normalize)
        assert ci.samples[b] == pytest.approx(float(resample.Rc / resample.R), rel=1e-10)


def test_null_and_bootstrap_with_classes_larger_than_d_match_direct_recomputation():
    # 3 classes of 12 in d = 5: class rates come from the 5×5 class scatters, not the 12×12 Gram blocks.
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(3), 12)
    Z = rng.standard_normal((5, 36)) + 2.0 * np.repeat(rng.standard_normal((5, 3)), 12, axis=1)
    result = permutation_null(Z, labels, n_permutations=5, seed=4)
    shuffles = np.random.default_rng(4).permuted(np.tile(np.arange(36), (5, 1)), axis=1)
    for k in range(5):
        shuffled_labels = np.empty_like(labels)
        shuffled_labels[shuffles[k]] = labels
        assert result.null[k] == pytest.approx(float(rate_reduction(Z, shuffled_labels).delta_R), rel=1e-10)
    boot = bootstrap_ci(Z, labels, "delta_R", n_boot=4, seed=2)
    from subspacelens.stats import bootstrap_indices  # the same resample rows, recomputed one by one

    for b, row in enumerate(bootstrap_indices(4, 2, strata=labels)):
        assert boot.samples[b] == pytest.approx(float(rate_reduction(Z[:, row], labels[row]).delta_R), rel=1e-10)


@pytest.mark.parametrize("center", [False, True, "class"])
@pytest.mark.parametrize("scale", [None, "rms", "unit"])
def test_bootstrap_with_repeated_columns_matches_direct_resamples(center, scale):
    # N ≤ d: a resample's duplicates are collapsed into weights for its total rate, and without centring
    # no resample Gram is formed at all; every route must equal the rates of the resampled columns.
    from subspacelens.stats import bootstrap_indices

    rng = np.random.default_rng(12)
    labels, seeds = np.repeat(np.arange(4), 6), np.tile(np.arange(6), 4)
    Z = rng.standard_normal((40, 24)) + 2.0 * np.repeat(rng.standard_normal((40, 4)), 6, axis=1)
    boot = bootstrap_ci(Z, labels, "delta_R", n_boot=8, seed=3, center=center, scale=scale, clusters=seeds)
    rows = bootstrap_indices(8, 3, strata=labels, clusters=seeds)
    assert any(len(set(row)) < len(row) for row in rows)  # the resamples do repeat columns
    for b, row in enumerate(rows):
        direct = rate_reduction(Z[:, row], labels[row], center=center, scale=scale).delta_R
        assert boot.samples[b] == pytest.approx(float(direct), rel=1e-10)
