"""The paper's zero-parameter model (src/motionseg/zero_param.py): each step of its cycle."""
from __future__ import annotations

import math

import pytest
import torch

from motionseg import data, fourier
from motionseg.states import Layers
from motionseg.zero_param import GAIN_SHAPES, Options, ZeroParamModel, count_gains, count_parameters, soft_clamp

BIG = 30.0  # a logit whose sigmoid is 1 to float precision


def _model(**options: object) -> ZeroParamModel:
    return ZeroParamModel(Options(**options)).eval()


def _sequences(n: int = 2) -> torch.Tensor:
    return torch.from_numpy(data.make_sequences(n, split="train", seed=7)["frames"])


def test_gains_have_the_release_names_and_shapes() -> None:
    model = ZeroParamModel()
    assert {k: tuple(v.shape) for k, v in model.gains.items()} == GAIN_SHAPES
    assert count_gains(model) == 194 and count_parameters(model) == 0
    assert all(float(v.detach().abs().max()) == 0.0 for v in model.gains.values())  # started at 0, as the authors did


def test_correction_with_unit_gains_reaches_the_observation() -> None:
    model = _model(dog=False)
    with torch.no_grad():
        model.gains["learnableGains"][:, 3] = BIG  # g = 1 for FG, BG and A at frame 3
    obs = torch.rand(1, 16, 16)
    ones = torch.ones(1, 16, 16)
    # A = 1: the error is FG - F, so one full step puts FG on the observation
    out = model.correct(Layers(fg=torch.full_like(obs, 0.5), bg=torch.zeros_like(obs), alpha=ones), obs, 3)
    torch.testing.assert_close(out.fg, obs)
    # A = 0: the same for BG
    out = model.correct(Layers(fg=torch.zeros_like(obs), bg=torch.full_like(obs, 0.5), alpha=0 * ones), obs, 3)
    torch.testing.assert_close(out.bg, obs)


def test_alpha_moves_towards_the_layer_that_explains_the_frame() -> None:
    model = _model(dog=False)
    with torch.no_grad():
        model.gains["learnableGains"][:, 0] = BIG
    fg, bg = torch.ones(1, 8, 8), torch.zeros(1, 8, 8)
    half = torch.full((1, 8, 8), 0.5)
    with torch.no_grad():
        grown = model.correct(Layers(fg=fg, bg=bg, alpha=half), torch.ones(1, 8, 8), 0).alpha
        shrunk = model.correct(Layers(fg=fg, bg=bg, alpha=half), torch.zeros(1, 8, 8), 0).alpha
    assert float(grown.min()) > float(soft_clamp(half).max()) > float(shrunk.max())


def test_rows_choose_which_state_each_gain_corrects() -> None:
    fg_first, a_first = _model(), _model(rows="a,fg,bg")
    for m in (fg_first, a_first):
        with torch.no_grad():
            m.gains["learnableGains"][0, 2] = 5.0
    assert float(fg_first.correction_gain("fg", 2).detach()) == pytest.approx(1 / (1 + math.exp(-5)))
    assert float(a_first.correction_gain("alpha", 2).detach()) == pytest.approx(1 / (1 + math.exp(-5)))
    assert float(a_first.correction_gain("fg", 2).detach()) == 0.5


def test_dog_uses_its_four_gains_in_order() -> None:
    model = _model()
    alpha = torch.zeros(1, 32, 32)
    alpha[:, 12:20, 12:20] = 1.0
    with torch.no_grad():
        model.gains["learnableGainsDOG"][:, 4] = torch.tensor([6.0, 1.0, 2.0, 0.3])
    out = model.filter_alpha(alpha, 4)
    surround, centre = fourier.gaussian_blur(alpha, 6.0 + 1e-3), fourier.gaussian_blur(alpha, 1.0 + 1e-3)
    torch.testing.assert_close(out, soft_clamp(alpha + 2.0 * (centre - surround) + 0.3), atol=1e-5, rtol=0)
    assert not torch.equal(_model(dog_bias=False).filter_alpha(alpha, 4), out)


def test_motion_measured_between_two_states_is_their_shift() -> None:
    model = _model()
    img = torch.zeros(1, 64, 64)
    img[:, 20:34, 24:36] = torch.rand(14, 12)
    moved = fourier.fourier_shift(img, torch.tensor([[2.0, -1.0]]))
    before, after = Layers(fg=img, bg=img, alpha=img), Layers(fg=moved, bg=moved, alpha=moved)
    motion, energy = model.measure_motion(before, after, 3)
    assert fourier.correlation_peak(motion)[0].tolist() == pytest.approx([2.0, -1.0], abs=0.05)
    assert float(energy.min().detach()) >= 0
    fg, _ = model.predict_layers(img, img, motion)
    torch.testing.assert_close(fg, moved, atol=1e-3, rtol=0)


def test_phase_filter_keeps_a_translation_and_cleans_noise() -> None:
    ramp = fourier.phase_ramp(torch.tensor([[3.0, -2.0]]), 64, 64)
    torch.testing.assert_close(fourier.two_sided_phase_filter(ramp), ramp, atol=1e-4, rtol=0)
    gen = torch.Generator().manual_seed(0)
    noisy = fourier.normalise(ramp * torch.polar(torch.ones(64, 64), 0.8 * torch.randn(64, 64, generator=gen)))
    filtered = fourier.two_sided_phase_filter(noisy)
    assert float((filtered - ramp).abs().mean()) < 0.7 * float((noisy - ramp).abs().mean())


def test_seed_columns_are_used_and_later_columns_not() -> None:
    x = _sequences(1)[:, :10]
    model = _model()
    base = model(x, 3)
    for col, changes in ((9, True), (10, False)):
        other = _model()
        with torch.no_grad():
            other.gains["learnableGains"][:, col] = 3.0
        assert (not torch.equal(other(x, 3), base)) is changes


def test_run_records_every_frame_and_predicts_in_range() -> None:
    x = _sequences(2)
    pred, states = _model().run(x[:, :10], 10, keep_states=True)
    st = states.stacked()
    assert pred.shape == (2, 10, 128, 128) and float(pred.detach().min()) >= 0 and float(pred.detach().max()) <= 1
    assert st["alpha"].shape == (2, 19, 128, 128) and st["motion"].dtype == torch.complex64


@pytest.mark.parametrize("frames", ["blank", "static"])
def test_degenerate_input_gives_finite_predictions(frames: str) -> None:
    x = torch.zeros(1, 10, 64, 64) if frames == "blank" else torch.rand(1, 1, 64, 64).repeat(1, 10, 1, 1)
    assert torch.isfinite(_model()(x, 4)).all()


def test_gradients_reach_every_used_gain() -> None:
    x = _sequences(1)
    model = ZeroParamModel()
    loss = ((model(x[:, :10], 10) - x[:, 10:]) ** 2).mean()
    loss.backward()
    grads = {k: v.grad for k, v in model.gains.items()}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert float(grads["learnableGains"][:, :10].abs().min()) > 0
    assert float(grads["learnableGains"][:, 10:].abs().max()) == 0
    assert float(grads["learnableGainsInit"][3, 0].abs()) > 0


def test_bad_options_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="rows"):
        ZeroParamModel({"rows": "bg,fg,a"})
    with pytest.raises(ValueError, match="unknown options"):
        ZeroParamModel({"combine": "mean"})


@pytest.mark.parametrize("starts, trains", [((0.0, 0.0), False), ((2.0, 1.0), True)])
def test_the_dog_trains_only_from_widths_apart(starts, trains) -> None:
    # all gains at 0 are a stationary point of the DoG: G(0) - G(0) = 0 gives its amplitude no
    # gradient, and an amplitude of 0 gives its widths none
    torch.manual_seed(0)
    model = ZeroParamModel({"dog_surround_start": starts[0], "dog_centre_start": starts[1]})
    assert model.gains["learnableGainsDOG"][:2, 0].tolist() == list(starts)
    x = torch.rand(2, 12, 32, 32)
    ((model(x[:, :10], 2) - x[:, 10:]) ** 2).mean().backward()
    grad = model.gains["learnableGainsDOG"].grad[:3, :10]
    assert bool((grad.abs() > 0).any()) == trains
    with pytest.raises(ValueError, match="option dog_centre_start must be a finite number, got nan"):
        Options(dog_centre_start=float("nan"))


def _with_init_rows(model: ZeroParamModel) -> ZeroParamModel:
    with torch.no_grad():  # distinct gains per state and frame, so a swapped row or column shows
        model.gains["learnableGainsInit"][3, 0] = 4.0
        model.gains["learnableGainsInit"][:3] = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0]])
    return model


def test_init_block_readings_use_rows_fg_bg_a_of_each_frame() -> None:
    x = _sequences(1)[:, :3]
    g = torch.sigmoid(torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0]]))
    with torch.no_grad():
        plain = _with_init_rows(_model()).estimate(x, 1)
        scaled = _with_init_rows(_model(init_gains="scale")).estimate(x, 1)
        corrected = _with_init_rows(_model(init_gains="correction")).estimate(x, 1)
        fg_corrected = _with_init_rows(_model(init_gains="fg_correction")).estimate(x, 1)
    a, frame = plain.alpha, x[:, 1]
    torch.testing.assert_close(scaled.fg, g[0, 1] * plain.fg)
    torch.testing.assert_close(scaled.bg, g[1, 1] * plain.bg)
    torch.testing.assert_close(scaled.alpha, g[2, 1] * a)
    # the cycle's correction from FG = BG = 0 (error -F): FG <- g A F, BG <- g (1 - A) F, then A
    torch.testing.assert_close(corrected.fg, g[0, 1] * a * frame)
    torch.testing.assert_close(corrected.bg, g[1, 1] * (1 - a) * frame)
    err = a * corrected.fg + (1 - a) * corrected.bg - frame
    torch.testing.assert_close(corrected.alpha, soft_clamp(a - g[2, 1] * err * (corrected.fg - corrected.bg)))
    torch.testing.assert_close(fg_corrected.bg, frame)


def test_init_block_readings_change_the_prediction_and_get_gradients() -> None:
    x = _sequences(1)[:, :10]
    base = _with_init_rows(_model())(x, 2)
    for mode in ("scale", "correction", "fg_correction", "blend"):
        model = _with_init_rows(ZeroParamModel(Options(init_gains=mode)))
        pred = model(x, 2)
        assert not torch.allclose(pred, base), mode
        ((pred - x[:, :2]) ** 2).mean().backward()
        used = model.gains["learnableGainsInit"].grad[:3]
        # "blend" reads column 1 only (frame 1's mix), "fg_correction" no BG row (BG is the frame)
        rows = [0, 2] if mode == "fg_correction" else [0, 1, 2]
        cols = [1] if mode == "blend" else [0, 1]
        assert float(used[rows][:, cols].abs().min()) > 0, mode
        if mode == "fg_correction":
            assert float(used[1].abs().max()) == 0
    unused = _with_init_rows(_model())
    ((unused(x, 2) - x[:, :2]) ** 2).mean().backward()
    assert float(unused.gains["learnableGainsInit"].grad[:3].abs().max()) == 0  # the chosen reading reads none


def test_learnable_refuses_an_init_block_reading_in_one_line() -> None:
    from motionseg.learnable import LearnableModel
    with pytest.raises(ValueError, match="init_gains='scale'.*allowed: 'unused'") as err:
        LearnableModel({"init_gains": "scale"})
    assert "\n" not in str(err.value)
