"""Figures of the 'Capturing activations' chapter: what the cache holds, at a glance."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from subspacelens.viz.style import color


def plot_activation_norms(norms: xr.DataArray, *, title: str | None = None) -> Figure:
    """Mean activation norm per block: one panel per CFG branch, one line per kept denoising step.

    ``norms``: dims ``(layer, step, branch)`` with coord ``timestep`` on ``step``
    (:func:`subspacelens.cache.activation_norms`).
    """
    branches = list(norms.branch.values)
    fig, axes = plt.subplots(1, len(branches), figsize=(4.2 * len(branches), 3.6), sharey=True, squeeze=False)
    shades = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, norms.sizes["step"]))
    for ax, branch in zip(axes[0], branches):
        for shade, step in zip(shades, norms.step.values):
            line = norms.sel(branch=branch, step=step)
            t = norms.timestep.sel(step=step).item() if "timestep" in norms.coords else step
            ax.plot(norms.layer.values, line.values, marker="o", ms=3, color=shade, label=f"step {step} (t={t:g})")
        ax.set_title(f"{branch} branch", color=color(branch) if branch in ("cond", "uncond") else None)
        ax.set_xlabel("block")
    axes[0][0].set_ylabel("mean ‖activation‖₂")
    axes[0][-1].legend(title="denoising step", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

