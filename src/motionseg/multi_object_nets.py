"""Beyond the paper: the multi-object model with learnable nets on its layers and background.

:mod:`motionseg.multi_object` estimates, with zero network parameters, K layers (each a
premultiplied FG and an A per template) and one background from all seed frames. Inside
``learnable_plus`` the paper's three nets refine the cycle's running estimate at every seed
step; the multi-object model runs no cycle, so here the nets refine what it estimated, once,
before the roll-out (the same DenseNet-like net of four 3x3 convolutions as
:mod:`motionseg.cycle_nets`, one output channel, starting as the identity on its first input):

* ``alpha`` (inputs A_k and FG_k A_k of a template) gives the layer's A,
* ``fg`` (inputs FG_k A_k and A_k) gives its premultiplied FG (at most A, as in the least squares),
* ``bg`` (inputs BG and ``seen``) enters only where the background was not observed (weight
  ``1 - seen``), as ``learnable_plus``'s gated background net.

The same two layer nets serve every layer and template. A layer with no moving object stays
empty (one that no sequence of a batch has is not refined at all). The estimate itself (motions, masks, order, the gains of ``multi_object``) is held: it
runs without gradient, and training moves the nets alone (2,361 parameters).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .cycle_nets import DenseNet4
from .multi_object import MultiObject, MultiOptions, ObjectLayers
from .options import switch_off


class MultiObjectNets(MultiObject):
    """:class:`MultiObject` whose layers and background are refined by three small nets."""

    def __init__(self, options: MultiOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.nets = nn.ModuleDict({"alpha": DenseNet4(2), "fg": DenseNet4(2), "bg": DenseNet4(2)})
        for p in self.gains.parameters():  # the estimate is multi_object's, held
            p.requires_grad_(False)
        self.disabled: set[str] = set()  # nets switched off, for ablations

    def without(self, *names: str) -> "MultiObjectNets":
        """Switch the named nets off (their images are then left as the estimate made them)."""
        self.disabled = switch_off(self.nets, names)
        return self

    def refine_layer(self, premult: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
        """One template's premultiplied FG and A (B x H x W each) through the layer nets."""
        new_alpha = alpha
        if "alpha" not in self.disabled:
            new_alpha = self.nets["alpha"](torch.stack([alpha, premult], 1))[:, 0].clamp(0.0, 1.0)
        new_premult = premult
        if "fg" not in self.disabled:
            new_premult = self.nets["fg"](torch.stack([premult, alpha], 1))[:, 0].clamp(0.0, 1.0)
        return torch.minimum(new_premult, new_alpha), new_alpha

    def refine_background(self, bg: Tensor, seen: Tensor) -> Tensor:
        """BG where it was not observed from the background net (B x H x W)."""
        if "bg" in self.disabled:
            return bg
        out = self.nets["bg"](torch.stack([bg, seen], 1))[:, 0]
        return (bg + (1 - seen.clamp(0.0, 1.0)) * (out - bg)).clamp(0.0, 1.0)

    def estimate(self, x: Tensor, first_alpha: Tensor | None = None
                 ) -> tuple[ObjectLayers, list[list[tuple[Tensor, Tensor, int]]]]:
        """:meth:`MultiObject.estimate` (held, no gradient), its templates and BG refined by the nets."""
        with torch.no_grad():
            layers, templates = super().estimate(x, first_alpha)
        present = layers.present.to(x.dtype)[:, :, None, None]
        refined = []
        for k, layer_templates in enumerate(templates):
            if not layers.present[:, k].any():  # empty in every sequence: stays empty, nothing to refine
                refined.append(layer_templates)
                continue
            refined.append([])
            for pm, a, lag in layer_templates:
                pm, a = self.refine_layer(pm, a)
                refined[-1].append((pm * present[:, k], a * present[:, k], lag))
        layers.premult = torch.stack([t[0][0] for t in refined], 1)  # the lag-0 templates, as refined
        layers.alpha = torch.stack([t[0][1] for t in refined], 1)
        layers.bg = self.refine_background(layers.bg, layers.seen)
        return layers, refined
