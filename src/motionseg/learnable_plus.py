"""Our learnable model: the paper's three nets (:mod:`motionseg.cycle_nets`) inside our zero-parameter model.

All steps of :mod:`motionseg.zero_param_plus` are on, including both backward looks over the
seed frames (``smooth_background``, ``smooth_layers``), and one option of its own:

* ``bg_gate``: the background net sees, instead of the frame, how surely each background pixel
  has been observed (``seen``), and its output only enters where that is low (its blend
  weight is scaled by ``1 - seen``); it also fills in once more after the seed frames. Without
  the gate the net rewrote observed background too: on our test photos it biased dark regions,
  the alpha correction turned that bias into spurious mask blobs, and these moved with the
  digit as ghosts (the book's learnable-extension chapter shows it).

With every option off the model is exactly the first reading of the paper's learnable extension
(:mod:`motionseg.cycle_nets`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from .cycle_nets import CycleNets
from .cycle import Layers
from .zero_param_plus import PlusOptions, ZeroParamPlus


@dataclass(frozen=True)
class LearnablePlusOptions(PlusOptions):
    """:class:`PlusOptions` with the backward looks on, and the background gate."""

    smooth_background: bool = True
    smooth_layers: bool = True
    bg_gate: bool = True

    STEPS: ClassVar[tuple[str, ...]] = PlusOptions.STEPS + ("bg_gate",)


class LearnablePlus(CycleNets, ZeroParamPlus):
    """The paper's three nets in our zero-parameter model, with the background gate."""

    options_class = LearnablePlusOptions
    options: LearnablePlusOptions

    def net_input(self, name: str, x: Tensor, layers: Layers, obs: Tensor | None) -> Tensor | None:
        if name == "bg" and self.options.bg_gate:
            assert layers.seen is not None
            return torch.stack([x, layers.seen], 1)
        return super().net_input(name, x, layers, obs)

    def blend_weight(self, name: str, t: int, first: bool, layers: Layers) -> Tensor | float:
        w = super().blend_weight(name, t, first, layers)
        if name == "bg" and self.options.bg_gate:
            assert layers.seen is not None
            w = w * (1 - layers.seen.clamp(0.0, 1.0))  # observed background is kept as observed
        return w
