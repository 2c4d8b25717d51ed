"""Figures of chapter 08: the stress tests beyond Table 1."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import pandas as pd

from .common import _img


def path_crop(alpha: np.ndarray, first: int = 0, margin: int = 6, least: int = 48) -> tuple[slice, slice]:
    """A square window (at least ``least`` px) around everything that ``alpha`` (T x H x W) covers from
    frame ``first`` on, with ``margin`` px around it, inside the frame."""
    covered = alpha[first:].max(0) > 0.05
    h, w = covered.shape
    if not covered.any():
        return slice(0, h), slice(0, w)
    ys, xs = np.nonzero(covered)
    extent = int(max(ys.max() - ys.min(), xs.max() - xs.min())) + 1 + 2 * margin
    side = min(max(extent, least), h, w)
    out = []
    for lo, hi, n in ((ys.min(), ys.max(), h), (xs.min(), xs.max(), w)):
        start = int(np.clip((lo + hi + 1) // 2 - side // 2, 0, n - side))
        out.append(slice(start, start + side))
    return out[0], out[1]


def plot_cases(cases: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], steps: Sequence[int],
               n_seed: int = 10, crops: dict[str, tuple[slice, slice]] | None = None) -> Figure:
    """Cases side by side (e.g. a typical one and a failure): per case the true frames at ``steps``
    (top row) and each model's prediction below (``{title: (frames T x H x W, {label: n_future x H x W})}``).

    Seed frames among ``steps`` are shown for the truth only. ``crops``: per case the window shown
    (e.g. :func:`path_crop`), default the whole frame.
    """
    labels = list(next(iter(cases.values()))[1])
    n_rows, n_cols = 1 + len(labels), len(steps)
    fig, axes = plt.subplots(n_rows, len(cases) * n_cols, squeeze=False,
                             figsize=(0.78 * len(cases) * n_cols + 1.0, 0.82 * n_rows + 0.4))
    for c, (title, (frames, preds)) in enumerate(cases.items()):
        window = (crops or {}).get(title, (slice(None), slice(None)))
        for j, t in enumerate(steps):
            col = c * n_cols + j
            _img(axes[0, col], frames[t][window], f"t={t}")
            for i, label in enumerate(labels, start=1):
                ax = axes[i, col]
                if t < n_seed:  # nothing predicted yet: an empty panel (it keeps the row's label)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    for side in ax.spines.values():
                        side.set_visible(False)
                else:
                    _img(ax, preds[label][t - n_seed][window])
                if col == 0:
                    ax.set_ylabel(textwrap.fill(label, 16, break_long_words=False), fontsize=6.5)
        axes[0, c * n_cols].set_ylabel("truth", fontsize=6.5)
        axes[0, c * n_cols + n_cols // 2].set_title(f"{title}\nt={steps[n_cols // 2]}", fontsize=8)
    fig.tight_layout(w_pad=0.1, h_pad=0.2)
    return fig


def plot_stress_heatmap(frame: "pd.DataFrame", reference: str = "copy_last", title: str = "") -> Figure:
    """Each model's error (rows) on each set (columns) divided by the ``reference`` row's, on a log scale.

    Below 1: better than the reference (copying the last seed frame); each cell is annotated.
    """
    ratio = frame.drop(index=[reference]).div(frame.loc[reference], axis=1)
    values = np.log10(ratio.to_numpy(dtype=float))
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * ratio.shape[1], 0.9 + 0.34 * ratio.shape[0]))
    image = ax.imshow(values, cmap="RdYlGn_r", vmin=-2.5, vmax=2.5, aspect="auto")
    for (i, j), v in np.ndenumerate(ratio.to_numpy(dtype=float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6.5)
    ax.set_xticks(range(ratio.shape[1]), ratio.columns, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(ratio.shape[0]), ratio.index, fontsize=7)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label(f"log10(error / {reference})", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_velocity_trace(truth: np.ndarray, estimates: dict[str, np.ndarray], n_seed: int = 10,
                        restarts: dict[str, int] | None = None) -> Figure:
    """True and estimated velocity (dy left, dx right) per frame of one sequence.

    ``truth`` is T x 2 (row t: the displacement from frame t to t + 1); each estimate is
    steps x 2 with entry k belonging to frame k + 1 (the motion used to predict it from frame k).
    ``restarts`` marks frames where a model restarted its motion measurement.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), sharey=True)
    frames = np.arange(1, len(truth))
    for a, (ax, name) in enumerate(zip(axes, ("$d_y$", "$d_x$"))):
        ax.step(frames, truth[:-1, a], where="mid", color="k", lw=1.5, label="truth")
        for i, (label, est) in enumerate(estimates.items()):
            ax.plot(np.arange(1, len(est) + 1), est[:, a], "o-", ms=3, lw=1, color=f"C{i}", label=label)
            if restarts and restarts.get(label):
                ax.axvline(restarts[label], color=f"C{i}", ls="--", lw=0.8)
        ax.axvline(n_seed - 0.5, color="gray", ls=":", lw=0.8)
        ax.set_xlabel("frame (dotted: end of the seed)")
        ax.set_title(f"{name} (px/frame)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_correlation_peaks(surface: np.ndarray | torch.Tensor, displacements: dict[str, Sequence[float]],
                           radius: int = 24, title: str = "") -> Figure:
    """A phase-correlation surface (H x W, zero shift at [0, 0]) around zero shift, with the true
    displacements marked (``{label: (dy, dx)}``)."""
    if isinstance(surface, torch.Tensor):
        surface = surface.detach().cpu().numpy()
    h, w = surface.shape
    shifted = np.fft.fftshift(surface)
    crop = shifted[h // 2 - radius:h // 2 + radius + 1, w // 2 - radius:w // 2 + radius + 1]
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    lim = float(np.abs(crop).max()) or 1.0
    image = ax.imshow(crop, cmap="RdBu_r", vmin=-lim, vmax=lim,
                      extent=(-radius - 0.5, radius + 0.5, radius + 0.5, -radius - 0.5))
    for i, (label, (dy, dx)) in enumerate(displacements.items()):
        ax.plot(dx, dy, "o", mfc="none", mec=f"C{i + 2}", ms=12, mew=1.5, label=label)
    ax.set(xlabel="$d_x$ (px)", ylabel="$d_y$ (px)")
    ax.legend(fontsize=7, loc="lower left")
    fig.colorbar(image, ax=ax, shrink=0.8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
