"""Figures of the filter models' states and predictions (Fig. 1, Fig. 2a-d of the paper)."""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .common import _img, motion_image


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
                axes[i, j].set_ylabel(textwrap.fill(name, 14, break_long_words=False), fontsize=7)
    fig.tight_layout()
    return fig


def plot_cycle_diagram() -> Figure:
    """Fig. 1 of the paper redrawn: the prediction-correction cycle of the zero-parameter model.

    The state (FG, BG, A, T) is predicted forward by phase-adding T to the spectra of FG and A,
    composed by eq. 3, compared with the observed frame, and the error updates every part.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(8.6, 4.4))
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.2, 6.4)
    ax.axis("off")
    colours = {"state": "#dbe9f6", "op": "#fdebd3", "obs": "#e3f1df", "err": "#f8d9d9"}
    boxes: dict[str, tuple[float, float, float, float]] = {}

    def box(key: str, x: float, y: float, text: str, kind: str, w: float = 1.5, h: float = 0.75) -> None:
        boxes[key] = (x, y, w, h)
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                    fc=colours[kind], ec="0.3", lw=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    def arrow(a: str, b: str, label: str = "", bend: float = 0.0, side: str = "top") -> None:
        (xa, ya, wa, ha), (xb, yb, wb, hb) = boxes[a], boxes[b]
        dx, dy = xb - xa, yb - ya
        # leave and enter through the box edges facing each other
        sa = (np.sign(dx) * wa / 2, 0.0) if abs(dx) * ha > abs(dy) * wa else (0.0, np.sign(dy) * ha / 2)
        sb = (-np.sign(dx) * wb / 2, 0.0) if abs(dx) * hb > abs(dy) * wb else (0.0, -np.sign(dy) * hb / 2)
        start, end = (xa + sa[0], ya + sa[1]), (xb + sb[0], yb + sb[1])
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, lw=0.9, color="0.25",
                                     connectionstyle=f"arc3,rad={bend}"))
        if label:
            mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            ax.text(mx, my + (0.3 if side == "top" else -0.3), label, ha="center", fontsize=7, color="0.25")

    # the state at t-1 (blue), what the cycle computes (orange), the observation (green), the error (red)
    box("FG", 1.0, 5.0, "FG$_{t-1}$", "state")
    box("A", 1.0, 3.8, "A$_{t-1}$", "state")
    box("T", 3.4, 2.1, "T$_{t-1}$", "state")
    box("BG", 6.1, 2.6, "BG$_{t-1}$", "state")
    box("fft", 3.4, 4.4, "phase adding:\nFFT(FG) $\\cdot$ T, FFT(A) $\\cdot$ T,\nthen FFT$^{-1}$", "op", w=2.3, h=1.6)
    box("eq3", 6.1, 4.4, "eq. 3\n$\\hat A\\,\\widehat{FG} + (1-\\hat A)\\,\\widehat{BG}$", "op", w=2.2, h=0.95)
    box("Fhat", 8.3, 4.4, "$\\hat F_t$", "op", w=0.9)
    box("F", 10.4, 5.8, "observed $F_t$", "obs", w=1.7)
    box("err", 10.4, 4.4, "error\n$\\hat F_t - F_t$", "err", w=1.5, h=0.85)
    box("upd", 10.4, 2.5, "gradient steps\non FG, BG, A\n(per-step gains)", "err", w=1.9, h=1.05)
    box("dog", 10.4, 0.8, "DoG on A", "op", w=1.5)
    box("tilde", 7.6, 0.8, "$\\tilde T_t$: phase differences\nof A$_t$, A$_{t-1}$ and FG$_t$, FG$_{t-1}$", "op",
        w=2.8, h=0.85)
    box("pf", 4.4, 0.8, "T$_t$: average of T$_{t-1}$\nand $\\tilde T_t$, phase filter", "op", w=2.5, h=0.85)
    arrow("FG", "fft")
    arrow("A", "fft")
    arrow("T", "fft")
    arrow("fft", "eq3")
    arrow("BG", "eq3")
    arrow("eq3", "Fhat")
    arrow("Fhat", "err")
    arrow("F", "err")
    arrow("err", "upd")
    arrow("upd", "dog")
    arrow("dog", "tilde")
    arrow("tilde", "pf")
    arrow("pf", "T")
    ax.text(6.0, -0.1, "FG$_t$, BG$_t$, A$_t$ (corrected) and T$_t$ are the next step's state; "
            "after the seed frames only the prediction runs", ha="center", fontsize=7.5, color="0.3")
    fig.tight_layout()
    return fig


def plot_cycle_step(model: torch.nn.Module, frames: torch.Tensor, t: int = 9) -> Figure:
    """One step of the cycle on a real sequence (1 x S x H x W seed frames), at observed frame ``t``.

    The state moved by T (prediction), the composed frame, the observation, the error that
    drives the correction, and the corrected mask.
    """
    with torch.no_grad():
        _, states = model.run(frames, 1, keep_states=True)
    st = {k: v[0] for k, v in states.stacked().items()}
    k = t - 1  # state entry k belongs to frame k + 1
    moved_fg, moved_a = model.predict_layers(st["fg"][k - 1], st["alpha"][k - 1], st["motion"][k - 1])
    panels = [(moved_fg, "FG moved by T", "gray"), (moved_a, "A moved by T", "gray"), (st["bg"][k - 1], "BG", "gray"),
              (motion_image(st["motion"][k - 1]), "phase of T", "twilight"),
              (st["frame"][k], "prediction $\\hat F$", "gray"), (frames[0, t], f"observed F (t={t})", "gray"),
              (st["frame"][k] - frames[0, t], "error $\\hat F - F$", "RdBu"), (st["alpha"][k], "corrected A", "gray")]
    fig, axes = plt.subplots(2, 4, figsize=(7.5, 4))
    for ax, (img, title, cmap) in zip(axes.flat, panels):
        lo, hi = {"twilight": (-np.pi, np.pi), "RdBu": (-0.5, 0.5)}.get(cmap, (0.0, 1.0))
        _img(ax, img, title, cmap=cmap, vmin=lo, vmax=hi)
    fig.tight_layout()
    return fig


def plot_state_metrics(per_state_step: dict[str, dict[str, list[float]]], n_seed: int = 10) -> Figure:
    """Mask IoU and velocity error per frame for one or more models (``{label: per_state_step}``)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.7))
    for label, steps in per_state_step.items():
        frames = np.arange(1, len(steps["iou"]) + 1)
        axes[0].plot(frames, steps["iou"], "o-", ms=3, label=label)
        axes[1].plot(frames, steps["epe"], "o-", ms=3, label=label)
    for ax, title in zip(axes, ["mask IoU (A > 0.5 vs. true alpha > 0.5)", "velocity error (px/frame)"]):
        ax.axvline(n_seed - 0.5, color="gray", ls=":", lw=0.8)
        ax.set_xlabel("frame (dotted: end of the seed)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_net_io(model: torch.nn.Module, frames: torch.Tensor) -> Figure:
    """Input and output of each net of a learnable model at the last seed step of one sequence.

    ``frames`` are 1 x S x H x W seed frames; the nets' last calls during the seed are shown.
    """
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [net.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, (inp[0], out)))
             for name, net in model.nets.items()]
    try:
        with torch.no_grad():
            model.run(frames, 0)
    finally:
        for h in hooks:
            h.remove()
    second = "observed" if getattr(model.options, "bg_gate", False) else "frame"
    panels = [(seen["alpha"][0][0, 0], "alpha net: input A"), (seen["alpha"][1][0, 0], "alpha net: output"),
              (seen["fg"][0][0, 0], "fg net: input FG"), (seen["fg"][1][0, 0], "fg net: output"),
              (seen["bg"][0][0, 0], "bg net: input BG"), (seen["bg"][0][0, 1], f"bg net: input '{second}'"),
              (seen["bg"][1][0, 0], "bg net: output"),
              (seen["bg"][1][0, 0] - seen["bg"][0][0, 0], "bg net: output - input BG")]
    fig, axes = plt.subplots(2, 4, figsize=(7.5, 3.8))
    for ax, (img, title) in zip(axes.flat, panels):
        diff = "-" in title
        _img(ax, img, title, cmap="RdBu" if diff else "gray", vmin=-0.5 if diff else 0.0, vmax=0.5 if diff else 1.0)
    fig.tight_layout()
    return fig


def plot_blend_weights(model: torch.nn.Module, steps: Sequence[int] = range(1, 10)) -> Figure:
    """The learned share ``w_t`` of each net per seed step (1 at the first step with states)."""
    fig, ax = plt.subplots(figsize=(5, 2.4))
    for name in model.nets:
        ax.plot(list(steps), [float(model.gain(f"mix_{name}", t).detach()) for t in steps], "o-", ms=3, label=name)
    ax.set_xlabel("step t")
    ax.set_ylabel("share of the net, $w_t$")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_prediction_errors(models: dict[str, torch.nn.Module], seq: dict[str, np.ndarray],
                           frames_shown: Sequence[int] = (0, 1, 9), n_seed: int = 10) -> Figure:
    """Per model (rows): its mask at the first predicted frame with the true outline in red, then
    the absolute error of some predicted frames, cropped to the digit's path (one sequence)."""
    seed = torch.from_numpy(seq["frames"][:, :n_seed])
    truth = seq["frames"][0, n_seed:]
    ys, xs = np.nonzero(seq["alpha"][0, n_seed - 1:].max(0) > 0)  # the digit's path, with a margin
    crop = (slice(max(ys.min() - 4, 0), ys.max() + 5), slice(max(xs.min() - 4, 0), xs.max() + 5))
    fig, axes = plt.subplots(len(models), 1 + len(frames_shown), figsize=(8, 2.3 * len(models)), squeeze=False)
    for row, (name, m) in enumerate(models.items()):
        with torch.no_grad():
            pred, states = m.run(seed, n_seed, keep_states=True)
        pred = pred[0].numpy()
        ax = axes[row, 0]
        _img(ax, states.stacked()["alpha"][0, n_seed - 1][crop], f"{name}: A, frame {n_seed}")
        ax.contour(seq["alpha"][0, n_seed][crop], levels=[0.5], colors="r", linewidths=0.6)
        for col, k in enumerate(frames_shown, start=1):
            err = np.mean((pred[k] - truth[k]) ** 2)
            _img(axes[row, col], np.abs(pred[k] - truth[k])[crop], f"|error|, frame {n_seed + k}: MSE {err:.5f}",
                 cmap="magma", vmin=0.0, vmax=0.3)
    fig.tight_layout()
    return fig


def plot_first_estimates(model: torch.nn.Module, frames: torch.Tensor, k: int = 0) -> Figure:
    """What each net of the paper's learnable extension sees and makes for the first estimate (frame ``k``).

    ``frames`` are 1 x S x H x W seed frames; the nets are called as :meth:`LearnableModel.estimate` calls them.
    """
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [net.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, (inp[0], out)))
             for name, net in model.nets.items()]
    try:
        with torch.no_grad():
            model.estimate(frames.to(torch.float32), k)
    finally:
        for h in hooks:
            h.remove()
    panels = [(seen["modelA"][0][0, 0], "A net: motion evidence", "gray", 0.0, 1.0),
              (seen["modelA"][1][0].clamp(0, 1), "A net: first A", "gray", 0.0, 1.0),
              (seen["modelFG"][0][0, 0], "FG net: $-g\\,A\\,F$", "RdBu", -0.5, 0.5),
              (seen["modelFG"][1][0].clamp(0, 1), "FG net: first FG", "gray", 0.0, 1.0),
              (seen["modelBG"][0][0, 0], "BG net: $-g'(1-A)F$", "RdBu", -0.5, 0.5),
              (seen["modelBG"][0][0, 1], "BG net: A", "gray", 0.0, 1.0),
              (seen["modelBG"][1][0].clamp(0, 1), "BG net: first BG", "gray", 0.0, 1.0),
              (frames[0, k], f"frame {k}", "gray", 0.0, 1.0)]
    fig, axes = plt.subplots(2, 4, figsize=(7.5, 3.8))
    for ax, (img, title, cmap, lo, hi) in zip(axes.flat, panels):
        _img(ax, img, title, cmap=cmap, vmin=lo, vmax=hi)
    fig.tight_layout()
    return fig
