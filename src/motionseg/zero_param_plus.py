"""Our zero-parameter model: the cycle as first read (:mod:`motionseg.cycle`) with steps of ours.

Each step the paper does not have is a named option of :class:`PlusOptions`; with all of them
off the model is exactly that first reading of the paper's model (before the authors' weights
decided the readings, :mod:`motionseg.zero_param`). On by default (the book's ladder adds them one at a time):

* ``motion_from_differences``: ``T`` is not averaged from phase differences of A and FG but
  measured from the frames: the phase-correlation *peak* between the first and the newest
  temporal difference (differences cancel the static background), divided by their time lag,
  so that the sub-pixel estimate sharpens as the lag grows; ``T`` is the ramp of that
  translation. This is closer to phase-correlation trackers (Wolter et al., 2020) than to
  the paper's T update.
* ``kalman_gains``: each correction is scaled like a scalar Kalman gain
  ``K = p * h / (p * h**2 + 1)`` (``h`` the derivative of the composed frame with respect to
  that image, ``p`` the per-step gain): plain gradient descent for small ``p``, solving for
  the image for large ``p``.
* ``gauss_seidel``: BG, then A, then FG are corrected, each with the error recomputed from
  the newest estimates.
* ``evidence_init``: the first mask comes from motion-compensated evidence gathered over
  ``n_init`` frames (pixels that agree with the last frame moved by ``T`` rather than with the
  last frame as it was), blurred into a blob.
* ``fill_background``: background that was never seen is filled in from its surroundings by
  normalised convolution before predicting.

Off by default, on in the learnable plus model (backward looks over the seed frames once the
filter knows mask and velocity):

* ``smooth_background``: BG is re-estimated from every seed frame that showed it;
* ``smooth_layers``: FG and A are re-estimated by least squares over all seed frames aligned
  by the motion, one template per sub-pixel phase of the motion (``phase_templates``), in
  ``smoothing_passes`` rounds with the background.

Off by default in both plus models (beyond Table 1; the book's stress-test chapter measures it):

* ``remeasure_motion``: motion is measured again when the prediction fails. Without it, ``T``
  comes from the first difference and the newest one, which assumes one constant motion over
  all seed frames: after a reflection off a border it averages the motions before and after.
  With it, a sequence restarts its motion measurement at frame ``t`` when its prediction of that
  frame is no better than ``remeasure_ratio`` times the error of repeating frame ``t - 1`` (and
  worse than ``remeasure_floor``), and the two newest differences alone give a motion more than
  ``remeasure_disagreement`` px/frame away from the one it holds (else the motion is not what
  failed: a mask too small for a large digit fails the prediction too). The reference
  difference becomes the one after frame ``t``, and the lag counts from there; until there is
  one, ``T`` comes from the two newest differences.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from . import fourier
from .cycle import CycleModel, Layers, Options, States

@dataclass(frozen=True)
class PlusOptions(Options):
    """The paper's readings (inherited) and our steps, each a switch (see the module docstring)."""

    motion_from_differences: bool = True
    kalman_gains: bool = True
    gauss_seidel: bool = True
    evidence_init: bool = True
    fill_background: bool = True
    smooth_background: bool = False
    smooth_layers: bool = False
    n_init: int = 3  # frames observed before the first segmentation (evidence_init)
    sigma_init: float = 4.0  # blur of the motion evidence into a blob (px)
    sigma_fill: float = 4.0  # reach of the background fill-in (px)
    layer_prior: float = 1e-3  # weight of the filter's own FG and A in the least-squares layers
    phase_templates: int = 2  # FG/A templates for successive sub-pixel phases (smooth_layers)
    smoothing_passes: int = 2  # rounds of BG, then FG and A, re-estimation (smooth_layers)
    remeasure_motion: bool = False  # beyond Table 1: restart the motion measurement when prediction fails
    remeasure_ratio: float = 0.75  # failed: the error exceeds this share of repeating the last frame's ...
    remeasure_floor: float = 1e-4  # ... and this MSE (below it a static digit's noise would restart it)
    remeasure_disagreement: float = 0.5  # px/frame: the newest motion must differ this much (0: no check)

    STEPS: ClassVar[tuple[str, ...]] = ("motion_from_differences", "kalman_gains", "gauss_seidel",
                                        "evidence_init", "fill_background", "smooth_background",
                                        "smooth_layers")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.evidence_init and not self.motion_from_differences:
            raise ValueError("option evidence_init needs motion_from_differences (it compensates the "
                             "evidence with the motion measured from the first frames)")
        for name in ("n_init", "phase_templates", "smoothing_passes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"option {name} must be an integer >= 1, got {value!r}")
        for name in ("sigma_init", "sigma_fill", "layer_prior", "remeasure_floor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"option {name} must be > 0, got {getattr(self, name)!r}")
        if not self.remeasure_disagreement >= 0:
            raise ValueError(f"option remeasure_disagreement must be >= 0, got {self.remeasure_disagreement!r}")
        if not self.remeasure_ratio > 0:  # 0 would restart at every step
            raise ValueError(f"option remeasure_ratio must be > 0, got {self.remeasure_ratio!r}")
        if self.remeasure_motion and not (self.motion_from_differences and self.phase_filter):
            raise ValueError("option remeasure_motion needs motion_from_differences and phase_filter (it "
                             "restarts the phase-correlation measurement of the motion)")

    @classmethod
    def paper(cls, **changes: Any) -> "PlusOptions":
        """All of our steps off (the cycle as first read), then ``changes``."""
        return cls(**{**{name: False for name in cls.STEPS}, **changes})


def fourth_power(t: Tensor) -> Tensor:
    """``t ** 4`` as two squares: the same to a rounding, at a twentieth of ``pow``'s cost on the CPU.

    The multi-object model weighs K layers' covers per seed frame with it (through ``pow`` a tenth
    of its time); the one-layer models keep ``pow``, with which their results were computed."""
    return t.square().square()


def kalman_gain(p: Tensor, h: Tensor) -> Tensor:
    """Scalar Kalman gain for measurement sensitivity ``h`` and variance ratio ``p``."""
    return p * h / (p * h * h + 1.0)

class ZeroParamPlus(CycleModel):
    """The paper's zero-parameter model with our steps as options (all on by default but the smoothers)."""

    options_class: ClassVar[type[Options]] = PlusOptions
    options: PlusOptions
    # remeasure_motion, per run: each sequence's reference difference (B, long), the seed frames
    # and the velocity last measured; after a run ``restarts`` holds each sequence's last restart
    # frame (0: none)
    _reference: Tensor | None = None
    _frames: Tensor | None = None
    _velocity: Tensor | None = None
    restarts: Tensor | None = None

    def run(self, seed_frames: Tensor, n_future: int = 10, keep_states: bool = False) -> tuple[Tensor, States]:
        """:meth:`CycleModel.run`, with the per-run state of ``remeasure_motion`` reset."""
        self._reference = self._frames = self._velocity = self.restarts = None
        try:
            return super().run(seed_frames, n_future, keep_states)
        finally:
            if self._reference is not None:
                self.restarts = torch.where(self._reference > 1, self._reference - 1, 0)
            self._reference = self._frames = self._velocity = None

    def initial_gains(self) -> dict[str, tuple[float | tuple[float, ...], str, int]]:
        gains = super().initial_gains()
        o = self.options
        if o.kalman_gains:  # Kalman ratios p (prior over measurement variance) instead of step sizes
            gains.update(fg=(20.0, "log", self.n_steps), bg=(5.0, "log", self.n_steps),
                         alpha=(20.0, "log", self.n_steps))
        if o.motion_from_differences:  # T is measured, not averaged and filtered
            del gains["motion"], gains["phase_filter"]
        if o.evidence_init:  # the scale of the first alpha from the motion evidence
            del gains["init_alpha"]
            gains["alpha_init"] = (40.0, "log", self.n_steps)
        return gains

    # -- motion from temporal differences ------------------------------------------------------
    def observe_motion(self, x: Tensor, t: int, motion: Tensor | None) -> Tensor | None:
        """With ``motion_from_differences``: ``T`` from the differences of frames ``0 .. t``.

        With the phase filter, the ramp of the phase-correlation peak between the first and
        the newest difference over their lag; without it, the running mean of the raw phase
        differences of consecutive differences.
        """
        if not self.options.motion_from_differences:
            return motion
        b, _, h, w = x.shape
        if motion is None:
            motion = torch.ones(b, h, w, dtype=torch.complex64, device=x.device)
        lag = t - 1
        if lag < 1:
            return motion
        newest = x[:, t] - x[:, t - 1]
        if self.options.remeasure_motion:
            # difference r is x_r - x_r-1 (r = 1 until a restart: then this is the branch below);
            # right after a restart (t == r) the newest two are the pair
            r = self._reference if self._reference is not None else torch.ones(b, dtype=torch.long, device=x.device)
            ref = torch.where(r < t, r, t - 1)
            rows = torch.arange(b, device=x.device)
            first = x[rows, ref] - x[rows, ref - 1]
            lags = (t - ref).to(x.dtype)[:, None]
            self._frames = x
            self._velocity = fourier.correlation_peak(fourier.cross_power(first, newest)) / lags
            return fourier.phase_ramp(self._velocity, h, w)
        first = x[:, 1] - x[:, 0]
        if self.options.phase_filter:
            velocity = fourier.correlation_peak(fourier.cross_power(first, newest)) / lag
            return fourier.phase_ramp(velocity, h, w)
        raw = fourier.phase_difference(x[:, t - 1] - x[:, t - 2], newest)
        return fourier.normalise(motion * (lag - 1) + raw) if lag > 1 else raw

    def update_motion(self, before: Layers, after: Layers, motion: Tensor | None, t: int) -> Tensor:
        if self.options.motion_from_differences:
            assert motion is not None
            return motion
        return super().update_motion(before, after, motion, t)

    # -- the first segmentation ----------------------------------------------------------------
    def min_seed_frames(self) -> int:
        return 2 if self.options.evidence_init else super().min_seed_frames()

    def init_steps(self, n_seed: int) -> int:
        if self.options.evidence_init:
            return max(1, min(self.options.n_init, n_seed - 1))
        return super().init_steps(n_seed)

    def initialise(self, x: Tensor, t: int, motion: Tensor | None, layers: Layers | None) -> Layers | None:
        """With ``evidence_init``: the first segmentation after ``n_init`` frames of motion evidence."""
        o = self.options
        if not o.evidence_init:
            new = super().initialise(x, t, motion, layers)
            assert new is not None
            seen = 1 - new.alpha
            new.seen = seen if layers is None or layers.seen is None else torch.maximum(layers.seen, seen)
            return new
        if t < self.init_steps(x.shape[1]):
            return None
        # motion-compensated evidence: moving pixels agree with the last frame moved by T,
        # static ones with the last frame as it was
        evidence = torch.zeros_like(x[:, 0])
        step_motion: Tensor | None = None
        for k in range(1, t + 1):
            step_motion = self.observe_motion(x, k, step_motion)
            assert step_motion is not None
            obs, last = x[:, k], x[:, k - 1]
            moved = fourier.apply_motion(last, step_motion)
            evidence = fourier.apply_motion(evidence, step_motion) + (obs - last).abs() - (obs - moved).abs()
        blob = fourier.gaussian_blur(evidence, o.sigma_init).clamp_min(0.0)
        alpha = self.filter_alpha(self.gain("alpha_init", t) * blob, t)
        obs = x[:, t]
        return Layers(fg=obs, bg=alpha * x[:, 0] + (1 - alpha) * obs, alpha=alpha, seen=1 - alpha)

    # -- the correction ------------------------------------------------------------------------
    def correct(self, layers: Layers, obs: Tensor, t: int) -> Layers:
        """Kalman-scaled and/or Gauss-Seidel corrections (the paper's step with both off)."""
        o = self.options
        if o.remeasure_motion:
            self.watch_error(layers, obs, t)
        if o.kalman_gains or o.gauss_seidel:
            fg, bg, alpha = layers.fg, layers.bg, layers.alpha

            def step(name: str, h: Tensor) -> Tensor:
                p = self.gain(name, t)
                return kalman_gain(p, h) if o.kalman_gains else p * h

            err = self.compose(fg, bg, alpha) - obs
            bg = bg - step("bg", 1 - alpha) * err
            if o.gauss_seidel:
                err = self.compose(fg, bg, alpha) - obs
            new_alpha = alpha - step("alpha", fg - bg) * err
            if o.gauss_seidel:
                err = self.compose(fg, bg, new_alpha) - obs
            fg = fg - step("fg", new_alpha) * err
            new = Layers(fg=fg, bg=bg, alpha=self.filter_alpha(new_alpha, t), seen=layers.seen)
        else:
            new = super().correct(layers, obs, t)
        if new.seen is not None:
            new.seen = torch.maximum(new.seen, 1 - new.alpha)
        return new

    def watch_error(self, moved: Layers, obs: Tensor, t: int) -> None:
        """``remeasure_motion``: restart the motion measurement of sequences whose prediction of frame ``t`` failed.

        ``moved`` are the layers predicted for frame ``t``, before its correction. Failed means:
        worse than ``remeasure_ratio`` times the error of repeating frame ``t - 1`` (the motion
        model explains less of the change than it should), worse than ``remeasure_floor``, and
        the two newest differences disagree with the motion held by more than
        ``remeasure_disagreement``. The first prediction after the initialisation is not judged.
        """
        o = self.options
        if self._reference is None:
            self._reference = torch.ones(obs.shape[0], dtype=torch.long, device=obs.device)
            return
        x, held = self._frames, self._velocity
        assert x is not None and held is not None and t >= 2
        error = ((self.compose(moved.fg, moved.bg, moved.alpha) - obs) ** 2).mean(dim=(-2, -1)).detach()
        still = ((x[:, t - 1] - obs) ** 2).mean(dim=(-2, -1))
        failed = (error > o.remeasure_ratio * still) & (error > o.remeasure_floor)
        if o.remeasure_disagreement > 0:
            newest = fourier.correlation_peak(fourier.cross_power(x[:, t - 1] - x[:, t - 2], x[:, t] - x[:, t - 1]))
            failed = failed & ((newest - held).norm(dim=-1) > o.remeasure_disagreement)
        # the next difference, x_t+1 - x_t, is the first that the new motion alone made
        self._reference = torch.where(failed, t + 1, self._reference)

    # -- after the seed frames -----------------------------------------------------------------
    def finish_seed(self, x: Tensor, layers: Layers, motion: Tensor) -> Layers:
        """Re-estimate BG from all seed frames (``smooth_background``), fill in what was never seen."""
        o = self.options
        bg, seen = layers.bg, layers.seen
        assert seen is not None
        if o.smooth_background:
            bg, seen = self.smooth_background(x, layers.alpha, fourier.estimate_shift(motion), bg, seen)
        if o.fill_background:
            bg = self.fill_background(bg, seen)
        layers = Layers(fg=layers.fg, bg=bg, alpha=layers.alpha, seen=seen)
        layers.bg = self.refine("bg", bg, x.shape[1], layers, None, False)
        return layers

    def roll_out(self, x: Tensor, layers: Layers, motion: Tensor, n_future: int,
                 states: States, keep_states: bool) -> list[Tensor]:
        """With ``smooth_layers``: roll out least-squares templates; else the paper's roll-out."""
        o = self.options
        if not o.smooth_layers or n_future == 0:
            return super().roll_out(x, layers, motion, n_future, states, keep_states)
        velocity = fourier.estimate_shift(motion)
        premult, alpha, bg, seen = layers.alpha * layers.fg, layers.alpha, layers.bg, layers.seen
        assert seen is not None
        # without smooth_background a second round would only repeat the first
        passes = o.smoothing_passes if o.smooth_background else 1
        templates: list[tuple[Tensor, Tensor, int]] = []
        for p in range(passes):
            if templates:
                # the re-estimated mask tells better which seed frames showed the background
                premult, alpha, _ = templates[0]
                bg, seen = self.smooth_background(x, alpha, velocity, bg, seen)
                if o.fill_background:
                    bg = self.fill_background(bg, seen)
                bg = self.refine("bg", bg, x.shape[1], Layers(fg=layers.fg, bg=bg, alpha=alpha, seen=seen), None, False)
            # an earlier pass only needs the newest template (for the background)
            last = p == passes - 1
            templates = self.smooth_layers(x, premult, alpha, bg, velocity, None if last else 1)
        premults, alphas = self.roll_templates(templates, velocity, n_future)
        preds = []
        for k in range(n_future):
            alpha = alphas[:, k]
            preds.append((premults[:, k] + (1 - alpha) * bg).clamp(0.0, 1.0))
            if keep_states:  # FG itself is only needed for the recorded states
                fg = torch.where(alpha > 1e-3, premults[:, k] / alpha.clamp_min(1e-3), bg)
                states.record(True, Layers(fg=fg, bg=bg, alpha=alpha, seen=seen), motion, preds[-1])
        return preds

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
        return ZeroParamPlus.background_where_uncovered(x, past.clamp(0.0, 1.0), bg, seen)

    @staticmethod
    def background_where_uncovered(x: Tensor, cover: Tensor, bg: Tensor, seen: Tensor) -> tuple[Tensor, Tensor]:
        """Each pixel's average over the seed frames (B x S x H x W) weighted by ``(1 - cover)**4``.

        ``cover`` (B x S x H x W, in [0, 1]): how much foreground hid each pixel of each frame.
        Where the frames showed a pixel less than once in all, the average is blended with ``bg``;
        ``seen`` records how much of it they showed.
        """
        return ZeroParamPlus.background_from_weights(x, (1 - cover) ** 4, bg, seen)

    @staticmethod
    def background_from_weights(x: Tensor, weight: Tensor, bg: Tensor, seen: Tensor) -> tuple[Tensor, Tensor]:
        """Each pixel's average over the seed frames (B x S x H x W) with ``weight`` (B x S x H x W, >= 0),
        blended with ``bg`` where the weights sum to less than one; ``seen`` records that sum (at most 1)."""
        total = weight.sum(1)
        confidence = total.clamp(0.0, 1.0)
        smooth = (weight * x).sum(1) / total.clamp_min(1e-6)
        return confidence * smooth + (1 - confidence) * bg, torch.maximum(seen, confidence)

    def smooth_layers(self, x: Tensor, premult: Tensor, alpha: Tensor, bg: Tensor, velocity: Tensor,
                      n_templates: int | None = None, hidden: Tensor | None = None,
                      x_spectrum: Tensor | None = None, x_aligned: dict[int, Tensor] | None = None,
                      bg_aligned: dict[int, Tensor] | None = None) -> list[tuple[Tensor, Tensor, int]]:
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
        (default: the option ``phase_templates``) limits how many are made. ``hidden`` (B x S x H x W,
        in each seed frame's own coordinates) is how much of each pixel other layers cover there
        (the multi-object model): those pixels say nothing about this layer and weigh less.
        ``x_spectrum`` is ``rfft2(x)`` where the caller has it already; ``x_aligned`` (per lag, the
        seed frames aligned along ``velocity``) keeps them between calls of one ``x`` and ``velocity``:
        what it lacks is computed and added. ``bg_aligned``, where given, receives per lag the
        background as the aligned frames show it (this call's ``bg``).
        """
        o = self.options
        s, size = x.shape[1], x.shape[-2:]
        # each image is transformed once, however many ways it is moved
        x_spectrum = torch.fft.rfft2(x) if x_spectrum is None else x_spectrum
        bg_spectrum = torch.fft.rfft2(bg[:, None])
        hidden_spectrum = None if hidden is None else torch.fft.rfft2(hidden)
        templates = []
        for lag in range(o.phase_templates if n_templates is None else n_templates):
            target = s - 1 - lag
            shift = (target - torch.arange(s, dtype=x.dtype, device=x.device))[None, :, None] * velocity[:, None, :]
            off = (shift - shift.round()).abs()  # distance of each shift from whole pixels, per axis
            w = (1 - 2 * off).clamp_min(0.0).prod(-1) ** 4  # B x S
            ramp = fourier.half_ramp(shift, size)  # frames, background and cover move alike
            if x_aligned is not None and lag in x_aligned:
                xa = x_aligned[lag]
            else:
                xa = fourier.apply_ramp(x_spectrum, ramp, size)  # the seed frames, aligned
                if x_aligned is not None:
                    x_aligned[lag] = xa
            ba = fourier.apply_ramp(bg_spectrum, ramp, size)  # the background as each aligned frame shows it
            if bg_aligned is not None:
                bg_aligned[lag] = ba
            if lag == 0:  # the given layers are at the last seed frame already
                prior_alpha, prior_premult = alpha.clamp(0.0, 1.0), premult
            else:
                back = -lag * velocity
                prior_alpha = fourier.real_shift(alpha, back).clamp(0.0, 1.0)
                prior_premult = fourier.real_shift(premult, back)
            lam = o.layer_prior
            # weighted sums over the frames of the residual y = xa - ba, its product with ba, ...
            if hidden_spectrum is None:
                sb, sbb = torch.einsum("bs,bshw->bhw", w, ba), torch.einsum("bs,bshw->bhw", w, ba * ba)
                sx, sbx = torch.einsum("bs,bshw->bhw", w, xa), torch.einsum("bs,bshw->bhw", w, ba * xa)
                sw = w.sum(1)[:, None, None] + lam
            else:
                hidden_here = fourier.apply_ramp(hidden_spectrum, ramp, size).clamp(0.0, 1.0)
                wp = w[:, :, None, None] * fourth_power(1 - hidden_here)
                wpba = wp * ba
                sb, sbb, sx, sbx = wpba.sum(1), (wpba * ba).sum(1), (wp * xa).sum(1), (wpba * xa).sum(1)
                sw = wp.sum(1) + lam
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
        if not templates:
            raise ValueError("roll_templates needs at least one template")

        def place(lag: int) -> tuple[Tensor, Tensor]:
            """Shifts (B x n_future x 2) from a template ``lag`` frames back, and their distance from whole pixels."""
            shift = (steps + lag)[None, :, None] * velocity[:, None, :]
            return shift, (shift - shift.round()).abs().sum(-1)

        # the choice depends on the velocity alone: choose first, then move each frame's template
        # once (moving every template to every frame and discarding all but one cost twice as much)
        shift, off = place(templates[0][2])
        choice = torch.zeros_like(off, dtype=torch.long)  # B x n_future: index of the template used
        for t, (_, _, lag) in enumerate(templates[1:], start=1):
            shift_t, off_t = place(lag)
            use = off_t < off - 1e-3
            choice = torch.where(use, torch.full_like(choice, t), choice)
            shift = torch.where(use[..., None], shift_t, shift)
            off = torch.minimum(off_t, off)
        size = templates[0][0].shape[-2:]
        rows = torch.arange(velocity.shape[0], device=velocity.device)[:, None]
        spectra = torch.fft.rfft2(torch.stack([torch.stack([pm, a], 1) for pm, a, _ in templates], 1))  # B x T x 2 x ...
        picked = spectra[rows, choice]  # B x n_future x 2 x H x W//2+1
        moved = fourier.shift_spectrum(picked, shift[:, :, None, :], size)
        return moved[:, :, 0], moved[:, :, 1].clamp(0.0, 1.0)

    def fill_background(self, bg: Tensor, seen: Tensor) -> Tensor:
        """Fill background that was never seen by normalised convolution of what was."""
        sigma = self.options.sigma_fill
        weight = seen.clamp(0, 1) ** 4
        filled = fourier.gaussian_blur(bg * weight, sigma) / (fourier.gaussian_blur(weight, sigma) + 1e-3)
        return weight * bg + (1 - weight) * filled
