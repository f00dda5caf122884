"""Bad input raises ValueError naming the argument; the Gram primitives behave as documented."""

import numpy as np
import pytest

from subspacelens import metrics
from subspacelens.metrics.gram import (
    center_gram,
    chunk_slices,
    gram,
    logdet_identity_plus,
    normalize_gram,
    principal_blocks,
)
from subspacelens.metrics.labels import partition_labels

RNG = np.random.default_rng(0)
Z = RNG.standard_normal((8, 12))
LABELS = np.repeat([0, 1, 2], 4)

LABELLED = {
    "rate_reduction": lambda Z, labels, **kw: metrics.rate_reduction(Z, labels, **kw),
    "rate_reduction_curve": lambda Z, labels, **kw: metrics.rate_reduction_curve(Z, labels, [0.5], **kw),
    "subspace_overlap": lambda Z, labels, **kw: metrics.subspace_overlap(Z, labels, **kw),
    "permutation_null": lambda Z, labels, **kw: metrics.permutation_null(Z, labels, n_permutations=5, **kw),
    "bootstrap_ci": lambda Z, labels, **kw: metrics.bootstrap_ci(Z, labels, n_boot=5, **kw),
}
UNLABELLED = {
    "coding_rate": metrics.coding_rate,
    "coding_rate_curve": lambda Z: metrics.coding_rate_curve(Z, [0.5]),
    "effective_rank": metrics.effective_rank,
    "participation_ratio": metrics.participation_ratio,
    "hoyer_sparsity": metrics.hoyer_sparsity,
    "isotropy_test": lambda Z: metrics.isotropy_test(Z, n_projections=4),
}
ALL = {**{k: (lambda f: lambda Z: f(Z, LABELS))(f) for k, f in LABELLED.items()}, **UNLABELLED}

BAD_Z = {
    "1-D": np.ones(12),
    "scalar": np.float64(1.0),
    "NaN": np.where(np.eye(8, 12) > 0, np.nan, Z),
    "inf": np.where(np.eye(8, 12) > 0, np.inf, Z),
    "complex": Z + 1j,
}


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("bad", sorted(BAD_Z))
def test_bad_Z_is_named(name, bad):
    with pytest.raises(ValueError, match="^Z"):
        ALL[name](BAD_Z[bad])


@pytest.mark.parametrize("eps", [0, -0.5, np.nan, np.inf, "half", None])
@pytest.mark.parametrize(
    "call",
    [
        lambda eps: metrics.coding_rate(Z, eps),
        lambda eps: metrics.rate_reduction(Z, LABELS, eps),
        lambda eps: metrics.permutation_null(Z, LABELS, eps, n_permutations=5),
        lambda eps: metrics.bootstrap_ci(Z, LABELS, n_boot=5, eps=eps),
    ],
)
def test_bad_eps_is_named(call, eps):
    with pytest.raises(ValueError, match="^eps"):
        call(eps)


@pytest.mark.parametrize("eps_values", [[], [0.5, 0.0], [[0.5]], [np.nan], [-1.0]])
def test_bad_eps_values_are_named(eps_values):
    with pytest.raises(ValueError, match="^eps_values"):
        metrics.coding_rate_curve(Z, eps_values)
    with pytest.raises(ValueError, match="^eps_values"):
        metrics.rate_reduction_curve(Z, LABELS, eps_values)


@pytest.mark.parametrize("name", sorted(LABELLED))
@pytest.mark.parametrize("labels", [LABELS[:-1], np.r_[LABELS, 0], LABELS.reshape(3, 4)], ids=["short", "long", "2-D"])
def test_bad_labels_are_named(name, labels):
    with pytest.raises(ValueError, match="^labels"):
        LABELLED[name](Z, labels)


@pytest.mark.parametrize("name", ["subspace_overlap", "bootstrap_ci"])
def test_singleton_class_is_rejected_where_two_samples_are_needed(name):
    labels = np.r_[np.repeat([0, 1], 5), 2, 1]
    with pytest.raises(ValueError, match="^labels.*class 2 has 1 sample"):
        LABELLED[name](Z, labels)


def test_singleton_class_is_fine_for_rates():
    labels = np.r_[np.repeat([0, 1], 5), 2, 1]
    assert np.isfinite(metrics.rate_reduction(Z, labels).delta_R)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: metrics.subspace_overlap(Z, LABELS, rank=0), "rank"),
        (lambda: metrics.subspace_overlap(Z, LABELS, rank=2.5), "rank"),
        (lambda: metrics.subspace_overlap(Z, LABELS, energy=0.0), "energy"),
        (lambda: metrics.subspace_overlap(Z, LABELS, energy=1.5), "energy"),
        (lambda: metrics.permutation_null(Z, LABELS, n_permutations=1), "n_permutations"),
        (lambda: metrics.bootstrap_ci(Z, LABELS, "median"), "statistic"),
        (lambda: metrics.bootstrap_ci(Z, LABELS, n_boot=0), "n_boot"),
        (lambda: metrics.bootstrap_ci(Z, LABELS, level=1.0), "level"),
        (lambda: metrics.bootstrap_ci(Z, np.zeros(12), "mean_overlap"), "labels"),
        (lambda: metrics.isotropy_test(Z, n_projections=0), "n_projections"),
        (lambda: metrics.isotropy_test(Z, alpha=1.0), "alpha"),
        (lambda: metrics.hoyer_sparsity(np.ones((1, 5))), "Z"),
        (lambda: metrics.hoyer_sparsity(np.c_[Z, np.zeros(8)]), "Z"),
        (lambda: metrics.coding_rate(np.c_[Z, np.zeros(8)], normalize=True), "Z"),
        (lambda: metrics.bootstrap_ci(np.c_[Z, np.zeros(8)], np.r_[LABELS, 0], normalize=True), "Z"),
        (lambda: metrics.effective_rank(np.zeros((4, 3))), "Z"),
        (lambda: metrics.participation_ratio(np.ones((4, 3))), "Z"),
        (lambda: metrics.coding_rate(np.ones((0, 3))), "Z"),
    ],
)
def test_other_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()


def test_logdet_identity_plus_matches_slogdet_and_survives_singular_input():
    A = RNG.standard_normal((4, 6, 3))
    M = A @ A.swapaxes(-1, -2)  # rank 3 in 6 dims: singular
    alpha = np.array([0.1, 1.0, 10.0, 1e8])
    expected = np.linalg.slogdet(np.eye(6) + alpha[:, None, None] * M)[1]
    np.testing.assert_allclose(logdet_identity_plus(M, alpha), expected, rtol=1e-10)
    assert logdet_identity_plus(np.zeros((5, 5)), 3.0) == 0.0


def test_principal_blocks_gather_class_grams():
    G = gram(Z)
    index = np.array([[[0, 3, 5], [1, 2, 4]], [[6, 7, 8], [9, 10, 11]]])  # (sets=2, classes=2, n=3)
    blocks = principal_blocks(np.stack([G, 2 * G]), index)
    assert blocks.shape == (2, 2, 2, 3, 3)
    np.testing.assert_allclose(blocks[1, 0, 1], 2 * gram(Z[:, [1, 2, 4]]), rtol=1e-12)


def test_gram_preprocessing_matches_preprocessing_the_samples():
    centred = Z - Z.mean(axis=1, keepdims=True)
    unit = centred / np.linalg.norm(centred, axis=0)
    np.testing.assert_allclose(center_gram(gram(Z)), gram(centred), atol=1e-12)
    np.testing.assert_allclose(normalize_gram(center_gram(gram(Z))), gram(unit), atol=1e-12)


def test_partition_layout_and_chunks():
    partition = partition_labels(["b", "a", "b", "c", "a", "b"], 6)
    np.testing.assert_array_equal(partition.classes, ["a", "b", "c"])
    np.testing.assert_array_equal(partition.sizes, [2, 3, 1])
    np.testing.assert_array_equal(partition.index[partition.mask], [1, 4, 0, 2, 5, 3])
    assert [(n, rows.tolist()) for n, rows in partition.size_groups()] == [
        (1, [False, False, True]),
        (2, [True, False, False]),
        (3, [False, True, False]),
    ]
    slices = chunk_slices(10, 2**21)
    assert [(s.start, s.stop) for s in slices] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
