"""Three lenses on the same activations: label subspaces, label-free subspaces and sparse dictionaries.

* label subspaces — :func:`label_subspace` (the between-class span of a factor's labels; the metrics of
  :mod:`subspacelens.metrics` measure them);
* label-free subspaces — :func:`discover_subspaces` (NDM-style: an orthogonal basis whose directions group
  into independent subspaces) and, on the sample side, :func:`k_subspaces` clustering;
* sparse dictionaries — :func:`train_sae` (a TopK sparse autoencoder).

:func:`factors_of` reads the known factors of the images from a cache; :func:`probe_table`,
:func:`latent_auc`, :func:`best_factor`, :func:`cluster_agreement` and :func:`basis_overlap` score every lens
against them and against each other; :func:`preimages` finds the samples that load most on a subspace or
latent; :func:`measure` times a lens and its memory; :func:`compare_lenses` runs and scores all three at one slice.
"""

from .compare import LensComparison, compare_lenses
from .clustering import cluster_agreement, k_subspaces
from .cost import Cost, measure
from .discovery import DiscoveredSubspaces, direction_mutual_information, discover_subspaces
from .factors import DEFAULT_FACTORS, Factor, factors_of
from .preimages import preimages
from .sae import SparseAutoencoder, train_sae
from .scores import (atom_recovery, atom_span, basis_overlap, best_factor, best_overlaps, label_subspace,
                     latent_auc, probe_r2, probe_table)

__all__ = [
    "DEFAULT_FACTORS",
    "Cost",
    "DiscoveredSubspaces",
    "Factor",
    "LensComparison",
    "SparseAutoencoder",
    "atom_recovery",
    "atom_span",
    "basis_overlap",
    "best_factor",
    "best_overlaps",
    "cluster_agreement",
    "compare_lenses",
    "direction_mutual_information",
    "discover_subspaces",
    "factors_of",
    "k_subspaces",
    "label_subspace",
    "latent_auc",
    "measure",
    "preimages",
    "probe_r2",
    "probe_table",
    "train_sae",
]
