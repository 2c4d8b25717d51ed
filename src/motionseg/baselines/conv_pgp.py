"""Conv-PGP: a one-layer convolutional gated autoencoder (predictive gating pyramid).

The model infers a *mapping* ``m`` (the transformation between two consecutive
frames) by multiplicative interaction of two filter banks, and predicts the next
frame by applying that mapping to the current frame:

    m      = ReLU(w(u1(x_{t-1}) * u2(x_t)))
    x_next = sigmoid(u2T(w2(m) * u1(x_in)))

Layer shapes follow the authors' earlier public code. With every layer keeping its
bias the model has exactly 31,797 parameters (31,528 weights + 269 biases:
56 + 56 + 100 + 56 + 1), which is the count the paper reports, so no bias is dropped.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from motionseg.validation import check_seed_frames


def sigmoid_fp32(logits: Tensor) -> Tensor:
    """Sigmoid of the output logits in at least float32.

    Under bf16 autocast the logits arrive in bf16, whose 8-bit mantissa would round
    probabilities near 0 and 1 (where most pixels of a frame are) before the BCE loss;
    in float32 they keep their precision. Without autocast this is a plain sigmoid.
    """
    if logits.dtype in (torch.bfloat16, torch.float16):
        logits = logits.float()
    return torch.sigmoid(logits)


class ConvPGP(nn.Module):
    """Convolutional gated autoencoder predicting frames under a constant-mapping assumption.

    Args:
        factors: channels of the two factor filter banks ``u1``, ``u2`` (56 in the paper).
        mappings: channels of the mapping layer (100 in the paper).
        kernel_size: spatial size of the factor filters (11 in the paper, odd).
    """

    loss_name: ClassVar[str] = "bce"

    def __init__(self, factors: int = 56, mappings: int = 100, kernel_size: int = 11) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the frame size, got {kernel_size}")
        pad = kernel_size // 2
        self.u1 = nn.Conv2d(1, factors, kernel_size, padding=pad)
        self.u2 = nn.Conv2d(1, factors, kernel_size, padding=pad)
        self.w = nn.Conv2d(factors, mappings, 1)
        self.w2 = nn.Conv2d(mappings, factors, 1)
        # Untied from u2 (the authors' code gives the decoder its own weights).
        self.u2T = nn.ConvTranspose2d(factors, 1, kernel_size, padding=pad)
        # Channels-last weights make a training step about 1.35x cheaper on the CPU
        # (benchmarks/bench_train_step.py); the computed function is the same.
        self.to(memory_format=torch.channels_last)

    # -- building blocks -------------------------------------------------------------
    def mapping(self, x_prev: Tensor, x_next: Tensor) -> Tensor:
        """Mapping units for frame pairs; inputs are N x 1 x H x W, output N x mappings x H x W."""
        return torch.relu(self.w(self.u1(x_prev) * self.u2(x_next)))

    def decode(self, gate: Tensor, x_in: Tensor) -> Tensor:
        """Apply a mapping (already projected by ``w2``) to ``x_in`` (N x 1 x H x W)."""
        return sigmoid_fp32(self.u2T(gate * self.u1(x_in)))

    # -- public API ------------------------------------------------------------------
    def forward(self, seed_frames: Tensor, n_future: int = 10) -> Tensor:
        """Predict ``n_future`` frames (B x n_future x H x W) from B x S x H x W seed frames.

        The mapping is inferred from the last two seed frames and then held fixed while
        the model feeds its own predictions back.
        """
        n_future = check_seed_frames(seed_frames, min_seed=2, n_future=n_future, model=self)
        seed_frames = seed_frames.to(self.u1.weight.dtype)  # float64/16 input, as our models take it
        b, s, h, w = seed_frames.shape
        x = seed_frames.unsqueeze(2)  # B x S x 1 x H x W
        gate = self.w2(self.mapping(x[:, s - 2], x[:, s - 1]))
        return self._closed_loop(gate, x[:, s - 1], n_future).reshape(b, n_future, h, w)

    def forward_train(self, frames: Tensor, n_seed: int) -> Tensor:
        """Outputs for frames 1..T-1 (B x (T-1) x H x W) used by the training loss.

        * output 0 (frame 1) has no preceding pair; as in gated-autoencoder training it is
          the *reconstruction* of x_1 from the mapping of (x_0, x_1) applied to x_0;
        * outputs for frames t+1 <= n_seed: mapping of the true pair (x_{t-1}, x_t) applied
          to the true x_t (teacher forcing);
        * outputs for frames t+1 > n_seed: mapping frozen at the last seed pair
          (x_{n_seed-2}, x_{n_seed-1}), applied to the model's own previous output.

        The closed-loop tail is exactly what :meth:`forward` computes from the first
        ``n_seed`` frames.
        """
        check_seed_frames(frames, min_seed=2)
        frames = frames.to(self.u1.weight.dtype)  # as in forward: float64/16 input is fine
        b, t_len, h, w = frames.shape
        if not isinstance(n_seed, int) or not 2 <= n_seed <= t_len:
            raise ValueError(f"n_seed must be an int in [2, T={t_len}], got {n_seed!r}")
        x = frames.reshape(b, t_len, 1, h, w)
        # Last frame index predicted with teacher forcing; its mappings need pairs 0..k-1.
        k = min(n_seed - 1, t_len - 2)
        n_pairs = max(k, 1)  # pair (x_0, x_1) is always needed, for the reconstruction

        # The reconstruction and all teacher-forced steps are independent of one another,
        # so time is folded into the batch and each layer runs once. The 11x11 filters
        # dominate the cost, so u1 features of frames 0..k are computed once and used
        # both as the earlier frame of a pair and as the decoder input.
        f1 = self.u1(x[:, : k + 1].reshape(b * (k + 1), 1, h, w)).reshape(b, k + 1, -1, h, w)
        f2 = self.u2(x[:, 1 : n_pairs + 1].reshape(b * n_pairs, 1, h, w)).reshape(b, n_pairs, -1, h, w)
        products = (f1[:, :n_pairs] * f2).flatten(0, 1)
        gates = self.w2(torch.relu(self.w(products))).reshape(b, n_pairs, -1, h, w)
        # Pair 0 drives the reconstruction of x_1 (from x_0); pair j drives the
        # prediction of x_{j+2} from x_{j+1}.
        gated = torch.cat((gates[:, :1] * f1[:, :1], gates[:, :k] * f1[:, 1 : k + 1]), dim=1)
        teacher = sigmoid_fp32(self.u2T(gated.flatten(0, 1))).reshape(b, k + 1, h, w)
        outputs = [teacher]

        n_closed = t_len - 2 - k
        if n_closed > 0:
            # k == n_seed - 1 here, so the last teacher-forced output is frame n_seed and the
            # frozen mapping is that of the last seed pair, gates[:, n_seed - 2].
            last = teacher[:, -1:]  # B x 1 x H x W: the prediction of frame n_seed
            tail = self._closed_loop(gates[:, k - 1], last, n_closed)
            outputs.append(tail.reshape(b, n_closed, h, w))
        return torch.cat(outputs, dim=1)

    def _closed_loop(self, gate: Tensor, x_in: Tensor, n_steps: int) -> Tensor:
        """Apply the fixed ``gate`` ``n_steps`` times, feeding each output back; B x n x 1 x H x W."""
        preds = []
        for _ in range(n_steps):
            x_in = self.decode(gate, x_in)
            preds.append(x_in)
        if not preds:
            b, _, h, w = x_in.shape
            return x_in.new_zeros(b, 0, 1, h, w)
        return torch.stack(preds, dim=1)
