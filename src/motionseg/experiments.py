"""Readers of the benchmark files behind the book's training experiments, as pandas DataFrames.

The runs of zero_param's learning-rate schedules (chapter 04), our zero_param with one block of
the authors' gains swapped in (chapter 04), and what training does to the learnable model from
its start (chapter 05). Each file is written by one committed script of ``benchmarks/`` and
carries its provenance.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from . import checkpoint
from .curves import convergence
from .results import PAPER_TABLE1, RESULTS, read_json

__all__ = ["gain_blocks", "schedule_runs", "learnable_start", "start_runs_phrase", "learnable_run_note", "gradient_check",
           "restart_cycles", "training_floor_note", "committed_zero_param", "paper_gap", "paper_gap_phrases", "init_block_phrase"]


def gain_blocks(root: Path | None = None) -> pd.DataFrame:
    """Our zero_param and the authors' gains with one block swapped (``benchmarks/gain_blocks.py``).

    One row per block of the release: validation MSE of ours with the authors' block, and of the
    authors' gains with ours; ``attrs``: ``ours``, ``authors`` (unswapped), ``n`` and provenance.
    """
    data = read_json(Path(root or RESULTS) / "benchmarks" / "gain_blocks_zero_param.json")
    frame = pd.DataFrame([{"key": k, "block": r["label"], "ours with the authors' block": r["ours_with_authors_block"],
                           "the authors' with our block": r["authors_with_our_block"]} for k, r in data["blocks"].items()]
                         ).set_index("key")
    frame.attrs.update(ours=data["ours"], authors=data["authors"], n=data["n"], provenance=data["provenance"])
    return frame


def schedule_runs(root: Path | None = None) -> pd.DataFrame:
    """Validation curves of ``zero_param`` trained from zero gains or from DoG widths apart, per
    schedule (``benchmarks/paper_schedules.py`` files), and the curve of the run committed when each
    file was written: one row per run, one column per validated step."""
    folder = Path(root or RESULTS) / "benchmarks"
    rows: dict[str, dict[int, float]] = {}
    def where(start: dict[str, Any] | None) -> str:
        return ("from zero gains" if not start else
                f"DoG widths from {start.get('dog_surround_start', 0):g}/{start.get('dog_centre_start', 0):g} px")

    for path in sorted(folder.glob("paper_schedules_zero_param*.json")):
        data = read_json(path)
        if "committed" in data:  # files older than the record of its start hold the first run, from zero gains
            c = data["committed"]
            label = f"our earlier committed run ({c['candidate']}, {where(c.get('options'))})"
            rows[label] = dict(zip(c["val_step"], c["val_mse"]))
        for name, run in data["candidates"].items():
            rows[f"{name}, {where(data.get('options'))}"] = dict(zip(run["val_step"], run["val_mse"]))
    return pd.DataFrame.from_dict(rows, orient="index").sort_index(axis=1)


def committed_zero_param(weights: dict[str, Any] | None, root: Path | None = None) -> bool:
    """Whether a benchmark file's recorded ``init_weights`` are the committed zero_param's weights.

    The same file bytes (sha256), or the same kept step with the same validation MSE (a checkpoint
    file that changed by training on past its kept step holds the same weights). No record: True.
    """
    if not weights:
        return True
    from . import zoo
    root = Path(root or RESULTS)
    if weights.get("sha256") == zoo.weights_sha256("zero_param", root):
        return True
    ckpt = checkpoint.read(root / "zero_param" / "checkpoint.pt")
    hist, step = ckpt["history"], (ckpt.get("selected") or {}).get("step", ckpt.get("step"))
    return step in hist["val_step"] and weights.get("step") == step and \
        weights.get("val_mse") == hist["val_mse"][hist["val_step"].index(step)]


def gradient_check(root: Path | None = None) -> pd.DataFrame:
    """The gradient of the paper's models, exact and with gradient floors (``benchmarks/gradient_floor.py``).

    One row per model, parameter group and gradient (``exact`` or ``floor f``), averaged over the
    file's training batches: the gradient's norm and, for each step length ``s`` of the file, the
    loss change of a step of length ``s`` against the normalised gradient and the change the
    gradient predicts (``-s * norm``), both relative to the loss. ``attrs``: ``batches``,
    ``batch_size``, ``steps``, ``init_weights`` (the zero_param weights measured: step, validation
    MSE, sha256), ``provenance``.
    """
    data = read_json(Path(root or RESULTS) / "benchmarks" / "gradient_floor.json")
    rows = []
    for run in data["runs"]:
        row: dict[str, Any] = {"model": run["model"], "parameters": run["parameters"],
                               "gradient": "exact" if run["floor"] is None else f"floor {run['floor']:g}",
                               "gradient norm": run["norm"]}
        for step, change, predicted in zip(data["steps"], run["change"], run["predicted"]):
            row[f"loss change, step {step:g}"] = change / run["loss"]
            row[f"predicted, step {step:g}"] = predicted / run["loss"]
        rows.append(row)
    keys = ["model", "parameters", "gradient"]
    frame = pd.DataFrame(rows).groupby(keys, sort=False).mean().reset_index()
    frame.attrs.update(batches=data["batches"], batch_size=data["batch_size"], steps=data["steps"],
                       init_weights=data.get("init_weights"), provenance=data["provenance"])
    return frame


LEARNABLE_START_TRAINS = {"all": "all parameters", "gains": "the gains only", "nets": "the networks only"}
UNTRAINED = "nothing (learning rate 0)"
OVER_START = "loss, last 25 steps, over the start's"  # learnable_start's column: a run's loss against the start's own


def learnable_start(root: Path | None = None, folder: str = "") -> pd.DataFrame:
    """The learnable model trained from its start (``benchmarks/learnable_start.py`` files).

    One row per run (which parameters train, peak learning rate, exact gradient or the gradient
    floor it trained with): the validation MSE at the start and at each validated step, and the
    mean training loss over the first and the last 25 steps. A run at learning rate 0 is the
    start's own loss on the same batches (``trains``: ``UNTRAINED``);
    where there is one, each run's loss over the last 25 steps is also given relative to it.
    ``attrs``: ``start`` (validation MSE of ``zero_param``, of the learnable model at its start and
    with its networks off), ``n`` (validation sequences), ``steps``, ``init_weights`` (the zero_param
    weights the start took: step, validation MSE, sha256) and ``provenance`` per file. The
    files must share their start, validation sequences and steps; one that does not gives one line
    naming it. ``folder``: a folder under ``results/benchmarks`` holding runs from another start.
    """
    where = Path(root or RESULTS) / "benchmarks" / folder
    rows: dict[str, dict[str, Any]] = {}
    attrs: dict[str, Any] = {"provenance": {}}
    for path in sorted(where.glob("learnable_start*.json")):
        data = read_json(path)
        # the same start, validation sequences and training batches (steps), or the runs do not compare
        if any(attrs.get(k, data[key]) != data[key] for k, key in (("n", "n_val"), ("start", "start"), ("steps", "steps"))):
            raise ValueError(f"{path} measured another start, other validation sequences or another number of "
                             f"steps than {next(iter(attrs['provenance']))}: its runs cannot share a table with theirs")
        attrs.update(n=data["n_val"], start=data["start"], steps=data["steps"])
        attrs.setdefault("init_weights", data.get("init_weights"))
        attrs["provenance"][path.name] = data["provenance"]
        floor = data.get("grad_floor")  # files before the option trained with the exact gradient
        for lr, run in data["runs"].items():
            # at learning rate 0 nothing moves: the start's own training loss on the same batches
            trains = UNTRAINED if float(lr) == 0 else LEARNABLE_START_TRAINS[data.get("train", "all")]
            loss = run["loss_per_25_steps"]
            row: dict[str, Any] = {"trains": trains, "peak learning rate": float(lr),
                                   "gradient": "exact" if floor is None else f"floor {floor:g}",
                                   "step 0": data["start"]["learnable"]}
            row.update({f"step {s}": m for s, m in zip(run["val_step"], run["val_mse"])})
            row.update({"loss, first 25 steps": loss[0], "loss, last 25 steps": loss[-1]})
            key = trains if trains == UNTRAINED else f"{trains}, {float(lr):g}"
            rows[key if floor is None or trains == UNTRAINED else f"{key}, gradient floor {floor:g}"] = row
    if not rows:
        raise FileNotFoundError(f"no learnable_start*.json under {where}: python benchmarks/learnable_start.py writes them")
    frame = pd.DataFrame.from_dict(rows, orient="index")
    untrained = frame[frame["trains"] == UNTRAINED]
    if len(untrained):  # the batches differ in difficulty: each run's loss against the start's on the same batches
        frame[OVER_START] = frame["loss, last 25 steps"] / untrained["loss, last 25 steps"].iloc[0] - 1
    frame.attrs.update(attrs)
    return frame


def start_runs_phrase(frame: pd.DataFrame) -> str:
    """What a :func:`learnable_start` table shows, in sentences: which runs end below the start on
    validation, and per group of parameters each run's start, last validation MSE and training
    loss against the start's own on the same batches (where the table has it)."""
    trained = frame[frame["trains"] != UNTRAINED]
    if not len(trained):
        return "No run trained from this start."
    last = trained[[c for c in trained.columns if c.startswith("step ")]].ffill(axis=1).iloc[:, -1]
    over = OVER_START
    said = [("Every run ends above the start on validation" if (last > trained["step 0"]).all() else
             "Some runs end below the start on validation (" + ", ".join(trained.index[last <= trained["step 0"]]) + ")")
            + " (for each run: validation MSE at the start and after the last step"
            + ("; the training loss over the last 25 steps against the start's own on the same batches)."
               if over in trained.columns else ").")]
    for trains in dict.fromkeys(trained["trains"]):
        part = trained[trained["trains"] == trains].sort_values("peak learning rate", ascending=False)
        said.append(f"Training {trains}: " + "; ".join(
            f"at {r['peak learning rate']:g}" + ("" if r["gradient"] == "exact" else f" with the {r['gradient']}")
            + f", {r['step 0']:.6f} to {last[k]:.6f}"
            + (f", loss {100 * r[over]:+.1f} %" if over in r else "") for k, r in part.iterrows()) + ".")
    return " ".join(said)


def learnable_run_note(root: Path | None = None, subject: str = "The committed run") -> str:
    """The committed ``learnable`` run against its start, in one or two sentences: the gradient
    floor and peak learning rate it trained with, and whether training beat the start's validation
    MSE (a run from trained weights validates them before its first step and keeps them where
    training does not beat them)."""
    root = Path(root or RESULTS)
    ckpt = checkpoint.read(root / "learnable" / "checkpoint.pt", expect_model="learnable")
    cfg, hist = ckpt["config"], ckpt["history"]
    steps, mse = hist["val_step"], hist["val_mse"]
    floor = cfg.get("grad_floor")
    took = (ckpt.get("provenance") or {}).get("init_weights")
    committed = (root / "zero_param" / "checkpoint.pt").is_file() and committed_zero_param(took, root)
    source = ("" if not took else " from the committed zero_param" if committed else
              f" from zero_param's earlier weights (step {took['step']:,})")
    how = (source + (f" with the gradient floor {floor:g}" if floor else " with the exact gradient")
           + f" at a peak learning rate of {cfg['lr']:g}")
    selected = (ckpt.get("selected") or {}).get("step", ckpt["step"])
    if not steps or steps[0] != 0:  # runs before the rule did not validate their start
        return (f"{subject} trained{how}; it predates validating the start before the first step, "
                "so whether training beat its start was not measured in the run.")
    best = min(mse)
    if len(mse) == 1:
        return f"{subject} trained{how} and has validated only its start ({mse[0]:.6f})."
    if selected == 0:
        after = min(mse[1:])
        return (f"{subject} trained{how} for {ckpt['step']:,} steps; no validation beat its start's ({mse[0]:.6f}; "
                f"the lowest after it {after:.6f}, step {steps[mse.index(after, 1)]:,}), so the weights kept are the "
                "start's: training adds nothing on validation.")
    return (f"{subject} trained{how} for {ckpt['step']:,} steps and lowered the validation MSE from its start's "
            f"{mse[0]:.6f} to {best:.6f} (step {selected:,}, {100 * (1 - best / mse[0]):.1f} % lower).")


def restart_cycles(history: dict[str, Any], config: dict[str, Any]) -> pd.DataFrame:
    """The restarts of a run from its best weights (``TrainConfig.restart_factor``), one row each:
    the step, the cycle's peak learning rate and the best validation MSE within the cycle.

    ``attrs``: ``best_before`` and ``best_before_step``, the run's best validation up to its first
    restart (what the restarts tried to beat). No restarts: an empty table.
    """
    steps, mse = history["val_step"], history["val_mse"]
    rows = []
    for i, r in enumerate(history.get("restarts", [])):
        during = [m for s, m in zip(steps, mse) if r < s <= r + config["cycle_steps"]]
        rows.append({"step": r, "peak learning rate": config["lr"] * config["restart_factor"] ** (i + 1),
                     "best validation MSE of the cycle": min(during) if during else float("nan")})
    frame = pd.DataFrame(rows, columns=["step", "peak learning rate", "best validation MSE of the cycle"])
    if rows:
        before = [(m, s) for s, m in zip(steps, mse) if s <= rows[0]["step"]]
        frame.attrs["best_before"], frame.attrs["best_before_step"] = min(before)
    return frame


def training_floor_note(root: Path | None = None) -> str:
    """Whether more of our training could close the paper models' gap: what zero_param's restarts,
    its gradient floor and the learnable model's runs from its start did (for chapter 07's causes)."""
    root = Path(root or RESULTS)
    kept = checkpoint.read(root / "zero_param" / "checkpoint.pt")
    earlier = [checkpoint.read(p) for p in sorted((root / "benchmarks").glob("zero_param_*/checkpoint.pt"))]
    floor = kept["config"].get("grad_floor")
    said = []
    # the run whose restarts show where its recipe stops: the kept one, else an earlier one
    restarted = next((ck for ck in (kept, *earlier) if ck["history"].get("restarts")), None)
    if restarted is not None:
        cycles = restart_cycles(restarted["history"], restarted["config"])
        lowered = (cycles["best validation MSE of the cycle"] < cycles.attrs["best_before"]).any()
        who = ("Our zero-parameter run" if restarted is kept else
               "With the exact gradient, our zero-parameter run" if not restarted["config"].get("grad_floor") else
               "An earlier zero-parameter run")
        n = len(cycles)
        said.append(f"{who} {'went on improving after' if lowered else 'reached its floor:'} "
                    f"{n} restart{'s' if n > 1 else ''} from its best weights at lower peaks "
                    + ("lowered its best validation MSE." if lowered else
                       f"did not lower its best validation MSE ({cycles.attrs['best_before']:.6f})"
                       + (", so longer training of this recipe does not close its part of the gap."
                          if restarted is kept else ".")))
    if floor:
        hist = kept["history"]
        state = convergence(hist["val_step"], hist["val_mse"])
        said.append(f"Trained with the gradient floor {floor:g} (the same values, the gradient of the phases as if "
                    f"frequencies below {floor:g} of each spectrum's peak had no energy), the same recipe reaches "
                    f"{state.best:.6f} in {hist['val_step'][-1]:,} steps and "
                    + (("meets the project's criterion, though its best validation is its last (the curve was still "
                        "falling within its last cycle)." if hist["val_mse"][-1] == state.best else
                        "has converged by the project's criterion.") if state.converged else
                       f"is still improving ({100 * state.gain:.1f} % over the last quarter of its steps): "
                       "more training may lower it further."))
    committed_run = ([learnable_run_note(root, "The committed learnable run")]
                     if (root / "learnable" / "checkpoint.pt").is_file() else [])
    try:
        runs = learnable_start(root)
    except FileNotFoundError:
        return " ".join(said + committed_run)
    took = runs.attrs.get("init_weights") or {}
    start = ("its start" if committed_zero_param(took, root) else
             f"its start (zero_param's earlier weights, validation MSE {took['val_mse']:.6f})")
    runs = runs[runs["trains"] != UNTRAINED]
    last = runs[[c for c in runs.columns if c.startswith("step ")]].ffill(axis=1).iloc[:, -1]
    lrs = runs["peak learning rate"]
    if (last > runs["step 0"]).all():
        said.append(f"Trained from {start}, the learnable extension ended above the start's validation MSE in all "
                    f"{len(runs)} runs tried (training {' / '.join(dict.fromkeys(runs['trains']))}; peak learning rates "
                    f"{lrs.min():g} to {lrs.max():g}).")
    else:
        better = ", ".join(runs.index[last <= runs["step 0"]])
        said.append(f"Trained from {start}, the learnable extension improved on it in: {better}.")
    return " ".join(said + committed_run)


GAP_MODELS = ("zero_param_authors", "zero_param", "learnable_authors", "learnable")


def paper_gap(root: Path | None = None) -> pd.DataFrame:
    """Test MSE of the paper's models with one source of error taken away at a time, the paper's row beside.

    Read from ``results/benchmarks/paper_gap_full.json`` (``python benchmarks/paper_gap.py``): columns
    are the conditions (test photos; the true motion; flat grey; both), then the paper's MSE; the
    oracle's row is the floor on each background. ``attrs`` carry ``n``.
    """
    raw = read_json((root or RESULTS) / "benchmarks" / "paper_gap_full.json")
    rows = {}
    for name in (*GAP_MODELS, "oracle"):
        by_condition = raw["rows"][name]
        row = {condition: by_condition[condition]["mse"] if condition in by_condition else None
               for condition in raw["conditions"]}
        row["paper MSE"] = PAPER_TABLE1[name][1] if name in PAPER_TABLE1 else None
        rows[name] = row
    frame = pd.DataFrame(rows).T.astype(float)
    frame.attrs["n"] = raw["n"]
    return frame


def paper_gap_phrases(frame: pd.DataFrame) -> dict[str, str]:
    """Per paper model and condition (``grey``, ``both``): whose weights fall below the paper's row.

    Keys ``gap_<model>_<condition>_verdict``; values like "ours falls below the paper's row, the authors'
    weights do not". Also ``gap_authors_above`` (whether the authors' weights score above ours in
    every column) and ``gap_reach`` (which of our models reach their row with both taken away).
    """
    out = {}
    for model in ("zero_param", "learnable"):
        paper = float(frame.loc[model, "paper MSE"])
        for key, condition in (("grey", "grey"), ("both", "grey, true T")):
            ours = float(frame.loc[model, condition]) <= paper
            theirs = float(frame.loc[f"{model}_authors", condition]) <= paper
            out[f"gap_{model}_{key}_verdict"] = (
                "both sets of weights fall below the paper's row" if ours and theirs else
                "ours falls below the paper's row, the authors' weights do not" if ours else
                "the authors' weights fall below the paper's row, ours do not" if theirs else
                "neither set of weights falls below the paper's row")
    conditions = [c for c in frame.columns if c != "paper MSE"]
    above = all(frame.loc[f"{m}_authors", c] > frame.loc[m, c] for m in ("zero_param", "learnable") for c in conditions)
    out["gap_authors_above"] = "in every column" if above else "in some columns only"
    reach = [m for m in ("zero_param", "learnable") if frame.loc[m, "grey, true T"] <= frame.loc[m, "paper MSE"]]
    out["gap_reach"] = ("both models trained by us reach the paper's rows" if len(reach) == 2 else
                        "neither model trained by us reaches its row" if not reach else
                        "of the models trained by us only the "
                        + ("zero-parameter model" if reach == ["zero_param"] else "learnable extension") + " reaches its row")
    return out


TIE_PERCENT = 2.0  # readings closer than this on validation are not told apart (about 2 paired standard errors)


def init_block_phrase(readings: pd.DataFrame, chosen: str = "zero_param_authors") -> str:
    """What the readings of the init block's rows (``init_*`` rows of the readings table) show.

    Compares each on validation MSE with the chosen reading; a candidate that predicts better is
    named with its margin and the velocity error beside the chosen one's.
    """
    candidates = readings.loc[[k for k in readings.index if k.startswith("init_")]]
    if candidates.empty:
        raise ValueError("the readings table has no init_* rows: run `python -m motionseg variants readings`")
    base = readings.loc[chosen]
    better = candidates[candidates["validation MSE"] < base["validation MSE"]]
    if better.empty:
        return "None of them predicts better than leaving the rows unread."
    best = better["validation MSE"].idxmin()
    row = better.loc[best]
    pct = 100 * (1 - row["validation MSE"] / base["validation MSE"])
    others = len(candidates) - len(better)
    verdict = (" A margin that small does not decide between readings (the uniform phase-filter average is "
               "another), so we keep the reading that leaves the rows unread, and they stay unexplained."
               if pct < TIE_PERCENT else
               " A margin that large decides: this reading should replace the chosen one.")
    return (f"{'Only one' if len(better) == 1 else f'{len(better)} of them'} predict{'s' if len(better) == 1 else ''} "
            f"better (\"{row['variant']}\"{'' if len(better) == 1 else ', the best'}), by {pct:.1f} % on validation, "
            f"while its velocity error at the last seed frame is {row['velocity error']:.2f} px/frame against "
            f"{base['velocity error']:.2f}; {others} of the {len(candidates)} predict worse.{verdict}")
