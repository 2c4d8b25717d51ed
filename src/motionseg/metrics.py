"""Metrics of Table 1 (L1, MSE, SSIM) and of the model's states (mask IoU, velocity error).

L1 and MSE are per-pixel means with values in [0, 1]. SSIM is the Gaussian-window SSIM
of Wang et al. (window 11, sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, data range 1), the
same number as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1.0)``.
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

C1 = 0.01 ** 2
C2 = 0.03 ** 2


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() < 2:
        raise ValueError(f"expected images (... x H x W), got shape {tuple(pred.shape)}")


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over the last two axes (one value per image)."""
    _check_pair(pred, target)
    return (pred - target).abs().mean(dim=(-2, -1))


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over the last two axes (one value per image)."""
    _check_pair(pred, target)
    return ((pred - target) ** 2).mean(dim=(-2, -1))


@lru_cache(maxsize=4)
def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-ax ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Gaussian-window SSIM per image (values of the valid region averaged), ... x H x W.

    Computed in float32, or in float64 when an input is float64. The variances are
    differences of window means (E[x^2] - E[x]^2), which in float32 cancel on bright,
    smooth images: there the result can differ from skimage's (float64) by ~1e-5.
    """
    _check_pair(pred, target)
    *lead, h, w = pred.shape
    if h < window or w < window:
        raise ValueError(f"SSIM needs images of at least {window} x {window}, got {h} x {w}")
    dtype = torch.float64 if torch.float64 in (pred.dtype, target.dtype) else torch.float32
    kernel = _gaussian_window(window, sigma).to(device=pred.device, dtype=dtype)[None, None]
    x = pred.reshape(-1, 1, h, w).to(dtype)
    y = target.reshape(-1, 1, h, w).to(dtype)
    stats = F.conv2d(torch.cat([x, y, x * x, y * y, x * y], 1).reshape(-1, 1, h, w), kernel)
    stats = stats.reshape(x.shape[0], 5, h - window + 1, w - window + 1)
    mx, my, sxx, syy, sxy = stats.unbind(1)
    vx, vy, cxy = sxx - mx * mx, syy - my * my, sxy - mx * my
    s = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2))
    return s.mean(dim=(-2, -1)).reshape(lead)


def mask_iou(alpha: Tensor, alpha_true: Tensor, threshold: float = 0.5) -> Tensor:
    """IoU of the masks ``alpha > threshold`` and ``alpha_true > threshold`` (1 where both are empty)."""
    _check_pair(alpha, alpha_true)
    a, b = alpha > threshold, alpha_true > threshold
    inter = (a & b).sum(dim=(-2, -1)).to(torch.float32)
    union = (a | b).sum(dim=(-2, -1)).to(torch.float32)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def match_objects(alpha: Tensor, alpha_true: Tensor, threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """Match K predicted layers (B x K x H x W) one to one to M true objects (B x M x H x W) by mask IoU.

    Returns ``(iou, layer)``, each B x M: the IoU of each true object with the layer matched to
    it, and that layer's index (-1 where there are fewer layers than objects: IoU 0). The
    matching maximises the summed IoU over all assignments (K, M <= 4: at most 24 of them).
    """
    if alpha.dim() != 4 or alpha_true.dim() != 4 or alpha.shape[0] != alpha_true.shape[0] \
            or alpha.shape[2:] != alpha_true.shape[2:]:
        raise ValueError(f"layers must be B x K x H x W and objects B x M x H x W with the same B, H, W, "
                         f"got {tuple(alpha.shape)} and {tuple(alpha_true.shape)}")
    b, k, h, w = alpha.shape
    m = alpha_true.shape[1]
    if k == 0 or m == 0 or max(k, m) > 4:
        raise ValueError(f"match_objects needs 1 to 4 layers and objects, got {k} and {m}")
    padded = torch.cat([alpha, alpha.new_zeros(b, max(0, m - k), h, w)], 1)  # missing layers: empty
    pair = mask_iou(padded[:, :, None].expand(-1, -1, m, -1, -1), alpha_true[:, None].expand(-1, padded.shape[1], -1, -1, -1),
                    threshold)  # B x max(K, M) x M
    # a missing layer is empty: against a true object its IoU is 0
    assignments = torch.tensor(list(itertools.permutations(range(padded.shape[1]), m)), device=alpha.device)
    objects = torch.arange(m, device=alpha.device)
    totals = pair[:, assignments, objects].sum(-1)  # B x P
    best = assignments[totals.argmax(1)]  # B x M
    iou = pair.gather(1, best[:, None, :]).squeeze(1)
    layer = torch.where(best < k, best, torch.full_like(best, -1))
    return iou, layer


def endpoint_error(velocity: Tensor, velocity_true: Tensor) -> Tensor:
    """Euclidean distance between estimated and true (dy, dx) velocities, px/frame."""
    if velocity.shape != velocity_true.shape or velocity.shape[-1] != 2:
        raise ValueError(f"velocities must both be ... x 2, got {tuple(velocity.shape)} and {tuple(velocity_true.shape)}")
    return (velocity - velocity_true).norm(dim=-1)


def masked_mean_abs(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """Mean |a - b| over the pixels where ``mask`` is true (NaN where the mask is empty)."""
    _check_pair(a, b)
    m = mask.to(a.dtype)
    n = m.sum(dim=(-2, -1))
    total = ((a - b).abs() * m).sum(dim=(-2, -1))
    return torch.where(n > 0, total / n.clamp_min(1), torch.full_like(n, math.nan))


REGIONS = ("digit", "never_seen", "seen_then_covered", "static")


def mse_by_region(pred: Tensor, target: Tensor, seed_alpha: Tensor, future_alpha: Tensor,
                  cover: float = 0.01) -> dict[str, Tensor]:
    """Split the MSE of predicted frames by where each pixel lies, from the true masks.

    ``pred``, ``target`` and ``future_alpha`` are B x T x H x W (the predicted frames and
    the true alpha of those frames), ``seed_alpha`` is B x S x H x W. A pixel is *covered*
    where alpha > ``cover`` and *hidden* where alpha >= 1 - ``cover``. The regions are

    * ``digit``: covered by the digit in this predicted frame;
    * ``never_seen``: background hidden in every seed frame (it can only be guessed);
    * ``seen_then_covered``: other background the digit covered in some seed frame;
    * ``static``: background never covered during the seed frames.

    Each value is B x T: the squared error summed over the region, divided by H x W, so
    the four add up to :func:`mse`.
    """
    _check_pair(pred, target)
    _check_pair(pred, future_alpha)
    if pred.dim() != 4 or seed_alpha.dim() != 4 or seed_alpha.shape[0] != pred.shape[0] \
            or seed_alpha.shape[-2:] != pred.shape[-2:]:
        raise ValueError(f"expected B x T x H x W predictions and B x S x H x W seed masks of the same "
                         f"B, H, W, got {tuple(pred.shape)} and {tuple(seed_alpha.shape)}")
    se = (pred - target) ** 2
    digit = future_alpha > cover
    never_seen = (seed_alpha >= 1 - cover).all(1, keepdim=True) & ~digit
    covered = (seed_alpha > cover).any(1, keepdim=True) & ~digit & ~never_seen
    static = ~(digit | never_seen | covered)
    h, w = pred.shape[-2:]
    return {name: (se * mask).sum(dim=(-2, -1)) / (h * w)
            for name, mask in zip(REGIONS, (digit, never_seen, covered, static))}
