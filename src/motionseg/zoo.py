"""Every model of the project by name, and its trained checkpoint in ``results/``.

``zoo.load(name)`` returns the trained model on the CPU in eval mode; its
``forward(seed_frames, n_future=10)`` takes B x S x H x W frames in [0, 1] and returns
B x n_future x H x W predictions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import config
from .train import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, TrainConfig

RESULTS = Path(__file__).resolve().parents[2] / "results"


def _zero_param(image_size: int) -> nn.Module:
    from .zero_param import ZeroParamModel
    return ZeroParamModel()


def _learnable(image_size: int) -> nn.Module:
    from .learnable import LearnableModel
    return LearnableModel()


def _conv_pgp(image_size: int) -> nn.Module:
    from .baselines import ConvPGP
    return ConvPGP()


def _vln_resnet(image_size: int) -> nn.Module:
    from .baselines import VLNResNet
    return VLNResNet(image_size=image_size)


def _vln_ldc(image_size: int) -> nn.Module:
    from .baselines import VLNLDC
    return VLNLDC(image_size=image_size)


BUILDERS: dict[str, Callable[[int], nn.Module]] = {
    "zero_param": _zero_param,
    "learnable": _learnable,
    "conv_pgp": _conv_pgp,
    "vln_resnet": _vln_resnet,
    "vln_ldc": _vln_ldc,
}

# Training settings per model and profile. Gains are trained in log space, hence the
# larger learning rate of the zero-parameter model.
TRAINING: dict[str, dict[str, dict[str, Any]]] = {
    "zero_param": {
        "quick": dict(steps=300, batch_size=8, n_train=2400, lr=0.05, cycle_steps=100, val_every=50,
                      checkpoint_every=50, n_val=32),
        "full": dict(steps=1500, batch_size=32, n_train=48000, lr=0.05, cycle_steps=500, val_every=250,
                     checkpoint_every=250, n_val=256, workers=8),
    },
    "learnable": {
        "quick": dict(steps=300, batch_size=8, n_train=2400, lr=0.01, cycle_steps=100, val_every=50,
                      checkpoint_every=50, n_val=32, init_from="zero_param"),
        # two learning-rate cycles; a third (revision 1) fitted the training photos better and
        # the test photos worse. One cycle (--steps 1000) fits in an hour on 2 CPU cores.
        "full": dict(steps=2000, batch_size=32, n_train=96000, lr=0.01, cycle_steps=1000, val_every=250,
                     checkpoint_every=250, n_val=256, workers=6, init_from="zero_param"),
    },
    "conv_pgp": {
        "quick": dict(steps=100, batch_size=4, n_train=400, lr=4e-4, weight_decay=1e-5, cycle_steps=100,
                      val_every=50, checkpoint_every=25, n_val=16),
        "full": dict(steps=20000, batch_size=16, n_train=320000, lr=4e-4, weight_decay=1e-5, cycle_steps=4000,
                     val_every=1000, checkpoint_every=500, n_val=256, workers=3),
    },
    "vln_resnet": {
        "quick": dict(steps=100, batch_size=4, n_train=400, lr=2e-4, cycle_steps=100, val_every=50,
                      checkpoint_every=25, n_val=16),
        "full": dict(steps=20000, batch_size=16, n_train=320000, lr=2e-4, cycle_steps=4000, val_every=1000,
                     checkpoint_every=500, n_val=256, workers=3),
    },
}
TRAINING["vln_ldc"] = TRAINING["vln_resnet"]


def names() -> list[str]:
    """Names accepted by :func:`build` and :func:`load`."""
    return list(BUILDERS)


def _check_name(name: str) -> None:
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}: allowed are {', '.join(BUILDERS)}")


def build(name: str, image_size: int = 128) -> nn.Module:
    """A freshly initialised model."""
    _check_name(name)
    return BUILDERS[name](image_size)


def model_config(model: nn.Module) -> dict[str, Any]:
    """What must match between a checkpoint and the model it is loaded into."""
    out = {"class": type(model).__name__,
           "parameters": {k: list(v.shape) for k, v in model.state_dict().items()}}
    revision = getattr(model, "revision", None)
    if revision is not None:  # models whose behaviour changed without a change of shapes
        out["revision"] = revision
    return out


def training_config(name: str, profile: str | None = None, **overrides: Any) -> TrainConfig:
    """The training settings of model ``name`` in ``profile`` (quick or full)."""
    _check_name(name)
    prof = config.profile_name(profile)
    settings = dict(TRAINING[name][prof], **overrides)
    return TrainConfig(model=name, profile=prof, **settings)


def checkpoint_path(name: str, root: Path | None = None) -> Path:
    """``results/<name>/checkpoint.pt``."""
    return (root or RESULTS) / name / "checkpoint.pt"


def read_checkpoint(path: Path, expect_model: str | None = None, image_size: int | None = None) -> dict[str, Any]:
    """Read a checkpoint, with clear errors for foreign, mismatched or incompatible files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; create it with "
                                f"`python -m motionseg train {expect_model or 'MODEL'}`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a readable motionseg checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a motionseg checkpoint (no format tag {CHECKPOINT_FORMAT!r})")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} has checkpoint version {ckpt.get('version')}, this motionseg reads "
                         f"version {CHECKPOINT_VERSION}; retrain with `python -m motionseg train {ckpt.get('model')}`")
    if expect_model is not None and ckpt.get("model") != expect_model:
        raise ValueError(f"{path} holds a {ckpt.get('model')!r} model, not {expect_model!r}")
    if image_size is not None and ckpt.get("image_size") != image_size:
        raise ValueError(f"{path} was trained for {ckpt.get('image_size')} x {ckpt.get('image_size')} images, "
                         f"not {image_size} x {image_size}")
    return ckpt


def check_fits(ckpt: dict[str, Any], model: nn.Module, path: Path, exact: bool = False) -> None:
    """Raise ``ValueError`` unless checkpoint ``ckpt`` (read from ``path``) was made for ``model``.

    A model may declare older revisions whose trained weights it can use unchanged
    (``weights_from``: the later revision only added steps without parameters); such a
    checkpoint fits for loading, but not with ``exact=True`` (resuming its training).
    """
    name = ckpt.get("model")
    expected = model_config(model)
    got = ckpt.get("model_config") or {}
    accepted = {expected.get("revision")}
    if not exact:
        accepted |= set(getattr(model, "weights_from", ()))
    if got.get("revision") not in accepted:
        also = f" (and loads weights of revisions {sorted(accepted)})" if len(accepted) > 1 else ""
        raise ValueError(f"{path} was trained with revision {got.get('revision', 1)} of the {name} model, "
                         f"this code builds revision {expected.get('revision', 1)}{also}; "
                         f"retrain it with `python -m motionseg train {name}` (without --resume)")
    if {**got, "revision": None} != {**expected, "revision": None}:
        raise ValueError(f"{path} does not fit the current {name} model: checkpoint has "
                         f"{got}, the code builds {expected}")


def load(name: str, path: str | Path | None = None, image_size: int = 128) -> nn.Module:
    """The trained model ``name`` from its committed checkpoint, on the CPU, in eval mode."""
    _check_name(name)
    path = Path(path) if path is not None else checkpoint_path(name)
    ckpt = read_checkpoint(path, expect_model=name, image_size=image_size)
    model = build(name, image_size)
    check_fits(ckpt, model, path)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    model.provenance = ckpt.get("provenance", {})  # type: ignore[attr-defined]
    # the revision the weights were trained with (older than the model's, see check_fits)
    model.weights_revision = (ckpt.get("model_config") or {}).get("revision")  # type: ignore[attr-defined]
    model.history = ckpt.get("history", {})  # type: ignore[attr-defined]
    return model
