"""All three lenses on one slice, scored against the known factors and against each other.

For one block's ``Z`` (``d × N``) :func:`compare_lenses` runs

* the **label** lens: for every factor its between-class subspace (:func:`label_subspace`) and, as the
  metrics chapters read labels, the factor's rate reduction and class-subspace overlap;
* the **label-free** lens: :func:`discover_subspaces`, and k-subspaces clustering of the samples;
* the **dictionary** lens: :func:`train_sae`, each live latent's best-matching factor (AUC), and for each
  factor the span of the decoder atoms of the latents tied to it (best factor, AUC ≥ ``auc_threshold``);

then the linear-probe R² of every factor in every subspace of every lens, and per factor the overlaps of
the three subspaces that carry it (the label subspace; the discovered subspace of highest R²; the tied
atoms' span) next to the overlap random subspaces of the same sizes would have, ``max(k_a, k_b) / d``.
Each lens's cost (seconds, resident memory) is measured with :func:`measure`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import metrics
from ..metrics._checks import as_samples
from .clustering import cluster_agreement, k_subspaces
from .cost import Cost, measure
from .discovery import DiscoveredSubspaces, discover_subspaces
from .sae import SparseAutoencoder, train_sae
from .scores import atom_span, basis_overlap, best_factor, label_subspace, latent_auc, probe_table

__all__ = ["LensComparison", "compare_lenses"]


@dataclass
class LensComparison:
    """What :func:`compare_lenses` found at one slice (see the module docstring)."""

    discovered: DiscoveredSubspaces
    sae: SparseAutoencoder
    label_bases: dict[str, np.ndarray]
    sae_bases: dict[str, np.ndarray]
    probes: dict[str, pd.DataFrame]
    latents: pd.DataFrame
    overlaps: pd.DataFrame
    clusters: pd.DataFrame
    label_metrics: pd.DataFrame
    sae_summary: dict[str, float]
    costs: dict[str, Cost] = field(default_factory=dict)


def _label_lens(Z, factors, energy, n_bins):
    bases, rows = {}, {}
    for name, factor in factors.items():
        classes = factor.classes(n_bins)
        bases[name] = label_subspace(Z, classes, energy=energy)
        rows[name] = {"delta_R": float(metrics.rate_reduction(Z, classes).delta_R),
                      "class overlap": float(metrics.subspace_overlap(Z, classes).mean_offdiagonal)}
    return bases, pd.DataFrame(rows).T


def _clusters(Z, factors, n_clusters, rank, seed, n_bins):
    parts = []
    for count in n_clusters:
        table = cluster_agreement(k_subspaces(Z, count, rank=rank, seed=seed), factors, n_bins=n_bins)
        parts.append(table.assign(clusters=count).rename_axis("factor").reset_index())
    return pd.concat(parts).set_index(["clusters", "factor"])


def compare_lenses(Z, factors, *, discovery=None, sae=None, n_clusters=(5,), cluster_rank=2, label_energy=0.99,
                   auc_threshold=0.9, n_bins=4, seed=0) -> LensComparison:
    """Run and score the three lenses on ``Z`` (``d × N``) against ``factors`` (``{name: Factor}``).

    ``discovery`` and ``sae`` are keyword arguments for :func:`discover_subspaces` and :func:`train_sae`;
    ``n_clusters`` the k-subspaces cluster counts; ``n_bins`` the bins of continuous factors.
    """
    Z = as_samples(Z)
    if Z.ndim != 2:
        raise ValueError(f"Z: expected one slice of shape (d, N), got shape {Z.shape}")
    if not factors:
        raise ValueError("factors: expected at least one factor")
    costs = {}
    (label_bases, label_metrics), costs["label subspaces"] = measure(_label_lens, Z, factors, label_energy, n_bins)
    discovered, costs["discovered subspaces"] = measure(discover_subspaces, Z, seed=seed, **(discovery or {}))
    clusters, costs["k-subspaces clustering"] = measure(_clusters, Z, factors, n_clusters, cluster_rank, seed, n_bins)
    autoencoder, costs["sparse autoencoder"] = measure(train_sae, Z, seed=seed, **(sae or {}))

    centred = Z - Z.mean(axis=1, keepdims=True)
    codes = autoencoder.encode(Z)
    alive = np.flatnonzero((codes > 0).any(axis=1))
    latents = best_factor(latent_auc(codes[alive], factors)).set_axis(alive)
    tied = latents[latents["auc"] >= auc_threshold]
    sae_bases = {name: atom_span(autoencoder.decoder, tied.index[tied["factor"] == name]) for name in factors}

    def coordinates(bases):
        return {name: (B.T @ centred).T for name, B in bases.items() if B.shape[1]}

    discovered_bases = {f"S{i} ({k}d)": B for i, (B, k) in enumerate(zip(discovered.bases, discovered.dims))}
    probes = {
        "label": probe_table(coordinates(label_bases), factors, seed=seed),
        "discovered": probe_table(coordinates(discovered_bases), factors, seed=seed),
        "SAE": probe_table(coordinates(sae_bases), factors, seed=seed),
    }
    d = Z.shape[0]
    rows = {}
    for name in factors:
        best = probes["discovered"][name].idxmax()
        pairs = {"label ~ discovered": (label_bases[name], discovered_bases[best]),
                 "label ~ SAE": (label_bases[name], sae_bases[name]),
                 "discovered ~ SAE": (discovered_bases[best], sae_bases[name])}
        row = {"label dims": label_bases[name].shape[1], "discovered": best, "SAE atoms": int((tied["factor"] == name).sum()),
               "SAE dims": sae_bases[name].shape[1]}
        for pair, (A, B) in pairs.items():
            row[pair] = basis_overlap(A, B)
            row[f"{pair} chance"] = max(A.shape[1], B.shape[1]) / d if min(A.shape[1], B.shape[1]) else float("nan")
        rows[name] = row
    summary = {
        "latents": autoencoder.n_latents,
        "k": autoencoder.k,
        "fraction unexplained": autoencoder.fraction_unexplained(Z),
        "L0": autoencoder.l0(Z),
        "dead": autoencoder.n_latents - len(alive),
        "tied": len(tied),
    }
    return LensComparison(discovered=discovered, sae=autoencoder, label_bases=label_bases, sae_bases=sae_bases,
                          probes=probes, latents=latents, overlaps=pd.DataFrame(rows).T, clusters=clusters,
                          label_metrics=label_metrics, sae_summary=summary, costs=costs)
