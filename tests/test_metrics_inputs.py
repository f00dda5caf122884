"""Bad input raises ValueError naming the argument; the Gram primitives behave as documented."""

import numpy as np
import pytest

from subspacelens import metrics
from subspacelens.metrics._checks import check_choice, check_level, check_n_boot
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
    # exact: M's nonzero eigenvalues are the squared singular values of A, the other three are 0
    squared = np.linalg.svd(A, compute_uv=False) ** 2
    expected = np.log1p(alpha[:, None] * squared).sum(axis=-1)
    np.testing.assert_allclose(logdet_identity_plus(M[:3], alpha[:3]), expected[:3], rtol=1e-10)
    # α = 1e8 scales the rounding of M's zero eigenvalues (~1e-15 ‖M‖) up to ~1e-7 each
    np.testing.assert_allclose(logdet_identity_plus(M, alpha), expected, rtol=1e-8)
    assert logdet_identity_plus(np.zeros((5, 5)), 3.0) == 0.0
    # rank one at a dynamic range where rounding can leave αM slightly indefinite (the factorisation then
    # fails on some CPUs and the eigenvalues take over): finite, and right up to α·eps·‖M‖ per zero eigenvalue
    u = RNG.standard_normal((30, 1)) * 1e6
    value = logdet_identity_plus(u @ u.T, 1.0)
    assert np.isfinite(value) and value == pytest.approx(np.log1p(float((u.T @ u)[0, 0])), rel=1e-3)
    with np.errstate(all="ignore"):
        indefinite = np.diag([4.0, -2.0])  # what rounding can do to a PSD matrix, exaggerated
        assert logdet_identity_plus(indefinite, 1.0) == pytest.approx(np.log(5.0), rel=1e-12)


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


# --- inputs that used to give silently wrong numbers or unreadable errors -------------------------

@pytest.mark.parametrize(
    "labels, match",
    [
        (np.r_[LABELS[:-1], None].astype(object), r"^labels: missing \(None or NaN\) at positions \[11\]"),
        (np.r_[LABELS[:-1], np.nan], r"^labels: missing \(None or NaN\) at positions \[11\]"),
        (np.array([0, "a"] * 6, dtype=object), r"^labels: cannot be sorted into classes, they mix types \['int', 'str'\]"),
    ],
    ids=["None", "NaN", "mixed"],
)
@pytest.mark.parametrize("name", sorted(LABELLED))
def test_missing_or_unsortable_labels_are_named(name, labels, match):
    with pytest.raises(ValueError, match=match):
        LABELLED[name](Z, labels)


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.coding_rate(Z, True),
        lambda: metrics.rate_reduction(Z, LABELS, eps=True),
        lambda: metrics.bootstrap_ci(Z, LABELS, n_boot=5, eps=True),
    ],
)
def test_boolean_eps_is_refused(call):
    with pytest.raises(ValueError, match="^eps: expected a positive real number, got the boolean True"):
        call()
    with pytest.raises(ValueError, match="^eps_values"):
        metrics.coding_rate_curve(Z, [True])


@pytest.mark.filterwarnings("error")  # no RuntimeWarning on the way: the check comes first
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: metrics.coding_rate(Z, 1e-154), r"^eps: too small for the scale of Z"),
        (lambda: metrics.coding_rate(Z, 1e-160), r"^eps: 1e-160 is so small that 1/ε² overflows"),
        (lambda: metrics.rate_reduction(Z, LABELS, 1e-154), r"^eps: too small for the scale of Z"),
        (lambda: metrics.coding_rate_curve(Z, [0.5, 1e-154]), r"^eps: too small for the scale of Z"),
        (lambda: metrics.coding_rate_curve(Z, [1e-170]), r"^eps_values: 1e-170 is so small"),
        (lambda: metrics.bootstrap_ci(Z, LABELS, n_boot=5, eps=1e-154), r"^eps: too small"),
        (lambda: metrics.coding_rate(Z * 1e160), r"^Z: values up to .* overflow float64"),
        (lambda: metrics.rate_reduction(Z * 1e160, LABELS), r"^Z: values up to .* overflow float64"),
        (lambda: metrics.effective_rank(Z * 1e160), r"^Z: values up to .* overflow float64"),
    ],
)
def test_overflowing_rates_are_refused_naming_eps_or_Z(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_tiny_but_representable_rate_stays_finite():
    assert np.isfinite(metrics.coding_rate(Z, 1e-150))


def _data_array(dims):
    import xarray as xr

    values = Z if dims[-2:] == ("feature", "sample") else Z.T
    return xr.DataArray(values[None] if len(dims) == 3 else values, dims=dims)


@pytest.mark.parametrize("dims", [("feature", "sample"), ("sample", "feature"), ("layer", "sample", "feature")])
def test_a_data_array_is_read_by_its_dims(dims):
    expected = metrics.coding_rate(Z)
    np.testing.assert_allclose(metrics.coding_rate(_data_array(dims)), expected if len(dims) == 2 else [expected])
    np.testing.assert_allclose(metrics.rate_reduction(_data_array(dims), LABELS).delta_R.squeeze(),
                               metrics.rate_reduction(Z, LABELS).delta_R)


@pytest.mark.parametrize("dims", [("layer", "feature"), ("feature", "sample", "step"), ("sample",)])
def test_a_data_array_without_feature_and_sample_last_is_refused(dims):
    import xarray as xr

    shape = {"layer": 2, "feature": 8, "sample": 12, "step": 3}
    Z_xr = xr.DataArray(np.ones([shape[d] for d in dims]), dims=dims)
    with pytest.raises(ValueError, match=rf"^Z: a DataArray must have last two dims \('feature', 'sample'\).*{dims}"):
        metrics.coding_rate(Z_xr)


@pytest.mark.parametrize(
    "check, value, match",
    [
        (check_level, -0.5, r"^level: expected a number in \(0, 1\), got -0.5"),
        (check_level, 0, r"^level: expected a number in \(0, 1\)"),
        (check_level, 1.5, r"^level: expected a number in \(0, 1\), got 1.5"),
        (check_level, True, r"^level: .*boolean"),
        (check_n_boot, 0.5, r"^n_boot: expected a positive integer, got 0.5"),
        (check_n_boot, 0, r"^n_boot: expected a positive integer"),
        (check_n_boot, True, r"^n_boot: expected a positive integer"),
    ],
)
def test_shared_level_and_n_boot_checks(check, value, match):
    with pytest.raises(ValueError, match=match):
        check(value)


def test_shared_checks_pass_good_values_and_check_choice_lists_the_valid_ones():
    assert check_level(0.9) == 0.9 and check_n_boot(np.int64(20)) == 20
    assert check_choice("branch", "cond", ["uncond", "cond"]) == "cond"
    with pytest.raises(ValueError, match=r"^branch: expected one of \['uncond', 'cond'\], got 'cnd'"):
        check_choice("branch", "cnd", ["uncond", "cond"])
    with pytest.raises(ValueError, match=r"^step: expected one of \[0, 6\], got array"):
        check_choice("step", np.array([0, 6]), [0, 6])
