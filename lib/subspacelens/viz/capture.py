"""Figures of the 'Capturing activations' chapter: what the cache holds, at a glance."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from subspacelens.viz.style import (
    SUPTITLE_HEIGHT,
    color,
    legend_below,
    legend_height,
    panels,
    suptitle,
)


def plot_activation_norms(norms: xr.DataArray, *, title: str | None = None) -> Figure:
    """Mean activation norm per block: one panel per CFG branch, one line per kept denoising step.

    ``norms``: dims ``(layer, step, branch)`` with coord ``timestep`` on ``step``
    (:func:`subspacelens.cache.activation_norms`).
    """
    branches = list(norms.branch.values)
    entries = ["step 19 (t=999)"] * norms.sizes["step"]
    fig, axes = panels(len(branches), sharey=True,
                       extra_height=(SUPTITLE_HEIGHT if title else 0.0) + legend_height(entries) + 0.2)
    shades = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, norms.sizes["step"]))
    for ax, branch in zip(axes, branches):
        for shade, step in zip(shades, norms.step.values):
            line = norms.sel(branch=branch, step=step)
            t = norms.timestep.sel(step=step).item() if "timestep" in norms.coords else step
            ax.plot(norms.layer.values, line.values, marker="o", ms=3, color=shade, label=f"step {step} (t={t:g})")
        ax.set_title(f"{branch} branch", color=color(branch) if branch in ("cond", "uncond") else None)
        ax.set_xlabel("block")
    axes[0].set_ylabel("mean ‖activation‖₂")
    legend_below(fig, *axes[-1].get_legend_handles_labels(), title="denoising step")
    if title:
        suptitle(fig, title)
    return fig

