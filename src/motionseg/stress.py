"""Stress tests beyond Table 1: every trained model, without retraining, on shifted test sets.

Each :class:`Shift` is a setting of the generator (:func:`motionseg.data.make_sequences`)
that the models never saw in training: a longer horizon, faster motion, reflections off the
borders, two digits, other foregrounds and sizes, other backgrounds. The models are the
committed checkpoints of Table 1 (:mod:`motionseg.zoo`), the copy-last floor and the oracle.

* ``standard`` (the test set of Table 1) is not evaluated on its own: frames 0-19 of the
  40-frame ``horizon`` sequences *are* the standard test sequences, so its numbers are those of
  the first 10 predicted frames of ``horizon`` (same sequences, same predictions).
* ``train_photos`` is the in-distribution set: the training split (training digits and
  photos) with a seed no training run used; its gap to ``standard`` measures overfitting to the
  training photos.
* ``bounce_seed`` and ``bounce_future`` are *windows* of 100-frame bouncing sequences (paper
  speeds), 20 frames long, placed so that the digit's first reflection falls at a fixed frame:
  inside the seed frames, where a filter has to notice it, or inside the predicted frames,
  where no model that extrapolates its motion can know it. Sequences that do not reflect
  within 100 frames (both velocity components at most 1 px/frame) are skipped, so these sets
  hold faster digits than the standard set (1.5 or 2 px/frame along the reflecting axis).

The oracle knows the true layers of every object and their true displacements (for bounces the
reflected trajectory): it is the ceiling of predicting by moving layers, not of a model that
assumes constant motion.

Options of our models (:class:`motionseg.zero_param_plus.PlusOptions`) are chosen on
*validation variants* of the shifts: the same generator settings on the training split with
another seed (:data:`VAL_SEED`), never on the shifted test sets.
"""
from __future__ import annotations

import json

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from . import config, data, evaluate, fourier, zoo
from .zero_param_plus import PlusOptions

N_SEED = evaluate.N_SEED
VAL_SEED = 2000  # validation variants of the shifts: training split, a seed no training run used
TRAIN_SEED = 3000  # the in-distribution set (training photos and digits, unseen sequences)
LONG_FRAMES = data.FRAMES_RANGE[1]  # frames generated before a bounce window is cut out
WINDOW = data.N_FRAMES  # frames of a window: 10 seed + 10 predicted


@dataclass(frozen=True)
class Shift:
    """A shifted test set: generator options, the predicted horizon, and where its data come from.

    ``bounce_at``: for a window of a longer bouncing sequence, the window frame ``b`` whose
    displacement to frame ``b + 1`` is the first reflected one (frames ``0 .. b`` lie on a
    straight line, frame ``b + 1`` does not). ``split`` and ``seed`` name the test data;
    :meth:`validation` gives the same setting on the training split with :data:`VAL_SEED`.
    """

    name: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)
    n_future: int = evaluate.N_FUTURE
    bounce_at: int | None = None
    split: str = "test"
    seed: int = 0

    def __post_init__(self) -> None:
        data.check_options(**self.generator_options())  # bad options fail here, naming what is allowed
        if self.bounce_at is not None and not 0 < self.bounce_at < WINDOW - 1:
            raise ValueError(f"bounce_at must be between 1 and {WINDOW - 2}, got {self.bounce_at}")
        if N_SEED + self.n_future > self.n_frames:
            raise ValueError(f"shift {self.name}: {N_SEED} seed + {self.n_future} predicted frames "
                             f"exceed its {self.n_frames} frames")

    @property
    def n_frames(self) -> int:
        """Frames per sequence as the models see them."""
        return WINDOW if self.bounce_at is not None else int(self.options.get("n_frames", data.N_FRAMES))

    def generator_options(self) -> dict[str, Any]:
        """Keyword options of :func:`motionseg.data.make_sequences` (windows: the long sequences)."""
        if self.bounce_at is not None:
            return {**self.options, "n_frames": LONG_FRAMES, "bounce": True}
        return dict(self.options)

    def validation(self) -> "Shift":
        """The same setting on the training split with another seed, for choosing options."""
        return Shift(self.name, self.label, self.options, self.n_future, self.bounce_at, "train", VAL_SEED)

    def describe(self) -> dict[str, Any]:
        """A plain description for results files."""
        return {"name": self.name, "label": self.label, "options": self.generator_options(),
                "n_future": self.n_future, "bounce_at": self.bounce_at, "split": self.split, "seed": self.seed}


SHIFTS: dict[str, Shift] = {s.name: s for s in (
    Shift("train_photos", "training photos and digits (in distribution)", split="train", seed=TRAIN_SEED),
    Shift("horizon", "30 predicted frames", {"n_frames": 40}, n_future=30),
    Shift("fast", "faster: up to 4 px/frame per axis", {"max_speed": 4.0}),
    Shift("bounce_seed", "reflection in the seed (after frame 5)", {}, bounce_at=5),
    Shift("bounce_future", "reflection in the prediction (after frame 12)", {}, bounce_at=12),
    Shift("two_digits", "two digits", {"n_digits": 2}),
    Shift("three_digits", "three digits", {"n_digits": 3}),
    Shift("shapes", "shapes instead of digits", {"foreground": "shapes"}),
    Shift("large", "digits twice as large", {"scale": 2.0}),
    Shift("noise", "uniform-noise backgrounds", {"background": "noise"}),
    Shift("textures", "procedural texture backgrounds", {"background": "textures"}),
    Shift("grey", "flat grey backgrounds", {"background": "grey"}),
)}
STANDARD = "standard"  # derived from the first 10 predicted frames of "horizon"


def shift(name: str) -> Shift:
    """The shift called ``name`` (``ValueError`` naming the allowed ones otherwise)."""
    if name not in SHIFTS:
        raise ValueError(f"unknown shift {name!r}: allowed are {', '.join(SHIFTS)}")
    return SHIFTS[name]


def first_reflection(velocity_per_frame: np.ndarray) -> int | None:
    """The first frame ``t`` whose displacement to ``t + 1`` differs from the first one (T x 2)."""
    changed = np.flatnonzero((velocity_per_frame != velocity_per_frame[:1]).any(-1))
    return int(changed[0]) if changed.size else None


def window(seq: dict[str, np.ndarray], start: int, length: int = WINDOW) -> dict[str, np.ndarray]:
    """Frames ``start .. start + length - 1`` of one sequence (no leading n axis) as a sequence.

    Its ``velocity`` becomes the displacement from its first frame to the next.
    """
    out = {k: v[start:start + length] for k, v in seq.items()
           if k in ("frames", "alpha", "fg", "bg", "velocity_per_frame")}
    if "velocity_per_frame" in seq:
        out["velocity"] = seq["velocity_per_frame"][start]
    return out


def _window_sequences(sh: Shift, split: str, seed: int) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """(generator index, window start, window) of every long sequence that reflects where it fits."""
    assert sh.bounce_at is not None
    options = sh.generator_options()
    index = 0
    while True:
        seq = data.make_sequence(index, split, seed, **options)
        t = first_reflection(seq["velocity_per_frame"])
        if t is not None and sh.bounce_at <= t <= LONG_FRAMES - WINDOW + sh.bounce_at:
            start = t - sh.bounce_at
            yield index, start, window(seq, start)
        index += 1


def batches(sh: Shift, n: int, batch_size: int, split: str | None = None, seed: int | None = None
            ) -> Iterator[dict[str, np.ndarray]]:
    """The first ``n`` sequences of a shift in batches, each with ``index`` and ``start`` (n arrays).

    ``index`` is the generator index of each sequence and ``start`` its first frame there (0
    unless the shift cuts windows); :func:`case` makes one again. ``split`` and ``seed``
    default to the shift's own.
    """
    split = sh.split if split is None else split
    seed = sh.seed if seed is None else seed
    if sh.bounce_at is None:
        first = 0
        for raw in data.iter_batches(n, batch_size, split, seed, **sh.generator_options()):
            m = len(raw["frames"])
            raw["index"] = np.arange(first, first + m)
            raw["start"] = np.zeros(m, np.int64)
            first += m
            yield raw
        return
    found = _window_sequences(sh, split, seed)
    done = 0
    while done < n:
        rows = [next(found) for _ in range(min(batch_size, n - done))]
        out = {k: np.stack([w[k] for _, _, w in rows]) for k in rows[0][2]}
        out["index"] = np.array([i for i, _, _ in rows])
        out["start"] = np.array([s for _, s, _ in rows])
        done += len(rows)
        yield out


def case(sh: Shift, index: int, start: int = 0, split: str | None = None, seed: int | None = None
         ) -> dict[str, np.ndarray]:
    """Sequence ``index`` of a shift (a window from ``start`` for bounce shifts), with a leading axis of 1."""
    split = sh.split if split is None else split
    seed = sh.seed if seed is None else seed
    seq = data.make_sequence(index, split, seed, **sh.generator_options())
    if sh.bounce_at is not None:
        seq = window(seq, start)
    return {k: v[None] for k, v in seq.items()}


def oracle_predict(batch: dict[str, Tensor], n_seed: int = N_SEED, n_future: int = evaluate.N_FUTURE) -> Tensor:
    """Move each object's true layers of the last seed frame along its true displacements.

    With one object and constant motion this is :func:`motionseg.evaluate.oracle_predict`. With
    per-frame velocities (bounces) the shift after ``k`` frames is the sum of the true
    displacements; with several objects each is moved on its own and they are composed back
    to front (object 0 in front), as the generator draws them.
    """
    if "obj_alpha" not in batch and "velocity_per_frame" not in batch:
        return evaluate.oracle_predict(batch, n_seed, n_future)
    if "obj_alpha" in batch:
        alphas, fgs = batch["obj_alpha"][:, :, n_seed - 1], batch["obj_fg"][:, :, n_seed - 1]
        per_frame = batch.get("obj_velocity_per_frame")
        velocity = batch["obj_velocity"]
    else:
        alphas, fgs = batch["alpha"][:, None, n_seed - 1], batch["fg"][:, None, n_seed - 1]
        per_frame = batch["velocity_per_frame"][:, None]
        velocity = batch["velocity"][:, None]
    steps = torch.arange(1, n_future + 1, dtype=torch.float32)
    if per_frame is not None:  # B x K x n_future x 2: displacement from the last seed frame
        shifts = per_frame[:, :, n_seed - 1:n_seed - 1 + n_future].cumsum(2)
    else:
        shifts = velocity[:, :, None, :] * steps[None, None, :, None]
    out = batch["bg"][:, n_seed - 1, None].expand(-1, n_future, -1, -1)
    for k in reversed(range(alphas.shape[1])):  # back to front
        a = alphas[:, k, None].expand(-1, n_future, -1, -1)
        moved_alpha = fourier.fourier_shift(a, shifts[:, k])
        moved_fg = fourier.fourier_shift((alphas[:, k] * fgs[:, k])[:, None].expand(-1, n_future, -1, -1),
                                         shifts[:, k])
        out = moved_fg + (1 - moved_alpha) * out
    return out.clamp(0.0, 1.0)


# -- the runner -------------------------------------------------------------------------------

MODELS = ("zero_param_authors", "zero_param", "learnable_authors", "learnable", "zero_param_plus", "learnable_plus",
          "multi_object", "multi_object_nets", "conv_pgp", "vln_resnet", "vln_ldc")
PLUS = ("zero_param_plus", "learnable_plus")
REFERENCES = ("copy_last", "oracle")
OPTION = "remeasure_motion"  # our fix (task 4), applied to the committed weights of the plus models
OPTION_PARAMETER = "remeasure_ratio"
OPTION_CANDIDATES = (0.5, 0.75, 1.0, 1.5, 2.0)
OPTION_RULE = ("the candidate with the lowest mean, over the validation variants of all sets, of "
               "its validation MSE divided by that of the model without the option")
FIXED = "+remeasure"  # suffix of the rows of the plus models with the option


@dataclass(frozen=True)
class StressProfile:
    """Sizes of a stress run: test sequences per shift, validation sequences per set, batch size,
    and standard test sequences on which the cost of our option is measured."""

    name: str
    n: int
    n_validation: int
    batch_size: int
    n_cost: int


PROFILES = {"quick": StressProfile("quick", n=4, n_validation=4, batch_size=4, n_cost=4),
            "full": StressProfile("full", n=200, n_validation=100, batch_size=25, n_cost=1000)}


def stress_profile(name: str | None = None) -> StressProfile:
    """The sizes of profile ``name`` (default: the active profile, see :mod:`motionseg.config`)."""
    return PROFILES[config.profile_name(name)]


def with_options(model: nn.Module, **changes: Any) -> nn.Module:
    """A copy of one of our models with the same weights and some options changed (eval mode)."""
    options = {**model.options.to_dict(), **changes}
    copy = type(model)(options)
    copy.load_state_dict(model.state_dict())
    copy.eval()
    return copy


def load_models(names: tuple[str, ...] | list[str], root: Path | None = None,
                device: torch.device | str = "cpu") -> tuple[dict[str, nn.Module], dict[str, str]]:
    """The committed models that exist, and a note for each one whose checkpoint is missing."""
    models, skipped = {}, {}
    for name in names:
        if name in zoo.AUTHORS:  # the released weights, vendored in data/authors
            models[name] = zoo.load(name).to(device)
            continue
        path = zoo.checkpoint_path(name, root)
        if not path.is_file():
            skipped[name] = f"no checkpoint at {path}"
            print(f"note: skipping {name}: {skipped[name]}", flush=True)
            continue
        models[name] = zoo.load(name, path).to(device)
    return models, skipped


def predictors(models: dict[str, nn.Module], n_future: int, device: torch.device | str = "cpu"
               ) -> dict[str, evaluate.Predictor]:
    """Copy-last, the oracle of :func:`oracle_predict` and one predictor per model."""
    copy_last = evaluate.CopyLast()
    out: dict[str, evaluate.Predictor] = {
        "copy_last": lambda b: (copy_last(b["frames"][:, :N_SEED], n_future), None),
        "oracle": lambda b: (oracle_predict(b, N_SEED, n_future), None),
    }
    for name, model in models.items():
        out[name] = evaluate.model_predictor(model, N_SEED, n_future, device)
    return out


def evaluate_shift(sh: Shift, preds: dict[str, evaluate.Predictor], n: int, batch_size: int,
                   split: str | None = None, seed: int | None = None, progress: bool = False
                   ) -> tuple[dict[str, dict], list[tuple[int, int]]]:
    """Evaluate ``preds`` on the first ``n`` sequences of a shift; also returns their (index, start)."""
    seen: list[tuple[int, int]] = []

    def tapped() -> Iterator[dict[str, np.ndarray]]:
        for raw in batches(sh, n, batch_size, split, seed):
            seen.extend(zip(raw.pop("index").tolist(), raw.pop("start").tolist()))
            yield raw

    res = evaluate.evaluate(preds, n=n, batch_size=batch_size, n_seed=N_SEED, n_future=sh.n_future,
                            progress=progress, batches=tapped())
    return res, seen


def summary(res: dict[str, Any], n_future: int | None = None) -> dict[str, Any]:
    """What a stress table keeps of one :func:`motionseg.evaluate.evaluate` result.

    ``n_future``: summarise only the first predicted frames (the standard set within ``horizon``);
    per-sequence numbers, which cover all predicted frames, are then left out.
    """
    per_frame = {k: v[:n_future] for k, v in res["per_frame"].items()}
    out: dict[str, Any] = {"n": res["n"], **{k: float(np.mean(v)) for k, v in per_frame.items()},
                           "per_frame": {k: _short(v) for k, v in per_frame.items()}, "seconds": None}
    if n_future is None:
        out["per_sequence"] = {"mse": res["per_sequence"]["mse"]}
        out["seconds"] = res["seconds"]
    states = res.get("per_state_step") or {}
    if states:
        last_seed = N_SEED - 2  # entry k is frame k + 1
        steps = N_SEED - 1 + len(per_frame["mse"])
        out["per_state_step"] = {k: _short(states[k][:steps]) for k in ("iou", "epe")}
        out["iou"] = states["iou"][last_seed]
        out["epe"] = states["epe"][last_seed]
        out["epe_future"] = float(np.mean(states["epe"][last_seed + 1:steps]))
    return out


def pick_setting(validation_mse: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Apply :data:`OPTION_RULE` to ``{set: {"off": mse, "<ratio>": mse, ...}}``.

    Each set counts the same, whatever its error level: the score of a setting is the mean over
    sets of its MSE divided by the MSE without the option. Ties go to the larger ratio, which
    restarts less often.
    """
    settings = [k for k in next(iter(validation_mse.values())) if k != "off"]
    score = {k: float(np.mean([v[k] / v["off"] for v in validation_mse.values()])) for k in settings}
    best = min(score, key=lambda k: (score[k], -float(k)))
    return {"ratio": float(best), "score": score}


def _short(values: list[float]) -> list[float]:
    # six significant digits keep the results file small and are plenty for plots and checks
    return [float(f"{v:.6g}") for v in values]


def choose_option(models: dict[str, nn.Module], prof: StressProfile, device: torch.device | str = "cpu",
                  progress: bool = False) -> dict[str, Any]:
    """Choose ``remeasure_ratio`` for each plus model on the validation variants of all sets.

    Validation variant: the set's generator setting on the training split with :data:`VAL_SEED`
    (for ``train_photos``, whose own data are the training split, that seed too). The rule is
    fixed beforehand (:data:`OPTION_RULE`); the shifted test sets are never looked at.
    """
    plus = {name: models[name] for name in PLUS if name in models}
    table: dict[str, dict[str, dict[str, float]]] = {name: {} for name in plus}
    for sh in SHIFTS.values():
        val = sh.validation()
        preds: dict[str, evaluate.Predictor] = {}
        for name, model in plus.items():
            preds[f"{name}|off"] = evaluate.model_predictor(model, N_SEED, sh.n_future, device)
            for ratio in OPTION_CANDIDATES:
                fixed = with_options(model, **{OPTION: True, OPTION_PARAMETER: ratio}).to(device)
                preds[f"{name}|{ratio:g}"] = evaluate.model_predictor(fixed, N_SEED, sh.n_future, device)
        if progress:
            print(f"== validation: {sh.name}", flush=True)
        res, _ = evaluate_shift(val, preds, prof.n_validation, prof.batch_size, progress=progress)
        for key, r in res.items():
            name, setting = key.split("|")
            table[name].setdefault(sh.name, {})[setting] = r["mse"]
    chosen = {name: pick_setting(sets) for name, sets in table.items()}
    defaults = PlusOptions()
    return {"option": OPTION, "parameter": OPTION_PARAMETER, "candidates": list(OPTION_CANDIDATES),
            "fixed": {"remeasure_floor": defaults.remeasure_floor,
                      "remeasure_disagreement": defaults.remeasure_disagreement},
            "rule": OPTION_RULE, "validation_seed": VAL_SEED, "n_validation": prof.n_validation,
            "validation_mse": table, "chosen": chosen}


def option_cost(models: dict[str, nn.Module], rows: dict[str, nn.Module], prof: StressProfile,
                device: torch.device | str = "cpu", progress: bool = False) -> dict[str, dict[str, Any]]:
    """L1, MSE and SSIM of each plus model without and with the option on the standard test set."""
    preds = {}
    for name in PLUS:
        if name in models:
            preds[name] = evaluate.model_predictor(models[name], device=device)
            preds[name + FIXED] = evaluate.model_predictor(rows[name + FIXED], device=device)
    if not preds:
        return {}
    res = evaluate.evaluate(preds, n=prof.n_cost, batch_size=prof.batch_size, progress=progress)
    return {name: {"n": res[name]["n"], **{setting: {k: res[key][k] for k in ("l1", "mse", "ssim")}
                                          for setting, key in (("off", name), ("on", name + FIXED))}}
            for name in PLUS if name in models}


def run(profile: str | None = None, root: Path | None = None, models: list[str] | None = None,
        shifts: list[str] | None = None, n: int | None = None, progress: bool = True,
        command: str | None = None, option: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stress table: choose the option on validation data, then evaluate every model on every shift.

    ``root``: where the checkpoints are (default: the committed ``results/``). Of the default
    models (``models`` not given) those without a checkpoint are skipped with a printed note; a
    model asked for by name must have one (``FileNotFoundError`` before any work, as
    ``evaluate`` does). ``shifts`` default to all (``horizon`` is always evaluated, since the
    standard set is read from it). ``option``: the option section of an existing table (for a
    run to be merged into it): its chosen settings are applied, nothing is chosen or costed
    again, and ``horizon`` (with the standard set) is evaluated only if asked for. Returns the
    results file's content.
    """
    from .train import command_line, provenance

    prof = stress_profile(profile)
    names = list(models) if models is not None else list(MODELS)
    for name in names:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}: allowed are {', '.join(MODELS)}")
        if models is not None and name not in zoo.AUTHORS and not zoo.checkpoint_path(name, root).is_file():
            raise FileNotFoundError(f"no checkpoint at {zoo.checkpoint_path(name, root)} for the model {name} "
                                    f"asked for; train it with `python -m motionseg train {name}`, or leave it "
                                    f"out of --models")
    chosen_shifts = list(shifts) if shifts is not None else list(SHIFTS)
    for name in chosen_shifts:
        shift(name)
    if "horizon" not in chosen_shifts and option is None:
        chosen_shifts.insert(0, "horizon")
    n = n or prof.n
    device = config.device()
    command = command or command_line()
    start = time.perf_counter()
    loaded, skipped = load_models(names, root, device)
    given = option is not None
    option = option if given else choose_option(loaded, prof, device, progress)
    rows = dict(loaded)
    for name, choice in option["chosen"].items():
        if name in loaded:
            rows[name + FIXED] = with_options(loaded[name], **{OPTION: True, OPTION_PARAMETER: choice["ratio"]}).to(device)
    if not given:
        if progress:
            print(f"== cost of {OPTION} on {prof.n_cost} standard test sequences", flush=True)
        option["cost"] = option_cost(loaded, rows, prof, device, progress)
    out: dict[str, Any] = {"profile": prof.name, "n": n, "n_seed": N_SEED, "option": option, "skipped": skipped,
                           "models": {name: {"checkpoint": zoo.in_repository(zoo.weights_file(name, root)),
                                             "sha256": zoo.weights_sha256(name, root),
                                             "trained_steps": getattr(m, "trained_steps", None),
                                             "trained_on": (getattr(m, "provenance", {}) or {}).get("device")}
                                      for name, m in loaded.items()},
                           "shifts": {}}
    for name in chosen_shifts:
        sh = SHIFTS[name]
        if progress:
            print(f"== {name}: {sh.label}", flush=True)
        res, seen = evaluate_shift(sh, predictors(rows, sh.n_future, device), n, prof.batch_size, progress=progress)
        out["shifts"][name] = {**sh.describe(), "sequences": seen,
                               "results": {row: summary(r) for row, r in res.items()}}
        if name == "horizon":
            standard = {**SHIFTS["horizon"].describe(), "name": STANDARD, "label": "standard test set (Table 1)",
                        "options": {}, "n_future": evaluate.N_FUTURE, "sequences": seen,
                        "derived_from": "the first 10 predicted frames of horizon",
                        "results": {row: summary(r, evaluate.N_FUTURE) for row, r in res.items()}}
    if "horizon" in chosen_shifts:
        out["shifts"] = {STANDARD: standard, **out["shifts"]}
    out["sets"] = list(out["shifts"])  # their order (the file's keys are sorted)
    out["provenance"] = provenance(device, time.perf_counter() - start, command=command)
    return out


def output_path(out: Path, profile: str) -> Path:
    """``<out>/stress/stress_<profile>.json``."""
    return Path(out) / "stress" / f"stress_{profile}.json"


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the rows of ``new``'s models put in (replacing theirs), for a partial rerun.

    Both must come from the same profile and number of sequences; the reference rows and the
    option section stay ``old``'s (the same sequences give the same reference rows). A set that
    ``old`` lacks is added whole, if ``new`` has every row of ``old`` on it (every model, the
    option's rows and the references: ``stress --shifts <set> --merge`` with all models). The
    merged file keeps ``old``'s provenance and lists each merge under ``updates``.
    """
    for key in ("profile", "n"):
        if old.get(key) != new.get(key):
            raise ValueError(f"cannot merge stress tables with different {key}: {old.get(key)!r} and {new.get(key)!r}")
    old_rows = {row for sh in old["shifts"].values() for row in sh["results"]}
    added = [name for name in new["shifts"] if name not in old["shifts"]]
    for name in added:
        lacking = old_rows - set(new["shifts"][name]["results"])
        if lacking:
            raise ValueError(f"cannot merge: set {name} is not in the existing stress table, and the new run lacks "
                             f"its rows {sorted(lacking)}; run every model on it (--shifts {name} without --models)")
    rows = [m for m in new["models"]]
    out = json.loads(json.dumps(old))
    for name in added:
        out["shifts"][name] = json.loads(json.dumps(new["shifts"][name]))
        out["sets"] = [*out.get("sets", list(old["shifts"])), name]
    for name, sh in new["shifts"].items():
        if name in added:
            continue
        # a fresh run holds (index, start) tuples, a table read from JSON lists: compare as JSON
        seqs = json.loads(json.dumps(sh["sequences"]))
        kept = old["shifts"][name]["sequences"]
        if seqs != kept:
            sizes = f" ({len(seqs)} against {len(kept)})" if isinstance(seqs, list) and isinstance(kept, list) else ""
            raise ValueError(f"cannot merge set {name}: its sequences differ from the existing table's{sizes}")
        for row in rows:
            out["shifts"][name]["results"][row] = sh["results"][row]
    out["models"].update(new["models"])
    out["skipped"] = {k: v for k, v in out.get("skipped", {}).items() if k not in rows}
    out.setdefault("updates", []).append({"models": rows, "provenance": new["provenance"]})
    return out
