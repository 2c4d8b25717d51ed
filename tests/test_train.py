"""Tests of training: resumable checkpoints, provenance, curricula, clear errors.

Tiny runs (a few steps of batch 2 at 64 x 64) keep this file fast on two CPU cores.
"""
from __future__ import annotations

import hashlib
import os
import signal
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from motionseg import checkpoint, train, zoo

SIZE = 64
CPU = torch.device("cpu")


def tiny(name: str = "zero_param", **overrides) -> train.TrainConfig:
    settings = dict(steps=4, batch_size=2, n_train=8, n_val=2, val_every=2, checkpoint_every=2, size=SIZE)
    settings.update(overrides)
    return zoo.training_config(name, "quick", **settings)


def read(path: Path) -> dict:
    return checkpoint.read(path)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, train.History, Path]:
    out = tmp_path_factory.mktemp("full") / "zero_param" / "checkpoint.pt"
    model, history = train.train(tiny(), out, progress=False, device=CPU)
    return model, history, out


def _resume_in_pieces(cfg: train.TrainConfig, out: Path, pieces: int) -> tuple[nn.Module, train.History]:
    """Run ``pieces`` calls that each stop after one step (time_limit=0), then one to the end."""
    for i in range(pieces):
        _, history = train.train(cfg, out, resume=i > 0, progress=False, device=CPU, time_limit=0.0)
        assert history.step == list(range(1, i + 2))
        assert read(out)["step"] == i + 1
    return train.train(cfg, out, resume=True, progress=False, device=CPU)


def _assert_same_run(a: tuple[nn.Module, train.History], b: tuple[nn.Module, train.History]) -> None:
    (ma, ha), (mb, hb) = a, b
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.allclose(sa[k], sb[k], atol=1e-6), k
    assert ha.step == hb.step
    assert ha.loss == pytest.approx(hb.loss, abs=1e-9)
    assert ha.val_step == hb.val_step
    assert ha.val_mse == pytest.approx(hb.val_mse, abs=1e-9)


def test_resume_equals_uninterrupted_zero_param(uninterrupted, tmp_path: Path) -> None:
    model, history, _ = uninterrupted
    out = tmp_path / "zero_param" / "checkpoint.pt"
    resumed = _resume_in_pieces(tiny(), out, pieces=2)  # stopped after step 1, then after step 2
    _assert_same_run((model, history), resumed)
    assert history.step == [1, 2, 3, 4]
    # the gains were actually trained
    fresh = zoo.build("zero_param")
    assert any(not torch.allclose(model.gains[k], fresh.gains[k]) for k in fresh.gains)
    # resuming a finished run changes nothing
    again = train.train(tiny(), out, resume=True, progress=False, device=CPU)
    _assert_same_run(resumed, again)


@pytest.mark.parametrize("name", ["learnable", "zero_param_plus", "learnable_plus", "conv_pgp", "vln_resnet",
                                  "vln_ldc"])
def test_resume_equals_uninterrupted(name: str, tmp_path: Path) -> None:
    small = dict(batch_size=1, n_train=2, n_val=1) if name.startswith("vln") else dict(n_train=4)  # a VLN step is dear
    cfg = tiny(name, steps=2, val_every=2, checkpoint_every=2, init_from=None, **small)
    full = train.train(cfg, tmp_path / "a" / name / "checkpoint.pt", progress=False, device=CPU)
    resumed = _resume_in_pieces(cfg, tmp_path / "b" / name / "checkpoint.pt", pieces=1)
    _assert_same_run(full, resumed)


def test_a_run_can_be_extended_past_its_schedule(uninterrupted, tmp_path: Path) -> None:
    model, history, _ = uninterrupted
    out = tmp_path / "zero_param" / "checkpoint.pt"
    train.train(tiny(steps=2), out, progress=False, device=CPU)
    extended, ext_history = train.train(tiny(steps=4), out, resume=True, progress=False, device=CPU)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(extended.state_dict()[k], v, atol=1e-6, rtol=0)
    assert ext_history.step == history.step and ext_history.loss == pytest.approx(history.loss, abs=1e-9)
    runs = read(out)["provenance"]["runs"]
    assert [r["steps"] for r in runs] == [[0, 2], [2, 4]]


def test_an_existing_checkpoint_is_never_overwritten_silently(uninterrupted, tmp_path: Path) -> None:
    out = tmp_path / "zero_param" / "checkpoint.pt"
    train.train(tiny(steps=1), out, progress=False, device=CPU)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="--resume.*--force"):
        train.train(tiny(steps=1), out, progress=False, device=CPU)
    assert out.read_bytes() == before
    train.train(tiny(steps=1), out, progress=False, device=CPU, force=True)
    assert read(out)["step"] == 1


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(uninterrupted, tmp_path: Path, monkeypatch) -> None:
    model, history, _ = uninterrupted
    out = tmp_path / "zero_param" / "checkpoint.pt"
    calls = []
    loss = train.sequence_loss

    def ctrl_c_at_step_3(*args, **kwargs):  # Ctrl-C arrives during the forward pass of step 3
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return loss(*args, **kwargs)

    monkeypatch.setattr(train, "sequence_loss", ctrl_c_at_step_3)
    with pytest.raises(train.Interrupted, match="after step 3"):
        train.train(tiny(), out, progress=False, device=CPU)
    monkeypatch.setattr(train, "sequence_loss", loss)
    assert read(out)["step"] == 3  # the step under way was finished and saved
    assert sorted(p.name for p in out.parent.iterdir()) == ["checkpoint.pt", "resume.pt"]
    resumed, resumed_history = train.train(tiny(), out, resume=True, progress=False, device=CPU)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, atol=1e-6, rtol=0)
    assert resumed_history.loss == pytest.approx(history.loss, abs=1e-9)


def test_training_lowers_the_validation_error(uninterrupted) -> None:
    # a short run of the paper's model lowers the error of its validation sequences
    model, history, _ = uninterrupted
    val = train.validation_frames(tiny())
    untrained = train.validate(zoo.build("zero_param"), val, 10, CPU)
    assert history.val_mse[-1] < untrained, (history.val_mse, untrained)


def test_checkpoint_contents(uninterrupted) -> None:
    _, history, out = uninterrupted
    ckpt = read(out)
    assert ckpt["format"] == checkpoint.FORMAT and ckpt["version"] == checkpoint.VERSION
    assert ckpt["model"] == "zero_param" and ckpt["image_size"] == SIZE and ckpt["step"] == 4
    assert ckpt["config"] == train.asdict(tiny())
    # the model's options as trained, the DoG's start among them (a fresh model's are the defaults)
    trained_with = zoo.build("zero_param", options=zoo.DOG_START).options.to_dict()
    assert ckpt["model_args"] == {"class": "ZeroParamModel", "options": trained_with}
    assert trained_with["dog_surround_start"] == zoo.DOG_START["dog_surround_start"] > 0
    prov = ckpt["provenance"]
    for key in ("commit", "command", "torch", "numpy", "python", "device", "wall_seconds", "profile", "seed", "runs"):
        assert key in prov, key
    assert prov["torch"] == str(torch.__version__) and type(prov["torch"]) is str
    assert prov["profile"] == "quick" and prov["seed"] == 0 and prov["wall_seconds"] >= 0
    assert [r["steps"] for r in prov["runs"]] == [[0, 4]]
    assert ckpt["history"] == train.asdict(history) and ckpt["history"]["val_step"] == [2, 4]
    assert "optimizer" not in ckpt  # the resume state lives beside it
    state = checkpoint.read_resume(out, ckpt)
    assert state["step"] == 4 and state["optimizer"] is not None and state["scheduler"] is not None
    assert all(v.device.type == "cpu" for v in ckpt["state_dict"].values())


def test_checkpoint_written_atomically(uninterrupted) -> None:
    _, _, out = uninterrupted
    assert sorted(p.name for p in out.parent.iterdir()) == ["checkpoint.pt", "resume.pt"]  # no .tmp left


def test_resume_without_its_optimizer_state_is_refused(uninterrupted, tmp_path: Path) -> None:
    _, _, out = uninterrupted
    copy = tmp_path / "zero_param" / "checkpoint.pt"
    copy.parent.mkdir()
    copy.write_bytes(out.read_bytes())
    with pytest.raises(FileNotFoundError, match="optimizer state"):
        train.train(tiny(steps=6), copy, resume=True, progress=False, device=CPU)


def test_resume_with_other_settings_raises(uninterrupted, tmp_path: Path) -> None:
    _, _, out = uninterrupted
    copy = tmp_path / "zero_param" / "checkpoint.pt"
    copy.parent.mkdir()
    copy.write_bytes(out.read_bytes())
    (copy.parent / "resume.pt").write_bytes((out.parent / "resume.pt").read_bytes())
    with pytest.raises(ValueError, match="lr"):
        train.train(tiny(lr=0.123), copy, resume=True, progress=False, device=CPU)
    with pytest.raises(ValueError, match="batch_size"):
        train.train(tiny(batch_size=3), copy, resume=True, progress=False, device=CPU)
    # the checkpoint was left alone
    assert read(copy)["config"] == train.asdict(tiny())


def test_resume_with_other_model_raises(uninterrupted, tmp_path: Path) -> None:
    _, _, out = uninterrupted
    with pytest.raises(ValueError, match="zero_param"):
        train.train(tiny("conv_pgp"), out, resume=True, progress=False, device=CPU)


def test_init_from_zero_param(tmp_path: Path) -> None:
    # our learnable model starts from our zero-parameter one (the paper's starts from zero gains)
    source = zoo.build("zero_param_plus")
    with torch.no_grad():
        for i, p in enumerate(source.gains.values()):
            p.copy_(torch.linspace(-1.0, 1.0, p.numel()).reshape(p.shape) + i)
    src = tmp_path / "zero_param_plus" / "checkpoint.pt"
    checkpoint.save(src, source, "zero_param_plus", SIZE, step=4, config=train.asdict(tiny()),
                    history=train.asdict(train.History()), provenance={"commit": "test"})
    # lr=0 (cyclic between 0 and 0): the learnable model keeps the gains it starts from
    cfg = tiny("learnable_plus", steps=1, n_val=1, lr=0.0, val_every=1, checkpoint_every=1)
    assert cfg.init_from == "zero_param_plus"
    model, history = train.train(cfg, tmp_path / "learnable_plus" / "checkpoint.pt", progress=False, device=CPU)
    assert len(history.loss) == 1
    for k, v in source.gains.items():
        assert torch.equal(model.gains[k].detach(), v.detach()), k
    fresh = zoo.build("learnable_plus")
    for k in ("mix_alpha", "mix_fg", "mix_bg"):
        assert torch.equal(model.gains[k].detach(), fresh.gains[k].detach()), k
    prov = read(tmp_path / "learnable_plus" / "checkpoint.pt")["provenance"]
    assert prov["init_from"] == str(src)
    # the weights taken are named by step and sha256: the source may be trained on later
    assert prov["init_weights"] == {"model": "zero_param_plus", "step": 4,
                                    "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
    # a resumed run keeps the record of where the first run started
    cfg2 = replace(cfg, steps=2)
    train.train(cfg2, tmp_path / "learnable_plus" / "checkpoint.pt", resume=True, progress=False, device=CPU)
    assert read(tmp_path / "learnable_plus" / "checkpoint.pt")["provenance"]["init_weights"] == prov["init_weights"]


def test_init_from_falls_back_to_the_committed_checkpoint(tmp_path: Path) -> None:
    cfg = tiny("learnable_plus", steps=1, n_val=1, val_every=1, checkpoint_every=1)
    train.train(cfg, tmp_path / "learnable_plus" / "checkpoint.pt", progress=False, device=CPU)
    assert read(tmp_path / "learnable_plus" / "checkpoint.pt")["provenance"]["init_from"] == \
        str(zoo.checkpoint_path("zero_param_plus"))


def test_a_run_from_trained_weights_validates_its_start_and_keeps_it_if_training_only_hurts(
        tmp_path: Path, monkeypatch) -> None:
    scores = iter([0.1, 0.2, 0.3])  # the start, then worse at every validation
    monkeypatch.setattr(train, "validate", lambda *args, **kwargs: next(scores))
    cfg = tiny("learnable_plus", steps=2, n_val=1, val_every=1, checkpoint_every=1)
    out = tmp_path / "learnable_plus" / "checkpoint.pt"
    model, history = train.train(cfg, out, progress=False, device=CPU)
    assert history.val_step == [0, 1, 2] and history.val_mse == [0.1, 0.2, 0.3]
    kept = read(out)
    assert kept["selected"]["step"] == 0
    start = zoo.load("zero_param_plus")  # the committed source of the start's gains
    for k, v in start.gains.items():
        assert torch.equal(kept["state_dict"][f"gains.{k}"], v.detach()), k
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in kept["state_dict"].items())  # it did train


class _NaNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, seed: torch.Tensor, n_future: int) -> torch.Tensor:
        last = seed[:, -1:].expand(-1, n_future, -1, -1)
        return last + self.p * float("nan")


def test_nan_loss_raises(tmp_path: Path) -> None:
    out = tmp_path / "zero_param" / "checkpoint.pt"
    with pytest.raises(FloatingPointError, match="step 0"):
        train.train(tiny(), out, progress=False, device=CPU, model=_NaNModel())
    assert not out.exists()


def _nan_gradient_at(model: nn.Module, steps: set[int]) -> None:
    """Make every gradient of ``model`` NaN at the given training steps (1-based)."""
    count = {"n": 0}

    def forward_pre_hook(module: nn.Module, args: tuple) -> None:
        if torch.is_grad_enabled():  # a training step, not a validation
            count["n"] += 1

    model.register_forward_pre_hook(forward_pre_hook)
    for p in model.parameters():
        p.register_hook(lambda g: g * float("nan") if count["n"] in steps else g)


def test_a_step_with_a_non_finite_gradient_is_skipped_and_recorded(tmp_path: Path) -> None:
    model = zoo.build("zero_param", SIZE)
    _nan_gradient_at(model, {2})
    out = tmp_path / "zero_param" / "checkpoint.pt"
    trained, history = train.train(tiny(), out, progress=False, device=CPU, model=model)
    assert history.skipped == [2]
    assert history.step == [1, 2, 3, 4]
    assert all(torch.isfinite(p).all() for p in trained.parameters())
    assert read(out)["history"]["skipped"] == [2]


def test_a_skipped_first_step_keeps_the_schedule_without_a_warning(tmp_path: Path) -> None:
    model = zoo.build("zero_param", SIZE)
    _nan_gradient_at(model, {1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, history = train.train(tiny(), tmp_path / "zero_param" / "checkpoint.pt", progress=False, device=CPU,
                                 model=model)
    assert history.skipped == [1] and history.step == [1, 2, 3, 4]


def test_a_run_whose_gradient_stays_non_finite_stops(tmp_path: Path) -> None:
    model = zoo.build("zero_param", SIZE)
    _nan_gradient_at(model, set(range(1, 100)))
    cfg = tiny(steps=20, val_every=20, checkpoint_every=20)
    with pytest.raises(FloatingPointError, match=f"{train.MAX_SKIPPED + 1} steps in a row"):
        train.train(cfg, tmp_path / "zero_param" / "checkpoint.pt", progress=False, device=CPU, model=model)


def test_the_commit_is_taken_once_before_a_command_writes(monkeypatch) -> None:
    """Results written late in a command must not call the command's own earlier outputs a dirty tree."""
    answers = iter(["abc123", "abc123-dirty"])
    monkeypatch.delenv("MOTIONSEG_COMMIT", raising=False)
    monkeypatch.setattr(train, "_COMMIT_AT_START", None)
    monkeypatch.setattr(train, "_ask_git", lambda: next(answers))
    assert train.git_commit() == "abc123"
    assert train.provenance(CPU, 1.0)["commit"] == "abc123"


def test_changes_under_results_do_not_make_the_commit_dirty(monkeypatch) -> None:
    """A resumed run rewrites its own tracked checkpoint: that must not mark its code as dirty."""
    import subprocess
    changed = {"results/zero_param/checkpoint.pt"}

    def fake_git(args, **kw):
        if args[:2] == ["git", "rev-parse"]:
            return subprocess.CompletedProcess(args, 0, "abc123\n", "")
        excluded = any(a.startswith(":(exclude)results") for a in args)
        shown = [f for f in changed if not (excluded and f.startswith("results/"))]
        return subprocess.CompletedProcess(args, 0, "".join(f" M {f}\n" for f in shown), "")

    monkeypatch.setattr(train.subprocess, "run", fake_git)
    assert train._ask_git() == "abc123"
    changed.add("src/motionseg/train.py")
    assert train._ask_git() == "abc123-dirty"


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_the_checkpoint_keeps_the_best_validated_weights_and_resume_goes_on_from_the_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A late peak of the cyclic rate can leave the last step worse: checkpoint.pt keeps the best one."""
    scripted = iter([0.5, 0.3, 0.4])  # validations at steps 2, 4, 6
    monkeypatch.setattr(train, "validate", lambda *args, **kwargs: next(scripted))
    out = tmp_path / "run" / "zero_param" / "checkpoint.pt"
    last, _ = train.train(tiny(steps=6), out, progress=False, device=CPU)
    ckpt = read(out)
    assert ckpt["step"] == 6 and ckpt["selected"]["step"] == 4 and ckpt["selected"]["val_mse"] == 0.3
    monkeypatch.setattr(train, "validate", lambda *args, **kwargs: 1.0)
    # the data and the cyclic schedule do not depend on the planned steps: a 4-step run ends at step 4
    at_4, _ = train.train(tiny(steps=4), tmp_path / "four" / "zero_param" / "checkpoint.pt", progress=False,
                          device=CPU)
    assert _same_weights(ckpt["state_dict"], at_4.state_dict())
    assert _same_weights(zoo.load("zero_param", out, image_size=SIZE).state_dict(), at_4.state_dict())
    assert not _same_weights(ckpt["state_dict"], last.state_dict())
    assert _same_weights(checkpoint.read_resume(out, ckpt)["state_dict"], last.state_dict())
    # resumed, the run goes on from step 6's weights, as if never stopped; step 4 stays selected
    resumed, _ = train.train(tiny(steps=8), out, resume=True, progress=False, device=CPU)
    straight, _ = train.train(tiny(steps=8), tmp_path / "eight" / "zero_param" / "checkpoint.pt", progress=False,
                              device=CPU)
    assert _same_weights(resumed.state_dict(), straight.state_dict())
    assert read(out)["selected"]["step"] == 4 and _same_weights(read(out)["state_dict"], at_4.state_dict())


def test_a_checkpoint_from_before_the_selection_counts_its_last_validation(tmp_path: Path) -> None:
    """Older checkpoints hold their last step's weights: selected if that step was validated."""
    ckpt = {"step": 1500, "state_dict": {"w": torch.zeros(1)},
            "history": {"val_step": [1300, 1500], "val_mse": [0.00198, 0.00214]}}
    best = train._selected_on_resume(ckpt)
    assert best is not None and (best.step, best.val_mse) == (1500, 0.00214)
    ckpt["step"] = 1550  # stopped between validations: nothing is known of its weights
    assert train._selected_on_resume(ckpt) is None


def test_zoo_load_says_which_step_the_weights_are_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted = iter([0.2, 0.3])
    monkeypatch.setattr(train, "validate", lambda *args, **kwargs: next(scripted))
    out = tmp_path / "zero_param" / "checkpoint.pt"
    train.train(tiny(steps=4), out, progress=False, device=CPU)
    model = zoo.load("zero_param", out, image_size=SIZE)
    assert (model.trained_steps, model.selected_step) == (4, 2)
