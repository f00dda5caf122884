"""The procedural data set: deterministic, and with the v2 prompts' category/subject hierarchy."""

from __future__ import annotations

import numpy as np
import pytest

from subspacelens.organism.evaluate import NearestCentroid, features, subject_and_category_accuracy
from subspacelens.organism.images import make_image_set, render, traits
from subspacelens.prompts import load_prompt_set


@pytest.fixture(scope="module")
def image_set():
    return make_image_set(range(6), size=16)


def test_render_is_a_pure_function_of_subject_seed_size():
    a = render("lion", 3, size=16)
    assert a.shape == (3, 16, 16) and a.dtype == np.float32
    assert np.array_equal(a, render("lion", 3, size=16))
    assert not np.array_equal(a, render("lion", 4, size=16))
    assert a.min() >= -1 and a.max() <= 1


def test_traits_follow_the_prompt_set_hierarchy():
    ps = load_prompt_set("v2")
    table = traits("v2")
    assert list(table) == ps.subjects
    for category in ps.category_names:
        members = [t for t in table.values() if t.category == category]
        assert len({(t.shape, t.background) for t in members}) == 1, "a category shares shape and background"
        assert len({t.colour for t in members}) == len(members), "subjects of a category differ in colour"
    assert len({(t.shape, t.background) for t in table.values()}) == len(ps.category_names)
    assert len({(t.category, t.colour) for t in table.values()}) == len(ps.subjects)


def test_image_set_order_and_labels(image_set):
    ps = load_prompt_set("v2")
    assert image_set.images.shape == (25 * 6, 3, 16, 16)
    assert list(dict.fromkeys(image_set.subjects)) == ps.subjects
    assert all(ps.category_of[s] == c for s, c in zip(image_set.subjects, image_set.categories))
    assert np.array_equal(image_set.images[7], render(image_set.subjects[7], int(image_set.seeds[7]), size=16))


def test_category_trait_is_shared_within_a_category(image_set):
    """Images are closer (pooled pixels) to their own category's other subjects than to other categories'."""
    x = features(image_set.images)
    cats = image_set.categories
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    same = cats[:, None] == cats[None]
    other_subject = image_set.subjects[:, None] != image_set.subjects[None]
    assert d[same & other_subject].mean() < d[~same].mean()


def test_nearest_centroid_recovers_subjects_of_fresh_images(image_set):
    clf = NearestCentroid.fit(image_set.images, image_set.subjects)
    fresh = make_image_set(range(100, 104), size=16)
    acc = subject_and_category_accuracy(clf, fresh.images, fresh.subjects, load_prompt_set("v2").category_of)
    assert acc["subject"] > 0.8 and acc["category"] > 0.9
    assert acc["subject_chance"] == pytest.approx(1 / 25) and acc["category_chance"] == pytest.approx(1 / 5)
