"""Procedural images with the v2 prompts' hierarchy: 5 categories × 5 subjects, any number of seeds.

The organism has to be trained on *something* whose label structure matches the prompts the book
probes, so that "do activations separate categories / subjects?" has a known right answer:

* a **category** fixes the object's *shape family* and the *background texture*
  (e.g. every "animals" image is a disc on a plain background, every "buildings" image a tower on
  vertical stripes): the trait all its subjects share;
* a **subject** fixes the object's *colour* inside its category (the same 5 colours recur in every
  category, so the two levels are a clean factorial design: category = shape + background, subject =
  category × colour);
* a **seed** varies only nuisance factors: position, scale, aspect, a small colour jitter and pixel noise.

Images are float32 arrays ``(3, H, W)`` in ``[-1, 1]`` (the VAE's input range), a pure function of
``(subject, seed, size)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from subspacelens.prompts import load_prompt_set

SHAPES = ("disc", "tower", "ring", "triangle", "horizon")
BACKGROUNDS = ("plain", "vertical-stripes", "checker", "horizontal-stripes", "gradient")
COLOURS = {
    "red": (0.85, 0.15, 0.15),
    "yellow": (0.95, 0.80, 0.10),
    "green": (0.15, 0.70, 0.25),
    "blue": (0.15, 0.35, 0.90),
    "magenta": (0.80, 0.20, 0.80),
}
PIXEL_NOISE = 0.03  # std of the per-pixel noise, in [0, 1] units
COLOUR_JITTER = 0.05


@dataclass(frozen=True)
class Traits:
    """What a subject looks like: the category's shape and background, the subject's colour."""

    subject: str
    category: str
    shape: str
    background: str
    colour: str


@lru_cache(maxsize=8)
def traits(prompt_set: str = "v2") -> dict[str, Traits]:
    """Subject -> traits, assigned by position in the prompt set (category i gets ``SHAPES[i]``, ...)."""
    ps = load_prompt_set(prompt_set)
    if len(ps.category_names) > len(SHAPES):
        raise ValueError(f"prompt_set {prompt_set!r} has more than {len(SHAPES)} categories")
    out = {}
    for c, category in enumerate(ps.category_names):
        subjects = [s for s in ps.subjects if ps.category_of[s] == category]
        if len(subjects) > len(COLOURS):
            raise ValueError(f"category {category!r} has more than {len(COLOURS)} subjects")
        for s, (subject, colour) in enumerate(zip(subjects, COLOURS)):
            out[subject] = Traits(subject, category, SHAPES[c], BACKGROUNDS[c], colour)
    return out


def _smooth(d: np.ndarray, size: int) -> np.ndarray:
    """Antialiased inside-mask from a signed distance (negative inside), one pixel wide."""
    return np.clip(0.5 - d * size, 0.0, 1.0)


def _background(kind: str, y: np.ndarray, x: np.ndarray, phase: float) -> np.ndarray:
    """Grey-level texture in [0, 1]; ``phase`` shifts stripes/checks so the seed moves them.

    Each texture also has its own mean grey level, so that a category stays recognisable after blurring
    or averaging over seeds (stripes with a random phase average to a flat grey). The backgrounds are
    achromatic on purpose: colour is the *subject's* trait.
    """
    if kind == "plain":
        return np.full_like(x, 0.85)
    if kind == "vertical-stripes":
        return 0.35 + 0.2 * (np.sin(2 * np.pi * (4 * x + phase)) > 0)
    if kind == "horizontal-stripes":
        return 0.5 + 0.2 * (np.sin(2 * np.pi * (4 * y + phase)) > 0)
    if kind == "checker":
        return 0.65 + 0.3 * ((np.sin(2 * np.pi * (3 * x + phase)) > 0) ^ (np.sin(2 * np.pi * (3 * y + phase)) > 0))
    if kind == "gradient":
        return 0.95 - 0.6 * y
    raise ValueError(f"unknown background {kind!r}")


def _shape_mask(kind: str, y: np.ndarray, x: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Object coverage in [0, 1]; position, scale and aspect drawn from ``rng`` (the nuisance factors)."""
    cy, cx = rng.uniform(0.35, 0.65, size=2)
    r = rng.uniform(0.2, 0.3)
    aspect = rng.uniform(0.8, 1.25)
    dy, dx = (y - cy) * aspect, (x - cx) / aspect
    if kind == "disc":
        d = np.hypot(dy, dx) - r
    elif kind == "ring":
        d = np.abs(np.hypot(dy, dx) - r) - 0.32 * r
    elif kind == "tower":
        d = np.maximum(np.abs(dx) - 0.45 * r, np.abs(dy) - 1.5 * r)
    elif kind == "triangle":  # apex up, base below: inside the base line and the two slanted sides
        h = 1.1 * r
        d = np.maximum(dy - h, np.abs(dx) - 1.1 * r * (dy + h) / (2 * h))
    elif kind == "horizon":  # filled ground below a wavy ridge whose height is the seed's
        ridge = cy + 0.06 * np.sin(2 * np.pi * (x * rng.uniform(1.0, 2.0) + rng.uniform(0, 1)))
        d = ridge - y
    else:
        raise ValueError(f"unknown shape {kind!r}")
    return _smooth(d, size)


def render(subject: str, seed: int, size: int = 32, prompt_set: str = "v2") -> np.ndarray:
    """One image of ``subject`` (a v2 subject label such as ``"lion"``), a pure function of its arguments."""
    table = traits(prompt_set)
    if subject not in table:
        raise ValueError(f"unknown subject {subject!r}; known: {list(table)}")
    t = table[subject]
    rng = np.random.default_rng([seed, list(table).index(subject), size])
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    y, x = (y + 0.5) / size, (x + 0.5) / size
    bg = _background(t.background, y, x, phase=rng.uniform(0, 1))
    mask = _shape_mask(t.shape, y, x, rng, size)
    colour = np.clip(np.asarray(COLOURS[t.colour]) + rng.normal(0, COLOUR_JITTER, 3), 0, 1)
    img = bg[None] * (1 - mask[None]) + colour[:, None, None] * mask[None]
    img = img + rng.normal(0, PIXEL_NOISE, img.shape)
    return (np.clip(img, 0, 1) * 2 - 1).astype(np.float32)


@dataclass(frozen=True)
class ImageSet:
    """``images`` (N, 3, H, W) in [-1, 1], with one subject, category and seed per row."""

    images: np.ndarray
    subjects: np.ndarray
    categories: np.ndarray
    seeds: np.ndarray


def make_image_set(seeds: range | list[int], size: int = 32, prompt_set: str = "v2") -> ImageSet:
    """Every subject × every seed, subject-major (the prompt sets' sample order)."""
    table = traits(prompt_set)
    rows = [(t.subject, t.category, s) for t in table.values() for s in seeds]
    images = np.stack([render(subj, s, size, prompt_set) for subj, _, s in rows])
    subjects, categories, seed_col = (np.asarray(col) for col in zip(*rows))
    return ImageSet(images, subjects, categories, seed_col.astype(np.int64))
