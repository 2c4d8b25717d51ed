"""Training shared by every model: BPTT, Adam, a cyclic learning rate, resumable checkpoints.

The training data of step ``k`` are training sequences ``k*B .. k*B+B-1`` (modulo the
number of distinct training sequences), so a run is a pure function of its settings
and a resumed run continues exactly where the interrupted one stopped.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import __version__, config, data

CHECKPOINT_FORMAT = "motionseg-checkpoint"
CHECKPOINT_VERSION = 1


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
    size: int = data.SIZE
    workers: int = 0
    init_from: str | None = None  # start from another model's trained gains (e.g. "zero_param")


@dataclass
class History:
    """Learning curves: training loss per step, validation MSE at validation steps."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_step: list[int] = field(default_factory=list)
    val_mse: list[float] = field(default_factory=list)


def git_commit() -> str:
    """The current git commit of the repository (``MOTIONSEG_COMMIT`` overrides), or 'unknown'."""
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


def provenance(device: torch.device, wall_seconds: float, cfg: TrainConfig | None = None) -> dict[str, Any]:
    """Where and how a result was produced."""
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    out = {"commit": git_commit(), "motionseg": __version__, "torch": torch.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "device": dev, "wall_seconds": round(wall_seconds, 1),
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


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a reader never sees a half-written checkpoint


def _to_cpu(obj: Any) -> Any:
    """Move every tensor in a nested state dict to the CPU, so checkpoints load anywhere."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def make_checkpoint(model: nn.Module, cfg: TrainConfig, step: int, history: History,
                    optimizer: torch.optim.Optimizer | None, scheduler: Any, wall: float,
                    device: torch.device) -> dict[str, Any]:
    """Everything needed to use or resume a model, with provenance."""
    from . import zoo
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": cfg.model,
            "model_config": zoo.model_config(model), "image_size": cfg.size,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": _to_cpu(optimizer.state_dict()) if optimizer is not None else None,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "step": step, "config": asdict(cfg), "history": asdict(history),
            "provenance": provenance(device, wall, cfg)}


def train(cfg: TrainConfig, out: Path, resume: bool = False, device: torch.device | None = None,
          progress: bool = True, model: nn.Module | None = None, time_limit: float | None = None
          ) -> tuple[nn.Module, History]:
    """Train ``cfg.model`` and write ``out`` (a checkpoint file), resuming from it if asked.

    ``time_limit`` (seconds of this call) stops early with a checkpoint that ``resume``
    continues later, to the same result as an uninterrupted run.
    """
    from . import zoo
    device = device or config.device()
    torch.manual_seed(cfg.seed)
    model = (model or zoo.build(cfg.model, image_size=cfg.size)).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    lr_min = cfg.lr_min if cfg.lr_min is not None else cfg.lr / 10
    scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=lr_min, max_lr=cfg.lr,
                                                  step_size_up=max(1, cfg.cycle_steps // 2), cycle_momentum=False)
    history, step, wall = History(), 0, 0.0
    if cfg.init_from and not (resume and out.exists()):
        # a curriculum: start from the gains another model has already learned
        source = zoo.read_checkpoint(zoo.checkpoint_path(cfg.init_from, out.parent.parent), expect_model=cfg.init_from)
        missing = model.load_state_dict(source["state_dict"], strict=False)
        if missing.unexpected_keys:
            raise ValueError(f"{cfg.init_from} has parameters that {cfg.model} lacks: {missing.unexpected_keys}")
    if resume and out.exists():
        ckpt = zoo.read_checkpoint(out, expect_model=cfg.model, image_size=cfg.size)
        zoo.check_fits(ckpt, model, out, exact=True)
        if ckpt["config"] != asdict(cfg):
            diff = {k: (ckpt["config"].get(k), v) for k, v in asdict(cfg).items() if ckpt["config"].get(k) != v}
            raise ValueError(f"cannot resume {out}: its settings differ from this run's: {diff}")
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history, step = History(**ckpt["history"]), int(ckpt["step"])
        wall = float(ckpt["provenance"]["wall_seconds"])
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
    model.train()
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
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
            wall = time.perf_counter() - start
            _save_atomic(make_checkpoint(model, cfg, step, history, optimizer, scheduler, wall, device), out)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
