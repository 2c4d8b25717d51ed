"""When the multi-object model prunes its masks (issue 25): ``python benchmarks/multi_object_pruning.py``

On two-digit validation sequences (training split, seed 1000: not the test set), with all the
training photos as backgrounds and with the held-out ones alone (``data.HELD_OUT_PHOTOS``, which
the model's training never showed), the per-object mask IoU at the last seed frame and the MSE of
the ten predicted frames of the committed ``multi_object`` gains under pruning schedules: rounds
after the earlier pass of step 3 (``prune_early_rounds``, 0: none) and after the last
(``prune_rounds``), and whether pixels that two layers claim and hide from each other go to the
layer that explains them best (``prune_contested``). The schedules differ in the masks the last
pass starts from, and in cost:
each round of pruning is one comparison of every layer with the background over the seed frames
(seconds per sequence are given, one thread, beside whatever else ran on the machine).
Writes ``results/benchmarks/multi_object_pruning.json``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from motionseg import config, zoo
from motionseg.evaluate import compare_objects
from motionseg.stress import with_options
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]
# (rounds after the earlier pass, rounds after the last, contested pixels to the best layer)
SCHEDULES = ((0, 3, False), (1, 1, False), (2, 1, False), (3, 1, False), (1, 2, False), (3, 3, False),
             (0, 3, True), (2, 1, True), (3, 3, True))


def schedules(n: int = 200, batch_size: int = 50, seed: int = 1000, photo_set: str = "all") -> dict[str, Any]:
    """Per schedule: mean per-object IoU of the moving objects, MSE, seconds per sequence."""
    models = {f"early {e}, last {r}{', contested' if c else ''}":
              with_options(zoo.load("multi_object"), prune_early_rounds=e, prune_rounds=r, prune_contested=c)
              for e, r, c in SCHEDULES}
    scores = compare_objects(models, n, 2, "train", seed, batch_size, photo_set)
    return {label: {**scores[label], "prune_early_rounds": e, "prune_rounds": r, "prune_contested": c}
            for (label, (e, r, c)) in zip(models, SCHEDULES)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "multi_object_pruning.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    result: dict[str, Any] = {"n": args.n, "split": "train", "seed": 1000, "n_digits": 2,
                              "checkpoint_options": zoo.load("multi_object").options.to_dict(), "photo_sets": {}}
    for photo_set in ("all", "held_out"):
        result["photo_sets"][photo_set] = schedules(args.n, photo_set=photo_set)
        for label, row in result["photo_sets"][photo_set].items():
            print(photo_set, label, {k: round(v, 5) for k, v in row.items()}, flush=True)
    result["provenance"] = provenance(config.device(), time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
