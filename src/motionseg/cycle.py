"""The prediction-correction cycle as this project first read the paper: the base of our models.

This was the project's reading of the paper's zero-parameter model (Farazi & Behnke 2020,
Sec. 3.1-3.2, Fig. 1) before the authors' released weights decided the readings the paper leaves
open (:mod:`motionseg.zero_param` holds the paper's model now). Our models
(:mod:`motionseg.zero_param_plus`, :mod:`motionseg.learnable_plus`) replace single steps of it.

State per sequence: foreground ``FG``, background ``BG``, alpha mask ``A`` (H x W images)
and the motion ``T`` (complex H x W unit phasors, see :mod:`motionseg.fourier`). One step
of the prediction-correction cycle, for an observed frame ``F_t``:

1. **prediction**: FG and A are moved by phase-adding ``T`` to their Fourier transforms
   (the Frequency Domain Transformer Network step); BG stays. The frame is composed by
   eq. 3, ``F_hat = A * FG + (1 - A) * BG``.
2. **correction**: FG, BG and A each take one step along the hard-wired gradient of the
   squared error ``0.5 * (F_hat - F_t)**2``, times a per-step gain: ``e * A`` for FG,
   ``e * (1 - A)`` for BG and ``e * (FG - BG)`` for A (``e = F_hat - F_t``).
3. **filtering of A**: a difference of Gaussians (blob-like masks), with per-step gains.
4. **motion update**: ``T~`` combines the phase difference of ``FFT(A_t)`` against
   ``FFT(A_t-1)`` with that of ``FFT(FG_t)`` against ``FFT(FG_t-1)``; ``T`` becomes the
   gain-weighted average of ``T_t-1`` and ``T~``, then goes through the averaging phase
   filter (adjacent frequencies differ by a near-constant phase) with its own per-step gain.

After the seed frames no observation is used: FG and A are rolled forward by ``T``.

Where the paper is silent we chose the simplest reading that works (the book's
zero-parameter chapter shows each alternative with its number, on validation data):

* **the state before the cycle**: the first two observed steps *initialise* A, FG and BG
  from the frames: A is the motion evidence ``|F_t - F_t-1|`` times a per-step gain, then
  DoG-filtered; FG is the frame where A is (``A * F_t``); BG is the previous frame. ``T`` is
  initialised from these two steps of A and FG (the paper says so for its learnable
  extension);
* **the combination of the two phase differences**: the mean of the two unit phasors;
* **the average in the phase filter**: weighted by the spectral energy of the pairs that
  gave ``T~`` (an option of the authors' code).

Every gain is a trainable scalar per time step, stored as a logarithm (positive gains) or a
logit (weights in [0, 1]) and trained by backpropagation through time. Table 1 counts this
model as having 0 parameters; :func:`count_gains` reports the gains.

The steps are methods, so that :mod:`motionseg.zero_param_plus` can replace single steps of
the cycle by ours, under options of their own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from . import fourier
from .options import ModelOptions
from .zero_param import count_gains, count_parameters  # noqa: F401  (the gains are named alike)
from .states import Layers, States
from .validation import check_seed_frames

N_STEPS = 20  # gains per time step, for the 20 frames of a sequence
N_INIT = 2  # observed steps that initialise A, FG and BG (and from them T)
DOG_TERMS = ("amplitude", "surround", "sigma_centre", "sigma_surround")


@dataclass(frozen=True)
class Options(ModelOptions):
    """Readings where the paper is silent, and the switches of its Fig. 2c.

    The defaults are the paper's model as we read it; the other values are the alternatives
    the book compares them with.
    """

    combine: str = "mean"  # T~ from A and FG: "mean" of both phase differences, or "alpha" only
    filter_weight: str = "energy"  # phase filter's average of increments: "energy" or "uniform"
    phase_filter: bool = True  # Fig. 2c switches it off
    dog: bool = True
    fg_init: str = "masked"  # FG at the initialising steps: the frame "masked" by A, or the whole "frame"
    filter_kind: str = "neighbour"  # phase filter: rebuild from the "neighbour", or the whole "ramp"

    ALLOWED: ClassVar[dict[str, tuple[str, ...]]] = {
        "combine": ("mean", "alpha"), "filter_weight": ("energy", "uniform"),
        "fg_init": ("masked", "frame"), "filter_kind": ("neighbour", "ramp")}


def _stored(value: float, kind: str) -> float:
    """A gain as its trainable parameter: its logarithm, or its logit."""
    return math.log(value) if kind == "log" else math.log(value / (1 - value))


class CycleModel(nn.Module):
    """The FDTN prediction-correction cycle as first read: zero network parameters, per-step gains."""

    options_class: ClassVar[type[Options]] = Options

    def __init__(self, options: Options | dict[str, Any] | None = None, n_steps: int = N_STEPS) -> None:
        super().__init__()
        self.options = self.options_class.resolve(options, type(self).__name__)
        self.n_steps = n_steps
        self.gain_kinds: dict[str, str] = {}
        self.gains = nn.ParameterDict()
        for name, (value, kind, steps) in self.initial_gains().items():
            terms = value if isinstance(value, tuple) else (value,)
            raw = torch.tensor([_stored(float(v), kind) for v in terms]).repeat(steps, 1)
            self.gains[name] = nn.Parameter(raw if len(terms) > 1 else raw[:, 0].clone())
            self.gain_kinds[name] = kind

    def initial_gains(self) -> dict[str, tuple[float | tuple[float, ...], str, int]]:
        """Gains as (value per step, stored as "log" or "logit", number of steps).

        Set by hand so that the untrained model already segments; training refines them.
        """
        gains: dict[str, tuple[float | tuple[float, ...], str, int]] = {
            "fg": (0.5, "log", self.n_steps),  # step size of the FG correction
            "bg": (0.5, "log", self.n_steps),  # ... of the BG correction
            "alpha": (2.0, "log", self.n_steps),  # ... of the A correction
            "init_alpha": (4.0, "log", N_INIT),  # motion evidence into A, at the initialising steps
            "motion": (0.5, "logit", self.n_steps),  # weight of T~ in the average with T_t-1
            "phase_filter": (0.5, "logit", self.n_steps),  # blend of T with its filtered version
        }
        if self.options.dog:
            # A + amplitude * (G(sigma_centre) * A - surround * G(sigma_surround) * A)
            gains["dog"] = ((0.5, 1.0, 0.7, 4.0), "log", self.n_steps)
        return gains

    def gain(self, name: str, t: int) -> Tensor:
        """The gain ``name`` at step ``t`` (the last stored step for later ones)."""
        raw = self.gains[name][min(t, len(self.gains[name]) - 1)]
        return raw.exp() if self.gain_kinds[name] == "log" else torch.sigmoid(raw)

    # -- the pieces of one step --------------------------------------------------------------
    def min_seed_frames(self) -> int:
        """Seed frames the model needs: the initialising steps and the frame before them."""
        return N_INIT + 1

    def init_steps(self, n_seed: int) -> int:
        """Observed steps before the first prediction-correction step."""
        return N_INIT

    def initialise(self, x: Tensor, t: int, motion: Tensor | None, layers: Layers | None) -> Layers | None:
        """A, FG and BG at an initialising step ``t`` (1 or 2), from the frames ``F_t-1`` and ``F_t``."""
        obs, last = x[:, t], x[:, t - 1]
        alpha = self.filter_alpha(self.gain("init_alpha", t - 1) * (obs - last).abs(), t)
        fg = obs * alpha if self.options.fg_init == "masked" else obs
        return Layers(fg=fg, bg=last, alpha=alpha)

    @staticmethod
    def predict_layers(fg: Tensor, alpha: Tensor, motion: Tensor) -> tuple[Tensor, Tensor]:
        """The prediction step: move FG and A by ``T`` (A kept in [0, 1]); BG stays."""
        return fourier.apply_motion(fg, motion), fourier.apply_motion(alpha, motion).clamp(0.0, 1.0)

    @staticmethod
    def compose(fg: Tensor, bg: Tensor, alpha: Tensor) -> Tensor:
        """Eq. 3: ``A * FG + (1 - A) * BG``."""
        return alpha * fg + (1 - alpha) * bg

    def correct(self, layers: Layers, obs: Tensor, t: int) -> Layers:
        """One gradient step on ``0.5 * (F_hat - F_t)**2`` for FG, BG and A, each with its gain.

        Then the DoG filter on A.
        """
        fg, bg, alpha = layers.fg, layers.bg, layers.alpha
        err = self.compose(fg, bg, alpha) - obs
        new_alpha = (alpha - self.gain("alpha", t) * err * (fg - bg)).clamp(0.0, 1.0)
        return Layers(fg=fg - self.gain("fg", t) * err * alpha,
                      bg=bg - self.gain("bg", t) * err * (1 - alpha),
                      alpha=self.filter_alpha(new_alpha, t), seen=layers.seen)

    def filter_alpha(self, alpha: Tensor, t: int) -> Tensor:
        """Difference of Gaussians on A (blob-like masks), then clamp to [0, 1]."""
        if self.options.dog:
            amplitude, surround, sigma_c, sigma_s = self.gain("dog", t).unbind(-1)
            h, w = alpha.shape[-2:]
            resp = (fourier.gaussian_response(h, w, sigma_c, alpha.device)
                    - surround * fourier.gaussian_response(h, w, sigma_s, alpha.device))
            alpha = alpha + amplitude * torch.fft.ifft2(torch.fft.fft2(alpha) * resp).real
        return alpha.clamp(0.0, 1.0)

    def observe_motion(self, x: Tensor, t: int, motion: Tensor | None) -> Tensor | None:
        """Motion to predict frame ``t`` with; the paper uses ``T`` as the last step left it."""
        return motion

    def update_motion(self, before: Layers, after: Layers, motion: Tensor | None, t: int) -> Tensor:
        """``T~`` from the phase differences of A and of FG between two steps, averaged into ``T``.

        At the first estimate ``T~`` alone is ``T``; then ``T`` is phase-filtered.
        """
        cross_a = fourier.cross_power(before.alpha, after.alpha)
        measured, energy = fourier.unit_spectrum(cross_a), cross_a.abs()
        if self.options.combine == "mean":
            cross_f = fourier.cross_power(before.fg, after.fg)
            measured = fourier.normalise(measured + fourier.unit_spectrum(cross_f), fourier.PHASOR_EPS)
            energy = energy + cross_f.abs()
        if motion is not None:
            g = self.gain("motion", t)
            measured = fourier.normalise((1 - g) * motion + g * measured, fourier.PHASOR_EPS)
        if self.options.phase_filter:
            weight = energy if self.options.filter_weight == "energy" else None
            if self.options.filter_kind == "ramp":
                measured = fourier.phase_filter(measured, weight, self.gain("phase_filter", t))[0]
            else:
                measured = fourier.averaging_phase_filter(measured, self.gain("phase_filter", t), weight)
        return measured

    def refine(self, name: str, x: Tensor, t: int, layers: Layers, obs: Tensor | None, first: bool) -> Tensor:
        """Hook for the learnable extension; the zero-parameter model keeps its states as they are.

        ``name`` is ``"alpha"``, ``"fg"`` or ``"bg"``, ``x`` that state after step ``t``,
        ``layers`` all states of the step (A, FG already refined), ``obs`` the frame (``None``
        after the seed frames), ``first`` true at the first step with states.
        """
        return x

    def finish_seed(self, x: Tensor, layers: Layers, motion: Tensor) -> Layers:
        """After the last seed frame: the paper's model goes straight to predicting."""
        return layers

    def roll_out(self, x: Tensor, layers: Layers, motion: Tensor, n_future: int,
                 states: States, keep_states: bool) -> list[Tensor]:
        """Predict ``n_future`` frames from the state alone: FG and A move by ``T``, BG stays."""
        preds = []
        for _ in range(n_future):
            fg, alpha = self.predict_layers(layers.fg, layers.alpha, motion)
            layers = Layers(fg=fg, bg=layers.bg, alpha=alpha, seen=layers.seen)
            preds.append(self.compose(fg, layers.bg, alpha).clamp(0.0, 1.0))
            states.record(keep_states, layers, motion, preds[-1])
        return preds

    # -- the filter --------------------------------------------------------------------------
    def run(self, seed_frames: Tensor, n_future: int = 10, keep_states: bool = False
            ) -> tuple[Tensor, States]:
        """Filter the seed frames, then roll forward; returns (predictions, per-step states).

        States are recorded after each observed frame from the second on, then after each
        predicted frame (entry ``k`` belongs to frame ``k + 1``).
        """
        n_future = check_seed_frames(seed_frames, min_seed=self.min_seed_frames(), n_future=n_future)
        x = seed_frames.to(torch.float32)
        b, s, h, w = x.shape
        n_init = self.init_steps(s)
        states = States()
        layers: Layers | None = None
        motion: Tensor | None = None
        for t in range(1, s):
            obs = x[:, t]
            motion = self.observe_motion(x, t, motion)
            if t <= n_init:
                pred = x[:, t - 1]  # no motion known yet: the best guess is the last frame
                new = self.initialise(x, t, motion, layers)
            else:
                assert layers is not None and motion is not None
                fg, alpha = self.predict_layers(layers.fg, layers.alpha, motion)
                moved = Layers(fg=fg, bg=layers.bg, alpha=alpha, seen=layers.seen)
                pred = self.compose(moved.fg, moved.bg, moved.alpha)
                new = self.correct(moved, obs, t)
            if new is not None:
                first = layers is None
                new.alpha = self.refine("alpha", new.alpha, t, new, obs, first)
                new.fg = self.refine("fg", new.fg, t, new, obs, first)
                new.bg = self.refine("bg", new.bg, t, new, obs, first)
                if layers is not None:
                    motion = self.update_motion(layers, new, motion, t)
                layers = new
            shown = layers if layers is not None else Layers(fg=x[:, 0], bg=obs, alpha=torch.zeros_like(obs))
            states.record(keep_states, shown, motion if motion is not None else torch.ones_like(obs, dtype=torch.complex64), pred)
        assert layers is not None and motion is not None
        layers = self.finish_seed(x, layers, motion)
        preds = self.roll_out(x, layers, motion, n_future, states, keep_states)
        out = torch.stack(preds, 1) if preds else x.new_zeros(b, 0, h, w)
        return out, states

    def forward(self, seed_frames: Tensor, n_future: int = 10) -> Tensor:
        """Predict ``n_future`` frames (B x n_future x H x W) from B x S x H x W seed frames."""
        return self.run(seed_frames, n_future)[0]
