"""Tests of the model zoo: names, committed checkpoints, and clear errors for bad checkpoints."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from motionseg import train, zoo
from motionseg.train import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

ALL = ["zero_param", "learnable", "conv_pgp", "vln_resnet", "vln_ldc"]


@pytest.fixture(scope="module")
def zero_param_ckpt() -> dict:
    return torch.load(zoo.checkpoint_path("zero_param"), map_location="cpu", weights_only=False)


def write_variant(ckpt: dict, path: Path, **changes) -> Path:
    variant = copy.deepcopy(ckpt)
    variant.update(changes)
    torch.save(variant, path)
    return path


def test_names() -> None:
    assert set(ALL) <= set(zoo.names())


def test_build_unknown_name_lists_allowed() -> None:
    with pytest.raises(ValueError, match="nope") as err:
        zoo.build("nope")
    for name in ALL:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="allowed"):
        zoo.load("nope")


def _check_loaded(model: nn.Module) -> None:
    assert isinstance(model, nn.Module)
    assert not model.training
    assert all(not m.training for m in model.modules())
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert "commit" in model.provenance


@pytest.mark.parametrize("name", ["vln_resnet", "vln_ldc"])
def test_load_vln(name: str) -> None:
    # load only: a CPU forward at 128 x 128 takes ~0.6 s on an idle machine but 10-25 s when the two
    # cores are shared; test_baselines.py covers the VLN forward at 32 x 32
    _check_loaded(zoo.load(name))


@pytest.mark.parametrize("name, batch", [("zero_param", 2), ("learnable", 1), ("conv_pgp", 1)])
def test_load_committed_checkpoint(name: str, batch: int) -> None:
    model = zoo.load(name)
    _check_loaded(model)
    x = torch.rand(batch, 10, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x, 10)
    assert y.shape == (batch, 10, 128, 128)
    assert torch.isfinite(y).all()


def test_checkpoint_path() -> None:
    assert zoo.checkpoint_path("learnable", Path("/x")) == Path("/x/learnable/checkpoint.pt")
    assert zoo.checkpoint_path("zero_param") == zoo.RESULTS / "zero_param" / "checkpoint.pt"


def test_training_config() -> None:
    cfg = zoo.training_config("learnable", "quick", steps=3, size=64)
    assert cfg.model == "learnable" and cfg.profile == "quick"
    assert cfg.steps == 3 and cfg.size == 64 and cfg.init_from == "zero_param"
    with pytest.raises(ValueError, match="profile"):
        zoo.training_config("zero_param", "medium")


# -- mismatch errors ---------------------------------------------------------------------------

def test_wrong_model_name() -> None:
    with pytest.raises(ValueError, match="'zero_param' model, not 'learnable'"):
        zoo.load("learnable", zoo.checkpoint_path("zero_param"))


def test_wrong_image_size(zero_param_ckpt: dict, tmp_path: Path) -> None:
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt", image_size=64)
    with pytest.raises(ValueError, match="64 x 64 images, not 128 x 128"):
        zoo.load("zero_param", path)
    assert isinstance(zoo.load("zero_param", path, image_size=64), nn.Module)


def test_wrong_version(zero_param_ckpt: dict, tmp_path: Path) -> None:
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt", version=CHECKPOINT_VERSION + 1)
    with pytest.raises(ValueError, match="version") as err:
        zoo.load("zero_param", path)
    assert "python -m motionseg train zero_param" in str(err.value)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ValueError, match="not a readable motionseg checkpoint"):
        zoo.load("zero_param", path)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    data = zoo.checkpoint_path("zero_param").read_bytes()
    path = tmp_path / "c.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable"):
        zoo.load("zero_param", path)


@pytest.mark.parametrize("obj", [{"model": "zero_param", "state_dict": {}}, [1, 2, 3],
                                 {"format": "something-else", "version": CHECKPOINT_VERSION}])
def test_no_format_tag(tmp_path: Path, obj) -> None:
    path = tmp_path / "c.pt"
    torch.save(obj, path)
    with pytest.raises(ValueError, match=CHECKPOINT_FORMAT):
        zoo.load("zero_param", path)


def test_model_config_mismatch(zero_param_ckpt: dict, tmp_path: Path) -> None:
    state = dict(zero_param_ckpt["state_dict"])
    state["gains.fg"] = state["gains.fg"][:10].clone()  # a model with 10 instead of 20 steps
    config = copy.deepcopy(zero_param_ckpt["model_config"])
    config["parameters"]["gains.fg"] = [10]
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt", state_dict=state, model_config=config)
    with pytest.raises(ValueError, match="does not fit the current zero_param model"):
        zoo.load("zero_param", path)


def test_missing_file_names_train_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="python -m motionseg train learnable"):
        zoo.load("learnable", tmp_path / "missing.pt")


def write_learnable_checkpoint(cfg: train.TrainConfig, path: Path, revision: int | None) -> Path:
    """A learnable checkpoint as written by an older revision (``None``: before revisions existed)."""
    ckpt = train.make_checkpoint(zoo.build("learnable"), cfg, 1, train.History(), None, None, 0.0,
                                 torch.device("cpu"))
    if revision is None:
        del ckpt["model_config"]["revision"]
    else:
        ckpt["model_config"]["revision"] = revision
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("revision, shown", [(None, 1), (2, 2)])
def test_old_learnable_revision_is_refused(tmp_path: Path, revision: int | None, shown: int) -> None:
    path = write_learnable_checkpoint(zoo.training_config("learnable", "quick"), tmp_path / "old.pt", revision)
    with pytest.raises(ValueError, match=f"revision {shown} of the learnable model, this code builds revision 4"):
        zoo.load("learnable", path)


def test_resume_from_old_learnable_revision_is_refused(tmp_path: Path) -> None:
    cfg = zoo.training_config("learnable", "quick", steps=2, size=64)
    path = write_learnable_checkpoint(cfg, tmp_path / "learnable" / "checkpoint.pt", None)
    with pytest.raises(ValueError, match="revision 1 of the learnable model"):
        train.train(cfg, path, resume=True, progress=False, device=torch.device("cpu"))


def test_revision3_weights_load_into_revision4_but_do_not_resume(tmp_path: Path) -> None:
    # revision 4 only adds steps without parameters, so revision-3 weights are used as they are ...
    cfg = zoo.training_config("learnable", "quick", steps=2, size=64)
    path = write_learnable_checkpoint(cfg, tmp_path / "learnable" / "checkpoint.pt", 3)
    model = zoo.load("learnable", path, image_size=64)
    assert model.weights_revision == 3 and model.revision == 4
    # ... but a revision-3 run is not continued under revision-4 code
    with pytest.raises(ValueError, match="revision 3 of the learnable model, this code builds revision 4;"):
        train.train(cfg, path, resume=True, progress=False, device=torch.device("cpu"))
