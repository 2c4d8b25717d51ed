"""Tests of the Table 1 baselines: Conv-PGP, VLN-ResNet, VLN-LDC.

Small frames (32x32) keep the suite fast; parameter counts are checked at 128x128,
the paper's size, where building the models costs no compute.
"""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

from motionseg.baselines import VLNLDC, ConvPGP, VLNResNet

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
