"""The zero-parameter prediction-correction model (paper Sec. 3.1-3.2, Fig. 1).

State per sequence: foreground ``fg``, background ``bg``, alpha mask ``alpha`` (H x W
images) and motion ``T`` (complex H x W unit phasors, see :mod:`motionseg.fourier`).
One step of the filter:

1. **motion measurement**: phase differences of what moved between frames (the
   temporal difference of the observations and, once segmented, the alpha mask and
   the premultiplied foreground), accumulated over time and *phase filtered* to a
   pure translation;
2. **prediction**: ``fg`` and ``alpha`` are moved by ``T`` (shift theorem), ``bg``
   stays; the frame is composed as ``alpha * fg + (1 - alpha) * bg`` (eq. 3);
3. **correction**: each image takes a step along the hard-wired gradient of the
   squared prediction error, scaled like a scalar Kalman gain
   ``K = p * H / (p * H**2 + 1)`` where ``H`` is the derivative of the composed frame
   with respect to that image and ``p`` a per-step gain (for small ``p`` this is plain
   gradient descent, for large ``p`` it solves for the image);
4. **filtering**: a difference-of-Gaussians on ``alpha`` (blob-like masks).

After the seed frames no observation is used: ``fg`` and ``alpha`` are rolled forward
by ``T``; background that was never seen is filled from its surroundings.

Two optional backward looks over the seed frames, once the filter knows mask and
velocity (off here, on in the learnable model): ``smooth_background`` re-estimates BG
from every frame that showed it, ``smooth_layers`` re-estimates FG and A by least
squares over all seed frames aligned by the motion, one template per sub-pixel phase.

The model has no network parameters. Its per-step *gains* are ``nn.Parameter``s, so
they can be trained by backpropagation through time, but they are reported
separately (:func:`count_gains`), as Table 1 counts this model as 0 parameters.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from . import fourier
from .validation import check_seed_frames

N_STEPS = 20

# Hand-set defaults under which the untrained model already segments.
DEFAULT_GAINS: dict[str, float] = {
    "fg": 20.0,  # Kalman ratio p (prior over measurement variance) of the foreground update
    "bg": 5.0,  # ... of the background update
    "alpha": 20.0,  # ... of the alpha update
    "dog": 0.5,  # strength of the DoG sharpening of alpha
    "alpha_init": 40.0,  # scale of the first alpha from the motion evidence
}


@dataclass
class Options:
    """Fixed, interpretable settings of the model (not trained)."""

    n_init: int = 3  # frames observed before the first segmentation
    sigma_init: float = 4.0  # blur of the motion evidence into a blob (px)
    sigma_centre: float = 0.7  # DoG centre (px)
    sigma_surround: float = 4.0  # DoG surround (px)
    sigma_fill: float = 4.0  # reach of the background fill-in (px)
    phase_filter: bool = True  # T is a pure translation (phase ramp) read off the correlation peak
    dog: bool = True
    fill_background: bool = True
    gauss_seidel: bool = True  # correct bg, then alpha, then fg, each with the newest error
    smooth_background: bool = False  # re-estimate BG from all seed frames at the end (learnable model)
    smooth_layers: bool = False  # re-estimate FG and A from all seed frames at the end (learnable model)
    layer_prior: float = 1e-3  # weight of the filter's own FG and A in that re-estimate
    phase_templates: int = 2  # FG/A templates for successive sub-pixel phases (with smooth_layers)
    smoothing_passes: int = 2  # rounds of BG, then FG and A, re-estimation (with smooth_layers)


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


def _kalman(p: Tensor, h: Tensor) -> Tensor:
    """Scalar Kalman gain for measurement sensitivity ``h`` and variance ratio ``p``."""
    return p * h / (p * h * h + 1.0)


class ZeroParamModel(nn.Module):
    """FDTN prediction-correction model with zero network parameters."""

    def __init__(self, n_steps: int = N_STEPS, options: Options | None = None,
                 gains: dict[str, float] | None = None) -> None:
        super().__init__()
        self.n_steps = n_steps
        self.options = options or Options()
        if self.options.phase_templates < 1 or self.options.smoothing_passes < 1:
            raise ValueError(f"phase_templates and smoothing_passes must be >= 1, got "
                             f"{self.options.phase_templates} and {self.options.smoothing_passes}")
        init = dict(DEFAULT_GAINS, **(gains or {}))
        unknown = set(init) - set(DEFAULT_GAINS)
        if unknown:
            raise ValueError(f"unknown gains {sorted(unknown)}: allowed are {sorted(DEFAULT_GAINS)}")
        # stored as logarithms so that training keeps every gain positive
        self.gains = nn.ParameterDict({
            k: nn.Parameter(torch.full((n_steps,), float(v)).clamp_min(1e-6).log()) for k, v in init.items()})

    def gain(self, name: str, t: int) -> Tensor:
        """The positive gain ``name`` at step ``t`` (the last one for later steps)."""
        return self.gains[name][min(t, self.n_steps - 1)].exp()

    def forward(self, seed_frames: Tensor, n_future: int = 10) -> Tensor:
        """Predict ``n_future`` frames (B x n_future x H x W) from B x S x H x W seed frames."""
        return self.run(seed_frames, n_future)[0]

    # -- the pieces of one step ----------------------------------------------------------------
    def measure_motion(self, diffs: list[Tensor], motion: Tensor) -> tuple[Tensor, Tensor]:
        """Motion field and velocity from the temporal differences seen so far.

        Differences of consecutive frames cancel the static background. With phase
        filtering, ``T`` is the ramp of the phase-correlation peak between the first
        and the newest difference, divided by their time lag (a growing baseline makes
        the subpixel estimate ever more precise). Without it, ``T`` is the running mean
        of the raw phase differences of consecutive differences.
        """
        lag = len(diffs) - 1
        if lag < 1:
            b, h, w = diffs[0].shape
            return motion, diffs[0].new_zeros(b, 2)
        if self.options.phase_filter:
            velocity = fourier.correlation_peak(fourier.cross_power(diffs[0], diffs[-1])) / lag
            h, w = diffs[0].shape[-2:]
            return fourier.phase_ramp(velocity, h, w), velocity
        raw = fourier.phase_difference(diffs[-2], diffs[-1])
        motion = fourier.normalise(motion * (lag - 1) + raw) if lag > 1 else raw
        return motion, fourier.estimate_shift(motion)

    @staticmethod
    def predict_layers(fg: Tensor, alpha: Tensor, motion: Tensor) -> tuple[Tensor, Tensor]:
        """The prediction step: move FG and A by ``T`` (A kept in [0, 1]); BG stays."""
        return fourier.apply_motion(fg, motion), fourier.apply_motion(alpha, motion).clamp(0.0, 1.0)

    def filter_alpha(self, alpha: Tensor, t: int) -> Tensor:
        """Difference-of-Gaussians sharpening (blob-like masks), then clamp to [0, 1]."""
        if self.options.dog:
            o = self.options
            alpha = alpha + self.gain("dog", t) * fourier.difference_of_gaussians(alpha, o.sigma_centre, o.sigma_surround)
        return alpha.clamp(0.0, 1.0)

    def refine(self, name: str, x: Tensor, t: int, context: Tensor | None = None, first: bool = False) -> Tensor:
        """Hook for the learnable extension; the zero-parameter model keeps its states as they are.

        ``name`` is ``"fg"``, ``"bg"`` or ``"alpha"``, ``t`` the step, ``context`` the
        background's observation confidence (for ``"bg"``), ``first`` true at the first
        segmentation.
        """
        return x

    @staticmethod
    def smooth_background(x: Tensor, alpha: Tensor, velocity: Tensor, bg: Tensor, seen: Tensor
                          ) -> tuple[Tensor, Tensor]:
        """Re-estimate BG from every seed frame, with the final mask moved back along the velocity.

        A smoother's backward look: once the filter knows the mask and the velocity, it can tell
        which pixels each earlier frame showed as background, including those its running
        estimate missed because its mask was too large then. Each pixel becomes the average of
        the frames that showed it (weighted by ``(1 - alpha)**4``); where no frame did, BG and
        ``seen`` stay as they were.
        """
        s = x.shape[1]
        lags = torch.arange(s - 1, -1, -1, dtype=x.dtype, device=x.device)
        past = fourier.real_shift(alpha[:, None], -lags[None, :, None] * velocity[:, None, :])
        weight = (1 - past.clamp(0.0, 1.0)) ** 4
        total = weight.sum(1)
        confidence = total.clamp(0.0, 1.0)
        smooth = (weight * x).sum(1) / total.clamp_min(1e-6)
        return confidence * smooth + (1 - confidence) * bg, torch.maximum(seen, confidence)

    def smooth_layers(self, x: Tensor, premult: Tensor, alpha: Tensor, bg: Tensor, velocity: Tensor,
                      n_templates: int | None = None) -> list[tuple[Tensor, Tensor, int]]:
        """Re-estimate premultiplied FG and A from all seed frames: ``(premult, alpha, lag)`` templates.

        Template ``lag`` describes the layers as they were ``lag`` frames before the last seed
        frame. Each seed frame ``j`` is moved by the velocity to that frame's position, where
        ``x_j - bg_j = premult - alpha * bg_j`` holds per pixel (``bg_j``: BG moved the same
        way). Under a moving digit the aligned background changes from frame to frame, so
        ``premult`` and ``alpha`` follow per pixel from a 2 x 2 least-squares system; the
        given ``premult`` (FG times A) and A enter with weight ``layer_prior`` (they decide where the
        background does not vary). Frames whose shift is not a whole number of pixels are
        down-weighted, because a sub-pixel Fourier shift of a sharp edge rings. For motion
        by half pixels, the two templates (``phase_templates=2``) give every future frame one
        that reaches it by a whole-pixel shift (:meth:`roll_templates`). ``n_templates``
        (default: the option ``phase_templates``) limits how many are made.
        """
        o = self.options
        s = x.shape[1]
        templates = []
        for lag in range(o.phase_templates if n_templates is None else n_templates):
            target = s - 1 - lag
            shift = (target - torch.arange(s, dtype=x.dtype, device=x.device))[None, :, None] * velocity[:, None, :]
            off = (shift - shift.round()).abs()  # distance of each shift from whole pixels, per axis
            w = (1 - 2 * off).clamp_min(0.0).prod(-1) ** 4  # B x S
            xa = fourier.real_shift(x, shift)  # the seed frames, aligned
            ba = fourier.real_shift(bg[:, None], shift)  # the background as each aligned frame shows it
            back = -lag * velocity
            prior_alpha = fourier.fourier_shift(alpha, back).clamp(0.0, 1.0)
            prior_premult = fourier.fourier_shift(premult, back)
            lam = o.layer_prior
            # weighted sums over the frames of the residual y = xa - ba, its product with ba, ...
            sb, sbb = torch.einsum("bs,bshw->bhw", w, ba), torch.einsum("bs,bshw->bhw", w, ba * ba)
            sx, sbx = torch.einsum("bs,bshw->bhw", w, xa), torch.einsum("bs,bshw->bhw", w, ba * xa)
            sw = w.sum(1)[:, None, None] + lam
            ry = sx - sb + lam * prior_premult
            rby = sbb - sbx + lam * prior_alpha
            sbb = sbb + lam
            # [[sw, -sb], [-sb, sbb]] @ [premult, alpha] = [ry, rby]; det >= lam * (sw + sbb) > 0
            det = sw * sbb - sb * sb
            new_alpha = ((sw * rby + sb * ry) / det).clamp(0.0, 1.0)
            new_premult = torch.minimum(((ry * sbb + sb * rby) / det).clamp(0.0, 1.0), new_alpha)
            templates.append((new_premult, new_alpha, lag))
        return templates

    @staticmethod
    def roll_templates(templates: list[tuple[Tensor, Tensor, int]], velocity: Tensor, n_future: int
                       ) -> tuple[Tensor, Tensor]:
        """Premultiplied FG and A of the next ``n_future`` frames (B x n_future x H x W each).

        Each frame comes from the template that reaches it by the shift closest to whole
        pixels (per sequence; ties go to the newer template).
        """
        steps = torch.arange(1, n_future + 1, dtype=velocity.dtype, device=velocity.device)
        best: tuple[Tensor, Tensor, Tensor] | None = None
        for premult, alpha, lag in templates:
            shift = (steps + lag)[None, :, None] * velocity[:, None, :]  # B x n_future x 2
            off = (shift - shift.round()).abs().sum(-1)
            moved = (fourier.real_shift(premult[:, None], shift),
                     fourier.real_shift(alpha[:, None], shift).clamp(0.0, 1.0), off)
            if best is None:
                best = moved
            else:
                use = (moved[2] < best[2] - 1e-3)[:, :, None, None]
                best = (torch.where(use, moved[0], best[0]), torch.where(use, moved[1], best[1]),
                        torch.minimum(moved[2], best[2]))
        assert best is not None
        return best[0], best[1]

    def fill_background(self, bg: Tensor, seen: Tensor) -> Tensor:
        """Fill background that was never seen by normalised convolution of what was."""
        sigma = self.options.sigma_fill
        weight = seen.clamp(0, 1) ** 4
        filled = fourier.gaussian_blur(bg * weight, sigma) / (fourier.gaussian_blur(weight, sigma) + 1e-3)
        return weight * bg + (1 - weight) * filled

    # -- the filter ----------------------------------------------------------------------------
    def run(self, seed_frames: Tensor, n_future: int = 10, keep_states: bool = False
            ) -> tuple[Tensor, States]:
        """Filter the seed frames, then roll forward; returns (predictions, per-step states).

        States are recorded after each observed frame from the second on, then after
        each predicted frame.
        """
        check_seed_frames(seed_frames, min_seed=2, n_future=n_future)
        o = self.options
        x = seed_frames.to(torch.float32)
        b, s, h, w = x.shape
        states = States()
        n_init = max(1, min(o.n_init, s - 1))

        motion = torch.ones(b, h, w, dtype=torch.complex64, device=x.device)
        velocity = x.new_zeros(b, 2)
        diffs: list[Tensor] = []
        evidence = torch.zeros_like(x[:, 0])
        # until the first segmentation, the model only gathers motion evidence: the
        # frame is background, the prediction is the last frame
        fg, bg, alpha = x[:, 0], x[:, 0], torch.zeros_like(x[:, 0])
        seen = torch.ones_like(alpha)
        for t in range(1, s):
            obs, last = x[:, t], x[:, t - 1]
            diffs.append(obs - last)
            motion, velocity = self.measure_motion(diffs, motion)
            if t <= n_init:
                # motion-compensated evidence: moving pixels agree with the last frame moved by T,
                # static ones with the last frame as it was
                moved = fourier.apply_motion(last, motion)
                evidence = fourier.apply_motion(evidence, motion) + (obs - last).abs() - (obs - moved).abs()
                pred = last
                if t == n_init:
                    blob = fourier.gaussian_blur(evidence, o.sigma_init).clamp_min(0.0)
                    alpha = self.filter_alpha(self.gain("alpha_init", t) * blob, t)
                    fg = obs
                    bg = alpha * x[:, 0] + (1 - alpha) * obs
                    seen = 1 - alpha
                    alpha = self.refine("alpha", alpha, t, first=True)
                    fg = self.refine("fg", fg, t, first=True)
                    bg = self.refine("bg", bg, t, context=seen, first=True)
                else:
                    bg = obs
            else:
                fg, alpha = self.predict_layers(fg, alpha, motion)
                pred = alpha * fg + (1 - alpha) * bg
                # correction: Kalman-scaled hard-wired gradients of 0.5 * (pred - obs)**2
                err = pred - obs
                bg = bg - _kalman(self.gain("bg", t), 1 - alpha) * err
                if o.gauss_seidel:
                    err = alpha * fg + (1 - alpha) * bg - obs
                new_alpha = alpha - _kalman(self.gain("alpha", t), fg - bg) * err
                if o.gauss_seidel:
                    err = new_alpha * fg + (1 - new_alpha) * bg - obs
                fg = fg - _kalman(self.gain("fg", t), new_alpha) * err
                alpha = self.filter_alpha(new_alpha, t)
                seen = torch.maximum(seen, 1 - alpha)
                alpha = self.refine("alpha", alpha, t)
                fg = self.refine("fg", fg, t)
                bg = self.refine("bg", bg, t, context=seen)
            self._record(states, keep_states, fg, bg, alpha, motion, velocity, pred)

        if o.smooth_background:
            bg, seen = self.smooth_background(x, alpha, velocity, bg, seen)
        if o.fill_background:
            bg = self.fill_background(bg, seen)
        bg = self.refine("bg", bg, s, context=seen)
        templates = None
        if o.smooth_layers:
            premult = alpha * fg
            # without smooth_background a second round would only repeat the first
            passes = o.smoothing_passes if o.smooth_background else 1
            for p in range(passes):
                if templates is not None:
                    # the re-estimated mask tells better which seed frames showed the background
                    premult, alpha, _ = templates[0]
                    bg, seen = self.smooth_background(x, alpha, velocity, bg, seen)
                    if o.fill_background:
                        bg = self.fill_background(bg, seen)
                    bg = self.refine("bg", bg, s, context=seen)
                # an earlier pass only needs the newest template (for the background)
                last = p == passes - 1
                templates = self.smooth_layers(x, premult, alpha, bg, velocity, None if last else 1)
        if templates is not None:
            premults, alphas = self.roll_templates(templates, velocity, n_future)
        preds = []
        for k in range(n_future):
            if templates is None:
                fg, alpha = self.predict_layers(fg, alpha, motion)
                frame = (alpha * fg + (1 - alpha) * bg).clamp(0.0, 1.0)
            else:
                alpha = alphas[:, k]
                frame = (premults[:, k] + (1 - alpha) * bg).clamp(0.0, 1.0)
                if keep_states:  # FG itself is only needed for the recorded states
                    fg = torch.where(alpha > 1e-3, premults[:, k] / alpha.clamp_min(1e-3), bg)
            preds.append(frame)
            self._record(states, keep_states, fg, bg, alpha, motion, velocity, frame)
        out = torch.stack(preds, 1) if preds else x.new_zeros(b, 0, h, w)
        return out, states

    @staticmethod
    def _record(states: States, keep: bool, fg: Tensor, bg: Tensor, alpha: Tensor, motion: Tensor,
                velocity: Tensor, frame: Tensor) -> None:
        if keep:
            for name, value in (("fg", fg), ("bg", bg), ("alpha", alpha), ("motion", motion),
                                ("velocity", velocity), ("frame", frame)):
                getattr(states, name).append(value.detach())


def count_parameters(model: nn.Module) -> int:
    """Network parameters, i.e. everything except the per-step gains."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("gains."))


def count_gains(model: nn.Module) -> int:
    """Number of trainable gain scalars."""
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith("gains."))
