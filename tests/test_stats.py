"""The resampling engine (subspacelens.stats) against slow, obvious twins, and the statistics built on it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subspacelens import metrics, stats, synthetic


# --------------------------------------------------------------------------------------------- the draws


def test_restricted_permutations_never_move_a_label_out_of_its_group():
    groups = np.repeat(["a", "b", "c"], [4, 6, 10])
    rows = stats.permutation_indices(groups.size, 200, seed=2, within=groups)
    assert (np.sort(rows, axis=1) == np.arange(groups.size)).all()  # each row is a permutation
    assert (groups[rows] == groups).all()  # position i only ever takes a column of its own group
    assert len({tuple(r) for r in rows}) > 150  # and they do move


def test_free_permutations_are_seeded_permutations():
    a, b = stats.permutation_indices(12, 50, seed=7), stats.permutation_indices(12, 50, seed=7)
    assert (a == b).all() and (np.sort(a, axis=1) == np.arange(12)).all()


def test_stratified_bootstrap_stays_in_its_stratum():
    strata = np.repeat([0, 1, 2], [5, 7, 8])
    rows = stats.stratified_bootstrap(strata, 100, seed=1)
    assert rows.shape == (100, 20)
    assert (strata[rows] == np.sort(strata)).all()


def test_cluster_bootstrap_draws_whole_clusters_and_keeps_strata():
    seeds = np.tile(np.arange(6), 4)  # 4 subjects × 6 seeds, crossed
    subjects = np.repeat(np.arange(4), 6)
    rows = stats.cluster_bootstrap(seeds, 50, seed=3, strata=subjects)
    for row in rows:
        assert (np.bincount(subjects[row], minlength=4) == 6).all()
        drawn = seeds[row]
        for seed in np.unique(drawn):  # a drawn seed contributes one sample of every subject per draw
            assert (np.bincount(subjects[row][drawn == seed], minlength=4) == (drawn == seed).sum() // 4).all()


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: stats.permutation_indices(5, 10, within=np.array([0, 0, 1, 1])), "within"),
        (lambda: stats.permutation_indices(4, 10, within=np.array([0, 0, 0, 1])), "within"),
        (lambda: stats.permutation_indices(4, 0), "n_permutations"),
        (lambda: stats.cluster_bootstrap(np.array([0, 0, 1]), 5), "clusters"),
        (lambda: stats.percentile_interval(np.ones(5), level=1.5), "level"),
        (lambda: stats.percentile_interval(np.ones(5), level=0), "level"),
        (lambda: stats.adjust_p_values(np.ones(3), "bonferonni"), "method"),
        (lambda: metrics.rate_reduction(np.ones((3, 4)), [0, 0, 1, 1], scale="std"), "scale"),
        (lambda: metrics.rate_reduction(np.ones((3, 4)), [0, 0, 1, 1], center="mean"), "center"),
        (lambda: metrics.coding_rate(np.ones((3, 4)), center="class"), "center"),
        (lambda: metrics.permutation_null(np.ones((3, 4)), [0, 0, 1, 1], within=[0, 1, 2]), "within"),
    ],
)
def test_bad_arguments_name_themselves(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()


def test_holm_and_bh_adjust_like_the_textbook():
    p = np.array([0.01, 0.04, 0.03, 0.2])
    np.testing.assert_allclose(stats.adjust_p_values(p, "holm"), [0.04, 0.09, 0.09, 0.2])
    np.testing.assert_allclose(stats.adjust_p_values(p, "bh"), [0.04, 0.16 / 3, 0.16 / 3, 0.2])


def test_spearman_with_depth_matches_scipy():
    from scipy.stats import spearmanr

    curves = np.random.default_rng(0).standard_normal((3, 9))
    for curve, rho in zip(curves, stats.spearman_with_depth(curves)):
        assert rho == pytest.approx(spearmanr(np.arange(9), curve).statistic, rel=1e-12)


def test_a_flat_curve_is_no_landmark():
    rng = np.random.default_rng(1)
    flat = 0.8 + 0.01 * rng.standard_normal((12, 1)) + 0.05 * rng.standard_normal((12, 200))
    assert stats.argextremum_interval(flat.mean(axis=1), flat)["flat"]
    dip = np.abs(np.arange(12) - 6.0)[:, None] + 0.1 * rng.standard_normal((12, 200))
    found = stats.argextremum_interval(dip.mean(axis=1), dip)
    assert not found["flat"] and found["estimate"] == 6 and found["low"] <= 6 <= found["high"]


# ------------------------------------------------------------------------------------------- scale-aware rates


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e3), st.integers(min_value=0, max_value=2**31 - 1))
def test_rms_scaled_rates_are_exactly_scale_invariant(c, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((2, 10, 24)) + rng.standard_normal((2, 10, 1))
    labels = np.repeat(np.arange(4), 6)
    for center in (False, True, "class"):
        a = metrics.rate_reduction(Z, labels, center=center, scale="rms")
        b = metrics.rate_reduction(c * Z, labels, center=center, scale="rms")
        for field in ("R", "Rc", "delta_R"):
            np.testing.assert_allclose(getattr(b, field), getattr(a, field), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(metrics.coding_rate(c * Z, scale="rms"), metrics.coding_rate(Z, scale="rms"), rtol=1e-10)


def test_raw_delta_r_moves_with_scale_by_the_rank_formula():
    """N < d: raw ΔR(cZ) − ΔR(Z) → (rank Z − Σ N_j/N rank Z_j) log c for large c (the blog's confound)."""
    rng = np.random.default_rng(0)
    d, n_per, k = 60, 5, 4
    labels = np.repeat(np.arange(k), n_per)
    Z = rng.standard_normal((d, n_per * k))
    slope = (min(d, labels.size) - n_per) * 1.0  # rank 20 overall, 5 per class
    c = 1e3
    shift = metrics.rate_reduction(c * Z, labels).delta_R - metrics.rate_reduction(Z, labels).delta_R
    assert shift == pytest.approx(slope * np.log(c), rel=0.02)
    assert metrics.rate_reduction(c * Z, labels, scale="rms").delta_R == pytest.approx(
        float(metrics.rate_reduction(Z, labels, scale="rms").delta_R), rel=1e-10)


def test_fine_beyond_coarse_holds_for_pure_noise():
    """Fine ΔR ≥ coarse ΔR for any data when the fine classes nest in the coarse ones (Jensen)."""
    rng = np.random.default_rng(3)
    fine = np.repeat(np.arange(25), 8)
    coarse = fine // 5
    for _ in range(5):
        Z = rng.standard_normal((3, 16, fine.size))
        assert (metrics.rate_reduction(Z, fine).delta_R >= metrics.rate_reduction(Z, coarse).delta_R).all()


# ------------------------------------------------------------------------------------------- nulls and splits


def test_class_centring_removes_a_mean_only_signal():
    """Classes that differ only in their means: raw ΔR ≫ null; class-centred ΔR not above its null's 95 % band
    (the class-centred null is conservative when the means differ)."""
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(5), 20)
    means = 3.0 * rng.standard_normal((12, 5))
    Z = rng.standard_normal((12, labels.size)) + means[:, labels]
    raw = metrics.permutation_null(Z, labels, n_permutations=300, seed=1, scale="rms")
    centred = metrics.permutation_null(Z, labels, n_permutations=300, seed=1, scale="rms", center="class")
    assert raw.observed > raw.null.max()
    assert centred.observed <= np.quantile(centred.null, 0.975) and centred.p_value > 0.05


def test_class_centring_keeps_a_subspace_only_signal():
    """Classes with one common mean but different subspaces: class-centred ΔR stays far above its null."""
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(3), 30)
    bases = [synthetic.random_orthonormal(20, 3, seed=k) for k in range(3)]
    Z = np.concatenate([b @ rng.standard_normal((3, 30)) for b in bases], axis=1) + 0.05 * rng.standard_normal((20, 90))
    result = metrics.permutation_null(Z, labels, n_permutations=200, seed=2, scale="rms", center="class")
    assert result.observed > result.null.max() and result.z_score > 5


def test_split_adds_up_and_puts_a_mean_signal_in_the_means_part():
    rng = np.random.default_rng(6)
    labels = np.repeat(np.arange(4), 15)
    Z = rng.standard_normal((10, 60)) + 4 * rng.standard_normal((10, 4))[:, labels]
    split = metrics.rate_reduction_split(Z, labels, scale="rms")
    assert split.total == pytest.approx(float(split.means + split.geometry), rel=1e-12)
    assert split.means > 5 * abs(split.geometry)


def test_restricted_null_recovers_subjects_identical_within_their_category():
    """Subjects that are copies of their category: the free null rejects every time, the within-category null
    holds its level (over 20 data sets, few p-values below 0.05)."""
    subjects = np.repeat(np.arange(25), 8)
    categories = subjects // 5
    free, restricted = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        Z = rng.standard_normal((16, subjects.size)) + 3 * rng.standard_normal((16, 5))[:, categories]
        free.append(metrics.permutation_null(Z, subjects, n_permutations=100, seed=0, scale="rms").p_value)
        restricted.append(metrics.permutation_null(Z, subjects, n_permutations=100, seed=0, scale="rms",
                                                   within=categories).p_value)
    assert max(free) <= 1 / 101 + 1e-12
    assert np.mean(np.asarray(restricted) < 0.05) <= 0.2 and np.mean(restricted) > 0.2


def test_overlap_null_is_calibrated_on_subspace_free_data():
    """Isotropic noise with arbitrary labels: the overlap's label-shuffle p-value is roughly uniform."""
    rng = np.random.default_rng(8)
    labels = np.repeat(np.arange(4), 10)
    p = np.concatenate([metrics.overlap_null(rng.standard_normal((6, 12, 40)), labels, 50, seed=s, rank=2).p_lower
                        for s in range(5)])
    assert 0.2 < p.mean() < 0.8
    assert (p < 0.05).mean() <= 0.2


def test_class_centred_null_matches_brute_force_on_both_sides():
    """The determinant-lemma null equals recomputing class-centred ΔR for each relabelling (N > d and N < d)."""
    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(4), 10)
    groups = np.tile([0, 1], 20)
    for d in (8, 60):
        Z = rng.standard_normal((2, d, 40)) + np.repeat(rng.standard_normal((2, d, 4)), 10, axis=-1)
        fast = metrics.permutation_null(Z, labels, n_permutations=6, seed=3, center="class", scale="rms", within=groups)
        rows = stats.permutation_indices(40, 6, 3, within=groups)
        slow = np.stack([metrics.rate_reduction(Z, labels[np.argsort(r)], center="class", scale="rms").delta_R
                         for r in rows], axis=-1)
        np.testing.assert_allclose(fast.null, slow, rtol=1e-9)
