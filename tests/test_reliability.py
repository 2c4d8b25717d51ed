"""Tests of what the README's Reliability section promises about training folders (issue 23).

No lost or overwritten work under Ctrl-C, a full disk, a killed process or a second run into
the same folder. The runs train a two-parameter model for a few steps on 64 x 64 sequences, so
that each test takes about a second; what is tested is the training loop and the checkpoint
files, which are the same for every model.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from motionseg import checkpoint, train, zoo

CPU = torch.device("cpu")
SRC = Path(__file__).resolve().parents[1] / "src"


class Tiny(nn.Module):
    """Two trainable numbers: the last seed frame, scaled and offset (deterministic start)."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.zeros(2))

    def forward(self, seed: torch.Tensor, n_future: int) -> torch.Tensor:
        return seed[:, -1:].expand(-1, n_future, -1, -1) * (1 + self.gain[0]) + self.gain[1]


def cfg(**overrides) -> train.TrainConfig:
    settings = dict(steps=6, batch_size=2, n_train=4, n_val=2, val_every=1, checkpoint_every=2, size=64, lr=0.01)
    settings.update(overrides)
    return zoo.training_config("zero_param", "quick", **settings)


def run(out: Path, resume: bool = False, **kwargs) -> tuple[nn.Module, train.History]:
    return train.train(kwargs.pop("config", cfg()), out, resume=resume, progress=False, device=CPU,
                       model=Tiny(), **kwargs)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, train.History]:
    return run(tmp_path_factory.mktemp("whole") / "tiny" / "checkpoint.pt")


def assert_same(a: tuple[nn.Module, train.History], b: tuple[nn.Module, train.History]) -> None:
    (ma, ha), (mb, hb) = a, b
    # (not bit for bit: a run in another process may sum in another order)
    torch.testing.assert_close(ma.gain, mb.gain, atol=1e-7, rtol=0)
    assert ha.step == hb.step and ha.loss == pytest.approx(hb.loss, rel=1e-6)
    assert ha.val_step == hb.val_step and ha.val_mse == pytest.approx(hb.val_mse, rel=1e-6)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def runs_of(out: Path) -> list[list[int]]:
    return [r["steps"] for r in checkpoint.read(out)["provenance"]["runs"]]


# -- 1. Ctrl-C ---------------------------------------------------------------------------------

def test_ctrl_c_during_a_validation_saves_that_step(uninterrupted, tmp_path: Path, monkeypatch) -> None:
    """Step 3 is validated but is no checkpoint step: a Ctrl-C during its validation must still save it."""
    out = tmp_path / "tiny" / "checkpoint.pt"
    validate = train.validate
    calls = []

    def ctrl_c_in_third_validation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return validate(*args, **kwargs)

    monkeypatch.setattr(train, "validate", ctrl_c_in_third_validation)
    with pytest.raises(train.Interrupted, match="after step 3; checkpoint saved") as stop:
        run(out)
    monkeypatch.setattr(train, "validate", validate)
    assert stop.value.step == 3 and checkpoint.read(out)["step"] == 3  # what it says was saved, was
    assert files(out.parent) == ["checkpoint.pt", "resume.pt"]
    assert_same(uninterrupted, run(out, resume=True))
    assert runs_of(out) == [[0, 3], [3, 6]]  # continued at step 3, not restarted


def test_ctrl_c_during_a_save_stops_after_it(uninterrupted, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "tiny" / "checkpoint.pt"
    save = checkpoint.save
    saves = []

    def ctrl_c_in_first_save(*args, **kwargs):
        saves.append(kwargs["step"])
        if len(saves) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return save(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", ctrl_c_in_first_save)
    with pytest.raises(train.Interrupted, match="after step 2"):
        run(out)
    monkeypatch.setattr(checkpoint, "save", save)
    assert saves == [2] and checkpoint.read(out)["step"] == 2
    assert_same(uninterrupted, run(out, resume=True))



def test_a_ctrl_c_right_after_the_stop_was_decided_is_not_reported_as_saved(uninterrupted, tmp_path: Path,
                                                                            monkeypatch) -> None:
    """The narrowest window: the flag turns on just after step 3 (no checkpoint step) read it."""
    out = tmp_path / "tiny" / "checkpoint.pt"
    steps = []
    loss = train.sequence_loss

    class LateCtrlC(train._CtrlC):
        @property
        def requested(self) -> bool:
            if len(steps) == 3 and not self._flag:
                self._flag = True  # arrives now, after this read
                return False
            return self._flag

        @requested.setter
        def requested(self, value: bool) -> None:
            self._flag = value

    monkeypatch.setattr(train, "_CtrlC", LateCtrlC)
    monkeypatch.setattr(train, "sequence_loss", lambda *a, **k: steps.append(1) or loss(*a, **k))
    with pytest.raises(train.Interrupted) as stop:
        run(out)
    monkeypatch.undo()
    assert stop.value.step == checkpoint.read(out)["step"] == 4  # stopped after the next step, with its save
    assert_same(uninterrupted, run(out, resume=True))

# -- 2. the checkpoint pair under a full disk and a killed process -------------------------------

def test_a_full_disk_during_a_save_leaves_the_previous_pair_resumable(uninterrupted, tmp_path: Path,
                                                                      monkeypatch) -> None:
    out = tmp_path / "tiny" / "checkpoint.pt"
    save = torch.save

    def disk_full_at_step_4(obj, f, *args, **kwargs):
        # the checkpoint (after its resume state, in either order) of step 4 fills the disk half-way
        if isinstance(obj, dict) and obj.get("step") == 4 and "state_dict" in obj:
            f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_step_4)
    with pytest.raises(OSError, match="No space left"):
        run(out)
    monkeypatch.setattr(torch, "save", save)
    assert files(out.parent) == ["checkpoint.pt", "resume.pt"]  # no temporary file left
    assert checkpoint.read(out)["step"] == 2
    assert checkpoint.read_resume(out, checkpoint.read(out))["step"] == 2
    assert_same(uninterrupted, run(out, resume=True))  # after freeing space: resumes, no --force needed
    assert runs_of(out) == [[0, 2], [2, 6]]


KILLER = """
import os, signal, sys
import torch
from torch import nn
sys.path.insert(0, {tests!r})
from test_reliability import Tiny, cfg
from motionseg import train
real, count = os.replace, [0]

def replace(src, dst):
    real(src, dst)
    if "step4" in os.environ:  # count the renames of the save of step 4 only
        count[0] += 1
        if count[0] == {k}:
            os.kill(os.getpid(), signal.SIGKILL)

save = torch.save

def marking_save(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("step") == 4:
        os.environ["step4"] = "1"
    return save(obj, f, *args, **kwargs)

os.replace, torch.save = replace, marking_save
train.train(cfg(), {out!r}, progress=False, device=torch.device("cpu"), model=Tiny())
"""


@pytest.mark.parametrize("k, resumed_at", [(1, 2), (2, 4), (3, 4)])
def test_a_process_killed_between_the_renames_of_a_save_resumes(uninterrupted, tmp_path: Path, k: int,
                                                                resumed_at: int) -> None:
    """SIGKILL after each rename of the save of step 4: resume from the newest consistent pair."""
    out = tmp_path / "tiny" / "checkpoint.pt"
    code = KILLER.format(tests=str(Path(__file__).parent), k=k, out=str(out))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # a reader finds the resume state of the checkpoint as the crash left it, before any recovery
    assert checkpoint.read_resume(out, checkpoint.read(out))["step"] == checkpoint.read(out)["step"] == resumed_at
    assert_same(uninterrupted, run(out, resume=True))
    assert runs_of(out)[-1] == [resumed_at, 6]
    assert files(out.parent) == ["checkpoint.pt", "resume.pt"]


def test_a_stale_next_file_of_an_older_step_is_ignored(tmp_path: Path) -> None:
    """A save killed before checkpoint.pt was replaced leaves a resume state that never counted."""
    out = tmp_path / "tiny" / "checkpoint.pt"
    run(out, config=cfg(steps=2))
    stale = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "model": "zero_param", "step": 3,
             "optimizer": None, "scheduler": None}
    torch.save(stale, out.with_name(checkpoint.NEXT_NAME))
    ckpt = checkpoint.read(out)
    assert checkpoint.read_resume(out, ckpt)["step"] == 2
    checkpoint.recover(out)
    assert files(out.parent) == ["checkpoint.pt", "resume.pt"]


# -- 3. one run per folder ---------------------------------------------------------------------

class Blocking(Tiny):
    """Tiny, whose first training step waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def forward(self, seed: torch.Tensor, n_future: int) -> torch.Tensor:
        if torch.is_grad_enabled() and not self.started.is_set():
            self.started.set()
            assert self.release.wait(60)
        return super().forward(seed, n_future)


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "tiny" / "checkpoint.pt"
    first_model, errors = Blocking(), []

    def first() -> None:
        try:
            train.train(cfg(steps=2), out, progress=False, device=CPU, model=first_model, command="first run")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_model.started.wait(60)  # the first run is inside its first step, before any save
        for force in (False, True):  # not even --force replaces a checkpoint being written
            with pytest.raises(OSError, match=rf"is being written by another run \(pid {os.getpid()} on .*first run"):
                train.train(cfg(steps=2), out, progress=False, device=CPU, model=Tiny(), force=force)
    finally:
        first_model.release.set()
        thread.join(60)
    assert not errors
    assert checkpoint.read(out)["provenance"]["command"] == "first run"
    assert files(out.parent) == ["checkpoint.pt", "resume.pt"]  # the lock is gone with the run


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "tiny" / "checkpoint.pt"
    out.parent.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out.parent / checkpoint.LOCK_NAME).write_text(json.dumps(
        {"pid": int(dead.stdout), "host": "here", "since": "then", "command": "killed run"}))
    run(out, config=cfg(steps=2))
    assert checkpoint.read(out)["step"] == 2
    assert files(out.parent) == ["checkpoint.pt", "resume.pt"]


def test_temporary_files_of_two_writers_do_not_collide(tmp_path: Path, monkeypatch) -> None:
    """A second save of the same file, complete while the first is being written, disturbs neither."""
    path = tmp_path / "c.pt"
    save = torch.save

    def second_writer_meanwhile(obj, f, *args, **kwargs):
        if obj.get("who") == "first":
            monkeypatch.setattr(torch, "save", save)
            checkpoint.save_atomic({"who": "second"}, path)
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", second_writer_meanwhile)
    checkpoint.save_atomic({"who": "first"}, path)
    assert checkpoint._load(path)["who"] == "first"  # renamed last
    assert files(tmp_path) == ["c.pt"]
    assert checkpoint.temporary_name(path) != checkpoint.temporary_name(path)
    assert f".{os.getpid()}." in checkpoint.temporary_name(path).name


def test_temporary_files_of_a_killed_save_are_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "tiny" / "checkpoint.pt"
    run(out, config=cfg(steps=2))
    for name in ("checkpoint.pt.123.abcd.tmp", "resume.pt.123.abcd.tmp"):
        (out.parent / name).write_bytes(b"half")
    run(out, resume=True, config=cfg(steps=3))
    assert files(out.parent) == ["checkpoint.pt", "resume.pt"]


# -- what a resumed run restores -----------------------------------------------------------------

def test_a_resumed_run_keeps_what_its_checkpoint_records(tmp_path: Path) -> None:
    """Besides weights, optimizer, schedule and curves (the tests above): the time, runs and sources."""
    out = tmp_path / "tiny" / "checkpoint.pt"
    run(out, config=cfg(steps=2))
    ckpt = checkpoint.read(out)
    ckpt["provenance"].update(init_from="the/source.pt", val_seconds_estimated=1, wall_seconds=100.0)
    checkpoint.save_atomic(ckpt, out)  # the same step: still the pair of resume.pt
    _, history = run(out, resume=True, config=cfg(steps=3))
    prov = checkpoint.read(out)["provenance"]
    assert prov["init_from"] == "the/source.pt" and prov["val_seconds_estimated"] == 1
    assert prov["wall_seconds"] >= 100.0 and history.val_seconds[-1] >= 100.0  # the clock goes on
    assert [r["steps"] for r in prov["runs"]] == [[0, 2], [2, 3]]
    assert history.val_step == [1, 2, 3] and history.step == [1, 2, 3]


def test_a_pair_of_two_steps_that_no_save_leaves_is_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "tiny" / "checkpoint.pt"
    run(out, config=cfg(steps=2))
    older = out.parent / "resume.pt"
    kept = older.read_bytes()
    run(out, resume=True, config=cfg(steps=3))
    older.write_bytes(kept)  # resume.pt of step 2 beside checkpoint.pt of step 3: copied by hand
    with pytest.raises(ValueError, match=r"resume.pt belongs to step 2, the checkpoint to step 3 \(.*--force") as err:
        run(out, resume=True, config=cfg(steps=4))
    assert "\n" not in str(err.value)
