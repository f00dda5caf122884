r"""What structureless data score: isotropic and covariance-matched Gaussians, heavy tails, sparse codes."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special

from .. import metrics, synthetic
from ._slices import _per_slice


def gaussian_hoyer(d):
    r"""Expected Hoyer sparsity of an isotropic Gaussian vector in d dimensions (exact).

    For :math:`z\sim\mathcal N(0, I_d)`, :math:`z/\|z\|_2` is independent of :math:`\|z\|_2`, so
    :math:`E[\|z\|_1/\|z\|_2] = E\|z\|_1 / E\|z\|_2 = d\sqrt{2/\pi}\,\big/\,\big(\sqrt2\,\Gamma(\tfrac{d+1}2)/\Gamma(\tfrac d2)\big)`.
    Tends to :math:`1 - \sqrt{2/\pi} \approx 0.202` as d grows.
    """
    d = int(d)
    if d < 2:
        raise ValueError(f"d: expected an integer >= 2, got {d!r}")
    mean_l2 = np.sqrt(2.0) * np.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    ratio = d * np.sqrt(2.0 / np.pi) / mean_l2
    return float((np.sqrt(d) - ratio) / (np.sqrt(d) - 1.0))


def hoyer_references(d, n_samples, *, active_fraction=0.05, overcomplete=8, seed=0):
    """Hoyer sparsity of reference codes of the same (d, N), via :func:`~subspacelens.metrics.hoyer_sparsity`.

    ``gaussian``: isotropic Gaussian columns (``gaussian_exact``: its closed form, :func:`gaussian_hoyer`);
    ``sparse_neurons``: ``active_fraction``·d active units per column in the neuron basis (the SAE picture
    if the dictionary were the basis); ``sparse_dictionary``: ``active_fraction`` of a random dictionary of
    ``overcomplete``·d unit atoms active, read in the neuron basis — a truly sparse code that Hoyer, a
    basis-dependent measure, does not see; ``one_hot``: one active unit per column (the maximum, 1).
    Codes come from :func:`subspacelens.synthetic.sparse_codes`.
    """
    k_neurons = max(1, int(round(active_fraction * d)))
    k_atoms = max(1, int(round(active_fraction * overcomplete * d)))
    values = {
        "gaussian": metrics.hoyer_sparsity(synthetic.isotropic_gaussian(d, n_samples, seed=seed)),
        "gaussian_exact": gaussian_hoyer(d),
        "sparse_neurons": metrics.hoyer_sparsity(synthetic.sparse_codes(d, n_samples, k_neurons, seed=seed).Z),
        "sparse_dictionary": metrics.hoyer_sparsity(
            synthetic.sparse_codes(d, n_samples, k_atoms, n_atoms=overcomplete * d, seed=seed).Z
        ),
        "one_hot": metrics.hoyer_sparsity(synthetic.sparse_codes(d, n_samples, 1, seed=seed).Z),
    }
    return xr.DataArray(
        [float(v) for v in values.values()],
        dims="reference",
        coords={"reference": list(values)},
        name="hoyer",
        attrs={"d": int(d), "n_samples": int(n_samples), "active_fraction": float(active_fraction),
               "active_neurons": k_neurons, "active_atoms": k_atoms, "overcomplete": int(overcomplete)},
    )


def isotropy_references(Z, *, n_projections=256, alpha=0.01, seed=0, heavy_tailed=True):
    """Isotropy-test scores of ``Z`` (…, d, N) next to reference data of the same shape: dims (reference, …).

    ``observed``: ``Z`` itself; ``isotropic_gaussian``: N(0, I_d), the null that
    :func:`~subspacelens.metrics.isotropy_test` draws alongside; ``matched_gaussian``: a Gaussian with each
    slice's own mean and covariance — as anisotropic and low-rank as the data, yet every projection of it is
    Gaussian; ``student_t`` (if ``heavy_tailed``): i.i.d. Student-t (3 d.o.f.) coordinates — non-Gaussian
    without any subspace structure. Data vars ``rejection_rate`` (Jarque–Bera at ``alpha``) and ``sigreg``
    (mean Epps–Pulley). The same projection directions (``seed``) serve every reference.
    """
    Z = np.asarray(Z, dtype=np.float64)
    d, n_samples = Z.shape[-2:]
    batch = Z.shape[:-2]
    rng = np.random.default_rng(seed)
    # A Gaussian with the slice's sample covariance: the centred columns mixed with Gaussian weights.
    mean = Z.mean(axis=-1, keepdims=True)
    weights = rng.standard_normal((n_samples, n_samples)) / np.sqrt(n_samples - 1)
    matched = mean + (Z - mean) @ weights

    def test(sample):
        return metrics.isotropy_test(sample, n_projections=n_projections, alpha=alpha, seed=seed)

    observed, matched_res = test(Z), test(matched)
    table = {
        "observed": (observed.rejection_rate, observed.sigreg),
        "isotropic_gaussian": (observed.null_rejection_rate, observed.sigreg_null),
        "matched_gaussian": (matched_res.rejection_rate, matched_res.sigreg),
    }
    if heavy_tailed:
        heavy = test(rng.standard_t(3, size=(d, n_samples)))
        table["student_t"] = (heavy.rejection_rate, heavy.sigreg)
    dims = ("reference",) + tuple(f"dim_{i}" for i in range(len(batch)))

    def stacked(position):
        return np.stack([np.broadcast_to(np.asarray(v[position], float), batch) for v in table.values()])

    return xr.Dataset(
        {"rejection_rate": (dims, stacked(0)), "sigreg": (dims, stacked(1))},
        coords={"reference": list(table)},
        attrs={"d": int(d), "n_samples": int(n_samples), "n_projections": int(n_projections), "alpha": float(alpha)},
    )


def isotropy_profile(ds, *, n_projections=256, alpha=0.01, seed=0, steps=None, branches=None):
    """:func:`isotropy_references` for every (layer, step, branch) of a cache: dims (reference, layer, step, branch).

    The Student-t reference does not depend on the data; it is computed once and broadcast.
    """
    first = {}

    def fn(Z):
        refs = isotropy_references(Z, n_projections=n_projections, alpha=alpha, seed=seed,
                                   heavy_tailed=not first)
        if not first:
            first.update({k: refs[k].sel(reference="student_t").values for k in ("rejection_rate", "sigreg")})
            refs = refs.drop_sel(reference="student_t")
        out = {}
        for var in ("rejection_rate", "sigreg"):
            values = np.concatenate([refs[var].values, first[var][None]], axis=0)  # (reference, layer)
            out[var] = values.T  # (layer, reference)
        return out

    result = _per_slice(ds, fn, steps, branches, extra_dims=("reference",))
    names = ["observed", "isotropic_gaussian", "matched_gaussian", "student_t"]
    return result.assign_coords(reference=names).transpose("reference", ...).assign_attrs(
        n_projections=int(n_projections), alpha=float(alpha), seed=int(seed))
