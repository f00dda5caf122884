"""Interventions through subspaces: does the geometry the lens measures cause what the model draws?

* :class:`EditBlocks` — context manager editing block outputs during generation (hook points
  ``blocks.<i>``, the capture's adapters and step bookkeeping), with :class:`EditContext`, :func:`as_edit` and :func:`by_step`.
* :mod:`~subspacelens.intervene.edits` — :func:`project_out`, :func:`keep_only`, :func:`patch`,
  :func:`add_direction`, :func:`random_basis` (pure functions of the tokens) and :func:`paired_patch`.
* :mod:`~subspacelens.intervene.bases` — subspaces from the activation cache on held-out seeds.
* :mod:`~subspacelens.intervene.readouts` — classifier outcomes, intervals over seeds, :class:`OffManifold`.
* :mod:`~subspacelens.intervene.experiments` — the chapter's batched ablation / patching / steering runs.
* the scorecard's causal findings live in :mod:`subspacelens.scorecard.measures.steering_through_subspaces`.
"""

from subspacelens.intervene.bases import (between_class_basis, block_matrix, mean_difference, natural_span,
                                          restrict_to_span, split_seeds)
from subspacelens.intervene.edits import add_direction, check_basis, keep_only, paired_patch, patch, project_out, random_basis
from subspacelens.intervene.hooks import Edit, EditBlocks, EditContext, as_edit, by_step
from subspacelens.intervene.readouts import CLASSIFIERS, OffManifold, load_classifier, outcomes, seed_interval, seed_resamples

__all__ = [
    "CLASSIFIERS",
    "Edit",
    "EditBlocks",
    "EditContext",
    "OffManifold",
    "add_direction",
    "as_edit",
    "between_class_basis",
    "block_matrix",
    "by_step",
    "check_basis",
    "keep_only",
    "load_classifier",
    "mean_difference",
    "natural_span",
    "outcomes",
    "paired_patch",
    "patch",
    "project_out",
    "random_basis",
    "restrict_to_span",
    "seed_interval",
    "seed_resamples",
    "split_seeds",
]
