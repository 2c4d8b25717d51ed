"""Figures of the book: sequences, ground-truth layers, model states (Fig. 1, Fig. 2), learning curves."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from .curves import Curve


def _img(ax: plt.Axes, image: np.ndarray | torch.Tensor, title: str = "", cmap: str = "gray",
         vmin: float | None = 0.0, vmax: float | None = 1.0) -> None:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


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


def motion_image(motion: torch.Tensor) -> np.ndarray:
    """Phase of a motion field, fft-shifted so the zero frequency is in the centre."""
    return torch.fft.fftshift(torch.angle(motion), dim=(-2, -1)).cpu().numpy()


def plot_states(frames: np.ndarray, states: dict[str, torch.Tensor], steps: Sequence[int],
                rows: Sequence[str] = ("frame", "pred", "fg", "bg", "alpha", "motion"),
                title: str = "") -> Figure:
    """State development (Fig. 2a/b): one column per frame index, one row per state.

    ``states`` come from ``model.run(..., keep_states=True).stacked()`` of a single
    sequence (entry k belongs to frame k + 1); ``frames`` is its T x H x W ground truth.
    """
    labels = {"frame": "input / truth", "pred": "prediction", "fg": "FG", "bg": "BG",
              "alpha": "A", "motion": "phase of T"}
    fig, axes = plt.subplots(len(rows), len(steps), figsize=(0.95 * len(steps) + 0.6, 1.0 * len(rows)),
                             squeeze=False)
    for j, t in enumerate(steps):
        k = t - 1
        for i, row in enumerate(rows):
            ax = axes[i, j]
            if row == "frame":
                _img(ax, frames[t], f"t={t}")
            elif row == "pred":
                _img(ax, states["frame"][k])
            elif row == "motion":
                _img(ax, motion_image(states["motion"][k]), cmap="twilight", vmin=-np.pi, vmax=np.pi)
            else:
                _img(ax, states[row][k])
            if j == 0:
                ax.set_ylabel(labels[row], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_predictions(frames: np.ndarray, predictions: dict[str, np.ndarray | torch.Tensor],
                     n_seed: int = 10, steps: Sequence[int] | None = None) -> Figure:
    """Fig. 2d: ground truth and each model's predictions of the same sequence."""
    steps = list(steps) if steps is not None else list(range(n_seed, len(frames), 2))
    names = ["ground truth", *predictions]
    fig, axes = plt.subplots(len(names), len(steps), figsize=(0.95 * len(steps) + 1.0, 1.0 * len(names)),
                             squeeze=False)
    for i, name in enumerate(names):
        for j, t in enumerate(steps):
            img = frames[t] if i == 0 else predictions[name][t - n_seed]
            _img(axes[i, j], img, f"t={t}" if i == 0 else "")
            if j == 0:
                axes[i, j].set_ylabel(textwrap.fill(name, 14), fontsize=7)
    fig.tight_layout()
    return fig


def plot_per_frame(results: dict[str, dict], metric: str = "mse", n_seed: int = 10) -> Figure:
    """Error of every model per predicted frame."""
    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    for name, res in results.items():
        values = res["per_frame"][metric]
        ax.plot(range(n_seed, n_seed + len(values)), values, marker="o", ms=3, label=name)
    ax.set_xlabel("predicted frame t")
    ax.set_ylabel(metric.upper())
    if metric in ("mse", "l1"):
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_learning_curves(curves: Mapping[str, "Curve"], projections: Mapping[str, Mapping[str, Any]] | None = None,
                         labels: Mapping[str, str] | None = None) -> Figure:
    """Validation MSE against training steps (left) and training wall seconds (right), log-log.

    ``curves``: :class:`motionseg.curves.Curve` per model. ``projections`` (optional, per model,
    from :func:`motionseg.curves.projection`): the fitted power law is drawn from the first
    point to where it reaches the target (dashed), the target as a dotted line, and the
    crossing as a star; on the right, the steps still to go are converted to seconds at the
    projection's ``seconds_per_step``. Seconds estimated from the steps (runs that did not
    record them) are drawn as open markers.
    """
    projections = projections or {}
    labels = labels or {}
    fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(7.6, 3.1), sharey=True)
    for i, (name, curve) in enumerate(curves.items()):
        color = f"C{i}"
        steps, mse, secs = (np.asarray(v, dtype=float) for v in (curve.steps, curve.val_mse, curve.seconds))
        k = min(curve.estimated_seconds, len(steps))
        ax_s.plot(steps, mse, "o-", color=color, ms=4, label=labels.get(name, name))
        ax_t.plot(secs, mse, "-", color=color)
        ax_t.plot(secs[:k], mse[:k], "o", color=color, ms=4, mfc="none")
        ax_t.plot(secs[k:], mse[k:], "o", color=color, ms=4)
        proj = projections.get(name)
        if proj is None or not np.isfinite(proj["step"]):
            continue
        end = max(proj["step"], steps[-1])
        xs = np.geomspace(steps[0], end, 60)
        ys = proj["a"] * xs ** (-proj["b"])
        ax_s.plot(xs, ys, "--", color=color, lw=1)
        # steps -> seconds: recorded within the curve, at the measured rate beyond it
        ts = np.where(xs <= steps[-1], np.interp(xs, steps, secs), secs[-1] + (xs - steps[-1]) * proj["seconds_per_step"])
        ax_t.plot(ts, ys, "--", color=color, lw=1)
        for ax, x in ((ax_s, proj["step"]), (ax_t, ts[-1])):
            ax.axhline(proj["target"], color=color, ls=":", lw=0.8)
            ax.plot([x], [proj["target"]], "*", color=color, ms=9)
    for ax, xlabel in ((ax_s, "training steps"), (ax_t, "training wall seconds")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
    ax_s.set_ylabel("validation MSE")
    ax_s.legend(fontsize=7)
    fig.tight_layout()
    return fig
