"""Tests of the Table 1 baselines: Conv-PGP, VLN-ResNet, VLN-LDC.

Small frames (32x32) keep the suite fast; parameter counts are checked at 128x128,
the paper's size, where building the models costs no compute. The behaviour tests
train each model for a few dozen Adam steps on 16x16 translating squares.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from torch import nn

from motionseg.baselines import VLNLDC, ConvPGP, VLNResNet
from motionseg.train import sequence_loss

SIZE = 32

FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "conv_pgp": ConvPGP,
    "vln_resnet": lambda: VLNResNet(image_size=SIZE),
    "vln_ldc": lambda: VLNLDC(image_size=SIZE),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def frames(b: int = 2, t: int = 6, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, size, size, generator=g)


@pytest.fixture(params=sorted(FACTORIES))
def model(request: pytest.FixtureRequest) -> nn.Module:
    torch.manual_seed(0)
    return FACTORIES[request.param]()


@pytest.mark.parametrize(
    "factory, expected",
    [(ConvPGP, 31_797), (VLNResNet, 1_320_429), (VLNLDC, 1_363_437)],
    ids=["conv_pgp", "vln_resnet", "vln_ldc"],
)
def test_parameter_counts_match_paper(factory: Callable[[], nn.Module], expected: int) -> None:
    assert n_params(factory()) == expected


def test_ldc_adds_two_bias_maps_per_level() -> None:
    extra = n_params(VLNLDC(image_size=128)) - n_params(VLNResNet(image_size=128))
    assert extra == 2 * (128**2 + 64**2 + 32**2) == 43_008


def test_loss_name(model: nn.Module) -> None:
    assert model.loss_name == "bce"


def test_forward_shape_and_range(model: nn.Module) -> None:
    model.eval()
    with torch.no_grad():
        out = model(frames(t=3), n_future=4)
    assert out.shape == (2, 4, SIZE, SIZE)
    assert out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_forward_zero_future(model: nn.Module) -> None:
    model.eval()
    with torch.no_grad():
        assert model(frames(t=3), n_future=0).shape == (2, 0, SIZE, SIZE)


def test_forward_train_shape_and_range(model: nn.Module) -> None:
    out = model.forward_train(frames(t=6), n_seed=3).detach()
    assert out.shape == (2, 5, SIZE, SIZE)
    assert bool(torch.isfinite(out).all())
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("n_seed", [2, 4, 6])
def test_forward_is_tail_of_closed_loop_forward_train(model: nn.Module, n_seed: int) -> None:
    seq = frames(t=7)
    n_future = seq.shape[1] - n_seed
    model.eval()
    with torch.no_grad():
        train_out = model.forward_train(seq, n_seed=n_seed)
        pred = model(seq[:, :n_seed], n_future=n_future)
    torch.testing.assert_close(pred, train_out[:, -n_future:], rtol=1e-4, atol=1e-5)


def test_forward_train_ignores_frames_after_seed(model: nn.Module) -> None:
    """After n_seed the loop is closed: later ground-truth frames are targets only."""
    seq = frames(t=6)
    other = seq.clone()
    other[:, 3:] = frames(t=3, seed=1)
    model.eval()
    with torch.no_grad():
        a = model.forward_train(seq, n_seed=3)
        b = model.forward_train(other, n_seed=3)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_gradients_reach_every_parameter(model: nn.Module) -> None:
    model.train()
    seq = (frames(t=5) > 0.7).float()
    out = model.forward_train(seq, n_seed=3)
    loss = nn.functional.binary_cross_entropy(out, seq[:, 1:])
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert bool(torch.isfinite(p.grad).all()), f"non-finite gradient for {name}"
        assert float(p.grad.abs().sum()) > 0.0, f"zero gradient for {name}"


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(2, SIZE, SIZE),  # rank 3
        torch.full((2, 3, SIZE, SIZE), float("nan")),  # NaN
        torch.rand(2, 1, SIZE, SIZE),  # one seed frame
        torch.rand(2, 3, SIZE, SIZE) + 1.0,  # out of [0, 1]
    ],
    ids=["rank3", "nan", "one_seed", "range"],
)
def test_bad_input_raises(model: nn.Module, bad: torch.Tensor) -> None:
    with pytest.raises(ValueError):
        model(bad, n_future=2)


def test_bad_n_seed_raises(model: nn.Module) -> None:
    with pytest.raises(ValueError):
        model.forward_train(frames(t=4), n_seed=0)
    with pytest.raises(ValueError):
        model.forward_train(frames(t=4), n_seed=5)


def test_ldc_rejects_other_image_size() -> None:
    model = VLNLDC(image_size=SIZE)
    with pytest.raises(ValueError, match="built for"):
        model(frames(t=2, size=2 * SIZE), n_future=1)
    with pytest.raises(ValueError, match="built for"):
        model.forward_train(frames(t=3, size=2 * SIZE), n_seed=2)


def test_vln_resnet_accepts_other_sizes() -> None:
    """Only the LDC variant is tied to its build size; VLN-ResNet needs H, W divisible by 8."""
    model = VLNResNet(image_size=SIZE).eval()
    with torch.no_grad():
        assert model(frames(b=1, t=2, size=16), n_future=1).shape == (1, 1, 16, 16)
    with pytest.raises(ValueError):
        model(frames(b=1, t=2, size=12), n_future=1)


# -- input dtypes ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_input_dtypes_give_the_float32_prediction(model: nn.Module, dtype: torch.dtype) -> None:
    """Input in another float type is read as float32: the same prediction as for its float32 copy."""
    seq = frames(t=4).to(dtype)
    model.eval()
    with torch.no_grad():
        out = model(seq[:, :3], n_future=2)
        ref = model(seq[:, :3].float(), n_future=2)
        train_out = model.forward_train(seq, n_seed=3)
        train_ref = model.forward_train(seq.float(), n_seed=3)
    assert out.dtype == train_out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(train_out, train_ref, rtol=0, atol=0)


# -- behaviour: learning to predict a moving square -------------------------------------------

SQ_SIZE, SQ_SEED, SQ_FUTURE = 16, 4, 3
DARK, BRIGHT = 0.1, 0.9
# Every target pixel is DARK or BRIGHT, so no prediction has a lower BCE than their binary entropy.
BCE_FLOOR = -(DARK * math.log(DARK) + BRIGHT * math.log(BRIGHT))


def translating_squares(n: int, seed: int, directions: int = 1, size: int = SQ_SIZE,
                        n_frames: int = SQ_SEED + SQ_FUTURE) -> torch.Tensor:
    """``n`` sequences of a bright square (side 4 to 6) moving 1 px/frame on a dark background.

    ``directions=1``: every square moves right; ``directions=4``: right, left, down or up at
    random, so that predicting needs the motion read from the seed frames.
    """
    g = torch.Generator().manual_seed(seed)
    out = torch.full((n, n_frames, size, size), DARK)
    travel = n_frames - 1
    for i in range(n):
        side = int(torch.randint(4, 7, (1,), generator=g))
        d = int(torch.randint(0, directions, (1,), generator=g))
        step = 1 if d % 2 == 0 else -1
        # the start along the motion keeps the square inside until the last frame
        first = int(torch.randint(0, size - side - travel + 1, (1,), generator=g)) + (travel if step < 0 else 0)
        across = int(torch.randint(1, size - side, (1,), generator=g))
        for k in range(n_frames):
            along = first + step * k
            if d < 2:
                out[i, k, across:across + side, along:along + side] = BRIGHT
            else:
                out[i, k, along:along + side, across:across + side] = BRIGHT
    return out


@dataclass
class Recipe:
    factory: Callable[[], nn.Module]
    lr: float  # Adam
    steps: int
    batch: int
    directions: int  # of the squares, see translating_squares


# A couple of seconds of training each on 2 cores. Conv-PGP learns all four directions in that
# time; the VLNs do not (about 4 s each would be needed for four), so they see one direction
# and only show that they learn to move the square, not that they read its direction.
RECIPES: dict[str, Recipe] = {
    "conv_pgp": Recipe(ConvPGP, 4e-3, 100, 4, directions=4),
    "vln_resnet": Recipe(lambda: VLNResNet(image_size=SQ_SIZE), 3e-3, 20, 2, directions=1),
    "vln_ldc": Recipe(lambda: VLNLDC(image_size=SQ_SIZE), 3e-3, 20, 2, directions=1),
}


@dataclass
class Trained:
    model: nn.Module
    directions: int
    loss_before: float  # training loss on the whole training set
    loss_after: float


@pytest.fixture(scope="module", params=sorted(RECIPES))
def trained(request: pytest.FixtureRequest) -> Trained:
    recipe = RECIPES[request.param]
    torch.manual_seed(0)
    model = recipe.factory()
    train = translating_squares(16, seed=0, directions=recipe.directions)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)

    def training_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(sequence_loss(model, train, SQ_SEED))

    before = training_loss()
    model.train()
    for step in range(recipe.steps):
        i = recipe.batch * step % len(train)
        loss = sequence_loss(model, train[i:i + recipe.batch], SQ_SEED)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Trained(model, recipe.directions, before, training_loss())


def test_training_lowers_the_loss(trained: Trained) -> None:
    """The loss above its floor (the targets' entropy) shrinks at least fourfold."""
    assert trained.loss_before > BCE_FLOOR
    assert trained.loss_after - BCE_FLOOR < 0.25 * (trained.loss_before - BCE_FLOOR)


def test_trained_model_beats_copy_last_on_new_squares(trained: Trained) -> None:
    """At most half the error of repeating the last seed frame, on squares not trained on."""
    test = translating_squares(16, seed=1, directions=trained.directions)
    seed, future = test[:, :SQ_SEED], test[:, SQ_SEED:]
    trained.model.eval()
    with torch.no_grad():
        pred = trained.model(seed, n_future=SQ_FUTURE)
    model_mse = float(((pred - future) ** 2).mean())
    copy_last_mse = float(((seed[:, -1:] - future) ** 2).mean())
    assert model_mse < 0.5 * copy_last_mse
