"""Animations (GIF) of a sequence's states and of every model's predictions."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .common import motion_image

if TYPE_CHECKING:
    from PIL import Image as PILImage


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


# One palette for every frame of every animation: 24 greys (the frames and layers; 32 look the same
# and cost 15 % more) and 16 colours of the cyclic "twilight" map (the phase of T). With one palette
# a pixel that does not change keeps its index, and Pillow's encoder (optimize, its default) writes
# it as transparent, which compresses well; a palette fitted per frame (as before) made the files
# 2.5 times as large and coloured the phase panel poorly. Chapter 04's states animation: 665 KB
# before, 221 KB now.
GREYS, PHASES = 24, 16


@functools.lru_cache(maxsize=None)
def _palette() -> np.ndarray:
    """The palette's colours, ``GREYS + PHASES`` x 3 uint8."""
    greys = np.repeat(np.round(np.linspace(0, 255, GREYS))[:, None], 3, axis=1)
    twilight = np.round(plt.get_cmap("twilight")(np.arange(PHASES) / PHASES)[:, :3] * 255)
    return np.concatenate([greys, twilight]).astype(np.uint8)


def _indexed(rgb: np.ndarray) -> "PILImage.Image":
    """An RGB image (H x W x 3 uint8) as a palette image: each pixel the nearest colour of
    :func:`_palette`, computed exactly here (Pillow's own mapping is approximate and may change
    between versions; the notebook tests compare the GIF bytes)."""
    from PIL import Image as PILImage

    palette = _palette().astype(np.int64)
    keys = rgb.reshape(-1, 3).astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])  # one integer per colour
    unique, inverse = np.unique(keys, return_inverse=True)  # a few hundred colours per frame
    colours = np.stack([unique >> 16, (unique >> 8) & 255, unique & 255], axis=1)
    nearest = ((colours[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1).astype(np.uint8)
    image = PILImage.frombytes("P", (rgb.shape[1], rgb.shape[0]), nearest[inverse.reshape(-1)].tobytes())
    image.putpalette(palette.astype(np.uint8).tobytes())
    return image


def _wrap(label: str, width: int) -> list[str]:
    """``label`` in lines of at most ``width`` pixels of PIL's default font, broken between words
    (a single word wider than that keeps its own line): long model names overlapped their neighbours."""
    from PIL import ImageDraw, Image as PILImage

    measure = ImageDraw.Draw(PILImage.new("RGB", (1, 1))).textlength
    lines: list[str] = []
    for word in label.split():
        if lines and measure(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def _gif(grids: list[tuple[np.ndarray, str]], labels: Sequence[str], ms_per_frame: int = 400, scale: int = 2) -> bytes:
    """An animated GIF from per-frame panel grids (H x W x 3 uint8) with a caption line each,
    every frame mapped to the nearest colour of one fixed palette (:func:`_palette`)."""
    import io

    from PIL import Image as PILImage
    from PIL import ImageDraw

    images = []
    for grid, caption in grids:
        big = np.kron(grid, np.ones((scale, scale, 1), dtype=np.uint8))
        width = big.shape[1] // len(labels)
        lines = [_wrap(label, width - 6) for label in labels]
        line_height = 11
        head = 5 + line_height * max(len(ls) for ls in lines)
        foot = 16
        canvas = PILImage.new("RGB", (big.shape[1], big.shape[0] + head + foot), "white")
        canvas.paste(PILImage.fromarray(big), (0, head))
        draw = ImageDraw.Draw(canvas)
        for i, label_lines in enumerate(lines):
            for j, line in enumerate(label_lines):
                draw.text((i * width + 4, 2 + j * line_height), line, fill="black")
        draw.text((4, big.shape[0] + head + 2), caption, fill="black")
        images.append(_indexed(np.asarray(canvas)))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return buffer.getvalue()


def animate_states(frames: np.ndarray, states: dict[str, torch.Tensor], n_seed: int = 10, scale: int = 1,
                   every: int = 2) -> bytes:
    """The states of one sequence developing over its frames, as an animated GIF.

    Panels: input (seed) or ground truth, the model's prediction, FG, BG, A and the phase of T;
    ``states`` as for :func:`plot_states` (entry k belongs to frame k + 1). Every ``every``-th frame
    is shown (frames 1, 3, ..., 19 by default): the phase of T changes everywhere at every frame,
    so each frame costs its full size, and 19 of them made a 440 KB file.
    """
    if every < 1:
        raise ValueError(f"every must be a positive number of frames, got {every}")
    labels = ["input / truth", "prediction", "FG", "BG", "A", "phase of T"]
    grids = []
    for k in range(0, states["alpha"].shape[0], every):
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
