"""Training shared by every model: BPTT, Adam, a cyclic learning rate, resumable checkpoints.

The training data of step ``k`` are training sequences ``k*B .. k*B+B-1`` (modulo the
number of distinct training sequences), so a run is a pure function of its settings
and a resumed run continues exactly where the interrupted one stopped.

A run stops early, with a checkpoint that ``resume`` continues, when its time limit is
reached or on Ctrl-C (the step under way is finished first; a second Ctrl-C stops at once).
"""
from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import __version__, checkpoint, config, data
from .config import TrainConfig

__all__ = ["TrainConfig", "History", "train", "validate", "sequence_loss", "provenance", "write_json",
           "Interrupted"]


@dataclass
class History:
    """Learning curves: training loss per step, validation MSE at validation steps."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_step: list[int] = field(default_factory=list)
    val_mse: list[float] = field(default_factory=list)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run after its checkpoint was saved (``step``, ``path``)."""

    def __init__(self, step: int, path: Path) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint saved to {path}")
        self.step, self.path = step, path


def git_commit() -> str:
    """The current git commit of the repository (``MOTIONSEG_COMMIT`` overrides), or 'unknown'.

    ``-dirty`` is appended when tracked files differ from the commit.
    """
    if os.environ.get("MOTIONSEG_COMMIT"):
        return os.environ["MOTIONSEG_COMMIT"]
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
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


def sequence_loss(model: nn.Module, frames: Tensor, n_seed: int) -> Tensor:
    """The model's training loss on B x T x H x W sequences.

    Models with ``forward_train`` (the baselines) use their own loss on every output
    frame; the others are trained with the MSE of the predicted frames, as in the paper.
    """
    if hasattr(model, "forward_train"):
        out = model.forward_train(frames, n_seed)
        target = frames[:, 1:]
        if getattr(model, "loss_name", "mse") == "bce":
            return F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), target)
        return F.mse_loss(out, target)
    pred = model(frames[:, :n_seed], frames.shape[1] - n_seed)
    return F.mse_loss(pred, frames[:, n_seed:])


class _StepData(torch.utils.data.Dataset):
    """Training sequence ``index mod n_train``, so that the stream is the same on resume."""

    def __init__(self, cfg: TrainConfig, first: int, count: int) -> None:
        self.base = data.MovingMNIST(cfg.n_train, "train", cfg.seed, size=cfg.size)
        self.first, self.count = first, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Tensor:
        return self.base[(self.first + i) % len(self.base)]["frames"]


def _validation_frames(cfg: TrainConfig) -> Tensor:
    # validation draws from the training split with another seed: the test set stays unseen
    return torch.from_numpy(data.make_sequences(cfg.n_val, "train", seed=cfg.seed + 1000, size=cfg.size)["frames"])


def _init_from(model: nn.Module, cfg: TrainConfig, out: Path) -> str:
    """Start from the gains of ``cfg.init_from``: the run's own results folder, else ``results/``."""
    from . import zoo
    assert cfg.init_from is not None
    candidates = [zoo.checkpoint_path(cfg.init_from, out.parent.parent), zoo.checkpoint_path(cfg.init_from)]
    source = next((p for p in candidates if p.is_file()), candidates[0])
    ckpt = checkpoint.read(source, expect_model=cfg.init_from)
    missing = model.load_state_dict(ckpt["state_dict"], strict=False)
    if missing.unexpected_keys:
        raise ValueError(f"{cfg.init_from} has parameters that {cfg.model} lacks: {missing.unexpected_keys}")
    return str(source)


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
    may be given more ``steps`` than its checkpoint planned; other settings must match.
    """
    from . import zoo
    out = Path(out)
    if out.exists() and not resume and not force:
        raise FileExistsError(f"{out} exists: pass --resume to continue its training or --force to replace it")
    device = device or config.device()
    commit = git_commit()
    command = command or command_line()
    torch.manual_seed(cfg.seed)
    model = (model or zoo.build(cfg.model, image_size=cfg.size, options=cfg.options)).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    lr_min = cfg.lr_min if cfg.lr_min is not None else cfg.lr / 10
    scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=lr_min, max_lr=cfg.lr,
                                                  step_size_up=max(1, cfg.cycle_steps // 2), cycle_momentum=False)
    history, step, wall = History(), 0, 0.0
    runs: list[dict[str, Any]] = []
    init_source = None
    if resume and out.exists():
        ckpt = checkpoint.read(out, expect_model=cfg.model, image_size=cfg.size)
        checkpoint.check_fits(ckpt, model, out)
        planned = asdict(cfg)
        diff = {k: (ckpt["config"].get(k), v) for k, v in planned.items()
                if k != "steps" and ckpt["config"].get(k) != v}
        if diff:
            shown = ", ".join(f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"cannot resume {out}: its settings differ from this run's: {shown}")
        state = checkpoint.read_resume(out, ckpt)
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, step = History(**ckpt["history"]), int(ckpt["step"])
        prov = ckpt.get("provenance", {})
        wall = float(prov.get("wall_seconds", 0.0))
        runs = list(prov.get("runs", []))
        init_source = prov.get("init_from")
    elif cfg.init_from:
        init_source = _init_from(model, cfg, out)
    if step >= cfg.steps:
        return model, history
    loader = torch.utils.data.DataLoader(_StepData(cfg, step * cfg.batch_size, (cfg.steps - step) * cfg.batch_size),
                                         batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers)
    val = _validation_frames(cfg)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}")
    start = time.perf_counter() - wall
    call_start = time.perf_counter()
    first_step = step

    def save() -> None:
        this_run = {"command": command, "commit": commit, "device": device_name(device),
                    "steps": [first_step, step], "wall_seconds": round(time.perf_counter() - call_start, 1)}
        prov = provenance(device, time.perf_counter() - start, cfg, command, commit)
        prov["runs"] = runs + [this_run]
        if init_source is not None:
            prov["init_from"] = init_source
        checkpoint.save(out, model, cfg.model, cfg.size, step=step, config=asdict(cfg), history=asdict(history),
                        provenance=prov, optimizer=optimizer, scheduler=scheduler)

    model.train()
    with _CtrlC() as ctrl_c:
        for frames in loader:
            frames = frames.to(device, non_blocking=True)
            loss = sequence_loss(model, frames, cfg.n_seed)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            history.step.append(step)
            history.loss.append(loss.item())
            if step % cfg.val_every == 0 or step == cfg.steps:
                history.val_step.append(step)
                history.val_mse.append(validate(model, val, cfg.n_seed, device))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{history.loss[-1]:.5f}")
            out_of_time = time_limit is not None and time.perf_counter() - call_start > time_limit
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time or ctrl_c.requested:
                save()
            if ctrl_c.requested:
                if bar is not None:
                    bar.close()
                raise Interrupted(step, out)
            if out_of_time:
                break
    if bar is not None:
        bar.close()
    return model, history


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
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
