"""A variants table resumes: evaluations are kept per variant while their fingerprint holds."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from motionseg import evaluate, variants
from motionseg.variants import Variant


@pytest.fixture()
def tiny(monkeypatch) -> list[str]:
    """A two-row table of released weights on 2 + 2 sequences; returns the keys evaluated, in order."""
    monkeypatch.setitem(variants.TABLES, "tiny", [
        Variant("zero_param_authors", "as released", "zero_param_authors"),
        Variant("no_dog", "without the DoG", "zero_param_authors", {"dog": False}),
    ])
    monkeypatch.setattr(variants, "N_VAL", 2)
    calls: list[str] = []
    real = evaluate.evaluate

    def counting(predictors, **kw):
        calls.extend(predictors)
        return real(predictors, **kw)

    monkeypatch.setattr(evaluate, "evaluate", counting)
    return calls


def test_a_second_run_reuses_every_evaluation(tmp_path: Path, tiny: list[str]) -> None:
    first = variants.run("tiny", "quick", tmp_path, n_test=2, progress=False)
    assert tiny == ["zero_param_authors", "zero_param_authors", "no_dog", "no_dog"]  # test, then validation
    tiny.clear()
    second = variants.run("tiny", "quick", tmp_path, n_test=2, progress=False)
    assert tiny == []
    assert [r["test"] for r in second["rows"]] == [r["test"] for r in first["rows"]]
    assert first["rows"][0]["test"]["mse"] != first["rows"][1]["test"]["mse"]  # the options were applied


def test_a_changed_count_or_a_cut_off_file_is_evaluated_again(tmp_path: Path, tiny: list[str]) -> None:
    variants.run("tiny", "quick", tmp_path, n_test=2, progress=False)
    tiny.clear()
    variants.run("tiny", "quick", tmp_path, n_test=3, progress=False)
    assert tiny == ["zero_param_authors", "zero_param_authors", "no_dog", "no_dog"]
    tiny.clear()
    kept = tmp_path / "tiny" / "no_dog" / "eval_quick.json"
    kept.write_text(kept.read_text()[:40])
    table = variants.run("tiny", "quick", tmp_path, n_test=3, progress=False)
    assert tiny == ["no_dog", "no_dog"]
    assert json.loads(kept.read_text())["test"] == table["rows"][1]["test"]


def test_a_changed_library_is_evaluated_again(tmp_path: Path, tiny: list[str], monkeypatch) -> None:
    variants.run("tiny", "quick", tmp_path, n_test=2, progress=False)
    tiny.clear()
    monkeypatch.setattr(variants, "_code_digest", lambda: "another library")
    variants.run("tiny", "quick", tmp_path, n_test=2, progress=False)
    assert len(tiny) == 4
