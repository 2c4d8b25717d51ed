"""Beyond the paper: K foreground layers, each with its own mask, appearance and motion.

The paper's model (and ours, :mod:`motionseg.zero_param_plus`) keeps one foreground layer with
one translation. With two digits moving differently one of them is predicted as if it moved
with the other, or not at all. This model keeps ``objects`` = K layers and composes them front
to back over one background, the paper's eq. 3 applied K times::

    F = A_1 FG_1 + (1 - A_1) (A_2 FG_2 + (1 - A_2) (... + (1 - A_K) BG))

It is our zero-parameter plus model's backward look (its smoothers), done per layer:

1. **Motions.** Temporal differences cancel the static background; the phase correlation of
   the first and the newest difference has one peak per object moving differently, at its
   displacement over the lag (:func:`fourier.correlation_peaks`). The K highest peaks divided by
   the lag are the layers' velocities; a peak lower than ``min_peak`` is no moving object, and
   its layer stays empty (A = 0), so one digit gives one layer and an empty one.
2. **Masks.** Per layer, motion-compensated evidence over all seed frames: a pixel of that
   object agrees with the previous frame moved by the layer's velocity rather than with the
   previous frame as it was; the evidence, aligned to the last frame along that velocity,
   blurred and scaled by the plus model's ``alpha_init`` gain, gives the layer's first A.
3. **Background and layers**, ``smoothing_passes`` rounds: BG from every seed frame where no
   layer covers it (each layer's mask moved back along its own velocity), then each layer's
   premultiplied FG and A by least squares over the seed frames aligned by its velocity, where
   the other layers' pixels weigh little (:meth:`ZeroParamPlus.smooth_layers` with ``hidden``).
   With ``min_explained`` > 0 a layer then keeps a pixel only where it explains the aligned seed
   frames better than the background alone (:meth:`MultiObject.explained`): the least squares
   cannot decide a mask where the background does not vary, and kept the first masks' blurred
   spill there. Pixels that the other layers hide in nearly every seed frame (less than
   ``prune_min_seen`` frames' worth) are kept; ``prune_rounds`` rounds judge them again with the
   other layers' masks pruned. With ``prune_early_rounds`` > 0 the layers are pruned after the
   earlier passes too, so that the next pass (its background included) starts from the pruned masks.
   Two digits whose velocities differ little can make two layers claim both and hide each
   other's pixels in every aligned frame; with ``prune_contested`` such a pixel stays only with
   the layer that explains it best when every frame counts.
4. **Order.** Which layer is in front is not given: every order of the K layers composes the
   seed frames again, and each sequence keeps the order that explains them best (with K <= 4,
   at most 24 orders). Where the layers never overlap during the seed frames all orders tie and
   the first (the strongest motion in front) is kept.
5. **Prediction.** Each layer's templates move by its own velocity; the frames are composed in
   the chosen order.

The gains it uses (``alpha_init`` and the DoG on A) are those of ``zero_param_plus``; the
options of that model keep their meaning (``phase_templates``, ``layer_prior``, ``sigma_init``,
``sigma_fill``, ``smoothing_passes``, ``fill_background``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor

from . import fourier
from .cycle import Options
from .states import Layers, States
from .validation import check_seed_frames
from .zero_param_plus import PlusOptions, ZeroParamPlus, fourth_power

MAX_OBJECTS = 4
CHUNK = 4  # sequences estimated at a time


def seed_lags(s: int, like: Tensor) -> Tensor:
    """Frames from each of ``s`` seed frames to the last, ``s - 1, ..., 1, 0`` (dtype and device of ``like``)."""
    return torch.arange(s - 1, -1, -1, dtype=like.dtype, device=like.device)


@dataclass(frozen=True)
class MultiOptions(PlusOptions):
    """The plus model's options, its smoothers on, and the number of layers."""

    smooth_background: bool = True
    smooth_layers: bool = True
    objects: int = 2  # K foreground layers, 1 to 4
    min_peak: float = 0.15  # correlation peak below which a layer stays empty (1 = one pure translation)
    separation: float = 2.0  # px between two peaks of the correlation surface (at the lag of the newest difference)
    # a layer keeps a pixel only where it explains the aligned seed frames better than the background
    # does, by at least this sum of squared residuals over the frames (0: off; see :meth:`explained`)
    min_explained: float = 0.0
    prune_rounds: int = 3  # rounds of pruning, each with the other layers' masks as the last round left them
    prune_min_seen: float = 0.25  # seed frames' worth of unhidden evidence below which a pixel is kept
    # rounds of pruning after each earlier pass of step 3, so that the next pass starts from the
    # pruned masks (0: prune after the last pass only)
    prune_early_rounds: int = 0
    # a pixel that other layers hide in nearly every seed frame is kept only by the layer that,
    # all frames counted, explains it best among the layers that claim it (False: kept by all)
    prune_contested: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.objects, bool) or not isinstance(self.objects, int) or not 1 <= self.objects <= MAX_OBJECTS:
            raise ValueError(f"option objects must be an integer from 1 to {MAX_OBJECTS}, got {self.objects!r}")
        if not 0 < self.min_peak < 1:
            raise ValueError(f"option min_peak must lie in (0, 1), got {self.min_peak!r}")
        if not self.separation >= 0:
            raise ValueError(f"option separation must be >= 0 px, got {self.separation!r}")
        if not self.min_explained >= 0:
            raise ValueError(f"option min_explained must be >= 0 (0: off), got {self.min_explained!r}")
        if isinstance(self.prune_rounds, bool) or not isinstance(self.prune_rounds, int) or self.prune_rounds < 1:
            raise ValueError(f"option prune_rounds must be an integer >= 1, got {self.prune_rounds!r}")
        if isinstance(self.prune_early_rounds, bool) or not isinstance(self.prune_early_rounds, int) \
                or self.prune_early_rounds < 0:
            raise ValueError(f"option prune_early_rounds must be an integer >= 0 (0: off), got {self.prune_early_rounds!r}")
        if not self.prune_min_seen >= 0:
            raise ValueError(f"option prune_min_seen must be >= 0 seed frames, got {self.prune_min_seen!r}")
        if not (self.motion_from_differences and self.smooth_layers):
            raise ValueError("the multi-object model measures each layer's motion from the differences and "
                             "estimates its layers over the seed frames: options motion_from_differences and "
                             "smooth_layers must stay on")


@dataclass
class ObjectLayers:
    """The K layers of a batch after the seed frames (each ``B x K x ...``)."""

    premult: Tensor  # B x K x H x W: FG times A at the last seed frame
    alpha: Tensor  # B x K x H x W
    velocity: Tensor  # B x K x 2, (dy, dx) px/frame
    present: Tensor  # B x K bool: a moving object was found for the layer
    order: Tensor  # B x K long: layer indices front to back
    bg: Tensor  # B x H x W
    seen: Tensor  # B x H x W: how surely each background pixel was observed (at most 1)


class MultiObject(ZeroParamPlus):
    """K foreground layers with their own motions over one background (zero network parameters)."""

    options_class: ClassVar[type[Options]] = MultiOptions
    options: MultiOptions
    layers: ObjectLayers | None = None  # the layers of the last run, for evaluation and figures

    def min_seed_frames(self) -> int:
        """The motions need two temporal differences: three frames."""
        return 3

    # -- 1. motions ----------------------------------------------------------------------------
    def measure_motions(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Velocities (B x K x 2) of the K strongest motions, and which of them are objects (B x K)."""
        o = self.options
        lag = x.shape[1] - 2
        first, newest = x[:, 1] - x[:, 0], x[:, -1] - x[:, -2]
        places, heights = fourier.correlation_peaks(fourier.unit_spectrum(fourier.cross_power(first, newest)),
                                                    o.objects, separation=o.separation)
        return places / lag, heights >= o.min_peak

    # -- 2. masks --------------------------------------------------------------------------------
    def first_masks(self, x: Tensor, velocity: Tensor, present: Tensor, x_spectrum: Tensor | None = None) -> Tensor:
        """Each layer's A at the last seed frame (B x K x H x W) from motion-compensated evidence.

        ``x_spectrum``: ``rfft2(x)``, where the caller has it already.
        """
        b, s, h, w = x.shape
        k = velocity.shape[1]
        last, obs = x[:, :-1], x[:, 1:]  # B x (S-1) x H x W
        x_spectrum = torch.fft.rfft2(x) if x_spectrum is None else x_spectrum
        # every layer's view of every pair: the earlier frame moved by the layer's velocity
        moved = fourier.shift_spectrum(x_spectrum[:, None, :-1], velocity[:, :, None, :].expand(b, k, s - 1, 2), (h, w))
        evidence = (obs - last).abs()[:, None] - (obs[:, None] - moved).abs()  # B x K x (S-1) x H x W
        # aligned to the last frame along each layer's velocity and summed over the pairs, and
        # scaled like the plus model's evidence, which sums n_init pairs; a shift is linear, so
        # the pairs are summed as spectra and transformed back once per layer
        lags = seed_lags(s - 1, x)  # of the s - 1 pairs
        aligned = fourier.shift_spectrum(torch.fft.rfft2(evidence), lags[None, None, :, None] * velocity[:, :, None, :],
                                         (h, w), sum_dim=2)
        scale = min(self.options.n_init, s - 1) / (s - 1)
        blob = fourier.gaussian_blur(aligned * scale, self.options.sigma_init).clamp_min(0.0)
        alpha = self.filter_alpha(self.gain("alpha_init", s - 1) * blob, s - 1)
        return alpha * present[:, :, None, None].to(alpha.dtype)

    # -- 3. background and layers ------------------------------------------------------------------
    @staticmethod
    def coverage(alpha: Tensor, velocity: Tensor, s: int, ramp: Tensor | None = None) -> Tensor:
        """How much each layer covers each pixel of each seed frame: B x K x S x H x W.

        The last frame's masks moved back along their velocities (``ramp``: :meth:`back_ramp`'s,
        where the caller has it already).
        """
        ramp = MultiObject.back_ramp(alpha, velocity, s) if ramp is None else ramp
        return fourier.apply_ramp(torch.fft.rfft2(alpha[:, :, None]), ramp, alpha.shape[-2:]).clamp(0.0, 1.0)

    @staticmethod
    def back_ramp(like: Tensor, velocity: Tensor, s: int) -> Tensor:
        """The shift ramps (B x K x S x H x W//2+1) that move a layer at the last seed frame back
        along its velocity to each of the ``s`` seed frames."""
        lags = seed_lags(s, like)
        return fourier.half_ramp(-lags[None, None, :, None] * velocity[:, :, None, :], like.shape[-2:])

    def background(self, x: Tensor, cover: Tensor, bg: Tensor, seen: Tensor) -> tuple[Tensor, Tensor]:
        """BG from every seed frame where no layer covers it (as :meth:`smooth_background`, for K layers)."""
        shown = (1 - cover).prod(1)  # B x S x H x W: how much of each pixel no layer covers
        bg, seen = self.background_from_weights(x, fourth_power(shown), bg, seen)
        if self.options.fill_background:
            bg = self.fill_background(bg, seen)
        return bg, seen

    def estimate(self, x: Tensor, first_alpha: Tensor | None = None
                 ) -> tuple[ObjectLayers, list[list[tuple[Tensor, Tensor, int]]]]:
        """The layers after the seed frames, and each layer's templates for the roll-out.

        ``first_alpha`` (B x K x H x W at the last seed frame, for analysis) replaces the masks
        from motion evidence (step 2): e.g. the true masks, to see what steps 3 and 4 make of them.
        """
        o = self.options
        b, s, h, w = x.shape
        velocity, present = self.measure_motions(x)
        x_spectrum = torch.fft.rfft2(x)  # every layer moves the same seed frames
        if first_alpha is None:
            alpha = self.first_masks(x, velocity, present, x_spectrum)
        elif first_alpha.shape != (b, o.objects, h, w):
            raise ValueError(f"first_alpha must be B x K x H x W = {(b, o.objects, h, w)}, got {tuple(first_alpha.shape)}")
        else:
            alpha = first_alpha.to(x.dtype) * present[:, :, None, None].to(x.dtype)
        premult = alpha * x[:, -1:, :, :]
        bg, seen = x[:, -1], torch.zeros_like(x[:, -1])
        templates: list[list[tuple[Tensor, Tensor, int]]] = []
        x_aligned: list[dict[int, Tensor]] = [{} for _ in range(o.objects)]  # ... the same way in every pass
        # a layer that no sequence of the batch has (no moving object found for it) stays empty: its
        # least squares and pruning, whose results would be multiplied by 0, are skipped
        active = present.any(0).tolist()
        empty = torch.zeros_like(x[:, -1])
        kept: Tensor | None = None  # the last pruning's verdict
        for p in range(o.smoothing_passes):
            bg_aligned: list[dict[int, Tensor]] = [{} for _ in range(o.objects)]  # this pass's BG, aligned
            cover = self.coverage(alpha, velocity, s)
            bg, seen = self.background(x, cover, bg, seen)
            last = p == o.smoothing_passes - 1
            templates = []
            for k in range(o.objects):
                if not active[k]:
                    templates.append([(empty, empty, lag) for lag in range(o.phase_templates if last else 1)])
                    continue
                others = 1 - torch.cat([1 - cover[:, :k], 1 - cover[:, k + 1:]], 1).prod(1)
                templates.append(self.smooth_layers(x, premult[:, k], alpha[:, k], bg, velocity[:, k],
                                                    None if last else 1, hidden=others, x_spectrum=x_spectrum,
                                                    x_aligned=x_aligned[k], bg_aligned=bg_aligned[k]))
            keep = present[:, :, None, None].to(x.dtype)
            premult = torch.stack([t[0][0] for t in templates], 1) * keep
            alpha = torch.stack([t[0][1] for t in templates], 1) * keep
            rounds = o.prune_rounds if last else o.prune_early_rounds
            if o.min_explained > 0 and any(active) and rounds > 0:
                kept = self.pruned(x_aligned, bg, premult, alpha, velocity, rounds, bg_aligned)
                premult, alpha = premult * kept, alpha * kept
        templates = [[(pm * present[:, k, None, None], a * present[:, k, None, None], lag) for pm, a, lag in t]
                     for k, t in enumerate(templates)]
        if kept is not None:
            templates = self.prune(kept, velocity, templates)
        order = self.choose_order(x, premult, alpha, velocity, bg)
        return ObjectLayers(premult, alpha, velocity, present, order, bg, seen), templates

    def pruned(self, x_aligned: list[dict[int, Tensor]], bg: Tensor, premult: Tensor, alpha: Tensor,
               velocity: Tensor, rounds: int, bg_aligned: list[dict[int, Tensor]] | None = None) -> Tensor:
        """Which pixels each layer keeps (B x K x H x W bool): those it explains better than the
        background by ``min_explained``, judged ``rounds`` times, each round with the other
        layers' masks as the last round left them. Pixels too hidden to judge are kept; with
        ``prune_contested`` only by the layer whose gain with every frame counted is the highest
        of the layers that claim the pixel (A > 0.5). ``bg_aligned``: per layer, ``bg`` as the least
        squares aligned it, where they did (else it is aligned here)."""
        o = self.options
        aligned = self.align([a.get(0) for a in x_aligned], bg, velocity,
                             None if bg_aligned is None else [b.get(0) for b in bg_aligned])
        kept = torch.ones_like(alpha, dtype=torch.bool)
        for _ in range(rounds):
            gain, seen, plain = self.explained(aligned, premult * kept, alpha * kept, velocity)
            # a pixel that other layers hide in nearly every seed frame cannot be judged: kept
            # (and the next round, with the others' masks pruned, may see it)
            unseen = seen < o.prune_min_seen
            if o.prune_contested and alpha.shape[1] > 1:
                unseen &= plain >= self.best_rival(plain, alpha * kept > 0.5)
            kept &= (gain >= o.min_explained) | unseen
        return kept

    @staticmethod
    def best_rival(score: Tensor, claimed: Tensor) -> Tensor:
        """Per layer and pixel (B x K x H x W), the highest ``score`` of the other layers that
        claim the pixel (-inf where none does)."""
        held = torch.where(claimed, score, torch.full_like(score, float("-inf")))
        k = score.shape[1]
        return torch.stack([torch.cat([held[:, :j], held[:, j + 1:]], 1).amax(1) for j in range(k)], 1)

    @staticmethod
    def align(x_aligned: list[Tensor | None], bg: Tensor, velocity: Tensor,
              bg_aligned: list[Tensor | None] | None = None) -> list[tuple[Tensor, Tensor, Tensor] | None]:
        """Per layer, the seed frames moved along the layer's velocity to the last seed frame
        (``x_aligned``, B x S x H x W each, as the least squares aligned them), the background
        (B x H x W) moved the same way (taken from ``bg_aligned`` where given), and the squared
        difference of the two: three B x S x H x W tensors each, which every pruning round
        compares the same way. A layer without aligned frames (an empty one) gives None."""
        h, w = bg.shape[-2:]
        s = next(xa.shape[1] for xa in x_aligned if xa is not None)
        lags = seed_lags(s, bg)
        bg_spectrum: Tensor | None = None
        out: list[tuple[Tensor, Tensor, Tensor] | None] = []
        for k, xa in enumerate(x_aligned):
            if xa is None:
                out.append(None)
                continue
            ba = None if bg_aligned is None else bg_aligned[k]
            if ba is None:
                bg_spectrum = torch.fft.rfft2(bg[:, None]) if bg_spectrum is None else bg_spectrum
                ba = fourier.shift_spectrum(bg_spectrum, lags[None, :, None] * velocity[:, k, None, :], (h, w))
            out.append((xa, ba, (xa - ba) ** 2))
        return out

    @staticmethod
    def explained(aligned: list[tuple[Tensor, Tensor, Tensor] | None], premult: Tensor, alpha: Tensor,
                  velocity: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """How much better each layer explains each pixel than the background alone, on how many
        seed frames' worth of evidence, and how much better with every frame at full weight: three
        B x K x H x W tensors.

        ``aligned`` is :meth:`align`'s: per layer, the seed frames and the background aligned along
        its velocity to the last frame, and their squared difference. The sum over the frames of
        the squared residual of the background alone, minus that of the layer over the background
        (frames where other layers cover the pixel weigh little, as in the least squares), and the
        sum of those weights.
        Where the background is flat, or the layer's mask spilled past the object, the background
        explains the pixel as well and the difference is near 0: the least squares cannot tell
        such pixels from the object's and keep the first mask's value there. The last tensor
        ignores the other layers' cover: it compares layers that claim the same pixel.
        """
        k_all = velocity.shape[1]
        h, w = alpha.shape[-2:]
        s = next(a[0].shape[1] for a in aligned if a is not None)
        lags = seed_lags(s, alpha)
        alpha_spectrum = torch.fft.rfft2(alpha)
        out, seen, plain = [], [], []
        for k, pair in enumerate(aligned):
            if pair is None:  # an empty layer: nothing to explain, and no evidence
                out.append(torch.zeros_like(alpha[:, k]))
                seen.append(torch.zeros_like(alpha[:, k]))
                plain.append(torch.zeros_like(alpha[:, k]))
                continue
            xa, ba, background_error = pair
            others = [j for j in range(k_all) if j != k]
            if others:
                # another layer's mask as it stood at each seed frame, seen in layer k's aligned
                # frames: one shift by the lag times the velocity difference
                shift = lags[None, None, :, None] * (velocity[:, k, None, None, :] - velocity[:, others, None, :])
                moved = fourier.shift_spectrum(alpha_spectrum[:, others, None], shift, (h, w)).clamp(0.0, 1.0)
                weight = fourth_power((1 - moved).prod(1))
            else:
                weight = torch.ones_like(xa)
            layer = premult[:, k, None] + (1 - alpha[:, k, None]) * ba
            better = background_error - (xa - layer) ** 2
            out.append((weight * better).sum(1))
            seen.append(weight.sum(1))
            plain.append(better.sum(1))
        return torch.stack(out, 1), torch.stack(seen, 1), torch.stack(plain, 1)

    @staticmethod
    def prune(keep: Tensor, velocity: Tensor, templates: list[list[tuple[Tensor, Tensor, int]]]
              ) -> list[list[tuple[Tensor, Tensor, int]]]:
        """Zero each layer's templates where ``keep`` (B x K x H x W, at the last seed frame, moved
        along the layer's velocity to the template's frame) is False."""
        kept = keep.to(velocity.dtype)
        pruned = []
        for k, layer_templates in enumerate(templates):
            pruned.append([])
            for pm, a, lag in layer_templates:
                here = kept[:, k] if lag == 0 else (fourier.real_shift(kept[:, k], -lag * velocity[:, k]) > 0.5).to(a.dtype)
                pruned[-1].append((pm * here, a * here, lag))
        return pruned

    # -- 4. order ----------------------------------------------------------------------------------
    @staticmethod
    def compose_layers(premult: Tensor, alpha: Tensor, bg: Tensor, order: Tensor) -> Tensor:
        """Layers (B x K x ... x H x W) over ``bg`` (B x ... x H x W), back to front in ``order`` (B x K)."""
        out = bg
        rows = torch.arange(premult.shape[0], device=premult.device)
        for j in range(order.shape[1] - 1, -1, -1):
            k = order[:, j]
            a = alpha[rows, k]
            out = premult[rows, k] + (1 - a) * out
        return out

    @staticmethod
    def past_layers(premult: Tensor, alpha: Tensor, velocity: Tensor, s: int) -> tuple[Tensor, Tensor]:
        """The last seed frame's layers (B x K x H x W) moved back along their velocities to each of
        the ``s`` seed frames: premultiplied FG and A, B x K x S x H x W."""
        ramp = MultiObject.back_ramp(alpha, velocity, s)  # both move alike
        return (fourier.apply_ramp(torch.fft.rfft2(premult[:, :, None]), ramp, alpha.shape[-2:]),
                MultiObject.coverage(alpha, velocity, s, ramp))

    def choose_order(self, x: Tensor, premult: Tensor, alpha: Tensor, velocity: Tensor, bg: Tensor) -> Tensor:
        """Per sequence, the front-to-back order of the layers that best composes the seed frames."""
        b, s = x.shape[:2]
        k = premult.shape[1]
        orders = torch.tensor(list(itertools.permutations(range(k))), device=x.device)  # P x K
        # with at most one layer that is not empty (A and premultiplied FG all zeros) every order
        # composes the same frames, and the tie keeps the first: nothing to compare
        held = (alpha.flatten(2).abs().amax(2) > 0) | (premult.flatten(2).abs().amax(2) > 0)  # B x K
        if len(orders) == 1 or int(held.sum(1).max()) <= 1:
            return orders[0].expand(b, k).clone()
        past_premult, past_alpha = self.past_layers(premult, alpha, velocity, s)
        errors = torch.stack([
            ((self.compose_layers(past_premult, past_alpha, bg[:, None], order.expand(b, k)) - x) ** 2
             ).mean(dim=(1, 2, 3)) for order in orders], 1)  # B x P
        # ties (no overlap during the seed frames) keep the first order: strongest motion in front
        best = errors.min(1)
        choice = torch.where(best.values < errors[:, 0] * (1 - 1e-4), best.indices, torch.zeros_like(best.indices))
        return orders[choice]

    # -- 5. prediction -------------------------------------------------------------------------------
    def _predict(self, x: Tensor, n_future: int) -> tuple[ObjectLayers, Tensor, Tensor, Tensor]:
        """Layers of a chunk of sequences, their moved templates (B x K x n_future x H x W each) and
        the predicted frames."""
        layers, templates = self.estimate(x)
        if n_future == 0:
            empty = x.new_zeros(x.shape[0], self.options.objects, 0, *x.shape[-2:])
            return layers, empty, empty, x.new_zeros(x.shape[0], 0, *x.shape[-2:])
        moved = [self.roll_templates(t, layers.velocity[:, k], n_future) for k, t in enumerate(templates)]
        premults = torch.stack([m[0] for m in moved], 1)
        alphas = torch.stack([m[1] for m in moved], 1)
        preds = self.compose_layers(premults, alphas, layers.bg[:, None], layers.order).clamp(0.0, 1.0)
        return layers, premults, alphas, preds

    def run(self, seed_frames: Tensor, n_future: int = 10, keep_states: bool = False) -> tuple[Tensor, States]:
        """Predict ``n_future`` frames; :attr:`layers` keeps the estimated layers of this run.

        States (with ``keep_states``) are recorded for the predicted frames only: FG and A of
        the composite foreground, the motion of the front layer.
        """
        n_future = check_seed_frames(seed_frames, min_seed=self.min_seed_frames(), n_future=n_future)
        x = seed_frames.to(torch.float32)
        b, s, h, w = x.shape
        # a few sequences at a time: the per-layer, per-frame tensors of large batches cost more
        # in memory traffic than they save in overhead (8 ms per sequence more at 16 than at 4)
        parts = [self._predict(x[i:i + CHUNK], n_future) for i in range(0, b, CHUNK)]
        layers = ObjectLayers(*(torch.cat([getattr(p[0], f.name) for p in parts]) for f in fields(ObjectLayers)))
        self.layers = layers
        states = States()
        if n_future == 0:
            return x.new_zeros(b, 0, h, w), states
        premults, alphas = torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])
        preds = torch.cat([p[3] for p in parts])
        if keep_states:
            union = 1 - (1 - alphas).prod(1)
            front = self.compose_layers(premults, alphas, torch.zeros_like(preds), layers.order)
            rows = torch.arange(b, device=x.device)
            motion = fourier.phase_ramp(layers.velocity[rows, layers.order[:, 0]], h, w)
            for i in range(n_future):
                fg = torch.where(union[:, i] > 1e-3, front[:, i] / union[:, i].clamp_min(1e-3), layers.bg)
                states.record(True, Layers(fg=fg, bg=layers.bg, alpha=union[:, i]), motion, preds[:, i])
        return preds, states
