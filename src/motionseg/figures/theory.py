"""Figures of chapters 01 and 02: the Kalman filter, and motion in the frequency domain."""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .common import _img, motion_image


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
    from ..zero_param_plus import kalman_gain

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
    from .. import fourier

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
    from .. import fourier

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
    from .. import fourier

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
