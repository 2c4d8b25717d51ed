"""Small synthetic scenes for behaviour tests: fast, exactly known, and easy to reason about."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from motionseg import data


def moving_square(s: int, size: int, canvas_step: int | tuple[int, int], n_future: int = 0, seed: int = 2,
                  side: int = 20, batch: int = 1, smooth: bool = False) -> dict[str, torch.Tensor]:
    """A textured square moving ``canvas_step`` half-pixels per frame (per axis) over a random background.

    Rendered as the data generator renders: on a 2x canvas, then 2 x 2 average pooled. The
    background is constant within each pooled pixel, so that a partly covered pixel is exactly
    ``premult + (1 - alpha) * bg`` (the layer model). Returns frames, alpha, premult
    (B x T x size x size), bg (B x size x size) and velocity (B x 2, px/frame).
    """
    step = (0, canvas_step) if isinstance(canvas_step, int) else canvas_step
    g = torch.Generator().manual_seed(seed)
    if smooth:  # a background of 8 px blocks, the patch a bright textured square: easy to segment
        coarse = 0.15 + 0.35 * torch.rand(batch, size // 8, size // 8, generator=g)
        bg2x = coarse.repeat_interleave(16, -1).repeat_interleave(16, -2)
        patch = 0.7 + 0.3 * torch.rand(batch, side, side, generator=g)
    else:  # texture on texture: hard
        bg2x = torch.rand(batch, size, size, generator=g).repeat_interleave(2, -1).repeat_interleave(2, -2)
        patch = 0.2 + 0.6 * torch.rand(batch, side, side, generator=g)
    frames, alphas, premults = [], [], []
    pool = lambda t: F.avg_pool2d(t[:, None], 2)[:, 0]  # noqa: E731
    n = s + n_future

    def start(v: int) -> int:  # away from the border the square moves from, inside to the end
        return 10 if v >= 0 else 2 * size - 10 - side - (n - 1) * abs(v)

    for k in range(n):
        comp, cover = bg2x.clone(), torch.zeros_like(bg2x)
        y0, x0 = start(step[0]) + k * step[0], start(step[1]) + k * step[1]
        comp[:, y0:y0 + side, x0:x0 + side] = patch
        cover[:, y0:y0 + side, x0:x0 + side] = 1.0
        frames.append(pool(comp))
        alphas.append(pool(cover))
        premults.append(pool(comp * cover))
    velocity = torch.tensor([[step[0] / 2, step[1] / 2]]).expand(batch, 2).clone()
    return {"frames": torch.stack(frames, 1), "alpha": torch.stack(alphas, 1), "premult": torch.stack(premults, 1),
            "bg": pool(bg2x), "velocity": velocity}


def digits(n: int = 8, size: int = 64, split: str = "test", seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` generated sequences at ``size`` x ``size`` as tensors."""
    return {k: torch.from_numpy(v) for k, v in data.make_sequences(n, split, seed, size=size).items()}


def copy_last_mse(frames: torch.Tensor, n_seed: int = 10) -> float:
    """MSE of repeating the last seed frame."""
    future = frames[:, n_seed:]
    return float(((frames[:, n_seed - 1:n_seed] - future) ** 2).mean())


def mse(pred: torch.Tensor, frames: torch.Tensor, n_seed: int = 10) -> float:
    """MSE of predictions against the frames after the seed."""
    return float(((pred - frames[:, n_seed:n_seed + pred.shape[1]]) ** 2).mean())
