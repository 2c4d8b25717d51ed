"""Tests of the frequency-domain motion tools (``motionseg.fourier``)."""
from __future__ import annotations

import math

import pytest
import torch

from motionseg import fourier as F

SHIFTS = [(0.5, -0.5), (1.25, -2.75), (-3.3, 0.1), (0.0, 0.5), (-0.5, 0.0), (2.0, 3.0), (-1.7, -4.45)]
SIZES = [(32, 32), (32, 48), (31, 45)]


def blob(h: int, w: int, cy: float, cx: float, sigma: float = 2.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A smooth (effectively band-limited) Gaussian blob."""
    y = torch.arange(h, dtype=dtype)[:, None]
    x = torch.arange(w, dtype=dtype)[None, :]
    return torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma ** 2))


def scene(h: int = 32, w: int = 48, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Two blobs of different size and contrast, so the image is not symmetric."""
    return blob(h, w, h * 0.45, w * 0.4, 2.0, dtype) + 0.5 * blob(h, w, h * 0.6, w * 0.65, 2.5, dtype)


def _t(shift: tuple[float, float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(shift, dtype=dtype)


# --------------------------------------------------------------------------- shifting


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("dy, dx", [(0, 0), (1, 0), (0, -3), (5, 7), (-4, 11)])
def test_integer_shift_is_roll(h: int, w: int, dy: int, dx: int) -> None:
    x = torch.rand(h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shifted = F.fourier_shift(x, _t((dy, dx), torch.float64))
    torch.testing.assert_close(shifted, torch.roll(x, (dy, dx), dims=(0, 1)), atol=1e-10, rtol=0)


def test_integer_shift_is_roll_float32() -> None:
    x = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(1))
    shifted = F.fourier_shift(x, _t((2, -5)))
    torch.testing.assert_close(shifted, torch.roll(x, (2, -5), dims=(-2, -1)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("shift", SHIFTS)
def test_subpixel_shift_round_trip(h: int, w: int, shift: tuple[float, float]) -> None:
    x = scene(h, w)
    d = _t(shift)
    there = F.fourier_shift(x, d)
    back = F.fourier_shift(there, -d)
    torch.testing.assert_close(back, x, atol=1e-4, rtol=0)
    # and it moved the image: its centroid follows the shift
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    c0 = torch.stack([(x * yy).sum(), (x * xx).sum()]) / x.sum()
    c1 = torch.stack([(there * yy).sum(), (there * xx).sum()]) / there.sum()
    # (loosely: the blobs' tails wrap around the border)
    torch.testing.assert_close(c1 - c0, d, atol=0.03, rtol=0)


def test_subpixel_shift_matches_a_translated_blob() -> None:
    x = blob(32, 48, 15.0, 20.0, 2.0, torch.float64)
    moved = F.fourier_shift(x, _t((0.5, -1.25), torch.float64))
    torch.testing.assert_close(moved, blob(32, 48, 15.5, 18.75, 2.0, torch.float64), atol=1e-6, rtol=0)


def test_shift_preserves_the_mean() -> None:
    x = torch.rand(2, 32, 48, generator=torch.Generator().manual_seed(2))
    moved = F.fourier_shift(x, torch.tensor([[0.3, -1.7], [2.5, 0.5]]))
    torch.testing.assert_close(moved.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- phase ramp / motion field


@pytest.mark.parametrize("sum_dim", [1, -1])
def test_shift_spectrum_summed_is_the_sum_of_the_shifts(sum_dim: int) -> None:
    # shifts are linear: moving images and summing them over a batch axis, as spectra, is the
    # same as moving each and summing the images (the multi-object masks rely on it)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 5, 16, 12, generator=g, dtype=torch.float64)
    shift = torch.rand(2, 5, 2, generator=g, dtype=torch.float64) * 6 - 3
    each = F.shift_spectrum(torch.fft.rfft2(x), shift, (16, 12))
    summed = F.shift_spectrum(torch.fft.rfft2(x), shift, (16, 12), sum_dim=sum_dim)
    assert summed.shape == (2, 16, 12)
    assert torch.allclose(summed, each.sum(1), atol=1e-12)
    assert not torch.allclose(summed, x.sum(1), atol=1e-3)  # they were moved


def test_phase_ramp_unit_magnitude_and_zero_shift() -> None:
    ramp = F.phase_ramp(_t((1.3, -0.7)), 32, 48)
    assert ramp.shape == (32, 48) and ramp.is_complex()
    torch.testing.assert_close(ramp.abs(), torch.ones(32, 48), atol=1e-6, rtol=0)
    assert ramp[0, 0] == 1
    torch.testing.assert_close(F.phase_ramp(_t((0.0, 0.0)), 8, 6), torch.ones(8, 6, dtype=torch.complex64))


def test_phase_ramp_is_the_fft_of_a_shift() -> None:
    """FFT(later) = FFT(earlier) * T: the convention of the module docstring."""
    x = torch.rand(32, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    later = torch.roll(x, (3, -2), dims=(0, 1))
    ramp = F.phase_ramp(_t((3.0, -2.0), torch.float64), 32, 48)
    torch.testing.assert_close(torch.fft.fft2(later), torch.fft.fft2(x) * ramp, atol=1e-9, rtol=0)


@pytest.mark.parametrize("shift", SHIFTS)
def test_phase_difference_is_the_phase_ramp(shift: tuple[float, float]) -> None:
    x = scene(32, 48, torch.float64)
    d = _t(shift, torch.float64)
    later = F.fourier_shift(x, d)
    pd = F.phase_difference(x, later)
    ramp = F.phase_ramp(d, 32, 48)
    spectrum = torch.fft.fft2(x).abs()
    strong = spectrum > 1e-3 * spectrum.max()
    # the Nyquist row/column of an even size is real after .real, so its phase is not the ramp's
    strong[16, :] = False
    strong[:, 24] = False
    assert strong.sum() > 100
    # same phase; the magnitude is 1 up to the eps of normalise() (|z| / (|z| + eps))
    torch.testing.assert_close(torch.angle(pd[strong] * ramp[strong].conj()),
                               torch.zeros(int(strong.sum()), dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(pd[strong], ramp[strong], atol=1e-4, rtol=0)
    assert (pd.abs() <= 1 + 1e-6).all()


def test_phase_difference_of_an_integer_roll_is_the_ramp_everywhere() -> None:
    x = torch.rand(32, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    later = torch.roll(x, (-3, 5), dims=(0, 1))
    pd = F.phase_difference(x, later)
    torch.testing.assert_close(pd, F.phase_ramp(_t((-3.0, 5.0), torch.float64), 32, 48), atol=1e-6, rtol=0)


def test_cross_power_convention() -> None:
    a = torch.rand(8, 10, dtype=torch.float64)
    b = torch.rand(8, 10, dtype=torch.float64)
    torch.testing.assert_close(F.cross_power(a, b), torch.fft.fft2(b) * torch.fft.fft2(a).conj())


def test_phase_correlation_surface_peaks_at_the_shift() -> None:
    x = torch.rand(32, 48, generator=torch.Generator().manual_seed(5))
    later = torch.roll(x, (4, -7), dims=(0, 1))
    surface = F.phase_correlation_surface(x, later)
    idx = int(surface.argmax())
    assert (idx // 48, idx % 48) == (4, 48 - 7)
    assert surface.max() > 0.99


def test_normalise_zeros_is_finite_zero() -> None:
    z = torch.zeros(4, 5, dtype=torch.complex64)
    out = F.normalise(z)
    assert torch.isfinite(out.real).all() and torch.isfinite(out.imag).all()
    assert (out == 0).all()
    # and the phase difference of two blank images is finite too
    pd = F.phase_difference(torch.zeros(8, 8), torch.zeros(8, 8))
    assert torch.isfinite(pd.real).all() and torch.isfinite(pd.imag).all()
    assert torch.isfinite(F.phase_correlation_surface(torch.zeros(8, 8), torch.zeros(8, 8))).all()


def test_normalise_gives_unit_magnitude() -> None:
    z = torch.complex(torch.randn(6, 7, dtype=torch.float64), torch.randn(6, 7, dtype=torch.float64)) * 10
    out = F.normalise(z)
    torch.testing.assert_close(out.abs(), torch.ones(6, 7, dtype=torch.float64), atol=1e-7, rtol=0)
    torch.testing.assert_close(torch.angle(out), torch.angle(z))


# --------------------------------------------------------------------------- shift estimation


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("shift", SHIFTS)
def test_estimate_shift_recovers_a_subpixel_shift(h: int, w: int, shift: tuple[float, float]) -> None:
    x = scene(h, w)
    d = _t(shift)
    later = F.fourier_shift(x, d)
    motion = F.phase_difference(x, later)
    weight = F.cross_power(x, later).abs()
    torch.testing.assert_close(F.estimate_shift(motion, weight), d, atol=0.02, rtol=0)
    torch.testing.assert_close(F.estimate_shift(motion), d, atol=0.02, rtol=0)


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("shift", SHIFTS)
def test_correlation_peak_recovers_a_subpixel_shift(h: int, w: int, shift: tuple[float, float]) -> None:
    x = scene(h, w)
    d = _t(shift)
    motion = F.phase_difference(x, F.fourier_shift(x, d))
    torch.testing.assert_close(F.correlation_peak(motion), d, atol=0.02, rtol=0)


@pytest.mark.parametrize("shift", [(0.5, -0.5), (-1.5, 2.25), (3.3, -0.1)])
def test_both_estimators_on_a_truly_translated_blob(shift: tuple[float, float]) -> None:
    """Not the FFT's own shift: the blob is re-drawn at the new position."""
    x = blob(32, 48, 15.2, 22.6, 1.5, torch.float64)
    later = blob(32, 48, 15.2 + shift[0], 22.6 + shift[1], 1.5, torch.float64)
    motion = F.phase_difference(x, later)
    d = _t(shift, torch.float64)
    weight = F.cross_power(x, later).abs()
    torch.testing.assert_close(F.estimate_shift(motion, weight), d, atol=0.02, rtol=0)
    torch.testing.assert_close(F.correlation_peak(motion).double(), d, atol=0.02, rtol=0)


@pytest.mark.parametrize("h, w", SIZES + [(5, 4), (2, 3)])
def test_estimators_on_exact_ramps(h: int, w: int) -> None:
    """Odd sizes included: there the pair of neighbours that straddles the wrap is (n-1)/2, (n+1)/2."""
    shifts = torch.tensor([[0.0, 0.0], [0.5, -0.5], [-3.25, 7.75], [10.0, -12.5], [0.3, 0.7]],
                          dtype=torch.float64)
    # in range: |shift| < n/2 (larger shifts alias)
    shifts = shifts[(shifts[:, 0].abs() < h / 2 - 0.3) & (shifts[:, 1].abs() < w / 2 - 0.3)]
    ramps = F.phase_ramp(shifts, h, w)
    torch.testing.assert_close(F.estimate_shift(ramps), shifts, atol=1e-6, rtol=0)
    torch.testing.assert_close(F.correlation_peak(ramps).double(), shifts, atol=0.006, rtol=0)


def test_correlation_peak_ignores_a_weaker_static_background() -> None:
    h, w = 32, 48
    fg0 = blob(h, w, 10.0, 12.0, 1.5)
    bg = 0.4 * blob(h, w, 22.0, 34.0, 1.5)
    d = _t((1.5, 2.5))
    earlier = fg0 + bg
    later = F.fourier_shift(fg0, d) + bg
    peak = F.correlation_peak(F.phase_difference(earlier, later))
    torch.testing.assert_close(peak, d, atol=0.05, rtol=0)


# --------------------------------------------------------------------------- phase filter


@pytest.mark.parametrize("shift", [(0.5, -0.5), (-2.25, 1.75)])
def test_phase_filter_gain_one_is_the_pure_ramp(shift: tuple[float, float]) -> None:
    x = scene(32, 48, torch.float64)
    d = _t(shift, torch.float64)
    later = F.fourier_shift(x, d)
    motion = F.phase_difference(x, later)
    exact, est = F.phase_filter(motion, weight=F.cross_power(x, later).abs(), gain=1.0)
    torch.testing.assert_close(est, d, atol=1e-6, rtol=0)
    torch.testing.assert_close(exact, F.phase_ramp(d, 32, 48), atol=1e-6, rtol=0)
    # a noisy motion field: the filter must return a clean linear ramp
    noise = torch.polar(torch.ones(32, 48, dtype=torch.float64),
                        0.05 * torch.randn(32, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(6)))
    filtered, est = F.phase_filter(motion * noise, gain=1.0)
    assert filtered.shape == (32, 48)
    torch.testing.assert_close(est, d, atol=0.02, rtol=0)
    torch.testing.assert_close(filtered.abs(), torch.ones(32, 48, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(filtered, F.phase_ramp(est, 32, 48), atol=1e-6, rtol=0)
    # linear: the phase increment is the same between every pair of neighbours (Nyquist pair excepted)
    inc_x = filtered[:, 1:24] * filtered[:, :23].conj()
    torch.testing.assert_close(inc_x, inc_x[:1, :1].expand_as(inc_x), atol=1e-6, rtol=0)


def test_phase_filter_gain_zero_keeps_the_field() -> None:
    motion = F.phase_ramp(_t((1.0, 2.0), torch.float64), 16, 16) * torch.polar(
        torch.ones(16, 16, dtype=torch.float64), 0.2 * torch.randn(16, 16, dtype=torch.float64))
    filtered, _ = F.phase_filter(motion, gain=0.0)
    torch.testing.assert_close(filtered, motion, atol=1e-6, rtol=0)


def test_phase_filter_batched_gain() -> None:
    shifts = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-1.5, -1.5]], dtype=torch.float64)
    ramps = F.phase_ramp(shifts, 16, 24)
    noisy = ramps * torch.polar(torch.ones_like(ramps.real),
                                0.2 * torch.randn(3, 16, 24, dtype=torch.float64,
                                                  generator=torch.Generator().manual_seed(7)))
    gain = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    filtered, est = F.phase_filter(noisy, gain=gain)
    assert filtered.shape == (3, 16, 24) and est.shape == (3, 2)
    torch.testing.assert_close(est, shifts, atol=0.05, rtol=0)
    torch.testing.assert_close(filtered[0], noisy[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(filtered[1], F.phase_ramp(est[1], 16, 24), atol=1e-6, rtol=0)
    torch.testing.assert_close(filtered.abs(), torch.ones(3, 16, 24, dtype=torch.float64), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_gaussian_blur_preserves_the_mean(sigma: float) -> None:
    x = torch.rand(2, 32, 48, generator=torch.Generator().manual_seed(8))
    blurred = F.gaussian_blur(x, sigma)
    assert blurred.shape == x.shape
    torch.testing.assert_close(blurred.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=1e-5, rtol=0)
    assert blurred.std() < x.std()


def test_gaussian_blur_of_a_delta_is_a_gaussian() -> None:
    x = torch.zeros(64, 64, dtype=torch.float64)
    x[32, 32] = 1.0
    blurred = F.gaussian_blur(x, 2.0)
    ref = blob(64, 64, 32.0, 32.0, 2.0, torch.float64)
    torch.testing.assert_close(blurred, ref / ref.sum(), atol=1e-8, rtol=0)


def test_gaussian_response_at_dc() -> None:
    resp = F.gaussian_response(16, 24, 2.0)
    assert resp.shape == (16, 24)
    assert resp[0, 0] == 1.0 and (resp <= 1).all() and (resp > 0).all()


def test_difference_of_gaussians_of_a_constant_is_zero() -> None:
    x = torch.full((2, 32, 48), 0.7)
    dog = F.difference_of_gaussians(x, 1.0, 4.0)
    assert dog.shape == x.shape
    assert dog.abs().max() < 1e-5


def test_difference_of_gaussians_is_positive_inside_a_blob() -> None:
    x = blob(64, 64, 32.0, 32.0, 4.0)
    dog = F.difference_of_gaussians(x, 1.0, 6.0)
    assert dog[32, 32] > 0
    assert dog[32, 32] == dog.max()


# --------------------------------------------------------------------------- batches and shapes


@pytest.mark.parametrize("h, w", [(32, 48), (45, 31)])
def test_everything_works_batched(h: int, w: int) -> None:
    shifts = torch.tensor([[0.5, -0.5], [-2.25, 1.0], [1.5, 3.75]])
    x = scene(h, w).expand(3, h, w).clone()
    later = F.fourier_shift(x, shifts)
    assert later.shape == (3, h, w)
    for b in range(3):
        torch.testing.assert_close(later[b], F.fourier_shift(x[b], shifts[b]))
    motion = F.phase_difference(x, later)
    assert motion.shape == (3, h, w)
    weight = F.cross_power(x, later).abs()
    est = F.estimate_shift(motion, weight)
    peak = F.correlation_peak(motion)
    assert est.shape == (3, 2) and peak.shape == (3, 2)
    torch.testing.assert_close(est, shifts, atol=0.02, rtol=0)
    torch.testing.assert_close(peak, shifts, atol=0.02, rtol=0)
    for b in range(3):
        torch.testing.assert_close(est[b], F.estimate_shift(motion[b], weight[b]), atol=1e-5, rtol=0)
        torch.testing.assert_close(peak[b], F.correlation_peak(motion[b]), atol=1e-5, rtol=0)
    filtered, shift = F.phase_filter(motion, weight)
    assert filtered.shape == (3, h, w) and shift.shape == (3, 2)
    assert F.gaussian_blur(x, 1.0).shape == (3, h, w)
    assert F.difference_of_gaussians(x, 1.0, 2.0).shape == (3, h, w)
    assert F.phase_correlation_surface(x, later).shape == (3, h, w)


def test_extra_leading_dimensions() -> None:
    x = scene(24, 40).expand(2, 3, 24, 40).clone()
    shifts = torch.tensor([0.5, -1.5]).expand(2, 3, 2).clone()
    later = F.fourier_shift(x, shifts)
    motion = F.phase_difference(x, later)
    assert F.estimate_shift(motion).shape == (2, 3, 2)
    peak = F.correlation_peak(motion)
    assert peak.shape == (2, 3, 2)
    torch.testing.assert_close(peak, shifts, atol=0.02, rtol=0)


def test_frequencies() -> None:
    fy, fx = F.frequencies(4, 5)
    assert fy.shape == (4, 1) and fx.shape == (1, 5)
    torch.testing.assert_close(fy.flatten(), torch.tensor([0.0, 0.25, -0.5, -0.25]))
    torch.testing.assert_close(fx.flatten(), torch.tensor([0.0, 0.2, 0.4, -0.4, -0.2]))
    assert math.isclose(float(F.frequencies(6, 6, dtype=torch.float64)[0].max()), 1 / 3)


@pytest.mark.parametrize("h, w", [(64, 64), (63, 65), (64, 63), (63, 64), (2, 2)])
def test_real_shift_matches_fourier_shift(h: int, w: int) -> None:
    # the half-spectrum shift must equal the full one also at the Nyquist row, column and corner
    torch.manual_seed(0)
    x = torch.rand(3, 1, h, w)
    shift = torch.randn(3, 5, 2) * 3
    expected = F.fourier_shift(x.expand(-1, 5, -1, -1), shift)
    assert torch.allclose(F.real_shift(x, shift), expected, atol=1e-5)


# -- the paper's averaging phase filter and the safe phase of a spectrum ------------------------

@pytest.mark.parametrize("shift", [(1.5, -2.25), (0.0, 3.0), (-4.5, 0.5)])
def test_averaging_phase_filter_leaves_a_ramp_unchanged(shift: tuple[float, float]) -> None:
    ramp = F.phase_ramp(torch.tensor(shift), 32, 48)
    out = F.averaging_phase_filter(ramp, gain=1.0)
    # the entry after the Nyquist wrap keeps its value, every other one is rebuilt exactly
    torch.testing.assert_close(out, ramp, atol=1e-5, rtol=0)


def test_averaging_phase_filter_gain_zero_is_the_identity() -> None:
    noisy = F.normalise(torch.randn(24, 24, dtype=torch.complex64, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(F.averaging_phase_filter(noisy, gain=0.0), noisy, atol=1e-6, rtol=0)


def test_averaging_phase_filter_pulls_a_noisy_ramp_towards_the_ramp() -> None:
    g = torch.Generator().manual_seed(1)
    ramp = F.phase_ramp(torch.tensor([2.0, -1.0]), 64, 64)
    noise = torch.polar(torch.ones(64, 64), 0.8 * torch.randn(64, 64, generator=g))
    noisy = ramp * noise
    out = F.averaging_phase_filter(noisy, gain=0.5)
    before = (noisy - ramp).abs().mean()
    after = (out - ramp).abs().mean()
    assert after < 0.8 * before, (float(before), float(after))
    # the mean phase increment, and with it the shift, is kept
    torch.testing.assert_close(F.estimate_shift(out), torch.tensor([2.0, -1.0]), atol=0.1, rtol=0)


def test_unit_spectrum_has_finite_gradients_where_the_spectrum_vanishes() -> None:
    z = torch.zeros(8, 8, dtype=torch.complex64, requires_grad=True)
    out = F.unit_spectrum(z)
    out.real.sum().backward()
    assert torch.isfinite(torch.view_as_real(z.grad)).all()
    strong = torch.full((4, 4), 3 + 4j, dtype=torch.complex64)
    strong[0, 0] = 1e-9  # far below the floor: faded out, not blown up to unit length
    u = F.unit_spectrum(strong)
    torch.testing.assert_close(u[1, 1], torch.tensor(0.6 + 0.8j), atol=1e-5, rtol=0)
    assert float(u[0, 0].abs()) < 1e-3


def _spectrum_with_a_weak_frequency() -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    cross = torch.complex(torch.randn(8, 8, generator=g), torch.randn(8, 8, generator=g)).to(torch.complex128)
    cross[2, 3] = 1e-4 * (1 + 1j)  # weak (1e-4 of the others) but above unit_spectrum's own floor of 1e-6
    return cross


def test_gradient_floor_keeps_the_values_and_damps_the_gradient_of_weak_frequencies() -> None:
    """Values bit-identical; the weak frequency's gradient is that of the higher floor (over 100 times smaller)."""
    cross = _spectrum_with_a_weak_frequency().requires_grad_(True)
    exact = F.unit_spectrum(cross)
    (grad_exact,) = torch.autograd.grad(exact.real.sum(), cross)
    with F.gradient_floor(0.01):
        floored = F.unit_spectrum(cross)
    (grad_floored,) = torch.autograd.grad(floored.real.sum(), cross)
    assert torch.equal(floored.detach(), exact.detach())
    peak = cross.detach().abs().amax()
    (grad_smooth,) = torch.autograd.grad(F.normalise(cross, 0.01 * peak + F.EPS).real.sum(), cross)
    torch.testing.assert_close(grad_floored, grad_smooth)
    assert float(grad_exact[2, 3].abs()) > 100 * float(grad_floored[2, 3].abs())
    # outside the block, and below the function's own floor, the gradient is exact again
    (again,) = torch.autograd.grad(F.unit_spectrum(cross).real.sum(), cross)
    torch.testing.assert_close(again, grad_exact)
    with F.gradient_floor(1e-7):
        (below,) = torch.autograd.grad(F.unit_spectrum(cross).real.sum(), cross)
    torch.testing.assert_close(below, grad_exact)


@pytest.mark.parametrize("floor", [0.0, 1.0, -1e-3])
def test_gradient_floor_outside_zero_to_one_is_refused(floor: float) -> None:
    with pytest.raises(ValueError, match=r"fraction of the spectrum's peak in \(0, 1\)"):
        with F.gradient_floor(floor):
            pass


def test_normalise_is_smooth_at_zero() -> None:
    z = torch.zeros(3, dtype=torch.complex64, requires_grad=True)
    F.normalise(z).real.sum().backward()
    assert torch.isfinite(torch.view_as_real(z.grad)).all()


# --------------------------------------------------------------------------- weights and floors (issue 23)


def test_a_frequency_of_zero_weight_does_not_move_the_estimate() -> None:
    """Each phase increment is weighted by both of its frequencies: garbage where the weight is zero is ignored."""
    shift = torch.tensor([1.25, -2.5], dtype=torch.float64)
    ramp = F.phase_ramp(shift, 16, 24)
    spoiled = ramp.clone()
    spoiled[3, 5] = torch.polar(torch.tensor(1.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
    weight = torch.ones(16, 24, dtype=torch.float64)
    weight[3, 5] = 0.0
    torch.testing.assert_close(F.estimate_shift(spoiled, weight), shift, atol=1e-9, rtol=0)


@pytest.mark.parametrize("scale", [1e3, 1e6])
def test_unit_spectrum_floor_is_relative_to_the_peak(scale: float) -> None:
    """A brighter copy of a spectrum is faded alike: the floor is a share of the peak (EPS aside)."""
    g = torch.Generator().manual_seed(2)
    cross = torch.complex(torch.randn(8, 8, generator=g), torch.randn(8, 8, generator=g)).to(torch.complex128)
    cross[0, 0] = 1e-8  # far below 1e-6 of the peak: faded out at every scale
    torch.testing.assert_close(F.unit_spectrum(cross * scale), F.unit_spectrum(cross), atol=1e-4, rtol=0)
    assert float(F.unit_spectrum(cross * scale)[1, 1].abs()) == pytest.approx(1.0, abs=1e-6)


def test_correlation_peak_is_finer_than_its_first_grid() -> None:
    """Shifts off the 0.05 px grid of the first round: the second, finer round finds them to 0.004 px."""
    shifts = torch.tensor([[0.337, -1.113], [-2.781, 3.019], [5.466, -0.2222]], dtype=torch.float64)
    torch.testing.assert_close(F.correlation_peak(F.phase_ramp(shifts, 32, 48)).double(), shifts, atol=0.004, rtol=0)


def test_correlation_peak_reports_shifts_in_the_range_of_estimate_shift() -> None:
    """A displacement of about half the frame is ambiguous; both estimators call it -n/2 .. n/2, not n/2 .. n."""
    shift = torch.tensor([-15.75, 0.0], dtype=torch.float64)  # its integer peak lies at row 16 = h / 2
    ramp = F.phase_ramp(shift, 32, 48)
    torch.testing.assert_close(F.estimate_shift(ramp), shift, atol=1e-6, rtol=0)
    torch.testing.assert_close(F.correlation_peak(ramp).double(), shift, atol=0.006, rtol=0)


def test_averaging_phase_filter_weights_are_relative() -> None:
    """Spectral energy of a dim or a bright frame weighs the increments alike."""
    g = torch.Generator().manual_seed(3)
    ramp = F.phase_ramp(torch.tensor([1.5, -0.5]), 32, 32)
    noisy = ramp * torch.polar(torch.ones(32, 32), 0.5 * torch.randn(32, 32, generator=g))
    weight = torch.rand(32, 32, generator=g)
    out = F.averaging_phase_filter(noisy, gain=0.5, weight=weight)
    for scale in (1e-6, 1e4):
        torch.testing.assert_close(F.averaging_phase_filter(noisy, gain=0.5, weight=weight * scale), out,
                                   atol=1e-5, rtol=0)


def test_averaging_phase_filter_works_along_both_axes() -> None:
    """Noise that changes only along x (every row alike) is reduced too: the filter runs along each axis."""
    g = torch.Generator().manual_seed(4)
    ramp = F.phase_ramp(torch.tensor([2.0, -1.0]), 64, 64)
    noisy = ramp * torch.polar(torch.ones(64, 64), 0.8 * torch.randn(1, 64, generator=g).expand(64, 64))
    out = F.averaging_phase_filter(noisy, gain=0.5)
    assert (out - ramp).abs().mean() < 0.8 * (noisy - ramp).abs().mean()


def test_correlation_peak_of_rounding_noise_is_no_motion() -> None:
    """Frames that did not change but for rounding: their motion field is almost zero and says nothing."""
    g = torch.Generator().manual_seed(5)
    noise = torch.complex(torch.randn(2, 32, 48, generator=g), torch.randn(2, 32, 48, generator=g)) * 1e-9
    torch.testing.assert_close(F.correlation_peak(noise), torch.zeros(2, 2), atol=0, rtol=0)


def _two_objects(shift_a: tuple[float, float], shift_b: tuple[float, float], size: int = 64
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two textured squares on black, and the same squares each moved by its own whole-pixel shift."""
    g = torch.Generator().manual_seed(3)
    a, b = torch.zeros(size, size), torch.zeros(size, size)
    a[8:24, 10:26] = torch.rand(16, 16, generator=g)
    b[36:52, 34:50] = 0.5 * torch.rand(16, 16, generator=g)  # weaker: its peak comes second
    moved = torch.roll(a, (int(shift_a[0]), int(shift_a[1])), (0, 1)) + torch.roll(b, (int(shift_b[0]), int(shift_b[1])), (0, 1))
    return a + b, moved


def test_correlation_peaks_find_two_motions_strongest_first() -> None:
    earlier, later = _two_objects((2, -3), (-4, 1))
    places, heights = F.correlation_peaks(F.phase_difference(earlier, later), k=2)
    torch.testing.assert_close(places, torch.tensor([[2.0, -3.0], [-4.0, 1.0]]), atol=0.05, rtol=0)
    assert heights[0] > heights[1] > 0.1
    # one peak only: the same as correlation_peak
    torch.testing.assert_close(F.correlation_peaks(F.phase_difference(earlier, later), k=1)[0][0],
                               F.correlation_peak(F.phase_difference(earlier, later)))


def test_correlation_peaks_skip_a_peaks_own_neighbourhood() -> None:
    # a half-pixel shift spreads its peak over two pixels: without the separation the second
    # "peak" is the first one's other half, half a pixel from it
    earlier, later = _two_objects((0, -3), (-4, 1))
    a_part = torch.zeros(64, 64)
    a_part[8:24, 10:26] = 1.0
    later = later + F.fourier_shift(earlier * a_part, torch.tensor([2.5, -3.0])) - torch.roll(earlier * a_part, (0, -3), (0, 1))
    motion = F.phase_difference(earlier, later)
    first, near = F.correlation_peaks(motion, k=2, separation=0.0)[0]
    torch.testing.assert_close(first, torch.tensor([2.5, -3.0]), atol=0.05, rtol=0)
    assert (near - first).abs().max() <= 1.0
    far = F.correlation_peaks(motion, k=2, separation=2.0)[0][1]
    torch.testing.assert_close(far, torch.tensor([-4.0, 1.0]), atol=0.05, rtol=0)


def test_correlation_peaks_batched_flat_and_bad_arguments() -> None:
    earlier, later = _two_objects((1, 1), (0, -2))
    motion = torch.stack([F.phase_difference(earlier, later), torch.zeros(64, 64, dtype=torch.complex64)])
    places, heights = F.correlation_peaks(motion, k=3)
    assert places.shape == (2, 3, 2) and heights.shape == (2, 3)
    assert torch.isfinite(places).all() and (places[1] == 0).all() and (heights[1] == 0).all()
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            F.correlation_peaks(motion, k=bad)
    with pytest.raises(ValueError, match="separation must be >= 0"):
        F.correlation_peaks(motion, k=2, separation=float("nan"))
