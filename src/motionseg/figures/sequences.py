"""Figures of the data (chapter 03 and the front page): frames, ground-truth layers, velocities."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import _img


def plot_sequence(frames: np.ndarray, steps: Sequence[int] | None = None, title: str = "") -> Figure:
    """One row of frames of a 20-frame sequence (T x H x W)."""
    steps = list(steps) if steps is not None else list(range(0, len(frames), 2))
    fig, axes = plt.subplots(1, len(steps), figsize=(1.0 * len(steps), 1.3), squeeze=False)
    for ax, t in zip(axes[0], steps):
        _img(ax, frames[t], f"t={t}")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_layers(seq: dict[str, np.ndarray], t: int = 0) -> Figure:
    """Frame t with its ground-truth layers: foreground, alpha, background."""
    fig, axes = plt.subplots(1, 4, figsize=(6.4, 1.9))
    _img(axes[0], seq["frames"][t], f"frame t={t}")
    _img(axes[1], seq["fg"][t], "foreground FG")
    _img(axes[2], seq["alpha"][t], "alpha A")
    _img(axes[3], seq["bg"][t], "background BG")
    fig.tight_layout()
    return fig


def plot_first_frames(frames: np.ndarray, velocities: np.ndarray) -> Figure:
    """The first frame of several sequences (N x T x H x W), titled with their velocity (dy, dx)."""
    n = len(frames)
    fig, axes = plt.subplots(1, n, figsize=(1.35 * n, 1.7), squeeze=False)
    for ax, seq, v in zip(axes[0], frames, velocities):
        _img(ax, seq[0], "v = (" + ", ".join(f"{float(x):g}" for x in v) + ")")
    fig.tight_layout()
    return fig


def plot_velocity_distribution(velocities: np.ndarray, max_speed: float = 2.0) -> Figure:
    """Counts of each velocity component (N x 2, (dy, dx), multiples of 0.5 px/frame) and the speeds."""
    values = np.arange(-max_speed, max_speed + 0.01, 0.5)
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.4))
    axes[0].bar(values - 0.1, [(velocities[:, 0] == v).sum() for v in values], width=0.2, label="dy")
    axes[0].bar(values + 0.1, [(velocities[:, 1] == v).sum() for v in values], width=0.2, label="dx")
    axes[0].set(xlabel="velocity component (px/frame)", ylabel="sequences")
    axes[0].legend(fontsize=7)
    axes[1].hist(np.linalg.norm(velocities, axis=1), bins=20)
    axes[1].set(xlabel="speed |v| (px/frame)", ylabel="sequences")
    fig.tight_layout()
    return fig


def plot_alpha_profile(alpha: np.ndarray, row: int, cols: np.ndarray, steps: Sequence[int] = range(4)) -> Figure:
    """One row of the alpha mask (T x H x W) over columns ``cols`` at a few frames, as steps."""
    fig, ax = plt.subplots(figsize=(6, 2.2))
    for t in steps:
        ax.step(cols, alpha[t][row, cols], where="mid", label=f"t={t}")
    ax.set(xlabel="column (px)", ylabel="alpha")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
