"""Tests of the stress tests beyond Table 1 (:mod:`motionseg.stress`) and of our option ``remeasure_motion``.

Tiny sizes: a handful of 128 x 128 sequences, the committed ``zero_param_plus`` (fast), the
reference rows, and synthetic results tables.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from motionseg import data, evaluate, results, stress, zoo
from motionseg.zero_param_plus import PlusOptions

N_SEED = evaluate.N_SEED
ROOT = Path(__file__).resolve().parents[1]


def run(model: torch.nn.Module, frames: np.ndarray, n_future: int = 10) -> tuple[torch.Tensor, dict]:
    with torch.no_grad():
        pred, states = model.run(torch.from_numpy(frames[:, :N_SEED]), n_future, keep_states=True)
    return pred, states.stacked()


@pytest.fixture(scope="module")
def committed() -> torch.nn.Module:
    return zoo.load("zero_param_plus")


@pytest.fixture(scope="module")
def fixed(committed: torch.nn.Module) -> torch.nn.Module:
    return stress.with_options(committed, remeasure_motion=True, remeasure_ratio=0.75)


@pytest.fixture(scope="module")
def bounce() -> dict[str, np.ndarray]:
    """Three validation sequences of ``bounce_seed`` (training split, validation seed)."""
    return next(stress.batches(stress.shift("bounce_seed").validation(), 3, 3))


# -- the committed model is unchanged ----------------------------------------------------------

def test_committed_zero_param_plus_predicts_as_committed(committed: torch.nn.Module) -> None:
    # the committed per-sequence MSEs (six significant digits) of the first test sequences
    stored = json.loads((zoo.RESULTS / "zero_param_plus" / "metrics_full.json").read_text())["per_sequence"]["mse"]
    assert committed.options.remeasure_motion is False  # written before the option existed: its default
    fresh = evaluate.evaluate({"z": evaluate.model_predictor(committed)}, n=3, batch_size=3)["z"]
    np.testing.assert_allclose(fresh["per_sequence"]["mse"], stored[:3], rtol=1e-5)


def test_option_that_never_fires_changes_nothing(committed: torch.nn.Module) -> None:
    seqs = data.make_sequences(3, "test", 0)
    never = stress.with_options(committed, remeasure_motion=True, remeasure_ratio=1e9)
    pred, states = run(never, seqs["frames"])
    ref, ref_states = run(committed, seqs["frames"])
    assert torch.equal(pred, ref)
    assert torch.equal(states["velocity"], ref_states["velocity"])
    assert never.restarts is not None and not never.restarts.any()


# -- what the option does ------------------------------------------------------------------------

def test_remeasure_recovers_the_motion_after_a_reflection(committed: torch.nn.Module, fixed: torch.nn.Module,
                                                          bounce: dict) -> None:
    truth = torch.from_numpy(bounce["velocity_per_frame"][:, N_SEED - 2])  # into the last seed frame
    pred_off, off = run(committed, bounce["frames"])
    pred_on, on = run(fixed, bounce["frames"])
    target = torch.from_numpy(bounce["frames"][:, N_SEED:])
    assert (on["velocity"][:, N_SEED - 2] - truth).norm(dim=-1).amax() < 0.1  # measured 0.01
    assert (off["velocity"][:, N_SEED - 2] - truth).norm(dim=-1).amin() > 1.0  # the average of both motions
    # the first frame off the old line, or the next one where the digit rested against the border
    assert set(fixed.restarts.tolist()) <= {6, 7} and fixed.restarts.tolist()[0] == 6
    mse_on, mse_off = ((pred_on - target) ** 2).mean(), ((pred_off - target) ** 2).mean()
    assert mse_on < 0.4 * mse_off, (mse_on, mse_off)  # measured 0.0016 vs 0.0088


def test_remeasure_is_an_option_of_learnable_plus_too(bounce: dict) -> None:
    # untrained (its nets start as the identity), built with the option: it restarts at the reflection
    model = zoo.build("learnable_plus", options={"remeasure_motion": True}).eval()
    run(model, bounce["frames"][:1])
    assert model.restarts.tolist() in ([6], [7])
    assert zoo.build("learnable_plus").options.remeasure_motion is False


def test_remeasure_does_not_fire_on_the_papers_data(fixed: torch.nn.Module) -> None:
    seqs = data.make_sequences(6, "train", stress.VAL_SEED)
    run(fixed, seqs["frames"])
    assert fixed.restarts.tolist() == [0] * 6


def test_remeasure_leaves_a_correct_motion_alone(fixed: torch.nn.Module, committed: torch.nn.Module) -> None:
    # digits twice as large: the mask fails the predictions, not the motion, so nothing restarts
    seqs = next(stress.batches(stress.shift("large").validation(), 4, 4))
    run(fixed, seqs["frames"])
    assert fixed.restarts.tolist() == [0] * 4
    unchecked = stress.with_options(committed, remeasure_motion=True, remeasure_ratio=0.75, remeasure_disagreement=0.0)
    run(unchecked, seqs["frames"])
    assert unchecked.restarts.any()  # without the check they would


def test_remeasure_options_are_checked() -> None:
    with pytest.raises(ValueError, match="remeasure_ratio"):
        PlusOptions(remeasure_motion=True, remeasure_ratio=0.0)
    with pytest.raises(ValueError, match="remeasure_disagreement"):
        PlusOptions(remeasure_disagreement=-1.0)
    with pytest.raises(ValueError, match="motion_from_differences"):
        PlusOptions.paper(remeasure_motion=True)
    assert PlusOptions().remeasure_motion is False  # off by default: committed checkpoints keep their numbers


def test_pick_setting_averages_ratios_not_errors() -> None:
    val = {"bounce": {"off": 0.01, "0.75": 0.002, "1": 0.004},  # 0.75 wins by far here ...
           "standard": {"off": 0.0003, "0.75": 0.0006, "1": 0.0003}}  # ... and doubles the error here
    # mean ratios: 0.75 -> (0.2 + 2) / 2 = 1.1, 1 -> (0.4 + 1) / 2 = 0.7; mean MSEs would pick 0.75
    assert stress.pick_setting(val)["ratio"] == 1.0
    assert stress.pick_setting(val)["score"]["0.75"] == pytest.approx(1.1)
    tie = {"a": {"off": 1.0, "0.75": 0.5, "2": 0.5}}
    assert stress.pick_setting(tie)["ratio"] == 2.0  # ties: the setting that restarts less


# -- the shifted sets ------------------------------------------------------------------------

def test_bounce_windows_reflect_where_they_say(bounce: dict) -> None:
    sh = stress.shift("bounce_seed")
    vpf = bounce["velocity_per_frame"]
    assert bounce["frames"].shape[1] == stress.WINDOW
    for i in range(len(vpf)):
        assert (vpf[i, :sh.bounce_at] == bounce["velocity"][i]).all()  # frames 0 .. bounce_at: one line
        assert (vpf[i, sh.bounce_at] != bounce["velocity"][i]).any()  # then the first reflected step
    long = data.make_sequence(int(bounce["index"][0]), "train", stress.VAL_SEED, n_frames=stress.LONG_FRAMES,
                              bounce=True)
    start = int(bounce["start"][0])
    assert np.array_equal(bounce["frames"][0], long["frames"][start:start + stress.WINDOW])
    again = stress.case(sh, int(bounce["index"][0]), start, "train", stress.VAL_SEED)
    assert np.array_equal(again["frames"][0], bounce["frames"][0])


def test_horizon_sequences_begin_with_the_standard_ones() -> None:
    # the standard rows of the stress table are read from the first 10 predicted frames of "horizon"
    standard, long = data.make_sequences(2, "test", 0), data.make_sequences(2, "test", 0, n_frames=40)
    for key in ("frames", "alpha", "fg", "bg"):
        assert np.array_equal(long[key][:, :20], standard[key])


def test_standard_summary_from_horizon_equals_a_standard_evaluation() -> None:
    refs = evaluate.reference_predictors()
    direct = evaluate.evaluate(refs, n=2, batch_size=2)
    horizon, _ = stress.evaluate_shift(stress.shift("horizon"), stress.predictors({}, 30), 2, 2)
    for name in refs:
        derived = stress.summary(horizon[name], evaluate.N_FUTURE)
        for metric in ("l1", "mse", "ssim"):
            assert derived[metric] == pytest.approx(direct[name][metric], rel=1e-6), (name, metric)


@pytest.mark.parametrize("name", ["two_digits", "bounce_future"])
def test_the_oracle_knows_every_object_and_displacement(name: str) -> None:
    # bounce_future: the reflection lies inside the predicted frames
    b = {k: torch.from_numpy(v) for k, v in next(stress.batches(stress.shift(name), 3, 3)).items()}
    target = b["frames"][:, N_SEED:]
    oracle = ((stress.oracle_predict(b) - target) ** 2).mean()
    copy_last = ((b["frames"][:, N_SEED - 1:N_SEED] - target) ** 2).mean()
    assert oracle < 0.005 * copy_last, (oracle, copy_last)  # measured 0.001


def test_the_oracle_draws_object_0_in_front() -> None:
    # two overlapping static squares: object 0 (value 1) in front of object 1 (value 0.5)
    obj_alpha = torch.zeros(1, 2, 20, 16, 16)
    obj_alpha[:, 0, :, 2:8, 2:8] = 1.0
    obj_alpha[:, 1, :, 5:11, 5:11] = 1.0
    obj_fg = torch.stack([torch.ones(1, 20, 16, 16), torch.full((1, 20, 16, 16), 0.5)], 1)
    batch = {"obj_alpha": obj_alpha, "obj_fg": obj_fg, "obj_velocity": torch.zeros(1, 2, 2),
             "bg": torch.zeros(1, 20, 16, 16)}
    pred = stress.oracle_predict(batch)
    assert pred[0, 0, 6, 6] == pytest.approx(1.0) and pred[0, 0, 9, 9] == pytest.approx(0.5)


def test_oracle_is_evaluates_oracle_on_the_papers_data() -> None:
    b = {k: torch.from_numpy(v) for k, v in data.make_sequences(2, "test", 0).items()}
    assert torch.equal(stress.oracle_predict(b), evaluate.oracle_predict(b))


def test_velocity_error_follows_reflections_and_the_nearest_object(bounce: dict) -> None:
    steps = N_SEED - 1 + 10
    b = {k: torch.from_numpy(v) for k, v in bounce.items() if k not in ("index", "start")}
    per_frame = b["velocity_per_frame"][:, :steps]
    assert evaluate._velocity_error(per_frame, b).abs().max() == 0  # entry k: displacement into frame k + 1
    constant = b["velocity"][:, None].expand(-1, steps, -1)
    assert evaluate._velocity_error(constant, b)[:, stress.shift("bounce_seed").bounce_at:].amin() > 0
    two = {k: torch.from_numpy(v) for k, v in data.make_sequences(2, "test", 0, n_digits=2).items()}
    second = two["obj_velocity"][:, 1, None].expand(-1, steps, -1)
    assert evaluate._velocity_error(second, two).abs().max() == 0  # locked on to object 1: no error


def test_evaluate_takes_generator_options_and_checks_the_horizon() -> None:
    refs = evaluate.reference_predictors(N_SEED, 30)
    res = evaluate.evaluate(refs, n=1, batch_size=1, n_future=30, n_frames=40)
    assert len(res["copy_last"]["per_frame"]["mse"]) == 30
    with pytest.raises(ValueError, match="n_frames = 30"):
        evaluate.evaluate(refs, n=1, n_future=30, n_frames=30)
    with pytest.raises(ValueError, match="allowed are digit, shapes"):
        evaluate.evaluate(evaluate.reference_predictors(), n=1, foreground="letters")
    with pytest.raises(ValueError, match="not both"):
        evaluate.evaluate(refs, n=1, batches=iter([]), n_frames=40)


def test_bad_shifts_and_options_are_refused() -> None:
    with pytest.raises(ValueError, match="allowed are train_photos, horizon"):
        stress.shift("rain")
    with pytest.raises(ValueError, match="allowed are photos, noise, grey, textures"):
        stress.Shift("x", "x", {"background": "sky"})
    with pytest.raises(ValueError, match="bounce_at"):
        stress.Shift("x", "x", bounce_at=19)
    out = subprocess.run([sys.executable, "-m", "motionseg", "stress", "--shifts", "rain"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 2 and "invalid choice: 'rain'" in out.stderr


def test_missing_checkpoints_are_skipped_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    models, skipped = stress.load_models(["zero_param", "learnable"], tmp_path)
    assert models == {} and set(skipped) == {"zero_param", "learnable"}
    assert "note: skipping learnable" in capsys.readouterr().out


# -- the tables --------------------------------------------------------------------------------

def _table() -> dict:
    def row(mse: float) -> dict:
        return {"n": 2, "l1": 10 * mse, "mse": mse, "ssim": 1 - mse, "per_frame": {}, "seconds": 0.0}
    shifts = {"standard": {"zero_param": row(0.002), "vln_ldc": row(0.004), "copy_last": row(0.01)},
              "train_photos": {"zero_param": row(0.001), "vln_ldc": row(0.001), "copy_last": row(0.01)}}
    return {"shifts": {k: {"results": v} for k, v in shifts.items()},
            "option": {"validation_mse": {}, "chosen": {}, "cost": {}}}


def test_gap_is_test_over_training_photos() -> None:
    gap = results.stress_gap(_table())
    assert gap.loc["vln_ldc", "test / training"] == pytest.approx(4.0)
    assert gap.loc["zero_param", "MSE, training photos"] == pytest.approx(0.001)
    assert list(results.stress_overview(_table()).columns) == ["standard", "train_photos"]
    with pytest.raises(ValueError, match="allowed are standard, train_photos"):
        results.stress_shift(_table(), "rain")


def test_the_chapter_reads_the_full_table_once_it_exists(tmp_path: Path) -> None:
    (tmp_path / "stress").mkdir()
    (tmp_path / "stress" / "stress_quick.json").write_text(json.dumps({"profile": "quick"}))
    assert results.stress(root=tmp_path)["profile"] == "quick"
    (tmp_path / "stress" / "stress_full.json").write_text(json.dumps({"profile": "full"}))
    assert results.stress(root=tmp_path)["profile"] == "full"
    assert results.stress("quick", root=tmp_path)["profile"] == "quick"


def test_sets_are_shown_standard_first_then_in_the_order_of_the_shifts() -> None:
    table = _table()
    # the file's keys are sorted, and a merged set is appended to the run's list: neither decides
    table["sets"] = ["train_photos", "standard"]
    assert list(results.stress_overview(table).columns) == ["standard", "train_photos"]
    table["shifts"]["later"] = table["shifts"]["train_photos"]
    table["sets"] = ["later", "train_photos", "standard"]
    assert results.stress_sets(table) == ["standard", "train_photos", "later"]  # a set unknown here: last


# -- the figures ---------------------------------------------------------------------------------

def test_path_crop_holds_the_whole_path_in_a_square() -> None:
    from motionseg.figures import path_crop

    alpha = np.zeros((6, 128, 128))
    alpha[0, 60:70, 60:70] = 1.0  # before `first`: not part of the path
    alpha[3, 100:120, 2:12] = 1.0
    alpha[5, 80:90, 30:50] = 1.0
    ys, xs = path_crop(alpha, first=2, margin=4, least=16)
    assert ys.stop - ys.start == xs.stop - xs.start  # square
    assert ys.start <= 80 - 4 and ys.stop >= 120 + 4 and xs.start <= 0 and xs.stop >= 50 + 4
    assert ys.stop <= 128 and xs.start >= 0
    assert ys.start > 70  # frame 0's square is left out
    small = path_crop(alpha[3:4], margin=0, least=48)
    assert small[0].stop - small[0].start == 48  # at least `least` px


def test_case_figure_has_a_panel_per_model_step_and_case() -> None:
    from motionseg import figures

    frames = np.zeros((20, 32, 32), np.float32)
    preds = {"a": np.zeros((10, 32, 32)), "b": np.ones((10, 32, 32))}
    fig = figures.plot_cases({"typical": (frames, preds), "failure": (frames, preds)}, steps=[5, 10, 15])
    assert len(fig.axes) == 3 * 2 * 3  # (truth + 2 models) x (2 cases x 3 steps)
    assert len(fig.axes[3 * 6 - 1].images) == 1  # a predicted frame is drawn ...
    assert len(fig.axes[6 + 0].images) == 0  # ... a seed frame is not, for the models
    import matplotlib.pyplot as plt
    plt.close(fig)


def _merge_table(models: dict[str, float], sequences: int = 3, n: int = 3) -> dict:
    shifts = {name: {"sequences": sequences, "results": {**{m: {"mse": v} for m, v in models.items()},
                                                         "copy_last": {"mse": 0.009}}}
              for name in ("standard", "horizon")}
    return {"profile": "quick", "n": n, "models": {m: {"checkpoint": m} for m in models}, "shifts": shifts,
            "skipped": {}, "option": {"chosen": {}}, "provenance": {"command": "first"}}


def test_merge_replaces_only_the_rerun_models_rows() -> None:
    old = _merge_table({"zero_param": 0.003, "conv_pgp": 0.004})
    new = _merge_table({"zero_param": 0.002})
    new["shifts"]["standard"]["results"]["copy_last"] = {"mse": 1.0}  # not taken: the old table's stays
    new["provenance"] = {"command": "second"}
    merged = stress.merge(old, new)
    assert merged["shifts"]["standard"]["results"]["zero_param"]["mse"] == 0.002
    assert merged["shifts"]["horizon"]["results"]["conv_pgp"]["mse"] == 0.004
    assert merged["shifts"]["standard"]["results"]["copy_last"]["mse"] == 0.009
    assert merged["provenance"]["command"] == "first" and merged["updates"][0]["provenance"]["command"] == "second"
    assert old["shifts"]["standard"]["results"]["zero_param"]["mse"] == 0.003  # the input is not changed
    with pytest.raises(ValueError, match="different n"):
        stress.merge(old, _merge_table({"zero_param": 0.002}, n=4))
    with pytest.raises(ValueError, match="sequences"):
        stress.merge(old, _merge_table({"zero_param": 0.002}, sequences=2))


def test_a_set_the_table_lacks_is_added_only_with_every_row_of_the_table() -> None:
    old = _merge_table({"zero_param": 0.003, "conv_pgp": 0.004})
    old["sets"] = ["standard", "horizon"]
    full = {"sequences": 3, "results": {"zero_param": {"mse": 0.005}, "conv_pgp": {"mse": 0.006},
                                        "copy_last": {"mse": 0.01}}}
    new = {"profile": "quick", "n": 3, "models": {"zero_param": {}, "conv_pgp": {}}, "shifts": {"three_digits": full},
           "provenance": {"command": "second"}}
    merged = stress.merge(old, new)
    assert merged["sets"] == ["standard", "horizon", "three_digits"]
    assert merged["shifts"]["three_digits"]["results"]["copy_last"]["mse"] == 0.01  # the new set's own reference
    assert merged["shifts"]["standard"] == old["shifts"]["standard"]
    partial = json.loads(json.dumps(new))
    del partial["shifts"]["three_digits"]["results"]["conv_pgp"]
    with pytest.raises(ValueError, match=r"three_digits.*\['conv_pgp'\]"):
        stress.merge(old, partial)


def test_a_run_given_the_tables_option_chooses_nothing_and_runs_only_its_sets(tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the option was chosen again")
    monkeypatch.setattr(stress, "choose_option", refuse)
    option = {"chosen": {}, "cost": {"kept": True}}
    out = stress.run("quick", root=tmp_path, models=["zero_param_authors"], shifts=["grey"], n=2, progress=False,
                     option=option)
    assert list(out["shifts"]) == ["grey"] and out["option"]["cost"] == {"kept": True}


def test_the_authors_weights_need_no_checkpoint_under_results(tmp_path: Path) -> None:
    out = stress.run("quick", root=tmp_path, models=["zero_param_authors"], shifts=["grey"], n=2, progress=False)
    assert set(out["shifts"]["grey"]["results"]) == {"zero_param_authors", "copy_last", "oracle"}
    # recorded relative to the repository (the same in every clone and worktree)
    assert out["models"]["zero_param_authors"]["checkpoint"] == "data/authors/NoParam.th"


def test_a_fresh_run_merges_into_a_table_read_from_its_file(tmp_path: Path) -> None:
    """A run holds (index, start) tuples, the file lists: the same sequences must still merge."""
    kwargs = dict(root=tmp_path, shifts=["grey"], n=2, progress=False)
    old = json.loads(json.dumps(stress.run("quick", models=["zero_param_authors"], **kwargs)))
    new = stress.run("quick", models=["learnable_authors"], **kwargs)
    merged = stress.merge(old, new)
    assert set(merged["shifts"]["grey"]["results"]) == {"zero_param_authors", "learnable_authors", "copy_last",
                                                         "oracle"}


def test_rows_of_a_model_retrained_after_the_run_are_dropped_with_a_note() -> None:
    import hashlib
    from motionseg import checkpoint as ckpt_io
    plus = ckpt_io.read(zoo.checkpoint_path("zero_param_plus"))
    sha = hashlib.sha256(zoo.checkpoint_path("learnable_plus").read_bytes()).hexdigest()
    table = {"profile": "full", "skipped": {}, "option": {"chosen": {"zero_param_plus": {"ratio": 1}}},
             "models": {"zero_param_plus": {"trained_steps": plus["step"], "trained_on": plus["provenance"]["device"]},
                        "zero_param": {"trained_steps": 12345, "trained_on": "elsewhere"},
                        "learnable_plus": {"sha256": sha},
                        "conv_pgp": {"sha256": "0" * 64}},
             "shifts": {"grey": {"results": {m: {"mse": 0.001} for m in
                                             ("zero_param_plus", "zero_param", "learnable_plus", "conv_pgp", "copy_last")}}}}
    out = results.drop_stale_stress_rows(table, results.RESULTS)
    assert set(out["models"]) == {"zero_param_plus", "learnable_plus"}
    assert set(out["shifts"]["grey"]["results"]) == {"zero_param_plus", "learnable_plus", "copy_last"}
    assert "12345 steps then" in out["skipped"]["zero_param"] and "--models conv_pgp" in out["skipped"]["conv_pgp"]
