"""Subspace overlap, effective rank, participation ratio and Hoyer sparsity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subspacelens.metrics import (
    effective_rank,
    hoyer_sparsity,
    mean_offdiagonal,
    participation_ratio,
    subspace_overlap,
)


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def random_orthogonal(rng, d):
    return np.linalg.qr(rng.standard_normal((d, d)))[0]


def planted(rng, bases, n_per_class):
    """Samples of each class spread over all directions of its basis (d × k)."""
    columns = [basis @ rng.standard_normal((basis.shape[1], n_per_class)) for basis in bases]
    labels = np.repeat(np.arange(len(bases)), n_per_class)
    return np.concatenate(columns, axis=1), labels


def test_identical_subspaces_overlap_one_and_orthogonal_zero(rng):
    Q = random_orthogonal(rng, 40)
    Z, labels = planted(rng, [Q[:, :3], Q[:, 3:6], Q[:, :3]], n_per_class=12)
    result = subspace_overlap(Z, labels, rank=3)
    expected = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=float)
    np.testing.assert_allclose(result.matrix, expected, atol=1e-10)
    np.testing.assert_array_equal(result.ranks, [3, 3, 3])
    np.testing.assert_array_equal(result.classes, [0, 1, 2])
    assert result.mean_offdiagonal == pytest.approx(1 / 3)


def test_nested_and_partial_overlap(rng):
    # A 2-dim subspace inside a 4-dim one overlaps 1; sharing 1 of 2 directions gives ‖UᵢᵀUⱼ‖² = 1, /2.
    Q = random_orthogonal(rng, 30)
    Z, labels = planted(rng, [Q[:, :4], Q[:, :2], Q[:, 3:5]], n_per_class=15)
    result = subspace_overlap(Z, labels, energy=1.0)
    np.testing.assert_array_equal(result.ranks, [4, 2, 2])
    assert result.matrix[0, 1] == pytest.approx(1.0, abs=1e-10)
    assert result.matrix[1, 2] == pytest.approx(0.0, abs=1e-10)
    assert result.matrix[0, 2] == pytest.approx(0.5, abs=1e-10)


def test_overlap_from_gram_matches_explicit_svd_bases(rng):
    d = 25
    Z = rng.standard_normal((d, 30)) + np.repeat(rng.standard_normal((d, 3)) * 2, 10, axis=1)
    labels = np.repeat(["x", "y", "z"], 10)
    result = subspace_overlap(Z, labels, rank=4)
    bases = [np.linalg.svd(Z[:, labels == c])[0][:, :4] for c in ["x", "y", "z"]]
    explicit = np.array([[np.linalg.norm(a.T @ b) ** 2 / 4 for b in bases] for a in bases])
    np.testing.assert_allclose(result.matrix, explicit, atol=1e-10)
    np.testing.assert_allclose(result.chance, np.full((3, 3), 4 / d))


def test_energy_picks_smallest_rank_and_rank_caps_at_numerical_rank(rng):
    # Singular values 10, 1, 0.1: squared energies 100, 1, 0.01 → 0.9 needs 1 direction, 0.995 needs 2.
    Q = random_orthogonal(rng, 12)
    V = random_orthogonal(rng, 6)[:, :3]
    class_data = Q[:, :3] @ np.diag([10.0, 1.0, 0.1]) @ V.T
    Z = np.concatenate([class_data, class_data[::-1]], axis=1)
    labels = np.repeat([0, 1], 6)
    assert subspace_overlap(Z, labels, energy=0.9).ranks.tolist() == [1, 1]
    assert subspace_overlap(Z, labels, energy=0.995).ranks.tolist() == [2, 2]
    assert subspace_overlap(Z, labels, rank=5).ranks.tolist() == [3, 3]


def test_chance_level_is_capped_at_one(rng):
    Z = rng.standard_normal((4, 24))
    result = subspace_overlap(Z, np.repeat([0, 1], 12), rank=4)
    np.testing.assert_array_equal(result.chance, np.ones((2, 2)))
    assert result.chance_mean_offdiagonal == 1.0


def test_overlap_batched_with_unequal_classes_matches_slices(rng):
    Z = rng.standard_normal((3, 20, 17))
    labels = np.array([0] * 5 + [1] * 8 + [2] * 4)
    batched = subspace_overlap(Z, labels)
    for i in range(3):
        single = subspace_overlap(Z[i], labels)
        np.testing.assert_allclose(batched.matrix[i], single.matrix, atol=1e-12)
        np.testing.assert_array_equal(batched.ranks[i], single.ranks)


def test_mean_offdiagonal_helper():
    matrix = np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    assert mean_offdiagonal(matrix) == pytest.approx(0.4)
    np.testing.assert_allclose(mean_offdiagonal(np.stack([matrix, matrix])), [0.4, 0.4])
    with pytest.raises(ValueError, match="^matrix"):
        mean_offdiagonal(np.ones((1, 1)))


@settings(max_examples=20, deadline=None)
@given(d=st.integers(3, 15), n=st.integers(2, 8), n_classes=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_property_overlap_symmetric_unit_diagonal_bounded_rotation_invariant(d, n, n_classes, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((d, n * n_classes))
    labels = np.repeat(np.arange(n_classes), n)
    result = subspace_overlap(Z, labels)
    assert np.all((result.matrix >= 0) & (result.matrix <= 1))
    np.testing.assert_allclose(result.matrix, result.matrix.T, atol=1e-10)
    np.testing.assert_allclose(np.diag(result.matrix), 1.0, atol=1e-8)
    rotated = subspace_overlap(random_orthogonal(rng, d) @ Z, labels)
    np.testing.assert_allclose(rotated.matrix, result.matrix, atol=1e-8)


def test_effective_rank_closed_forms(rng):
    Q = random_orthogonal(rng, 20)
    assert effective_rank(Q[:, :7] * 3.0) == pytest.approx(7.0, rel=1e-12)  # 7 equal singular values
    assert effective_rank(np.outer(rng.standard_normal(20), rng.standard_normal(9))) == pytest.approx(1.0)
    # Singular values (2, 1, 1): p = (½, ¼, ¼), H = 1.5 log 2, erank = 2^{1.5}.
    assert effective_rank(Q[:, :3] * [2.0, 1.0, 1.0]) == pytest.approx(2**1.5, rel=1e-12)


def test_participation_ratio_closed_forms(rng):
    Q = random_orthogonal(rng, 10)
    assert participation_ratio(Q[:, :5], center=False) == pytest.approx(5.0, rel=1e-12)
    # Eigenvalues (4, 1): (5)² / 17.
    assert participation_ratio(Q[:, :2] * [2.0, 1.0], center=False) == pytest.approx(25 / 17, rel=1e-12)
    # The default centres: a constant offset does not change it.
    Z = rng.standard_normal((6, 50))
    assert participation_ratio(Z + 5.0) == pytest.approx(participation_ratio(Z), rel=1e-10)
    eigenvalues = np.linalg.eigvalsh(np.cov(Z))
    assert participation_ratio(Z) == pytest.approx(eigenvalues.sum() ** 2 / (eigenvalues**2).sum(), rel=1e-10)


def test_spectra_are_batched_and_rotation_invariant(rng):
    Z = rng.standard_normal((2, 15, 9))
    R = random_orthogonal(rng, 15)
    np.testing.assert_allclose(effective_rank(R @ Z), effective_rank(Z), rtol=1e-10)
    np.testing.assert_allclose(participation_ratio(R @ Z), participation_ratio(Z), rtol=1e-10)
    assert effective_rank(Z).shape == participation_ratio(Z).shape == (2,)


def test_hoyer_sparsity_extremes_and_mean_over_columns():
    d = 16
    assert hoyer_sparsity(np.eye(d)) == pytest.approx(1.0)
    assert hoyer_sparsity(np.sign(np.random.default_rng(0).standard_normal((d, 5)))) == pytest.approx(0.0, abs=1e-12)
    two_columns = np.stack([np.eye(d)[0], np.ones(d)], axis=1)
    assert hoyer_sparsity(two_columns) == pytest.approx(0.5)
    # Half the entries equal, half zero: ‖z‖₁/‖z‖₂ = √(d/2).
    half = np.r_[np.ones(d // 2), np.zeros(d // 2)][:, None]
    assert hoyer_sparsity(half) == pytest.approx((np.sqrt(d) - np.sqrt(d / 2)) / (np.sqrt(d) - 1))
    assert hoyer_sparsity(np.ones((3, d, 4))).shape == (3,)


@pytest.mark.parametrize("class_centred", [False, True])
@pytest.mark.parametrize("rank", [None, 3])
def test_feature_and_gram_routes_of_the_overlap_agree(rng, class_centred, rank):
    # d = 12 < 40 samples a class: the feature route is the one subspace_overlap takes; both must agree,
    # on the observed labels and on relabellings of unequal classes (a stack of index sets).
    from subspacelens.metrics.labels import labelled_gram
    from subspacelens.metrics.overlap import feature_route_is_cheaper, overlap_from_columns, overlap_from_gram

    labels = np.repeat([0, 1, 2], 40)
    labels[:5] = 1
    Z = rng.standard_normal((2, 12, labels.size)) + np.repeat(rng.standard_normal((2, 12, 3)) * 3, 40, axis=-1)
    Z, partition, G = labelled_gram(Z, labels)
    assert feature_route_is_cheaper(12, partition)
    index = np.stack([rng.permutation(labels.size) for _ in range(3)])[:, partition.index]
    for sets in (None, index):
        by_gram = overlap_from_gram(G, partition, rank, 0.9, sets, class_centred=class_centred)
        by_columns = overlap_from_columns(Z, partition, rank, 0.9, sets, class_centred=class_centred)
        np.testing.assert_array_equal(by_gram[1], by_columns[1])
        np.testing.assert_allclose(by_gram[0], by_columns[0], atol=1e-10)


def test_jarque_bera_half_matches_the_full_isotropy_test(rng):
    from subspacelens.metrics import isotropy_test, jarque_bera_rejection

    Z = rng.standard_t(3, size=(2, 8, 60))
    full = isotropy_test(Z, n_projections=16, alpha=0.05, seed=3)
    rate, p_values, null_rate = jarque_bera_rejection(Z, n_projections=16, alpha=0.05, seed=3)
    np.testing.assert_array_equal(rate, full.rejection_rate)
    np.testing.assert_array_equal(p_values, full.p_values)
    assert null_rate == full.null_rejection_rate


def test_jarque_bera_p_values_match_scipy(rng):
    from scipy import stats

    from subspacelens.metrics.isotropy import jarque_bera_p_values, standardize

    x = standardize(np.concatenate([rng.standard_normal((3, 200)), rng.standard_t(3, size=(3, 200))]))
    np.testing.assert_allclose(jarque_bera_p_values(x), stats.jarque_bera(x, axis=-1).pvalue, rtol=1e-9, atol=1e-300)
