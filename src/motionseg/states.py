"""The state of a prediction-correction model, shared by the paper's models and ours.

``Layers`` holds the spatial states of one step; ``States`` records them step by step for the
book's figures and the per-step metrics (mask IoU, velocity error).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from . import fourier


@dataclass
class Layers:
    """The spatial states, each B x H x W."""

    fg: Tensor
    bg: Tensor
    alpha: Tensor
    seen: Tensor | None = None  # used by our models: how surely each BG pixel has been observed


@dataclass
class States:
    """Per-step states for figures: each list entry is B x H x W (``motion`` complex)."""

    fg: list[Tensor] = field(default_factory=list)
    bg: list[Tensor] = field(default_factory=list)
    alpha: list[Tensor] = field(default_factory=list)
    motion: list[Tensor] = field(default_factory=list)
    velocity: list[Tensor] = field(default_factory=list)  # B x 2, (dy, dx) px/frame
    frame: list[Tensor] = field(default_factory=list)  # composed prediction of each step

    def stacked(self) -> dict[str, Tensor]:
        """All states stacked along time (B x steps x ...), detached."""
        return {k: torch.stack([x.detach() for x in v], 1) for k, v in self.__dict__.items() if v}

    def record(self, keep: bool, layers: Layers, motion: Tensor, frame: Tensor) -> None:
        """Append one step's states (if ``keep``)."""
        if keep:
            for name, value in (("fg", layers.fg), ("bg", layers.bg), ("alpha", layers.alpha),
                                ("motion", motion), ("velocity", fourier.estimate_shift(motion)),
                                ("frame", frame)):
                getattr(self, name).append(value.detach())
