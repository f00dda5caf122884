"""Figures of the 'Training the organism' chapter (the image grids live in :mod:`subspacelens.viz.images`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from subspacelens.viz.style import (
    TEXT_WIDTH,
    color,
    figure_size,
    legend_below,
    legend_height,
    wrap_text,
)


def _smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average; DDPM losses are dominated by which timesteps a batch happened to draw."""
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def _objective(log: dict) -> str:
    prediction = log["train_config"].get("prediction", "epsilon")
    return {"epsilon": "ε", "v_prediction": "v"}.get(prediction, prediction)


def plot_training_curves(logs: dict | list[dict], *, window: int = 50) -> Figure:
    """VAE and transformer loss per step, from saved training logs.

    One log: the loss of every step and its moving average. Several (training seeds): one moving average per
    seed, coloured by seed.
    """
    logs = [logs] if isinstance(logs, dict) else list(logs)
    objective = _objective(logs[0])
    stages = [("VAE (reconstruction + KL)", "vae_losses", "vae"),
              (f"transformer (Min-SNR-weighted {objective}-MSE)", "losses", "transformer")]
    labels = ["per step", f"mean of {window}"] if len(logs) == 1 else [f"seed {log['seed']}" for log in logs]
    fig, axes = plt.subplots(1, 2, figsize=figure_size(2, extra_height=legend_height(labels)), constrained_layout=True)
    for ax, (title, key, stage) in zip(axes, stages):
        for k, log in enumerate(logs):
            y = np.asarray(log[key], dtype=float)
            if len(logs) == 1:
                ax.plot(np.arange(len(y)), y, color=color("random-init"), lw=0.6, label="per step")
            s = _smoothed(y, window)
            ax.plot(np.arange(len(s)) + len(y) - len(s), s, lw=1.5,
                    color=color("trained") if len(logs) == 1 else f"C{k}",
                    label=f"mean of {window}" if len(logs) == 1 else f"seed {log['seed']}")
        ax.set_yscale("log")
        ax.set_xlabel("optimisation step")
        seconds = [log.get("wall_seconds", {}).get(stage) for log in logs]
        took = ""
        if all(seconds):
            took = (f", {seconds[0] / 60:.1f} min" if len(logs) == 1
                    else f", {min(seconds) / 60:.1f}–{max(seconds) / 60:.1f} min")
        ax.set_title(wrap_text(title + took, 2))
    axes[0].set_ylabel("loss" if len(logs) == 1 else f"loss (mean of {window} steps)")
    legend_below(fig, *axes[1].get_legend_handles_labels())
    return fig


def plot_accuracy_against_steps(curve, *, floors: dict[str, float], chance: dict[str, float]) -> Figure:
    """Held-out sample accuracy against training steps (``evaluate.accuracy_against_steps`` rows, any seeds):
    one panel per level, one line per seed with its 95 % Wilson band, the floors dashed and chance dotted."""
    levels = ["subject", "category"]
    seeds = sorted(curve["seed"].unique())
    labels = [f"seed {seed}" for seed in seeds] + ["floor", "chance"]
    fig, axes = plt.subplots(1, 2, figsize=figure_size(2, extra_height=legend_height(labels)), constrained_layout=True,
                             sharey=True)
    for ax, level in zip(axes, levels):
        for k, seed in enumerate(seeds):
            rows = curve[(curve["seed"] == seed) & (curve["level"] == level)].sort_values("step")
            ax.plot(rows["step"], rows["rate"], marker="o", ms=3, color=f"C{k}", label=f"seed {seed}")
            ax.fill_between(rows["step"], rows["low"], rows["high"], color=f"C{k}", alpha=0.15, lw=0)
        ax.axhline(floors[level], color="k", ls="--", lw=0.8, label="floor")
        ax.axhline(chance[level], color="k", ls=":", lw=0.8, label="chance")
        ax.set(xlabel="optimisation step", ylim=(0, 1.02), title=f"{level} accuracy")
    axes[0].set_ylabel("share of samples (95 % Wilson)")
    legend_below(fig, *axes[0].get_legend_handles_labels())
    return fig


def plot_confusion(confusion, category_of: dict[str, str], *, title: str = "") -> Figure:
    """Row-normalised confusion matrix (prompted subject × annotated subject, both ordered by category) with the
    category blocks outlined: errors inside a block confuse siblings, errors outside it confuse categories."""
    rates = confusion.div(confusion.sum(axis=1).replace(0, np.nan), axis=0)
    size = TEXT_WIDTH - 0.8
    fig, ax = plt.subplots(figsize=(size + 0.8, size), constrained_layout=True)
    sns.heatmap(rates, vmin=0, vmax=1, cmap="mako_r", square=True, cbar_kws={"label": "share of samples", "shrink": 0.8},
                ax=ax)
    categories = [category_of[s] for s in confusion.index]
    for b in (i for i in range(1, len(categories)) if categories[i] != categories[i - 1]):
        ax.axhline(b, color="w", lw=1.5)
        ax.axvline(b, color="w", lw=1.5)
    ax.tick_params(labelsize=6)
    ax.set(xlabel="annotated subject", ylabel="prompted subject", title=title)
    return fig
