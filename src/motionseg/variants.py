"""Tables of model variants trained the same way and evaluated on the same sequences.

* ``ladder``: from the paper's zero-parameter model to our learnable one, one change at a
  time, each rung a named option set (the paper's learnable extension beside it);
* ``readings``: the authors' released weights (``zero_param_authors``, ``learnable_authors``)
  run under the readings they chose and under each alternative, one change at a time, and
  without the phase filter (Fig. 2c) or the DoG. Nothing is trained: this table is how the
  released weights decided the readings the paper leaves open.

Every variant that changes what is trained is trained with the same schedule (the quick
profile's training settings of its model: 300 steps of 8 sequences), starting where its
model starts (the learnable ones from the gains of the zero-parameter variant they extend).
A variant whose change adds no parameters and no training may reuse the weights of another
(``reuse``). All are evaluated on the validation sequences (training photos, 256) and the
test sequences (1,000 in the full profile). ``python -m motionseg variants ladder`` writes
``<results>/<table>/<key>/checkpoint.pt``, each variant's evaluation
``<results>/<table>/<key>/eval_<profile>.json`` and ``<results>/<table>/table_<profile>.json``.
An evaluation is kept while its weights, options and sequence counts are those of the run
(fingerprint), so an interrupted table resumes where it stopped, across sessions.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config, evaluate, zoo
from .train import command_line, provenance, train, write_json
from .zero_param_plus import PlusOptions

N_VAL = 256
VAL_SEED = 1000  # the validation sequences of training (train split, seed + 1000)


@dataclass(frozen=True)
class Variant:
    """One row of a variants table."""

    key: str  # folder name
    label: str
    model: str  # zoo name
    options: dict[str, Any] = field(default_factory=dict)  # changes to the model's default options
    init_from: str | None = None  # key of the variant whose gains it starts from
    reuse: str | None = None  # key of the variant whose weights it uses, untrained
    without: tuple[str, ...] = ()  # nets switched off (learnable models)

    @property
    def released(self) -> bool:
        """Whether the variant runs the authors' released weights (nothing to train)."""
        return self.model in zoo.AUTHORS


def _plus(**steps: bool) -> dict[str, Any]:
    """Options of a plus model: the paper's model with the named steps of ours switched on."""
    off = {name: False for name in PlusOptions.STEPS}
    return {**off, **steps}


def _learnable_plus(**steps: bool) -> dict[str, Any]:
    base = dict(motion_from_differences=True, kalman_gains=True, gauss_seidel=True, evidence_init=True,
                fill_background=True)
    return {**_plus(**base), "bg_gate": False, **steps}


TABLES: dict[str, list[Variant]] = {
    "ladder": [
        Variant("zero_param", "the paper's zero-parameter model", "zero_param"),
        Variant("cycle", "our first reading of the paper's cycle (the base of ours)", "zero_param_plus", _plus()),
        Variant("motion", "+ motion from the phase correlation of frame differences", "zero_param_plus",
                _plus(motion_from_differences=True)),
        Variant("kalman", "+ Kalman-scaled gains", "zero_param_plus",
                _plus(motion_from_differences=True, kalman_gains=True)),
        Variant("gauss_seidel", "+ corrections one after another (Gauss-Seidel)", "zero_param_plus",
                _plus(motion_from_differences=True, kalman_gains=True, gauss_seidel=True)),
        Variant("evidence", "+ first mask from motion evidence", "zero_param_plus",
                _plus(motion_from_differences=True, kalman_gains=True, gauss_seidel=True, evidence_init=True)),
        Variant("zero_param_plus", "+ background fill-in (= zero_param_plus)", "zero_param_plus"),
        Variant("learnable", "the paper's learnable extension (trained from scratch, as the authors')", "learnable"),
        Variant("nets", "zero_param_plus + the paper's nets", "learnable_plus", _learnable_plus(),
                init_from="zero_param_plus"),
        Variant("bg_gate", "+ background gate", "learnable_plus", _learnable_plus(bg_gate=True),
                init_from="zero_param_plus"),
        Variant("smooth_background", "+ background smoother (weights of the row above)", "learnable_plus",
                _learnable_plus(bg_gate=True, smooth_background=True), reuse="bg_gate"),
        Variant("smooth_layers", "+ least-squares layers, one template (same weights)", "learnable_plus",
                {**_learnable_plus(bg_gate=True, smooth_background=True, smooth_layers=True), "phase_templates": 1},
                reuse="bg_gate"),
        Variant("learnable_plus", "+ phase templates (= learnable_plus, same weights)", "learnable_plus",
                reuse="bg_gate"),
    ],
    "readings": [
        Variant("zero_param_authors", "the authors' zero-parameter weights, readings as chosen", "zero_param_authors"),
        Variant("rows_a_fg_bg", "gain rows in the order A, FG, BG (the authors' later code)", "zero_param_authors",
                {"rows": "a,fg,bg"}),
        Variant("bg_outside", "first BG: the frame outside the first A", "zero_param_authors",
                {"bg_estimate": "outside"}),
        Variant("uniform", "phase filter averages increments uniformly", "zero_param_authors",
                {"filter_weight": "uniform"}),
        Variant("no_dog_bias", "DoG without its fourth gain as an offset", "zero_param_authors", {"dog_bias": False}),
        Variant("no_alpha_clamp", "A not clamped after it is moved", "zero_param_authors", {"clamp_moved_alpha": False}),
        Variant("init_scale", "init block: each first state times its gain", "zero_param_authors",
                {"init_gains": "scale"}),
        Variant("init_correction", "init block: first states by one correction from FG = BG = 0", "zero_param_authors",
                {"init_gains": "correction"}),
        Variant("init_fg_correction", "init block: the same for FG and A, first BG the frame", "zero_param_authors",
                {"init_gains": "fg_correction"}),
        Variant("init_blend", "init block: frame 1 mixes moved state and estimate by its gains", "zero_param_authors",
                {"init_gains": "blend"}),
        Variant("no_phase_filter", "without the phase filter (Fig. 2c)", "zero_param_authors", {"phase_filter": False}),
        Variant("no_dog", "without the DoG on A", "zero_param_authors", {"dog": False}),
        Variant("learnable_authors", "the authors' learnable weights, readings as chosen", "learnable_authors"),
        Variant("nets_first_only", "nets only for the first estimates (no refinement of A)", "learnable_authors",
                {"refine_alpha": False}),
        Variant("no_nets", "the learnable gains without their nets", "learnable_authors",
                without=("modelA", "modelFG", "modelBG")),
    ],
}


def checkpoint_of(table: str, variant: Variant, root: Path) -> Path:
    """Where the weights of ``variant`` live (its own, or those it reuses)."""
    key = variant.reuse or variant.key
    return root / table / key / "checkpoint.pt"


def run(table: str, profile: str | None = None, root: Path | None = None, n_test: int | None = None,
        progress: bool = True) -> dict[str, Any]:
    """Train (or resume) every variant of ``table`` that trains, evaluate all, write the table."""
    if table not in TABLES:
        raise ValueError(f"unknown variants table {table!r}: allowed are {', '.join(TABLES)}")
    prof = config.profile(profile)
    root = Path(root if root is not None else zoo.RESULTS / "variants")
    variants = TABLES[table]
    device = config.device()
    command = command_line()
    start = time.perf_counter()
    for v in variants:
        if v.reuse or v.released:
            continue
        # the same schedule for every variant: its model's quick training settings; a learnable
        # variant starts from the gains of the zero-parameter variant of its model's name
        cfg = zoo.training_config(v.model, "quick", options=v.options or None)
        if cfg.init_from != v.init_from:
            raise ValueError(f"variant {v.key} starts from {v.init_from}, its model's schedule from {cfg.init_from}")
        print(f"== {table} / {v.key}: {v.label}", flush=True)
        train(cfg, root / table / v.key / "checkpoint.pt", resume=True, device=device, progress=progress,
              command=command)
    n = n_test or prof.n_test
    rows = []
    for v in variants:
        model = _load(table, v, root)
        summary = _evaluation(table, v, model, root, prof.name, n, prof.eval_batch_size, device, progress, command)
        rows.append({"key": v.key, "label": v.label, "model": v.model, "options": v.options, "reuse": v.reuse,
                     "init_from": v.init_from, "without": list(v.without), "released": v.released,
                     "gains": _count(model, gains=True), "parameters": _count(model, gains=False),
                     "trained_steps": model.trained_steps, **summary})
    out = {"table": table, "profile": prof.name, "n_test": n, "n_validation": N_VAL,
           "schedule": "the quick-profile training settings of each model (300 steps of 8 sequences)",
           "rows": rows, "provenance": provenance(device, time.perf_counter() - start, command=command)}
    write_json(out, root / table / f"table_{prof.name}.json")
    return out


def _load(table: str, v: Variant, root: Path) -> Any:
    """The variant's model: released weights, its own checkpoint, or another variant's weights."""
    if v.released:
        model = zoo.load(v.model, options=v.options or None)
    else:
        model = zoo.load(v.model, checkpoint_of(table, v, root))
        if v.reuse:  # the same weights under this variant's options
            model = _with_options(v, model)
    return model.without(*v.without) if v.without else model


def _with_options(v: Variant, source: Any) -> Any:
    model = zoo.build(v.model, options=v.options or None)
    model.load_state_dict(source.state_dict())
    model.eval()
    model.provenance, model.history, model.trained_steps = source.provenance, source.history, source.trained_steps
    return model


def _count(model: Any, gains: bool) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith("gains.") == gains)


def summary(res: dict[str, Any]) -> dict[str, Any]:
    """What a results file keeps of one :func:`motionseg.evaluate.evaluate` result (frames and states)."""
    keep = {k: res[k] for k in ("n", "l1", "mse", "ssim", "mse_by_region")}
    states = res.get("per_state_step") or {}
    if states:
        keep["iou_last_seed"] = states["iou"][8]  # entry 8 is frame 9, the last seed frame
        keep["epe_last_seed"] = states["epe"][8]
        keep["iou"] = states["iou"]
        keep["epe"] = states["epe"]
    return keep


def _fingerprint(table: str, v: Variant, root: Path, n: int) -> dict[str, Any]:
    """What an evaluation of ``v`` depends on: its weights' bytes, its options, the sequences, the code."""
    if v.released:
        from . import authors
        source = authors.path_of(v.model)
    else:
        source = checkpoint_of(table, v, root)
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    return {"weights_sha256": digest, "options": v.options, "without": list(v.without), "n_test": n,
            "n_validation": N_VAL, "validation_seed": VAL_SEED, "code_sha256": _code_digest()}


def _code_digest() -> str:
    """One hash of the library's source: any change to it may change an evaluation."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _evaluation(table: str, v: Variant, model: Any, root: Path, profile: str, n: int, batch_size: int,
                device: Any, progress: bool, command: str) -> dict[str, Any]:
    """``{"test": ..., "validation": ...}`` of ``v``: kept from an earlier run with the same fingerprint."""
    path = root / table / v.key / f"eval_{profile}.json"
    fingerprint = _fingerprint(table, v, root, n)
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError):
            kept = None  # a cut-off file is evaluated again, never trusted
        if isinstance(kept, dict) and kept.get("fingerprint") == fingerprint:
            return {"test": kept["test"], "validation": kept["validation"]}
    start = time.perf_counter()
    predictor = {v.key: evaluate.model_predictor(model.to(device), device=device)}
    if progress:
        print(f"== {table} / {v.key}: evaluating on {n} test and {N_VAL} validation sequences", flush=True)
    test = evaluate.evaluate(predictor, n=n, batch_size=batch_size, progress=progress)[v.key]
    val = evaluate.evaluate(predictor, n=N_VAL, batch_size=batch_size, split="train", seed=VAL_SEED,
                            progress=progress)[v.key]
    out = {"test": summary(test), "validation": summary(val)}
    write_json({**out, "fingerprint": fingerprint,
                "provenance": provenance(device, time.perf_counter() - start, command=command)}, path)
    return out
