"""Figures of the book: sequences, ground-truth layers, model states (Fig. 1, Fig. 2), learning curves."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

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


def plot_learning_curve(histories: dict[str, dict[str, list]], ax: plt.Axes | None = None) -> Figure:
    """Training loss per step (thin) and validation MSE (dots) of one or more runs (``{label: history}``)."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 2.7))
    for i, (label, h) in enumerate(histories.items()):
        ax.plot(h["step"], h["loss"], lw=0.5, alpha=0.45, color=f"C{i}")
        ax.plot(h["val_step"], h["val_mse"], "o-", ms=3, color=f"C{i}", label=f"{label} (validation)")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("MSE")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig = fig or ax.figure
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


# -- chapters 01-03: the Kalman filter, motion in the frequency domain, the data set -------------

def plot_kalman_track(truth: np.ndarray, measurements: np.ndarray, estimates: np.ndarray,
                      gains: np.ndarray) -> Figure:
    """A 1-D constant-velocity track: measurements, truth and the filter's estimate; the gain per step.

    ``truth``, ``measurements``: T x 1 positions; ``estimates``: T x 2 (position, velocity);
    ``gains``: T x 2 x 1 Kalman gains (step 0 has none worth showing and is left out).
    """
    t = np.arange(len(truth))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.0))
    ax0.plot(t, measurements[:, 0], ".", color="0.6", label="measurements $z_t$")
    ax0.plot(t, truth[:, 0], "k-", lw=1, label="true position")
    ax0.plot(t, estimates[:, 0], "C0-", lw=2, label=r"estimate $\hat x_t$")
    ax0.set(xlabel="step $t$", ylabel="position", title="tracking with a Kalman filter")
    ax0.legend(fontsize=8)
    ax1.plot(t[1:], gains[1:, 0, 0], "C0-", label="position gain")
    ax1.plot(t[1:], gains[1:, 1, 0], "C1-", label="velocity gain")
    ax1.set(xlabel="step $t$", ylabel="$K_t$", title="Kalman gain over time", ylim=(0, 1.05))
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_kalman_gain_curves(ratios: Sequence[float] = (0.1, 1.0, 10.0, 100.0)) -> Figure:
    """The scalar Kalman gain ``K = p h / (p h^2 + 1)`` against the sensitivity ``h``, one curve per ``p``."""
    from .zero_param_plus import kalman_gain

    h = torch.linspace(-1, 1, 401)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, p in enumerate(ratios):
        ax.plot(h.numpy(), kalman_gain(torch.tensor(p), h).numpy(), f"C{i}-", label=f"$p$ = {p:g}")
    # 1/h, the exact solve, is drawn away from its pole only
    for part in (h[h < -0.1], h[h > 0.1]):
        ax.plot(part.numpy(), (1 / part).numpy(), "k:", lw=1)
    ax.lines[-1].set_label("$1/h$ (solve exactly)")
    ax.set(xlabel=r"sensitivity $h = \partial \hat F / \partial x$", ylabel="gain $K$",
           title="scalar Kalman gain $K = ph/(ph^2+1)$", ylim=(-6, 6))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_shift_theorem(frame: torch.Tensor, shift: torch.Tensor, alpha: torch.Tensor,
                       sub_shifts: Sequence[float] = (0.0, 0.25, 0.5, 0.75), low: int = 13) -> Figure:
    """The Fourier shift theorem: a frame and its subpixel shift, the phase of the ramp ``T``
    (the ``low`` lowest frequencies per axis, where its stripes are resolved), and one row of
    ``alpha`` across the patch's left edge moved by quarter pixels."""
    from . import fourier

    size = frame.shape[-1]
    shifted = fourier.fourier_shift(frame, shift)
    ramp = fourier.phase_ramp(shift, size, size)
    ys = torch.arange(size, dtype=torch.float32)
    row = int((alpha.sum(1) * ys).sum() / alpha.sum())  # the patch's centre row
    edge = int(torch.nonzero(alpha[row] > 0.5)[0])  # its left edge
    cols = slice(max(edge - 6, 0), edge + 7)
    fig, ax = plt.subplots(1, 4, figsize=(10, 2.8))
    _img(ax[0], frame, "frame 0")
    _img(ax[1], shifted, "shifted by (" + ", ".join(f"{float(s):g}" for s in shift) + ")")
    c = size // 2
    phase = torch.fft.fftshift(ramp.angle())[c - low:c + low + 1, c - low:c + low + 1]
    f = (low + 0.5) / size  # extent in cycles per pixel
    ax[2].imshow(phase.numpy(), cmap="twilight", vmin=-np.pi, vmax=np.pi, extent=(-f, f, f, -f))
    ax[2].set(xlabel="$f_x$", ylabel="$f_y$")
    ax[2].set_title("phase of $T$ (low freq.)", fontsize=8)
    xs = np.arange(size)[cols]
    for i, dx in enumerate(sub_shifts):
        moved = fourier.fourier_shift(alpha, torch.tensor([0.0, dx]))
        ax[3].plot(xs, moved[row, cols].numpy(), f"C{i}.-", ms=3, lw=1, label=f"$d_x$ = {dx}")
    ax[3].set_xlabel("x (px)")
    ax[3].set_title(f"alpha, row {row}", fontsize=8)
    ax[3].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_correlation_surfaces(pairs: dict[str, tuple[torch.Tensor, torch.Tensor]], velocity: torch.Tensor,
                              radius: int = 10) -> Figure:
    """Phase-correlation surfaces of image pairs (``{name: (earlier, later)}``) near zero
    displacement, with the true ``velocity`` (dy, dx) circled."""
    from . import fourier

    fig, axes = plt.subplots(1, len(pairs), figsize=(3.3 * len(pairs), 3.3), squeeze=False)
    for ax, (name, (earlier, later)) in zip(axes[0], pairs.items()):
        surface = torch.fft.fftshift(fourier.phase_correlation_surface(earlier, later))
        c = surface.shape[-1] // 2
        crop = surface[c - radius:c + radius + 1, c - radius:c + radius + 1]
        ax.imshow(crop.numpy(), cmap="magma", extent=(-radius - 0.5, radius + 0.5, radius + 0.5, -radius - 0.5))
        ax.plot(float(velocity[1]), float(velocity[0]), "o", mfc="none", mec="c", ms=11, mew=1.2)
        ax.set(xlabel="$d_x$ (px)", ylabel="$d_y$ (px)")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def plot_wraparound(patch: torch.Tensor, moved: torch.Tensor, frame: torch.Tensor, steps: int) -> Figure:
    """A patch, the same patch moved by ``T**steps`` (it wraps around), and a frame tiled 2 x 2
    with one period boxed: the periodic image the FFT sees."""
    size = frame.shape[-1]
    fig, ax = plt.subplots(1, 3, figsize=(9, 3.1))
    _img(ax[0], patch, "foreground x alpha, step 0")
    _img(ax[1], moved.clamp(0, 1), f"moved by $T^{{{steps}}}$ (wraps around)")
    _img(ax[2], torch.tile(frame, (2, 2)), "what the FFT sees: a periodic frame")
    ax[2].add_patch(plt.Rectangle((size // 2 - 0.5, size // 2 - 0.5), size, size, fill=False, ec="c", lw=1.5))
    fig.tight_layout()
    return fig


def plot_motion_fields(fields: dict[str, torch.Tensor], image: torch.Tensor, truth: torch.Tensor,
                       steps: int = 10) -> Figure:
    """Motion fields side by side: the phase of each (top) and ``image`` moved by it ``steps``
    times (bottom), with the true image after ``steps`` frames in the last column."""
    from . import fourier

    n = len(fields) + 1
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.0))
    for j, (name, motion) in enumerate(fields.items()):
        title = textwrap.fill(name, 22, break_long_words=False)
        _img(axes[0, j], motion_image(motion), title, cmap="twilight", vmin=-np.pi, vmax=np.pi)
        _img(axes[1, j], fourier.apply_motion(image, motion ** steps), f"moved by $T^{{{steps}}}$")
    axes[0, -1].axis("off")
    _img(axes[1, -1], truth, f"truth, {steps} frames later")
    axes[0, 0].set_ylabel("phase of $T$", fontsize=8)
    axes[1, 0].set_ylabel("alpha moved", fontsize=8)
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


def style_table(frame: "pd.DataFrame", uuid: str, caption: str = "", formats: dict[str, str] | str | None = None,
                index: bool = True) -> "Styler":
    """A chapter's table: numbers formatted, a caption above, padded cells, numbers right-aligned.

    ``uuid`` names the table's HTML id; pandas would draw a random one, and the notebook tests
    compare the HTML.
    """
    styler = frame.style.format(formats) if formats is not None else frame.style
    numbers = list(frame.select_dtypes("number").columns)
    styler = (styler.set_uuid(uuid).set_caption(caption)
              .set_table_styles([{"selector": "th, td", "props": [("padding", "0.15em 0.7em")]},
                                 {"selector": "caption", "props": [("caption-side", "top")]}]))
    if numbers:
        styler = styler.set_properties(subset=numbers, **{"text-align": "right"})
    return styler if index else styler.hide(axis="index")


def show(fig: Figure, fmt: str = "png", dpi: int = 100) -> None:
    """Display ``fig`` in a notebook as PNG, or as JPEG for figures made of photographs (a
    tenth of the size, so the book's pages stay light), then close it."""
    import io

    from IPython.display import Image, display

    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    buffer = io.BytesIO()
    extra = {"pil_kwargs": {"quality": 88}} if fmt == "jpeg" else {}
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", **extra)
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format=fmt))


def _panel(image: np.ndarray | torch.Tensor, cmap: str = "gray", vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """One image as H x W x 3 uint8, through a colour map."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    scaled = np.clip((np.asarray(image, dtype=np.float64) - vmin) / (vmax - vmin), 0.0, 1.0)
    return (plt.get_cmap(cmap)(scaled)[..., :3] * 255).astype(np.uint8)


def _row(panels: list[np.ndarray]) -> np.ndarray:
    """Panels (H x W x 3 uint8) side by side, 2 white pixels apart."""
    gap = np.full((panels[0].shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)


def _gif(grids: list[tuple[np.ndarray, str]], labels: Sequence[str], ms_per_frame: int = 400, scale: int = 2) -> bytes:
    """An animated GIF from per-frame panel grids (H x W x 3 uint8) with a caption line each."""
    import io

    from PIL import Image as PILImage
    from PIL import ImageDraw

    images = []
    for grid, caption in grids:
        big = np.kron(grid, np.ones((scale, scale, 1), dtype=np.uint8))
        head = 16
        canvas = PILImage.new("RGB", (big.shape[1], big.shape[0] + 2 * head), "white")
        canvas.paste(PILImage.fromarray(big), (0, head))
        draw = ImageDraw.Draw(canvas)
        width = big.shape[1] // len(labels)
        for i, label in enumerate(labels):
            draw.text((i * width + 4, 2), label, fill="black")
        draw.text((4, big.shape[0] + head + 2), caption, fill="black")
        images.append(canvas.convert("P", palette=PILImage.Palette.ADAPTIVE, colors=48))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return buffer.getvalue()


def animate_states(frames: np.ndarray, states: dict[str, torch.Tensor], n_seed: int = 10, scale: int = 1) -> bytes:
    """The states of one sequence developing over its frames, as an animated GIF.

    Panels: input (seed) or ground truth, the model's prediction, FG, BG, A and the phase of T;
    ``states`` as for :func:`plot_states` (entry k belongs to frame k + 1).
    """
    labels = ["input / truth", "prediction", "FG", "BG", "A", "phase of T"]
    grids = []
    for k in range(states["alpha"].shape[0]):
        t = k + 1
        panels = [_panel(frames[t]), _panel(states["frame"][k]), _panel(states["fg"][k]), _panel(states["bg"][k]),
                  _panel(states["alpha"][k]), _panel(motion_image(states["motion"][k]), "twilight", -np.pi, np.pi)]
        grids.append((_row(panels), f"frame {t}: " + ("observed" if t < n_seed else "predicted, no input")))
    return _gif(grids, labels, scale=scale)


def animate_predictions(frames: np.ndarray, predictions: dict[str, np.ndarray | torch.Tensor], n_seed: int = 10,
                        scale: int = 1) -> bytes:
    """Every model's prediction of one sequence side by side with the truth, as an animated GIF."""
    labels = ["truth", *predictions]
    grids = []
    for k in range(len(frames) - n_seed):
        panels = [_panel(frames[n_seed + k]), *[_panel(p[k]) for p in predictions.values()]]
        grids.append((_row(panels), f"predicted frame {n_seed + k}"))
    return _gif(grids, labels, scale=scale)


def show_animation(gif: bytes) -> None:
    """Display an animated GIF in a notebook."""
    from IPython.display import Image, display

    display(Image(data=gif, format="gif"))


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


# -- chapter 08: stress tests beyond Table 1 ------------------------------------------------------

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
                    ax.set_ylabel(textwrap.fill(label, 16), fontsize=6.5)
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
