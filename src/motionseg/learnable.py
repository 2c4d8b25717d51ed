"""The paper's learnable extension (Sec. 3.3), wired as the authors' released nets require.

Three conv nets of four 3x3 layers with DenseNet-like connections (each layer sees the net's
input and every earlier layer's output, input first; 4 channels per hidden layer, ReLU after the
first three, one output channel), 2,127 parameters, Table 1's "2K":

* ``modelA`` (1 input, 670 parameters) turns the motion evidence into the first mask and, at
  every seed frame, refines the corrected mask;
* ``modelFG`` (1 input, 670) makes the first foreground from ``g * A * (-F)``, the correction
  a foreground of zeros would receive (``g = sigmoid`` of an init gain);
* ``modelBG`` (2 inputs, 787) makes the first background from the same correction of a
  background of zeros, ``g' * (1 - A) * (-F)``, and the mask A: it fills in what A hides.

That is the paper's "for initializing the spatial states FG, BG, and A we use three different
convolutional networks": the first estimates (frames 0 and 1) are the nets' outputs, clamped to
[0, 1]; the state at frame 1 is the moved state alone (the estimate of frame 1 only starts
``T``). The paper's "weighted average between the updated state and the output of the
convolutional network" with "a decaying gain" has no tensor in the release; under the reading
the authors' nets fit best it applies to A: after each seed frame's correction
``A <- (1 - w_i) A + w_i * clamp(modelA(A))`` with ``w_i = 1 / (i + 2)`` (1/2 at frame 0,
decaying), and FG and BG keep their corrected values. Everything else is
:mod:`motionseg.zero_param`. The module and layer names are the release's, so that the authors'
checkpoint loads as it is (:mod:`motionseg.authors`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .options import switch_off
from .states import Layers
from .zero_param import N_INIT, Options, ZeroParamModel, soft_clamp


class DenseNet(nn.Module):
    """Four 3x3 conv layers ``c1 .. c4`` with dense connections (input first), one output channel."""

    def __init__(self, in_channels: int, growth: int = 4, start: float | None = None) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, growth, 3, padding=1)
        self.c2 = nn.Conv2d(in_channels + growth, growth, 3, padding=1)
        self.c3 = nn.Conv2d(in_channels + 2 * growth, growth, 3, padding=1)
        self.c4 = nn.Conv2d(in_channels + 3 * growth, 1, 3, padding=1)
        if start is not None:  # start as ``start`` times the first input channel, plus a little of the rest
            with torch.no_grad():
                self.c4.weight.mul_(0.01)
                self.c4.weight[0, 0].zero_()
                self.c4.weight[0, 0, 1, 1] = start
                self.c4.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """B x C x H x W in, B x H x W out."""
        feats = [x]
        for conv in (self.c1, self.c2, self.c3):
            feats.append(torch.relu(conv(torch.cat(feats, 1))))
        return self.c4(torch.cat(feats, 1))[:, 0]


@dataclass(frozen=True)
class LearnableOptions(Options):
    """The zero-parameter model's readings, and where the nets act."""

    refine_alpha: bool = True  # modelA also refines A after every seed frame's correction


class LearnableModel(ZeroParamModel):
    """The paper's zero-parameter model with three nets (2,127 parameters)."""

    options_class: ClassVar[type[Options]] = LearnableOptions

    def __init__(self, options: Options | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if self.options.init_gains != "unused":
            raise ValueError(f"option init_gains={self.options.init_gains!r} is a reading of the zero-parameter "
                             "model's first estimates; the learnable extension's come from its nets (allowed: 'unused')")
        # Our start (the authors' is not known): the nets begin as the zero-parameter model's
        # estimates, A the evidence itself, FG and BG -2 x their input (the correction of a zero
        # state with the starting gain 1/2 is -F/2 times A or 1 - A); training changes them from there.
        self.nets = nn.ModuleDict({"modelA": DenseNet(1, start=1.0), "modelFG": DenseNet(1, start=-2.0),
                                   "modelBG": DenseNet(2, start=-2.0)})
        self.disabled: set[str] = set()  # nets switched off, for ablations

    def without(self, *names: str) -> "LearnableModel":
        """Switch the named nets off (``modelA``, ``modelFG``, ``modelBG``): their step keeps the filter's value."""
        self.disabled = switch_off(self.nets, names)
        return self

    def _net(self, name: str, x: Tensor, fallback: Tensor) -> Tensor:
        return fallback if name in self.disabled else self.nets[name](x).clamp(0.0, 1.0)

    def estimate(self, x: Tensor, k: int) -> Layers:
        """The first estimate at frame ``k``: the nets' outputs from the motion evidence and the frame."""
        frame = x[:, k]
        evidence = soft_clamp(self.gains["learnableGainsInit"][3, 0] * (x[:, k + 1] - frame).abs())
        alpha = self._net("modelA", evidence[:, None], evidence)
        g_fg = torch.sigmoid(self.gains["learnableGainsInit"][0, k])
        g_bg = torch.sigmoid(self.gains["learnableGainsInit"][1, k])
        fg = self._net("modelFG", (g_fg * alpha * -frame)[:, None], alpha * frame)
        bg = self._net("modelBG", torch.stack([g_bg * (1 - alpha) * -frame, alpha], 1), frame)
        return Layers(fg=fg, bg=bg, alpha=alpha)

    def blend_estimate(self, moved: Layers, estimate: Layers) -> Layers:
        """At frame 1 the moved state alone (the estimate of frame 1 only started ``T``)."""
        return moved

    def refine(self, layers: Layers, i: int, estimate: Layers | None) -> Layers:
        """``A <- (1 - w) A + w * modelA(A)``, ``w = 1 / (i + 2)``."""
        if not self.options.refine_alpha or "modelA" in self.disabled:  # type: ignore[attr-defined]
            return layers
        w = 1.0 / (i + 2)
        alpha = (1 - w) * layers.alpha + w * self.nets["modelA"](layers.alpha[:, None]).clamp(0.0, 1.0)
        return Layers(fg=layers.fg, bg=layers.bg, alpha=alpha)


assert N_INIT == 2  # the init block of the release has two columns, one per first estimate
