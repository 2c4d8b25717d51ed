"""Three small conv nets inside the first-read cycle: the base of our ``learnable_plus``.

This was the project's first reading of the paper's learnable extension (Sec. 3.3); the
authors' released nets do not fit it (:mod:`motionseg.learnable` holds the paper's model now).

FG, A and BG each get a net of four convolutional layers with DenseNet-like connections (every
layer sees the net's input and all earlier layers' outputs; 3x3 kernels, 4 channels per hidden
layer, ReLU, one output channel):

* ``net_alpha`` (1 input: A, 670 parameters),
* ``net_fg`` (1 input: FG, 670 parameters),
* ``net_bg`` (2 inputs: BG and the current frame, 787 parameters; the paper does not say
  which two inputs, the reference notes infer these), which also fills in occluded background.

2,127 parameters in all, Table 1's "2K". At every seed step each state becomes the weighted
average ``(1 - w_t) * state + w_t * net(state)`` of the updated state and its net's output;
``w_t`` is a trainable per-step gain that is 1 at the first step (the net alone initialises the
state) and starts decaying, so that later steps rely more and more on the updated states. After
the seed frames the state is rolled forward as in the zero-parameter model.

The last layer of each net starts as the identity on its first input, so the untrained
extension behaves like the zero-parameter model and training only has to learn improvements.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .cycle import N_STEPS, CycleModel, Layers, Options
from .options import switch_off


class DenseNet4(nn.Module):
    """Four 3x3 conv layers with dense connections, ReLU between, one output channel."""

    def __init__(self, in_channels: int, growth: int = 4, layers: int = 4) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        channels = in_channels
        for i in range(layers):
            out = 1 if i == layers - 1 else growth
            self.convs.append(nn.Conv2d(channels, out, 3, padding=1))
            channels += out
        last = self.convs[-1]
        with torch.no_grad():  # start as the identity on the first input channel
            last.weight.mul_(0.01)
            last.weight[0, 0].zero_()
            last.weight[0, 0, 1, 1] = 1.0
            last.bias.zero_()
        # Channels-last weights and inputs make the model's training step about 1.25x cheaper
        # on the CPU (benchmarks/bench_train_step.py); results are unchanged.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        feats = [x.contiguous(memory_format=torch.channels_last)]
        for i, conv in enumerate(self.convs):
            y = conv(torch.cat(feats, 1))
            if i < len(self.convs) - 1:
                y = torch.relu(y)
            feats.append(y)
        return feats[-1]


class CycleNets(CycleModel):
    """The first-read cycle with three learnable nets (2,127 parameters)."""

    def __init__(self, options: Options | dict[str, Any] | None = None, n_steps: int = N_STEPS) -> None:
        super().__init__(options, n_steps)
        self.nets = nn.ModuleDict({"alpha": DenseNet4(1), "fg": DenseNet4(1), "bg": DenseNet4(2)})
        # blend weights as logits: 1 at the first step (fixed), then decaying from 0.5
        decay = torch.tensor([0.5 / (1 + 0.5 * k) for k in range(n_steps)])
        for name in self.nets:
            self.gains[f"mix_{name}"] = nn.Parameter(torch.logit(decay))
            self.gain_kinds[f"mix_{name}"] = "logit"
        self.disabled: set[str] = set()  # nets switched off, for ablations

    def without(self, *names: str) -> "CycleNets":
        """Switch the named nets off (their states are then left as the filter made them)."""
        self.disabled = switch_off(self.nets, names)
        return self

    def net_input(self, name: str, x: Tensor, layers: Layers, obs: Tensor | None) -> Tensor | None:
        """What the net of state ``name`` sees (``None``: nothing to refine with)."""
        if name == "bg":
            return None if obs is None else torch.stack([x, obs], 1)
        return x[:, None]

    def blend_weight(self, name: str, t: int, first: bool, layers: Layers) -> Tensor | float:
        """Weight of the net's output in the state: 1 at the first step, then a per-step gain."""
        return 1.0 if first else self.gain(f"mix_{name}", t)

    def refine(self, name: str, x: Tensor, t: int, layers: Layers, obs: Tensor | None, first: bool) -> Tensor:
        """The weighted average of the updated state and its net's output."""
        if name in self.disabled:
            return x
        inp = self.net_input(name, x, layers, obs)
        if inp is None:
            return x
        out = self.nets[name](inp)[:, 0]
        w = self.blend_weight(name, t, first, layers)
        return ((1 - w) * x + w * out).clamp(0.0, 1.0)
