"""The committed results are what the committed code and commands produce.

Every checkpoint under ``results/`` names an existing commit and the command that trained it;
the committed metrics equal a fresh evaluation of the committed checkpoints (on the first test
sequences, against the per-sequence numbers stored with them); the README's results section is
what ``python -m motionseg report --readme`` writes.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motionseg import checkpoint, evaluate, experiments, report, zoo

ROOT = zoo.RESULTS.parent
CHECKPOINTS = sorted(p.relative_to(ROOT) for p in zoo.RESULTS.rglob("checkpoint.pt"))
# Baselines trained before checkpoints recorded their command: on a GPU (issue 13 retrains them
# there) and in the 4-minute CPU budget runs of results/cpu_budget.
WITHOUT_COMMAND = {"conv_pgp", "vln_resnet", "vln_ldc"}


def commit_exists(commit: str) -> bool:
    out = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
    return out.returncode == 0


@pytest.mark.parametrize("path", CHECKPOINTS, ids=str)
def test_every_checkpoint_names_an_existing_commit_and_its_command(path: Path) -> None:
    ckpt = checkpoint.read(ROOT / path)
    prov = ckpt["provenance"]
    runs = prov.get("runs") or [{"commit": prov["commit"], "command": prov.get("command")}]
    for run in runs:
        assert commit_exists(run["commit"]), (path, run["commit"])
        if ckpt["version"] == 1 or run.get("command") is None:
            # written before checkpoints recorded their command (some converted to version 2 since)
            assert ckpt["model"] in WITHOUT_COMMAND, path
            assert not run["commit"].endswith("-dirty"), (path, run)
            continue
        assert not run["commit"].endswith("-dirty"), (path, run)
        assert run["command"].startswith("python -m motionseg "), (path, run)
        # reproduce trains every model (or those after --models); variants trains its table's rungs
        reproduces_all = run["command"].startswith("python -m motionseg reproduce") and "--models" not in run["command"]
        assert (f" {ckpt['model']} " in run["command"] + " " or "variants" in run["command"]
                or reproduces_all), (path, run)


def test_the_paper_models_and_ours_are_committed() -> None:
    for name in ("zero_param", "learnable", "zero_param_plus", "learnable_plus"):
        assert zoo.checkpoint_path(name).relative_to(ROOT) in CHECKPOINTS, name


N_CHECK = 3


@pytest.mark.parametrize("name", ["zero_param", "learnable", "zero_param_plus", "learnable_plus", "multi_object",
                                  "multi_object_nets",
                                  "conv_pgp", "vln_resnet", "vln_ldc"])
def test_committed_metrics_equal_a_fresh_evaluation(name: str) -> None:
    evaluate_json = json.loads((zoo.RESULTS / name / "metrics_full.json").read_text())
    committed = evaluate_json["per_sequence"]
    assert evaluate_json["n"] == len(committed["mse"]) == 1000
    assert np.mean(committed["mse"]) == pytest.approx(evaluate_json["mse"], rel=1e-4)
    # the committed checkpoint, which the file must be about (a path recorded elsewhere may be gone)
    model = zoo.load(name)
    fresh = evaluate.evaluate({name: evaluate.model_predictor(model)}, n=N_CHECK, batch_size=N_CHECK)[name]
    for metric in ("l1", "mse", "ssim"):
        np.testing.assert_allclose(fresh["per_sequence"][metric], committed[metric][:N_CHECK], rtol=2e-4, atol=1e-7,
                                   err_msg=f"{name} {metric}")


def test_metrics_of_replaced_weights_are_refused(tmp_path: Path) -> None:
    from motionseg import results
    folder = tmp_path / "zero_param"
    folder.mkdir()
    ckpt = folder / "checkpoint.pt"
    ckpt.write_bytes(zoo.checkpoint_path("zero_param").read_bytes())
    data = json.loads((zoo.RESULTS / "zero_param" / "metrics_full.json").read_text())
    data["checkpoint_sha256"] = zoo.weights_sha256("zero_param", tmp_path)
    (folder / "metrics_full.json").write_text(json.dumps(data))
    assert results.metrics("zero_param", "full", tmp_path)["mse"] == data["mse"]
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")  # retrained: other weights, the old numbers
    with pytest.raises(results.ResultsFileError, match="other weights.*motionseg evaluate zero_param"):
        results.metrics("zero_param", "full", tmp_path)
    del data["checkpoint_sha256"]  # files from before the sha256 was recorded are read as they are
    (folder / "metrics_full.json").write_text(json.dumps(data))
    assert results.metrics("zero_param", "full", tmp_path)["mse"] == data["mse"]


def test_readme_results_are_what_the_report_command_writes() -> None:
    assert report.update_readme(check=True), "run `python -m motionseg report --readme` and commit README.md"


def test_committed_checkpoints_fit_a_device_transfer() -> None:
    for path in CHECKPOINTS:
        assert (ROOT / path).stat().st_size < 17 * 2 ** 20, path  # fits the device transfer (16 MiB files)


# The working tree that travels to a lent GPU may hold 64 MiB (device tool's limits); the project
# keeps its tracked files at 40 MiB so that a session's untracked files and results still fit.
DEVICE_TREE_LIMIT = 40 * 2 ** 20


def test_the_tracked_tree_fits_the_device_transfer() -> None:
    """benchmarks/gpu_session.sh sends the tracked tree; over 64 MiB the device call is refused."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    total = sum((ROOT / name).stat().st_size for name in listed.stdout.decode().split("\0")
                if name and (ROOT / name).is_file())
    assert total <= DEVICE_TREE_LIMIT, (f"tracked files hold {total / 2 ** 20:.1f} MiB; the project keeps them at "
                                       "40 MiB (a device call takes 64 MiB)")


RESULT_FILES = sorted(p.relative_to(ROOT) for p in zoo.RESULTS.rglob("*.json"))


@pytest.mark.parametrize("path", RESULT_FILES, ids=str)
def test_every_result_file_comes_from_a_clean_commit(path: Path) -> None:
    """A result written from uncommitted code cannot be reproduced from the repository."""
    prov = json.loads((ROOT / path).read_text()).get("provenance")
    assert prov is not None, f"{path} has no provenance"
    assert not str(prov["commit"]).endswith("-dirty"), f"{path} was written at {prov['commit']}"
    assert commit_exists(prov["commit"]), f"{path} names a commit that is not in the repository: {prov['commit']}"


def test_the_selected_step_phrase_says_lowest_only_when_it_is() -> None:
    from types import SimpleNamespace

    from motionseg import results
    history = {"val_step": [100, 200, 300], "val_mse": [0.3, 0.1, 0.2]}
    best = SimpleNamespace(history=history, selected_step=200)
    assert "step 200, where its validation MSE was lowest" in results.selected_phrase(best)
    last = SimpleNamespace(history=history, selected_step=300)
    phrase = results.selected_phrase(last)
    assert "step 300" in phrase and "lower at step 200" in phrase and "lowest" not in phrase
    assert results.selected_phrase(SimpleNamespace(history={}, selected_step=None)) == ""


def test_the_init_phrase_names_the_step_and_validation_mse_of_the_source(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from motionseg import results
    weights = {"model": "zero_param", "step": 3600, "val_mse": 0.0015754, "sha256": "0" * 64}
    phrase = results.init_phrase(SimpleNamespace(provenance={"init_from": "r/zero_param/checkpoint.pt",
                                                             "init_weights": weights}), tmp_path)
    assert phrase == "It started from the weights zero_param had at step 3,600 (validation MSE 0.001575)."
    older = results.init_phrase(SimpleNamespace(provenance={"init_from": "/x/r/zero_param/checkpoint.pt"}))
    assert "not the committed" not in phrase  # no zero_param under that root: nothing to compare
    assert "zero_param/checkpoint.pt" in older and "step" not in older
    assert results.init_phrase(SimpleNamespace(provenance={})) == ""


def test_the_init_phrase_says_when_the_source_was_trained_again(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from motionseg import results, zoo
    source = zoo.checkpoint_path("zero_param", tmp_path)
    source.parent.mkdir(parents=True)
    source.write_bytes(b"the weights learnable started from")
    weights = {"model": "zero_param", "step": 3600, "sha256": zoo.weights_sha256("zero_param", tmp_path)}
    model = SimpleNamespace(provenance={"init_weights": weights})
    assert results.init_phrase(model, tmp_path) == "It started from the weights zero_param had at step 3,600."
    source.write_bytes(b"zero_param trained again")
    assert "not the committed zero_param weights" in results.init_phrase(model, tmp_path)


def _start_file(root: Path, train: str, runs: dict, n_val: int = 4, steps: int = 4, floor: float | None = None,
                folder: str = "", learnable: float = 0.0021) -> None:
    start = {"zero_param": 0.002, "learnable": learnable, "learnable, networks off": 0.0019}
    body = {"steps": steps, "n_val": n_val, "train": train, "start": start, "provenance": {"command": train},
            "init_weights": {"model": "zero_param", "step": 7, "val_mse": 0.002, "sha256": "ab"},
            "runs": {lr: {"loss_per_25_steps": loss, "val_step": [2, 4], "val_mse": val} for lr, (loss, val) in runs.items()}}
    if floor is not None:
        body["grad_floor"] = floor
    name = ("learnable_start.json" if train == "all" else f"learnable_start_{train}.json").replace(
        ".json", ".json" if floor is None else f"_floor{floor:g}.json")
    (root / "benchmarks" / folder).mkdir(parents=True, exist_ok=True)
    (root / "benchmarks" / folder / name).write_text(json.dumps(body))


def test_learnable_start_tables_every_run_from_the_shared_start(tmp_path: Path) -> None:
    from motionseg import experiments
    with pytest.raises(FileNotFoundError, match="learnable_start"):
        experiments.learnable_start(tmp_path)
    _start_file(tmp_path, "all", {"0.002": ([0.3, 0.4], [0.0025, 0.0027]), "0.0002": ([0.3, 0.35], [0.0022, 0.0023])})
    _start_file(tmp_path, "nets", {"0.002": ([0.5, 0.6], [0.003, 0.0029])})
    frame = experiments.learnable_start(tmp_path)
    assert list(frame.index) == ["all parameters, 0.002", "all parameters, 0.0002", "the networks only, 0.002"]
    assert frame.loc["the networks only, 0.002", "step 4"] == 0.0029
    assert frame.loc["all parameters, 0.0002", "loss, last 25 steps"] == 0.35
    assert (frame["step 0"] == 0.0021).all() and frame.attrs["n"] == 4
    assert frame.attrs["init_weights"]["step"] == 7
    assert "loss, last 25 steps, over the start's" not in frame.columns
    _start_file(tmp_path, "baseline", {"0": ([0.3, 0.5], [0.0021, 0.0021])})
    frame = experiments.learnable_start(tmp_path)
    assert frame.loc["nothing (learning rate 0)", "trains"] == experiments.UNTRAINED
    assert frame.loc["the networks only, 0.002", "loss, last 25 steps, over the start's"] == pytest.approx(0.2)
    # a run with the gradient floor has a row of its own beside the exact gradient's at the same rate
    _start_file(tmp_path, "nets", {"0.002": ([0.5, 0.45], [0.0021, 0.002])}, floor=1e-4)
    frame = experiments.learnable_start(tmp_path)
    assert frame.loc["the networks only, 0.002, gradient floor 0.0001", "step 4"] == 0.002
    assert frame.loc["the networks only, 0.002", "gradient"] == "exact"
    assert frame.loc["the networks only, 0.002, gradient floor 0.0001", "gradient"] == "floor 0.0001"
    assert frame.loc["the networks only, 0.002, gradient floor 0.0001", "loss, last 25 steps, over the start's"] == \
        pytest.approx(-0.1)
    _start_file(tmp_path, "gains", {"0.002": ([0.3, 0.3], [0.002, 0.002])}, n_val=8)
    with pytest.raises(ValueError, match="learnable_start_gains.json measured another start"):
        experiments.learnable_start(tmp_path)
    _start_file(tmp_path, "gains", {"0.002": ([0.3, 0.3], [0.002, 0.002])}, steps=8)  # other batches
    with pytest.raises(ValueError, match="another number of steps"):
        experiments.learnable_start(tmp_path)


def test_learnable_start_from_another_start_is_a_table_of_its_own(tmp_path: Path) -> None:
    from motionseg import experiments
    _start_file(tmp_path, "all", {"0.0002": ([0.3, 0.35], [0.0022, 0.0023])})
    # runs from another start sit in a folder of their own: neither table mixes them with the other's
    _start_file(tmp_path, "all", {"5e-05": ([0.3, 0.28], [0.0013, 0.0014])}, floor=1e-3, folder="new", learnable=0.0012)
    _start_file(tmp_path, "baseline", {"0": ([0.3, 0.29], [0.0012, 0.0012])}, folder="new", learnable=0.0012)
    top, new = experiments.learnable_start(tmp_path), experiments.learnable_start(tmp_path, "new")
    assert list(top.index) == ["all parameters, 0.0002"] and (top["step 0"] == 0.0021).all()
    assert sorted(new.index) == ["all parameters, 5e-05, gradient floor 0.001", "nothing (learning rate 0)"]
    assert (new["step 0"] == 0.0012).all()
    assert new.loc["all parameters, 5e-05, gradient floor 0.001", "loss, last 25 steps, over the start's"] == \
        pytest.approx(0.28 / 0.29 - 1)
    with pytest.raises(FileNotFoundError, match="learnable_start"):
        experiments.learnable_start(tmp_path, "elsewhere")


def test_gradient_check_averages_the_batches_relative_to_each_loss(tmp_path: Path) -> None:
    from motionseg import experiments
    runs = [{"model": "m", "parameters": "networks", "floor": floor, "batch": b, "loss": loss, "norm": norm,
             "change": [change], "predicted": [-0.1 * norm]}
            for b, loss in enumerate([0.002, 0.004])
            for floor, norm, change in [(None, 60.0 * (b + 1), 0.0001), (1e-4, 0.002, -0.0002)]]
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "gradient_floor.json").write_text(json.dumps(
        {"batches": 2, "batch_size": 16, "steps": [0.1], "floors": [None, 1e-4], "runs": runs, "provenance": {},
         "init_weights": {"model": "zero_param", "step": 9}}))
    frame = experiments.gradient_check(tmp_path).set_index("gradient")
    assert list(frame.index) == ["exact", "floor 0.0001"] and frame.attrs["init_weights"]["step"] == 9
    assert frame.loc["exact", "gradient norm"] == pytest.approx(90.0)
    # each batch's change relative to its own loss, then the mean: (0.05 + 0.025) / 2
    assert frame.loc["exact", "loss change, step 0.1"] == pytest.approx(0.0375)
    assert frame.loc["floor 0.0001", "loss change, step 0.1"] == pytest.approx(-0.075)
    assert frame.loc["exact", "predicted, step 0.1"] == pytest.approx(-(6 / 0.002 + 12 / 0.004) / 2)


def test_restart_cycles_give_each_restart_its_peak_and_best() -> None:
    from motionseg import experiments
    history = {"val_step": [100, 200, 300, 400, 500, 600], "val_mse": [0.5, 0.3, 0.4, 0.35, 0.32, 0.29],
               "restarts": [200, 400]}
    cycles = experiments.restart_cycles(history, {"cycle_steps": 200, "lr": 0.02, "restart_factor": 0.5})
    assert list(cycles["step"]) == [200, 400]
    assert list(cycles["peak learning rate"]) == pytest.approx([0.01, 0.005])
    assert list(cycles["best validation MSE of the cycle"]) == [0.35, 0.29]
    assert cycles.attrs == {"best_before": 0.3, "best_before_step": 200}
    assert experiments.restart_cycles({**history, "restarts": []}, {}).empty


def test_committed_zero_param_knows_the_committed_weights_by_bytes_or_by_kept_step() -> None:
    from motionseg import checkpoint, experiments, zoo
    ckpt = checkpoint.read(zoo.checkpoint_path("zero_param"))
    step = ckpt["selected"]["step"]
    val = ckpt["history"]["val_mse"][ckpt["history"]["val_step"].index(step)]
    assert experiments.committed_zero_param({"sha256": zoo.weights_sha256("zero_param")})
    assert experiments.committed_zero_param({"sha256": "other bytes", "step": step, "val_mse": val})
    assert not experiments.committed_zero_param({"sha256": "other bytes", "step": step, "val_mse": val * 1.01})
    assert not experiments.committed_zero_param({"sha256": "other bytes", "step": 2200, "val_mse": 0.002235637126432266})
    assert experiments.committed_zero_param(None)


def test_training_floor_note_says_which_run_reached_its_floor_and_what_the_gradient_floor_did(tmp_path: Path) -> None:
    """The committed zero_param (gradient floor) and its predecessor with the exact gradient (restarts)."""
    import shutil
    from motionseg import checkpoint, experiments, zoo
    floored = zoo.checkpoint_path("zero_param")
    exact = zoo.RESULTS / "benchmarks" / "zero_param_exact_gradient" / "checkpoint.pt"
    assert checkpoint.read(floored)["config"]["grad_floor"] and not checkpoint.read(exact)["config"].get("grad_floor")
    # the exact-gradient run alone, as the kept one: its restarts end the recipe
    (tmp_path / "zero_param").mkdir()
    shutil.copy(exact, tmp_path / "zero_param" / "checkpoint.pt")
    note = experiments.training_floor_note(tmp_path)
    assert note.startswith("Our zero-parameter run reached its floor: 2 restarts")
    assert "longer training of this recipe does not close" in note and "gradient floor" not in note
    # the floored run kept, the exact one beside it: the restarts are that run's, the floor's run is reported
    shutil.copy(floored, tmp_path / "zero_param" / "checkpoint.pt")
    (tmp_path / "benchmarks" / "zero_param_exact_gradient").mkdir(parents=True)
    shutil.copy(exact, tmp_path / "benchmarks" / "zero_param_exact_gradient" / "checkpoint.pt")
    note = experiments.training_floor_note(tmp_path)
    assert note.startswith("With the exact gradient, our zero-parameter run reached its floor")
    assert "does not close" not in note
    best = min(checkpoint.read(floored)["history"]["val_mse"])
    assert f"Trained with the gradient floor 0.0001" in note and f"reaches {best:.6f}" in note


def test_training_floor_note_counts_the_trained_runs_only(tmp_path: Path) -> None:
    import shutil
    from motionseg import experiments, zoo
    (tmp_path / "zero_param").mkdir()
    shutil.copy(zoo.checkpoint_path("zero_param"), tmp_path / "zero_param" / "checkpoint.pt")
    _start_file(tmp_path, "all", {"0.002": ([0.3, 0.4], [0.0025, 0.0027]), "0.0002": ([0.3, 0.35], [0.0022, 0.0023])})
    _start_file(tmp_path, "untrained", {"0": ([0.3, 0.3], [0.0021, 0.0021])})
    note = experiments.training_floor_note(tmp_path)
    assert "in all 2 runs tried" in note and "peak learning rates 0.0002 to 0.002" in note
    assert experiments.UNTRAINED not in note


def test_start_runs_phrase_names_the_floor_and_the_loss_against_the_start(tmp_path: Path) -> None:
    from motionseg import experiments
    _start_file(tmp_path, "all", {"5e-05": ([0.3, 0.28], [0.0020, 0.0022])}, floor=1e-3)
    _start_file(tmp_path, "baseline", {"0": ([0.3, 0.29], [0.0021, 0.0021])})
    said = experiments.start_runs_phrase(experiments.learnable_start(tmp_path))
    assert said.startswith("Every run ends above the start on validation")
    assert "Training all parameters: at 5e-05 with the floor 0.001, 0.002100 to 0.002200, loss -3.4 %." in said
    _start_file(tmp_path, "nets", {"5e-05": ([0.3, 0.3], [0.0020, 0.0020])})
    said = experiments.start_runs_phrase(experiments.learnable_start(tmp_path))
    assert said.startswith("Some runs end below the start on validation (the networks only, 5e-05)")
    assert "Training the networks only: at 5e-05, 0.002100 to 0.002000" in said


def test_learnable_run_note_says_whether_training_beat_the_start(tmp_path: Path) -> None:
    from motionseg import checkpoint, experiments, zoo
    model = zoo.build("learnable")
    path = tmp_path / "learnable" / "checkpoint.pt"

    def save(val_step: list[int], val_mse: list[float], selected: int, floor: float | None = 1e-3) -> str:
        config = {"model": "learnable", "lr": 5e-5, "grad_floor": floor}
        record = {"step": selected, "val_mse": val_mse[val_step.index(selected)], "rule": "lowest validation MSE"}
        checkpoint.save(path, model, "learnable", 128, step=300, config=config, provenance={},
                        history={"step": [], "loss": [], "val_step": val_step, "val_mse": val_mse},
                        selected=(model.state_dict(), record))
        return experiments.learnable_run_note(tmp_path)

    kept = save([0, 100, 200, 300], [0.0014, 0.00142, 0.00141, 0.00145], 0)
    assert kept.startswith("The committed run trained with the gradient floor 0.001 at a peak learning rate of 5e-05 "
                           "for 300 steps; no validation beat its start's (0.001400; the lowest after it 0.001410, step 200)")
    lowered = save([0, 100, 200, 300], [0.0014, 0.0013, 0.00126, 0.0013], 200)
    assert lowered.endswith("lowered the validation MSE from its start's 0.001400 to 0.001260 (step 200, 10.0 % lower).")
    old = save([100, 200], [0.0018, 0.0019], 100, floor=None)
    assert "with the exact gradient" in old and "predates validating the start" in old


def test_learnable_run_note_names_the_zero_param_weights_it_started_from(tmp_path: Path) -> None:
    import shutil
    from motionseg import checkpoint, experiments, zoo
    (tmp_path / "zero_param").mkdir()
    shutil.copy(zoo.checkpoint_path("zero_param"), tmp_path / "zero_param" / "checkpoint.pt")
    model, path = zoo.build("learnable"), tmp_path / "learnable" / "checkpoint.pt"
    for sha, said in ((zoo.weights_sha256("zero_param"), "from the committed zero_param with"),
                      ("other weights", "from zero_param's earlier weights (step 3,600) with")):
        weights = {"model": "zero_param", "step": 3600, "val_mse": 0.0015, "sha256": sha}
        checkpoint.save(path, model, "learnable", 128, step=100, config={"lr": 5e-5, "grad_floor": 1e-3},
                        provenance={"init_weights": weights},
                        history={"step": [], "loss": [], "val_step": [0, 100], "val_mse": [0.0014, 0.0013]},
                        selected=(model.state_dict(), {"step": 100, "val_mse": 0.0013}))
        assert said in experiments.learnable_run_note(tmp_path)
    # chapter 07's note on training ends with it
    assert experiments.training_floor_note(tmp_path).endswith(
        "The committed learnable run trained from zero_param's earlier weights (step 3,600) with the gradient floor "
        "0.001 at a peak learning rate of 5e-05 for 100 steps and lowered the validation MSE from its start's 0.001400 "
        "to 0.001300 (step 100, 7.1 % lower).")


def _gap_file(root: Path, ours: float, theirs: float) -> None:
    conditions = ["photos", "photos, true T", "grey", "grey, true T"]
    rows = {name: {c: {"mse": 0.003} for c in conditions}
            for name in ("zero_param_authors", "zero_param", "learnable_authors", "learnable")}
    rows["oracle"] = {"photos": {"mse": 4e-5}, "grey": {"mse": 3e-5}}
    rows["learnable"]["grey"]["mse"], rows["learnable_authors"]["grey"]["mse"] = ours, theirs
    (root / "benchmarks").mkdir(parents=True, exist_ok=True)
    (root / "benchmarks" / "paper_gap_full.json").write_text(json.dumps({"n": 8, "conditions": conditions, "rows": rows}))


@pytest.mark.parametrize("ours, theirs, phrase", [
    (0.0001, 0.0009, "ours falls below the paper's row, the authors' weights do not"),
    (0.0009, 0.0001, "the authors' weights fall below the paper's row, ours do not"),
    (0.0001, 0.0001, "both sets of weights fall below the paper's row"),
    (0.0003, 0.0009, "neither set of weights falls below the paper's row")])
def test_the_gap_phrases_compare_each_weights_with_the_paper_row(tmp_path: Path, ours: float, theirs: float,
                                                                 phrase: str) -> None:
    _gap_file(tmp_path, ours, theirs)
    frame = experiments.paper_gap(tmp_path)
    assert frame.loc["learnable", "paper MSE"] == 0.0002 and frame.loc["zero_param", "paper MSE"] == 0.0010
    assert frame.loc["learnable", "grey"] == ours and np.isnan(frame.loc["oracle", "grey, true T"])
    phrases = experiments.paper_gap_phrases(frame)
    assert phrases["gap_learnable_grey_verdict"] == phrase
    assert phrases["gap_zero_param_grey_verdict"] == "neither set of weights falls below the paper's row"  # 0.003 > 0.0010
    assert phrases["gap_learnable_both_verdict"] == "neither set of weights falls below the paper's row"  # its own column
    assert phrases["gap_reach"] == "neither model trained by us reaches its row"
    assert phrases["gap_authors_above"] == "in some columns only"  # the other columns are equal


def test_the_gap_reach_names_the_model_that_reaches_its_row(tmp_path: Path) -> None:
    _gap_file(tmp_path, 0.003, 0.003)
    frame = experiments.paper_gap(tmp_path)
    frame.loc["zero_param", "grey, true T"] = 0.0009  # below 0.0010
    assert experiments.paper_gap_phrases(frame)["gap_reach"] == (
        "of the models trained by us only the zero-parameter model reaches its row")
    frame.loc["learnable", "grey, true T"] = 0.0002  # at the row counts as reaching it
    assert experiments.paper_gap_phrases(frame)["gap_reach"] == "both models trained by us reach the paper's rows"
    for name in ("zero_param_authors", "learnable_authors"):
        frame.loc[name, ["photos", "photos, true T", "grey", "grey, true T"]] = 0.004  # above ours everywhere
    assert experiments.paper_gap_phrases(frame)["gap_authors_above"] == "in every column"


def _readings(*init_val: float) -> pd.DataFrame:
    rows = {"zero_param_authors": {"variant": "chosen", "validation MSE": 0.0020, "velocity error": 0.25}}
    for i, val in enumerate(init_val):
        rows[f"init_{i}"] = {"variant": f"candidate {i}", "validation MSE": val, "velocity error": 0.4}
    return pd.DataFrame(rows).T


def test_the_init_block_phrase_names_a_better_reading_and_whether_it_decides() -> None:
    assert experiments.init_block_phrase(_readings(0.0021, 0.0030)).startswith("None of them")
    small = experiments.init_block_phrase(_readings(0.0021, 0.00198))
    assert small.startswith('Only one predicts better ("candidate 1"), by 1.0 %') and "we keep" in small
    assert "1 of the 2 predict worse" in small
    large = experiments.init_block_phrase(_readings(0.0019, 0.0016))
    assert '2 of them predict better ("candidate 1", the best), by 20.0 %' in large and "should replace" in large
    with pytest.raises(ValueError, match="no init_"):
        experiments.init_block_phrase(_readings())
