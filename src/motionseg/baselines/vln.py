"""Video Ladder Network baselines: VLN-ResNet and its location-dependent variant VLN-LDC.

A VLN is a recurrent ladder: a dilated residual encoder pyramid, one conv-LSTM per
level on the encoder features, and a decoder that climbs back up, joining at each
level the decoder signal, that level's LSTM state and the encoder features with 1x1
"compressor" convolutions. Every step maps frame t to a prediction of frame t+1.

Wiring (levels i = 0..L-1, channels c_i; defaults c = (28, 58, 90), 128x128 input)::

    enc_i   = EncoderBlock_i(enc_{i-1})              # c_i channels at H / 2^(i+1)
    h_i     = ConvLSTM_i(enc_i)
    z_top   = comp(cat[enc_L-1, h_L-1])              # 2 c_L-1 -> c_L-1   (180 -> 90)
    d_L-1   = DecoderBlock_L-1(z_top)                # up-sampled to H / 2^(L-1)
    z_i     = LReLU(comp(cat[d_i+1, h_i]))           # c_i+1 + c_i -> c_i (148 -> 58, 86 -> 28)
    z_i     = comp(cat[enc_i, z_i])                  # 2 c_i -> c_i       (116 -> 58, 56 -> 28)
    d_i     = DecoderBlock_i(z_i)
    x_next  = sigmoid(comp(d_0))                     # c_0 -> 1

Parameter count. With the listed layer shapes, two BatchNorms per encoder block
(before each 3x3 conv) and two per decoder block (before the transposed conv and
before the residual pair), a 1-channel input gives 1,319,865 parameters, 564 short of
the paper's 1,320,429. Those 564 are exactly what two extra, parameter-free input
channels add to the first encoder block (BN: 2 x 2, 3x3 conv: 2 x 9 x 28, 1x1 skip:
2 x 28) -- the authors' code can append normalised x/y coordinate channels to the frame.
``coord_channels=True`` (the default) does that and reproduces 1,320,429 exactly.

VLN-LDC (location-dependent convolution) adds a learnable per-pixel bias map
(1 x 1 x H_i x W_i, zero-initialised, broadcast over channels) to the output of *both*
3x3 convs of every encoder block -- the two convs that are location-aware in the
authors' encoder. At 128x128 that is 2 x (128^2 + 64^2 + 32^2) = 43,008 parameters,
1,363,437 in total.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from motionseg.baselines.conv_pgp import sigmoid_fp32
from motionseg.validation import check_seed_frames

_LEAK = 0.2

_State = tuple[Tensor, Tensor]  # conv-LSTM (hidden, cell)


class _EncoderBlock(nn.Module):
    """Dilated residual block followed by 2x max pooling.

    ``loc_size`` (H, W of the block input) turns on the location-dependent bias maps.
    """

    def __init__(self, c_in: int, c_out: int, dilation: int, loc_size: tuple[int, int] | None) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation)
        self.bn_mid = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=2 * dilation, dilation=2 * dilation)
        # The skip sees the raw (un-normalised) input, as in the authors' block.
        self.skip = nn.Conv2d(c_in, c_out, 1)
        self.act = nn.LeakyReLU(_LEAK)
        self.pool = nn.MaxPool2d(2)
        self.loc1: nn.Parameter | None = None
        self.loc2: nn.Parameter | None = None
        if loc_size is not None:
            self.loc1 = nn.Parameter(torch.zeros(1, 1, *loc_size))
            self.loc2 = nn.Parameter(torch.zeros(1, 1, *loc_size))

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(self.act(self.bn_in(x)))
        if self.loc1 is not None:
            h = h + self.loc1
        h = self.conv2(self.act(self.bn_mid(h)))
        if self.loc2 is not None:
            h = h + self.loc2
        return torch.relu(self.pool(h + self.skip(x)))


class _DecoderBlock(nn.Module):
    """2x up-sampling transposed conv, then a residual pair sharing one 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(channels)
        # output_padding=1 makes the output exactly twice the input size.
        self.up = nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=1)
        self.bn_mid = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(_LEAK)

    def forward(self, x: Tensor) -> Tensor:
        y = self.up(self.bn_in(x))
        r = self.bn_mid(self.act(y))
        # The same conv twice: the residual branch's depth without doubling its weights.
        r = self.conv(self.act(self.conv(r)))
        return y + r


class _ConvLSTMCell(nn.Module):
    """Conv-LSTM with a single 3x3 conv over [input, hidden] producing gates i, f, o, g."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 4 * channels, 3, padding=1)

    def forward(self, x: Tensor, state: _State | None) -> _State:
        if state is None:
            h = c = torch.zeros_like(x)
        else:
            h, c = state
        i, f, o, g = self.conv(torch.cat((x, h), dim=1)).chunk(4, dim=1)
        # +1 on the forget gate: remember by default early in training.
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class VLNResNet(nn.Module):
    """Video Ladder Network with residual encoder/decoder blocks (Cricri et al., 2016).

    Args:
        image_size: side of the square frames the model is built for; only the
            location-dependent variant depends on it (its bias maps have this size).
        channels: feature channels per level (the paper: 28, 58, 90).
        coord_channels: append normalised x/y coordinate channels to each input frame
            (parameter-free; needed to reproduce the paper's parameter count).
        location_bias: add LDC per-pixel bias maps in the encoder (see :class:`VLNLDC`).
    """

    loss_name: ClassVar[str] = "bce"
    # what ``TrainConfig.compile`` compiles: one time step, the same graph for all 19 steps
    # (compiling the unrolled sequence had not finished after 6 minutes on the 2-core CPU)
    compile_target: ClassVar[str] = "_step"

    def __init__(
        self,
        image_size: int = 128,
        channels: tuple[int, ...] = (28, 58, 90),
        coord_channels: bool = True,
        location_bias: bool = False,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty tuple of positive ints, got {channels}")
        n_levels = len(channels)
        if image_size % (2**n_levels) != 0:
            raise ValueError(f"image_size must be divisible by 2^{n_levels}, got {image_size}")
        self.image_size = image_size
        self.channels = channels
        self.coord_channels = coord_channels
        self.location_bias = location_bias

        c_in = 3 if coord_channels else 1
        self.encoders = nn.ModuleList()
        for i, c in enumerate(channels):
            side = image_size // 2**i
            self.encoders.append(
                _EncoderBlock(c_in, c, dilation=2**i, loc_size=(side, side) if location_bias else None)
            )
            c_in = c
        self.lstms = nn.ModuleList(_ConvLSTMCell(c) for c in channels)
        self.decoders = nn.ModuleList(_DecoderBlock(c) for c in channels)

        top = channels[-1]
        self.compress_top = nn.Conv2d(2 * top, top, 1)
        # Per level below the top: join (decoder from above + LSTM), then (+ encoder).
        self.compress_state = nn.ModuleList(
            nn.Conv2d(channels[i + 1] + channels[i], channels[i], 1) for i in range(n_levels - 1)
        )
        self.compress_skip = nn.ModuleList(
            nn.Conv2d(2 * channels[i], channels[i], 1) for i in range(n_levels - 1)
        )
        self.compress_out = nn.Conv2d(channels[0], 1, 1)
        self.act = nn.LeakyReLU(_LEAK)
        # Channels-last weights make a training step about 1.2x cheaper on the CPU
        # (benchmarks/bench_train_step.py); the computed function is the same.
        self.to(memory_format=torch.channels_last)

    # -- public API ------------------------------------------------------------------
    def forward(self, seed_frames: Tensor, n_future: int = 10) -> Tensor:
        """Predict ``n_future`` frames (B x n_future x H x W) from B x S x H x W seed frames.

        The seed frames are fed as ground truth; afterwards the model's own
        predictions are fed back.
        """
        n_future = check_seed_frames(seed_frames, min_seed=2, n_future=n_future, model=self)
        self._check_size(seed_frames)
        seed_frames = seed_frames.to(next(self.parameters()).dtype)  # float64/16 input, as our models take it
        b, s, h, w = seed_frames.shape
        if n_future == 0:
            return seed_frames.new_zeros(b, 0, h, w)
        outputs = self._rollout(seed_frames, n_teacher=s, n_steps=s - 1 + n_future)
        return outputs[:, -n_future:]

    def forward_train(self, frames: Tensor, n_seed: int) -> Tensor:
        """Predictions of frames 1..T-1 (B x (T-1) x H x W) for the training loss.

        Step t maps an input frame to a prediction of frame t+1. The input is the true
        frame t for t < n_seed and the model's own prediction of frame t afterwards.
        """
        check_seed_frames(frames, min_seed=2)
        frames = frames.to(next(self.parameters()).dtype)  # as in forward: float64/16 input is fine
        self._check_size(frames)
        t_len = frames.shape[1]
        if not isinstance(n_seed, int) or not 1 <= n_seed <= t_len:
            raise ValueError(f"n_seed must be an int in [1, T={t_len}], got {n_seed!r}")
        return self._rollout(frames, n_teacher=n_seed, n_steps=t_len - 1)

    # -- internals -------------------------------------------------------------------
    def _check_size(self, x: Tensor) -> None:
        h, w = x.shape[-2:]
        if self.location_bias and (h != self.image_size or w != self.image_size):
            raise ValueError(
                f"{type(self).__name__} was built for {self.image_size}x{self.image_size} frames "
                f"(its bias maps are per pixel), got {h}x{w}"
            )
        factor = 2 ** len(self.channels)
        if h % factor or w % factor:
            raise ValueError(f"frame height and width must be divisible by {factor}, got {h}x{w}")

    def _coords(self, b: int, h: int, w: int, like: Tensor) -> Tensor:
        """B x 2 x H x W normalised (y, x) coordinates in [0, 1], appended to every input frame."""
        ys = torch.linspace(0.0, 1.0, h, dtype=like.dtype, device=like.device)
        xs = torch.linspace(0.0, 1.0, w, dtype=like.dtype, device=like.device)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # 2 x H x W: y, x
        return grid.unsqueeze(0).expand(b, -1, -1, -1)

    def _step(self, frame: Tensor, coords: Tensor | None, states: list[_State | None]) -> Tensor:
        """One time step: B x 1 x H x W frame -> B x 1 x H x W prediction; updates ``states``."""
        x = frame if coords is None else torch.cat((frame, coords), dim=1)
        encoded, hidden = [], []
        for level, (encoder, lstm) in enumerate(zip(self.encoders, self.lstms)):
            x = encoder(x)
            state = lstm(x, states[level])
            states[level] = state
            encoded.append(x)
            hidden.append(state[0])

        top = len(self.channels) - 1
        d = self.decoders[top](self.compress_top(torch.cat((encoded[top], hidden[top]), dim=1)))
        for level in range(top - 1, -1, -1):
            z = self.act(self.compress_state[level](torch.cat((d, hidden[level]), dim=1)))
            z = self.compress_skip[level](torch.cat((encoded[level], z), dim=1))
            d = self.decoders[level](z)
        return sigmoid_fp32(self.compress_out(d))

    def _rollout(self, frames: Tensor, n_teacher: int, n_steps: int) -> Tensor:
        """Run ``n_steps`` steps; step t reads ``frames[:, t]`` while t < n_teacher, else feeds back."""
        b, _, h, w = frames.shape
        coords = self._coords(b, h, w, frames) if self.coord_channels else None
        states: list[_State | None] = [None] * len(self.channels)
        preds: list[Tensor] = []
        for t in range(n_steps):
            frame = frames[:, t : t + 1] if t < n_teacher else preds[-1]
            preds.append(self._step(frame, coords, states))
        return torch.cat(preds, dim=1)


class VLNLDC(VLNResNet):
    """VLN-ResNet with location-dependent convolutions in the encoder.

    Each encoder block adds a learnable per-pixel bias map (zero-initialised, shared
    by all channels) after each of its two 3x3 convs, so the model can learn
    position-specific behaviour (e.g. near the borders). The maps fix the frame size:
    inputs must be ``image_size`` x ``image_size``.
    """

    def __init__(
        self,
        image_size: int = 128,
        channels: tuple[int, ...] = (28, 58, 90),
        coord_channels: bool = True,
    ) -> None:
        super().__init__(image_size, channels, coord_channels=coord_channels, location_bias=True)
