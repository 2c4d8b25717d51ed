"""The authors' released checkpoints, loaded into the paper's models as this project implements them.

``data/authors/NoParam.th`` and ``WithParam.th`` are the two files of the paper's repository
(AIS-Bonn/MotionSegmentation, ``savedModels/``), vendored byte for byte; see the README beside
them. :func:`load` checks a file's size and SHA-256, reads it with ``weights_only=True`` and puts
its tensors into :class:`~motionseg.zero_param.ZeroParamModel` or
:class:`~motionseg.learnable.LearnableModel`, whose parameters carry the release's names and
shapes. Nothing is retrained.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data import DATA_DIR, DataFileError

AUTHORS_DIR = DATA_DIR / "authors"
SOURCE = "AIS-Bonn/MotionSegmentation, commit 905adf1f4ae26fe527d2fe83c6be39e49a3dba01, savedModels/"
FILES = {
    "zero_param_authors": ("NoParam.th", 1670, "36ba8aa970960b333bff4fec082d7048780350e099b8469a0963fca649a1ca9e"),
    "learnable_authors": ("WithParam.th", 13760, "a8dc64c4c3cda7d0f2a265635287417eb02c9501e226404add35994add8df02f"),
}
GAIN_KEYS = ("learnableGains", "learnableGainsInit", "learnableGainsF", "learnableGainsTeS", "learnableGainsDOG")
NET_KEYS = ("modelA", "modelFG", "modelBG")


def path_of(name: str) -> Path:
    """The vendored file of ``zero_param_authors`` or ``learnable_authors``."""
    if name not in FILES:
        raise ValueError(f"unknown authors' checkpoint {name!r}: allowed are {', '.join(FILES)}")
    return AUTHORS_DIR / FILES[name][0]


def read(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The release's tensors, after checking the file's size and SHA-256."""
    path = (Path(folder) if folder is not None else AUTHORS_DIR) / path_of(name).name
    _, size, sha = FILES[name]
    if not path.is_file():
        raise DataFileError(f"the authors' checkpoint {path} is missing; it is vendored in the repository "
                            f"(from {SOURCE}): restore it with git")
    raw = path.read_bytes()
    if len(raw) != size or hashlib.sha256(raw).hexdigest() != sha:
        raise DataFileError(f"the authors' checkpoint {path} has changed ({len(raw)} bytes, expected {size} with "
                            f"SHA-256 {sha[:12]}...); restore the vendored file with git")
    with open(path, "rb") as f:
        return torch.load(f, map_location="cpu", weights_only=True)


def state_dict(release: dict[str, Any], with_nets: bool) -> dict[str, torch.Tensor]:
    """The release's tensors under our parameter names (``gains.<key>``, ``nets.<net>.<layer>``)."""
    out = {f"gains.{k}": release[k].detach().float().clone() for k in GAIN_KEYS}
    if with_nets:
        for net in NET_KEYS:
            out.update({f"nets.{net}.{k}": v.detach().float().clone() for k, v in release[net].items()})
    return out


def load(name: str, options: dict[str, Any] | None = None, folder: Path | None = None) -> nn.Module:
    """``zero_param_authors`` or ``learnable_authors``: the paper's model with the authors' weights, eval mode.

    ``options`` changes the readings (see :class:`motionseg.zero_param.Options`), e.g. to run the
    released weights under a reading they did not choose.
    """
    from .learnable import LearnableModel
    from .zero_param import ZeroParamModel

    release = read(name, folder)
    with_nets = name == "learnable_authors"
    model = LearnableModel(options) if with_nets else ZeroParamModel(options)
    model.load_state_dict(state_dict(release, with_nets))
    model.eval()
    model.provenance = {"source": SOURCE, "file": FILES[name][0], "sha256": FILES[name][2],  # type: ignore[attr-defined]
                        "command": "none: the authors' trained weights, not retrained"}
    model.history = {}  # type: ignore[attr-defined]
    model.trained_steps = None  # type: ignore[attr-defined]
    model.selected_step = None  # type: ignore[attr-defined]
    return model
