r"""A memoised session over the caches of one run: the one place a chapter and the scorecard get a number.

A chapter that prints "ΔR grows ×1.8" and the scorecard row that judges it both call the same
:class:`Session` method with the same arguments, so the two pages cannot disagree; every method says in
its arguments which step, branch, scale and averaging it uses.

Cache roles: ``"main"`` (the default capture), ``"sweep"`` (a list of caches at several CFG scales),
``"twin"`` (the random-initialised twin, teacher-forced on the trained model's inputs), ``"seeds"`` (a list
of main caches of organisms trained from other seeds), ``"interventions"`` (the store the chapter "Steering
through subspaces" writes).

**One computation per run, across pages.** Every chapter opens its own session, and the scorecard page opens
one over the same caches; with a ``store`` (a folder; ``make`` sets ``SUBSPACELENS_SESSION_STORE`` to
``build/session-memo`` for every chapter it executes) a session also keeps each profile and null on disk,
so the scorecard reads the very results the chapters computed instead of recomputing them. A stored result
is found again only under the same key, the same session settings (resamples, shuffles, seed, level,
correction), the same cache files (names, sizes, modification times) and the same library sources, so a
recapture or a code change recomputes it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .. import analysis

STORE_VARIABLE = "SUBSPACELENS_SESSION_STORE"
"""Environment variable naming the folder of stored session results (unset: memory only)."""


@functools.cache
def _library_digest():
    """SHA-256 over the library's sources: a stored result computed by other code is never reused."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _cache_fingerprint(cache):
    """Names, sizes and modification times of every file of a cache store (a list role: of each store);
    None for an in-memory Dataset, whose results are then kept in memory only."""
    from ..paths import resolve

    if isinstance(cache, xr.Dataset):
        return None
    if isinstance(cache, Sequence) and not isinstance(cache, (str, Path)):
        parts = [_cache_fingerprint(c) for c in cache]
        return None if None in parts else "|".join(parts)
    root = resolve(cache)
    entries = sorted((str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns)
                     for f in root.rglob("*") if f.is_file())
    return f"{root}:" + hashlib.sha256(repr(entries).encode()).hexdigest()


class MissingCache(KeyError):
    """A measure needs a cache role (or a part of a cache) that was not given."""


def _is_empty_list(cache):
    return isinstance(cache, Sequence) and not isinstance(cache, (str, Path)) and len(cache) == 0


def _key(kwargs):
    return tuple(sorted((k, str(v)) for k, v in kwargs.items()))


def _cache_name(cache):
    """A cache as an error message names it: its path, or "a Dataset" for one opened in memory."""
    return cache if isinstance(cache, (str, Path)) else "a Dataset"


class Session:
    """The caches of one run, opened once, and a memo of every profile and null computed from them.

    ``n_boot`` resamples (cluster bootstrap over the noise seeds) give every interval; ``n_permutations``
    shuffles every null; p-values are corrected with ``p_adjust`` over the slices of a profile.
    """

    def __init__(self, caches, *, n_boot=200, seed=0, n_permutations=1000, level=0.95, p_adjust="bh", store=None):
        if not isinstance(caches, Mapping):
            raise ValueError("caches: expected a mapping of role -> path/Dataset, e.g. {'main': path}")
        self.caches = {role: c for role, c in caches.items() if c is not None and not _is_empty_list(c)}
        self.n_boot, self.seed, self.n_permutations = n_boot, seed, n_permutations
        self.level, self.p_adjust = level, p_adjust
        from ..paths import resolve

        self.store = None if store is None else resolve(store)
        self._datasets, self._memo, self._fingerprints = {}, {}, {}
        self.skipped = []

    @classmethod
    def from_paths(cls, main, *, sweep=(), twin=None, seeds=(), interventions=None, **kwargs):
        """A session over cache paths; optional roles whose stores do not exist are left out (see ``skipped``).

        ``sweep`` is used only when every one of its caches exists (the shape comparison needs them all).
        ``store`` defaults to the folder named by ``SUBSPACELENS_SESSION_STORE`` (unset: memory only).
        """
        kwargs.setdefault("store", os.environ.get(STORE_VARIABLE) or None)
        from ..paths import resolve

        def exists(path):
            return path is not None and resolve(path).exists()

        caches = {"main": main}
        skipped = []
        if sweep:
            if all(exists(p) for p in sweep):
                caches["sweep"] = list(sweep)
            else:
                skipped.append("sweep")
        for role, path in (("twin", twin), ("interventions", interventions)):
            if path is not None:
                caches[role] = path if exists(path) else None
                skipped += [] if exists(path) else [role]
        present = [p for p in seeds if exists(p)]
        if present:
            caches["seeds"] = present
        skipped += [f"seeds ({len(seeds) - len(present)} missing)"] if len(present) < len(seeds) else []
        session = cls(caches, **kwargs)
        session.skipped = skipped
        return session

    # ------------------------------------------------------------------------------------------- caches
    def has(self, role):
        return role in self.caches

    def ds(self, role, index=None):
        """The opened Dataset of a role (``index`` picks one cache of a list role such as ``sweep``)."""
        if role not in self.caches:
            raise MissingCache(role)
        key = (role, index)
        if key not in self._datasets:
            cache = self.caches[role]
            if index is not None:
                cache = cache[index]
            self._datasets[key] = analysis.open_dataset(cache)
            if role == "twin":
                self._check_paired(self._datasets[key], cache)
        return self._datasets[key]

    def _check_paired(self, twin, path):
        """A twin's statistics are paired with the main cache's sample by sample (the same prompts and seeds,
        teacher-forced): a twin captured with another protocol is refused rather than compared."""
        main = self.ds("main")
        same = twin.sizes.get("sample") == main.sizes.get("sample") and all(
            np.array_equal(twin[name].values, main[name].values)
            for name in ("subject", "seed") if name in twin.coords and name in main.coords)
        if not same:
            raise ValueError(f"twin: {_cache_name(path)} holds {twin.sizes.get('sample')} samples that are not the "
                             f"main cache's {main.sizes.get('sample')} ({_cache_name(self.caches['main'])}); capture "
                             "the twin with the main capture's prompts and seeds")

    def n_caches(self, role):
        cache = self.caches[role]
        return 1 if isinstance(cache, (str, Path)) or not isinstance(cache, Sequence) else len(cache)

    def memo(self, key, compute, role=None):
        """``compute()`` once per ``key``: every derived computation of the session goes through here.

        With a ``store`` and the cache ``role`` the result is read from cache files, it is also kept on disk
        (written to a temporary file, then renamed, so concurrent chapters never read half a result).
        """
        if key not in self._memo:
            path = self._stored_path(key, role)
            if path is not None and path.is_file():
                with path.open("rb") as file:
                    self._memo[key] = pickle.load(file)
            else:
                self._memo[key] = compute()
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    partial = path.with_suffix(f".{os.getpid()}.tmp")
                    with partial.open("wb") as file:
                        pickle.dump(self._memo[key], file, protocol=pickle.HIGHEST_PROTOCOL)
                    os.replace(partial, path)
        return self._memo[key]

    def _stored_path(self, key, role):
        if self.store is None or role is None or role not in self.caches:
            return None
        if role not in self._fingerprints:
            self._fingerprints[role] = _cache_fingerprint(self.caches[role])
        if self._fingerprints[role] is None:
            return None
        settings = (self.n_boot, self.seed, self.n_permutations, self.level, self.p_adjust)
        name = hashlib.sha256(repr((key, settings, self._fingerprints[role], _library_digest())).encode())
        return self.store / f"{name.hexdigest()}.pkl"

    # ----------------------------------------------------------------------------------------- profiles
    def _group(self, metric, scheme):
        return list(analysis.RATE_METRICS) if metric in analysis.RATE_METRICS and scheme else [metric]

    def profile(self, role, metric, scheme=None, *, index=None, branch="cond", **kwargs):
        """The profile of one branch over all blocks and steps (no bootstrap); rate metrics share one pass."""
        group = self._group(metric, scheme)
        key = ("profile", role, index, tuple(group), scheme, branch, _key(kwargs))
        found = self.memo(key, lambda: analysis.profiles(self.ds(role, index), group, scheme, branches=[branch],
                                                         **kwargs), role=role)
        return found[metric]

    def curve(self, role, metric, scheme=None, branch="cond", *, index=None, **kwargs):
        """A profile of one branch averaged over the cache's steps: a DataArray over ``layer``."""
        return self.profile(role, metric, scheme, index=index, branch=branch, **kwargs)["value"].sel(
            branch=branch).mean("step")

    def replicates(self, role, metric, scheme=None, branch="cond", **kwargs):
        """Step-averaged bootstrap replicates at every block, ``(layer, n_boot)`` (None when ``n_boot`` is 0).

        The same resamples (``seed``) serve every block, branch, scale and role with the same samples, so
        replicates are paired across blocks — and between a model and its twin, which share their prompts
        and seeds.
        """
        if not self.n_boot:
            return None
        group = self._group(metric, scheme)
        key = ("replicates", role, tuple(group), scheme, branch, _key(kwargs))
        computed = self.memo(key, lambda: analysis.profiles(
            self.ds(role), group, scheme, branches=[branch], n_boot=self.n_boot, seed=self.seed, level=self.level,
            keep_samples=True, **kwargs), role=role)
        return computed[metric]["samples"].sel(branch=branch).mean("step").transpose("layer", "boot").values

    def statistic(self, role, function, metric, scheme=None, branch="cond", **kwargs):
        """``(estimate, low, high)`` of ``function(curve over blocks)`` with its paired-bootstrap interval."""
        curve = self.curve(role, metric, scheme, branch, **kwargs).values
        estimate = float(function(curve))
        samples = self.replicates(role, metric, scheme, branch, **kwargs)
        if samples is None:
            return estimate, None, None
        values = np.array([function(samples[:, b]) for b in range(samples.shape[1])], dtype=np.float64)
        low, high = np.nanpercentile(values, [50 * (1 - self.level), 100 - 50 * (1 - self.level)])
        return estimate, float(low), float(high)

    def landmark(self, role, metric, scheme=None, branch="cond", kind="min", **kwargs):
        """Where a step-averaged curve peaks: ``{"estimate", "low", "high", "flat"}`` (flat: no landmark)."""
        from ..stats import argextremum_interval

        curve = self.curve(role, metric, scheme, branch, **kwargs)
        samples = self.replicates(role, metric, scheme, branch, **kwargs)
        layers = curve["layer"].values
        if samples is None:
            pick = np.argmin if kind == "min" else np.argmax
            return {"estimate": int(layers[pick(curve.values)]), "low": np.nan, "high": np.nan, "flat": False}
        return argextremum_interval(curve.values, samples, kind=kind, level=self.level, positions=layers)

    def transition(self, role="main"):
        """The transition block: argmin over blocks of the step-averaged mean coarse overlap (cond branch)."""
        return int(self.curve(role, "mean_overlap", "coarse")["layer"].values[
            int(self.curve(role, "mean_overlap", "coarse").argmin("layer"))])

    # -------------------------------------------------------------------------------------------- nulls
    def permutation(self, role, scheme, branch="cond", **kwargs):
        """The permutation profile of ΔR (``analysis.permutation_profile``) with the session's shuffles."""
        key = ("permutation", role, scheme, branch, _key(kwargs))
        return self.memo(key, lambda: analysis.permutation_profile(
            self.ds(role), scheme, n_permutations=self.n_permutations, seed=self.seed, branches=[branch],
            correction=self.p_adjust, **kwargs), role=role)

    def overlap_null(self, role, scheme, branch="cond", n_permutations=None, **kwargs):
        """The label-shuffle null of the mean overlap (``analysis.overlap_null_profile``); ``n_permutations``
        defaults to the session's, like every null whose p-values a page prints."""
        n_permutations = self.n_permutations if n_permutations is None else n_permutations
        key = ("overlap_null", role, scheme, branch, n_permutations, _key(kwargs))
        return self.memo(key, lambda: analysis.overlap_null_profile(
            self.ds(role), scheme, n_permutations=n_permutations, seed=self.seed, branches=[branch],
            correction=self.p_adjust, **kwargs), role=role)

    def norms(self, role, branch="cond", center=False):
        """RMS column norm of every block (step-averaged): the scale a raw ΔR profile carries in it."""
        from ..metrics.transforms import rms_column_norm

        def compute():
            ds = self.ds(role)
            values = []
            for step in ds["step"].values:
                Z = analysis.slice_matrix(ds, step, branch)
                Z = Z - Z.mean(axis=-1, keepdims=True) if center else Z
                values.append(rms_column_norm(Z)[..., 0, 0])
            return np.mean(values, axis=0)

        return self.memo(("norms", role, branch, center), compute, role=role)
