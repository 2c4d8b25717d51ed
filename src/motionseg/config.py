"""The one place where the run profile and the device are decided.

``MOTIONSEG_PROFILE=quick|full`` picks the profile; without it the profile is
``full`` when CUDA is available and ``quick`` otherwise.  Every chapter and every
command reads the profile through :func:`profile` so that the choice is made once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

SIZE = 128  # frame size of the paper's data

PROFILES = ("quick", "full")


@dataclass(frozen=True)
class Profile:
    """Sizes that differ between the quick (CPU, CI) and full (paper-scale) runs."""

    name: str
    n_test: int  # sequences in the evaluation set
    n_train: int  # distinct training sequences per epoch
    batch_size: int
    eval_batch_size: int


_PROFILES = {
    # quick: every chapter runs on 2 CPU cores within CI's budget
    "quick": Profile("quick", n_test=100, n_train=512, batch_size=8, eval_batch_size=50),
    # full: the paper's scale, 1,000 test sequences
    "full": Profile("full", n_test=1000, n_train=10000, batch_size=16, eval_batch_size=100),
}


def profile_name(name: str | None = None) -> str:
    """Return the active profile name: ``name`` if given, else the environment, else by device."""
    chosen = name if name is not None else os.environ.get("MOTIONSEG_PROFILE")
    if chosen is None or chosen == "":
        return "full" if torch.cuda.is_available() else "quick"
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r}: allowed are {', '.join(PROFILES)} "
                         "(set MOTIONSEG_PROFILE or pass --profile)")
    return chosen


def profile(name: str | None = None) -> Profile:
    """Return the active :class:`Profile`."""
    return _PROFILES[profile_name(name)]


def device() -> torch.device:
    """CUDA when available, else CPU (``MOTIONSEG_DEVICE`` overrides, and must exist)."""
    forced = os.environ.get("MOTIONSEG_DEVICE")
    if forced:
        try:
            chosen = torch.device(forced)
        except RuntimeError as err:
            raise ValueError(f"MOTIONSEG_DEVICE={forced!r} is not a device name: use cpu or cuda") from err
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"MOTIONSEG_DEVICE={forced!r} but this machine has no CUDA: unset it or use cpu")
        if chosen.type not in ("cpu", "cuda"):
            raise ValueError(f"MOTIONSEG_DEVICE={forced!r} is not supported: use cpu or cuda")
        return chosen
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe() -> str:
    """One line naming the profile and device, printed at the top of each chapter."""
    p = profile()
    d = device()
    extra = f" ({torch.cuda.get_device_name(d)})" if d.type == "cuda" else f" ({torch.get_num_threads()} threads)"
    return f"profile: {p.name} (test set {p.n_test} sequences), device: {d.type}{extra}"


@dataclass
class TrainConfig:
    """Settings of one training run (stored in its checkpoint)."""

    model: str
    profile: str = "quick"
    steps: int = 200
    batch_size: int = 8
    n_train: int = 512
    n_val: int = 32
    lr: float = 0.05
    lr_min: float | None = None  # cyclic learning rate between lr_min and lr (default lr / 10)
    cycle_steps: int = 100  # steps of one up-and-down learning-rate cycle
    weight_decay: float = 0.0
    val_every: int = 50
    checkpoint_every: int = 50
    seed: int = 0
    n_seed: int = 10
    size: int = SIZE
    workers: int = 0
    init_from: str | None = None  # start from another model's trained gains (e.g. "zero_param")
    options: dict | None = None  # model options other than the defaults (our models)
    data_options: dict | None = None  # generator options of training and validation data (e.g. {"n_digits": 2})
    val_data_options: dict | None = None  # validation's own, over data_options (e.g. {"photo_set": "held_out"})
    # -- the learning-rate schedule (part of what is trained: fixed for the life of a run) --
    schedule: str = "cyclic"  # "cyclic" (CyclicLR, lr_min..lr) or "cosine" (linear warm-up, cosine to lr_min)
    warmup_steps: int = 0  # "cosine" only: steps of the linear warm-up from lr_min to lr
    # "cyclic" only: a cycle that follows one which did not lower the best validation MSE starts
    # again from the best weights (fresh Adam moments), its peak and floor times this factor
    restart_factor: float | None = None
    # the phase of each cross-power spectrum backpropagates as if frequencies below this fraction
    # of its peak had none (fourier.gradient_floor; the forward pass is unchanged). None: exact
    grad_floor: float | None = None
    # -- how the steps are computed (EXECUTION: may change when a run is resumed) --
    # Opt-in and off by default: each is switched on for a device only after
    # benchmarks/gpu_session.sh measured that it helps there (see benchmarks/GPU_SESSION.md).
    precision: str = "fp32"  # "bf16": bf16 autocast of the forward pass; fp32 weights, optimizer and loss
    fused_adam: bool = False  # Adam's fused kernel (one launch for all parameters)
    channels_last: bool | None = None  # None: the model's own weight layout; True/False: convert
    compile: str | None = None  # torch.compile backend ("inductor", or "eager" to test the wiring)
    pin_memory: bool = False  # page-locked training batches, copied to the GPU asynchronously
    prefetch: int | None = None  # batches each data worker prepares ahead (DataLoader prefetch_factor)
    val_at_stop: bool = False  # validate also when a run stops early (time limit, Ctrl-C)


SCHEDULES = ("cyclic", "cosine")
PRECISIONS = ("fp32", "bf16")
# Settings that change how fast the steps run, or what is recorded, but not what is trained:
# a resumed run may change them (each run records its own in provenance["runs"]).
EXECUTION = ("workers", "precision", "fused_adam", "channels_last", "compile", "pin_memory", "prefetch",
             "val_every", "checkpoint_every", "val_at_stop")


def check_train_config(cfg: TrainConfig) -> None:
    """Raise ``ValueError`` for settings that no run can use."""
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {cfg.schedule!r}: allowed are {', '.join(SCHEDULES)}")
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {cfg.precision!r}: allowed are {', '.join(PRECISIONS)}")
    if cfg.schedule == "cyclic" and cfg.warmup_steps:
        raise ValueError("warmup_steps belongs to the cosine schedule; the cyclic one has none")
    if cfg.schedule == "cosine" and not 0 <= cfg.warmup_steps < cfg.steps:
        raise ValueError(f"warmup_steps must be in [0, steps={cfg.steps}), got {cfg.warmup_steps}")
    if cfg.restart_factor is not None:
        if cfg.schedule != "cyclic":
            raise ValueError("restart_factor belongs to the cyclic schedule (it acts at the start of a cycle)")
        if not 0 < cfg.restart_factor < 1:
            raise ValueError(f"restart_factor must be in (0, 1), got {cfg.restart_factor}")
        if cfg.val_every > cfg.cycle_steps:
            raise ValueError(f"restart_factor judges each cycle by its validations: val_every ({cfg.val_every}) "
                             f"must be at most cycle_steps ({cfg.cycle_steps})")
    if cfg.grad_floor is not None and not 0 < cfg.grad_floor < 1:
        raise ValueError(f"grad_floor is a fraction of each spectrum's peak in (0, 1), got {cfg.grad_floor}")
    if cfg.prefetch is not None and cfg.workers == 0:
        raise ValueError("prefetch needs data workers (workers > 0)")
