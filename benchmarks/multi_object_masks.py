"""Where the multi-object model's masks go wrong (issue 25): ``python benchmarks/multi_object_masks.py``

On two-digit validation sequences (training split, seed 1000: not the test set), the per-object
mask IoU at the last seed frame after each step of :class:`motionseg.multi_object.MultiObject`:

* ``first_masks``: the masks from motion-compensated evidence (step 2);
* ``before_pruning``: after the least-squares passes over background and layers (step 3), without
  the pruning of pixels a layer does not explain better than the background (option
  ``min_explained`` at 0);
* ``final``: as the model runs (with its ``min_explained``);
* ``final_from_true_masks``: the same passes started from the true masks instead of step 2's
  (each layer given the mask of the object whose velocity is nearest its own).

If the passes keep true masks nearly intact but do not repair step 2's, the first masks are what
limits the IoU. ``final_by_gap``: the final IoU of the moving objects by how far apart the two
digits' velocities are (equal, 0.5 px/frame, more; the generator draws velocities on a 0.5 px/frame
grid). Also the velocities: the share of moving objects with a layer within 0.3
px/frame of their own. Writes ``results/benchmarks/multi_object_masks.json``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from motionseg import config, data, metrics, zoo
from motionseg.evaluate import _objects_at
from motionseg.stress import with_options
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]
# the two digits' velocities apart, px/frame: [low, high)
GAP_LABELS = ("equal", "0.5", "more")
GAP_BOUNDS = ((0.0, 0.25), (0.25, 0.6), (0.6, float("inf")))


def mask_stages(n: int = 200, batch_size: int = 50, seed: int = 1000) -> dict[str, Any]:
    """Mean per-object IoU after each step, on ``n`` two-digit validation sequences."""
    model = zoo.load("multi_object")
    unpruned = with_options(zoo.load("multi_object"), min_explained=0.0)
    ious: dict[str, list[float]] = {"first_masks": [], "before_pruning": [], "final": [], "final_from_true_masks": []}
    near, moving_total = 0, 0
    by_gap: dict[str, list[float]] = {label: [] for label in GAP_LABELS}
    for batch in data.iter_batches(n, batch_size, "train", seed, n_digits=2):
        x = torch.from_numpy(batch["frames"])[:, :10]
        true_alpha, true_velocity = _objects_at(batch, x.shape[1] - 1)
        moving = true_velocity.norm(dim=-1) > 0
        with torch.no_grad():
            velocity, present = model.measure_motions(x)
            first = model.first_masks(x, velocity, present)
            final, _ = model.estimate(x)
            before, _ = unpruned.estimate(x)
            # B x K x M: each layer's velocity against each object's
            gap = (velocity[:, :, None] - true_velocity[:, None].to(velocity.dtype)).norm(dim=-1)
            # each layer starts from the true mask of the object whose velocity is nearest its own
            nearest = gap.argmin(-1)
            given = true_alpha.to(x.dtype).gather(1, nearest[:, :, None, None].expand(-1, -1, *true_alpha.shape[-2:]))
            from_true, _ = model.estimate(x, first_alpha=given)
        matched = {key: metrics.match_objects(alpha, true_alpha)[0] for key, alpha in (
            ("first_masks", first), ("before_pruning", before.alpha), ("final", final.alpha),
            ("final_from_true_masks", from_true.alpha))}
        for key, iou in matched.items():
            ious[key] += iou[moving].tolist()
        final_iou = matched["final"]
        apart = (true_velocity[:, 0] - true_velocity[:, 1]).norm(dim=-1)[:, None].expand_as(final_iou)
        for label, (low, high) in zip(GAP_LABELS, GAP_BOUNDS):
            ious_here = final_iou[moving & (apart >= low) & (apart < high)]
            by_gap[label] += ious_here.tolist()
        # per object, the nearest velocity of a layer that found a moving object
        gap = torch.where(present[:, :, None], gap, torch.full_like(gap, float("inf"))).min(1).values
        near += int((gap[moving] < 0.3).sum())
        moving_total += int(moving.sum())
    out: dict[str, Any] = {k: sum(v) / len(v) for k, v in ious.items()}
    out["final_by_gap"] = {label: {"iou": sum(v) / len(v) if v else float("nan"), "objects": len(v)}
                           for label, v in by_gap.items()}
    out.update(velocity_within_0_3=near / moving_total, moving_objects=moving_total, n=n, split="train", seed=seed)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "multi_object_masks.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    result = mask_stages(args.n)
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()})
    result["provenance"] = provenance(config.device(), time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
