"""Input checks shared by every model: clear errors instead of silent surprises."""
from __future__ import annotations

import operator
import os

import torch
from torch import Tensor

# Refuse roll-outs whose output alone would take more than this share of the machine's memory.
MEMORY_SHARE = 0.5


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_n_future(n_future: object, batch: int = 1, height: int = 128, width: int = 128) -> int:
    """``n_future`` as an int: any integer >= 0 (numpy's too), not bool; small enough to fit in memory."""
    if isinstance(n_future, bool):
        raise ValueError(f"n_future must be a non-negative integer, got the bool {n_future!r}")
    try:
        n = operator.index(n_future)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"n_future must be a non-negative integer, got {n_future!r}") from None
    if n < 0:
        raise ValueError(f"n_future must be a non-negative integer, got {n}")
    memory = _memory_bytes()
    need = 4 * batch * n * height * width
    if memory is not None and need > MEMORY_SHARE * memory:
        raise ValueError(f"n_future={n} would need at least {need / 2**30:.1f} GiB for the predictions alone "
                         f"({batch} x {n} x {height} x {width} float32), more than half of this machine's "
                         f"{memory / 2**30:.1f} GiB; predict fewer frames at a time")
    return n


def check_seed_frames(x: Tensor, min_seed: int = 2, n_future: object = None) -> int | None:
    """Raise ``ValueError`` unless ``x`` is a finite B x S x H x W float tensor in [0, 1].

    ``min_seed`` is the least number of seed frames S the model needs. Returns ``n_future``
    as an int (see :func:`check_n_future`) when given.
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
    return None if n_future is None else check_n_future(n_future, b, h, w)
