"""Tests of the zero-parameter prediction-correction model (paper Sec. 3.1-3.2).

Sequences are generated at 64 x 64 to keep the suite fast on two CPU cores.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from motionseg import data, train, zoo
from motionseg.evaluate import CopyLast
from motionseg.zero_param import DEFAULT_GAINS, Options, ZeroParamModel, count_gains, count_parameters

SIZE = 64
N_SEED = 10


@pytest.fixture(scope="module")
def seqs() -> dict[str, torch.Tensor]:
    """Eight test sequences at 64 x 64 (the same ones the quick-training check uses)."""
    return {k: torch.from_numpy(v) for k, v in data.make_sequences(8, "test", 0, size=SIZE).items()}


@pytest.fixture(scope="module")
def model() -> ZeroParamModel:
    return ZeroParamModel().eval()


def rand_frames(b: int = 2, s: int = N_SEED, h: int = SIZE, w: int = SIZE, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, s, h, w, generator=g)


def copy_last_mse(frames: torch.Tensor) -> float:
    return float(F.mse_loss(CopyLast()(frames[:, :N_SEED], 10), frames[:, N_SEED:]))


# -- shapes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("s", [10, 2, 3])
@pytest.mark.parametrize("n_future", [0, 1, 15])
def test_output_shape_dtype_range(model: ZeroParamModel, seqs: dict, s: int, n_future: int) -> None:
    x = seqs["frames"][:2, :s]
    with torch.no_grad():
        y = model(x, n_future)
    assert y.shape == (2, n_future, SIZE, SIZE)
    assert y.dtype == torch.float32
    if n_future:
        assert torch.isfinite(y).all()
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_non_square_frames(model: ZeroParamModel) -> None:
    x = rand_frames(2, 10, 64, 96)
    with torch.no_grad():
        y, states = model.run(x, 5, keep_states=True)
    assert y.shape == (2, 5, 64, 96)
    assert torch.isfinite(y).all() and float(y.min()) >= 0 and float(y.max()) <= 1
    assert states.stacked()["alpha"].shape == (2, 9 + 5, 64, 96)


def test_float64_input_gives_float32(model: ZeroParamModel, seqs: dict) -> None:
    with torch.no_grad():
        y = model(seqs["frames"][:1, :N_SEED].double(), 2)
    assert y.dtype == torch.float32


# -- input validation --------------------------------------------------------------------------

def _nan() -> torch.Tensor:
    x = rand_frames(1)
    x[0, 3, 5, 5] = float("nan")
    return x


def _inf() -> torch.Tensor:
    x = rand_frames(1)
    x[0, 3, 5, 5] = float("inf")
    return x


@pytest.mark.parametrize("make, n_future, match", [
    (lambda: rand_frames(1)[0], 10, "rank 4"),
    (lambda: rand_frames(1, 1), 10, "at least 2 seed frames"),
    (_nan, 10, "NaN"),
    (_inf, 10, "inf"),
    (lambda: rand_frames(1) - 0.5, 10, r"\[0, 1\]"),
    (lambda: rand_frames(1) + 0.5, 10, r"\[0, 1\]"),
    (lambda: (rand_frames(1) * 255).to(torch.uint8), 10, "floating-point"),
    (lambda: rand_frames(1), -1, "n_future"),
], ids=["rank3", "one_seed_frame", "nan", "inf", "below_0", "above_1", "uint8", "negative_n_future"])
def test_bad_input_raises(model: ZeroParamModel, make, n_future: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        model(make(), n_future)


def test_unknown_gain_raises() -> None:
    with pytest.raises(ValueError, match="nope"):
        ZeroParamModel(gains={"nope": 1.0})


def test_known_gain_override() -> None:
    m = ZeroParamModel(gains={"fg": 3.0})
    assert torch.allclose(m.gain("fg", 0), torch.tensor(3.0))
    assert torch.allclose(m.gain("bg", 99), torch.tensor(DEFAULT_GAINS["bg"]))


# -- degenerate input --------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0.0, 1.0])
def test_constant_frames_give_finite_output(model: ZeroParamModel, value: float) -> None:
    x = torch.full((2, N_SEED, SIZE, SIZE), value)
    with torch.no_grad():
        y, states = model.run(x, 10, keep_states=True)
    assert torch.isfinite(y).all()
    for k, v in states.stacked().items():
        assert torch.isfinite(torch.view_as_real(v) if v.is_complex() else v).all(), k
    assert torch.allclose(y, torch.full_like(y, value), atol=1e-3)


def test_static_sequence_predicts_last_frame(model: ZeroParamModel) -> None:
    frame = rand_frames(2, 1)
    x = frame.expand(-1, N_SEED, -1, -1).contiguous()
    with torch.no_grad():
        y, states = model.run(x, 10, keep_states=True)
    assert torch.isfinite(y).all()
    assert (y - x[:, -1:]).abs().max() < 1e-3  # copy-last is perfect here
    vel = states.stacked()["velocity"]
    assert torch.isfinite(vel).all()
    assert vel[:, N_SEED - 2].abs().max() < 0.2


def test_static_sequence_velocity_is_zero(model: ZeroParamModel) -> None:
    x = rand_frames(2, 1).expand(-1, N_SEED, -1, -1).contiguous()
    with torch.no_grad():
        _, states = model.run(x, 1, keep_states=True)
    assert states.stacked()["velocity"][:, N_SEED - 2].abs().max() < 1e-3


# -- states ------------------------------------------------------------------------------------

@pytest.mark.parametrize("s, n", [(10, 10), (3, 4)])
def test_states_shapes(model: ZeroParamModel, seqs: dict, s: int, n: int) -> None:
    x = seqs["frames"][:2, :s]
    with torch.no_grad():
        y, states = model.run(x, n, keep_states=True)
    st = states.stacked()
    steps = s - 1 + n
    for k in ("fg", "bg", "alpha", "frame"):
        assert st[k].shape == (2, steps, SIZE, SIZE), k
    assert st["motion"].shape == (2, steps, SIZE, SIZE) and st["motion"].is_complex()
    assert st["velocity"].shape == (2, steps, 2)
    assert torch.equal(st["frame"][:, s - 1:], y)
    assert float(st["alpha"].min()) >= 0 and float(st["alpha"].max()) <= 1


def test_no_states_without_keep(model: ZeroParamModel, seqs: dict) -> None:
    with torch.no_grad():
        _, states = model.run(seqs["frames"][:1, :N_SEED], 2)
    assert states.stacked() == {}


# -- on real sequences -------------------------------------------------------------------------

def test_velocity_estimate_on_real_sequences(model: ZeroParamModel, seqs: dict) -> None:
    with torch.no_grad():
        _, states = model.run(seqs["frames"][:, :N_SEED], 10, keep_states=True)
    est = states.stacked()["velocity"][:, N_SEED - 2]  # after the last seed frame
    true = seqs["velocity"]
    moving = true.norm(dim=1) > 0
    assert moving.sum() >= 4
    err = (est - true).abs().amax(dim=1)
    assert (err[moving] < 0.1).all(), (est, true)


def test_beats_copy_last_on_real_sequences(model: ZeroParamModel, seqs: dict) -> None:
    f = seqs["frames"]
    with torch.no_grad():
        pred = model(f[:, :N_SEED], 10)
    mse = float(F.mse_loss(pred, f[:, N_SEED:]))
    assert mse < 0.5 * copy_last_mse(f)


# -- gradients and counts ----------------------------------------------------------------------

def test_gradients_reach_every_gain(seqs: dict) -> None:
    m = ZeroParamModel()
    f = seqs["frames"][:2]
    loss = F.mse_loss(m(f[:, :N_SEED], 10), f[:, N_SEED:])
    loss.backward()
    assert set(m.gains) == set(DEFAULT_GAINS)
    for name, p in m.gains.items():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert (p.grad != 0).any(), name


def test_parameter_counts() -> None:
    m = ZeroParamModel()
    assert count_parameters(m) == 0
    assert count_gains(m) == 100


# -- options -----------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["phase_filter", "dog", "fill_background", "gauss_seidel"])
def test_options_off_run(seqs: dict, option: str) -> None:
    m = ZeroParamModel(options=Options(**{option: False}))
    with torch.no_grad():
        y = m(seqs["frames"][:2, :N_SEED], 10)
    assert y.shape == (2, 10, SIZE, SIZE)
    assert torch.isfinite(y).all() and float(y.min()) >= 0 and float(y.max()) <= 1


# -- quick training (issue requirement) --------------------------------------------------------

def test_quick_training_beats_copy_last(tmp_path: Path, seqs: dict) -> None:
    cfg = zoo.training_config("zero_param", "quick", steps=6, batch_size=2, n_train=12, n_val=4,
                              val_every=3, checkpoint_every=3, size=SIZE)
    assert cfg.size == SIZE and cfg.steps == 6
    out = tmp_path / "zero_param" / "checkpoint.pt"
    trained, history = train.train(cfg, out, progress=False, device=torch.device("cpu"))
    assert out.is_file()
    assert history.step == list(range(1, 7)) and len(history.loss) == 6
    assert history.val_step == [3, 6]
    assert all(torch.isfinite(torch.tensor(history.loss)))
    initial = ZeroParamModel()
    assert any(not torch.allclose(trained.gains[k], initial.gains[k]) for k in initial.gains)

    test = torch.from_numpy(data.make_sequences(8, "test", 0, size=SIZE)["frames"])
    trained.eval()
    with torch.no_grad():
        mse = float(F.mse_loss(trained(test[:, :N_SEED], 10), test[:, N_SEED:]))
    assert mse < 0.5 * copy_last_mse(test)
    # the checkpoint reloads into the same model
    loaded = zoo.load("zero_param", out, image_size=SIZE)
    for k in trained.gains:
        assert torch.equal(loaded.gains[k], trained.gains[k].detach())
