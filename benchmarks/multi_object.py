"""Targets of the multi-object model (issue 25), measured: ``python benchmarks/multi_object.py``

On the test split (seed 0, the sets of the stress chapter): one digit (the standard set), two
digits (the stress set ``two_digits``) and three digits. For ``multi_object`` and ``multi_object_nets``
with K = 2 and 3 layers and for ``zero_param_plus`` (one layer): MSE, L1 and SSIM of the ten predicted frames,
per-object mask IoU (with its precision and recall) and velocity error at the last seed frame (layers matched to the true
objects by mask IoU; each object's own, unoccluded mask; static objects, background to any
motion-based model, are counted and left out), how often the object in front is composed in
front where two objects overlap during the seed frames, and seconds per sequence on this
machine (one thread; per set, the models take turns on the same batch of the set's first
``--batch-size`` sequences, ``--repeats`` times, and each keeps its fastest turn: work beside the
benchmark slows a turn, never speeds it, and slows every model alike). Targets: on two digits MSE at
most half of Conv-PGP's (from ``results/stress``) and per-object IoU above 0.8; on one digit no
worse than ``zero_param_plus``; cost per sequence at most K times ``zero_param_plus``'s.
The models are the committed checkpoints (each for both K); nothing here is trained.
Writes ``results/benchmarks/multi_object.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from motionseg import config, data, zoo
from motionseg.evaluate import evaluate_objects
from motionseg.multi_object import MultiObject
from motionseg.stress import with_options
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]
SETS = {"one_digit": 1, "two_digits": 2, "three_digits": 3}


def models() -> dict[str, torch.nn.Module]:
    """``zero_param_plus``; the multi-object model with its trained gains, K = 2 and 3; with the
    plus model's gains (what training on two digits adds); and ``multi_object_nets``, K = 2 and 3."""
    plus = zoo.load("zero_param_plus")
    trained = zoo.load("multi_object")
    nets = zoo.load("multi_object_nets")
    out: dict[str, torch.nn.Module] = {"zero_param_plus": plus}
    for k in (2, 3):
        out[f"multi_object K={k}"] = with_options(trained, objects=k)
    untrained = MultiObject(trained.options.to_dict())
    untrained.load_state_dict(plus.state_dict())
    out["multi_object K=2, plus gains"] = untrained.eval()
    for k in (2, 3):
        out[f"multi_object_nets K={k}"] = with_options(nets, objects=k)
    return out


def fastest_turns(built: dict[str, torch.nn.Module], n_digits: int, n: int, repeats: int) -> dict[str, float]:
    """Seconds per sequence of each model on the test set's first ``n`` sequences of ``n_digits``
    digits: the models take turns ``repeats`` times, each keeps its fastest."""
    frames = torch.from_numpy(data.make_sequences(n, "test", 0, n_digits=n_digits)["frames"][:, :10])
    best = {label: float("inf") for label in built}
    with torch.no_grad():
        for _ in range(repeats):
            for label, model in built.items():
                start = time.perf_counter()
                model(frames, 10)
                best[label] = min(best[label], (time.perf_counter() - start) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=9, help="turns per model on the timed batch")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "multi_object.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    result: dict[str, Any] = {"n": args.n, "sets": {}, "timing": f"fastest of {args.repeats} turns on {args.batch_size} sequences"}
    built = models()
    warm = torch.from_numpy(data.make_sequences(4, "train", 0, n_digits=2)["frames"][:, :10])
    for model in built.values():
        with torch.no_grad():
            model(warm, 10)
    for name, n_digits in SETS.items():
        result["sets"][name] = {}
        timed = fastest_turns(built, n_digits, args.batch_size, args.repeats)
        for label, model in built.items():
            res = evaluate_objects(model, n_digits, args.n, args.batch_size)
            res["seconds_per_sequence"] = timed[label]
            result["sets"][name][label] = res
            print(f"{name:13s} {label:30s} MSE {res['mse']:.5f} IoU {res['iou']:.3f} (precision {res['precision']:.3f}, "
                  f"recall {res['recall']:.3f}) velocity error "
                  f"{res['epe']:.3f} px/frame front {res['front']:.2f}  {1000 * res['seconds_per_sequence']:.0f} ms/sequence", flush=True)
    stress = json.loads((ROOT / "results" / "stress" / "stress_full.json").read_text())
    result["conv_pgp_two_digits_mse"] = stress["shifts"]["two_digits"]["results"]["conv_pgp"]["mse"]
    result["provenance"] = provenance(config.device(), time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
