"""Tests of the cycle as first read (motionseg.cycle, the base of our models), at 64 x 64 to stay fast."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from motionseg import fourier, zoo
from motionseg.cycle import N_INIT, CycleModel, Layers, Options, count_gains, count_parameters
from scenes import copy_last_mse, digits, moving_square, mse

SIZE = 64
N_SEED = 10


@pytest.fixture(scope="module")
def seqs() -> dict[str, torch.Tensor]:
    return digits(8, SIZE)


@pytest.fixture(scope="module")
def model() -> CycleModel:
    return CycleModel().eval()


def rand_frames(b: int = 2, s: int = N_SEED, h: int = SIZE, w: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, s, h, w, generator=torch.Generator().manual_seed(seed))


# -- the step the paper names: a hard-wired gradient ------------------------------------------

def test_correction_is_the_gradient_of_the_squared_error() -> None:
    # The paper hard-wires the gradient of 0.5 * (F_hat - F)**2 instead of calling autograd;
    # each state then takes one step of its gain. Compare with autograd on random states.
    torch.manual_seed(0)
    model = CycleModel(Options(dog=False))
    fg, bg = torch.rand(2, 16, 16, requires_grad=True), torch.rand(2, 16, 16, requires_grad=True)
    alpha = (0.1 + 0.8 * torch.rand(2, 16, 16)).requires_grad_()  # inside (0, 1): no clamping
    obs = torch.rand(2, 16, 16)
    loss = 0.5 * ((alpha * fg + (1 - alpha) * bg - obs) ** 2).sum()
    g_fg, g_bg, g_alpha = torch.autograd.grad(loss, (fg, bg, alpha))
    t = 4
    new = model.correct(Layers(fg=fg, bg=bg, alpha=alpha), obs, t)
    with torch.no_grad():
        torch.testing.assert_close(new.fg, fg - model.gain("fg", t) * g_fg)
        torch.testing.assert_close(new.bg, bg - model.gain("bg", t) * g_bg)
        torch.testing.assert_close(new.alpha, (alpha - model.gain("alpha", t) * g_alpha).clamp(0, 1))


def test_motion_update_of_exactly_moved_layers_is_that_motion() -> None:
    # If A and FG moved by v between two steps, T~ is the ramp of v wherever they have energy,
    # and averaging it into a T that already is that ramp leaves it there.
    seq = moving_square(3, SIZE, canvas_step=(2, -4))  # (1, -2) px/frame: whole pixels, no Nyquist ambiguity
    v = seq["velocity"]
    before = Layers(fg=seq["premult"][:, 0], bg=seq["bg"], alpha=seq["alpha"][:, 0])
    after = Layers(fg=fourier.fourier_shift(before.fg, v), bg=seq["bg"], alpha=fourier.fourier_shift(before.alpha, v))
    model = CycleModel()
    with torch.no_grad():
        first = model.update_motion(before, after, None, N_INIT)
        again = model.update_motion(before, after, first, N_INIT + 1)
    torch.testing.assert_close(fourier.estimate_shift(first), v, atol=0.02, rtol=0)
    torch.testing.assert_close(fourier.estimate_shift(again), v, atol=0.02, rtol=0)
    moved = fourier.apply_motion(before.alpha, again)
    assert float((moved - after.alpha).abs().mean()) < 0.01


def test_prediction_moves_fg_and_alpha_but_not_bg() -> None:
    seq = moving_square(2, SIZE, canvas_step=2)
    v = seq["velocity"]
    fg, alpha = CycleModel.predict_layers(seq["premult"][:, 0], seq["alpha"][:, 0], fourier.phase_ramp(v, SIZE, SIZE))
    torch.testing.assert_close(alpha, seq["alpha"][:, 1], atol=1e-4, rtol=0)
    torch.testing.assert_close(fg, seq["premult"][:, 1], atol=1e-4, rtol=0)


# -- behaviour ---------------------------------------------------------------------------------

def test_hand_set_gains_beat_copy_last_on_digit_sequences(model: CycleModel, seqs: dict) -> None:
    with torch.no_grad():
        pred = model(seqs["frames"][:, :N_SEED], 10)
    ratio = mse(pred, seqs["frames"]) / copy_last_mse(seqs["frames"])
    assert ratio < 0.5, ratio  # measured 0.40


def test_phase_filter_matters_on_digit_sequences(seqs: dict) -> None:
    # Fig. 2(c): without the phase filter the motion field is noise-dominated
    results = {}
    for on in (True, False):
        with torch.no_grad():
            results[on] = mse(CycleModel(Options(phase_filter=on))(seqs["frames"][:, :N_SEED], 10), seqs["frames"])
    assert results[True] < 0.9 * results[False], results


# -- shapes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("s", [10, 3])
@pytest.mark.parametrize("n_future", [0, 1, 15])
def test_output_shape_dtype_range(model: CycleModel, seqs: dict, s: int, n_future: int) -> None:
    with torch.no_grad():
        y = model(seqs["frames"][:2, :s], n_future)
    assert y.shape == (2, n_future, SIZE, SIZE) and y.dtype == torch.float32
    assert torch.isfinite(y).all() and (y.numel() == 0 or (float(y.min()) >= 0 and float(y.max()) <= 1))


def test_non_square_frames_and_states(model: CycleModel) -> None:
    with torch.no_grad():
        y, states = model.run(rand_frames(2, 10, 64, 96), 5, keep_states=True)
    st = states.stacked()
    assert y.shape == (2, 5, 64, 96)
    for k in ("fg", "bg", "alpha", "frame"):
        assert st[k].shape == (2, 9 + 5, 64, 96), k
    assert st["motion"].is_complex() and st["velocity"].shape == (2, 14, 2)
    assert torch.equal(st["frame"][:, 9:], y)


def test_numpy_integer_n_future_and_float64_input(model: CycleModel, seqs: dict) -> None:
    with torch.no_grad():
        y = model(seqs["frames"][:1, :N_SEED].double(), np.int64(2))
    assert y.shape == (1, 2, SIZE, SIZE) and y.dtype == torch.float32


def test_no_states_without_keep(model: CycleModel, seqs: dict) -> None:
    with torch.no_grad():
        _, states = model.run(seqs["frames"][:1, :N_SEED], 2)
    assert states.stacked() == {}


# -- bad input ---------------------------------------------------------------------------------

def _with(value: float) -> torch.Tensor:
    x = rand_frames(1)
    x[0, 3, 5, 5] = value
    return x


@pytest.mark.parametrize("make, n_future, match", [
    (lambda: rand_frames(1)[0], 10, "rank 4"),
    (lambda: rand_frames(1, 2), 10, "at least 3 seed frames"),
    (lambda: _with(float("nan")), 10, "NaN"),
    (lambda: _with(float("inf")), 10, "inf"),
    (lambda: rand_frames(1) - 0.5, 10, r"\[0, 1\]"),
    (lambda: (rand_frames(1) * 255).to(torch.uint8), 10, "floating-point"),
    (lambda: rand_frames(1), -1, "n_future"),
    (lambda: rand_frames(1), True, "bool"),
    (lambda: rand_frames(1), 2.5, "n_future"),
    (lambda: rand_frames(1), 10 ** 9, "GiB"),
], ids=["rank3", "two_seed_frames", "nan", "inf", "below_0", "uint8", "negative", "bool", "float", "huge"])
def test_bad_input_raises(model: CycleModel, make, n_future, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        model(make(), n_future)


def test_bad_options_name_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="combine.*'mean', 'alpha'"):
        Options(combine="median")
    with pytest.raises(ValueError, match="True or False"):
        Options(dog=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown options.*nope"):
        CycleModel({"nope": True})


# -- degenerate input --------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_constant_frames_give_that_constant(model: CycleModel, value: float) -> None:
    x = torch.full((2, N_SEED, SIZE, SIZE), value)
    with torch.no_grad():
        y, states = model.run(x, 10, keep_states=True)
    for k, v in states.stacked().items():
        assert torch.isfinite(torch.view_as_real(v) if v.is_complex() else v).all(), k
    torch.testing.assert_close(y, torch.full_like(y, value), atol=1e-3, rtol=0)


def test_static_sequence_predicts_the_last_frame(model: CycleModel) -> None:
    x = rand_frames(2, 1).expand(-1, N_SEED, -1, -1).contiguous()
    with torch.no_grad():
        y, states = model.run(x, 10, keep_states=True)
    assert (y - x[:, -1:]).abs().max() < 1e-3
    assert states.stacked()["velocity"].abs().max() < 1e-3


# -- gains -------------------------------------------------------------------------------------

def test_gradients_reach_every_gain_used(seqs: dict) -> None:
    m = CycleModel()
    f = seqs["frames"][:2]
    loss = ((m(f[:, :N_SEED], 10) - f[:, N_SEED:]) ** 2).mean()
    loss.backward()
    for name, p in m.gains.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert (p.grad != 0).any(), name
        # the roll-out after the seed frames uses no gains
        assert (p.grad[N_SEED:] == 0).all() if len(p) == 20 else True, name


def test_gain_counts_follow_the_authors_structure() -> None:
    m = CycleModel()
    assert count_parameters(m) == 0
    shapes = {k: tuple(v.shape) for k, v in m.gains.items()}
    # authors: 3x20 state updates, 7x2 initialisation, 1x20 T update, 1x20 smoothing, 4x20 DoG (194);
    # our initialisation has one gain per initialising step
    assert shapes == {"fg": (20,), "bg": (20,), "alpha": (20,), "init_alpha": (2,), "motion": (20,),
                      "phase_filter": (20,), "dog": (20, 4)}
    assert count_gains(m) == 182
    assert count_gains(CycleModel(Options(dog=False))) == 102
