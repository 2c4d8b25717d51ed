"""Animations (GIF) of a sequence's states and of every model's predictions."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .common import motion_image


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
