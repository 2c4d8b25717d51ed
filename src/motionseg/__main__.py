"""Command line: ``python -m motionseg train|evaluate|reproduce``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from . import config, evaluate, zoo
from .train import provenance, train, write_json


def _train(args: argparse.Namespace) -> None:
    overrides = {"steps": args.steps} if args.steps else {}
    cfg = zoo.training_config(args.model, args.profile, **overrides)
    out = zoo.checkpoint_path(args.model, Path(args.results))
    print(f"training {args.model} ({cfg.profile} profile, {cfg.steps} steps) on {config.device()} -> {out}")
    limit = args.minutes * 60 if args.minutes else None
    _, history = train(cfg, out, resume=args.resume, time_limit=limit)
    if history.val_mse:
        print(f"trained {history.step[-1] if history.step else 0} steps; "
              f"last validation MSE {history.val_mse[-1]:.6f} (at step {history.val_step[-1]})")


def _evaluate(args: argparse.Namespace) -> None:
    prof = config.profile(args.profile)
    n = args.n or prof.n_test
    device = config.device()
    predictors = evaluate.reference_predictors()
    for name in args.models:
        model = zoo.load(name, Path(args.results) / name / "checkpoint.pt").to(device)
        predictors[name] = evaluate.model_predictor(model, device=device)
    start = time.perf_counter()
    results = evaluate.evaluate(predictors, n=n, batch_size=prof.eval_batch_size, progress=True)
    wall = time.perf_counter() - start
    for name, res in results.items():
        res["provenance"] = provenance(device, wall)
        res["profile"] = prof.name
        write_json(res, Path(args.results) / name / f"metrics_{prof.name}.json")
        print(f"{name:12s} L1 {res['l1']:.4f}  MSE {res['mse']:.5f}  SSIM {res['ssim']:.4f}  (n={res['n']})")


def _reproduce(args: argparse.Namespace) -> None:
    prof = config.profile_name(args.profile)
    root = Path(args.results or (zoo.RESULTS if prof == "full" else zoo.RESULTS / "quick"))
    models = args.models or zoo.names()
    limit = args.minutes * 60 if args.minutes else None
    for name in models:
        cfg = zoo.training_config(name, prof)
        out = zoo.checkpoint_path(name, root)
        print(f"== {name}: {cfg.steps} steps ({prof} profile) -> {out}")
        train(cfg, out, resume=True, time_limit=limit)
    _evaluate(argparse.Namespace(models=models, profile=prof, n=None, results=str(root)))


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m motionseg``."""
    parser = argparse.ArgumentParser(prog="python -m motionseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train (or resume) a model and write results/<model>/checkpoint.pt")
    p.add_argument("model", choices=zoo.names())
    p.add_argument("--profile", choices=config.PROFILES, default=None)
    p.add_argument("--steps", type=int, default=None, help="override the profile's number of steps")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop after this many minutes with a resumable checkpoint")
    p.add_argument("--results", default=str(zoo.RESULTS))
    p.set_defaults(func=_train)
    p = sub.add_parser("evaluate", help="evaluate trained models and the reference rows on the test set")
    p.add_argument("models", nargs="*", choices=zoo.names())
    p.add_argument("--profile", choices=config.PROFILES, default=None)
    p.add_argument("--n", type=int, default=None, help="number of test sequences (default: the profile's)")
    p.add_argument("--results", default=str(zoo.RESULTS))
    p.set_defaults(func=_evaluate)
    p = sub.add_parser("reproduce", help="train (or resume) every model, then evaluate all and write results/")
    p.add_argument("--profile", choices=config.PROFILES, default=None)
    p.add_argument("--models", nargs="*", choices=zoo.names(), default=None)
    p.add_argument("--minutes", type=float, default=None, help="training time limit per model and call")
    p.add_argument("--results", default=None, help="default: results/ (full) or results/quick/ (quick)")
    p.set_defaults(func=_reproduce)
    args = parser.parse_args(argv)
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.benchmark = True
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
