"""Targets of the multi-object model (issue 25), measured: ``python benchmarks/multi_object.py``

On the test split (seed 0, the sets of the stress chapter): one digit (the standard set), two
digits (the stress set ``two_digits``) and three digits. For ``multi_object`` with K = 2 and 3
layers and for ``zero_param_plus`` (one layer): MSE, L1 and SSIM of the ten predicted frames,
per-object mask IoU and velocity error at the last seed frame (layers matched to the true
objects by mask IoU; each object's own, unoccluded mask; static objects, background to any
motion-based model, are counted and left out), and seconds per sequence on this
machine (one thread, batches of 50, after one warm-up batch). Targets: on two digits MSE at
most half of Conv-PGP's (from ``results/stress``) and per-object IoU above 0.8; on one digit no
worse than ``zero_param_plus``; cost per sequence at most K times ``zero_param_plus``'s.
The layers' gains are ``zero_param_plus``'s (committed checkpoint); nothing here is trained.
Writes ``results/benchmarks/multi_object.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionseg import config, data, metrics, zoo
from motionseg.multi_object import MultiObject
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]
SETS = {"one_digit": 1, "two_digits": 2, "three_digits": 3}


def models() -> dict[str, torch.nn.Module]:
    """``zero_param_plus`` and the multi-object model with its gains, K = 2 and 3."""
    plus = zoo.load("zero_param_plus")
    out: dict[str, torch.nn.Module] = {"zero_param_plus": plus}
    for k in (2, 3):
        m = MultiObject({"objects": k})
        m.load_state_dict(plus.state_dict())
        out[f"multi_object K={k}"] = m.eval()
    return out


def evaluate_set(model: torch.nn.Module, n_digits: int, n: int, batch_size: int) -> dict[str, Any]:
    sums: dict[str, list[float]] = {"mse": [], "l1": [], "ssim": [], "iou": [], "epe": []}
    seconds, static = 0.0, 0
    for batch in data.iter_batches(n, batch_size, "test", 0, n_digits=n_digits):
        x = torch.from_numpy(batch["frames"])
        start = time.perf_counter()
        with torch.no_grad():
            pred = model(x[:, :10], 10)
        seconds += time.perf_counter() - start
        target = x[:, 10:20]
        sums["mse"] += metrics.mse(pred, target).mean(1).tolist()
        sums["l1"] += metrics.l1(pred, target).mean(1).tolist()
        sums["ssim"] += metrics.ssim(pred, target).mean(1).tolist()
        if n_digits > 1:
            true_alpha = torch.from_numpy(batch["obj_alpha"][:, :, 9])
            true_velocity = torch.from_numpy(batch["obj_velocity"])
        else:
            true_alpha = torch.from_numpy(batch["alpha"][:, None, 9])
            true_velocity = torch.from_numpy(batch["velocity"])[:, None]
        layers = getattr(model, "layers", None)
        if layers is not None:
            alpha, velocity = layers.alpha, layers.velocity
        else:  # one layer: the plus model's final state at the last seed frame
            _, states = model.run(x[:, :10], 0, keep_states=True)
            st = states.stacked()
            alpha, velocity = st["alpha"][:, -1:], st["velocity"][:, -1:]
        iou, layer = metrics.match_objects(alpha, true_alpha)
        rows = torch.arange(len(x))[:, None]
        matched = velocity[rows, layer.clamp_min(0)]
        epe = torch.where(layer >= 0, (matched - true_velocity).norm(dim=-1), torch.full_like(iou, float("nan")))
        # a static object is background to every motion-based model: counted, not scored
        moving = true_velocity.norm(dim=-1) > 0
        sums["iou"] += iou[moving].tolist()
        sums["epe"] += epe[moving].tolist()
        static += int((~moving).sum())
    out = {k: float(np.nanmean(v)) for k, v in sums.items()}
    out["unmatched_objects"] = int(np.isnan(sums["epe"]).sum())
    out["static_objects"] = static
    out["seconds_per_sequence"] = seconds / n
    out["n"] = n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "multi_object.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    result: dict[str, Any] = {"n": args.n, "sets": {}}
    built = models()
    warm = torch.from_numpy(data.make_sequences(4, "train", 0, n_digits=2)["frames"][:, :10])
    for model in built.values():
        with torch.no_grad():
            model(warm, 10)
    for name, n_digits in SETS.items():
        result["sets"][name] = {}
        for label, model in built.items():
            res = evaluate_set(model, n_digits, args.n, args.batch_size)
            result["sets"][name][label] = res
            print(f"{name:13s} {label:20s} MSE {res['mse']:.5f} IoU {res['iou']:.3f} velocity error "
                  f"{res['epe']:.3f} px/frame  {1000 * res['seconds_per_sequence']:.0f} ms/sequence", flush=True)
    stress = json.loads((ROOT / "results" / "stress" / "stress_full.json").read_text())
    result["conv_pgp_two_digits_mse"] = stress["shifts"]["two_digits"]["results"]["conv_pgp"]["mse"]
    result["provenance"] = provenance(config.device(), time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
