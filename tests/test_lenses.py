"""The three lenses on planted data: discovery recovers planted subspaces, the SAE planted atoms; bad input fails."""

import numpy as np
import pytest
import torch
import xarray as xr

from subspacelens import lenses
from subspacelens.synthetic import low_rank_mixture, planted_direct_sum, sparse_codes

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def planted():
    return planted_direct_sum(12, 400, dims=(2, 3, 2), levels=(4, 5, 6), seed=0)


@pytest.fixture(scope="module")
def discovered(planted):
    return lenses.discover_subspaces(planted.Z, seed=0)


def test_discovery_recovers_every_planted_subspace_of_most_planted_structures(planted, discovered):
    """The rotation is trained by Adam on a sorted-gap objective, whose trajectory floating-point details (the
    CPU's vector kernels) can tip into another local minimum, where a block comes out merged with a noise
    direction (strict overlap ≈ 0.75). So the claim is a rate over the chapter's five planted structures: 3 of
    5 recovered on the CPU the references were first made on, 4 of 5 on the current one; none untrained."""
    recovered = []
    for planted_seed in range(5):
        other = planted if planted_seed == 0 else planted_direct_sum(12, 400, dims=(2, 3, 2), levels=(4, 5, 6),
                                                                      seed=planted_seed)
        found = discovered if planted_seed == 0 else lenses.discover_subspaces(other.Z, seed=0)
        recovered.append(bool((lenses.best_overlaps(other.bases, found.bases, strict=True) >= 0.9).all()))
    assert sum(recovered) >= 3, recovered
    assert np.allclose(np.concatenate(discovered.bases, axis=1).T @ np.concatenate(discovered.bases, axis=1),
                       np.eye(12), atol=1e-8)


def test_discovery_is_deterministic_and_honours_the_count(planted, discovered):
    again = lenses.discover_subspaces(planted.Z, seed=0)
    assert again.dims == discovered.dims
    assert all(np.array_equal(a, b) for a, b in zip(again.bases, discovered.bases))
    three = lenses.discover_subspaces(planted.Z, 3, seed=0, steps=20)
    assert len(three.bases) == 3 and sum(three.dims) == 12


def test_discovery_fails_without_training(planted):
    """The principal axes alone mix the planted blocks: the training is what recovers them."""
    untrained = lenses.discover_subspaces(planted.Z, seed=0, steps=0)
    assert lenses.best_overlaps(planted.bases, untrained.bases).min() < 0.9


def test_sae_recovers_planted_sparse_atoms():
    codes = sparse_codes(16, 2000, 2, n_atoms=32, nonnegative=True, seed=0)
    sae = lenses.train_sae(codes.Z, n_latents=64, k=2, steps=800, seed=0)
    assert (lenses.atom_recovery(codes.dictionary, sae.decoder) >= 0.9).all()
    assert sae.fraction_unexplained(codes.Z) < 0.1
    assert sae.l0(codes.Z) <= 2
    assert np.allclose(np.linalg.norm(sae.decoder, axis=0), 1)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda Z: lenses.discover_subspaces(Z, 13), "n_subspaces"),
        (lambda Z: lenses.discover_subspaces(Z, n_components=20), "n_components"),
        (lambda Z: lenses.train_sae(Z, n_latents=8), "n_latents"),
        (lambda Z: lenses.train_sae(Z, k=13), "k"),
        (lambda Z: lenses.k_subspaces(Z, 2, rank=12), "rank"),
    ],
)
def test_bad_arguments_are_named(call, argument):
    Z = np.random.default_rng(0).standard_normal((12, 50))
    with pytest.raises(ValueError, match=f"^{argument}"):
        call(Z)


@pytest.mark.parametrize("lens", [lenses.discover_subspaces, lenses.train_sae, lambda Z: lenses.k_subspaces(Z, 2)])
def test_non_finite_samples_are_refused(lens):
    Z = np.ones((4, 20))
    Z[1, 3] = np.nan
    with pytest.raises(ValueError, match="^Z"):
        lens(Z)


def _dataset(**coords):
    n = len(next(iter(coords.values())))
    return xr.Dataset({"activations": (("sample", "feature"), np.zeros((n, 2)))},
                      coords={name: ("sample", values) for name, values in coords.items()})


def test_factors_skip_absent_coordinates_with_a_note():
    notes = []
    ds = _dataset(category=np.array(["a", "b"] * 10), scale=np.linspace(0, 1, 20))
    factors = lenses.factors_of(ds, ("category", "colour", "scale"), note=notes.append)
    assert list(factors) == ["category", "scale"]
    assert factors["scale"].kind == "continuous" and factors["category"].kind == "categorical"
    assert "colour" in notes[0]
    assert np.bincount(factors["scale"].classes(4)).tolist() == [5, 5, 5, 5]
    with pytest.raises(ValueError, match="^names"):
        lenses.factors_of(ds, ("colour",), note=notes.append)


def test_k_subspaces_finds_planted_classes():
    mixture = low_rank_mixture(20, 60, 2, 90.0, K=3, noise=0.02, seed=1)
    clusters = lenses.k_subspaces(mixture.Z, 3, rank=2, seed=0)
    factor = lenses.Factor("class", mixture.labels, "categorical")
    agreement = lenses.cluster_agreement(clusters, {"class": factor})
    assert agreement.loc["class", "ARI"] > 0.9


def test_scores_on_known_answers():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    factor = lenses.Factor("class", labels, "categorical")
    indicator = (labels == 2).astype(float) + 0.01 * rng.random(200)
    auc = lenses.latent_auc(np.stack([indicator, rng.random(200)]), {"class": factor})
    assert auc.loc[0, ("class", "2")] == pytest.approx(1.0)
    assert abs(auc.loc[1, ("class", "2")] - 0.5) < 0.15
    best = lenses.best_factor(auc)
    assert best.loc[0, "class"] == "2"
    onehot = factor.target()
    assert lenses.probe_r2(onehot + 0.01 * rng.standard_normal(onehot.shape), factor) > 0.95
    assert lenses.probe_r2(rng.standard_normal((200, 2)), factor) < 0.1


def test_a_continuous_factor_is_probed_as_one_column():
    """R² of a continuous factor: near 1 from coordinates that carry it, near 0 (not hugely negative) from noise."""
    rng = np.random.default_rng(0)
    values = rng.random(200)
    factor = lenses.Factor("position_x", values, "continuous")
    carried = np.stack([values + 0.01 * rng.standard_normal(200), rng.standard_normal(200)], axis=1)
    assert lenses.probe_r2(carried, factor) > 0.95
    assert -0.1 < lenses.probe_r2(rng.standard_normal((200, 3)), factor) < 0.1


def test_label_subspace_spans_the_class_means():
    mixture = low_rank_mixture(30, 50, 2, 90.0, K=3, mean_shift=5.0, seed=0)
    basis = lenses.label_subspace(mixture.Z, mixture.labels, energy=0.99)
    means = mixture.means - mixture.means.mean(axis=1, keepdims=True)
    assert basis.shape[1] == 2
    assert np.allclose(basis @ (basis.T @ means), means, atol=0.05 * np.abs(means).max())
    assert lenses.basis_overlap(basis, basis, strict=True) == pytest.approx(1.0)


def test_preimages_are_the_query_and_its_nearest_neighbours():
    coordinates = np.array([[0.0], [1.0], [5.0], [4.5], [4.0]])
    assert lenses.preimages(coordinates, 3).tolist() == [2, 3, 4]
    with pytest.raises(ValueError, match="^n"):
        lenses.preimages(coordinates, 6)


def test_measure_reports_time_and_memory():
    result, cost = lenses.measure(np.ones, (1000, 1000))
    assert result.shape == (1000, 1000) and cost.seconds > 0 and cost.peak_mib >= 0


def test_compare_lenses_scores_every_lens_against_planted_factors():
    planted = planted_direct_sum(10, 300, dims=(2, 2), levels=(3, 4), seed=1)
    factors = {f"f{i}": lenses.Factor(f"f{i}", values, "categorical") for i, values in enumerate(planted.factors)}
    result = lenses.compare_lenses(planted.Z, factors, discovery={"steps": 50}, sae={"steps": 50, "k": 2},
                                   n_clusters=(3,))
    assert set(result.costs) == {"label subspaces", "discovered subspaces", "k-subspaces clustering", "sparse autoencoder"}
    label = result.probes["label"]
    for i, name in enumerate(factors):  # each label subspace carries its own factor far more than the other
        assert label.loc[name, name] > label.loc[name, f"f{1 - i}"] + 0.4
        assert lenses.basis_overlap(result.label_bases[name], planted.bases[i]) > 0.9
    assert list(result.overlaps.index) == list(factors)
    assert result.clusters.index.names == ["clusters", "factor"]
