"""The multi-object model: K layers, each with its own motion, composed front to back."""
from __future__ import annotations

import itertools

import pytest
import torch

from motionseg import data
from motionseg.multi_object import MultiObject, MultiOptions


def _matched_error(found: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per sequence, the largest velocity error (px/frame) under the best matching of layers to objects."""
    k = true.shape[1]
    errors = torch.stack([(found[:, list(p)] - true).norm(dim=-1).amax(1) for p in itertools.permutations(range(k))], 1)
    return errors.amin(1)


@pytest.fixture(scope="module")
def two_digits() -> dict[str, torch.Tensor]:
    seq = data.make_sequences(8, split="train", seed=0, n_digits=2, size=96, max_speed=1.5)
    return {k: torch.from_numpy(v) for k, v in seq.items()}


def test_two_digits_get_their_own_motions_and_are_predicted(two_digits) -> None:
    x = two_digits["frames"]
    model = MultiObject().eval()
    with torch.no_grad():
        pred = model(x[:, :10], 10)
    layers = model.layers
    moving = (two_digits["obj_velocity"].norm(dim=-1) > 0).all(1)  # a static digit is background
    assert moving.sum() >= 5
    err = _matched_error(layers.velocity[moving], two_digits["obj_velocity"][moving])
    assert err.max() < 0.05, err
    assert layers.present[moving].all()
    mse = ((pred - x[:, 10:]) ** 2).mean()
    copy = ((x[:, 9:10] - x[:, 10:]) ** 2).mean()
    one_layer = MultiObject({"objects": 1}).eval()
    with torch.no_grad():
        single = ((one_layer(x[:, :10], 10) - x[:, 10:]) ** 2).mean()
    assert mse < copy / 5 and mse < single / 2, (float(mse), float(single), float(copy))


def test_one_digit_leaves_the_second_layer_empty() -> None:
    seq = data.make_sequences(6, split="train", seed=0, size=96, max_speed=1.5)
    x = torch.from_numpy(seq["frames"])
    model = MultiObject().eval()
    with torch.no_grad():
        pred = model(x[:, :10], 10)
    moving = torch.from_numpy(seq["velocity"]).norm(dim=-1) > 0
    assert model.layers.present[moving, 0].all() and not model.layers.present[:, 1].any()
    assert (model.layers.alpha[:, 1] == 0).all() and (model.layers.premult[:, 1] == 0).all()
    assert ((pred - x[:, 10:]) ** 2).mean() < ((x[:, 9:10] - x[:, 10:]) ** 2).mean() / 5


def _crossing(front: str, layers: bool = False):
    """Two opaque textured squares crossing over a texture (overlapping from frame 5); ``front``
    ("bright" or "dark") is drawn last. With ``layers``: also the true layers at frame 9
    (premult and alpha, 2 x 64 x 64 each, bright first), velocities (2 x 2) and background."""
    g = torch.Generator().manual_seed(0)
    bg = 0.3 + 0.4 * torch.rand(64, 64, generator=g)
    patches = {"bright": 0.7 + 0.3 * torch.rand(14, 14, generator=g), "dark": 0.3 * torch.rand(14, 14, generator=g)}
    frames = []
    for t in range(20):
        f = bg.clone()
        places = {"bright": (slice(20, 34), slice(8 + t, 22 + t)), "dark": (slice(24, 38), slice(32 - t, 46 - t))}
        for which in (("dark", "bright") if front == "bright" else ("bright", "dark")):
            f[places[which]] = patches[which]
        frames.append(f)
        if t == 9:
            alpha, premult = torch.zeros(2, 64, 64), torch.zeros(2, 64, 64)
            for k, which in enumerate(("bright", "dark")):
                alpha[k][places[which]] = 1.0
                premult[k][places[which]] = patches[which]
    x = torch.stack(frames)[None]
    if not layers:
        return x
    return x, premult, alpha, torch.tensor([[0.0, 1.0], [0.0, -1.0]]), bg


@pytest.mark.parametrize("front", ["bright", "dark"])
@pytest.mark.parametrize("flip", [False, True])
def test_the_order_that_composes_the_seed_frames_is_chosen(front: str, flip: bool) -> None:
    x, premult, alpha, velocity, bg = _crossing(front, layers=True)
    index = [1, 0] if flip else [0, 1]  # the layers in either arrangement
    order = MultiObject().choose_order(x[:, :10], premult[index][None], alpha[index][None], velocity[index][None], bg[None])
    expected = index.index(0 if front == "bright" else 1)
    assert order[0].tolist() == [expected, 1 - expected]


@pytest.mark.parametrize("front", ["bright", "dark"])
def test_the_layer_in_front_is_estimated(front: str) -> None:
    x = _crossing(front)
    model = MultiObject().eval()
    with torch.no_grad():
        pred = model(x[:, :10], 10)
    layers = model.layers
    first = layers.order[0, 0]
    expected_dx = 1.0 if front == "bright" else -1.0
    assert layers.velocity[0, first, 1] == pytest.approx(expected_dx, abs=0.05)
    # with the order reversed the prediction is worse
    other = layers.order.flip(1)
    assert model.compose_layers(layers.premult[:, :, None], layers.alpha[:, :, None], layers.bg[:, None], other).shape == (1, 1, 64, 64)
    assert ((pred - x[:, 10:]) ** 2).mean() < ((x[:, 9:10] - x[:, 10:]) ** 2).mean() / 5


@pytest.mark.parametrize("case", ["static", "blank", "same_path"])
def test_degenerate_inputs_give_finite_predictions(case: str) -> None:
    if case == "static":
        x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(1)).expand(2, 10, 64, 64).clone()
    elif case == "blank":
        x = torch.zeros(2, 10, 64, 64)
    else:  # two squares moving together: one motion
        x = torch.zeros(1, 10, 64, 64)
        for t in range(10):
            x[0, t, 10:20, 10 + t:20 + t] = 0.8
            x[0, t, 40:50, 10 + t:20 + t] = 0.6
    model = MultiObject({"objects": 3}).eval()
    with torch.no_grad():
        pred = model(x, 5)
    assert pred.shape == (x.shape[0], 5, 64, 64) and torch.isfinite(pred).all()
    if case != "same_path":
        assert not model.layers.present.any()
        torch.testing.assert_close(pred, x[:, -1:].expand_as(pred), atol=1e-4, rtol=0)
    else:
        assert model.layers.present.sum() == 1
        assert ((pred[0, 0] - torch.roll(x[0, -1], 1, 1)) ** 2).mean() < 1e-3


@pytest.mark.parametrize("bad", [0, 5, 1.5, True, "2"])
def test_objects_outside_one_to_four_is_one_line(bad) -> None:
    with pytest.raises(ValueError, match=r"option objects must be an integer from 1 to 4, got"):
        MultiOptions(objects=bad)


def test_other_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"option min_peak must lie in \(0, 1\)"):
        MultiOptions(min_peak=0.0)
    with pytest.raises(ValueError, match="smooth_layers must stay on"):
        MultiOptions(smooth_layers=False)
    with pytest.raises(ValueError, match="need at least 3 seed frames"):
        MultiObject()(torch.zeros(1, 2, 64, 64), 1)


def test_a_sequence_is_predicted_alike_alone_and_in_a_batch(two_digits) -> None:
    # the batch is estimated a few sequences at a time: no sequence may depend on the others
    # (batched FFTs round differently from single ones, and the least squares amplify that to
    # ~3e-4; a mix-up of sequences would cost 0.1 and more)
    x = two_digits["frames"][:6, :10]
    model = MultiObject().eval()
    with torch.no_grad():
        together = model(x, 3)
        order = model.layers.order.clone()
        alone = torch.cat([model(x[i:i + 1], 3) for i in range(6)])
    torch.testing.assert_close(together, alone, atol=2e-3, rtol=0)
    assert model.layers.order.shape == (1, 2) and order.shape == (6, 2)
