"""Emulate another CPU's floating-point kernels, for the portability check of the notebooks.

The PyTorch CPU wheel picks its FFT (Intel MKL) and convolution (oneDNN) kernels by the CPU it
runs on, so an AVX-512 machine rounds differently from an AVX2 one in the last bits; on some
CPUs (AMD ones among them) ``MKL_ENABLE_INSTRUCTIONS`` changes nothing, so that switch alone
cannot show whether the book's checks survive another machine. With this folder on
``PYTHONPATH`` and ``MOTIONSEG_EMULATE_CPU=1`` set, every Python process (the nbval kernels
included) multiplies the results of ``torch.fft``'s transforms and of ``conv2d`` by
``1 + e * r``, with ``r`` a fixed pseudo-random pattern in [-1, 1] and ``e`` a few float32
roundings (``MOTIONSEG_EMULATE_EPS``, default 4 units of 2**-24): the size of the difference
between two kernels, not a bug. Used by ``tests/test_portability.py`` and ``.ci/run``; never by
the library.
"""
from __future__ import annotations

import os

KERNELS = ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2")
EPS = 4 * 2.0 ** -24  # a few float32 roundings


def perturb(eps: float = EPS, seed: int = 12345):  # type: ignore[no-untyped-def]
    """Multiply the float32 results of ``torch.fft``'s transforms and of ``conv2d`` by ``1 + eps * r``
    (``r``: a fixed pseudo-random pattern in [-1, 1] per shape, drawn from ``seed``); returns a
    function that undoes it (the figure tests measure with it what rounding alone moves)."""
    import functools

    import torch

    patterns: dict[tuple, torch.Tensor] = {}

    def _pattern(shape: torch.Size, device: torch.device) -> torch.Tensor:
        key = (tuple(shape), str(device))
        if key not in patterns:
            gen = torch.Generator().manual_seed(len(patterns) + seed)
            r = torch.rand(tuple(shape), generator=gen, dtype=torch.float64) * 2 - 1
            patterns[key] = (1 + eps * r).to(device=device, dtype=torch.float32)
        return patterns[key]

    def _perturbed(fn):  # type: ignore[no-untyped-def]
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            out = fn(*args, **kwargs)
            if isinstance(out, torch.Tensor) and out.dtype in (torch.float32, torch.complex64):
                out = out * _pattern(out.shape, out.device)
            return out
        return wrapper

    originals = {name: getattr(torch.fft, name) for name in KERNELS}
    conv2d = torch.nn.functional.conv2d
    for name, fn in originals.items():
        setattr(torch.fft, name, _perturbed(fn))
    torch.nn.functional.conv2d = _perturbed(conv2d)

    def undo() -> None:
        for name, fn in originals.items():
            setattr(torch.fft, name, fn)
        torch.nn.functional.conv2d = conv2d
    return undo


# as the interpreter's sitecustomize (this folder on PYTHONPATH) with the switch on: the whole
# process runs on the emulated CPU; loaded under another name (the figure tests), nothing happens
if __name__ == "sitecustomize" and os.environ.get("MOTIONSEG_EMULATE_CPU") == "1":
    perturb(float(os.environ.get("MOTIONSEG_EMULATE_EPS", str(EPS))))
