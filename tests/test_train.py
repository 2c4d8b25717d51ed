"""Tests of training: resumable checkpoints, provenance, curricula, clear errors.

Tiny runs (a few steps of batch 2 at 64 x 64) keep this file fast on two CPU cores.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from motionseg import train, zoo
from motionseg.train import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

SIZE = 64
CPU = torch.device("cpu")


def tiny(name: str = "zero_param", **overrides) -> train.TrainConfig:
    settings = dict(steps=4, batch_size=2, n_train=8, n_val=2, val_every=2, checkpoint_every=2, size=SIZE)
    settings.update(overrides)
    return zoo.training_config(name, "quick", **settings)


def read(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, train.History, Path]:
    out = tmp_path_factory.mktemp("full") / "zero_param" / "checkpoint.pt"
    model, history = train.train(tiny(), out, progress=False, device=CPU)
    return model, history, out


def _resume_in_pieces(cfg: train.TrainConfig, out: Path, pieces: int) -> tuple[nn.Module, train.History]:
    """Run ``pieces`` calls that each stop after one step (time_limit=0), then one to the end."""
    for i in range(pieces):
        _, history = train.train(cfg, out, resume=i > 0, progress=False, device=CPU, time_limit=0.0)
        assert history.step == list(range(1, i + 2))
        assert read(out)["step"] == i + 1
    return train.train(cfg, out, resume=True, progress=False, device=CPU)


def _assert_same_run(a: tuple[nn.Module, train.History], b: tuple[nn.Module, train.History]) -> None:
    (ma, ha), (mb, hb) = a, b
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.allclose(sa[k], sb[k], atol=1e-6), k
    assert ha.step == hb.step
    assert ha.loss == pytest.approx(hb.loss, abs=1e-9)
    assert ha.val_step == hb.val_step
    assert ha.val_mse == pytest.approx(hb.val_mse, abs=1e-9)


def test_resume_equals_uninterrupted_zero_param(uninterrupted, tmp_path: Path) -> None:
    model, history, _ = uninterrupted
    out = tmp_path / "zero_param" / "checkpoint.pt"
    resumed = _resume_in_pieces(tiny(), out, pieces=2)  # stopped after step 1, then after step 2
    _assert_same_run((model, history), resumed)
    assert history.step == [1, 2, 3, 4]
    # the gains were actually trained
    fresh = zoo.build("zero_param")
    assert any(not torch.allclose(model.gains[k], fresh.gains[k]) for k in fresh.gains)
    # resuming a finished run changes nothing
    again = train.train(tiny(), out, resume=True, progress=False, device=CPU)
    _assert_same_run(resumed, again)


def test_resume_equals_uninterrupted_conv_pgp(tmp_path: Path) -> None:
    cfg = tiny("conv_pgp", steps=2, n_train=4, val_every=2, checkpoint_every=2)
    full = train.train(cfg, tmp_path / "a" / "conv_pgp" / "checkpoint.pt", progress=False, device=CPU)
    resumed = _resume_in_pieces(cfg, tmp_path / "b" / "conv_pgp" / "checkpoint.pt", pieces=1)
    _assert_same_run(full, resumed)


def test_checkpoint_contents(uninterrupted) -> None:
    _, history, out = uninterrupted
    ckpt = read(out)
    assert ckpt["format"] == CHECKPOINT_FORMAT
    assert ckpt["version"] == CHECKPOINT_VERSION
    assert ckpt["model"] == "zero_param"
    assert ckpt["image_size"] == SIZE
    assert ckpt["step"] == 4
    assert ckpt["config"] == train.asdict(tiny())
    assert ckpt["model_config"] == zoo.model_config(zoo.build("zero_param"))
    for key in ("commit", "torch", "numpy", "python", "device", "wall_seconds", "profile", "seed"):
        assert key in ckpt["provenance"], key
    assert ckpt["provenance"]["torch"] == torch.__version__
    assert ckpt["provenance"]["profile"] == "quick" and ckpt["provenance"]["seed"] == 0
    assert ckpt["provenance"]["wall_seconds"] >= 0
    assert ckpt["history"] == train.asdict(history)
    assert ckpt["history"]["val_step"] == [2, 4]
    assert ckpt["optimizer"] is not None and ckpt["scheduler"] is not None
    assert all(v.device.type == "cpu" for v in ckpt["state_dict"].values())


def test_checkpoint_written_atomically(uninterrupted) -> None:
    _, _, out = uninterrupted
    assert out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["checkpoint.pt"]  # no checkpoint.pt.tmp left


def test_resume_with_other_settings_raises(uninterrupted, tmp_path: Path) -> None:
    _, _, out = uninterrupted
    copy = tmp_path / "zero_param" / "checkpoint.pt"
    copy.parent.mkdir()
    copy.write_bytes(out.read_bytes())
    with pytest.raises(ValueError, match="lr"):
        train.train(tiny(lr=0.123), copy, resume=True, progress=False, device=CPU)
    with pytest.raises(ValueError, match="batch_size"):
        train.train(tiny(batch_size=3), copy, resume=True, progress=False, device=CPU)
    # the checkpoint was left alone
    assert read(copy)["config"] == train.asdict(tiny())


def test_resume_with_other_model_raises(uninterrupted, tmp_path: Path) -> None:
    _, _, out = uninterrupted
    with pytest.raises(ValueError, match="zero_param"):
        train.train(tiny("conv_pgp"), out, resume=True, progress=False, device=CPU)


def test_init_from_zero_param(tmp_path: Path) -> None:
    source = zoo.build("zero_param")
    with torch.no_grad():
        for i, p in enumerate(source.gains.values()):
            p.copy_(torch.linspace(-1.0, 1.0, p.numel()) + i)
    src_cfg = tiny()
    src = tmp_path / "zero_param" / "checkpoint.pt"
    train._save_atomic(train.make_checkpoint(source, src_cfg, 4, train.History(), None, None, 0.0, CPU), src)
    # lr=0 (cyclic between 0 and 0): the learnable model keeps the gains it starts from
    cfg = tiny("learnable", steps=1, n_val=1, lr=0.0, val_every=1, checkpoint_every=1)
    assert cfg.init_from == "zero_param"
    model, history = train.train(cfg, tmp_path / "learnable" / "checkpoint.pt", progress=False, device=CPU)
    assert len(history.loss) == 1
    for k, v in source.gains.items():
        assert torch.equal(model.gains[k].detach(), v.detach()), k
    fresh = zoo.build("learnable")
    for k in ("mix_alpha", "mix_fg", "mix_bg"):
        assert torch.equal(model.gains[k].detach(), fresh.gains[k].detach()), k


def test_init_from_missing_checkpoint_raises(tmp_path: Path) -> None:
    cfg = tiny("learnable", steps=1)
    with pytest.raises(FileNotFoundError, match="zero_param"):
        train.train(cfg, tmp_path / "learnable" / "checkpoint.pt", progress=False, device=CPU)


class _NaNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, seed: torch.Tensor, n_future: int) -> torch.Tensor:
        last = seed[:, -1:].expand(-1, n_future, -1, -1)
        return last + self.p * float("nan")


def test_nan_loss_raises(tmp_path: Path) -> None:
    out = tmp_path / "zero_param" / "checkpoint.pt"
    with pytest.raises(FloatingPointError, match="step 0"):
        train.train(tiny(), out, progress=False, device=CPU, model=_NaNModel())
    assert not out.exists()
