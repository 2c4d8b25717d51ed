"""The learnable extension (paper Sec. 3.3): three small conv nets inside the filter.

Each of FG, A and BG gets a 4-layer convolutional net with DenseNet-like connections
(every layer sees the net's input and all earlier layers' outputs; 3x3 kernels, 4
channels per hidden layer, ReLU, one output channel):

* ``net_alpha`` (1 input, 670 parameters) refines the mask,
* ``net_fg`` (1 input, 670 parameters) refines the foreground,
* ``net_bg`` (2 inputs: the background and how surely each of its pixels has been
  observed; 787 parameters) refines the background and fills in what was occluded.

2,127 parameters in all. At every step each state becomes the weighted average
``(1 - w_t) * state + w_t * net(state)``; ``w_t`` is a trainable per-step gain that
starts at 1 at the first segmentation (the net alone) and decays, so later steps rely more
and more on the filter's own updates.

The background net's weight is further scaled by ``1 - seen``, how unsure the filter is
that it has observed a pixel: observed background is already what the correction step
made of the observations, so the net only fills in what was occluded. Without this gate
(revision 1 of this model) the net also rewrote observed background; on the test photos
it biased dark regions, the alpha correction turned that bias into spurious mask blobs,
and the blobs moved with the digit as ghosts (a third of the test MSE; the book's
learnable-extension chapter shows it).

Revision 3 also turns on the filter's ``smooth_background`` option: after the seed frames
the background is re-estimated from all of them, with the final mask moved back along the
estimated velocity (see :meth:`ZeroParamModel.smooth_background`). Revision 4 turns on
``smooth_layers`` as well: foreground and mask are then re-estimated by least squares over
all seed frames aligned by the motion, one template for each sub-pixel phase the motion
visits, and the background once more from the better mask (see
:meth:`ZeroParamModel.smooth_layers`). Both steps have no trainable parameters.

The last layer of each net starts as the identity on its first input, so the untrained
extension behaves exactly like the zero-parameter filter with the same options, and
training only has to learn improvements.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .zero_param import N_STEPS, Options, ZeroParamModel


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


class LearnableModel(ZeroParamModel):
    """The zero-parameter filter with three learnable refinement nets (2,127 parameters)."""

    # Checkpoints record this; one made for another revision is refused on loading.
    # 2: the background net only fills in unobserved background;
    # 3: the background is re-estimated from all seed frames before the roll-out;
    # 4: so are foreground and mask (one template per sub-pixel phase), in two rounds.
    revision = 4
    # Revision 4 only adds steps without parameters after the seed frames, so weights trained
    # under revision 3 load into it unchanged (they are not resumed: see zoo.check_fits).
    weights_from = (3,)

    def __init__(self, n_steps: int = N_STEPS, options: Options | None = None,
                 gains: dict[str, float] | None = None) -> None:
        super().__init__(n_steps, options or Options(smooth_background=True, smooth_layers=True), gains)
        self.nets = nn.ModuleDict({"alpha": DenseNet4(1), "fg": DenseNet4(1), "bg": DenseNet4(2)})
        # mixing weights as logits: 1 at the first segmentation, then decaying
        decay = torch.tensor([0.5 / (1 + 0.5 * k) for k in range(n_steps)])
        logits = torch.logit(decay.clamp(1e-3, 1 - 1e-3))
        for name in self.nets:
            self.gains[f"mix_{name}"] = nn.Parameter(logits.clone())
        self.disabled: set[str] = set()  # nets switched off, for ablations

    def without(self, *names: str) -> "LearnableModel":
        """Switch the named nets off (their states are then left as the filter made them)."""
        unknown = set(names) - set(self.nets)
        if unknown:
            raise ValueError(f"unknown nets {sorted(unknown)}: allowed are {sorted(self.nets)}")
        self.disabled = set(names)
        return self

    def refine(self, name: str, x: Tensor, t: int, context: Tensor | None = None, first: bool = False) -> Tensor:
        """Blend the state with its net's output; the net alone at the first segmentation.

        For ``"bg"`` the blend weight is scaled by ``1 - context`` (``context`` is how surely
        each pixel has been observed), so only unobserved background is filled in by the net.
        """
        if name in self.disabled:
            return x
        inp = x[:, None] if context is None else torch.stack([x, context], 1)
        out = self.nets[name](inp)[:, 0]
        w: Tensor | float = 1.0 if first else torch.sigmoid(self.gains[f"mix_{name}"][min(t, self.n_steps - 1)])
        if name == "bg" and context is not None:
            w = w * (1 - context.clamp(0.0, 1.0))  # observed background is kept as observed
        return ((1 - w) * x + w * out).clamp(0.0, 1.0)
