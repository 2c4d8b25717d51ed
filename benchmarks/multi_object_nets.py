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
import copy
import time
from pathlib import Path
from typing import Any

import torch

from motionseg import config, zoo
from motionseg.evaluate import compare_objects
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]
NETS = ("alpha", "fg", "bg")


def models() -> dict[str, torch.nn.Module]:
    """The two committed models, and the nets model without each of its nets."""
    nets = zoo.load("multi_object_nets")
    out = {"multi_object": zoo.load("multi_object"), "multi_object_nets": nets}
    for name in NETS:
        out[f"multi_object_nets without {name}"] = copy.deepcopy(nets).without(name)
    return out


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
            scores = compare_objects(built, args.n, n_digits, photo_set=photo_set)
            result["sets"][key] = {label: {k: row[k] for k in ("mse", "iou")} for label, row in scores.items()}
            for label, row in result["sets"][key].items():
                print(f"{key:28s} {label:36s} MSE {row['mse']:.6f} IoU {row['iou']:.3f}", flush=True)
    result["provenance"] = provenance(config.device(), time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
