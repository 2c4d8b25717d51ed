"""Tests of the command line, through ``main([...])`` into temporary folders."""
from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from motionseg import checkpoint, zoo
from motionseg.__main__ import main


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch) -> Path:
    """Run in an empty folder, with the quick profile and the CPU whatever the machine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOTIONSEG_PROFILE", "quick")
    monkeypatch.delenv("MOTIONSEG_DEVICE", raising=False)
    return tmp_path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_train_resume_and_refuse_to_overwrite(in_tmp: Path, capsys) -> None:
    assert main(["train", "zero_param", "--steps", "1"]) == 0
    out = in_tmp / "runs" / "zero_param" / "checkpoint.pt"  # runs/, never the committed results/
    ckpt = checkpoint.read(out)
    assert ckpt["step"] == 1 and ckpt["config"]["steps"] == 1
    assert ckpt["provenance"]["command"].startswith("python")
    capsys.readouterr()
    assert main(["train", "zero_param", "--steps", "1"]) == 1
    assert "exists: pass --resume" in one_line_error(capsys)
    assert main(["train", "zero_param", "--steps", "2", "--resume"]) == 0
    assert checkpoint.read(out)["step"] == 2
    assert main(["train", "zero_param", "--steps", "1", "--force"]) == 0
    assert checkpoint.read(out)["step"] == 1


def test_train_takes_a_gradient_floor_and_refuses_one_outside_zero_to_one(in_tmp: Path, capsys) -> None:
    assert main(["train", "zero_param", "--steps", "1", "--grad-floor", "0.001"]) == 0
    assert checkpoint.read(in_tmp / "runs" / "zero_param" / "checkpoint.pt")["config"]["grad_floor"] == 0.001
    capsys.readouterr()
    assert main(["train", "zero_param", "--steps", "1", "--force", "--grad-floor", "2"]) == 1
    assert "grad_floor is a fraction of each spectrum's peak in (0, 1), got 2.0" in one_line_error(capsys)
    # the refused run replaced nothing
    assert checkpoint.read(in_tmp / "runs" / "zero_param" / "checkpoint.pt")["config"]["grad_floor"] == 0.001


def test_train_stops_at_its_time_limit_with_a_resumable_checkpoint(in_tmp: Path, capsys) -> None:
    assert main(["train", "zero_param", "--steps", "3", "--minutes", "0.00001"]) == 0
    assert "stopped at step 1 of 3" in capsys.readouterr().out
    assert main(["train", "zero_param", "--steps", "3", "--resume"]) == 0
    assert checkpoint.read(in_tmp / "runs" / "zero_param" / "checkpoint.pt")["step"] == 3


def test_evaluate_writes_metrics_to_runs_by_default(in_tmp: Path) -> None:
    assert main(["evaluate", "zero_param", "--n", "3"]) == 0
    res = json.loads((in_tmp / "runs" / "zero_param" / "metrics_quick.json").read_text())
    assert res["n"] == 3 and len(res["per_sequence"]["mse"]) == 3
    # the committed checkpoint, named as in every clone, and the weights' sha256 (tables check it)
    assert res["checkpoint"] == "results/zero_param/checkpoint.pt"
    assert res["checkpoint_sha256"] == zoo.weights_sha256("zero_param")
    assert res["provenance"]["command"].startswith("python")
    for name in ("copy_last", "oracle"):
        assert (in_tmp / "runs" / name / "metrics_quick.json").is_file()


def test_evaluate_leaves_the_reference_files_alone_when_their_numbers_are_the_same(in_tmp: Path, capsys) -> None:
    # evaluating another model recomputes copy_last and the oracle; the same numbers are not
    # written again (their provenance stays), other numbers (another n) are
    floor = in_tmp / "runs" / "copy_last" / "metrics_quick.json"
    assert main(["evaluate", "zero_param", "--n", "2"]) == 0
    before = floor.read_bytes()
    assert main(["evaluate", "zero_param_plus", "--n", "2", "--force"]) == 0
    assert floor.read_bytes() == before
    assert "copy_last       unchanged" in capsys.readouterr().out
    assert (in_tmp / "runs" / "zero_param_plus" / "metrics_quick.json").is_file()
    assert main(["evaluate", "zero_param_plus", "--n", "3", "--force"]) == 0
    assert json.loads(floor.read_text())["n"] == 3


def test_evaluate_refuses_to_replace_committed_metrics(in_tmp: Path, capsys) -> None:
    committed = zoo.RESULTS / "zero_param" / "metrics_full.json"
    before = committed.read_bytes()
    assert main(["evaluate", "zero_param", "--n", "2", "--profile", "full", "--out", str(zoo.RESULTS)]) == 1
    assert "would replace committed results" in one_line_error(capsys)
    assert committed.read_bytes() == before


def test_reproduce_trains_and_evaluates_into_its_folder(in_tmp: Path) -> None:
    assert main(["reproduce", "--models", "zero_param", "--minutes", "0.00001", "--n", "2"]) == 0
    root = in_tmp / "runs" / "quick"
    assert checkpoint.read(root / "zero_param" / "checkpoint.pt")["step"] == 1
    assert json.loads((root / "zero_param" / "metrics_quick.json").read_text())["n"] == 2


@pytest.mark.parametrize("argv, message", [
    (["train", "zero_param", "--steps", "0"], "--steps: must be a whole number in [1, 100,000,000]"),
    (["train", "zero_param", "--steps", "-5"], "--steps: must be a whole number in [1, 100,000,000]"),
    (["train", "zero_param", "--minutes", "0"], "--minutes: must be a number of minutes > 0"),
    (["train", "zero_param", "--minutes", "-1"], "--minutes: must be a number of minutes > 0"),
    (["evaluate", "zero_param", "--n", "0"], "--n: must be a whole number in [1, 10,000,000]"),
    (["evaluate", "zero_param", "--n", "-3"], "--n: must be a whole number in [1, 10,000,000]"),
    (["evaluate"], "the following arguments are required: MODEL"),
    (["train", "nope"], "invalid choice: 'nope'"),
])
def test_bad_arguments_are_one_argparse_line(in_tmp: Path, capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("env, argv, message", [
    ({"MOTIONSEG_PROFILE": "bogus"}, ["train", "zero_param", "--steps", "1"], "unknown profile 'bogus'"),
    ({"MOTIONSEG_DEVICE": "cuda"}, ["train", "zero_param", "--steps", "1"], "has no CUDA"),
    ({}, ["evaluate", "zero_param", "--results", "nowhere"], "no checkpoint at nowhere/zero_param/checkpoint.pt"),
])
def test_library_errors_are_one_line(in_tmp: Path, capsys, monkeypatch, env: dict, argv: list[str],
                                     message: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if env.get("MOTIONSEG_DEVICE") == "cuda":
        monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(argv) == 1
    assert message in one_line_error(capsys)


def test_resume_with_other_settings_is_one_line(in_tmp: Path, capsys) -> None:
    assert main(["train", "zero_param", "--steps", "1"]) == 0
    capsys.readouterr()
    assert main(["train", "zero_param", "--steps", "1", "--resume", "--profile", "full"]) == 1
    assert "cannot resume" in one_line_error(capsys)


def test_resume_after_the_recipe_changed_its_options_names_the_setting(in_tmp: Path, capsys, monkeypatch) -> None:
    """learnable's committed run predates its DoG start: --resume must say why and what to do."""
    assert main(["train", "zero_param", "--steps", "1"]) == 0
    capsys.readouterr()
    quick = dict(zoo.TRAINING["zero_param"]["quick"], options=None)
    monkeypatch.setitem(zoo.TRAINING, "zero_param", {**zoo.TRAINING["zero_param"], "quick": quick})
    assert main(["train", "zero_param", "--steps", "2", "--resume"]) == 1
    message = one_line_error(capsys)
    assert "cannot resume" in message and "options: checkpoint" in message and "--force" in message


# -- issue 23: one-line errors and no overwritten work ----------------------------------------------

@pytest.fixture()
def results_copy(tmp_path: Path, monkeypatch) -> Path:
    """A stand-in for results/ (links to the committed files) and README.md, for report and reproduce."""
    from motionseg import report, results
    root = tmp_path / "results"
    for name in (*results.PAPER_ROWS, *results.OUR_ROWS, *results.REFERENCE_ROWS):
        (root / name).mkdir(parents=True)
        for f in (zoo.RESULTS / name).glob("*"):
            if f.name in ("checkpoint.pt", "resume.pt"):
                (root / name / f.name).symlink_to(f)
            elif f.name.startswith("metrics_"):
                (root / name / f.name).write_bytes(f.read_bytes())
    readme = tmp_path / "README.md"
    readme.write_text(report.README.read_text())
    monkeypatch.setattr(results, "RESULTS", root)
    monkeypatch.setattr(zoo, "RESULTS", root)
    monkeypatch.setattr(report, "README", readme)
    return root


def empty_checkpoint(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize("command", ["evaluate", "train --resume", "report --readme"])
def test_an_empty_checkpoint_is_one_line(in_tmp: Path, results_copy: Path, capsys, command: str) -> None:
    if command == "evaluate":
        empty_checkpoint(in_tmp / "ckpts" / "zero_param" / "checkpoint.pt")
        argv = ["evaluate", "zero_param", "--results", "ckpts", "--n", "1"]
    elif command == "train --resume":
        empty_checkpoint(in_tmp / "runs" / "zero_param" / "checkpoint.pt")
        argv = ["train", "zero_param", "--steps", "1", "--resume"]
    else:
        empty_checkpoint(results_copy / "zero_param" / "checkpoint.pt")
        argv = ["report", "--readme"]
    assert main(argv) == 1
    assert "checkpoint.pt is empty (0 bytes)" in one_line_error(capsys)


@pytest.mark.parametrize("size", [0, 1, 100])
def test_a_cut_off_checkpoint_is_one_line_from_the_library(tmp_path: Path, size: int) -> None:
    path = tmp_path / "c.pt"
    path.write_bytes(zoo.checkpoint_path("zero_param").read_bytes()[:size])
    with pytest.raises(ValueError) as err:
        zoo.load("zero_param", path)
    assert str(path) in str(err.value) and "\n" not in str(err.value).strip()


def test_steps_and_counts_are_bounded_when_parsed(in_tmp: Path, capsys) -> None:
    for argv in (["train", "zero_param", "--steps", "100000000000000000000"],
                 ["evaluate", "zero_param", "--n", "100000000000000000000"],
                 ["reproduce", "--n", "10" * 30],
                 ["stress", "--n", "99999999999"],
                 ["train", "zero_param", "--minutes", "inf"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert ("must be a whole number in [1, " in err or "must be a number of minutes > 0" in err), err
    assert not (in_tmp / "runs").exists()


def _corrupt(path: Path, how: str) -> None:
    data = json.loads(path.read_text())
    if how == "missing key":
        del data["mse"]
    elif how == "string":
        data["mse"] = "0.001"
    elif how == "NaN":
        data["mse"] = float("nan")
    elif how == "list":
        data = [data]
    text = json.dumps(data)
    path.write_text(text[: len(text) // 2] if how == "truncated" else text)


@pytest.mark.parametrize("how, message", [
    ("missing key", "the key 'mse' is missing"), ("string", "'mse' must be a number, got '0.001'"),
    ("NaN", "'mse' must be a finite number, got nan"), ("list", "must hold a JSON object of results, not a list"),
    ("truncated", "is not valid JSON"),
])
def test_report_on_a_malformed_metrics_file_is_one_line(results_copy: Path, capsys, how: str, message: str) -> None:
    from motionseg import report
    before = report.README.read_text()
    bad = results_copy / "learnable" / "metrics_full.json"
    _corrupt(bad, how)
    assert main(["report", "--readme"]) == 1
    err = one_line_error(capsys)
    assert str(bad) in err and message in err, err
    assert report.README.read_text() == before


def test_report_on_a_malformed_variants_table_is_one_line(results_copy: Path, capsys) -> None:
    committed = Path(__file__).resolve().parents[1] / "results" / "variants" / "ladder" / "table_full.json"
    table = json.loads(committed.read_text())
    del table["rows"][2]["test"]["mse"]
    path = results_copy / "variants" / "ladder" / "table_full.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(table))
    assert main(["report", "--readme"]) == 1
    assert f"{path}: row 2 test['mse'] must be a number, got None" in one_line_error(capsys)


def test_stress_refuses_a_model_asked_for_without_a_checkpoint(in_tmp: Path, capsys, monkeypatch) -> None:
    from motionseg import stress

    def no_work(*args, **kwargs):
        raise AssertionError("the stress run started although a model asked for has no checkpoint")

    monkeypatch.setattr(stress, "choose_option", no_work)
    (in_tmp / "ckpts").mkdir()
    assert main(["stress", "--models", "zero_param", "--results", "ckpts", "--n", "1"]) == 1
    assert "no checkpoint at ckpts/zero_param/checkpoint.pt" in one_line_error(capsys)
    assert not (in_tmp / "runs").exists()


def test_stress_merge_runs_the_tables_sets_and_refuses_a_new_set_for_some_models(in_tmp: Path, capsys,
                                                                                monkeypatch) -> None:
    from motionseg import stress
    seen = {}

    def fake_run(profile, root, models=None, shifts=None, n=None, option=None):
        seen.update(models=models, shifts=shifts, option=option)
        return {"profile": "quick", "n": 1, "models": {m: {} for m in models}, "skipped": {}, "option": option,
                "provenance": {}, "shifts": {s: {"sequences": [[0, 0]], "results": {m: {"mse": 0.1} for m in models}}
                                             for s in shifts}}
    monkeypatch.setattr(stress, "run", fake_run)
    table = {"profile": "quick", "n": 1, "models": {}, "skipped": {}, "option": {"chosen": {}},
             "provenance": {}, "sets": ["standard", "horizon", "grey"],
             "shifts": {s: {"sequences": [[0, 0]], "results": {}} for s in ("standard", "horizon", "grey")}}
    target = in_tmp / "runs" / "stress" / "stress_quick.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(table))
    assert main(["stress", "--models", "zero_param_authors", "--merge", "--n", "1"]) == 0
    assert seen["shifts"] == ["horizon", "grey"] and seen["option"] == {"chosen": {}}  # the table's sets and option
    merged = json.loads(target.read_text())
    assert merged["shifts"]["grey"]["results"]["zero_param_authors"] == {"mse": 0.1}
    seen.clear()
    capsys.readouterr()
    assert main(["stress", "--models", "zero_param_authors", "--shifts", "three_digits", "--merge", "--n", "1"]) == 1
    assert "three_digits are not in the table" in one_line_error(capsys) and not seen  # refused before any work


def test_reproduce_refuses_to_replace_committed_metrics_before_any_work(in_tmp: Path, results_copy: Path, capsys,
                                                                       monkeypatch) -> None:
    import motionseg.__main__ as cli
    committed = results_copy / "zero_param" / "metrics_full.json"
    before = committed.read_bytes()

    def no_work(*args, **kwargs):
        raise AssertionError("reproduce trained before checking its outputs")

    monkeypatch.setattr(cli, "train", no_work)
    assert main(["reproduce", "--profile", "full", "--models", "zero_param", "--n", "1"]) == 1
    assert "would replace committed results" in one_line_error(capsys)
    assert committed.read_bytes() == before


def test_reproduce_with_force_replaces_committed_metrics(in_tmp: Path, results_copy: Path) -> None:
    committed = results_copy / "zero_param" / "metrics_full.json"
    assert json.loads(committed.read_text())["n"] == 1000
    assert main(["reproduce", "--profile", "full", "--models", "zero_param", "--n", "1", "--force"]) == 0
    assert json.loads(committed.read_text())["n"] == 1


def test_variants_refuses_to_replace_a_committed_table_before_any_work(in_tmp: Path, results_copy: Path, capsys,
                                                                       monkeypatch) -> None:
    committed = results_copy / "variants" / "ladder" / "table_quick.json"
    committed.parent.mkdir(parents=True)
    committed.write_text("{}")
    _no_work(monkeypatch)
    assert main(["variants", "ladder", "--results", str(results_copy / "variants")]) == 1
    assert "would replace committed results" in one_line_error(capsys)
    assert committed.read_text() == "{}"

@pytest.mark.parametrize("argv, expected", [
    (["train", "zero_param", "--steps", "3", "--force"], "python -m motionseg train zero_param --steps 3 --resume"),
    (["train", "zero_param", "--resume", "--results", "my runs"],
     "python -m motionseg train zero_param --results 'my runs' --resume"),
    (["reproduce", "--models", "zero_param", "--minutes", "2"],
     "python -m motionseg reproduce --models zero_param --minutes 2"),
    (["variants", "ladder", "--results", "v"], "python -m motionseg variants ladder --results v"),
])
def test_after_ctrl_c_the_command_that_resumes_is_printed(in_tmp: Path, capsys, monkeypatch, argv: list[str],
                                                         expected: str) -> None:
    import motionseg.__main__ as cli
    from motionseg import train as train_module, variants

    def interrupted(cfg, out, *args, **kwargs):
        raise train_module.Interrupted(1, Path(out))

    monkeypatch.setattr(cli, "train", interrupted)
    monkeypatch.setattr(variants, "train", interrupted)
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"continue with: {expected}"), err
    # and that command is accepted: it resumes (train) or is the same command (the others resume by themselves)
    again = cli.parser().parse_args(shlex.split(expected)[3:])
    assert getattr(again, "resume", True) and not getattr(again, "force", False)


def _resumed_at_3000(asked: list[int], val_mse_at, restart_at_3000: bool = False):
    """A stand-in for ``train`` of a run that already stands at step 3,000 when resumed: it records
    the steps asked for and returns the curve ``val_mse_at(step)`` up to them (validated every 100
    steps), with a restart at step 3,000 once past it if ``restart_at_3000``."""
    from motionseg.train import History

    def fake_train(cfg, out, *args, **kwargs):
        asked.append(cfg.steps)
        last = max(cfg.steps, 3000)
        steps = list(range(100, last + 1, 100))
        return None, History(step=steps, val_step=steps, val_mse=[val_mse_at(s) for s in steps],
                             restarts=[3000] if restart_at_3000 and last > 3000 else [])
    return fake_train


def test_until_converged_resumed_past_the_recipe_adds_one_cycle_at_a_time(in_tmp: Path, capsys,
                                                                          monkeypatch) -> None:
    import motionseg.__main__ as cli

    asked: list[int] = []
    # its curve flattens after step 3,500
    monkeypatch.setattr(cli, "train", _resumed_at_3000(asked, lambda s: 1 / min(s, 3500)))
    assert main(["train", "zero_param", "--resume", "--until-converged"]) == 0
    recipe = zoo.training_config("zero_param", "quick")
    assert asked[0] == recipe.steps < 3000 and len(asked) > 2
    assert asked[1:] == [3000 + k * recipe.cycle_steps for k in range(1, len(asked))]
    judged = [line for line in capsys.readouterr().out.splitlines() if "better than at 3/4" in line]
    assert len(judged) == len(asked) and len({line.split(":")[0] for line in judged}) == len(judged)
    assert judged[-1].endswith(": converged")


def test_until_converged_does_not_extend_a_cosine_schedule(in_tmp: Path, capsys, monkeypatch) -> None:
    # a cosine's length is part of its schedule (resuming it with more steps is refused): the run
    # is judged once and ends there, converged or not
    import motionseg.__main__ as cli
    from motionseg.train import History

    asked: list[int] = []

    def fake_train(cfg, out, *args, **kwargs):
        asked.append(cfg.steps)
        assert len(asked) == 1, f"the cosine run was extended to {cfg.steps} steps"
        steps = list(range(100, cfg.steps + 1, 100))
        return None, History(step=steps, val_step=steps, val_mse=[1 / s for s in steps])  # still falling

    monkeypatch.setattr(cli, "train", fake_train)
    cosine = replace(zoo.training_config("zero_param", "quick"), schedule="cosine", steps=400, warmup_steps=0)
    monkeypatch.setattr(zoo, "training_config", lambda *a, **k: replace(cosine, **k))
    assert main(["train", "zero_param", "--until-converged"]) == 0
    assert asked == [400]
    out = capsys.readouterr().out
    assert "not converged; a cosine schedule has a fixed length, so the run ends here" in out


def test_until_converged_tries_one_restart_before_calling_a_flat_best_converged(in_tmp: Path, capsys,
                                                                               monkeypatch) -> None:
    # a run whose best stands still over its last quarter (step 2,200 of 3,000, as zero_param's kept
    # run) is not called converged while its restart rule has not yet acted; a restart cycle
    # that fails as well ends it
    import motionseg.__main__ as cli

    asked: list[int] = []
    monkeypatch.setattr(cli, "train", _resumed_at_3000(asked, lambda s: 1 / min(s, 2200), restart_at_3000=True))
    recipe = replace(zoo.training_config("zero_param", "quick"), cycle_steps=500, restart_factor=0.5)
    monkeypatch.setattr(zoo, "training_config", lambda *a, **k: replace(recipe, **k))
    assert main(["train", "zero_param", "--resume", "--until-converged"]) == 0
    assert asked[1:] == [3500]
    judged = [line for line in capsys.readouterr().out.splitlines() if "better than at 3/4" in line]
    assert judged[0].startswith("step 3000") and "one more from the best weights at a lower peak" in judged[0]
    assert judged[1].startswith("step 3500") and judged[1].endswith(": converged")


def _no_work(monkeypatch) -> None:
    """Make every command fail loudly once it starts its work (training, evaluation, stress run)."""
    import motionseg.__main__ as cli
    from motionseg import evaluate, stress, variants

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the arguments and outputs were checked")

    for module, name in ((cli, "train"), (variants, "train"), (evaluate, "evaluate"), (stress, "run")):
        monkeypatch.setattr(module, name, no_work)


@pytest.mark.parametrize("argv", [
    ["variants", "ladder", "--results", "afile"],
    ["evaluate", "zero_param", "--n", "1", "--out", "afile/metrics"],
    ["train", "zero_param", "--steps", "1", "--results", "afile"],
    ["stress", "--out", "afile", "--n", "1"],
    ["reproduce", "--models", "zero_param", "--results", "afile"],
])
def test_output_folders_are_checked_before_any_work(in_tmp: Path, capsys, monkeypatch, argv: list[str]) -> None:
    _no_work(monkeypatch)
    (in_tmp / "afile").write_text("a file where a folder is expected")
    assert main(argv) == 1
    assert "afile is a file, not a folder" in one_line_error(capsys)


@pytest.mark.parametrize("argv", [["train", "zero_param", "--results", ""], ["evaluate", "zero_param", "--out", " "],
                                  ["reproduce", "--results", ""], ["variants", "ladder", "--results", ""],
                                  ["stress", "--results", ""], ["evaluate", "zero_param", "--results", ""]])
def test_an_empty_folder_name_is_refused(in_tmp: Path, capsys, monkeypatch, argv: list[str]) -> None:
    _no_work(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert "must name a folder, got an empty string" in capsys.readouterr().err
    assert list(in_tmp.iterdir()) == []
