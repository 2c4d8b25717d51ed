"""Results as tables: read the JSON files under ``results/`` into pandas DataFrames.

Every table of the book and the README is built here from committed results (each file
carries its provenance), so that no chapter reads ``../results`` paths by hand and no number
is typed. :func:`style` renders a table for the website (the best value of each metric
column in bold), :func:`markdown` for the README.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from . import checkpoint, tables, zoo

RESULTS = zoo.RESULTS
METRICS = ("L1", "MSE", "SSIM")
LOWER_IS_BETTER = {"L1": True, "MSE": True, "SSIM": False, "mask IoU": False, "velocity error": True}

# Table 1 of Farazi & Behnke (2020): (L1, MSE, SSIM, parameters as printed)
PAPER_TABLE1: dict[str, tuple[float, float, float, str]] = {
    "conv_pgp": (0.0323, 0.0074, 0.9025, "32K"),
    "learnable": (0.0024, 0.0002, 0.9896, "2K"),
    "zero_param": (0.0059, 0.0010, 0.9737, "0"),
    "vln_resnet": (0.0166, 0.0009, 0.9540, "1.3M"),
    "vln_ldc": (0.0126, 0.0006, 0.9686, "1.4M"),
}
# the authors' released weights run in our implementation: the paper's rows too
PAPER_TABLE1["zero_param_authors"] = PAPER_TABLE1["zero_param"]
PAPER_TABLE1["learnable_authors"] = PAPER_TABLE1["learnable"]
LABELS = {
    "zero_param_authors": "Our model without param: the authors' weights",
    "zero_param": "Our model without param: trained by us",
    "learnable_authors": "Our model: the authors' weights",
    "learnable": "Our model: trained by us",
    "conv_pgp": "Conv-PGP",
    "vln_resnet": "VLN-ResNet",
    "vln_ldc": "VLN-LDC",
    "zero_param_plus": "zero_param_plus (ours)",
    "learnable_plus": "learnable_plus (ours)",
    "multi_object": "multi_object (ours, K layers)",
    "multi_object_nets": "multi_object_nets (ours, K layers, nets)",
    "copy_last": "copy last seed frame",
    "oracle": "oracle (true layers and velocity)",
}
# For figure panels, where a full label does not fit: the paper's models as "paper ... (whose weights)",
# the others by name without the parenthesis.
SHORT_LABELS = {
    "zero_param_authors": "paper without param (authors' weights)",
    "zero_param": "paper without param (trained by us)",
    "learnable_authors": "paper learnable (authors' weights)",
    "learnable": "paper learnable (trained by us)",
    **{name: name for name in ("zero_param_plus", "learnable_plus", "multi_object", "multi_object_nets")},
}
SHORT_LABELS = {name: SHORT_LABELS.get(name, label.split(" (")[0]) for name, label in LABELS.items()}
PAPER_ROWS = ("zero_param_authors", "zero_param", "learnable_authors", "learnable", "conv_pgp", "vln_resnet",
              "vln_ldc")
OUR_ROWS = ("zero_param_plus", "learnable_plus", "multi_object", "multi_object_nets")
REFERENCE_ROWS = ("copy_last", "oracle")


def glue(key: str, value: Any) -> None:
    """Glue a number (as a plain Python number) or a phrase (as Markdown) for the book's prose.

    In Markdown: ``{glue:text}`key:.4f``` for numbers, ``{glue:md}`key``` for phrases.
    """
    from IPython.display import Markdown
    from myst_nb import glue as _glue

    if isinstance(value, str):
        value = Markdown(value)
    elif hasattr(value, "item"):  # numpy scalars print as np.float64(...), which a format cannot read
        value = value.item()
    _glue(key, value, display=False)


def selected_phrase(model: Any) -> str:
    """A sentence on which step's weights a trained model keeps (for the chapters' prose)."""
    steps, mses = model.history.get("val_step", []), model.history.get("val_mse", [])
    if model.selected_step is None or not steps:
        return ""
    best = steps[min(range(len(mses)), key=mses.__getitem__)]
    if model.selected_step == best:
        return f"The weights kept are those of step {model.selected_step:,}, where its validation MSE was lowest."
    return (f"The weights kept are those of step {model.selected_step:,}; its validation MSE was lower at step "
            f"{best:,}, whose weights were not kept: that part of the run predates keeping the best weights.")


def init_phrase(model: Any, root: Path | None = None) -> str:
    """A sentence on which weights a model trained from another one started from (chapters' prose).

    Runs that record them (provenance ``init_weights``) name the source's step and validation MSE,
    and say so where the source's committed weights (under ``root``, default ``results/``) are no
    longer those (their sha256 differs: the source was retrained since); older runs only the
    source's file; a model trained from its own start gives "".
    """
    prov = getattr(model, "provenance", {}) or {}
    weights = prov.get("init_weights")
    if weights:
        where = f"the weights {weights['model']} had at step {weights['step']:,}"
        if "val_mse" in weights:
            where += f" (validation MSE {weights['val_mse']:.6f})"
        sentence = f"It started from {where}."
        source = zoo.weights_file(weights["model"], root)
        if weights.get("sha256") and source.is_file() and zoo.weights_sha256(weights["model"], root) != weights["sha256"]:
            sentence += (f" Those are not the committed {weights['model']} weights: {weights['model']} was trained "
                         "again since, and this model has not been trained from its new weights yet.")
        return sentence
    if prov.get("init_from"):
        source = Path(prov["init_from"])
        return f"It started from the weights in `{source.parent.name}/{source.name}` of its run."
    return ""


class ResultsFileError(ValueError):
    """A results file that cannot be read or does not hold what it should (the message names it)."""


def read_json(path: str | Path) -> dict[str, Any]:
    """One results file (metrics, table or benchmark) holding a JSON object.

    A missing file, one that is not JSON (cut off, say) and one that holds something else than
    an object each give one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}; see the book's 'Reproduce it' page for the command")
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError as err:
        raise ResultsFileError(f"{path} is not a results file: it is not text ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise ResultsFileError(f"{path} is not valid JSON (cut off or damaged?): {err.msg} at line {err.lineno} "
                               f"column {err.colno}; write it again with the command in the book's 'Reproduce it' "
                               f"page") from None
    if not isinstance(data, dict):
        raise ResultsFileError(f"{path} must hold a JSON object of results, not a {type(data).__name__}")
    return data


def _number(path: Path, where: str, value: Any, integer: bool = False) -> None:
    """``ResultsFileError`` unless ``value`` is a finite number (an integer >= 0 if ``integer``)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "a whole number" if integer else "a number"
        raise ResultsFileError(f"{path}: {where} must be {what}, got {value!r}")
    if not math.isfinite(value) or (integer and value < 0):
        raise ResultsFileError(f"{path}: {where} must be a finite number{' >= 0' if integer else ''}, got {value!r}")


def check_metrics(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """``data`` if it holds what the tables read from a metrics file, else ``ResultsFileError`` naming ``path``.

    ``n`` (a whole number), ``l1``, ``mse`` and ``ssim`` (finite numbers); where present, the
    state metrics ``iou`` and ``epe`` of ``per_state_step`` (lists of at least 9 finite numbers:
    the tables read frame 9). NaN would put "nan" into a table, a string or list a traceback.
    """
    for key in ("n", "l1", "mse", "ssim"):
        if key not in data:
            raise ResultsFileError(f"{path}: the key {key!r} is missing (a metrics file holds n, l1, mse and ssim)")
        _number(path, repr(key), data[key], integer=key == "n")
    states = data.get("per_state_step")
    if states:
        if not isinstance(states, dict):
            raise ResultsFileError(f"{path}: 'per_state_step' must be an object, got {type(states).__name__}")
        for key in ("iou", "epe"):
            values = states.get(key)
            if not isinstance(values, list) or len(values) < 9:
                raise ResultsFileError(f"{path}: per_state_step[{key!r}] must be a list of at least 9 numbers, "
                                       f"got {values!r:.60}")
            _number(path, f"per_state_step[{key!r}][8]", values[8])
    return data


def metrics(name: str, profile: str = "full", root: Path | None = None) -> dict[str, Any]:
    """``<root>/<name>/metrics_<profile>.json`` (root: the committed ``results/``), checked (:func:`check_metrics`).

    A file that records the sha256 of the weights it evaluated (``checkpoint_sha256``, written by
    ``evaluate`` since it records it) must match the weights there now: numbers of a model
    retrained since are refused, not shown beside the new model's steps.
    """
    root = Path(root if root is not None else RESULTS)
    path = root / name / f"metrics_{profile}.json"
    data = check_metrics(read_json(path), path)
    recorded = data.get("checkpoint_sha256")
    if recorded and zoo.weights_file(name, root).is_file() and zoo.weights_sha256(name, root) != recorded:
        if name not in zoo.AUTHORS:  # an empty or corrupt checkpoint says so, not that it was retrained
            checkpoint.read(zoo.weights_file(name, root), expect_model=name)
        out = "results" if root.resolve() == RESULTS.resolve() else root
        raise ResultsFileError(f"{path} holds the numbers of other weights than {zoo.weights_file(name, root)} now "
                               f"(retrained since?): rerun `python -m motionseg evaluate {name} --profile {profile} "
                               f"--out {out} --force`")
    return data


def _budget(name: str, root: Path) -> dict[str, Any]:
    """Steps, wall minutes and device of a committed checkpoint (empty for the reference rows)."""
    if name in REFERENCE_ROWS:
        return {}
    model = zoo.load(name) if name in zoo.AUTHORS else zoo.load(name, zoo.checkpoint_path(name, root))
    prov = model.provenance
    count = lambda gains: sum(p.numel() for n, p in model.named_parameters()  # noqa: E731
                              if n.startswith("gains.") == gains)
    if name in zoo.AUTHORS:  # trained by the authors: their budget is not known
        return {"parameters": count(False), "gains": count(True), "steps": None, "minutes": float("nan"),
                "device": "the authors' (released weights)"}
    return {"parameters": count(False), "gains": count(True), "steps": model.trained_steps,
            "minutes": prov.get("wall_seconds", float("nan")) / 60, "device": prov.get("device", "")}


def training_summary(name: str, root: Path | None = None) -> dict[str, Any]:
    """Steps, wall minutes and device of a training run: from its checkpoint, or from the
    ``training.json`` that ``tools/slim_checkpoints.py --summarise`` left in its place."""
    folder = Path(root if root is not None else RESULTS) / name
    if (folder / "checkpoint.pt").is_file():
        ckpt = checkpoint.read(folder / "checkpoint.pt", expect_model=name)
        prov = ckpt.get("provenance", {})
        return {"steps": int(ckpt["step"]), "minutes": prov.get("wall_seconds", float("nan")) / 60,
                "device": prov.get("device", "")}
    summary = read_json(folder / "training.json")
    return {"steps": summary["step"], "minutes": summary["wall_seconds"] / 60, "device": summary["device"]}


def table1(profile: str = "full", root: Path | None = None, rows: Iterable[str] | None = None) -> pd.DataFrame:
    """Table 1: the paper's rows (under the paper's names), ours, then the reference rows.

    Columns: our L1, MSE, SSIM; the paper's; the parameters (and gains) of our checkpoint and
    its training budget. The index is the model name; ``label`` and ``block`` say what to print.
    """
    root = Path(root if root is not None else RESULTS)
    out = []
    for name in rows or (*PAPER_ROWS, *OUR_ROWS, *REFERENCE_ROWS):
        m = metrics(name, profile, root)
        paper = PAPER_TABLE1.get(name)
        block = "paper" if name in PAPER_ROWS else "ours" if name in OUR_ROWS else "reference"
        row = {"model": name, "label": LABELS[name], "block": block, "L1": m["l1"], "MSE": m["mse"],
               "SSIM": m["ssim"], "n": m["n"],
               "paper L1": paper[0] if paper else None, "paper MSE": paper[1] if paper else None,
               "paper SSIM": paper[2] if paper else None, "paper params": paper[3] if paper else None}
        row.update(_budget(name, root))
        states = m.get("per_state_step") or {}
        if states:
            row["mask IoU"] = states["iou"][8]  # frame 9, the last seed frame
            row["velocity error"] = states["epe"][8]
        out.append(row)
    return pd.DataFrame(out).set_index("model")


BUDGET_COLUMNS = ("parameters", "paper params", "gains", "steps", "minutes", "device")


def table1_beside(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 narrow enough for the page column: a row per model (the index is its label), and for
    each metric our value with the paper's beside it (two-level columns: metric, then ours / paper).

    ``table`` as :func:`table1` returns it; the budget columns go to :func:`table1_budget`.
    """
    columns = pd.MultiIndex.from_tuples([(m, who) for m in METRICS for who in ("ours", "paper")])
    frame = pd.DataFrame({(m, who): table[m if who == "ours" else f"paper {m}"].astype(float)
                          for m, who in columns}, columns=columns)
    frame.index = pd.Index(table["label"].to_list())  # unnamed: a name would take a header row of its own
    return frame


def table1_budget(table: pd.DataFrame) -> pd.DataFrame:
    """What each trained row of Table 1 cost: our checkpoint's parameters (the paper's count beside),
    gains, training steps, wall minutes and device; the reference rows, which are not trained, left out."""
    trained = table[table["block"] != "reference"]
    frame = trained[[c for c in BUDGET_COLUMNS if c in trained.columns]].copy()
    frame.index = pd.Index(trained["label"].to_list())
    return frame


def style_table1(table: pd.DataFrame, best_among: Iterable[str] | None = None,
                 caption: str = "") -> "tables.BookStyler":
    """:func:`table1_beside` as an HTML table: our values with the book's formats, the paper's as the paper
    prints them (4 decimals), our best value per metric in bold among ``best_among`` (model names,
    default: every row but the oracle)."""
    frame = table1_beside(table)
    names = list(best_among) if best_among is not None else [m for m in table.index if m != "oracle"]
    labels = [table.loc[m, "label"] for m in names if m in table.index]
    fmt = formats(METRICS)
    return tables.style_table(frame, None, caption, {(m, who): fmt[m] if who == "ours" else "{:.4f}"
                                                     for m, who in frame.columns}, na_rep="",
                              best={(m, "ours"): LOWER_IS_BETTER[m] for m in METRICS}, best_among=labels)


def style_budget(table: pd.DataFrame, caption: str = "") -> "tables.BookStyler":
    """:func:`table1_budget` as an HTML table (nothing in bold: a budget is not a score)."""
    frame = table1_budget(table)
    return tables.style_table(frame, None, caption, formats(frame.columns), na_rep="")


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """For the paper's rows: does our number meet the paper's (L1, MSE lower or equal, SSIM higher or equal)?"""
    rows = table[table["block"] == "paper"]
    return pd.DataFrame({m: (rows[m] <= rows[f"paper {m}"]) if LOWER_IS_BETTER[m] else (rows[m] >= rows[f"paper {m}"])
                         for m in METRICS})


def variants(table: str, profile: str = "full", root: Path | None = None) -> pd.DataFrame:
    """A variants table (``ladder`` or ``readings``, see :mod:`motionseg.variants`) as a DataFrame."""
    path = Path(root if root is not None else RESULTS / "variants") / table / f"table_{profile}.json"
    data = read_json(path)
    if not isinstance(data.get("rows"), list) or not data["rows"]:
        raise ResultsFileError(f"{path}: 'rows' must be a non-empty list of variants")
    for i, r in enumerate(data["rows"]):
        for part in ("test", "validation"):
            if not isinstance(r, dict) or not isinstance(r.get(part), dict):
                raise ResultsFileError(f"{path}: row {i} has no {part!r} results")
        for key in ("l1", "mse", "ssim"):
            _number(path, f"row {i} test[{key!r}]", r["test"].get(key))
        _number(path, f"row {i} validation['mse']", r["validation"].get("mse"))
    rows = []
    for r in data["rows"]:
        t, v = r["test"], r["validation"]
        rows.append({"key": r["key"], "variant": r["label"], "L1": t["l1"], "MSE": t["mse"], "SSIM": t["ssim"],
                     "mask IoU": t.get("iou_last_seed"), "velocity error": t.get("epe_last_seed"),
                     "validation MSE": v["mse"], "gains": r["gains"], "parameters": r["parameters"],
                     "trained": ("no (the authors' weights)" if r.get("released") else
                                 "no (weights of " + r["reuse"] + ")" if r["reuse"] else f"{r['trained_steps']} steps")})
    frame = pd.DataFrame(rows).set_index("key")
    frame.attrs.update(n_test=data["n_test"], n_validation=data["n_validation"], schedule=data["schedule"],
                       provenance=data["provenance"])
    return frame


def formats(columns: Iterable[str]) -> dict[str, str]:
    """Number formats per column: 4 decimals for L1, 5 for MSE, 4 for SSIM, ..."""
    known = {"L1": "{:.4f}", "MSE": "{:.5f}", "SSIM": "{:.4f}", "paper L1": "{:.4f}", "paper MSE": "{:.4f}",
             "paper SSIM": "{:.4f}", "mask IoU": "{:.3f}", "velocity error": "{:.3f}", "validation MSE": "{:.5f}",
             "ours with the authors' block": "{:.5f}", "the authors' with our block": "{:.5f}",
             "parameters": "{:,.0f}", "gains": "{:,.0f}", "steps": "{:,.0f}", "minutes": "{:.1f}", "n": "{:,.0f}"}
    return {c: known[c] for c in columns if c in known}


def style(table: pd.DataFrame, columns: Iterable[str] | None = None, best_among: Iterable[str] | None = None,
          caption: str = "", uuid: str | None = None, row_names: str | None = None) -> "tables.BookStyler":
    """An HTML table: chosen columns, formatted, the best value per metric column in bold.

    ``best_among`` limits the rows that compete for "best" (e.g. without the oracle). ``row_names``:
    a column (e.g. ``"label"``) whose text heads each row in place of the index, one column fewer
    (``best_among`` still names index entries). The table's HTML id is derived from the rendered
    table (see :mod:`motionseg.tables`) unless ``uuid`` names it.
    """
    shown = table[list(columns)] if columns is not None else table
    if row_names is not None:
        names = table[row_names].astype(str)
        keys = list(best_among) if best_among is not None else list(table.index)
        best_among = [names[k] for k in keys if k in table.index]
        shown = shown.drop(columns=[row_names], errors="ignore").set_axis(pd.Index(names.to_list()), axis=0)
    return tables.style_table(shown, uuid, caption, formats(shown.columns), na_rep="",
                              best={c: LOWER_IS_BETTER[c] for c in shown.columns if c in LOWER_IS_BETTER},
                              best_among=best_among)


def markdown(table: pd.DataFrame, columns: Iterable[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table with the book's number formats."""
    shown = table[list(columns)] if columns is not None else table
    fmt = formats(shown.columns)
    header = "| " + " | ".join([shown.index.name or "", *shown.columns]) + " |"
    rule = "|" + "---|" * (len(shown.columns) + 1)
    lines = [header, rule]
    for idx, row in shown.iterrows():
        cells = []
        for col in shown.columns:
            v = row[col]
            cells.append("" if v is None or (isinstance(v, float) and pd.isna(v)) else
                         fmt[col].format(v) if col in fmt else str(v))
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


# -- the stress tests beyond Table 1 (see :mod:`motionseg.stress`) ------------------------------

STRESS_LABELS = {**LABELS, "oracle": "oracle (true layers and displacements of each object)",
                 "zero_param_plus+remeasure": "zero_param_plus + remeasure_motion (ours)",
                 "learnable_plus+remeasure": "learnable_plus + remeasure_motion (ours)"}
STRESS_ROWS = (*PAPER_ROWS, *OUR_ROWS, "zero_param_plus+remeasure", "learnable_plus+remeasure", *REFERENCE_ROWS)
STRESS_METRICS = {"L1": "l1", "MSE": "mse", "SSIM": "ssim", "mask IoU": "iou", "velocity error": "epe",
                  "velocity error, predicted": "epe_future"}
LOWER_IS_BETTER.setdefault("velocity error, predicted", True)


def stress(profile: str | None = None, root: Path | None = None) -> dict[str, Any]:
    """The stress tables of ``python -m motionseg stress`` (``<root>/stress/stress_<profile>.json``).

    Without ``profile``: the full run's if it exists, else the quick run's.
    """
    folder = Path(root if root is not None else RESULTS) / "stress"
    if profile is None:
        profile = "full" if (folder / "stress_full.json").is_file() else "quick"
    table = read_json(folder / f"stress_{profile}.json")
    return drop_stale_stress_rows(table, Path(root if root is not None else RESULTS))


def drop_stale_stress_rows(table: dict[str, Any], root: Path) -> dict[str, Any]:
    """``table`` without the rows of models whose checkpoint under ``root`` is not the one the run used.

    A model retrained after the stress run would otherwise be shown with its old weights' numbers.
    The run's record (the weights' sha256, else the trained steps and device) is compared with the
    checkpoint now; a stale model moves to ``skipped`` with the command that reruns its rows.
    """
    for name, entry in list(table.get("models", {}).items()):
        if name in zoo.AUTHORS:
            continue
        path = zoo.checkpoint_path(name, root)
        reason = None
        if not path.is_file():
            reason = f"no checkpoint at {path} now"
        elif entry.get("sha256"):
            if zoo.weights_sha256(name, root) != entry["sha256"]:
                reason = "its checkpoint changed after the stress run"
        else:
            ckpt = checkpoint.read(path)
            now = (ckpt.get("step"), (ckpt.get("provenance") or {}).get("device"))
            then = (entry.get("trained_steps"), entry.get("trained_on"))
            if now != then:
                reason = (f"its checkpoint changed after the stress run ({then[0]} steps then, {now[0]} now)")
        if reason is None:
            continue
        del table["models"][name]
        table.get("option", {}).get("chosen", {}).pop(name, None)
        for sh in table["shifts"].values():
            sh["results"].pop(name, None)
            sh["results"].pop(name + "+remeasure", None)
        table.setdefault("skipped", {})[name] = (
            f"{reason}; rerun its rows with `python -m motionseg stress --profile {table.get('profile', 'full')} "
            f"--models {name} --out results --merge --force`")
    return table


def stress_sets(table: dict[str, Any]) -> list[str]:
    """The sets of a stress table: standard first, then in the order of :data:`stress.SHIFTS` (a set
    merged in later, e.g. three_digits, stands beside its kin), then any others in the run's order."""
    from .stress import SHIFTS, STANDARD
    held = list(table.get("sets") or table["shifts"])
    known = [s for s in (STANDARD, *SHIFTS) if s in held]
    return known + [s for s in held if s not in known]


def _stress_rows(table: dict[str, Any], shift: str) -> list[str]:
    present = table["shifts"][shift]["results"]
    return [r for r in STRESS_ROWS if r in present]


def stress_shift(table: dict[str, Any], shift: str) -> pd.DataFrame:
    """One set of a stress table: a row per model, columns L1, MSE, SSIM and, for the filter models,
    mask IoU and velocity error at the last seed frame and the velocity error over the predicted frames."""
    if shift not in table["shifts"]:
        raise ValueError(f"unknown shift {shift!r}: allowed are {', '.join(stress_sets(table))}")
    results = table["shifts"][shift]["results"]
    rows = []
    for name in _stress_rows(table, shift):
        r = results[name]
        rows.append({"model": name, "label": STRESS_LABELS.get(name, name), "n": r["n"],
                     **{col: r.get(key) for col, key in STRESS_METRICS.items()}})
    return pd.DataFrame(rows).set_index("model")


def stress_overview(table: dict[str, Any], metric: str = "MSE") -> pd.DataFrame:
    """``metric`` of every model (rows) on every set (columns, the standard test set first)."""
    if metric not in STRESS_METRICS:
        raise ValueError(f"unknown metric {metric!r}: allowed are {', '.join(STRESS_METRICS)}")
    key = STRESS_METRICS[metric]
    shifts = stress_sets(table)
    names = [r for r in STRESS_ROWS if any(r in table["shifts"][s]["results"] for s in shifts)]
    frame = pd.DataFrame({s: {n: table["shifts"][s]["results"].get(n, {}).get(key) for n in names} for s in shifts})
    frame.index.name = "model"
    return frame.astype(float)


def stress_gap(table: dict[str, Any]) -> pd.DataFrame:
    """The in-distribution gap per model: MSE on training photos and digits, on test photos, their ratio."""
    mse = stress_overview(table)
    train, test = mse["train_photos"], mse["standard"]
    frame = pd.DataFrame({"MSE, training photos": train, "MSE, test photos": test, "test / training": test / train})
    return frame.dropna()


def stress_option(table: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The choice of our option on validation data and its cost on the standard test set.

    First frame: per plus model and set, the validation MSE without the option and at each candidate
    setting, and the score the rule minimises (mean ratio to "off"); second: L1, MSE and SSIM
    without and with the option on the standard test set.
    """
    opt = table["option"]
    rows = []
    for name, sets in opt["validation_mse"].items():
        for shift_name, values in sets.items():
            rows.append({"model": name, "set": shift_name, **values})
        rows.append({"model": name, "set": "score (mean ratio to off)", "off": 1.0, **opt["chosen"][name]["score"]})
    validation = pd.DataFrame(rows).set_index(["model", "set"]) if rows else pd.DataFrame()
    cost = pd.DataFrame([{"model": name, "setting": setting, "n": c["n"], "L1": c[setting]["l1"],
                          "MSE": c[setting]["mse"], "SSIM": c[setting]["ssim"]}
                         for name, c in opt.get("cost", {}).items() for setting in ("off", "on")])
    return validation, cost.set_index(["model", "setting"]) if len(cost) else cost


def style_grid(frame: pd.DataFrame, fmt: str, lower_is_better: bool | None, caption: str = "",
               best_among: Iterable[str] | None = None) -> "tables.BookStyler":
    """A table whose every number column holds one metric (e.g. MSE per set): one format for all,
    the best value of each column in bold (among ``best_among`` rows; none if ``lower_is_better``
    is None), and an HTML id derived from the rendered table."""
    numbers = list(frame.select_dtypes("number").columns)
    best = None if lower_is_better is None else {c: lower_is_better for c in numbers}
    return tables.style_table(frame, None, caption, {c: fmt for c in numbers}, na_rep="", best=best,
                              best_among=best_among)
