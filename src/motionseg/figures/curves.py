"""Curves: error per predicted frame, learning curves and their projections."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from ..curves import Curve


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


def plot_learning_curve(histories: dict[str, dict[str, list]], ax: plt.Axes | None = None,
                        selected: Mapping[str, int | None] | None = None) -> Figure:
    """Training loss per step (thin) and validation MSE (dots) of one or more runs (``{label: history}``).

    ``selected`` (per label, optional): the step whose weights the run kept, circled. A run's
    restarts from its best weights (``history["restarts"]``, ``TrainConfig.restart_factor``) are
    dotted vertical lines.
    """
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
    circled = restarted = False
    for i, (label, h) in enumerate(histories.items()):
        ax.plot(h["step"], h["loss"], lw=0.5, alpha=0.45, color=f"C{i}")
        for step in h.get("restarts", []):
            ax.axvline(step, ls=":", lw=1, color=f"C{i}", label=None if restarted else "restart from the best weights")
            restarted = True
        ax.plot(h["val_step"], h["val_mse"], "o-", ms=3, color=f"C{i}", label=f"{label} (validation)")
        step = (selected or {}).get(label)
        if step is not None and step in h["val_step"]:
            ax.plot([step], [h["val_mse"][h["val_step"].index(step)]], "o", ms=10, mfc="none", mew=1.2,
                    color=f"C{i}", label=None if circled else "weights kept")
            circled = True
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("MSE")
    ax.grid(alpha=0.3)
    # below the axes: inside, the legend of several runs hid the curves' top right
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig = fig or ax.figure
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


def plot_error_growth(per_frame: dict[str, Sequence[float]], n_seed: int = 10, trained: int = 10,
                      metric: str = "MSE") -> Figure:
    """Error per predicted frame for every model (``{label: values}``), up to the longest horizon.

    A dotted line marks the end of the horizon the models were trained and tested on (``trained``
    frames after the ``n_seed`` seed frames).
    """
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for i, (label, values) in enumerate(per_frame.items()):
        style = "--" if "oracle" in label or "copy" in label else "-"
        ax.plot(range(n_seed, n_seed + len(values)), values, style, marker="o", ms=2.5, lw=1.2,
                color=f"C{i % 10}", label=label)
    ax.axvline(n_seed + trained - 0.5, color="gray", ls=":", lw=1)
    ax.text(n_seed + trained - 0.3, ax.get_ylim()[1], " horizon of Table 1", va="top", fontsize=7, color="gray")
    ax.set_xlabel("predicted frame t")
    ax.set_ylabel(metric)
    if metric in ("MSE", "L1"):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig
