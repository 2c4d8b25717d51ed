"""Input checks shared by every model: clear errors instead of silent surprises.

Besides shapes, dtypes and values, a call's ``n_future`` is checked against memory: the peak
memory of the call is estimated from the model, the batch, the number of frames and whether
autograd records the call (:func:`estimate_bytes`), and a call that would not fit into the
memory available now is refused in one line instead of being killed by the system.
"""
from __future__ import annotations

import math
import operator
import os
from typing import Any, Callable

import torch
from torch import Tensor

# Refuse a call whose estimated peak exceeds this share of the memory available when it starts.
MEMORY_SHARE = 0.8

# Peak memory of one call beyond what was in use before it, per sequence and frame, as multiples
# of one frame (H x W float32): (per seed frame, per predicted frame), without and with autograd.
# Measured by benchmarks/peak_memory.py (peak RSS of a first call in a fresh process, CPU, 64 x 64
# and 128 x 128, batches of 1 and 4, short and long horizons; with autograd forward and backward;
# the filter models' states kept as evaluate keeps them) and rounded up. A model steps through its
# seed frames with more in memory than through its predicted ones (the learnable nets keep their
# activations of every seed step for backward). FIXED_BYTES is what a first call sets up (FFT
# plans, thread pools; up to 45 MB measured); MARGIN covers the allocator's noise.
PEAK_MULTIPLES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    # the filter models (ZeroParamModel and its subclasses, which do not pass themselves to the
    # check): the largest of the four. Measured without autograd 14-23 per seed frame, 7-10 per
    # predicted one; with autograd 32-215 per seed frame (learnable's nets the most) and 17-26
    # per predicted one.
    "filter": ((25.0, 11.0), (220.0, 27.0)),
    "ConvPGP": ((17.0, 2.5), (55.0, 120.0)),  # measured 16 / 2.0 and 52 / 118
    # measured 39 / 7.7 to 11 (the working set of one step, then the outputs) and 664 / 733 to 748
    "VLNResNet": ((40.0, 12.0), (700.0, 760.0)),
    "VLNLDC": ((40.0, 12.0), (700.0, 760.0)),
    "CopyLast": ((0.0, 1.0), (0.0, 1.0)),  # the output itself
}
FIXED_BYTES = 64 * 2 ** 20
MARGIN = 1.25


def _meminfo_available() -> int | None:
    """``MemAvailable`` of /proc/meminfo in bytes (Linux), else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory(device: torch.device | str | None = None) -> int | None:
    """Bytes that a call may still allocate on ``device`` (None: unknown, the check is skipped).

    CUDA: free device memory plus what PyTorch's allocator holds unused. CPU: psutil's
    ``available`` if psutil is installed, else ``MemAvailable`` of /proc/meminfo, else free
    physical pages.
    """
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        import psutil  # type: ignore[import-untyped]
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    found = _meminfo_available()
    if found is not None:
        return found
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def peak_multiples(model: torch.nn.Module | None, autograd: bool) -> tuple[float, float]:
    """(per seed frame, per predicted frame) multiples of ``model`` (a filter model's if unknown)."""
    name = type(model).__name__ if model is not None else "filter"
    return PEAK_MULTIPLES.get(name, PEAK_MULTIPLES["filter"])[1 if autograd else 0]


def records_autograd(x: Tensor, model: torch.nn.Module | None) -> bool:
    """Whether a call on ``x`` will keep its graph: grad mode on and something requires grad.

    Without the model it is assumed to have trainable weights (as every model of the zoo has).
    """
    if not torch.is_grad_enabled():
        return False
    if x.requires_grad or model is None:
        return True
    return any(p.requires_grad for p in model.parameters())


def estimate_bytes(model: torch.nn.Module | None, batch: int, n_seed: int, n_future: int, height: int,
                   width: int, autograd: bool) -> int:
    """Conservative peak memory of one call predicting ``n_future`` frames from ``n_seed`` (bytes)."""
    seed, future = peak_multiples(model, autograd)
    per_sequence = 4 * height * width * (seed * n_seed + future * n_future)
    return int(MARGIN * (FIXED_BYTES + batch * per_sequence))


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GiB"


def _count(n_future: object) -> int:
    """``n_future`` as an int >= 0 (numpy integers too, not bool), or ``ValueError``."""
    if isinstance(n_future, bool):
        raise ValueError(f"n_future must be a non-negative integer, got the bool {n_future!r}")
    try:
        n = operator.index(n_future)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"n_future must be a non-negative integer, got {n_future!r}") from None
    if n < 0:
        raise ValueError(f"n_future must be a non-negative integer, got {n}")
    return n


def _frames_that_fit(limit: float, model: torch.nn.Module | None, batch: int, n_seed: int, height: int,
                     width: int, autograd: bool) -> int:
    """The largest ``n_future`` whose estimate stays within ``limit`` (0 if none)."""
    without = estimate_bytes(model, batch, n_seed, 0, height, width, autograd)
    per_frame = estimate_bytes(model, batch, n_seed, 1, height, width, autograd) - without
    return max(0, math.floor((limit - without) / per_frame)) if per_frame > 0 else 0


def check_n_future(n_future: object, batch: int = 1, height: int = 128, width: int = 128,
                   model: torch.nn.Module | None = None, n_seed: int = 0, autograd: bool = False,
                   device: torch.device | str | None = None) -> int:
    """``n_future`` as an int: any integer >= 0 (numpy's too), not bool; small enough to fit in memory.

    The call's peak memory (:func:`estimate_bytes`) must stay within ``MEMORY_SHARE`` of the
    memory available (:func:`available_memory`); the error says how many frames would fit.
    """
    n = _count(n_future)
    available = available_memory(device)
    if available is None:
        return n
    limit = MEMORY_SHARE * available
    need = estimate_bytes(model, batch, n_seed, n, height, width, autograd)
    if need > limit:
        fits, fits_one = (_frames_that_fit(limit, model, b, n_seed, height, width, autograd) for b in (batch, 1))
        kind = "with autograd" if autograd else "without autograd"
        raise ValueError(
            f"n_future={n} would need about {_gib(need)} ({kind}, {batch} x {n} x {height} x {width}), more than "
            f"the limit of {_gib(limit)} ({MEMORY_SHARE:.0%} of the {_gib(available)} available): predict at most "
            f"{fits} frames per call for this batch ({fits_one} for one sequence), e.g. in chunks of sequences "
            f"with motionseg.validation.predict_in_chunks"
            + ("" if not autograd else ", or under torch.no_grad() if no gradient is needed"))
    return n


def check_seed_frames(x: Tensor, min_seed: int = 2, n_future: object = None,
                      model: torch.nn.Module | None = None) -> int | None:
    """Raise ``ValueError`` unless ``x`` is a finite B x S x H x W float tensor in [0, 1].

    ``min_seed`` is the least number of seed frames S the model needs. Returns ``n_future``
    as an int (see :func:`check_n_future`) when given; ``model`` (the caller) sizes the memory
    estimate (without it, that of the filter models).
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
    if n_future is None:
        return None
    return check_n_future(n_future, b, h, w, model=model, n_seed=s, autograd=records_autograd(x, model),
                          device=x.device)


def predict_in_chunks(model: Callable[..., Tensor] | Any, seed_frames: Tensor, n_future: int,
                      sequences: int | None = None) -> Tensor:
    """``model(seed_frames, n_future)`` computed ``sequences`` sequences at a time, without autograd.

    Every model predicts each sequence on its own, so the result equals one call's; the peak
    memory is that of one chunk plus the output. Without ``sequences``, the largest chunk that
    fits beside the output is taken (at least one sequence: a horizon too long for one sequence
    is still refused by the model, with the number of frames that fit).
    """
    b, s, h, w = seed_frames.shape
    n = _count(n_future)
    output = 4 * b * n * h * w
    available = available_memory(seed_frames.device)
    if available is not None and output > MEMORY_SHARE * available:
        raise ValueError(f"the predictions alone ({b} x {n} x {h} x {w} float32) would take {_gib(output)}, more "
                         f"than the limit of {_gib(MEMORY_SHARE * available)}: predict fewer frames or sequences")
    if sequences is None:
        module = model if isinstance(model, torch.nn.Module) else None
        fixed = estimate_bytes(module, 0, s, n, h, w, autograd=False)
        one = estimate_bytes(module, 1, s, n, h, w, autograd=False) - fixed
        room = b * one if available is None else MEMORY_SHARE * available - output - fixed
        sequences = max(1, int(room // max(one, 1)))
    if sequences < 1:
        raise ValueError(f"sequences must be at least 1, got {sequences}")
    out: Tensor | None = None
    with torch.no_grad():
        for i in range(0, b, sequences):
            part = model(seed_frames[i:i + sequences], n)
            if out is None:  # written chunk by chunk: never the output twice in memory
                out = part.new_empty((b, *part.shape[1:]))
            out[i:i + len(part)] = part
    assert out is not None
    return out
