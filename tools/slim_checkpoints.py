"""Make committed checkpoints small enough to travel: weights apart from a compact resume state.

A device call carries the tracked tree (at most 64 MiB, the project's target 40 MiB). Two kinds
of committed checkpoint are slimmed, each by one run of this script at a clean commit:

* ``--compact PATH ...``: a run that will be continued (the baselines' full trainings): a
  version-1 checkpoint (optimizer inside) becomes ``checkpoint.pt`` with the weights and a
  compact ``resume.pt`` beside it (Adam's second moments in bfloat16, first moments dropped;
  ``motionseg.train.compact_resume``). A VLN's 16 MB become about 5 + 2.6 MB.
* ``--summarise PATH ...``: a finished run whose weights no chapter needs (the 4-minute CPU-budget
  baselines): its training facts (steps, wall time, device, provenance) are written to
  ``training.json`` beside it, and the checkpoint is removed. The chapters read those facts with
  ``motionseg.results.training_summary``.

Usage (from the repository root): ``python tools/slim_checkpoints.py --compact results/vln_resnet/checkpoint.pt``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from motionseg import checkpoint, train
from motionseg.train import git_commit, write_json


def summarise(path: Path) -> Path:
    """Write ``training.json`` beside checkpoint ``path`` and remove the checkpoint; returns the new file."""
    ckpt = checkpoint.read(path)
    prov = dict(ckpt.get("provenance", {}))
    target = path.with_name("training.json")
    write_json({"model": ckpt["model"], "step": int(ckpt["step"]), "wall_seconds": float(prov.get("wall_seconds", 0)),
                "device": prov.get("device", ""), "config": ckpt.get("config", {}), "provenance": prov,
                "summarised_from": str(path), "summarised_at_commit": git_commit(),
                "command": " ".join(["python", "tools/slim_checkpoints.py", *sys.argv[1:]])}, target)
    path.unlink()
    path.with_name(checkpoint.RESUME_NAME).unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compact", nargs="*", default=[], type=Path, metavar="PATH")
    parser.add_argument("--summarise", nargs="*", default=[], type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    git_commit()  # the commit as the command starts, before it rewrites tracked files
    for path in args.compact:
        resume = train.compact_resume(path)
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB weights, {resume.stat().st_size / 2**20:.1f} MiB resume state")
    for path in args.summarise:
        print(f"{path} -> {summarise(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
