"""Training shared by every model: BPTT, Adam, a cyclic learning rate, resumable checkpoints.

The training data of step ``k`` are training sequences ``k*B .. k*B+B-1`` (modulo the
number of distinct training sequences), so a run is a pure function of its settings
and a resumed run continues exactly where the interrupted one stopped.

A run stops early, with a checkpoint that ``resume`` continues, when its time limit is
reached or on Ctrl-C (the step under way is finished first; a second Ctrl-C stops at once).

``checkpoint.pt`` holds the weights of the run's lowest validation MSE so far (model selection
on validation data; a late peak of the cyclic learning rate can leave the last step worse), and
records which step they are of (``"selected"``); the last step's weights, from which
``resume`` continues, are kept in ``resume.pt``.

How the steps are computed is set apart from what is trained (``config.EXECUTION``): bf16
autocast (``precision``), Adam's fused kernel, the weights' memory layout, ``torch.compile``,
data workers and pinned memory may change between the runs of one training; every run
records its own in ``provenance["runs"]``. All are off by default. Resume states can be
stored compactly for shipping (:func:`compact_resume`); a run resumed from one continues
almost, not exactly, as it would have (its provenance says so).
"""
from __future__ import annotations

import inspect
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import __version__, checkpoint, config, data, fourier
from .config import TrainConfig

__all__ = ["TrainConfig", "History", "train", "validate", "sequence_loss", "provenance", "write_json",
           "Interrupted", "make_optimizer", "make_scheduler", "prepare_model", "autocast_dtype",
           "learning_rates", "compact_resume", "split_checkpoint"]


@dataclass
class History:
    """Learning curves: training loss per step, validation MSE at validation steps.

    ``val_seconds``: wall seconds the training had run (over all its runs, the clock of
    ``provenance["wall_seconds"]``) at each validation. Checkpoints written before it was
    recorded lack it; a resumed run fills in the missing entries in proportion to the steps.
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_step: list[int] = field(default_factory=list)
    val_mse: list[float] = field(default_factory=list)
    val_seconds: list[float] = field(default_factory=list)
    # steps whose gradient was not finite and was therefore not applied (see ``MAX_SKIPPED``)
    skipped: list[int] = field(default_factory=list)
    # steps at which the run went back to its best weights (``TrainConfig.restart_factor``)
    restarts: list[int] = field(default_factory=list)


# A finite loss can still have a non-finite gradient: the phase of a spectrum that is almost
# zero (an empty foreground, say) has a gradient near 1/eps. Such a step is skipped, as mixed
# precision training skips steps whose scaled gradient overflowed, and recorded in
# ``History.skipped``; more than this many in a row means the run itself has diverged.
MAX_SKIPPED = 5


def gradient_is_finite(model: nn.Module) -> bool:
    """Whether every gradient of ``model`` is finite (one device synchronisation)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return True
    return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run after its checkpoint was saved (``step``, ``path``)."""

    def __init__(self, step: int, path: Path) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint saved to {path}")
        self.step, self.path = step, path


_COMMIT_AT_START: str | None = None


def git_commit() -> str:
    """The git commit of the repository when this process first asked (``MOTIONSEG_COMMIT`` overrides).

    ``-dirty`` is appended when tracked files differed from the commit then, 'unknown' without git.
    Asked once per process: a command that writes several results (``evaluate`` replacing
    committed metrics one model after another) must not call its own outputs a dirty tree.
    """
    global _COMMIT_AT_START
    if os.environ.get("MOTIONSEG_COMMIT"):
        return os.environ["MOTIONSEG_COMMIT"]
    if _COMMIT_AT_START is None:
        _COMMIT_AT_START = _ask_git()
    return _COMMIT_AT_START


def _ask_git() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        # results/ holds outputs, not inputs: a resumed run rewrites its own tracked checkpoint
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command_line() -> str:
    """How this process was started, as a reader would type it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("motionseg/__main__.py", "motionseg")):
        return " ".join(["python -m motionseg", *argv[1:]])
    return " ".join(["python", *argv]) if argv else "python"


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU with its cores and threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def provenance(device: torch.device, wall_seconds: float, cfg: TrainConfig | None = None,
               command: str | None = None, commit: str | None = None) -> dict[str, Any]:
    """Where and how a result was produced."""
    out = {"commit": commit or git_commit(), "command": command or command_line(), "motionseg": __version__,
           "torch": str(torch.__version__), "numpy": np.__version__, "python": platform.python_version(),
           "device": device_name(device), "wall_seconds": round(wall_seconds, 1),
           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if cfg is not None:
        out.update(profile=cfg.profile, seed=cfg.seed)
    return out


def _full(x: Tensor) -> Tensor:
    """``x`` in at least float32 (bf16/fp16 outputs of an autocast region)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def sequence_loss(model: nn.Module, frames: Tensor, n_seed: int, autocast: torch.dtype | None = None) -> Tensor:
    """The model's training loss on B x T x H x W sequences.

    Models with ``forward_train`` (the baselines) use their own loss on every output
    frame; the others are trained with the MSE of the predicted frames, as in the paper.
    ``autocast`` (e.g. ``torch.bfloat16``) runs the forward pass under autocast; the loss
    is always computed in float32 (BCE is not safe to autocast). Frames of another floating
    dtype are trained on as float32, the dtype of every model's weights.
    """
    if frames.dtype != torch.float32:
        frames = frames.float()
    with torch.autocast(frames.device.type, dtype=autocast, enabled=autocast is not None):
        if hasattr(model, "forward_train"):
            out, target = model.forward_train(frames, n_seed), frames[:, 1:]
        else:
            out, target = model(frames[:, :n_seed], frames.shape[1] - n_seed), frames[:, n_seed:]
    out = _full(out)
    if hasattr(model, "forward_train") and getattr(model, "loss_name", "mse") == "bce":
        return F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), target)
    return F.mse_loss(out, target)


def autocast_dtype(cfg: TrainConfig) -> torch.dtype | None:
    """The autocast dtype of ``cfg.precision`` (None: plain float32)."""
    return torch.bfloat16 if cfg.precision == "bf16" else None


def make_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam with the run's learning rate and weight decay (fused kernel if ``cfg.fused_adam``)."""
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True if cfg.fused_adam else None)


class _WarmupCosine:
    """Learning-rate factor of the cosine schedule: linear warm-up from ``floor`` to 1, cosine back.

    A callable object rather than a function, so that ``LambdaLR.state_dict`` stores its settings.
    """

    def __init__(self, steps: int, warmup: int, floor: float) -> None:
        self.steps, self.warmup, self.floor = int(steps), int(warmup), float(floor)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.floor + (1.0 - self.floor) * step / self.warmup
        t = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The run's learning-rate schedule, stepped once per training step.

    * ``cyclic``: triangular cycles of ``cycle_steps`` between ``lr_min`` and ``lr`` (a periodic
      schedule: a run may be extended by more steps);
    * ``cosine``: linear warm-up over ``warmup_steps`` from ``lr_min`` to ``lr``, then a half
      cosine to ``lr_min`` at ``steps`` (the schedule is defined by ``steps``, which is why such
      a run cannot be extended).
    """
    lr_min = cfg.lr_min if cfg.lr_min is not None else cfg.lr / 10
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, _WarmupCosine(cfg.steps, cfg.warmup_steps,
                                                                          lr_min / cfg.lr if cfg.lr else 1.0))
    return torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=lr_min, max_lr=cfg.lr,
                                             step_size_up=max(1, cfg.cycle_steps // 2), cycle_momentum=False)


def learning_rates(cfg: TrainConfig, steps: int | None = None) -> list[float]:
    """The learning rate of each of the first ``steps`` (default ``cfg.steps``) training steps."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    scheduler = make_scheduler(optimizer, cfg)
    out = []
    for _ in range(cfg.steps if steps is None else steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def prepare_model(model: nn.Module, cfg: TrainConfig) -> Callable[[], None]:
    """Apply the run's memory layout and ``torch.compile``; returns what undoes the compilation.

    bf16 on the CPU makes the weights contiguous (channels-last ones get NaN gradients there).

    Compilation wraps one method of the model, not the module, so that its ``state_dict`` keeps
    its keys: ``model.compile_target`` if the model names one (the VLNs compile one time step,
    reused by all 19 steps of a sequence), else ``forward_train`` or ``forward``.
    """
    layout = cfg.channels_last
    on_cpu = next(model.parameters(), torch.empty(0)).device.type == "cpu"
    if cfg.precision == "bf16" and on_cpu:
        # PyTorch's CPU (oneDNN) bf16 kernels give NaN weight gradients for dilated convolutions
        # with channels-last weights (the VLNs' encoders; seen with torch 2.13): contiguous here
        if layout:
            raise ValueError("channels_last=True with bf16 on the CPU gives NaN gradients for dilated "
                             "convolutions: leave channels_last unset (contiguous) or use fp32")
        layout = False
    if layout is not None:
        model.to(memory_format=torch.channels_last if layout else torch.contiguous_format)
    if not cfg.compile:
        return lambda: None
    target = getattr(model, "compile_target", "forward_train" if hasattr(model, "forward_train") else "forward")
    setattr(model, target, torch.compile(getattr(model, target), backend=cfg.compile))
    return lambda: delattr(model, target)


def _field_defaults() -> dict[str, Any]:
    return {f.name: (f.default if f.default is not MISSING else None) for f in fields(TrainConfig)}


def _resume_differences(stored: dict[str, Any], cfg: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Settings in which ``cfg`` differs from a checkpoint's ``stored`` config.

    A setting the checkpoint lacks (written before it existed) counts as its default.
    Execution settings may differ; so may ``steps`` of a cyclic schedule.
    """
    defaults = _field_defaults()
    free = set(config.EXECUTION) | ({"steps"} if cfg.schedule == "cyclic" else set())
    return {k: (stored.get(k, defaults[k]), v) for k, v in asdict(cfg).items()
            if k not in free and stored.get(k, defaults[k]) != v}


def restart_due(val_step: Sequence[int], val_mse: Sequence[float], step: int, cycle_steps: int) -> bool:
    """Whether the cycle that ends at ``step`` failed to lower the best validation MSE of the cycles before.

    The first cycle has nothing to beat (False); a cycle without a validation counts as failed.
    """
    start = step - cycle_steps
    before = [m for s, m in zip(val_step, val_mse) if s <= start]
    during = [m for s, m in zip(val_step, val_mse) if start < s <= step]
    if not before:
        return False
    return not during or min(during) >= min(before)


def _restart_rule_fits(ckpt: dict[str, Any], cfg: TrainConfig) -> bool:
    """Whether a checkpoint run without ``restart_factor`` is what a run with it would have been.

    True when the checkpoint has made no restart and the rule would not have fired at any cycle
    start before its last step: its steps are then the first steps of a run with the rule.
    """
    hist = ckpt["history"]
    if ckpt["config"].get("restart_factor") is not None or hist.get("restarts"):
        return False
    last = int(ckpt["step"])
    return not any(restart_due(hist["val_step"], hist["val_mse"], b, cfg.cycle_steps)
                   for b in range(cfg.cycle_steps, last, cfg.cycle_steps))


def _restart(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, best: "_Best",
             factor: float) -> None:
    """Back to the best weights with fresh Adam moments; the cyclic schedule's peak and floor times ``factor``."""
    model.load_state_dict(best.weights)
    optimizer.state.clear()
    scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
    scheduler.max_lrs = [lr * factor for lr in scheduler.max_lrs]
    for group, lr in zip(optimizer.param_groups, scheduler.base_lrs):
        group["lr"] = lr  # a cycle starts at its floor


def _optimizer_state(state: dict[str, Any], cfg: TrainConfig) -> dict[str, Any]:
    """A stored optimizer state made ready for this run's optimizer.

    The param groups take this run's kernel choice (a loaded state would otherwise bring back the
    one it was saved with), and a compact state gets back the first moments it dropped (zeros).
    """
    for group in state["param_groups"]:
        group["fused"] = True if cfg.fused_adam else None
        if cfg.fused_adam:
            group["foreach"] = None
    for s in state["state"].values():
        if "exp_avg_sq" in s and "exp_avg" not in s:
            s["exp_avg"] = torch.zeros_like(s["exp_avg_sq"], dtype=torch.float32)
    return state


class _StepData(torch.utils.data.Dataset):
    """Training sequence ``index mod n_train``, so that the stream is the same on resume."""

    def __init__(self, cfg: TrainConfig, first: int, count: int) -> None:
        self.base = data.MovingMNIST(cfg.n_train, "train", cfg.seed, size=cfg.size, **(cfg.data_options or {}))
        self.first, self.count = first, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Tensor:
        return self.base[(self.first + i) % len(self.base)]["frames"]


def validation_options(cfg: TrainConfig) -> dict[str, Any]:
    """The generator options of a run's validation data: ``data_options`` with ``val_data_options`` over them."""
    return {**(cfg.data_options or {}), **(cfg.val_data_options or {})}


def validation_frames(cfg: TrainConfig) -> Tensor:
    """The validation sequences of a run (n_val x T x H x W): the training split, seed ``cfg.seed + 1000``.

    The test set stays unseen; ``validation_options`` names their generator options.
    """
    return torch.from_numpy(data.make_sequences(cfg.n_val, "train", seed=cfg.seed + 1000, size=cfg.size,
                                                **validation_options(cfg))["frames"])


def _check_data_options(options: dict[str, Any] | None, size: int, name: str) -> None:
    if not options:
        return
    if "size" in options:
        raise ValueError(f"{name} may not set size: it is the training setting size")
    try:
        data.check_options(size, **options)
    except TypeError:
        allowed = [n for n in inspect.signature(data.check_options).parameters if n != "size"]
        raise ValueError(f"unknown {name} {sorted(options)}: allowed are {', '.join(allowed)}") from None


def _init_from(model: nn.Module, cfg: TrainConfig, out: Path) -> tuple[str, dict[str, Any]]:
    """Start from the gains of ``cfg.init_from``: the run's own results folder, else ``results/``.

    Returns the source's path and what identifies the weights taken: the training step they
    come from, their validation MSE where the source kept its best step, and the file's sha256
    (the source may be trained on later; the path alone would then name other weights).
    """
    from . import zoo
    assert cfg.init_from is not None
    roots = (out.parent.parent, None)  # None: the committed results
    root = next((r for r in roots if zoo.checkpoint_path(cfg.init_from, r).is_file()), roots[0])
    source = zoo.checkpoint_path(cfg.init_from, root)
    ckpt = checkpoint.read(source, expect_model=cfg.init_from)
    missing = model.load_state_dict(ckpt["state_dict"], strict=False)
    if missing.unexpected_keys:
        raise ValueError(f"{cfg.init_from} has parameters that {cfg.model} lacks: {missing.unexpected_keys}")
    selected = ckpt.get("selected") or {}
    weights: dict[str, Any] = {"model": cfg.init_from, "step": int(selected.get("step", ckpt.get("step", 0))),
                               "sha256": zoo.weights_sha256(cfg.init_from, root)}  # as evaluate records it
    if "val_mse" in selected:
        weights["val_mse"] = float(selected["val_mse"])
    return str(source), weights


class _CtrlC:
    """Turn the first Ctrl-C into a request to stop after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __enter__(self) -> "_CtrlC":
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C keeps its default behaviour
            self.previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def train(cfg: TrainConfig, out: Path, resume: bool = False, device: torch.device | None = None,
          progress: bool = True, model: nn.Module | None = None, time_limit: float | None = None,
          force: bool = False, command: str | None = None) -> tuple[nn.Module, History]:
    """Train ``cfg.model`` and write the checkpoint ``out``, resuming from it if asked.

    An existing checkpoint is only continued (``resume``) or replaced (``force``), never
    overwritten silently. ``time_limit`` (seconds of this call) and Ctrl-C stop early with a
    checkpoint that ``resume`` continues later, to the same result as an uninterrupted run;
    after Ctrl-C, :class:`Interrupted` is raised once the checkpoint is saved. A resumed run
    may be given more ``steps`` than its checkpoint planned (cyclic schedule) and other
    execution settings (``config.EXECUTION``); other settings must match, and a setting that
    an older checkpoint lacks counts as its default. The folder of ``out`` is locked for the
    whole call (:func:`checkpoint.lock`): a second run into it raises
    :class:`checkpoint.FolderLocked` naming this one.
    """
    out = Path(out)
    command = command or command_line()
    # one writer per folder: checked and written under the same lock, so that a second run can
    # neither pass the check below while the first has not yet saved nor mix its files with the first's
    with checkpoint.lock(out.parent, command):
        checkpoint.remove_temporaries(out)
        checkpoint.recover(out)
        if out.exists() and not resume and not force:
            raise FileExistsError(f"{out} exists: pass --resume to continue its training or --force to replace it")
        return _train(cfg, out, resume, device, progress, model, time_limit, command)


def _train(cfg: TrainConfig, out: Path, resume: bool, device: torch.device | None, progress: bool,
           model: nn.Module | None, time_limit: float | None, command: str) -> tuple[nn.Module, History]:
    """:func:`train` once the folder of ``out`` is locked and checked."""
    from . import zoo
    device = device or config.device()
    commit = git_commit()
    torch.manual_seed(cfg.seed)
    config.check_train_config(cfg)
    _check_data_options(cfg.data_options, cfg.size, "data_options")
    _check_data_options(cfg.val_data_options, cfg.size, "val_data_options")
    _check_data_options(validation_options(cfg), cfg.size, "data_options with val_data_options")
    model = (model or zoo.build(cfg.model, image_size=cfg.size, options=cfg.options)).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    history, step, wall = History(), 0, 0.0
    runs: list[dict[str, Any]] = []
    init_source, init_weights = None, None
    compact_state = None
    estimated_seconds = 0
    best: _Best | None = None  # the validated weights with the lowest MSE so far
    if resume and out.exists():
        ckpt = checkpoint.read(out, expect_model=cfg.model, image_size=cfg.size)
        # settings first: a changed training recipe (say new options) names the setting, not the tensors
        diff = _resume_differences(ckpt["config"], cfg)
        if "restart_factor" in diff and _restart_rule_fits(ckpt, cfg):
            del diff["restart_factor"]  # the rule would not have acted yet: the run can take it on
        if diff:
            shown = ", ".join(f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"cannot resume {out}: its settings differ from this run's: {shown} "
                             f"(--force replaces it with a new run of these settings; --results another folder keeps it)")
        checkpoint.check_fits(ckpt, model, out)
        state = checkpoint.read_resume(out, ckpt)
        # the run goes on from its last step's weights; the checkpoint may hold its best ones
        model.load_state_dict(state.get("state_dict") or ckpt["state_dict"])
        best = _selected_on_resume(ckpt)
        optimizer.load_state_dict(_optimizer_state(state["optimizer"], cfg))
        scheduler.load_state_dict(state["scheduler"])
        compact_state = state.get("compact")
        history, step = History(**ckpt["history"]), int(ckpt["step"])
        prov = ckpt.get("provenance", {})
        wall = float(prov.get("wall_seconds", 0.0))
        runs = list(prov.get("runs", []))
        init_source = prov.get("init_from")
        init_weights = prov.get("init_weights")
        estimated_seconds = int(prov.get("val_seconds_estimated", 0))
        missing = len(history.val_step) - len(history.val_seconds)
        if missing > 0:  # written before val_seconds existed: in proportion to the steps
            per_step = wall / step if step else 0.0
            history.val_seconds = [round(s * per_step, 1) for s in history.val_step[:missing]] + history.val_seconds
            estimated_seconds += missing
    elif cfg.init_from:
        init_source, init_weights = _init_from(model, cfg, out)
    if step >= cfg.steps:
        return model, history
    pin = cfg.pin_memory and device.type == "cuda"
    loader = torch.utils.data.DataLoader(_StepData(cfg, step * cfg.batch_size, (cfg.steps - step) * cfg.batch_size),
                                         batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers,
                                         pin_memory=pin, prefetch_factor=cfg.prefetch if cfg.workers else None)
    val = validation_frames(cfg)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}")
    start = time.perf_counter() - wall
    call_start = time.perf_counter()
    first_step = step

    execution: dict[str, Any] = {k: getattr(cfg, k) for k in config.EXECUTION}
    if device.type == "cuda":
        execution["tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}

    def save() -> None:
        this_run = {"command": command, "commit": commit, "device": device_name(device),
                    "steps": [first_step, step], "wall_seconds": round(time.perf_counter() - call_start, 1),
                    "execution": execution}
        if compact_state is not None:
            this_run["resumed_from_compact_state"] = compact_state
        prov = provenance(device, time.perf_counter() - start, cfg, command, commit)
        prov["runs"] = runs + [this_run]
        if init_source is not None:
            prov["init_from"] = init_source
        if init_weights is not None:
            prov["init_weights"] = init_weights
        if estimated_seconds:
            prov["val_seconds_estimated"] = estimated_seconds  # the first entries of history.val_seconds
        checkpoint.save(out, model, cfg.model, cfg.size, step=step, config=asdict(cfg), history=asdict(history),
                        provenance=prov, optimizer=optimizer, scheduler=scheduler,
                        selected=(best.weights, best.record()) if best is not None else None)

    def validation() -> None:
        nonlocal best
        history.val_step.append(step)
        history.val_mse.append(validate(model, val, cfg.n_seed, device))
        history.val_seconds.append(round(time.perf_counter() - start, 1))
        if best is None or history.val_mse[-1] < best.val_mse:
            best = _Best(step, history.val_mse[-1], _copy_weights(model))

    if step == 0 and cfg.init_from:
        # a run that starts from trained weights validates them before its first step: where
        # training only makes them worse, the run keeps its start
        validation()
    restore = prepare_model(model, cfg)
    amp = autocast_dtype(cfg)
    skipped_in_a_row = 0
    model.train()
    try:
        with _CtrlC() as ctrl_c:
            for frames in loader:
                if (cfg.restart_factor is not None and best is not None and step % cfg.cycle_steps == 0
                        and step not in history.restarts
                        and restart_due(history.val_step, history.val_mse, step, cfg.cycle_steps)):
                    _restart(model, optimizer, scheduler, best, cfg.restart_factor)
                    history.restarts.append(step)
                    print(f"step {step}: the last cycle did not lower the best validation MSE "
                          f"({best.val_mse:.6f}, step {best.step}): back to those weights, peak learning rate "
                          f"{scheduler.max_lrs[0]:.3g}", flush=True)
                frames = frames.to(device, non_blocking=True)
                with fourier.gradient_floor(cfg.grad_floor):
                    loss = sequence_loss(model, frames, cfg.n_seed, autocast=amp)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training loss became {loss.item()} at step {step}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if gradient_is_finite(model):
                    optimizer.step()
                    skipped_in_a_row = 0
                else:
                    history.skipped.append(step + 1)
                    skipped_in_a_row += 1
                    print(f"warning: step {step + 1} had a non-finite gradient and was skipped", flush=True)
                    if skipped_in_a_row > MAX_SKIPPED:
                        raise FloatingPointError(f"the gradient was not finite at {skipped_in_a_row} steps in a "
                                                 f"row (up to step {step + 1}); the run has diverged")
                with warnings.catch_warnings():
                    # the schedule stays aligned with the step count, skipped steps included; torch
                    # would warn that the scheduler ran before the optimizer if the first one is skipped
                    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                    scheduler.step()
                step += 1
                history.step.append(step)
                history.loss.append(loss.item())
                validated = step % cfg.val_every == 0 or step == cfg.steps
                if validated:
                    validation()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{history.loss[-1]:.5f}")
                # read after the validation, so that a Ctrl-C during it saves this step
                out_of_time = time_limit is not None and time.perf_counter() - call_start > time_limit
                stopping = out_of_time or ctrl_c.requested
                if stopping and cfg.val_at_stop and not validated:
                    validation()
                saved = step % cfg.checkpoint_every == 0 or step == cfg.steps or stopping
                if saved:
                    save()
                # "saved" is only said of a checkpoint of this step just written (a Ctrl-C during the
                # save counts); one that came after a step with no save due stops after the next
                if saved and ctrl_c.requested:
                    if bar is not None:
                        bar.close()
                    raise Interrupted(step, out)
                if out_of_time:
                    break
    finally:
        restore()
    if bar is not None:
        bar.close()
    return model, history


@dataclass
class _Best:
    """The weights of the run's lowest validation MSE so far: what ``checkpoint.pt`` holds."""

    step: int
    val_mse: float
    weights: dict[str, Tensor]

    def record(self) -> dict[str, Any]:
        return {"step": self.step, "val_mse": self.val_mse, "rule": "lowest validation MSE"}


def _copy_weights(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _selected_on_resume(ckpt: dict[str, Any]) -> _Best | None:
    """The best validated weights a resumed run starts from.

    A checkpoint with a ``"selected"`` record holds them. One written before the selection (its
    weights are of its last step) counts as selected where that step was validated; the weights
    of its earlier, better validations were not kept and cannot be chosen any more.
    """
    record = ckpt.get("selected")
    if record is not None:
        return _Best(int(record["step"]), float(record["val_mse"]), ckpt["state_dict"])
    steps, mses = ckpt["history"].get("val_step", []), ckpt["history"].get("val_mse", [])
    if steps and steps[-1] == ckpt["step"]:
        return _Best(int(ckpt["step"]), float(mses[-1]), ckpt["state_dict"])
    return None


def validate(model: nn.Module, frames: Tensor, n_seed: int, device: torch.device, batch: int = 16) -> float:
    """Mean MSE of the predicted frames on held-out sequences."""
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(frames), batch):
            f = frames[s:s + batch].to(device)
            pred = model(f[:, :n_seed], f.shape[1] - n_seed)
            total += float(((pred - f[:, n_seed:]) ** 2).mean()) * len(f)
    model.train(was_training)
    return total / len(frames)


def write_json(obj: Any, path: Path) -> None:
    """Write JSON atomically with stable formatting."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = checkpoint.temporary_name(path)  # unique per process: two writers never share one
    try:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _model_for(ckpt: dict[str, Any]) -> nn.Module:
    from . import zoo
    stored = (ckpt.get("model_args") or {}).get("options")
    model = zoo.build(ckpt["model"], image_size=ckpt["image_size"], options=stored)
    model.load_state_dict(ckpt["state_dict"])
    return model


class _Stored:
    """An optimizer or scheduler state as read from a file, for :func:`checkpoint.save`."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        self.state = state

    def state_dict(self) -> dict[str, Any] | None:
        return self.state


def split_checkpoint(path: Path, keep_resume: bool = True) -> Path:
    """Rewrite a version-1 checkpoint (optimizer inside) as ``checkpoint.pt`` + ``resume.pt``.

    The weights, settings, learning curves and provenance are kept as they are. Without
    ``keep_resume`` no ``resume.pt`` is written: for a run that is finished, such as a
    fixed-budget one, whose optimizer state no one will continue. Returns ``path``.
    """
    path = Path(path)
    ckpt = checkpoint.read(path)
    state = checkpoint.read_resume(path, ckpt)
    prov = dict(ckpt.get("provenance", {}))
    if not keep_resume:
        prov["resume_state"] = "dropped: this run is not meant to be continued"
    checkpoint.save(path, _model_for(ckpt), ckpt["model"], ckpt["image_size"], step=int(ckpt["step"]),
                    config=ckpt["config"], history=ckpt["history"], provenance=prov,
                    optimizer=_Stored(state["optimizer"]) if keep_resume else None,
                    scheduler=_Stored(state["scheduler"]) if keep_resume else None)
    return path


def compact_resume(path: Path, first_moment: bool = False) -> Path:
    """Store the resume state beside checkpoint ``path`` compactly; returns the ``resume.pt`` path.

    Adam's second moments (an average over about 1,000 steps) are kept in bfloat16; the first
    moments (an average over about 10 steps) are dropped unless ``first_moment``, and start from
    zero when the run resumes. For a VLN that is 2.6 MB instead of 10.6 MB. A run resumed from it
    continues almost as it would have; its provenance records that it started from a compact state.
    A version-1 checkpoint is split first (:func:`split_checkpoint`).
    """
    path = Path(path)
    ckpt = checkpoint.read(path)
    if ckpt.get("version") == 1:
        split_checkpoint(path)
        ckpt = checkpoint.read(path)
    state = checkpoint.read_resume(path, ckpt)
    optimizer = state["optimizer"]
    for s in optimizer["state"].values():
        if not first_moment:
            s.pop("exp_avg", None)
        for k, v in list(s.items()):
            if k != "step" and isinstance(v, Tensor) and v.is_floating_point():
                s[k] = v.to(torch.bfloat16)
    target = path.with_name(checkpoint.RESUME_NAME)
    state["compact"] = "bfloat16 moments" + ("" if first_moment else ", first moments dropped")
    checkpoint.save_atomic(state, target)
    return target
