"""One figure per metric: every model's curve on relative depth (the architecture comparison page)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import xarray as xr

from .style import PALETTE, TEXT_WIDTH, figure_size, wrap_text

#: Marker per block kind (``block_kind`` coord of a cache): Flux's double- and single-stream blocks differ.
KIND_MARKERS = {"cross": "o", "joint": "s", "double": "D", "single": "^"}


def plot_depth_profiles(curves: Mapping[str, xr.Dataset], *, ylabel: str, title: str = ""):
    """``curves`` maps a model name to a profile over ``layer`` (``value``, optional ``low``/``high``, coord
    ``relative_depth``, optional ``block_kind``): one line per model against relative depth, a band for the
    interval, one marker per block kind. Known names (``trained``, ``random-init``) keep the book's colours."""
    # the whole column: one line per model, and the legend inside the panel
    fig, ax = plt.subplots(figsize=figure_size(width=TEXT_WIDTH, panel_aspect=0.55), constrained_layout=True)
    for name, prof in curves.items():
        x = prof["relative_depth"].values
        (line,) = ax.plot(x, prof["value"].values, lw=1.5, label=name, color=PALETTE.get(name))
        if "low" in prof:
            ax.fill_between(x, prof["low"].values, prof["high"].values, color=line.get_color(), alpha=0.2, lw=0)
        kinds = prof["block_kind"].values if "block_kind" in prof.coords else ["cross"] * len(x)
        for kind in dict.fromkeys(kinds):
            mask = kinds == kind if hasattr(kinds, "shape") else [k == kind for k in kinds]
            ax.plot(x[mask], prof["value"].values[mask], ls="none", marker=KIND_MARKERS.get(kind, "o"), ms=4,
                    color=line.get_color())
    ax.set_xlabel("relative depth (block / last block)")
    ax.set_ylabel(ylabel)
    ax.set_xlim(-0.02, 1.02)
    ax.legend(fontsize="small")
    ax.set_title(wrap_text(title, width=TEXT_WIDTH))
    return fig
