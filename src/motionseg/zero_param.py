"""The paper's zero-parameter model (Farazi & Behnke 2020, Sec. 3.1-3.2, Fig. 1), wired as the authors' weights require.

State per sequence: foreground ``FG``, background ``BG``, alpha mask ``A`` (H x W images) and
the motion ``T`` (complex H x W unit phasors, ``FFT(later) = FFT(earlier) * T``, see
:mod:`motionseg.fourier`). The paper leaves much open; the authors' released checkpoint of this
model (194 trained gains) decided each reading: run under every candidate reading, it predicts
best under this one (the book's zero-parameter chapter has the table).

**Start.** For the first two frames ``k = 0, 1`` a first estimate of the state is made from the
frames alone: ``A_k = soft(s * |F_k+1 - F_k|)`` (motion evidence; ``s`` a raw gain),
``FG_k = A_k * F_k`` and ``BG_k = F_k``. ``T`` starts as the phase difference of these two
estimates: ``T~ = b * PD(FG_0 -> FG_1) + (1 - b) * PD(A_0 -> A_1)``, renormalised.

**The cycle**, for every frame ``i`` from 0 on:

1. **phase filter** (from ``i = 1``): ``T`` is smoothed along rows, then columns, assuming a
   near-constant phase increment between neighbouring frequencies (both neighbours, increments
   averaged per line weighted by the spectral energy, then over the lines; the authors'
   helper module);
2. **prediction** (from ``i = 1``): FG and A are moved by ``T`` (A clamped to [0, 1]), BG stays;
   at ``i = 1`` the moved state is averaged half and half with the estimate of frame 1;
   the frame is composed by eq. 3, ``F_hat = A * FG + (1 - A) * BG``;
3. **correction** (seed frames only): each state takes one step along the hard-wired gradient
   of ``0.5 * (F_hat - F_i)**2`` times its gain ``g = sigmoid(.)`` for this frame:
   ``A <- soft(A - g_A * e * (FG - BG))``, ``FG <- clamp(FG - g_FG * e * A)``,
   ``BG <- clamp(BG - g_BG * e * (1 - A))`` with ``e = F_hat - F_i``;
4. **difference of Gaussians on A** (blob-like masks):
   ``A <- soft(A + d2 * (G(|d1|) * A - G(|d0|) * A) + d3)``, four raw gains per frame;
5. **motion update** (from ``i = 1``): ``T~`` from the phase differences of the corrected A and
   FG of the previous and this frame, weighted by ``b_i = sigmoid(.)``, and
   ``T <- normalise((1 - u_i) * T + u_i * T~)`` with ``u_i = sigmoid(.)``.

After the seed frames no observation is used: FG and A are moved by ``T``, the composed frame
(clamped to [0, 1]) is the prediction. ``soft(a) = sigmoid(10 a - 5)`` and the hard clamp are
both in the authors' helper module.

The gains are stored under the names and shapes of the authors' release, so that their
checkpoint loads as it is (:mod:`motionseg.authors`): ``learnableGains`` (3 x 20, rows FG, BG,
A: the correction gains), ``learnableGainsInit`` (7 x 2; entry (3, 0) is ``s``),
``learnableGainsF`` (1 x 20, ``u``), ``learnableGainsTeS`` (1 x 20, ``b``; column 0 weights the
start of ``T``) and ``learnableGainsDOG`` (4 x 20, ``d0 .. d3``). Column ``i`` belongs to frame
``i``; only the seed frames' columns are used. A fresh model starts them all at 0; the options
``dog_surround_start``/``dog_centre_start`` start the DoG's widths elsewhere, and our training
starts them apart (``zoo.DOG_START``: at zero gains the DoG is a stationary point). The authors'
start is not known, but it was not 0: the release's unused columns hold 1e-16 to 1e-40. Table 1
counts this model as having 0 parameters; :func:`count_gains` reports the gains (194 stored; the
seed frames' columns and one entry of the init block are used).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from . import fourier
from .options import ModelOptions
from .states import Layers, States
from .validation import check_seed_frames

N_STEPS = 20  # gain columns, one per frame of a sequence (the authors' shapes)
N_INIT = 2  # frames with a first estimate from the frames alone
ROWS = {"fg,bg,a": ("fg", "bg", "alpha"), "a,fg,bg": ("alpha", "fg", "bg")}
GAIN_SHAPES = {"learnableGains": (3, N_STEPS), "learnableGainsInit": (7, N_INIT), "learnableGainsF": (1, N_STEPS),
               "learnableGainsTeS": (1, N_STEPS), "learnableGainsDOG": (4, N_STEPS)}
SIGMA_FLOOR = 1e-3  # a DoG width of 0 px is the identity; the floor keeps the response finite


@dataclass(frozen=True)
class Options(ModelOptions):
    """The readings the authors' weights chose (defaults) and the alternatives they ruled out.

    The book's zero-parameter chapter runs the released weights under each alternative.
    """

    rows: str = "fg,bg,a"  # which state each row of learnableGains corrects
    bg_estimate: str = "frame"  # first BG: the whole "frame", or the frame "outside" the first A
    filter_weight: str = "energy"  # phase filter: line means weighted by spectral "energy", or "uniform"
    phase_filter: bool = True  # Fig. 2c switches it off
    dog: bool = True
    dog_bias: bool = True  # the DoG's fourth gain as an offset inside the soft clamp
    clamp_moved_alpha: bool = True  # A clamped to [0, 1] after it is moved by T
    # Where training starts the DoG's widths (px; surround, centre). With both 0 (all gains 0) the
    # DoG never trains: its response is G(0) - G(0) = 0, so its amplitude gets no gradient, and
    # with the amplitude 0 its widths get none. The release's unused columns (1e-16 to 1e-40, not
    # 0) show that the authors' gains did not start at 0. Chosen on validation (chapter 04).
    dog_surround_start: float = 0.0
    dog_centre_start: float = 0.0
    # Rows 0 to 2 of the init block (FG, BG, A; both columns) were trained in the release, yet no
    # reading above reads them. Candidates, each run with the released weights (chapter 04):
    # "unused" (chosen), "scale" (each first state times its gain), "correction" (the first state is
    # one correction step from FG = BG = 0, A the evidence), "fg_correction" (the same, BG the
    # frame), "blend" (frame 1 mixes its moved state and its estimate by column 1's gains).
    init_gains: str = "unused"

    ALLOWED: ClassVar[dict[str, tuple[str, ...]]] = {
        "rows": tuple(ROWS), "bg_estimate": ("frame", "outside"), "filter_weight": ("energy", "uniform"),
        "init_gains": ("unused", "scale", "correction", "fg_correction", "blend")}


def soft_clamp(a: Tensor) -> Tensor:
    """``sigmoid(10 a - 5)``: the authors' soft clamp of A to (0, 1)."""
    return torch.sigmoid(10 * a - 5)


def gaussian_response(h: int, w: int, sigma: Tensor, device: torch.device) -> Tensor:
    """Frequency response of a circular Gaussian blur (unit sum) of width ``|sigma|`` px."""
    fy, fx = fourier.frequencies(h, w, device)
    return torch.exp(-2 * torch.pi ** 2 * (sigma.abs() + SIGMA_FLOOR) ** 2 * (fy ** 2 + fx ** 2))


def blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Circular Gaussian blur (unit sum) of width ``|sigma|`` px, in the Fourier domain."""
    return torch.fft.ifft2(torch.fft.fft2(x) * gaussian_response(*x.shape[-2:], sigma, x.device)).real


class ZeroParamModel(nn.Module):
    """The paper's FDTN prediction-correction model: zero network parameters, per-frame gains."""

    options_class: ClassVar[type[Options]] = Options

    def __init__(self, options: Options | dict[str, Any] | None = None) -> None:
        super().__init__()
        self.options = self.options_class.resolve(options, type(self).__name__)
        self.gains = nn.ParameterDict({k: nn.Parameter(torch.zeros(shape)) for k, shape in GAIN_SHAPES.items()})
        with torch.no_grad():
            self.gains["learnableGainsDOG"][0] = self.options.dog_surround_start
            self.gains["learnableGainsDOG"][1] = self.options.dog_centre_start

    # -- gains ---------------------------------------------------------------------------------
    def correction_gain(self, state: str, i: int) -> Tensor:
        """``g`` of ``state`` ("fg", "bg" or "alpha") at frame ``i``, in (0, 1)."""
        row = ROWS[self.options.rows].index(state)
        return torch.sigmoid(self.gains["learnableGains"][row, i])

    def motion_weights(self, i: int) -> tuple[Tensor, Tensor]:
        """``(b, u)`` at frame ``i``: FG's weight in ``T~``, and ``T~``'s weight in the new ``T``."""
        return (torch.sigmoid(self.gains["learnableGainsTeS"][0, i]),
                torch.sigmoid(self.gains["learnableGainsF"][0, i]))

    # -- the pieces of the cycle ---------------------------------------------------------------
    def min_seed_frames(self) -> int:
        """The first estimates need frames 0 to 2."""
        return N_INIT + 1

    def init_gain(self, state: str, k: int) -> Tensor:
        """``sigmoid`` of the init block's entry for ``state`` (row order FG, BG, A) and frame ``k``."""
        return torch.sigmoid(self.gains["learnableGainsInit"][("fg", "bg", "alpha").index(state), k])

    def estimate(self, x: Tensor, k: int) -> Layers:
        """The first estimate of the state at frame ``k`` (0 or 1), from the frames alone."""
        frame = x[:, k]
        alpha = soft_clamp(self.gains["learnableGainsInit"][3, 0] * (x[:, k + 1] - frame).abs())
        bg = frame if self.options.bg_estimate == "frame" else (1 - alpha) * frame
        mode = self.options.init_gains
        if mode == "scale":
            return Layers(fg=self.init_gain("fg", k) * alpha * frame, bg=self.init_gain("bg", k) * bg,
                          alpha=self.init_gain("alpha", k) * alpha)
        if mode in ("correction", "fg_correction"):
            # the correction step of the cycle from FG = BG = 0: e = -F, so FG <- g A F, BG <- g (1 - A) F;
            # A then takes its step with the error of the new FG and BG
            fg = self.init_gain("fg", k) * alpha * frame
            bg = frame if mode == "fg_correction" else self.init_gain("bg", k) * (1 - alpha) * frame
            err = self.compose(fg, bg, alpha) - frame
            return Layers(fg=fg, bg=bg, alpha=soft_clamp(alpha - self.init_gain("alpha", k) * err * (fg - bg)))
        return Layers(fg=alpha * frame, bg=bg, alpha=alpha)

    def measure_motion(self, before: Layers, after: Layers, i: int) -> tuple[Tensor, Tensor]:
        """``T~`` between two states (unit phasors) and the spectral energy behind it."""
        b = self.motion_weights(i)[0]
        cross_a = fourier.cross_power(before.alpha, after.alpha)
        cross_f = fourier.cross_power(before.fg, after.fg)
        measured = b * fourier.unit_spectrum(cross_f) + (1 - b) * fourier.unit_spectrum(cross_a)
        return fourier.normalise(measured, fourier.PHASOR_EPS), b * cross_f.abs() + (1 - b) * cross_a.abs()

    def filter_motion(self, motion: Tensor, energy: Tensor) -> Tensor:
        """The phase filter: the averaging filter of the authors' helper module, full strength.

        Its weights (the spectral energy) are constants to backpropagation: the forward pass is
        the same, a training step 40 % cheaper.
        """
        if not self.options.phase_filter:
            return motion
        weight = energy.detach() if self.options.filter_weight == "energy" else None
        return fourier.two_sided_phase_filter(motion, 1.0, weight)

    def observe_motion(self, x: Tensor, i: int, motion: Tensor) -> Tensor:
        """Motion to predict frame ``i`` with: ``T`` as the cycle left it (a hook for diagnostics)."""
        return motion

    def predict_layers(self, fg: Tensor, alpha: Tensor, motion: Tensor) -> tuple[Tensor, Tensor]:
        """The prediction step: move FG and A by ``T``; BG stays."""
        alpha = fourier.apply_motion(alpha, motion)
        return fourier.apply_motion(fg, motion), alpha.clamp(0.0, 1.0) if self.options.clamp_moved_alpha else alpha

    @staticmethod
    def compose(fg: Tensor, bg: Tensor, alpha: Tensor) -> Tensor:
        """Eq. 3: ``A * FG + (1 - A) * BG``."""
        return alpha * fg + (1 - alpha) * bg

    def correct(self, layers: Layers, obs: Tensor, i: int) -> Layers:
        """One gradient step on ``0.5 * (F_hat - F_i)**2`` per state (all from the same state), then the DoG."""
        fg, bg, alpha = layers.fg, layers.bg, layers.alpha
        err = self.compose(fg, bg, alpha) - obs
        new_alpha = soft_clamp(alpha - self.correction_gain("alpha", i) * err * (fg - bg))
        return Layers(fg=(fg - self.correction_gain("fg", i) * err * alpha).clamp(0.0, 1.0),
                      bg=(bg - self.correction_gain("bg", i) * err * (1 - alpha)).clamp(0.0, 1.0),
                      alpha=self.filter_alpha(new_alpha, i))

    def filter_alpha(self, alpha: Tensor, i: int) -> Tensor:
        """Difference of Gaussians on A (blob-like masks), inside the soft clamp."""
        if not self.options.dog:
            return alpha
        surround, centre, amplitude, bias = self.gains["learnableGainsDOG"][:, i].unbind(0)
        h, w = alpha.shape[-2:]
        dog = gaussian_response(h, w, centre, alpha.device) - gaussian_response(h, w, surround, alpha.device)
        # one half spectrum for both Gaussians: A is real
        out = alpha + amplitude * torch.fft.irfft2(torch.fft.rfft2(alpha) * dog[..., : w // 2 + 1], s=(h, w))
        return soft_clamp(out + bias if self.options.dog_bias else out)

    def update_motion(self, before: Layers, after: Layers, motion: Tensor, i: int) -> tuple[Tensor, Tensor]:
        """``T <- normalise((1 - u) T + u T~)``; returns the new ``T`` and the energy behind ``T~``."""
        measured, energy = self.measure_motion(before, after, i)
        u = self.motion_weights(i)[1]
        return fourier.normalise((1 - u) * motion + u * measured, fourier.PHASOR_EPS), energy

    def refine(self, layers: Layers, i: int, estimate: Layers | None) -> Layers:
        """Hook for the learnable extension; the zero-parameter model keeps its states."""
        return layers

    def blend_estimate(self, moved: Layers, estimate: Layers) -> Layers:
        """At frame 1: the moved state and the frame's own estimate, half and half.

        (Under the reading ``init_gains="blend"``: weighted per state by column 1 of the init block.)
        """
        if self.options.init_gains == "blend":
            w = {s: self.init_gain(s, 1) for s in ("fg", "bg", "alpha")}
            return Layers(fg=(1 - w["fg"]) * moved.fg + w["fg"] * estimate.fg,
                          bg=(1 - w["bg"]) * moved.bg + w["bg"] * estimate.bg,
                          alpha=(1 - w["alpha"]) * moved.alpha + w["alpha"] * estimate.alpha)
        return Layers(fg=(moved.fg + estimate.fg) / 2, bg=(moved.bg + estimate.bg) / 2,
                      alpha=(moved.alpha + estimate.alpha) / 2)

    def first_estimates(self, x: Tensor) -> list[Layers]:
        """The estimates of frames 0 and 1 (the learnable extension refines them with its nets)."""
        return [self.estimate(x, k) for k in range(N_INIT)]

    # -- the filter ----------------------------------------------------------------------------
    def run(self, seed_frames: Tensor, n_future: int = 10, keep_states: bool = False) -> tuple[Tensor, States]:
        """Filter the seed frames, then roll forward; returns (predictions, per-frame states).

        States are recorded for every frame from frame 1 on: after its correction for a seed
        frame, after the move for a predicted one (entry ``k`` belongs to frame ``k + 1``).
        """
        n_future = check_seed_frames(seed_frames, min_seed=self.min_seed_frames(), n_future=n_future)
        x = seed_frames.to(torch.float32)
        b, n_seed, h, w = x.shape
        states = States()
        estimates = self.first_estimates(x)
        motion, energy = self.measure_motion(estimates[0], estimates[1], 0)
        layers = estimates[0]
        preds = []
        for i in range(n_seed + n_future):
            if i == 0:
                pred = self.compose(layers.fg, layers.bg, layers.alpha)
            else:
                motion = self.observe_motion(x, i, self.filter_motion(motion, energy))
                fg, alpha = self.predict_layers(layers.fg, layers.alpha, motion)
                moved = Layers(fg=fg, bg=layers.bg, alpha=alpha)
                if i < N_INIT:
                    moved = self.blend_estimate(moved, estimates[i])
                pred = self.compose(moved.fg, moved.bg, moved.alpha)
                if i >= n_seed:
                    layers = moved
                    preds.append(pred.clamp(0.0, 1.0))
                    states.record(keep_states, layers, motion, preds[-1])
                    continue
                layers = moved
            new = self.refine(self.correct(layers, x[:, i], i), i, estimates[i] if i < N_INIT else None)
            if i >= 1:
                motion, energy = self.update_motion(previous, new, motion, i)
                states.record(keep_states, new, motion, pred)
            previous = layers = new
        out = torch.stack(preds, 1) if preds else x.new_zeros(b, 0, h, w)
        return out, states

    def forward(self, seed_frames: Tensor, n_future: int = 10) -> Tensor:
        """Predict ``n_future`` frames (B x n_future x H x W) from B x S x H x W seed frames."""
        return self.run(seed_frames, n_future)[0]


def count_parameters(model: nn.Module) -> int:
    """Network parameters, i.e. everything except the per-frame gains."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("gains."))


def count_gains(model: nn.Module) -> int:
    """Number of trainable gain scalars."""
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith("gains."))
