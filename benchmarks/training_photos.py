"""Does longer training fit the training photos? ``python benchmarks/training_photos.py``

The validation sequences of zero_param's earlier run (the training split with another seed) shared
its 13 training photos; the test sequences have 5 other photos. This evaluates the ``zero_param``
weights committed at two commits (``--before``, default: the weights of step 2,500 of the run that
validated on all training photos; ``--after``, default: that run's weights of step 5,300; ``now``
in the output) on the same sequences of four sets: validation (training photos), the test photos,
procedural textures and flat grey (both test split, photos of neither split). Weights that are
better on validation but worse on every set without a training photo have fitted the training
photos. Nothing here chooses weights (the test set only reports); the finding made zero_param's
recipe validate on photos held out from training (``photo_set``).
Writes ``results/benchmarks/training_photos.json``.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from motionseg import config, evaluate, zoo
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]
SETS = {"validation (training photos)": dict(split="train", seed=1000),
        "test photos": dict(split="test", seed=0),
        "textures": dict(split="test", seed=0, background="textures"),
        "grey": dict(split="test", seed=0, background="grey")}


def weights_at(commit: str, name: str, folder: Path) -> Path:
    """The committed checkpoint of ``name`` as it was at ``commit`` (from git), written to ``folder``."""
    rel = zoo.checkpoint_path(name).resolve().relative_to(ROOT)
    path = folder / f"{name}_{commit[:12]}.pt"
    path.write_bytes(subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=ROOT, check=True,
                                    capture_output=True).stdout)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zero_param")
    parser.add_argument("--before", default="f7d6b87", help="commit whose committed weights are compared")
    parser.add_argument("--after", default="ed4b937", help="commit whose weights are compared with them")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "training_photos.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    before, after = (subprocess.run(["git", "rev-parse", c], cwd=ROOT, check=True, capture_output=True,
                                    text=True).stdout.strip() for c in (args.before, args.after))
    with tempfile.TemporaryDirectory() as tmp:
        models = {"before": zoo.load(args.model, weights_at(before, args.model, Path(tmp))),
                  "now": zoo.load(args.model, weights_at(after, args.model, Path(tmp)))}
    result: dict[str, Any] = {"model": args.model, "n": args.n, "before_commit": before, "after_commit": after,
                              "weights": {}, "sets": {}}
    for key, model in models.items():
        result["weights"][key] = {"selected_step": model.selected_step, "trained_steps": model.trained_steps}
    for set_name, options in SETS.items():
        res = evaluate.evaluate({k: evaluate.model_predictor(m) for k, m in models.items()}, n=args.n, **options)
        result["sets"][set_name] = {k: {"mse": res[k]["mse"], "l1": res[k]["l1"]} for k in models}
        print(set_name, {k: round(res[k]["mse"], 6) for k in models}, flush=True)
    result["provenance"] = provenance(config.device(), time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
