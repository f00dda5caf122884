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

That is ``hierarchy="factorial"``, the default (the book's organism). ``hierarchy="nested"`` is the
alternative of issue 7, in which a subject is *not* a colour:

* a **category** fixes a *shape family* (round, angular, triangular, bars, landscape) and an achromatic
  *background family* (the same grey-level textures as above);
* a **subject** is one *member* of its family: a silhouette of its own (disc / ring / half-disc / two discs /
  crescent, square / frame / diamond / plus / L, ...) that no other category uses. The members are coarse on
  purpose: siblings differ over a large part of the object, so that they stay distinct on the organism's
  8×8 token grid (32 px images, 16×16 latents, patch 2);
* a **seed** draws the nuisance factors, *independently of the subject*: the object's colour (from a palette
  shared by every category), position, scale and the background's phase. They are drawn from the seed alone,
  so all 25 subjects of one seed share them (a paired design: within a seed only the subject changes), and
  they are recorded per sample in the ``ImageSet``. Only the pixel noise depends on ``(subject, seed)``.

Images are float32 arrays ``(3, H, W)`` in ``[-1, 1]`` (the VAE's input range), a pure function of
``(subject, seed, size, hierarchy)``.
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
HIERARCHIES = ("factorial", "nested")

# The nested hierarchy: category i gets FAMILIES[i] (its members, in subject order) on BACKGROUNDS[i].
FAMILIES = {
    "round": ("disc", "ring", "half-disc", "two-discs", "crescent"),
    "angular": ("square", "frame", "diamond", "plus", "ell"),
    "triangular": ("triangle-up", "triangle-down", "triangle-right", "hourglass", "bowtie"),
    "bars": ("bar-horizontal", "bar-vertical", "bars-horizontal", "bars-vertical", "bar-diagonal"),
    "landscape": ("flat", "slope", "hill", "valley", "two-hills"),
}
# Nuisance ranges of the nested hierarchy: object centre (both axes) and radius, fractions of the image side.
# Large objects (diameter 20-26 px of 32) on purpose: in pilots (pilots/RESULTS.md) radius 0.24-0.32 gave
# 26.5 % subject accuracy of samples, 0.32-0.40 gave 40 % with the same recipe.
NESTED_CENTRE = (0.42, 0.58)
NESTED_SCALE = (0.32, 0.40)
# Object colours of the nested hierarchy: a nuisance palette shared by all categories.
PALETTE = COLOURS | {"orange": (0.95, 0.50, 0.10), "cyan": (0.10, 0.75, 0.85)}


@dataclass(frozen=True)
class Traits:
    """What a subject looks like.

    Factorial: the category's ``shape`` and ``background``, the subject's ``colour``. Nested: ``shape`` is the
    category's family, ``member`` the subject's silhouette in it, ``colour`` is ``None`` (a nuisance per seed).
    """

    subject: str
    category: str
    shape: str
    background: str
    colour: str | None
    member: str | None = None


@lru_cache(maxsize=8)
def traits(prompt_set: str = "v2", hierarchy: str = "factorial") -> dict[str, Traits]:
    """Subject -> traits, assigned by position in the prompt set (category i gets ``SHAPES[i]``, ...).

    ``hierarchy="nested"``: category i gets family ``list(FAMILIES)[i]`` and background ``BACKGROUNDS[i]``, its
    j-th subject the family's j-th member.
    """
    if hierarchy not in HIERARCHIES:
        raise ValueError(f"unknown hierarchy {hierarchy!r}; known: {HIERARCHIES}")
    if hierarchy == "nested":
        return _nested_traits(prompt_set)
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


def _nested_traits(prompt_set: str) -> dict[str, Traits]:
    ps = load_prompt_set(prompt_set)
    if len(ps.category_names) > len(FAMILIES):
        raise ValueError(f"prompt_set {prompt_set!r} has more than {len(FAMILIES)} categories")
    out = {}
    for (family, members), background, category in zip(FAMILIES.items(), BACKGROUNDS, ps.category_names):
        subjects = [s for s in ps.subjects if ps.category_of[s] == category]
        if len(subjects) > len(members):
            raise ValueError(f"category {category!r} has more than {len(members)} subjects")
        for subject, member in zip(subjects, members):
            out[subject] = Traits(subject, category, family, background, None, member)
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


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)`` in (0, 1), each ``(size, size)``."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return (y + 0.5) / size, (x + 0.5) / size


def _shape_mask_and_pose(kind, y, x, rng, size) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Object coverage in [0, 1] of a factorial shape, and the ``(x, y, scale)`` drawn from ``rng`` for it
    (centre and radius, in image-width units; an aspect too: the nuisance factors)."""
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
    return _smooth(d, size), (float(cx), float(cy), float(r))


def _member_distance(member: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside, roughly Euclidean) of a nested member, in object units.

    ``(u, v)`` are the pixel coordinates relative to the object's centre divided by its scale, so every
    member fills about ``[-1, 1]²``; the landscape members get ``(u, v)`` relative to the horizon point instead.
    """
    au, av, rad = np.abs(u), np.abs(v), np.hypot(u, v)
    box = lambda hu, hv, uu=au, vv=av: np.maximum(uu - hu, vv - hv)  # noqa: E731 (axis-aligned box)
    shapes = {
        # round
        "disc": lambda: rad - 1.0,
        "ring": lambda: np.abs(rad - 0.75) - 0.25,
        "half-disc": lambda: np.maximum(np.hypot(u, v + 0.35) - 1.05, v - 0.35),
        "two-discs": lambda: np.minimum(np.hypot(u - 0.55, v) - 0.48, np.hypot(u + 0.55, v) - 0.48),
        "crescent": lambda: np.maximum(rad - 1.0, 0.8 - np.hypot(u - 0.55, v)),
        # angular
        "square": lambda: box(0.85, 0.85),
        "frame": lambda: np.abs(np.maximum(au, av) - 0.72) - 0.22,
        "diamond": lambda: (au + av - 1.15) / np.sqrt(2),
        "plus": lambda: np.minimum(box(0.32, 1.0), box(1.0, 0.32)),
        "ell": lambda: np.minimum(box(0.32, 1.0, np.abs(u + 0.65)), box(1.0, 0.32, au, np.abs(v - 0.65))),
        # triangular (apex-to-base height 1.9, base half-width 1)
        "triangle-up": lambda: np.maximum(v - 0.9, (au - (v + 1.0) / 1.9) * 0.88),
        "triangle-down": lambda: np.maximum(-v - 0.9, (au - (1.0 - v) / 1.9) * 0.88),
        "triangle-right": lambda: np.maximum(-u - 0.9, (av - (1.0 - u) / 1.9) * 0.88),
        "hourglass": lambda: np.maximum((au - av) / np.sqrt(2), av - 1.0),
        "bowtie": lambda: np.maximum((av - au) / np.sqrt(2), au - 1.0),
        # bars
        "bar-horizontal": lambda: box(1.15, 0.35),
        "bar-vertical": lambda: box(0.35, 1.15),
        "bars-horizontal": lambda: box(1.15, 0.25, au, np.abs(av - 0.62)),
        "bars-vertical": lambda: box(0.25, 1.15, np.abs(au - 0.62), av),
        "bar-diagonal": lambda: box(0.38, 1.35, np.abs(u - v) / np.sqrt(2), np.abs(u + v) / np.sqrt(2)),
        # landscape: ground (inside) below a horizon through v = 0; u = 0 is where its feature sits
        "flat": lambda: -v,
        "slope": lambda: (0.6 * u - v) / np.hypot(0.6, 1.0),
        "hill": lambda: np.minimum(-v, np.hypot(u, v) - 1.0),
        "valley": lambda: np.maximum(-v, 0.9 - np.hypot(u, v + 0.25)),
        "two-hills": lambda: np.minimum(-v, np.minimum(np.hypot(u - 0.9, v) - 0.6, np.hypot(u + 0.9, v) - 0.6)),
    }
    if member not in shapes:
        raise ValueError(f"unknown member {member!r}")
    return shapes[member]()


@dataclass(frozen=True)
class Nuisance:
    """The per-seed factors of a nested image (shared by all subjects of a seed)."""

    colour: str
    position_x: float
    position_y: float
    scale: float
    background_phase: float


def nested_nuisance(seed: int, size: int = 32) -> Nuisance:
    """Colour, position, scale and background phase of every nested image of ``seed``: drawn from the seed alone."""
    rng = np.random.default_rng([seed, size, 7])  # 7: a stream of its own, apart from the pixel noise
    colour = list(PALETTE)[rng.integers(len(PALETTE))]
    cx, cy = rng.uniform(*NESTED_CENTRE, size=2)
    return Nuisance(colour, float(cx), float(cy), float(rng.uniform(*NESTED_SCALE)), float(rng.uniform(0, 1)))


def nested_mask(member: str, nuisance: Nuisance, size: int) -> np.ndarray:
    """Object coverage in [0, 1] of a nested member placed and scaled by ``nuisance``: ``(size, size)``."""
    y, x = _pixel_grid(size)
    r = nuisance.scale
    if member in FAMILIES["landscape"]:  # the horizon sits a little below the centre point
        v0 = nuisance.position_y + 0.12
    else:
        v0 = nuisance.position_y
    u, v = (x - nuisance.position_x) / r, (y - v0) / r
    return _smooth(_member_distance(member, u, v) * r, size)


def render(subject: str, seed: int, size: int = 32, prompt_set: str = "v2", hierarchy: str = "factorial") -> np.ndarray:
    """One image of ``subject`` (a v2 subject label such as ``"lion"``), a pure function of its arguments."""
    return render_with_factors(subject, seed, size, prompt_set, hierarchy)[0]


def render_with_factors(
    subject: str, seed: int, size: int = 32, prompt_set: str = "v2", hierarchy: str = "factorial"
) -> tuple[np.ndarray, Nuisance, np.ndarray]:
    """``render``'s image, the nuisance factors it used, and the object's coverage mask ``(size, size)``."""
    table = traits(prompt_set, hierarchy)
    if subject not in table:
        raise ValueError(f"unknown subject {subject!r}; known: {list(table)}")
    if hierarchy == "nested":
        return _render_nested(table, subject, seed, size)
    return _render_factorial(table, subject, seed, size)


def _render_nested(table: dict[str, Traits], subject: str, seed: int, size: int):
    t = table[subject]
    n = nested_nuisance(seed, size)
    y, x = _pixel_grid(size)
    bg = _background(t.background, y, x, phase=n.background_phase)
    mask = nested_mask(t.member, n, size)
    rng = np.random.default_rng([seed, list(table).index(subject), size, 1])
    colour = np.clip(np.asarray(PALETTE[n.colour]) + rng.normal(0, COLOUR_JITTER, 3), 0, 1)
    img = bg[None] * (1 - mask[None]) + colour[:, None, None] * mask[None]
    img = img + rng.normal(0, PIXEL_NOISE, img.shape)
    return (np.clip(img, 0, 1) * 2 - 1).astype(np.float32), n, mask.astype(np.float32)


def _render_factorial(table: dict[str, Traits], subject: str, seed: int, size: int):
    if subject not in table:
        raise ValueError(f"unknown subject {subject!r}; known: {list(table)}")
    t = table[subject]
    rng = np.random.default_rng([seed, list(table).index(subject), size])
    y, x = _pixel_grid(size)
    phase = rng.uniform(0, 1)
    bg = _background(t.background, y, x, phase=phase)
    mask, (cx, cy, r) = _shape_mask_and_pose(t.shape, y, x, rng, size)
    colour = np.clip(np.asarray(COLOURS[t.colour]) + rng.normal(0, COLOUR_JITTER, 3), 0, 1)
    img = bg[None] * (1 - mask[None]) + colour[:, None, None] * mask[None]
    img = img + rng.normal(0, PIXEL_NOISE, img.shape)
    factors = Nuisance(t.colour, cx, cy, r, float(phase))
    return (np.clip(img, 0, 1) * 2 - 1).astype(np.float32), factors, mask.astype(np.float32)


@dataclass(frozen=True)
class ImageSet:
    """``images`` (N, 3, H, W) in [-1, 1], with one subject, category and seed per row, and its nuisance factors.

    ``colour`` is the object colour's name (in the factorial hierarchy the subject's own colour, before jitter),
    ``position_x``/``position_y`` the object's centre and ``scale`` its radius (fractions of the image side),
    ``background_phase`` the texture's phase in [0, 1); ``masks`` (N, H, W) the object's coverage in [0, 1].
    """

    images: np.ndarray
    subjects: np.ndarray
    categories: np.ndarray
    seeds: np.ndarray
    colour: np.ndarray | None = None
    position_x: np.ndarray | None = None
    position_y: np.ndarray | None = None
    scale: np.ndarray | None = None
    background_phase: np.ndarray | None = None
    masks: np.ndarray | None = None
    hierarchy: str = "factorial"


def make_image_set(
    seeds: range | list[int], size: int = 32, prompt_set: str = "v2", hierarchy: str = "factorial"
) -> ImageSet:
    """Every subject × every seed, subject-major (the prompt sets' sample order)."""
    table = traits(prompt_set, hierarchy)
    rows = [(t.subject, t.category, s) for t in table.values() for s in seeds]
    rendered = [render_with_factors(subj, s, size, prompt_set, hierarchy) for subj, _, s in rows]
    images = np.stack([img for img, _, _ in rendered])
    subjects, categories, seed_col = (np.asarray(col) for col in zip(*rows))
    factors = [f for _, f, _ in rendered]
    column = lambda name, dtype: np.asarray([getattr(f, name) for f in factors], dtype=dtype)  # noqa: E731
    return ImageSet(
        images, subjects, categories, seed_col.astype(np.int64),
        colour=column("colour", object).astype(str),
        position_x=column("position_x", np.float64),
        position_y=column("position_y", np.float64),
        scale=column("scale", np.float64),
        background_phase=column("background_phase", np.float64),
        masks=np.stack([m for _, _, m in rendered]),
        hierarchy=hierarchy,
    )
