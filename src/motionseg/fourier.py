"""Motion in the frequency domain: the shift theorem, phase differences and phase filtering.

Convention used throughout the project: a *motion field* ``T`` is a complex H x W
tensor of unit-magnitude numbers such that ``FFT(later) = FFT(earlier) * T``.  For a
translation by ``(dy, dx)`` pixels, ``T`` is the linear phase ramp
``exp(-2 pi i (fy * dy + fx * dx))`` with ``fy, fx`` the FFT frequencies in cycles per
pixel (the Fourier shift theorem).  Shifts are circular: what leaves one border comes
back at the other.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import torch
from torch import Tensor

EPS = 1e-8
# Blends of unit phasors that (nearly) cancel carry no direction; this floor keeps the gradient
# of their renormalisation bounded when a model is trained through many of them.
PHASOR_EPS = 1e-3


def frequencies(h: int, w: int, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """FFT frequencies (cycles per pixel) along y and x, broadcastable to H x W."""
    fy = torch.fft.fftfreq(h, device=device, dtype=dtype).view(h, 1)
    fx = torch.fft.fftfreq(w, device=device, dtype=dtype).view(1, w)
    return fy, fx


def phase_ramp(shift: Tensor, h: int, w: int) -> Tensor:
    """Motion field of a translation: ``shift`` is ... x 2 (dy, dx); returns ... x H x W complex."""
    fy, fx = frequencies(h, w, shift.device, shift.dtype)
    angle = -2 * math.pi * (fy * shift[..., 0, None, None] + fx * shift[..., 1, None, None])
    return torch.polar(torch.ones_like(angle), angle)


def apply_motion(x: Tensor, motion: Tensor) -> Tensor:
    """Move image(s) ``x`` (... x H x W, real) by the motion field ``motion``."""
    return torch.fft.ifft2(torch.fft.fft2(x) * motion).real


def fourier_shift(x: Tensor, shift: Tensor) -> Tensor:
    """Shift ``x`` (... x H x W) by a (sub)pixel ``shift`` (... x 2, (dy, dx)), circularly."""
    return apply_motion(x, phase_ramp(shift, x.shape[-2], x.shape[-1]))


def _axis_factor(freq: Tensor, shift: Tensor) -> Tensor:
    """``exp(-2 pi i f s)`` along one axis; at the Nyquist frequency its real part ``cos(pi s)``."""
    factor = torch.polar(torch.ones_like(freq * shift), -2 * math.pi * freq * shift)
    nyquist = (freq == -0.5).to(shift.dtype)
    # the real part of a full-spectrum shift keeps only cos(pi s) of the (self-paired) Nyquist term
    return factor * (1 - nyquist) + torch.cos(math.pi * shift) * nyquist


def real_shift(x: Tensor, shift: Tensor) -> Tensor:
    """:func:`fourier_shift` of real images by way of the half spectrum of ``rfft2``.

    The same result as ``fourier_shift`` at about half the cost, and it broadcasts: one
    image (B x 1 x H x W) and B x S x 2 shifts give B x S moved copies from one FFT.
    """
    return shift_spectrum(torch.fft.rfft2(x), shift, x.shape[-2:])


def shift_spectrum(spectrum: Tensor, shift: Tensor, size: tuple[int, int] | torch.Size,
                   sum_dim: int | None = None) -> Tensor:
    """:func:`real_shift` of images given by their ``rfft2`` ``spectrum`` (... x H x W//2+1) and
    ``size`` (H, W): callers that move the same images several ways transform them once.

    ``sum_dim``: the moved images summed over this dimension of the batch (counted without the
    two image axes): the spectra are summed, so only the sum is transformed back.
    """
    return apply_ramp(spectrum, half_ramp(shift, size), size, sum_dim)


def half_ramp(shift: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """The factors (... x H x W//2+1, complex) by which :func:`shift_spectrum` multiplies a half
    spectrum to move its image by ``shift`` (... x 2): callers that move several images the same
    way make them once and pass them to :func:`apply_ramp`."""
    h, w = size
    fy = torch.fft.fftfreq(h, device=shift.device, dtype=shift.dtype).view(h, 1)
    fx = torch.fft.fftfreq(w, device=shift.device, dtype=shift.dtype)[: w // 2 + 1].view(1, w // 2 + 1)
    sy, sx = shift[..., 0, None, None], shift[..., 1, None, None]
    ramp = _axis_factor(fy, sy) * _axis_factor(fx, sx)
    if h % 2 == 0 and w % 2 == 0:  # the corner term pairs with itself as a whole: cos(pi (sy + sx))
        # written in place: a masked blend of two full spectra cost a quarter of the shift
        ramp[..., h // 2, w // 2] = torch.cos(math.pi * (sy + sx))[..., 0, 0].to(ramp.dtype)
    return ramp


def apply_ramp(spectrum: Tensor, ramp: Tensor, size: tuple[int, int] | torch.Size, sum_dim: int | None = None) -> Tensor:
    """The images of half ``spectrum`` moved by :func:`half_ramp`'s ``ramp`` (``sum_dim`` as in
    :func:`shift_spectrum`)."""
    moved = spectrum * ramp
    if sum_dim is not None:
        moved = moved.sum(sum_dim - 2 if sum_dim < 0 else sum_dim)
    return torch.fft.irfft2(moved, s=tuple(size))


def cross_power(earlier: Tensor, later: Tensor) -> Tensor:
    """Unnormalised cross-power spectrum ``FFT(later) * conj(FFT(earlier))``."""
    return torch.fft.fft2(later) * torch.fft.fft2(earlier).conj()


def normalise(z: Tensor, eps: float | Tensor = EPS) -> Tensor:
    """Scale complex numbers to unit magnitude; zeros stay zero, never NaN.

    ``z / sqrt(|z|**2 + eps**2)``: smooth at zero, so its gradient is finite everywhere
    (at most ``1 / eps``), which matters when training through it.
    """
    return z * torch.rsqrt(z.real ** 2 + z.imag ** 2 + eps * eps)


# The relative floor of unit_spectrum's gradient while gradient_floor() is active (None: exact).
_GRAD_FLOOR: contextvars.ContextVar[float | None] = contextvars.ContextVar("grad_floor", default=None)


@contextlib.contextmanager
def gradient_floor(floor: float | None) -> Iterator[None]:
    """Within this block, :func:`unit_spectrum` backpropagates as if its floor were ``floor``.

    The values computed are unchanged. The phase of a frequency with almost no energy turns
    fast with the images behind it (its gradient grows as 1 / energy), so the exact gradient of
    a model trained through phase differences is dominated by the frequencies that matter least
    (``benchmarks/gradient_floor.py`` measures it). ``None`` keeps the exact gradient.
    """
    if floor is not None and not 0 < floor < 1:
        raise ValueError(f"the gradient floor is a fraction of the spectrum's peak in (0, 1), got {floor}")
    token = _GRAD_FLOOR.set(floor)
    try:
        yield
    finally:
        _GRAD_FLOOR.reset(token)


def unit_spectrum(cross: Tensor, floor: float = 1e-6) -> Tensor:
    """Phases of a cross-power spectrum as unit phasors, ignoring what lies below ``floor`` x its peak.

    Frequencies with (almost) no energy have no reliable phase; the relative floor fades them
    out smoothly and keeps the gradient bounded when a model is trained through it. Inside
    :func:`gradient_floor` the gradient is that of the higher floor given there (same values).
    """
    peak = cross.abs().amax(dim=(-2, -1), keepdim=True).detach()
    exact = normalise(cross, floor * peak + EPS)
    grad_floor = _GRAD_FLOOR.get()
    if grad_floor is None or grad_floor <= floor or not cross.requires_grad:
        return exact
    smooth = normalise(cross, grad_floor * peak + EPS)
    return exact.detach() + (smooth - smooth.detach())


def phase_difference(earlier: Tensor, later: Tensor, eps: float = EPS) -> Tensor:
    """Phase correlation kept as a full field: the unit-magnitude ``T`` with later ~ earlier moved by T."""
    return normalise(cross_power(earlier, later), eps)


def phase_correlation_surface(earlier: Tensor, later: Tensor) -> Tensor:
    """Real-space phase correlation: a peak at the displacement from ``earlier`` to ``later``."""
    return torch.fft.ifft2(phase_difference(earlier, later)).real


def _nyquist_mask(n: int, dim: int, ndim: int, device: torch.device) -> Tensor:
    """1 except at the pair of neighbours that straddles the Nyquist frequency (not adjacent)."""
    mask = torch.ones(n, device=device)
    if n > 1:  # index ceil(n/2) holds the most negative frequency, its roll-neighbour the most positive
        mask[(n + 1) // 2] = 0.0
    shape = [1] * ndim
    shape[dim] = n
    return mask.view(shape)


def estimate_shift(motion: Tensor, weight: Tensor | None = None) -> Tensor:
    """Read a translation (... x 2, (dy, dx) in pixels) off a motion field.

    Assumes ``motion`` is close to a linear phase ramp: the phase increment between
    neighbouring frequencies is then constant, and its (weighted) circular mean gives
    the shift along that axis.
    """
    h, w = motion.shape[-2:]
    if weight is None:
        weight = torch.ones_like(motion.real)
    out = []
    for dim, n in ((-2, h), (-1, w)):
        inc = motion * torch.roll(motion, 1, dims=dim).conj()
        wk = weight * torch.roll(weight, 1, dims=dim)
        wk = wk * _nyquist_mask(n, dim % motion.dim(), motion.dim(), motion.device)
        mean = (inc * wk).sum(dim=(-2, -1))
        # increment per frequency step of 1/n cycles/pixel is exp(-2 pi i d / n)
        out.append(-torch.angle(mean) * n / (2 * math.pi))
    return torch.stack(out, dim=-1)


def correlation_peak(motion: Tensor, radius: float = 1.0, points: int = 41, rounds: int = 2) -> Tensor:
    """Subpixel location (... x 2, (dy, dx)) of the peak of the phase-correlation surface.

    The integer peak of ``IFFT(motion)`` is refined by evaluating the surface (a sum
    of complex exponentials, i.e. an exact band-limited interpolation) on ever finer
    grids around it. A translation by ``d`` gives a peak at ``d``; unlike the mean
    phase increment, the peak is not pulled towards other, weaker motions such as a
    static background.
    """
    *lead, h, w = motion.shape
    z = motion.reshape(-1, h, w).to(torch.complex64)
    surface = torch.fft.ifft2(z).real.reshape(z.shape[0], -1)
    py, px = _signed_peak(surface.argmax(dim=1), h, w)
    py, px = _refine_peak(z, py, px, radius, points, rounds)
    # a flat surface (nothing moved, or no signal) has no peak: report no motion
    flat = _is_flat(surface)
    py, px = torch.where(flat, torch.zeros_like(py), py), torch.where(flat, torch.zeros_like(px), px)
    return torch.stack([py, px], dim=-1).reshape(*lead, 2)


def correlation_peaks(motion: Tensor, k: int, separation: float = 2.0, radius: float = 1.0, points: int = 41,
                      rounds: int = 2) -> tuple[Tensor, Tensor]:
    """The ``k`` highest peaks of the phase-correlation surface: locations (... x k x 2) and heights (... x k).

    Several objects moving by different translations each leave a peak at their shift. Peaks
    are taken highest first; after each, the surface within ``separation`` px (circularly) of
    it is left out, so a peak's own sidelobes are not taken for another motion. Each location is
    refined to subpixel precision like :func:`correlation_peak`; heights are the surface's values
    at the integer peaks (1 for a single pure translation of a unit spectrum). A flat surface
    gives peaks at 0 with height 0.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer number of peaks, got {k!r}")
    if not separation >= 0:
        raise ValueError(f"separation must be >= 0 px, got {separation!r}")
    *lead, h, w = motion.shape
    if k > h * w:
        raise ValueError(f"k={k} peaks asked of a {h} x {w} surface")
    z = motion.reshape(-1, h, w).to(torch.complex64)
    surface = torch.fft.ifft2(z).real.reshape(z.shape[0], -1)
    flat = _is_flat(surface)
    fy, fx = torch.meshgrid(torch.arange(h, device=z.device), torch.arange(w, device=z.device), indexing="ij")
    fy, fx = fy.reshape(-1).to(torch.float32), fx.reshape(-1).to(torch.float32)
    left = surface.clone()
    places, heights = [], []
    for _ in range(k):
        idx = left.argmax(dim=1)
        heights.append(torch.where(flat, torch.zeros_like(idx, dtype=surface.dtype),
                                   surface.gather(1, idx[:, None])[:, 0]))
        py, px = _signed_peak(idx, h, w)
        # circular distance of every point of the surface to this peak
        dy = torch.remainder(fy[None] - py[:, None] + h / 2, h) - h / 2
        dx = torch.remainder(fx[None] - px[:, None] + w / 2, w) - w / 2
        left = left.masked_fill(dy * dy + dx * dx <= separation * separation, -torch.inf)
        py, px = _refine_peak(z, py, px, radius, points, rounds)
        zero = torch.zeros_like(py)
        places.append(torch.stack([torch.where(flat, zero, py), torch.where(flat, zero, px)], dim=-1))
    return torch.stack(places, 1).reshape(*lead, k, 2), torch.stack(heights, 1).reshape(*lead, k)


def _is_flat(surface: Tensor) -> Tensor:
    """Rows of an n x (H W) surface without a peak (nothing moved, or no signal)."""
    return (surface.amax(dim=1) - surface.amin(dim=1)) <= 1e-6


def _signed_peak(idx: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Flat indices of an H x W surface as signed (dy, dx) shifts."""
    py = (idx // w).to(torch.float32)
    px = (idx % w).to(torch.float32)
    return torch.where(py >= h / 2, py - h, py), torch.where(px >= w / 2, px - w, px)


def _refine_peak(z: Tensor, py: Tensor, px: Tensor, radius: float, points: int, rounds: int
                 ) -> tuple[Tensor, Tensor]:
    """Subpixel peak near (py, px) of the band-limited surface of ``z`` (n x H x W), on finer grids."""
    n, h, w = z.shape
    fy, fx = frequencies(h, w, z.device)
    grid = torch.linspace(-radius, radius, points, device=z.device)
    rows = torch.arange(n, device=z.device)
    for _ in range(rounds):
        ys = py[:, None] + grid  # n x points
        xs = px[:, None] + grid
        ey = torch.exp(2j * math.pi * fy.view(1, 1, h) * ys[:, :, None])  # n x points x H
        ex = torch.exp(2j * math.pi * fx.view(1, w, 1) * xs[:, None, :])  # n x W x points
        values = (ey @ z @ ex).real.reshape(n, -1)
        j = values.argmax(dim=1)
        py, px = ys[rows, j // points], xs[rows, j % points]
        grid = grid * 2.0 / (points - 1) * 2.0  # zoom in around the new peak
    return py, px


def phase_filter(motion: Tensor, weight: Tensor | None = None, gain: Tensor | float = 1.0
                 ) -> tuple[Tensor, Tensor]:
    """Filter a motion field under the linear-phase (pure translation) assumption.

    Returns ``(filtered, shift)``: the field blended with the ideal ramp of the
    estimated shift by ``gain`` (1 = the pure ramp) and renormalised, and the shift.
    """
    shift = estimate_shift(motion, weight)
    ramp = phase_ramp(shift, motion.shape[-2], motion.shape[-1])
    g = torch.as_tensor(gain, dtype=motion.real.dtype, device=motion.device)
    if g.dim() > 0:
        g = g.view(*g.shape, *([1] * (motion.dim() - g.dim())))
    blended = (1 - g) * motion + g * ramp
    return normalise(blended), shift


def gaussian_response(h: int, w: int, sigma: float, device: torch.device | str | None = None) -> Tensor:
    """Frequency response of a (circular) Gaussian blur with standard deviation ``sigma`` px."""
    fy, fx = frequencies(h, w, device)
    return torch.exp(-2 * math.pi ** 2 * sigma ** 2 * (fy ** 2 + fx ** 2))


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Circular Gaussian blur of ... x H x W images via the FFT."""
    return torch.fft.ifft2(torch.fft.fft2(x) * gaussian_response(x.shape[-2], x.shape[-1], sigma, x.device)).real


def difference_of_gaussians(x: Tensor, sigma_centre: float, sigma_surround: float) -> Tensor:
    """Centre-surround (DoG) response: positive inside blobs of about the surround's size."""
    h, w = x.shape[-2:]
    resp = gaussian_response(h, w, sigma_centre, x.device) - gaussian_response(h, w, sigma_surround, x.device)
    return torch.fft.ifft2(torch.fft.fft2(x) * resp).real


def averaging_phase_filter(motion: Tensor, gain: Tensor | float = 1.0, weight: Tensor | None = None) -> Tensor:
    """The paper's averaging filter on a motion field: adjacent frequencies differ by one phase step.

    Along each axis in turn, the phase increment between neighbouring frequencies
    (``T * conj(T rolled by one)``) is averaged over the whole field (weighted by ``weight``,
    e.g. the spectral energy, if given); each entry is rebuilt from its neighbour times that
    mean increment, blended with the old entry by ``gain`` and renormalised to unit magnitude.
    A pure translation's ramp is left unchanged. The pair that straddles the Nyquist
    frequency is not adjacent, so the entry after it keeps its value.
    """
    h, w = motion.shape[-2:]
    g = torch.as_tensor(gain, dtype=motion.real.dtype, device=motion.device)
    if g.dim() > 0:
        g = g.view(*g.shape, *([1] * (motion.dim() - g.dim())))
    if weight is not None:
        weight = weight / weight.amax(dim=(-2, -1), keepdim=True).clamp_min(EPS)
    out = motion
    for dim, n in ((-2, h), (-1, w)):
        prev = torch.roll(out, 1, dims=dim)
        adjacent = _nyquist_mask(n, dim % motion.dim(), motion.dim(), motion.device)
        wk = adjacent if weight is None else adjacent * weight * torch.roll(weight, 1, dims=dim)
        mean = normalise((out * prev.conj() * wk).sum(dim=(-2, -1), keepdim=True), PHASOR_EPS)
        rebuilt = torch.where(adjacent > 0, prev * mean, out)
        out = normalise((1 - g) * out + g * rebuilt, PHASOR_EPS)
    return out


def two_sided_phase_filter(motion: Tensor, gain: Tensor | float = 1.0, weight: Tensor | None = None) -> Tensor:
    """The phase filter of the authors' helper module: both neighbours, line means first.

    Along each axis in turn (rows, then columns): the phase increments to the next and to the
    previous frequency (unit phasors) are averaged along every line of that axis (weighted by
    ``weight``, e.g. the spectral energy, if given), then over the lines; each entry is rebuilt
    from each neighbour times its mean increment, and ``(1 - gain) * T + gain / 2 * (the two
    rebuilt values)`` is renormalised. Unlike :func:`averaging_phase_filter` the circular
    neighbours across the Nyquist frequency count as adjacent, as in the authors' code.
    """
    g = torch.as_tensor(gain, dtype=motion.real.dtype, device=motion.device)
    if g.dim() > 0:
        g = g.view(*g.shape, *([1] * (motion.dim() - g.dim())))
    out = motion
    for dim, other in ((-2, -1), (-1, -2)):
        n = motion.shape[dim]
        following, preceding = torch.roll(out, -1, dims=dim), torch.roll(out, 1, dims=dim)
        # increments of unit phasors are unit phasors: T_k conj(T_k+1), and T_k conj(T_k-1) is the
        # conjugate of the former one frequency earlier
        inc_next = out * following.conj()
        inc_prev = torch.roll(inc_next, 1, dims=dim).conj()
        if weight is None:
            mean_next = inc_next.mean(dim=(-2, -1), keepdim=True)
            mean_prev = mean_next.conj()
        else:  # per line of the axis, weighted; then the plain mean of the lines
            line_weight = weight / ((weight.sum(dim=other, keepdim=True) + EPS) * n)
            mean_next = (inc_next * line_weight).sum(dim=(-2, -1), keepdim=True)
            mean_prev = (inc_prev * line_weight).sum(dim=(-2, -1), keepdim=True)
        rebuilt = following * mean_next + preceding * mean_prev
        out = normalise((1 - g) * out + g / 2 * rebuilt, PHASOR_EPS)
    return out
