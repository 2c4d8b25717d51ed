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


# A figure that shows at least this many image pixels (photographs, states) is stored as JPEG by
# show(fmt="auto"); line plots stay PNG, whose flat colours JPEG would blur.
PHOTO_PIXELS = 64 * 64


def image_pixels(fig: Figure) -> int:
    """How many pixels of image data (``imshow``) the figure's axes show."""
    return sum(int(np.prod(im.get_array().shape[:2])) for ax in fig.axes for im in ax.get_images())


def encode(fig: Figure, fmt: str = "auto", dpi: int = 100, quality: int = 60,
           colors: int | None = 256) -> tuple[bytes, str]:
    """``fig`` as compact image bytes and their format (``"png"`` or ``"jpeg"``).

    ``fmt="auto"``: JPEG for figures that show images (at least :data:`PHOTO_PIXELS`), PNG
    otherwise. JPEG at ``quality`` 60 is 0.58 times the size of quality 88 (the old default) with no
    visible change at 100 dpi, so that the chapters' notebooks stay within 4 MB together; PNG is
    reduced to a palette of ``colors`` colours (``None``: full colour), a quarter of the size for a
    line plot. Both encodings are deterministic.
    """
    import io

    from PIL import Image as PILImage

    if fmt == "auto":
        fmt = "jpeg" if image_pixels(fig) >= PHOTO_PIXELS else "png"
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt must be 'auto', 'png' or 'jpeg', got {fmt!r}")
    buffer = io.BytesIO()
    # optimized, progressive Huffman coding: 7 % smaller for the same pixels
    extra = {"pil_kwargs": {"quality": quality, "optimize": True, "progressive": True}} if fmt == "jpeg" else {}
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", **extra)
    data = buffer.getvalue()
    if fmt == "png" and colors is not None:
        image = PILImage.open(io.BytesIO(data)).convert("RGB")  # the figure's background is opaque
        small = io.BytesIO()
        image.quantize(colors, method=PILImage.Quantize.MEDIANCUT, dither=PILImage.Dither.NONE).save(
            small, format="PNG", optimize=True)
        data = small.getvalue()
    return data, fmt


def show(fig: Figure, fmt: str = "auto", dpi: int = 100, quality: int = 60, colors: int | None = 256) -> None:
    """Display ``fig`` in a notebook, compactly (see :func:`encode`: JPEG for figures of images,
    a palette PNG for plots), so that the book's pages stay light; then close it."""
    from IPython.display import Image, display

    data, fmt = encode(fig, fmt, dpi, quality, colors)
    plt.close(fig)
    display(Image(data=data, format=fmt))
