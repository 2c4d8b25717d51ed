"""Input checks shared by every model: clear errors instead of silent surprises."""
from __future__ import annotations

import torch
from torch import Tensor


def check_seed_frames(x: Tensor, min_seed: int = 2, n_future: int | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is a finite B x S x H x W float tensor in [0, 1].

    ``min_seed`` is the least number of seed frames S the model needs.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"seed frames must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"seed frames must have shape B x S x H x W (rank 4), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"seed frames must be a floating-point tensor with values in [0, 1], got {x.dtype}")
    b, s, h, w = x.shape
    if b < 1 or h < 8 or w < 8:
        raise ValueError(f"seed frames need B >= 1 and H, W >= 8, got shape {tuple(x.shape)}")
    if s < min_seed:
        raise ValueError(f"need at least {min_seed} seed frames, got S={s}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("seed frames contain NaN or inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"seed frames must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    if n_future is not None and (not isinstance(n_future, int) or n_future < 0):
        raise ValueError(f"n_future must be a non-negative int, got {n_future!r}")
