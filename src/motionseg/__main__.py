"""Command line: ``python -m motionseg train|evaluate|reproduce|variants|stress|report``.

Nothing is written under the committed ``results/`` unless asked for (``--results results``
or ``--out results``, or ``reproduce --profile full``), committed metrics are only replaced
with ``--force``, and no checkpoint is replaced without ``--resume`` (continue it) or
``--force`` (start over). Every output location is checked before any work starts. Errors in
what was asked for are one line and exit code 2 (bad arguments) or 1 (anything else the
library refuses); Ctrl-C during training saves a checkpoint, prints the command that
continues, and exits with 130.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from . import config, curves, evaluate, zoo
from .data import DataFileError
from .train import Interrupted, command_line, git_commit, provenance, restart_due, train, write_json

RUNS = Path("runs")


MAX_STEPS = 10 ** 8  # training steps of one run: far beyond any schedule, far below any overflow
MAX_SEQUENCES = 10 ** 7  # test sequences of one evaluation


def _positive(kind: Callable[[str], float | int], what: str, maximum: float | int | None = None
              ) -> Callable[[str], float | int]:
    """An argparse type: a finite ``kind`` > 0 (and <= ``maximum``), else one line saying what is allowed."""
    allowed = f"a {what} > 0" if maximum is None else f"a {what} in [1, {maximum:,}]"

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None
        if not value > 0 or (maximum is not None and value > maximum) or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value
    return parse


def _folder(text: str) -> str:
    """An argparse type: a folder name that is not empty (an empty one would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty string (use . for the current folder)")
    return text


def _check_writable(*paths: Path) -> None:
    """Raise ``OSError`` unless every file of ``paths`` can be written, before any work starts.

    Each path's folders must be folders (or not yet exist) and the nearest existing one must
    accept a new file; a path that exists must be a file. Nothing is left behind by the check.
    """
    for path in paths:
        if path.is_dir():
            raise IsADirectoryError(f"cannot write {path}: it is a folder")
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as err:
            raise PermissionError(f"cannot write {path}: {folder} does not accept new files "
                                  f"({err.strerror or err})") from None


REFERENCES = ("copy_last", "oracle")  # the predictors every evaluation runs beside the models


def _metrics_targets(out: Path, models: list[str], profile: str) -> list[Path]:
    """The metrics files an evaluation of ``models`` writes under ``out``."""
    return [out / name / f"metrics_{profile}.json" for name in [*models, *REFERENCES]]


def _refuse_replacing_committed(targets: list[Path], force: bool, how: str) -> None:
    """``FileExistsError`` if any of ``targets`` is a committed result (under results/) and not ``force``."""
    if force:
        return
    existing = [str(p) for p in targets if _inside_results(p) and p.exists()]
    if existing:
        raise FileExistsError(f"would replace committed results {', '.join(existing)}: "
                              f"pass --force to replace them, or {how} another folder")


def _inside_results(path: Path) -> bool:
    try:
        path.resolve().relative_to(zoo.RESULTS.resolve())
        return True
    except ValueError:
        return False


def _train(args: argparse.Namespace) -> None:
    overrides = {"steps": args.steps} if args.steps is not None else {}
    if args.grad_floor is not None:
        overrides["grad_floor"] = args.grad_floor
    cfg = zoo.training_config(args.model, args.profile, **overrides)
    out = zoo.checkpoint_path(args.model, Path(args.results))
    _check_writable(out)
    print(f"training {args.model} ({cfg.profile} profile, {cfg.steps} steps) on {config.device()} -> {out}")
    limit = args.minutes * 60 if args.minutes is not None else None
    started = time.perf_counter()
    _, history = train(cfg, out, resume=args.resume, time_limit=limit, force=args.force)
    done = history.step[-1] if history.step else 0
    while args.until_converged and done >= cfg.steps:
        # one more learning-rate cycle at a time until the validation curve has flattened
        state = curves.convergence(history.val_step, history.val_mse)
        fixed = cfg.schedule != "cyclic"  # a cosine's length is part of its schedule: it cannot be extended
        # a flat best that a restart (restart_factor) has not yet tried to lower is not judged
        # converged: one restart cycle first; a restart cycle that failed too ends the run
        restart = (cfg.restart_factor is not None and done % cfg.cycle_steps == 0
                   and done - cfg.cycle_steps not in history.restarts
                   and restart_due(history.val_step, history.val_mse, done, cfg.cycle_steps))
        converged = state.converged and not restart
        verdict = ("converged" if converged else
                   f"not converged; a {cfg.schedule} schedule has a fixed length, so the run ends here" if fixed
                   else "its last cycle did not lower the best: one more from the best weights at a lower peak"
                   if restart else "not converged, one more cycle")
        print(f"step {done}: best validation MSE {state.best:.6f}, {100 * state.gain:.2f} % better than at "
              f"3/4 of the steps: {verdict}")
        if converged or fixed:
            break
        left = None if limit is None else limit - (time.perf_counter() - started)
        if left is not None and left <= 0:
            break
        # a resumed run may already be past the recipe's steps: one cycle beyond where it stands,
        # not one beyond the recipe (that re-judged the same curve once per cycle it lagged)
        cfg = replace(cfg, steps=max(cfg.steps, done) + cfg.cycle_steps)
        _, history = train(cfg, out, resume=True, time_limit=left)
        done = history.step[-1] if history.step else 0
    if done < cfg.steps:
        print(f"stopped at step {done} of {cfg.steps} (time limit); continue with: {resume_command(args, [])}")
    if history.val_mse:
        print(f"trained {done} steps; last validation MSE {history.val_mse[-1]:.6f} (at step {history.val_step[-1]})")


def _same_numbers(path: Path, res: dict) -> bool:
    """Whether the metrics file at ``path`` holds the numbers of ``res`` (the same test
    sequences, the same per-frame metrics); False when it is missing or unreadable."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    keys = ("n", "l1", "mse", "ssim", "per_frame")
    return isinstance(old, dict) and all(k in old and old[k] == res.get(k) for k in keys)


def _evaluate(args: argparse.Namespace) -> None:
    prof = config.profile(args.profile)
    n = args.n or prof.n_test
    device = config.device()
    out = Path(args.out)
    targets = _metrics_targets(out, args.models, prof.name)
    _refuse_replacing_committed(targets, args.force, "--out")
    _check_writable(*targets)
    predictors = evaluate.reference_predictors()
    for name in args.models:
        model = zoo.load(name) if name in zoo.AUTHORS else zoo.load(name, zoo.checkpoint_path(name, Path(args.results)))
        predictors[name] = evaluate.model_predictor(model.to(device), device=device)
    start = time.perf_counter()
    results = evaluate.evaluate(predictors, n=n, batch_size=prof.eval_batch_size, progress=True)
    wall = time.perf_counter() - start
    command = command_line()
    for name, res in results.items():
        path = out / name / f"metrics_{prof.name}.json"
        if name in REFERENCES and _same_numbers(path, res):
            # the floor and the ceiling depend on the data alone: an evaluation of another model
            # leaves their file (and its provenance) as it was when the numbers are the same
            print(f"{name:15s} unchanged ({zoo.in_repository(path)})")
            continue
        res["provenance"] = provenance(device, wall, command=command)
        res["profile"] = prof.name
        res["checkpoint"] = (None if name in REFERENCES else
                             zoo.in_repository(zoo.weights_file(name, Path(args.results))))
        if res["checkpoint"] is not None:  # the tables refuse these numbers once the weights change
            res["checkpoint_sha256"] = zoo.weights_sha256(name, Path(args.results))
        write_json(res, path)
        print(f"{name:15s} L1 {res['l1']:.4f}  MSE {res['mse']:.5f}  SSIM {res['ssim']:.4f}  (n={res['n']})")


def _reproduce(args: argparse.Namespace) -> None:
    prof = config.profile_name(args.profile)
    root = Path(args.results or (zoo.RESULTS if prof == "full" else RUNS / "quick"))
    models = args.models or zoo.names()
    limit = args.minutes * 60 if args.minutes is not None else None
    # every output is checked before the first training starts, not after hours of it
    targets = _metrics_targets(root, models, prof)
    _refuse_replacing_committed(targets, args.force, "--results")
    trained = [name for name in models if name not in zoo.AUTHORS]  # the authors' weights are not retrained
    _check_writable(*targets, *(zoo.checkpoint_path(name, root) for name in trained))
    for name in trained:
        cfg = zoo.training_config(name, prof)
        out = zoo.checkpoint_path(name, root)
        print(f"== {name}: {cfg.steps} steps ({prof} profile) -> {out}")
        train(cfg, out, resume=True, time_limit=limit)
    _evaluate(argparse.Namespace(models=models, profile=prof, n=args.n, results=str(root), out=str(root),
                                 force=True))  # checked above, before the training


def _variants(args: argparse.Namespace) -> None:
    from . import variants
    prof = config.profile_name(args.profile)
    root = Path(args.results)
    target = root / args.table / f"table_{prof}.json"
    _refuse_replacing_committed([target], args.force, "--results")
    _check_writable(target, *(root / args.table / v.key / "checkpoint.pt" for v in variants.TABLES[args.table]))
    table = variants.run(args.table, args.profile, Path(args.results), n_test=args.n)
    for row in table["rows"]:
        t = row["test"]
        print(f"{row['key']:18s} L1 {t['l1']:.4f}  MSE {t['mse']:.5f}  SSIM {t['ssim']:.4f}  {row['label']}")


def _stress(args: argparse.Namespace) -> None:
    from . import stress
    prof = config.profile_name(args.profile)
    target = stress.output_path(Path(args.out), prof)
    _refuse_replacing_committed([target], args.force, "--out")
    _check_writable(target)
    if args.merge and not target.is_file():
        raise FileNotFoundError(f"--merge needs an existing table at {target}")
    old = json.loads(target.read_text()) if args.merge else None
    shifts = args.shifts
    if old is not None:
        # a merge evaluates the table's own sets unless told otherwise; a set the table lacks needs
        # every model's rows, which a run of some models cannot give: refused before any work
        shifts = shifts or [s for s in old.get("sets", list(old["shifts"])) if s in stress.SHIFTS]
        lacking = [s for s in shifts if s not in old["shifts"]]
        if lacking and args.models is not None:
            raise ValueError(f"sets {', '.join(lacking)} are not in the table at {target}: a new set is added for "
                             f"every model at once (--shifts {' '.join(lacking)} --merge, without --models)")
    # a merged run applies the existing table's chosen option instead of choosing it again
    table = stress.run(prof, Path(args.results), models=args.models, shifts=shifts, n=args.n,
                       option=old["option"] if old else None)
    if old is not None:  # put these models' rows (or a new set) into the existing table
        table = stress.merge(old, table)
    write_json(table, target)
    for name, choice in table["option"]["chosen"].items():
        print(f"{name}: {table['option']['parameter']} = {choice['ratio']:g} (chosen on validation data)")
    for name, sh in table["shifts"].items():
        row = "  ".join(f"{model} {r['mse']:.5f}" for model, r in sh["results"].items())
        print(f"{name:14s} MSE  {row}")
    print(f"wrote {target}")


def _report(args: argparse.Namespace) -> None:
    from . import report
    if args.check:
        if not report.update_readme(check=True):
            raise ValueError("README.md's results section differs from results/: run `python -m motionseg report --readme`")
        print("README.md's results section is up to date")
        return
    report.update_readme()
    print(f"wrote the results section of {report.README}")


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    top = argparse.ArgumentParser(prog="python -m motionseg", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    steps = _positive(int, "whole number", MAX_STEPS)
    sequences = _positive(int, "whole number", MAX_SEQUENCES)
    minutes = _positive(float, "number of minutes")
    p = sub.add_parser("train", help="train (or resume) a model and write <results>/<model>/checkpoint.pt")
    p.add_argument("model", choices=zoo.names())
    p.add_argument("--profile", choices=config.PROFILES, default=None)
    p.add_argument("--steps", type=steps, default=None, help="override the profile's number of steps (>= 1)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    p.add_argument("--force", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--minutes", type=minutes, default=None,
                   help="stop after this many minutes (> 0) with a resumable checkpoint")
    p.add_argument("--until-converged", action="store_true",
                   help="after the planned steps, add learning-rate cycles until the best validation MSE "
                        "improves by less than 1 %% over the last quarter of the steps (a cyclic schedule; a cosine "
                        "one has a fixed length and is only judged)")
    p.add_argument("--grad-floor", type=float, default=None,
                   help="train with the phase differences' gradient floor (a fraction of each spectrum's peak in "
                        "(0, 1); the values are unchanged) instead of the recipe's")
    p.add_argument("--results", type=_folder, default=str(RUNS),
                   help="folder for <model>/checkpoint.pt (default: runs/; the committed ones: results)")
    p.set_defaults(func=_train)
    p = sub.add_parser("evaluate", help="evaluate trained models and the reference rows on the test set")
    p.add_argument("models", nargs="+", choices=zoo.names(), metavar="MODEL",
                   help=f"one or more of {', '.join(zoo.names())}")
    p.add_argument("--profile", choices=config.PROFILES, default=None)
    p.add_argument("--n", type=sequences, default=None,
                   help="number of test sequences (>= 1; default: the profile's)")
    p.add_argument("--results", type=_folder, default=str(zoo.RESULTS),
                   help="where the checkpoints are (default: results/)")
    p.add_argument("--out", type=_folder, default=str(RUNS), help="where metrics_<profile>.json go (default: runs/)")
    p.add_argument("--force", action="store_true", help="replace metrics under results/")
    p.set_defaults(func=_evaluate)
    p = sub.add_parser("reproduce", help="train (or resume) every model, then evaluate all")
    p.add_argument("--profile", choices=config.PROFILES, default=None)
    p.add_argument("--models", nargs="+", choices=zoo.names(), default=None, metavar="MODEL")
    p.add_argument("--minutes", type=minutes, default=None, help="training time limit per model and call (> 0)")
    p.add_argument("--n", type=sequences, default=None, help="test sequences (>= 1; default: the profile's)")
    p.add_argument("--results", type=_folder, default=None,
                   help="default: results/ (full profile) or runs/quick/ (quick)")
    p.add_argument("--force", action="store_true", help="replace metrics under results/")
    p.set_defaults(func=_reproduce)
    p = sub.add_parser("variants", help="train and evaluate a table of variants (ladder, readings)")
    p.add_argument("table", choices=("ladder", "readings"))
    p.add_argument("--profile", choices=config.PROFILES, default=None)
    p.add_argument("--n", type=sequences, default=None, help="test sequences (>= 1; default: the profile's)")
    p.add_argument("--results", type=_folder, default=str(RUNS / "variants"),
                   help="folder for <table>/<variant>/ (default: runs/variants; the committed ones: results/variants)")
    p.add_argument("--force", action="store_true", help="replace a table under results/")
    p.set_defaults(func=_variants)
    from . import stress
    p = sub.add_parser("stress", help="every trained model on shifted test sets, without retraining")
    p.add_argument("--profile", choices=config.PROFILES, default=None)
    p.add_argument("--models", nargs="+", choices=zoo.names(), default=None, metavar="MODEL",
                   help="default: every model of Table 1 (those without a checkpoint are skipped); "
                        "a model named here must have one")
    p.add_argument("--shifts", nargs="+", default=None, metavar="SHIFT", choices=list(stress.SHIFTS),
                   help=f"one or more of {', '.join(stress.SHIFTS)}; default: all (horizon is always run: the standard set is read from it)")
    p.add_argument("--n", type=sequences, default=None, help="test sequences per shift (>= 1; default: the profile's)")
    p.add_argument("--results", type=_folder, default=str(zoo.RESULTS),
                   help="where the checkpoints are (default: results/)")
    p.add_argument("--out", type=_folder, default=str(RUNS),
                   help="writes <out>/stress/stress_<profile>.json (default: runs/)")
    p.add_argument("--force", action="store_true", help="replace the stress table under results/")
    p.add_argument("--merge", action="store_true",
                   help="put the rows of --models into the existing table (same profile and n), or a set it "
                        "lacks (--shifts SET, all models); the table's chosen option is applied, not chosen again")
    p.set_defaults(func=_stress)
    p = sub.add_parser("report", help="write the README's results section from results/")
    p.add_argument("--readme", action="store_true", required=True, help="update README.md (the only report so far)")
    p.add_argument("--check", action="store_true", help="only check that README.md is up to date (exit 1 if not)")
    p.set_defaults(func=_report)
    return top


def resume_command(args: argparse.Namespace, argv: list[str]) -> str:
    """The command that continues an interrupted ``python -m motionseg`` command (``argv``, parsed as ``args``).

    ``train`` continues with ``--resume`` (and without ``--force``, which would start over);
    ``reproduce`` and ``variants`` resume every training by themselves: the same command again.
    """
    if args.command != "train":
        return shlex.join(["python", "-m", "motionseg", *argv])
    words = ["train", args.model]
    for option in ("profile", "steps", "minutes", "results"):
        value = getattr(args, option)
        if value is not None and not (option == "results" and value == str(RUNS)):
            words += [f"--{option}", str(value)]
    if getattr(args, "until_converged", False):
        words.append("--until-converged")
    return shlex.join(["python", "-m", "motionseg", *words, "--resume"])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m motionseg``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.benchmark = True
    git_commit()  # the commit as the command starts, before it writes a result into the tree
    try:
        args.func(args)
    except Interrupted as stop:
        print(f"{stop}; continue with: {resume_command(args, argv)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, DataFileError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
