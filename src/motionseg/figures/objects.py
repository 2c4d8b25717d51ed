"""Figures of the multi-object chapter: K layers separating over the seed frames."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .common import _img


def plot_object_layers(frames: np.ndarray, premult: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor,
                       order: Sequence[int], steps: Sequence[int], velocity: torch.Tensor | None = None) -> Figure:
    """One sequence's layers over its seed frames: the frame, then each layer (front first) as
    premultiplied FG on black, and its mask; the background in the last column.

    ``premult``, ``alpha``: K x S x H x W, the layers moved back to each seed frame
    (:meth:`MultiObject.past_layers`); ``bg``: H x W; ``order``: layer indices front to back;
    ``velocity``: K x 2 (dy, dx) px/frame, named in the row labels when given.
    """
    k = len(order)
    n_rows, n_cols = 1 + 2 * k, len(steps) + 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.45 * n_cols + 1.0, 1.45 * n_rows + 0.3), squeeze=False)
    for j, t in enumerate(steps):
        _img(axes[0, j], frames[t], f"t={t}")
        for place, layer in enumerate(order):
            _img(axes[1 + 2 * place, j], premult[layer, t])
            _img(axes[2 + 2 * place, j], alpha[layer, t])
    _img(axes[0, -1], bg, "BG")
    for ax in axes[1:, -1]:
        ax.axis("off")
    axes[0, 0].set_ylabel("frame", fontsize=9)
    for place, layer in enumerate(order):
        name = "front" if place == 0 else "back" if place == k - 1 else f"{place + 1}."
        speed = "" if velocity is None else "\n({:+.1f}, {:+.1f}) px/f".format(*velocity[layer].tolist())
        axes[1 + 2 * place, 0].set_ylabel(f"layer {layer + 1}, {name}{speed}", fontsize=8)
        axes[2 + 2 * place, 0].set_ylabel(f"A of layer {layer + 1}", fontsize=8)
    fig.tight_layout(h_pad=0.3, w_pad=0.3)
    return fig
