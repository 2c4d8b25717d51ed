"""Tests of the model zoo and of checkpoint reading: names, committed checkpoints, clear errors."""
from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from motionseg import checkpoint, zoo

ALL = ["zero_param", "learnable", "zero_param_authors", "learnable_authors", "zero_param_plus", "learnable_plus",
       "multi_object", "multi_object_nets", "conv_pgp", "vln_resnet", "vln_ldc"]


@pytest.fixture(scope="module")
def zero_param_ckpt() -> dict:
    return checkpoint.read(zoo.checkpoint_path("zero_param"))


def write_variant(ckpt: dict, path: Path, **changes) -> Path:
    variant = copy.deepcopy(ckpt)
    variant.update(changes)
    torch.save(variant, path)
    return path


def test_names() -> None:
    assert zoo.names() == ALL


def test_build_unknown_name_lists_allowed() -> None:
    with pytest.raises(ValueError, match="nope") as err:
        zoo.build("nope")
    for name in ALL:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="allowed"):
        zoo.load("nope")


def test_baselines_take_no_options() -> None:
    with pytest.raises(ValueError, match="has no options"):
        zoo.build("conv_pgp", options={"dog": False})


def _check_loaded(model: nn.Module) -> None:
    assert not model.training and all(not m.training for m in model.modules())
    assert all(p.device.type == "cpu" for p in model.parameters())
    # ours name the commit that trained them; the authors' weights their source and sha256
    assert "commit" in model.provenance or {"source", "sha256"} <= set(model.provenance)


@pytest.mark.parametrize("name", ALL)
def test_every_committed_checkpoint_loads_safely(name: str) -> None:
    # read with weights_only=True: no code from the file runs
    _check_loaded(zoo.load(name))


@pytest.mark.parametrize("name, batch", [("zero_param", 2), ("learnable", 1), ("zero_param_plus", 2),
                                         ("learnable_plus", 1), ("multi_object", 2), ("multi_object_nets", 2),
                                         ("conv_pgp", 1)])
def test_committed_models_predict(name: str, batch: int) -> None:
    model = zoo.load(name)
    x = torch.rand(batch, 10, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x, 10)
    assert y.shape == (batch, 10, 128, 128) and torch.isfinite(y).all()


def test_every_committed_file_is_on_the_cpu() -> None:
    for path in zoo.RESULTS.rglob("*.pt"):
        for value in _tensors(checkpoint._load(path)):
            assert value.device.type == "cpu", path


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def test_checkpoint_path() -> None:
    assert zoo.checkpoint_path("learnable", Path("/x")) == Path("/x/learnable/checkpoint.pt")
    assert zoo.checkpoint_path("zero_param") == zoo.RESULTS / "zero_param" / "checkpoint.pt"


def test_training_config() -> None:
    cfg = zoo.training_config("learnable", "quick", steps=3, size=64)
    assert cfg.model == "learnable" and cfg.profile == "quick"
    # the paper's extension trains from zero gains, as the authors' release suggests (its gains are not the
    # zero-parameter ones); ours starts from our zero-parameter model
    assert cfg.steps == 3 and cfg.size == 64 and cfg.init_from is None
    assert zoo.training_config("learnable_plus", "quick").init_from == "zero_param_plus"
    # the multi-object model tunes the plus model's gains on the sequences it is for
    mo = zoo.training_config("multi_object", "full")
    assert mo.init_from == "zero_param_plus" and mo.data_options == {"n_digits": 2}
    with pytest.raises(ValueError, match="profile"):
        zoo.training_config("zero_param", "medium")


# -- safety ------------------------------------------------------------------------------------

class _Marker:
    """Unpickling this creates a file: proof that loading ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_loading_a_checkpoint_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": checkpoint.FORMAT, "version": 2, "payload": _Marker(str(marker))}, f)
    # a plain pickle.load would run it (proof the file is armed) ...
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()
    marker.unlink()
    # ... torch.save-format too
    torch.save({"format": checkpoint.FORMAT, "version": 2, "payload": _Marker(str(marker))}, path)
    marker.unlink(missing_ok=True)
    with pytest.raises(ValueError, match="without running code"):
        zoo.load("zero_param", path)
    assert not marker.exists()


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
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt", version=checkpoint.VERSION + 1)
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
                                 {"format": "something-else", "version": checkpoint.VERSION}])
def test_no_format_tag(tmp_path: Path, obj) -> None:
    path = tmp_path / "c.pt"
    torch.save(obj, path)
    with pytest.raises(ValueError, match=checkpoint.FORMAT):
        zoo.load("zero_param", path)


def test_other_options_are_named(zero_param_ckpt: dict, tmp_path: Path) -> None:
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt")
    with pytest.raises(ValueError, match=r"other options.*rows: checkpoint 'fg,bg,a', model 'a,fg,bg'"):
        zoo.load("zero_param", path, options={"rows": "a,fg,bg"})
    # without options given, the model is built as the checkpoint says
    assert zoo.load("zero_param", path).options.rows == "fg,bg,a"


def test_wrong_tensor_shapes_are_named(zero_param_ckpt: dict, tmp_path: Path) -> None:
    state = dict(zero_param_ckpt["state_dict"])
    state["gains.learnableGainsF"] = state["gains.learnableGainsF"][:, :10].clone()
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt", state_dict=state)
    with pytest.raises(ValueError, match=r"does not fit the zero_param model: wrong shapes: gains.learnableGainsF "
                                         r"\(1, 10\) \(expected \(1, 20\)\)"):
        zoo.load("zero_param", path)


def test_missing_tensors_are_named(zero_param_ckpt: dict, tmp_path: Path) -> None:
    state = {k: v for k, v in zero_param_ckpt["state_dict"].items() if k != "gains.learnableGainsDOG"}
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt", state_dict=state)
    with pytest.raises(ValueError, match=r"missing \['gains.learnableGainsDOG'\]"):
        zoo.load("zero_param", path)


def test_nan_weights_are_refused(zero_param_ckpt: dict, tmp_path: Path) -> None:
    state = {k: v.clone() for k, v in zero_param_ckpt["state_dict"].items()}
    state["gains.learnableGainsTeS"][0, 3] = float("nan")
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt", state_dict=state)
    with pytest.raises(ValueError, match=r"NaN or infinite weights in \['gains.learnableGainsTeS'\]"):
        zoo.load("zero_param", path)


def test_missing_file_names_train_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="python -m motionseg train learnable"):
        zoo.load("learnable", tmp_path / "missing.pt")


def test_version1_checkpoint_of_the_former_models_is_refused(zero_param_ckpt: dict, tmp_path: Path) -> None:
    old = {"format": checkpoint.FORMAT, "version": 1, "model": "learnable", "image_size": 128,
           "model_config": {"class": "LearnableModel", "revision": 4}, "state_dict": {}}
    path = write_variant(old, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="now calls learnable_plus.*train learnable_plus"):
        zoo.load("learnable", path)


def test_atomic_save_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "x" / "checkpoint.pt"
    checkpoint.save_atomic({"a": torch.ones(2)}, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_atomic({"a": torch.zeros(2)}, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]
    assert torch.equal(checkpoint._load(path)["a"], torch.ones(2))  # the old file is intact


def test_options_added_later_take_their_defaults(zero_param_ckpt: dict, tmp_path: Path) -> None:
    # a checkpoint written before an option existed was made with the option's default
    args = copy.deepcopy(zero_param_ckpt["model_args"])
    del args["options"]["dog"]
    path = write_variant(zero_param_ckpt, tmp_path / "c.pt", model_args=args)
    assert zoo.load("zero_param", path).options.dog is True
    with pytest.raises(ValueError, match="dog: checkpoint True, model False"):
        zoo.load("zero_param", path, options={"dog": False})
