"""The committed 28-block organisms know their subjects: weights from data/models, samples at held-out seeds.

Each ``data/models/organism-s<k>/`` was written by ``make organisms`` with its twin, its annotator and its
training log. The floors are issue 7's: at the capture chapter's sampling settings (20 steps, CFG 4.5) at
least 90 % of the samples show the prompted subject and 95 % its category, by the annotator (itself right on
at least 98 % of fresh procedural images).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from diffusers import DiffusionPipeline

from subspacelens.organism.evaluate import ANNOTATOR_FLOOR, FLOORS, CNNClassifier, accuracy_summary, held_out_predictions
from subspacelens.organism.train import LOG_NAME, subject_prompts
from subspacelens.paths import resolve
from subspacelens.prompts import load_prompt_set

SEEDS = (0, 1, 2)
SUBJECT_FLOOR, CATEGORY_FLOOR = FLOORS["subject"], FLOORS["category"]


def _folder(seed):
    return resolve(f"data/models/organism-s{seed}")


@pytest.fixture(scope="module")
def prompt_set():
    return load_prompt_set("v2")


def _summary(record, prompt_set):
    return accuracy_summary(record, prompt_set.category_of, list(subject_prompts()))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_training_log_records_the_floors_met_and_a_twin_near_chance(seed, prompt_set):
    log = json.loads((_folder(seed) / LOG_NAME).read_text())
    assert log["seed"] == seed and log["organism_config"]["num_layers"] == 28 and log["num_threads"] == 1
    evaluation = log["evaluation"]
    annotator = _summary(evaluation["annotator"]["fresh"], prompt_set)
    assert annotator["subject"]["rate"] >= ANNOTATOR_FLOOR
    trained = _summary(evaluation["trained"], prompt_set)
    assert trained["subject"]["n"] == 200
    assert trained["subject"]["rate"] >= SUBJECT_FLOOR and trained["category"]["rate"] >= CATEGORY_FLOOR
    twin = _summary(evaluation["random_init"], prompt_set)
    assert twin["subject"]["high"] < SUBJECT_FLOOR / 2, "the untrained twin must not render its subjects"
    steps = [snapshot["step"] for snapshot in evaluation["snapshots"]]
    assert steps == sorted(steps) and steps[-1] <= log["train_config"]["steps"] == len(log["losses"])


@pytest.mark.parametrize("seed", SEEDS)
def test_the_committed_weights_render_their_subjects_at_held_out_seeds(seed, prompt_set):
    folder = _folder(seed)
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    annotator = CNNClassifier.load(folder / "annotator")
    held_out = (10_008, 10_009)  # seeds neither the training images nor the log's evaluation used
    record = held_out_predictions(pipe, annotator, subject_prompts(), held_out)
    summary = _summary(record, prompt_set)
    assert summary["subject"]["rate"] >= SUBJECT_FLOOR, summary["subject"]
    assert summary["category"]["rate"] >= CATEGORY_FLOOR, summary["category"]
    assert np.isin(record["seed"], held_out).all() and len(record["seed"]) == 50


def test_the_steering_chapter_classifier_is_the_committed_annotator(tmp_path):
    """``load_classifier("annotator", model=...)`` reads the annotator saved with the organism, and names a folder
    that holds none."""
    from subspacelens.intervene import load_classifier

    folder = _folder(0)
    judge = load_classifier("annotator", image_size=32, model=str(folder))
    images = np.random.default_rng(0).random((3, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(judge.predict(images), CNNClassifier.load(folder / "annotator").predict(images))
    with pytest.raises(ValueError, match="no-organism.*holds no annotator"):
        load_classifier("annotator", image_size=32, model=str(tmp_path / "no-organism"))
