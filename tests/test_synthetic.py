"""The synthetic generators plant what they say: angles, ranks, labels, sparsity, determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import subspace_angles

from subspacelens.synthetic import (
    equiangular_subspaces,
    isotropic_gaussian,
    low_rank_mixture,
    planted_cos2,
    random_orthonormal,
    sparse_codes,
)


@settings(max_examples=25, deadline=None)
@given(
    ranks=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    angle=st.floats(0.0, 90.0),
    seed=st.integers(0, 2**16),
)
def test_every_pair_of_subspaces_sits_at_the_planted_angle(ranks, angle, seed):
    d = max(ranks) + sum(ranks) + 3
    bases = equiangular_subspaces(d, ranks, angle, seed)
    for U, k in zip(bases, ranks):
        assert U.shape == (d, k)
        np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-10)
    for i in range(len(ranks)):
        for j in range(i + 1, len(ranks)):
            theta = np.rad2deg(subspace_angles(bases[i], bases[j]))
            assert theta.shape == (min(ranks[i], ranks[j]),)
            np.testing.assert_allclose(theta, angle, atol=1e-5)


@pytest.mark.parametrize("angle", [0.0, 30.0, 60.0, 90.0])
def test_planted_cos2_is_cos_squared_of_the_angle(angle):
    m = low_rank_mixture(64, 10, [3, 5, 4], angle, seed=1)
    c2 = planted_cos2(m.bases)
    off = c2[~np.eye(3, dtype=bool)]
    np.testing.assert_allclose(off, m.cos2, atol=1e-9)
    np.testing.assert_allclose(np.diag(c2), 1.0)
    assert m.cos2 == pytest.approx(np.cos(np.deg2rad(angle)) ** 2)


def test_samples_lie_in_their_class_subspace_with_the_planted_rank():
    m = low_rank_mixture(80, [30, 25, 40], [4, 7, 2], 45.0, seed=3)
    assert m.Z.shape == (80, 95) and m.labels.shape == (95,)
    assert m.K == 3 and m.d == 80 and m.N == 95
    np.testing.assert_array_equal(np.bincount(m.labels), [30, 25, 40])
    for i, (U, k) in enumerate(zip(m.bases, m.ranks)):
        Zi = m.Z[:, m.labels == i]
        assert np.linalg.matrix_rank(Zi) == k
        np.testing.assert_allclose(Zi - U @ (U.T @ Zi), 0.0, atol=1e-10)


def test_the_same_seed_gives_the_same_draw_and_another_seed_does_not():
    a = low_rank_mixture(40, 12, 3, 30.0, K=4, noise=0.1, mean_shift=2.0, seed=7)
    b = low_rank_mixture(40, 12, 3, 30.0, K=4, noise=0.1, mean_shift=2.0, seed=7)
    c = low_rank_mixture(40, 12, 3, 30.0, K=4, noise=0.1, mean_shift=2.0, seed=8)
    np.testing.assert_array_equal(a.Z, b.Z)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.allclose(a.Z, c.Z)
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(isotropic_gaussian(6, 9, g1), isotropic_gaussian(6, 9, g2))
    np.testing.assert_array_equal(random_orthonormal(9, 3, 2), random_orthonormal(9, 3, 2))


def test_mean_shift_moves_class_means_off_the_subspaces():
    m = low_rank_mixture(60, 2000, 3, 90.0, K=3, mean_shift=5.0, seed=0)
    np.testing.assert_allclose(np.linalg.norm(m.means, axis=0), 5.0)
    for i, U in enumerate(m.bases):
        np.testing.assert_allclose(U.T @ m.means, 0.0, atol=1e-10)
        np.testing.assert_allclose(m.Z[:, m.labels == i].mean(axis=1), m.means[:, i], atol=0.2)


def test_common_mean_is_one_offset_shared_by_every_class():
    m = low_rank_mixture(60, 5, 3, 45.0, K=3, common_mean=3.0, seed=0)
    np.testing.assert_allclose(m.means, np.repeat(m.means[:, [0]], 3, axis=1))
    np.testing.assert_allclose(np.linalg.norm(m.means[:, 0]), 3.0)
    np.testing.assert_allclose(np.concatenate(m.bases, axis=1).T @ m.means, 0.0, atol=1e-10)


def test_noise_makes_the_samples_full_rank():
    m = low_rank_mixture(30, 50, 2, 90.0, K=2, noise=0.05, seed=0)
    assert np.linalg.matrix_rank(m.Z) == 30


def test_sparse_codes_have_exactly_n_active_nonzeros():
    s = sparse_codes(50, 40, 3, seed=0)
    np.testing.assert_array_equal(np.count_nonzero(s.Z, axis=0), 3)
    np.testing.assert_array_equal(s.dictionary, np.eye(50))
    t = sparse_codes(50, 40, 3, n_atoms=200, seed=0)
    assert t.Z.shape == (50, 40) and t.codes.shape == (200, 40)
    np.testing.assert_array_equal(np.count_nonzero(t.codes, axis=0), 3)
    np.testing.assert_allclose(np.linalg.norm(t.dictionary, axis=0), 1.0)
    assert np.count_nonzero(t.Z) == t.Z.size  # dense in the neuron basis


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: equiangular_subspaces(10, [4, 4], 30.0), "d=10"),
        (lambda: equiangular_subspaces(40, [4, 4], 120.0), "angle_deg"),
        (lambda: low_rank_mixture(40, 10, 3, 30.0), "K"),
        (lambda: low_rank_mixture(40, [10, 10], [3, 3, 3], 30.0), "n_per_class"),
        (lambda: low_rank_mixture(40, 10, [3, 0], 30.0), "ranks"),
        (lambda: low_rank_mixture(40, 10, 3, 30.0, K=2, noise=-1.0), "noise"),
        (lambda: low_rank_mixture(40, 10, 3, 30.0, K=2, seed=1.5), "seed"),
        (lambda: sparse_codes(5, 4, 6), "n_active"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()
