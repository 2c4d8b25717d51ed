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
