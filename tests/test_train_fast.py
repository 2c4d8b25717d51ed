"""Tests of the opt-in fast training paths, the schedules and the compact resume states.

Every path that a GPU run may switch on (bf16 autocast, fused Adam, memory layout,
torch.compile, pinned data, the cosine schedule) is checked here on the CPU, where bf16
autocast and fused Adam run too. Tiny models and runs keep the file at a few seconds.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from motionseg import checkpoint, config, data, results, train, zoo
from motionseg.baselines import ConvPGP, VLNResNet

SIZE = 64
CPU = torch.device("cpu")


def tiny(name: str = "zero_param", **overrides) -> train.TrainConfig:
    settings = dict(steps=3, batch_size=2, n_train=6, n_val=2, val_every=3, checkpoint_every=3, size=SIZE,
                    init_from=None)
    settings.update(overrides)
    return zoo.training_config(name, "quick", **settings)


def tiny_pgp() -> nn.Module:
    torch.manual_seed(0)
    return ConvPGP(factors=6, mappings=5, kernel_size=5)


def tiny_vln() -> nn.Module:
    torch.manual_seed(0)
    return VLNResNet(image_size=SIZE, channels=(4, 6))


def run(cfg: train.TrainConfig, out: Path, model: nn.Module | None = None, **kwargs) -> tuple[nn.Module, train.History]:
    return train.train(cfg, out, progress=False, device=CPU, model=model, **kwargs)


def last_run(out: Path) -> dict:
    return checkpoint.read(out)["provenance"]["runs"][-1]


# -- resuming what was written before the new settings existed -------------------------------------

# the settings of version-1 checkpoints (the committed baselines were trained with these alone)
OLD_SETTINGS = ("model", "profile", "steps", "batch_size", "n_train", "n_val", "lr", "lr_min", "cycle_steps",
                "weight_decay", "val_every", "checkpoint_every", "seed", "n_seed", "size", "workers", "init_from")


def _old_copy(name: str, tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the committed checkpoint of ``name`` as written before the new settings existed."""
    source = zoo.checkpoint_path(name)
    ckpt = checkpoint.read(source)
    ckpt["config"] = {k: v for k, v in ckpt["config"].items() if k in OLD_SETTINGS}
    ckpt["history"] = {k: v for k, v in ckpt["history"].items() if k != "val_seconds"}
    ckpt["provenance"] = {k: v for k, v in ckpt["provenance"].items() if k not in ("runs", "val_seconds_estimated")}
    out = tmp_path / name / "checkpoint.pt"
    checkpoint.save_atomic(ckpt, out)
    if source.with_name(checkpoint.RESUME_NAME).exists():
        shutil.copy(source.with_name(checkpoint.RESUME_NAME), out.with_name(checkpoint.RESUME_NAME))
    return out, ckpt


def test_committed_baseline_resumes_under_the_new_settings(tmp_path: Path) -> None:
    # the committed baselines were written before schedule, precision etc. existed: missing means
    # default, and the execution settings of this run (bf16, fused Adam, 8 workers, ...) may differ
    out, stored = _old_copy("vln_ldc", tmp_path)
    cfg = zoo.training_config("vln_ldc", "full", steps=int(stored["step"]), precision="bf16", fused_adam=True,
                              workers=8, pin_memory=True, prefetch=4, val_every=250, checkpoint_every=250,
                              val_at_stop=True, channels_last=False)
    model, history = run(cfg, out, resume=True)  # nothing left to train: loads and returns
    assert history.step[-1] == stored["step"]
    assert torch.equal(model.state_dict()["compress_out.weight"], stored["state_dict"]["compress_out.weight"])
    # what is trained must still match
    with pytest.raises(ValueError, match="cycle_steps"):
        run(zoo.training_config("vln_ldc", "full", steps=int(stored["step"]), cycle_steps=1000), out, resume=True)


def test_schedule_is_part_of_the_run(tmp_path: Path) -> None:
    out = tmp_path / "zero_param" / "checkpoint.pt"
    run(tiny(steps=2), out)
    with pytest.raises(ValueError, match="schedule: checkpoint 'cyclic', this run 'cosine'"):
        run(tiny(steps=4, schedule="cosine"), out, resume=True)
    cosine = tmp_path / "cosine" / "zero_param" / "checkpoint.pt"
    run(tiny(steps=2, schedule="cosine", warmup_steps=1), cosine)
    # a cosine schedule is defined by its steps: it cannot be stretched ...
    with pytest.raises(ValueError, match="steps: checkpoint 2, this run 4"):
        run(tiny(steps=4, schedule="cosine", warmup_steps=1), cosine, resume=True)
    # ... but its execution settings may change
    run(tiny(steps=2, schedule="cosine", warmup_steps=1, precision="bf16", val_every=1), cosine, resume=True)


def test_settings_no_run_can_use_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "zero_param" / "checkpoint.pt"
    for bad, match in [(dict(schedule="linear"), "unknown schedule"), (dict(precision="fp16"), "unknown precision"),
                       (dict(warmup_steps=2), "cosine schedule"),
                       (dict(schedule="cosine", warmup_steps=3), "warmup_steps must be"),
                       (dict(prefetch=2), "workers"),
                       (dict(restart_factor=1.0), r"restart_factor must be in \(0, 1\)"),
                       (dict(restart_factor=0.5, schedule="cosine"), "cyclic schedule"),
                       (dict(restart_factor=0.5, cycle_steps=2, val_every=3), "val_every"),
                       (dict(grad_floor=0.0), r"grad_floor is a fraction of each spectrum's peak in \(0, 1\)")]:
        with pytest.raises(ValueError, match=match):
            run(tiny(**bad), out)
    assert not out.exists()


# -- schedules --------------------------------------------------------------------------------------

def test_cosine_schedule_warms_up_then_decays_to_lr_min() -> None:
    cfg = tiny(steps=20, schedule="cosine", warmup_steps=5, lr=1.0, lr_min=0.1)
    lrs = train.learning_rates(cfg)
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(1.0)
    assert lrs[:6] == sorted(lrs[:6]) and lrs[5:] == sorted(lrs[5:], reverse=True)
    assert lrs[3] == pytest.approx(0.1 + 0.9 * 3 / 5)  # linear warm-up
    assert lrs[5 + 15 // 2] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 7 / 15)))
    assert train.learning_rates(cfg, 21)[-1] == pytest.approx(0.1)  # at `steps`: lr_min
    # the default schedule is still today's cyclic one
    cyclic = train.learning_rates(tiny(steps=8, cycle_steps=4, lr=1.0, lr_min=0.1))
    assert cyclic == pytest.approx([0.1, 0.55, 1.0, 0.55] * 2)


def test_cosine_run_resumes_exactly(tmp_path: Path) -> None:
    cfg = tiny(steps=3, schedule="cosine", warmup_steps=1, val_every=1, checkpoint_every=1)
    whole_model, whole = run(cfg, tmp_path / "a" / "zero_param" / "checkpoint.pt")
    out = tmp_path / "b" / "zero_param" / "checkpoint.pt"
    run(cfg, out, time_limit=0.0)
    model, pieces = run(cfg, out, resume=True)
    assert pieces.loss == pytest.approx(whole.loss, abs=1e-9)
    for k, v in whole_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, atol=1e-6, rtol=0)


# -- restarts from the best weights (restart_factor) -----------------------------------------------

def test_restart_due_only_after_a_cycle_that_did_not_improve() -> None:
    steps, mse = [1, 2, 3, 4, 5, 6], [0.5, 0.4, 0.45, 0.4, 0.3, 0.9]
    assert not train.restart_due(steps, mse, 2, 2)  # the first cycle has nothing to beat
    assert train.restart_due(steps, mse, 4, 2)  # 0.45 and 0.4 do not beat 0.4
    assert not train.restart_due(steps, mse, 6, 2)  # 0.3 does
    assert train.restart_due([1, 2], [0.5, 0.4], 4, 2)  # a cycle without validation failed


# scripted validation MSEs: the second cycle (steps 3, 4) does not beat step 2, the third does
SCRIPT = [0.5, 0.4, 0.6, 0.7, 0.3, 0.35]


def _scripted(monkeypatch) -> None:
    calls = iter(SCRIPT * 3)
    monkeypatch.setattr(train, "validate", lambda *args, **kwargs: next(calls))


def test_a_failed_cycle_restarts_from_the_best_weights_at_a_lower_peak(tmp_path: Path, monkeypatch) -> None:
    _scripted(monkeypatch)
    cfg = tiny(steps=6, cycle_steps=2, val_every=1, checkpoint_every=1, lr=0.05, lr_min=0.01, restart_factor=0.5)
    out = tmp_path / "zero_param" / "checkpoint.pt"
    _, history = run(cfg, out)
    assert history.restarts == [4]
    assert checkpoint.read(out)["selected"]["step"] == 5  # 0.3: the checkpoint holds the new best
    # step 5 trained from the weights of step 2 (the best before the failed cycle) ...
    model = zoo.build("zero_param", image_size=SIZE, options=cfg.options)
    _, upto2 = run(replace(cfg, steps=2, restart_factor=None), tmp_path / "two" / "zero_param" / "checkpoint.pt",
                   model=model)
    assert upto2.loss == pytest.approx(history.loss[:2], abs=1e-9)
    batch = train._StepData(cfg, 4 * cfg.batch_size, cfg.batch_size)
    frames = torch.stack([batch[i] for i in range(cfg.batch_size)])
    with torch.no_grad():
        assert train.sequence_loss(model.train(), frames, cfg.n_seed).item() == pytest.approx(history.loss[4], abs=1e-7)
    # ... at half the peak and floor
    sched = checkpoint.read(out.with_name(checkpoint.RESUME_NAME))["scheduler"]
    assert sched["max_lrs"] == pytest.approx([0.025]) and sched["base_lrs"] == pytest.approx([0.005])


def test_a_run_with_restarts_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    cfg = tiny(steps=6, cycle_steps=2, val_every=1, checkpoint_every=1, restart_factor=0.5)
    _scripted(monkeypatch)
    _, whole = run(cfg, tmp_path / "a" / "zero_param" / "checkpoint.pt")
    _scripted(monkeypatch)
    out = tmp_path / "b" / "zero_param" / "checkpoint.pt"
    run(replace(cfg, steps=4), out)  # stops where the restart is due, before it is made
    _, pieces = run(cfg, out, resume=True)
    assert pieces.restarts == whole.restarts == [4]
    assert pieces.loss == pytest.approx(whole.loss, abs=1e-9)


def test_a_run_without_restarts_takes_the_rule_on_only_if_it_would_not_have_acted(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    plain = tiny(steps=4, cycle_steps=2, val_every=1, checkpoint_every=1)
    _scripted(monkeypatch)
    early = tmp_path / "early" / "zero_param" / "checkpoint.pt"
    run(plain, early)  # ends at step 4, where the rule would act next: it may be taken on
    _, history = run(replace(plain, steps=6, restart_factor=0.5), early, resume=True)
    assert history.restarts == [4]
    _scripted(monkeypatch)
    late = tmp_path / "late" / "zero_param" / "checkpoint.pt"
    run(replace(plain, steps=5), late)  # past step 4, trained on without the restart the rule makes there
    with pytest.raises(ValueError, match="restart_factor: checkpoint None, this run 0.5"):
        run(replace(plain, steps=6, restart_factor=0.5), late, resume=True)


# -- the gradient floor of the phase differences (grad_floor) --------------------------------------

def test_grad_floor_trains_on_the_same_losses_with_another_gradient(tmp_path: Path) -> None:
    """The first step's loss is the same (values unchanged); the step it takes is not, and a resume keeps the floor."""
    cfg = tiny(steps=2, val_every=1, checkpoint_every=1, grad_floor=None)  # the recipe's own floor aside
    exact_model, exact = run(cfg, tmp_path / "exact" / "zero_param" / "checkpoint.pt")
    floored = replace(cfg, grad_floor=1e-2)
    out = tmp_path / "floor" / "zero_param" / "checkpoint.pt"
    model, history = run(floored, out)
    assert history.loss[0] == exact.loss[0]
    assert history.loss[1] != pytest.approx(exact.loss[1], abs=1e-9)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, exact_model.state_dict()[k])]
    assert changed
    assert checkpoint.read(out)["config"]["grad_floor"] == 1e-2
    with pytest.raises(ValueError, match="grad_floor: checkpoint 0.01, this run None"):
        run(replace(cfg, steps=3), out, resume=True)


# -- bf16 autocast ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [tiny_pgp, tiny_vln], ids=["conv_pgp", "vln"])
def test_bf16_autocast_keeps_outputs_loss_and_gradients_in_fp32(make) -> None:
    model = make()
    torch.manual_seed(1)
    frames = torch.rand(2, 6, SIZE, SIZE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.forward_train(frames, 3)
        predicted = model(frames[:, :3], 2)  # the closed loop alone
    assert out.dtype == predicted.dtype == torch.float32  # the output sigmoid runs in fp32, for the BCE loss
    for frame in out.unbind(1):  # every frame, teacher-forced or fed back, has more than bf16's precision
        assert (frame != frame.bfloat16().float()).float().mean() > 0.5
    grads = {}
    for amp in (None, torch.bfloat16):
        model.zero_grad()
        loss = train.sequence_loss(model, frames, 3, autocast=amp)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        grads[amp] = (loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()]))
    (l32, g32), (l16, g16) = grads[None], grads[torch.bfloat16]
    assert g16.dtype == torch.float32  # fp32 master weights get fp32 gradients
    assert l16 != l32 and l16 == pytest.approx(l32, rel=0.02)  # bf16 was used, and is close
    assert float(torch.nn.functional.cosine_similarity(g16, g32, dim=0)) > 0.98


def test_bf16_on_the_cpu_gives_finite_vln_gradients() -> None:
    # PyTorch's CPU bf16 kernels give NaN weight gradients for the VLN's dilated convolutions
    # when the weights are channels-last (as the models ship): training makes them contiguous
    torch.manual_seed(0)
    model = VLNResNet(image_size=SIZE)  # the paper's channels: the small test model does not show it
    train.prepare_model(model, tiny("vln_resnet", precision="bf16"))
    train.sequence_loss(model, torch.rand(2, 4, SIZE, SIZE), 2, autocast=torch.bfloat16).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="NaN gradients"):
        train.prepare_model(model, tiny("vln_resnet", precision="bf16", channels_last=True))


def test_bf16_run_trains_fp32_weights_and_records_its_precision(tmp_path: Path) -> None:
    cfg = tiny("conv_pgp", steps=2, val_every=2, checkpoint_every=2)
    _, fp32 = run(cfg, tmp_path / "a" / "conv_pgp" / "checkpoint.pt", model=tiny_pgp())
    out = tmp_path / "b" / "conv_pgp" / "checkpoint.pt"
    model, bf16 = run(train.TrainConfig(**{**train.asdict(cfg), "precision": "bf16"}), out, model=tiny_pgp())
    assert bf16.loss != fp32.loss and bf16.loss == pytest.approx(fp32.loss, rel=0.02)
    assert bf16.val_mse == pytest.approx(fp32.val_mse, rel=0.05)  # validation itself runs in fp32
    assert all(v.dtype == torch.float32 for v in checkpoint.read(out)["state_dict"].values())
    assert last_run(out)["execution"]["precision"] == "bf16"


# -- fused Adam, memory layout, compile ------------------------------------------------------------

def _fused_flags(out: Path) -> list:
    state = checkpoint.read(out.with_name(checkpoint.RESUME_NAME))
    return [g["fused"] for g in state["optimizer"]["param_groups"]]


def test_fused_adam_matches_and_is_kept_on_resume(tmp_path: Path) -> None:
    # zero_param_plus: the paper's zero_param starts at gains 0, where Adam's first steps divide gradients
    # near 0 by their own size, and the fused kernel's rounding moves its second loss by 1e-3 relative
    cfg = tiny("zero_param_plus", steps=2, checkpoint_every=1, val_every=2)
    plain_model, plain = run(cfg, tmp_path / "a" / "zero_param_plus" / "checkpoint.pt")
    out = tmp_path / "b" / "zero_param_plus" / "checkpoint.pt"
    fused_cfg = train.TrainConfig(**{**train.asdict(cfg), "fused_adam": True})
    fused_model, fused = run(fused_cfg, out)
    assert _fused_flags(out) == [True]
    assert fused.loss == pytest.approx(plain.loss, rel=1e-5)
    for k, v in plain_model.state_dict().items():
        torch.testing.assert_close(fused_model.state_dict()[k], v, atol=1e-6, rtol=1e-5)
    # a state saved without the fused kernel resumes with it (and the other way round): the
    # loaded param groups would otherwise bring back the kernel they were saved with
    plain_out = tmp_path / "a" / "zero_param_plus" / "checkpoint.pt"
    run(train.TrainConfig(**{**train.asdict(fused_cfg), "steps": 3}), plain_out, resume=True)
    assert _fused_flags(plain_out) == [True]
    run(train.TrainConfig(**{**train.asdict(cfg), "steps": 3}), out, resume=True)
    assert _fused_flags(out) == [None]


def test_channels_last_setting_converts_the_weights() -> None:
    model = tiny_vln()
    weight = lambda: model.encoders[0].conv2.weight  # noqa: E731  (4 x 4 x 3 x 3: the layouts differ)
    train.prepare_model(model, tiny())
    assert weight().is_contiguous(memory_format=torch.channels_last)  # as built
    train.prepare_model(model, tiny(channels_last=False))
    assert weight().is_contiguous() and not weight().is_contiguous(memory_format=torch.channels_last)
    train.prepare_model(model, tiny(channels_last=True))
    assert weight().is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("make,target", [(tiny_pgp, "forward_train"), (tiny_vln, "_step")], ids=["conv_pgp", "vln"])
def test_compile_wraps_one_method_and_is_undone(make, target: str, tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = torch.compile

    def spy(fn, **kwargs):
        calls.append((fn.__name__, kwargs.get("backend")))
        return real(fn, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    name = "conv_pgp" if target == "forward_train" else "vln_resnet"
    cfg = tiny(name, steps=1, val_every=1, checkpoint_every=1)
    eager_model, eager = run(cfg, tmp_path / "a" / name / "checkpoint.pt", model=make())
    assert calls == []
    out = tmp_path / "b" / name / "checkpoint.pt"
    model, compiled = run(train.TrainConfig(**{**train.asdict(cfg), "compile": "eager"}), out, model=make())
    assert calls == [(target, "eager")]
    assert target not in model.__dict__  # the model is returned as it was built
    assert compiled.loss == pytest.approx(eager.loss, rel=1e-5)
    assert set(checkpoint.read(out)["state_dict"]) == set(eager_model.state_dict())  # no _orig_mod. keys


# -- compact resume states and checkpoint files ---------------------------------------------------

@pytest.fixture()
def pgp_run(tmp_path: Path) -> Path:
    out = tmp_path / "conv_pgp" / "checkpoint.pt"
    run(tiny("conv_pgp", steps=2, val_every=2, checkpoint_every=2), out)  # the real one: 31,797 parameters
    return out


def test_compact_resume_is_small_and_resumes(pgp_run: Path) -> None:
    resume = pgp_run.with_name(checkpoint.RESUME_NAME)
    full = resume.stat().st_size
    train.compact_resume(pgp_run)
    assert resume.stat().st_size < 0.35 * full  # bf16 second moments only: a quarter of m and v in fp32
    state = checkpoint.read(resume)
    moments = list(state["optimizer"]["state"].values())
    assert all("exp_avg" not in s and s["exp_avg_sq"].dtype == torch.bfloat16 for s in moments)
    assert state["step"] == 2 and state["scheduler"] is not None
    model, history = run(tiny("conv_pgp", steps=3, val_every=3, checkpoint_every=3), pgp_run, resume=True)
    assert history.step == [1, 2, 3] and math.isfinite(history.loss[-1])
    assert "first moments dropped" in last_run(pgp_run)["resumed_from_compact_state"]
    # what the resumed run saves is a full state again
    after = checkpoint.read(resume)["optimizer"]["state"]
    assert all(s["exp_avg"].dtype == torch.float32 for s in after.values())


def _as_version1(out: Path) -> None:
    """Rewrite a version-2 checkpoint in the one-file format of the committed baselines."""
    ckpt = checkpoint.read(out)
    state = checkpoint.read_resume(out, ckpt)
    old = {"format": checkpoint.FORMAT, "version": 1, "model": ckpt["model"],
           "model_config": {"class": ckpt["model_args"]["class"]}, "image_size": ckpt["image_size"],
           "state_dict": ckpt["state_dict"], "optimizer": state["optimizer"], "scheduler": state["scheduler"],
           "step": ckpt["step"], "config": ckpt["config"], "history": ckpt["history"],
           "provenance": ckpt["provenance"]}
    out.with_name(checkpoint.RESUME_NAME).unlink()
    torch.save(old, out)


def test_split_version1_checkpoint(pgp_run: Path) -> None:
    weights = checkpoint.read(pgp_run)["state_dict"]
    _as_version1(pgp_run)
    version1 = pgp_run.read_bytes()
    big = len(version1)
    train.split_checkpoint(pgp_run)
    ckpt = checkpoint.read(pgp_run)
    assert ckpt["version"] == checkpoint.VERSION and "optimizer" not in ckpt and pgp_run.stat().st_size < big
    assert all(torch.equal(ckpt["state_dict"][k], v) for k, v in weights.items())
    assert checkpoint.read_resume(pgp_run, ckpt)["step"] == 2
    # a finished run keeps its weights only
    pgp_run.with_name(checkpoint.RESUME_NAME).unlink()
    pgp_run.write_bytes(version1)
    train.split_checkpoint(pgp_run, keep_resume=False)
    assert not pgp_run.with_name(checkpoint.RESUME_NAME).exists()
    assert "dropped" in checkpoint.read(pgp_run)["provenance"]["resume_state"]
    # compacting a version-1 file splits it first
    pgp_run.write_bytes(version1)
    train.compact_resume(pgp_run)
    assert checkpoint.read(pgp_run)["version"] == checkpoint.VERSION
    assert "compact" in checkpoint.read(pgp_run.with_name(checkpoint.RESUME_NAME))


# -- learning-curve bookkeeping --------------------------------------------------------------------

def test_validation_at_stop_and_its_seconds(tmp_path: Path) -> None:
    out = tmp_path / "zero_param" / "checkpoint.pt"
    _, history = run(tiny(val_every=10, checkpoint_every=10), out, time_limit=0.0)
    assert history.step == [1] and history.val_step == []  # off by default: as before
    _, history = run(tiny(val_every=10, checkpoint_every=10, val_at_stop=True), out, resume=True, time_limit=0.0)
    assert history.val_step == [2] and len(history.val_seconds) == 1 and history.val_seconds[0] >= 0
    # a checkpoint written before val_seconds existed: the resumed run fills them in by steps
    ckpt = checkpoint.read(out)
    del ckpt["history"]["val_seconds"]
    ckpt["provenance"]["wall_seconds"] = 10.0
    checkpoint.save_atomic(ckpt, out)
    _, history = run(tiny(val_every=3, checkpoint_every=3), out, resume=True)
    assert history.val_step == [2, 3] and len(history.val_seconds) == 2
    assert history.val_seconds[0] == pytest.approx(10.0)  # 2 steps at 10 s / 2 steps
    assert history.val_seconds[1] >= 10.0
    assert checkpoint.read(out)["provenance"]["val_seconds_estimated"] == 1


def test_execution_settings_are_recorded_per_run(tmp_path: Path) -> None:
    out = tmp_path / "zero_param" / "checkpoint.pt"
    run(tiny(steps=2, val_every=2, checkpoint_every=2), out)
    run(tiny(steps=3, val_every=3, checkpoint_every=3, precision="bf16", workers=1, prefetch=1), out, resume=True)
    runs = checkpoint.read(out)["provenance"]["runs"]
    assert [r["execution"]["precision"] for r in runs] == ["fp32", "bf16"]
    assert [r["execution"]["workers"] for r in runs] == [0, 1]
    assert set(runs[0]["execution"]) == set(config.EXECUTION)


# -- learning curves and their projection ----------------------------------------------------------

def test_power_law_fit_recovers_its_parameters_and_inverts() -> None:
    from motionseg import curves
    steps = [1000, 2000, 4000, 8000]
    fit = curves.fit_power_law(steps, [0.5 * s ** -0.6 for s in steps])
    assert fit.b == pytest.approx(0.6) and fit.a == pytest.approx(0.5) and fit.b_se == pytest.approx(0, abs=1e-9)
    assert float(fit(16000)) == pytest.approx(0.5 * 16000 ** -0.6)
    assert fit.reach(0.5 * 30000 ** -0.6) == pytest.approx(30000)
    # a flatter exponent, turned around the centroid, needs more steps to reach a lower target
    assert fit.reach(1e-4, b=0.5) > fit.reach(1e-4) > fit.reach(1e-4, b=0.7)
    two = curves.fit_power_law([1000, 2000], [0.006, 0.004])
    assert two.b == pytest.approx(math.log(1.5) / math.log(2)) and two.b_se is None
    y = [0.5 * s ** -0.6 * f for s, f in zip(steps, [1.05, 0.95, 1.05, 0.95])]
    noisy = curves.fit_power_law(steps, y)
    lx, ly = torch.tensor(steps, dtype=torch.float64).log(), torch.tensor(y, dtype=torch.float64).log()
    resid = ly - (ly.mean() - noisy.b * (lx - lx.mean()))
    expected = math.sqrt(float((resid ** 2).sum()) / 2 / float(((lx - lx.mean()) ** 2).sum()))
    assert noisy.b_se == pytest.approx(expected) and 0 < noisy.b_se < 0.1  # the slope's standard error
    with pytest.raises(ValueError, match="two or more"):
        curves.fit_power_law([1000, 1000], [0.1, 0.2])


def test_projection_counts_steps_and_hours_from_the_last_point() -> None:
    from motionseg import curves
    curve = curves.Curve("vln_resnet", steps=[1000, 4000], val_mse=[0.004, 0.002], seconds=[500.0, 2000.0])
    p = curves.projection(curve, target=0.001, seconds_each=0.5)
    assert p["b"] == pytest.approx(0.5) and p["step"] == pytest.approx(16000)  # halving the MSE: 4x the steps
    assert p["steps_to_go"] == pytest.approx(12000) and p["gpu_hours"] == pytest.approx(12000 * 0.5 / 3600)
    assert p["step_range"] == pytest.approx([16000, 16000])  # two points: no error to spread


def test_curve_from_an_old_checkpoint_estimates_its_seconds(tmp_path: Path) -> None:
    from motionseg import curves
    path, ckpt = _old_copy("vln_ldc", tmp_path)  # as committed before val_seconds existed
    curve = curves.curve_from_checkpoint(path)
    per_step = ckpt["provenance"]["wall_seconds"] / ckpt["step"]
    assert curve.steps == ckpt["history"]["val_step"] and curve.estimated_seconds == len(curve.steps)
    assert curve.seconds == pytest.approx([s * per_step for s in curve.steps])
    # a point measured later at the checkpoint's own step extends it; one of another step does not
    extended = curves.curve_from_checkpoint(path, {"step": ckpt["step"], "val_mse": 0.003})
    if curve.steps[-1] < ckpt["step"]:
        assert extended.steps[-1] == ckpt["step"] and extended.val_mse[-1] == 0.003
        assert extended.seconds[-1] == pytest.approx(ckpt["provenance"]["wall_seconds"])
    assert curves.curve_from_checkpoint(path, {"step": ckpt["step"] - 1, "val_mse": 0.003}).steps == curve.steps
    speed = curves.seconds_per_step(path)
    assert speed["seconds"] == pytest.approx(per_step) and speed["device"] == ckpt["provenance"]["device"]


def test_curve_leaves_out_the_validation_of_the_start(tmp_path: Path) -> None:
    from motionseg import curves
    path, ckpt = _old_copy("vln_ldc", tmp_path)
    h = ckpt["history"]
    h["val_step"], h["val_mse"] = [0, *h["val_step"]], [0.5, *h["val_mse"]]
    h["val_seconds"] = [0.0] + [float(s) for s in h["val_step"][1:]]
    checkpoint.save_atomic(ckpt, path)
    curve = curves.curve_from_checkpoint(path)
    assert curve.steps == h["val_step"][1:] and curve.val_mse == h["val_mse"][1:] and curve.seconds == h["val_seconds"][1:]
    curves.projection(curve, target=0.0001, seconds_each=1.0)  # a power law through its points exists


def test_plot_learning_curves_draws_points_fit_and_target() -> None:
    from motionseg import curves, figures
    curve = curves.Curve("vln_resnet", steps=[1000, 2000, 2872], val_mse=[0.0063, 0.0042, 0.0037],
                         seconds=[633.0, 1266.0, 1818.0], estimated_seconds=2)
    fig = figures.plot_learning_curves({"vln_resnet": curve},
                                       {"vln_resnet": curves.projection(curve, 0.001, 0.5)})
    left, right = fig.axes
    assert left.get_xscale() == right.get_xscale() == left.get_yscale() == "log"
    stars = [line for line in left.lines if line.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_ydata()[0] == pytest.approx(0.001)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_report_calibrates_the_paper_target_by_the_test_set(tmp_path: Path) -> None:
    import json
    from motionseg import curves, evaluate
    out = tmp_path / "conv_pgp" / "checkpoint.pt"
    run(tiny("conv_pgp", steps=2, val_every=1, checkpoint_every=2), out)
    rep = curves.report("conv_pgp", tmp_path)
    assert not rep["calibrated"] and rep["test"] is None and rep["target"] == results.PAPER_TABLE1["conv_pgp"][1]
    last_val = checkpoint.read(out)["history"]["val_mse"][-1]
    (out.parent / "metrics_full.json").write_text(json.dumps({"mse": 2 * last_val}))
    rep = curves.report("conv_pgp", tmp_path)
    assert rep["calibrated"] and rep["test_over_val"] == pytest.approx(2.0)
    assert rep["target"] == pytest.approx(results.PAPER_TABLE1["conv_pgp"][1] / 2)  # in validation terms
    assert rep["projection"]["target"] == rep["target"] and rep["curve"].steps == [1, 2]
    # one more step without a validation: the test metrics no longer match the last validation
    run(tiny("conv_pgp", steps=4, val_every=10, checkpoint_every=10), out, resume=True, time_limit=0.0)
    rep = curves.report("conv_pgp", tmp_path)
    assert rep["step"] == 3 and not rep["calibrated"] and rep["test_over_val"] == 1.0


def test_data_options_reach_training_and_validation_data(tmp_path) -> None:
    cfg = tiny(data_options={"n_digits": 2})
    two = data.make_sequences(2, "train", seed=cfg.seed + 1000, size=SIZE, n_digits=2)["frames"]
    one = data.make_sequences(2, "train", seed=cfg.seed + 1000, size=SIZE)["frames"]
    assert np.array_equal(train.validation_frames(cfg).numpy(), two) and not np.array_equal(two, one)
    item = train._StepData(cfg, 0, 1)[0]
    assert torch.equal(item, data.MovingMNIST(cfg.n_train, "train", cfg.seed, size=SIZE, n_digits=2)[0]["frames"])
    out = tmp_path / "zero_param" / "checkpoint.pt"
    train.train(cfg, out, device=CPU, progress=False)
    assert torch.load(out, weights_only=False)["config"]["data_options"] == {"n_digits": 2}
    with pytest.raises(ValueError, match=r"unknown data_options \['digits'\]: allowed are max_speed, n_frames"):
        train.train(tiny(data_options={"digits": 2}), tmp_path / "x" / "checkpoint.pt", device=CPU, progress=False)
    with pytest.raises(ValueError, match="n_digits 9 is out of range"):
        train.train(tiny(data_options={"n_digits": 9}), tmp_path / "y" / "checkpoint.pt", device=CPU, progress=False)


def test_validation_can_hold_out_the_photos_training_sees(tmp_path) -> None:
    cfg = tiny(data_options={"photo_set": "fit"}, val_data_options={"photo_set": "held_out"})
    assert train.validation_options(cfg) == {"photo_set": "held_out"}
    held = data.make_sequences(2, "train", seed=cfg.seed + 1000, size=SIZE, photo_set="held_out")["frames"]
    fit = data.make_sequences(2, "train", seed=cfg.seed + 1000, size=SIZE, photo_set="fit")["frames"]
    assert np.array_equal(train.validation_frames(cfg).numpy(), held) and not np.array_equal(held, fit)
    item = train._StepData(cfg, 0, 1)[0]
    assert torch.equal(item, data.MovingMNIST(cfg.n_train, "train", cfg.seed, size=SIZE, photo_set="fit")[0]["frames"])
    # validation's options go over the training ones, key by key
    both = tiny(data_options={"n_digits": 2, "photo_set": "fit"}, val_data_options={"photo_set": "held_out"})
    assert train.validation_options(both) == {"n_digits": 2, "photo_set": "held_out"}
    out = tmp_path / "zero_param" / "checkpoint.pt"
    train.train(cfg, out, device=CPU, progress=False)
    assert torch.load(out, weights_only=False)["config"]["val_data_options"] == {"photo_set": "held_out"}
    with pytest.raises(ValueError, match=r"unknown val_data_options \['photos'\]: allowed are"):
        train.train(tiny(val_data_options={"photos": "x"}), tmp_path / "x" / "checkpoint.pt", device=CPU, progress=False)
    with pytest.raises(ValueError, match="photo_set 'held_out' selects photos, but background is 'grey'"):
        train.train(tiny(data_options={"background": "grey"}, val_data_options={"photo_set": "held_out"}),
                    tmp_path / "y" / "checkpoint.pt", device=CPU, progress=False)
