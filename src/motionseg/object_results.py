"""The multi-object model's per-object benchmark (``benchmarks/multi_object.py``) as tables and phrases."""
from __future__ import annotations

from typing import Any

import pandas as pd

from . import curves

SET_LABELS = {"one_digit": "one digit", "two_digits": "two digits", "three_digits": "three digits"}
MODEL = "multi_object K=2"  # the committed model as trained (K = 2)
PLUS = "zero_param_plus"
PLUS_GAINS = "multi_object K=2, plus gains"  # the same model before training on two digits
NETS = "multi_object_nets K=2"  # the committed model with nets (K = 2)
# the targets of issue 25
IOU_TARGET = 0.8
MSE_SHARE_OF_CONV_PGP = 0.5


def benchmark_table(bench: dict[str, Any]) -> pd.DataFrame:
    """One row per set and model: MSE; mask IoU, precision and recall; velocity error; in front
    (share); ms per sequence."""
    rows = {}
    # the file's keys are sorted: sets by their number of digits, then the one-layer model first
    order = [PLUS, MODEL, PLUS_GAINS, NETS, "multi_object K=3", "multi_object_nets K=3"]
    for name in sorted(bench["sets"], key=lambda n: list(SET_LABELS).index(n) if n in SET_LABELS else len(SET_LABELS)):
        models = bench["sets"][name]
        for label in sorted(models, key=lambda m: order.index(m) if m in order else len(order)):
            r = models[label]
            rows[f"{SET_LABELS.get(name, name)}: {label}"] = {
                "MSE": r["mse"], "IoU": r["iou"], "precision": r.get("precision", float("nan")),
                "recall": r.get("recall", float("nan")), "velocity error": r["epe"],
                "in front": r.get("front", float("nan")), "ms per sequence": 1000 * r["seconds_per_sequence"]}
    return pd.DataFrame(rows).T


def _cost_ratio(bench: dict[str, Any], model: str = MODEL) -> float:
    sets = bench["sets"]
    mine = sum(sets[s][model]["seconds_per_sequence"] for s in sets)
    base = sum(sets[s][PLUS]["seconds_per_sequence"] for s in sets)
    return mine / base


def _cost_by_set(bench: dict[str, Any]) -> str:
    """The cost ratio of each set, in words: "1.6 on one digit, 2.2 on two digits and 2.0 on three digits"."""
    names = sorted(bench["sets"], key=lambda n: list(SET_LABELS).index(n) if n in SET_LABELS else len(SET_LABELS))
    parts = [f"{bench['sets'][n][MODEL]['seconds_per_sequence'] / bench['sets'][n][PLUS]['seconds_per_sequence']:.1f} "
             f"on {SET_LABELS.get(n, n)}" for n in names]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def targets(bench: dict[str, Any]) -> pd.DataFrame:
    """The four targets: what each asks, the measured value, and whether it is met."""
    two, one = bench["sets"]["two_digits"], bench["sets"]["one_digit"]
    limit = MSE_SHARE_OF_CONV_PGP * bench["conv_pgp_two_digits_mse"]
    ratio = _cost_ratio(bench)
    rows = [
        ("two digits: MSE", f"<= {limit:.5f} (half of Conv-PGP's)", f"{two[MODEL]['mse']:.5f}", two[MODEL]["mse"] <= limit),
        ("two digits: per-object mask IoU", f"> {IOU_TARGET}", f"{two[MODEL]['iou']:.3f}", two[MODEL]["iou"] > IOU_TARGET),
        ("one digit: MSE", f"<= {one[PLUS]['mse']:.5f} (zero_param_plus)", f"{one[MODEL]['mse']:.5f}",
         one[MODEL]["mse"] <= one[PLUS]["mse"]),
        ("cost per sequence", "<= 2 x zero_param_plus (K = 2)", f"{ratio:.2f} x", ratio <= 2),
    ]
    frame = pd.DataFrame(rows, columns=["target", "asked", "measured", "met"]).set_index("target")
    frame["met"] = frame["met"].map({True: "yes", False: "no"})
    frame.index.name = None
    return frame


def phrases(bench: dict[str, Any]) -> dict[str, Any]:
    """Numbers the chapter's prose quotes (glue keys ``mo_...``)."""
    one, two, three = bench["sets"]["one_digit"], bench["sets"]["two_digits"], bench["sets"]["three_digits"]
    before = {f"mo_{name}_before_{key}": sets[PLUS_GAINS][key] for name, sets in (("one", one), ("two", two))
              for key in ("mse", "iou") if PLUS_GAINS in sets}
    return {**before, "mo_one_mse": one[MODEL]["mse"], "mo_two_ratio": two[MODEL]["mse"] / bench["conv_pgp_two_digits_mse"], "mo_two_iou": two[MODEL]["iou"],
            "mo_two_epe": two[MODEL]["epe"], "mo_two_precision": two[MODEL]["precision"],
            "mo_two_recall": two[MODEL]["recall"], "mo_three_iou": three["multi_object K=3"]["iou"],
            "mo_two_front": two[MODEL]["front"], "mo_two_overlapping": two[MODEL]["overlapping_sequences"],
            "mo_cost_ratio": _cost_ratio(bench), "mo_cost_by_set": _cost_by_set(bench),
            # how the benchmark timed the models, e.g. "fastest of 9 turns on 50 sequences"
            "mo_timing": bench["timing"].replace(" sequences", " sequences, the same for every model"),
            # the same computation under other gains: how much the timings vary between two rows
            "mo_twin_cost_ratio": _cost_ratio(bench, PLUS_GAINS) if all(PLUS_GAINS in m for m in bench["sets"].values())
            else float("nan"),
            "mo_iou_verdict": f"{'meets' if two[MODEL]['iou'] > IOU_TARGET else 'misses'} the second (above {IOU_TARGET})",
            "mo_training_effect": _training_effect(two),
            "mo_targets_verdict": _targets_sentence(targets(bench))}


def _training_effect(two: dict[str, Any]) -> str:
    """What training on two digits did to the two-digit MSE, against the same model with the plus
    model's gains: helped or hurt by more than 2 %, else changed little."""
    if PLUS_GAINS not in two:
        return "Training on two digits is not measured here"
    change = two[MODEL]["mse"] / two[PLUS_GAINS]["mse"] - 1
    if change < -0.02:
        return "Training on two digits helped where it was trained"
    if change > 0.02:
        return "Training on two digits did not help, even where it was trained"
    return "Training on two digits changed little"


def _targets_sentence(frame: pd.DataFrame) -> str:
    """"It meets all four targets" or which it misses (the chapter's summary)."""
    missed = [str(t) for t, met in frame["met"].items() if met != "yes"]
    if not missed:
        return f"It meets all {len(frame)} targets of its issue."
    return f"It meets {len(frame) - len(missed)} of its {len(frame)} targets; it misses: {'; '.join(missed)}."


_COUNTS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count_word(n: int) -> str:
    """``n`` in words up to ten ("no", "one", ...), in digits beyond."""
    return _COUNTS[n] if 0 <= n < len(_COUNTS) else str(n)


def _rounds(n: int) -> str:
    return f"{_count_word(n)} round{'' if n == 1 else 's'}"


def pruning_phrases(pruning: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Numbers and words of the pruning schedule (``benchmarks/multi_object_pruning.py``; glue keys
    ``mo_prune_...``) on the validation sequences with all training photos: the schedule of the
    model's ``options`` against pruning after the last pass alone without the contest (``alone``),
    and the same rounds as the model's without the contest (``uncontested``)."""
    early, last = options.get("prune_early_rounds", 0), options["prune_rounds"]
    contested = options.get("prune_contested", False)
    rows = pruning["photo_sets"]["all"]

    def row(e: int, r: int, c: bool) -> dict[str, Any]:
        return next(v for v in rows.values()
                    if (v["prune_early_rounds"], v["prune_rounds"], v.get("prune_contested", False)) == (e, r, c))
    mine, uncontested = row(early, last, contested), row(early, last, False)
    alone = next(v for v in rows.values() if v["prune_early_rounds"] == 0 and not v.get("prune_contested", False))
    schedule = (f"{_rounds(early)} after the first pass and {_rounds(last)} after the last" if early
                else f"{_rounds(last)} after the last pass")
    total, before = early + last, alone["prune_rounds"]
    rounds_in_all = (f"{_rounds(total)} in all, as before" if total == before
                     else f"{_rounds(total)} in all against {_count_word(before)}")
    return {"mo_prune_schedule": schedule, "mo_prune_in_all": rounds_in_all,
            "mo_prune_alone_rounds": _rounds(alone["prune_rounds"]),
            "mo_prune_alone_iou": alone["iou"], "mo_prune_alone_mse": alone["mse"],
            "mo_prune_uncontested_iou": uncontested["iou"], "mo_prune_uncontested_mse": uncontested["mse"],
            "mo_prune_iou": mine["iou"], "mo_prune_mse": mine["mse"], "mo_prune_n": pruning["n"]}


def _set_label(key: str) -> str:
    """"1 digit, held_out photos" -> "1 digit, held-out"; "1 digit, all photos" -> "1 digit"."""
    digits, photos = key.split(", ")
    return digits if photos == "all photos" else f"{digits}, {photos.removesuffix(' photos').replace('_', '-')}"


def nets_table(nets: dict[str, Any]) -> pd.DataFrame:
    """``benchmarks/multi_object_nets.py`` as a table: a row per model, the validation MSE of each set
    (columns named by the set), and the per-object mask IoU on two digits with all training photos."""
    sets = nets["sets"]
    frame = pd.DataFrame({_set_label(key): {label: row["mse"] for label, row in models.items()}
                          for key, models in sets.items()})
    two = next(key for key in sets if key.startswith("2 digits") and key.endswith("all photos"))
    frame["IoU, 2 digits"] = pd.Series({label: row["iou"] for label, row in sets[two].items()})
    return frame


def nets_phrases(nets: dict[str, Any], bench: dict[str, Any]) -> dict[str, Any]:
    """Numbers and words about ``multi_object_nets`` (glue keys ``mo_nets_...``): on validation
    (``nets``, ``benchmarks/multi_object_nets.py``) against ``multi_object`` and without each net;
    on the test sets (``bench``, ``benchmarks/multi_object.py``)."""
    sets = nets["sets"]
    out: dict[str, Any] = {}
    for key, models in sets.items():
        tag = ("one" if key.startswith("1 ") else "two") + ("_held" if "held_out" in key else "")
        out[f"mo_nets_val_{tag}"] = models["multi_object_nets"]["mse"]
        out[f"mo_plain_val_{tag}"] = models["multi_object"]["mse"]
        for net in ("alpha", "fg", "bg"):
            out[f"mo_nets_val_{tag}_without_{net}"] = models[f"multi_object_nets without {net}"]["mse"]
    better = [key for key, models in sets.items() if models["multi_object_nets"]["mse"] < models["multi_object"]["mse"]]
    if len(better) == len(sets):
        out["mo_nets_val_verdict"] = "lower on every validation set, one digit and two, with either set of photos"
    elif not better:
        out["mo_nets_val_verdict"] = "higher on every validation set: the nets do not help"
    else:
        out["mo_nets_val_verdict"] = f"lower on {len(better)} of the {len(sets)} validation sets ({', '.join(better)})"
    out["mo_nets_best"] = "`multi_object_nets`" if len(better) == len(sets) else "`multi_object`"
    # the layer nets, trained together: does either alone do worse than no nets at all?
    alone_worse = [net for net, other in (("fg", "alpha"), ("alpha", "fg"))
                   if all(m[f"multi_object_nets without {other}"]["mse"] > m["multi_object"]["mse"] for m in sets.values())]
    out["mo_nets_pair"] = ("The two layer nets were trained together and work as a pair: with either one switched "
                           "off, the MSE is higher on every set than with no nets at all" if len(alone_worse) == 2
                           else "Each layer net helps on its own too" if not alone_worse
                           else f"Of the two layer nets, the {'mask' if alone_worse[0] == 'alpha' else 'appearance'} "
                                "net alone does worse on every set than no nets at all")
    one, two = bench["sets"]["one_digit"], bench["sets"]["two_digits"]
    if NETS in two:
        out.update({"mo_nets_two_mse": two[NETS]["mse"], "mo_nets_two_iou": two[NETS]["iou"],
                    "mo_nets_one_mse": one[NETS]["mse"],
                    "mo_nets_cost_ratio": _cost_ratio(bench, NETS)})
    return out


RESUME_NETS = ("`python -m motionseg train multi_object_nets --profile full --results results "
               "--until-converged --resume`")


def nets_training_phrases(model: Any) -> dict[str, Any]:
    """The training run of a committed ``multi_object_nets`` (glue keys ``mo_nets_...``): its nets'
    parameters, steps, minutes, validation MSE at the start and at best, by how much (%) the best
    fell over the last quarter of the steps, and whether that meets the book's criterion of
    convergence (:func:`curves.convergence`), in words."""
    history = model.history
    steps, mse = history["val_step"], history["val_mse"]
    state = curves.convergence(steps, mse)
    fall = 100 * state.gain
    if state.converged:
        verdict = (f"Its best fell by {fall:.1f} % over the last quarter of the steps: by this book's criterion "
                   f"(less than 1 %) the run has converged")
    else:
        verdict = (f"Its best still fell by {fall:.1f} % over the last quarter of the steps: by this book's "
                   f"criterion (less than 1 %) the run has not converged, and {RESUME_NETS} continues it")
    return {"mo_nets_params": sum(p.numel() for p in model.nets.parameters()), "mo_nets_steps": model.trained_steps,
            "mo_nets_minutes": model.provenance["wall_seconds"] / 60, "mo_nets_start": mse[0],
            "mo_nets_best_val": min(mse), "mo_nets_quarter_fall": fall, "mo_nets_convergence": verdict}
