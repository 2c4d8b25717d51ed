"""What the nets of ``multi_object_nets`` add, on validation data: ``python benchmarks/multi_object_nets.py``

On validation sequences (training split, seed 1000: not the test set) of one digit and of two,
with all the training photos as backgrounds and with the held-out ones alone
(``data.HELD_OUT_PHOTOS``, which no training showed), the MSE of the ten predicted frames and the
per-object mask IoU at the last seed frame of the committed ``multi_object`` (no nets), the
committed ``multi_object_nets``, and the latter with each of its nets switched off (what each
adds, the others kept). The choice between the two models is made on these numbers. Writes
``results/benchmarks/multi_object_nets.json``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from motionseg import config, data, metrics, zoo
from motionseg.evaluate import _objects_at
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]
NETS = ("alpha", "fg", "bg")


def models() -> dict[str, torch.nn.Module]:
    """The two committed models, and the nets model without each of its nets."""
    out = {"multi_object": zoo.load("multi_object"), "multi_object_nets": zoo.load("multi_object_nets")}
    for name in NETS:
        out[f"multi_object_nets without {name}"] = zoo.load("multi_object_nets").without(name)
    return out


def measure(built: dict[str, torch.nn.Module], n_digits: int, photo_set: str, n: int, batch_size: int = 50,
            seed: int = 1000) -> dict[str, dict[str, float]]:
    """Per model: MSE and per-object IoU of the moving objects on ``n`` validation sequences."""
    ious: dict[str, list[float]] = {k: [] for k in built}
    squared = dict.fromkeys(built, 0.0)
    for batch in data.iter_batches(n, batch_size, "train", seed, n_digits=n_digits, photo_set=photo_set):
        frames = torch.from_numpy(batch["frames"])
        x, future = frames[:, :10], frames[:, 10:]
        true_alpha, true_velocity = _objects_at(batch, x.shape[1] - 1)
        moving = true_velocity.norm(dim=-1) > 0
        for label, model in built.items():
            with torch.no_grad():
                pred = model(x, future.shape[1])
            ious[label] += metrics.match_objects(model.layers.alpha, true_alpha)[0][moving].tolist()
            squared[label] += float(((pred - future) ** 2).mean(dim=(1, 2, 3)).sum())
    return {label: {"mse": squared[label] / n, "iou": sum(ious[label]) / max(len(ious[label]), 1)} for label in built}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "multi_object_nets.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    built = models()
    result: dict[str, Any] = {"n": args.n, "split": "train", "seed": 1000, "sets": {}}
    for n_digits in (1, 2):
        for photo_set in ("all", "held_out"):
            key = f"{n_digits} digit{'s' if n_digits > 1 else ''}, {photo_set} photos"
            result["sets"][key] = measure(built, n_digits, photo_set, args.n)
            for label, row in result["sets"][key].items():
                print(f"{key:28s} {label:36s} MSE {row['mse']:.6f} IoU {row['iou']:.3f}", flush=True)
    result["provenance"] = provenance(config.device(), time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
