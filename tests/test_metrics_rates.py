"""Coding rate and rate reduction: closed forms, a naive d×d reference, invariances, ε-curves."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subspacelens.metrics import coding_rate, coding_rate_curve, rate_reduction, rate_reduction_curve
from subspacelens.metrics.coding_rate import rate_from_product
from subspacelens.metrics.gram import gram, second_moment


def naive_rate(Z, eps):
    """½ slogdet(I_d + d/(N ε²) Z Zᵀ): the textbook form, fine on well-conditioned data."""
    d, n = Z.shape
    sign, logdet = np.linalg.slogdet(np.eye(d) + d / (n * eps**2) * Z @ Z.T)
    assert sign == 1
    return 0.5 * logdet


def naive_rate_reduction(Z, labels, eps):
    labels = np.asarray(labels)
    R = naive_rate(Z, eps)
    Rc = sum((labels == c).mean() * naive_rate(Z[:, labels == c], eps) for c in np.unique(labels))
    return R, Rc, R - Rc


def random_orthogonal(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.mark.parametrize("d, n", [(40, 15), (10, 25)])
@pytest.mark.parametrize("eps", [0.1, 0.5, 2.0])
def test_coding_rate_matches_naive_slogdet(rng, d, n, eps):
    Z = rng.standard_normal((d, n))
    assert coding_rate(Z, eps) == pytest.approx(naive_rate(Z, eps), rel=1e-12)


@pytest.mark.parametrize("d, n", [(20, 8), (8, 8), (5, 30)])
@pytest.mark.parametrize("eps", [0.25, 0.5, 1.0])
def test_orthonormal_columns_or_rows_closed_form(rng, d, n, eps):
    # Orthonormal columns (N ≤ d): ZᵀZ = I_N, so R = ½ N log(1 + d/(N ε²)).
    # Orthonormal rows (N > d): ZZᵀ = I_d, so R = ½ d log(1 + d/(N ε²)).
    Z = random_orthogonal(rng, max(d, n))[:d, :n]
    rank = min(d, n)
    expected = 0.5 * rank * np.log1p(d / (n * eps**2))
    assert coding_rate(Z, eps) == pytest.approx(expected, rel=1e-12)


def test_scaled_identity_closed_form():
    # Z = s·I_d (N = d): every eigenvalue of ZZᵀ is s², R = ½ d log(1 + s²/ε²).
    d, s, eps = 6, 3.0, 0.5
    assert coding_rate(s * np.eye(d), eps) == pytest.approx(0.5 * d * np.log1p(s**2 / eps**2), rel=1e-13)


def test_gram_and_covariance_paths_agree(rng):
    for d, n in [(30, 12), (12, 30), (16, 16)]:
        Z = rng.standard_normal((3, d, n))
        via_gram = rate_from_product(gram(Z), d, n, 0.5)
        via_second_moment = rate_from_product(second_moment(Z), d, n, 0.5)
        np.testing.assert_allclose(via_gram, via_second_moment, rtol=1e-10, atol=0)


def test_batched_equals_slice_by_slice(rng):
    Z = rng.standard_normal((2, 3, 20, 12))
    labels = np.repeat([0, 1, 2], 4)
    batched = rate_reduction(Z, labels)
    for i in range(2):
        for j in range(3):
            single = rate_reduction(Z[i, j], labels)
            assert batched.delta_R[i, j] == pytest.approx(float(single.delta_R), rel=1e-12)
    assert coding_rate(Z).shape == (2, 3)


def test_near_singular_data_gives_finite_rates(rng):
    # Rank one, huge dynamic range: slogdet on I + αG is fine here, but the Gram itself is singular.
    u = rng.standard_normal((50, 1))
    Z = u @ rng.standard_normal((1, 30)) * 1e6
    rate = coding_rate(Z)
    assert np.isfinite(rate) and rate > 0
    assert coding_rate(np.zeros((5, 4))) == 0.0


def test_rates_are_invariant_to_rotation_and_sample_order(rng):
    d, n = 25, 18
    Z = rng.standard_normal((d, n))
    labels = np.repeat(["a", "b", "c"], 6)
    reference = rate_reduction(Z, labels)
    rotated = rate_reduction(random_orthogonal(rng, d) @ Z, labels)
    order = rng.permutation(n)
    shuffled = rate_reduction(Z[:, order], labels[order])
    for other in (rotated, shuffled):
        for field in ("R", "Rc", "delta_R"):
            assert getattr(other, field) == pytest.approx(getattr(reference, field), rel=1e-10)


@pytest.mark.parametrize("d, n", [(30, 12), (6, 40)])
def test_rate_reduction_matches_naive_reference(rng, d, n):
    Z = rng.standard_normal((d, n))
    labels = rng.integers(0, 3, size=n)
    labels[:3] = [0, 1, 2]  # every class present, sizes unequal
    result = rate_reduction(Z, labels, eps=0.7)
    expected = naive_rate_reduction(Z, labels, 0.7)
    np.testing.assert_allclose([result.R, result.Rc, result.delta_R], expected, rtol=1e-11)


def test_single_class_has_zero_rate_reduction_exactly(rng):
    Z = rng.standard_normal((4, 30, 20))
    result = rate_reduction(Z, np.zeros(20))
    np.testing.assert_array_equal(result.delta_R, 0.0)
    np.testing.assert_array_equal(result.Rc, result.R)


def test_single_class_with_more_samples_than_dimensions(rng):
    # N > d: R uses the d×d second moment, the class the N×N Gram block; equal up to rounding.
    result = rate_reduction(rng.standard_normal((5, 40)), np.ones(40))
    assert abs(float(result.delta_R)) < 1e-10 * float(result.R)


def test_orthogonal_classes_closed_form():
    # Two classes on orthogonal coordinate axes, orthonormal columns within each class:
    # R = ½ N log(1 + d/(Nε²)), R_j = ½ N_j log(1 + d/(N_j ε²)).
    d, eps = 10, 0.5
    Z = np.eye(d)[:, :6]
    labels = np.array([0, 0, 0, 1, 1, 1])
    result = rate_reduction(Z, labels, eps)
    R = 0.5 * 6 * np.log1p(d / (6 * eps**2))
    Rc = 0.5 * 3 * np.log1p(d / (3 * eps**2))
    assert float(result.R) == pytest.approx(R, rel=1e-13)
    assert float(result.Rc) == pytest.approx(Rc, rel=1e-13)


def test_string_and_integer_labels_agree(rng):
    Z = rng.standard_normal((12, 9))
    as_ints = rate_reduction(Z, [2, 0, 1] * 3)
    as_strings = rate_reduction(Z, ["c", "a", "b"] * 3)
    assert float(as_ints.delta_R) == float(as_strings.delta_R)


def test_center_and_normalize_are_explicit(rng):
    Z = rng.standard_normal((15, 10)) + 3.0
    labels = np.repeat([0, 1], 5)
    centred = Z - Z.mean(axis=1, keepdims=True)
    unit = centred / np.linalg.norm(centred, axis=0)
    assert coding_rate(Z, center=True) == pytest.approx(coding_rate(centred), rel=1e-12)
    assert coding_rate(Z, center=True, normalize=True) == pytest.approx(coding_rate(unit), rel=1e-12)
    assert coding_rate(Z) != pytest.approx(coding_rate(centred), rel=1e-3)
    result = rate_reduction(Z, labels, center=True, normalize=True)
    assert float(result.delta_R) == pytest.approx(float(rate_reduction(unit, labels).delta_R), rel=1e-12)


@pytest.mark.parametrize("d, n", [(30, 12), (7, 40)])
def test_curves_equal_individual_calls(rng, d, n):
    Z = rng.standard_normal((2, d, n))
    labels = np.repeat([0, 1, 2, 3], n // 4)
    eps_values = np.array([0.05, 0.3, 0.5, 1.0, 4.0])
    curve = coding_rate_curve(Z, eps_values)
    rr_curve = rate_reduction_curve(Z, labels, eps_values)
    assert curve.shape == rr_curve.delta_R.shape == (2, eps_values.size)
    for k, eps in enumerate(eps_values):
        np.testing.assert_allclose(curve[:, k], coding_rate(Z, eps), rtol=1e-10)
        single = rate_reduction(Z, labels, eps)
        for field in ("R", "Rc", "delta_R"):
            np.testing.assert_allclose(getattr(rr_curve, field)[:, k], getattr(single, field), rtol=1e-9)


def test_rate_decreases_with_eps(rng):
    curve = coding_rate_curve(rng.standard_normal((10, 8)), [0.1, 0.2, 0.5, 1.0, 3.0])
    assert np.all(np.diff(curve) < 0)


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(2, 12),
    n=st.integers(2, 16),
    n_classes=st.integers(1, 4),
    eps=st.floats(0.05, 5.0),
    seed=st.integers(0, 2**16),
)
def test_property_rate_reduction_agrees_with_reference_and_is_nonnegative(d, n, n_classes, eps, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((d, n))
    labels = np.arange(n) % n_classes
    result = rate_reduction(Z, labels, eps)
    np.testing.assert_allclose([result.R, result.Rc, result.delta_R], naive_rate_reduction(Z, labels, eps),
                               rtol=1e-9, atol=1e-9)
    # Concavity of log det: R(Σ π_j Σ_j) ≥ Σ π_j R(Σ_j), so ΔR ≥ 0.
    assert float(result.delta_R) >= -1e-9
