"""Helpers shared by the figure modules: one image panel, the phase of a motion field, showing a figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def _img(ax: plt.Axes, image: np.ndarray | torch.Tensor, title: str = "", cmap: str = "gray",
         vmin: float | None = 0.0, vmax: float | None = 1.0) -> None:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def motion_image(motion: torch.Tensor) -> np.ndarray:
    """Phase of a motion field, fft-shifted so the zero frequency is in the centre."""
    return torch.fft.fftshift(torch.angle(motion), dim=(-2, -1)).cpu().numpy()


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
