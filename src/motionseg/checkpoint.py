"""Checkpoints: the one place where they are written and read.

A checkpoint directory holds two files:

* ``checkpoint.pt``: what :func:`motionseg.zoo.load` needs: the model's name, the arguments
  that rebuild it (``model_args``: class and options, as nanoGPT stores its ``model_args``),
  the weights, the training settings and learning curves, and provenance (commit, command,
  versions, device, wall time);
* ``resume.pt``: the optimizer and scheduler state, only needed to continue training. Kept
  apart so that the weights of a large model can be shipped without it. Where ``checkpoint.pt``
  holds the weights of the run's best validation rather than its last step (``"selected"``),
  the last step's weights are here too.

The two are written as a pair that a crash cannot leave unresumable (:func:`save`): both are
written in full to temporary files first (a full disk fails there, before anything is
replaced), then the new ``resume.pt`` is moved to ``resume.pt.next``, ``checkpoint.pt`` is
replaced (the moment the new pair counts) and ``resume.pt.next`` becomes ``resume.pt``.
Whatever instant a process dies at, ``checkpoint.pt`` has its resume state in ``resume.pt`` or
``resume.pt.next``; :func:`read_resume` finds it and :func:`recover` finishes the move. A
training folder is written by one process at a time (:func:`lock`).

Files are read with ``torch.load(weights_only=True)``: loading a checkpoint runs no code from
it. Everything stored is plain data (tensors, numbers, strings, lists, dicts). Version-1
checkpoints (one file with the optimizer inside) are still read for models without options,
the baselines.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn
from torch.torch_version import TorchVersion

FORMAT = "motionseg-checkpoint"
VERSION = 2
READS = (1, 2)
RESUME_NAME = "resume.pt"
NEXT_NAME = "resume.pt.next"  # the new resume state while checkpoint.pt is being replaced
LOCK_NAME = "training.lock"  # held by the one process that writes a training folder


def _plain(obj: Any) -> Any:
    """Tensors on the CPU and plain Python types only, so that the file loads anywhere, safely."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {(str(k) if isinstance(k, TorchVersion) else k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, str):
        return str(obj)  # e.g. torch.__version__ is a str subclass that a safe load refuses
    return obj


def temporary_name(path: Path) -> Path:
    """A name beside ``path`` for writing it, unique to this process and call.

    Two processes (or two saves) never share a temporary file, so neither can rename or
    remove the other's.
    """
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _write(obj: dict[str, Any], tmp: Path) -> None:
    """``obj`` into ``tmp``, flushed and fsynced: complete on disk before anything is renamed."""
    with open(tmp, "wb") as f:
        torch.save(_plain(obj), f)
        f.flush()
        os.fsync(f.fileno())


def _sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` so that a reader never sees a half-written file.

    The data go to a temporary file of this process (:func:`temporary_name`), are flushed and
    fsynced, and only then renamed over ``path``; the temporary file is removed if anything
    fails (including Ctrl-C).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        _write(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def model_args(model: nn.Module) -> dict[str, Any]:
    """What rebuilds ``model``: its class and, for our models, its options."""
    out: dict[str, Any] = {"class": type(model).__name__}
    options = getattr(model, "options", None)
    if options is not None:
        out["options"] = options.to_dict()
    return out


def save(path: Path, model: nn.Module, name: str, image_size: int, *, step: int, config: dict[str, Any],
         history: dict[str, Any], provenance: dict[str, Any],
         optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
         selected: tuple[dict[str, Any], dict[str, Any]] | None = None) -> None:
    """Write ``checkpoint.pt`` at ``path`` and, given an optimizer, ``resume.pt`` beside it.

    ``checkpoint.pt`` holds ``model``'s weights, or with ``selected = (weights, record)`` those
    weights (the run's best validation so far, ``record`` says which step and MSE, stored as
    ``"selected"``); the model's own (latest) weights then go into ``resume.pt``, which continues
    the run from where it stopped.

    The pair is replaced so that a failure at any point (a full disk, Ctrl-C, SIGKILL) leaves a
    pair that resumes: the old one until ``checkpoint.pt`` is replaced, the new one after (see
    the module's docstring). Any failure before that leaves the old pair untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)  # a pair left half-moved by a crash is finished first
    latest = model.state_dict()
    ckpt = {"format": FORMAT, "version": VERSION, "model": name, "model_args": model_args(model),
            "image_size": image_size, "state_dict": selected[0] if selected else latest, "step": step,
            "config": config, "history": history, "provenance": provenance}
    if selected:
        ckpt["selected"] = selected[1]
    if optimizer is None:
        save_atomic(ckpt, path)
        return
    state = {"format": FORMAT, "version": VERSION, "model": name, "step": step,
             "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict() if scheduler is not None else None}
    if selected and selected[1].get("step") != step:
        state["state_dict"] = latest  # the weights the run continues from
    resume, following = path.with_name(RESUME_NAME), path.with_name(NEXT_NAME)
    tmp_ckpt, tmp_resume = temporary_name(path), temporary_name(resume)
    try:
        # both complete on disk before anything is renamed: a full disk fails here
        _write(state, tmp_resume)
        _write(ckpt, tmp_ckpt)
        os.replace(tmp_resume, following)
        os.replace(tmp_ckpt, path)  # from here on the new pair counts
        os.replace(following, resume)
    finally:
        for tmp in (tmp_ckpt, tmp_resume):
            if tmp.exists():
                tmp.unlink()
    _sync_folder(path.parent)


def _step_of(path: Path) -> Any:
    """The ``step`` stored in a checkpoint or resume file (None if it cannot be read)."""
    try:
        obj = _load(path)
    except Exception:  # noqa: BLE001 - unreadable: it holds no usable step
        return None
    return obj.get("step") if isinstance(obj, dict) else None


def recover(path: Path) -> None:
    """Finish a pair that a crash left half-moved, so that ``resume.pt`` belongs to ``checkpoint.pt``.

    After a crash between replacing ``checkpoint.pt`` and moving ``resume.pt.next`` over
    ``resume.pt``, the next file is the checkpoint's resume state: it is moved into place. A next
    file of another step (the crash came before ``checkpoint.pt`` was replaced) is left over from
    a save that never counted, and is removed. Only a process that holds the folder's
    :func:`lock` (or writes it alone) should call this.
    """
    path = Path(path)
    following = path.with_name(NEXT_NAME)
    if not following.exists():
        return
    step = _step_of(path) if path.is_file() else None
    if step is not None and _step_of(following) == step:
        os.replace(following, path.with_name(RESUME_NAME))
    else:
        following.unlink()
    _sync_folder(path.parent)


def _load(path: Path) -> Any:
    # version-1 files stored torch.__version__ as a TorchVersion (a str subclass): allowed, nothing else
    with torch.serialization.safe_globals([TorchVersion]):
        return torch.load(path, map_location="cpu", weights_only=True)


def read(path: Path, expect_model: str | None = None, image_size: int | None = None) -> dict[str, Any]:
    """Read a checkpoint, with clear errors for missing, foreign, mismatched or unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; create it with "
                                f"`python -m motionseg train {expect_model or 'MODEL'}`")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not a motionseg checkpoint: it was cut off while "
                         f"being written; train again, or restore the file")
    try:
        ckpt = _load(path)
    except Exception as err:  # truncated, foreign, or a pickle that would run code
        # some errors (an EOFError of a cut-off file) have no message at all
        reason = (str(err).strip().splitlines() or [f"{type(err).__name__}, the file is cut off or damaged"])[0]
        raise ValueError(f"{path} is not a readable motionseg checkpoint "
                         f"(it was read without running code from it): {reason}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a motionseg checkpoint (no format tag {FORMAT!r})")
    version = ckpt.get("version")
    if version not in READS:
        raise ValueError(f"{path} has checkpoint version {version}, this motionseg reads versions "
                         f"{', '.join(map(str, READS))}; retrain with `python -m motionseg train {ckpt.get('model')}`")
    if version == 1:
        config = ckpt.get("model_config") or {}
        if "revision" in config or ckpt.get("model") in ("zero_param", "learnable"):
            raise ValueError(f"{path} is a version-1 checkpoint of the former {ckpt.get('model')!r} model, which "
                             f"motionseg now calls {ckpt.get('model')}_plus and stores with its options; "
                             f"retrain it with `python -m motionseg train {ckpt.get('model')}_plus`")
        ckpt["model_args"] = {"class": config.get("class")}
    if expect_model is not None and ckpt.get("model") != expect_model:
        raise ValueError(f"{path} holds a {ckpt.get('model')!r} model, not {expect_model!r}")
    if image_size is not None and ckpt.get("image_size") != image_size:
        raise ValueError(f"{path} was trained for {ckpt.get('image_size')} x {ckpt.get('image_size')} images, "
                         f"not {image_size} x {image_size}")
    return ckpt


def read_resume(path: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    """The optimizer and scheduler state that belongs to checkpoint ``ckpt`` (read from ``path``).

    That is ``resume.pt``, or ``resume.pt.next`` where a crash interrupted :func:`save` after it
    had replaced ``checkpoint.pt`` (:func:`recover` then finishes the move).
    """
    path = Path(path)
    if ckpt.get("version") == 1:
        return {"optimizer": ckpt["optimizer"], "scheduler": ckpt["scheduler"]}
    resume, following = path.with_name(RESUME_NAME), path.with_name(NEXT_NAME)
    if following.is_file() and _step_of(following) == ckpt.get("step"):
        return read(following, expect_model=ckpt.get("model"))
    if not resume.is_file():
        raise FileNotFoundError(f"cannot resume {path}: its optimizer state {resume} is missing "
                                f"(train again without --resume, with --force to replace the checkpoint)")
    state = read(resume, expect_model=ckpt.get("model"))
    if state.get("step") != ckpt.get("step"):
        raise ValueError(f"cannot resume {path}: {resume} belongs to step {state.get('step')}, "
                         f"the checkpoint to step {ckpt.get('step')} (a pair this version of motionseg never "
                         f"leaves; train again with --force to start over)")
    return state


def _holder(lock_path: Path) -> str:
    """Who holds a lock, as its file says (pid, host, start, command)."""
    try:
        info = json.loads(lock_path.read_text())
        return (f"pid {info['pid']} on {info['host']} since {info['since']}: {info['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (which has not yet written its name)"


def remove_temporaries(path: Path) -> None:
    """Remove the temporary files that a process killed while saving ``path`` (and its resume state) left.

    Only for the holder of the folder's :func:`lock`: no one else writes these files then.
    """
    path = Path(path)
    for name in (path.name, RESUME_NAME):
        for stale in path.parent.glob(f"{name}.*.tmp"):
            stale.unlink(missing_ok=True)


class FolderLocked(OSError):
    """Another process is writing the training folder."""


@contextlib.contextmanager
def lock(folder: Path, command: str = "") -> Iterator[Path]:
    """Hold ``folder/training.lock`` while writing the folder; refuse if another process holds it.

    The lock file names its holder (pid, host, start time, command) for the message another run
    gets. It is an ``fcntl.flock`` lock, which the kernel releases when the holder exits in any
    way (even SIGKILL): a lock file left by a dead process is simply taken over. The file is
    removed when the lock is released. Where ``fcntl`` does not exist (Windows) no lock is taken.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield path
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderLocked(f"{folder} is being written by another run ({_holder(path)}); wait until it "
                               f"ends or stop it, or write elsewhere (--results)") from None
        # the holder before us may have removed the file between our open and our lock: then our
        # lock is on a file no one else will find, and we try again on the path's current file
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": command}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        yield path
    finally:
        path.unlink(missing_ok=True)  # before unlocking: a waiting process then locks a fresh file
        os.close(fd)
        if created:  # a run that wrote nothing leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_fits(ckpt: dict[str, Any], model: nn.Module, path: Path) -> None:
    """Raise ``ValueError`` unless checkpoint ``ckpt`` (read from ``path``) fits ``model``.

    Class and options must be the same (the message names the options that differ), every
    tensor must have the shape the model expects, and every weight must be finite.
    """
    got, expected = ckpt.get("model_args") or {}, model_args(model)
    name = ckpt.get("model")
    if got.get("class") != expected["class"]:
        raise ValueError(f"{path} holds a {got.get('class')} ({name}), this model is a {expected['class']}")
    # options added after a checkpoint was written are absent from it: it was made with their defaults
    defaults = type(model.options)().to_dict() if getattr(model, "options", None) is not None else {}
    stored = {**{k: v for k, v in defaults.items() if k not in got.get("options", {})}, **got.get("options", {})}
    if got.get("options") is not None and stored != expected.get("options", {}):
        a, b = stored, expected.get("options", {})
        diff = {k: (a.get(k, "(absent)"), b.get(k, "(absent)")) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
        shown = ", ".join(f"{k}: checkpoint {x!r}, model {y!r}" for k, (x, y) in diff.items())
        raise ValueError(f"{path} was trained with other options than this {name} model: {shown}")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise ValueError(f"{path} has no weights (state_dict)")
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})" for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or wrong:
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else []) + \
                ([f"wrong shapes: {', '.join(wrong)}"] if wrong else [])
        raise ValueError(f"{path} does not fit the {name} model: " + "; ".join(parts))
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path} has NaN or infinite weights in {bad}; it cannot predict anything")
