"""What the gap to the paper's rows is made of. ``python benchmarks/paper_gap.py``

Runs the paper's two models, each with the authors' released weights and with ours, on the same
test sequences under four conditions that take one source of error away at a time:

* ``photos``: the standard test set (Table 1's data; ``--n`` sequences);
* ``photos, true T``: the same sequences, the model's motion state replaced by the true translation
  at every frame (:func:`motionseg.evaluate.true_motion_predictor`): what is left is segmentation
  and background;
* ``grey``: the same digits and motion on a flat grey background, where every background estimate
  is trivial: what is left is the digit's own error (motion and mask);
* ``grey, true T``: both: what is left is the mask and the appearance of the digit.

The oracle (true FG, A, BG and velocity, moved by the Fourier shift theorem) is the floor on each
background. Nothing here chooses a design (the test set only reports). Writes
``results/benchmarks/paper_gap_full.json`` (``--out``); refuses to replace it without ``--force``.
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any

import torch

from motionseg import config, evaluate, zoo
from motionseg.train import provenance, write_json
from motionseg.variants import summary

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("zero_param_authors", "zero_param", "learnable_authors", "learnable")
BACKGROUNDS = {"photos": {}, "grey": {"background": "grey"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=256, help="test sequences (default 256)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "paper_gap_full.json")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        raise SystemExit(f"{args.out} exists; pass --force to replace it")
    if args.n < 1:
        raise SystemExit(f"--n must be at least 1, got {args.n}")
    device = config.device()
    start = time.perf_counter()
    models = {name: zoo.load(name).to(device) for name in MODELS}
    rows: dict[str, dict[str, Any]] = {}
    for bg, options in BACKGROUNDS.items():
        predictors = {}
        for name, model in models.items():
            predictors[f"{name}|{bg}"] = evaluate.model_predictor(model, device=device)
            predictors[f"{name}|{bg}, true T"] = evaluate.true_motion_predictor(model, device=device)
        predictors[f"oracle|{bg}"] = evaluate.reference_predictors()["oracle"]
        res = evaluate.evaluate(predictors, n=args.n, batch_size=args.batch_size, split="test", seed=0, **options)
        for key, r in res.items():
            name, condition = key.split("|")
            rows.setdefault(name, {})[condition] = summary(r)
            print(f"{name:20s} {condition:16s} MSE {r['mse']:.6f}", flush=True)
    # where each model's weights come from: the release's file, or our run's command and commit
    checkpoints = {name: {k: v for k, v in getattr(m, "provenance", {}).items()
                          if k in ("source", "file", "sha256", "command", "commit")} for name, m in models.items()}
    for name, info in checkpoints.items():
        if name not in zoo.AUTHORS:
            info["sha256"] = hashlib.sha256(zoo.checkpoint_path(name).read_bytes()).hexdigest()
    write_json({"n": args.n, "split": "test", "seed": 0, "conditions": list(next(iter(rows.values()))),
                "rows": rows, "checkpoints": checkpoints,
                "provenance": provenance(device, time.perf_counter() - start)}, args.out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
