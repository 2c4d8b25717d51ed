"""Validation error of the committed baselines at their own last step.

``python benchmarks/learning_curves.py [--models conv_pgp vln_resnet vln_ldc]``

A run validates every ``val_every`` steps, so a run stopped by its time limit ends with
steps after its last validation (the committed VLNs: validated at 2,000, stopped at about
2,800). This measures the validation MSE of each checkpoint on its own validation sequences
(the same ones training used), so that the learning curve of the book reaches the weights
that are committed, and writes results/benchmarks/learning_curves.json. Checkpoints whose
history already ends with a validation at their step (runs with ``val_at_stop``) are
recorded as they are, without recomputing.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from motionseg import checkpoint, config, train, zoo
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(zoo.BASELINES))
    parser.add_argument("--results", type=Path, default=zoo.RESULTS)
    args = parser.parse_args()
    device = config.device()
    out = args.results / "benchmarks" / "learning_curves.json"
    start = time.perf_counter()
    result: dict = {"models": {}}
    for name in args.models:
        path = zoo.checkpoint_path(name, args.results)
        ckpt = checkpoint.read(path)
        h, step = ckpt["history"], int(ckpt["step"])
        cfg = train.TrainConfig(**{**train._field_defaults(), **ckpt["config"]})
        if h["val_step"] and h["val_step"][-1] == step:
            entry = {"step": step, "val_mse": h["val_mse"][-1], "source": "history"}
        else:
            t = time.perf_counter()
            model = zoo.load(name, path).to(device)
            val = train.validation_frames(cfg)
            entry = {"step": step, "val_mse": train.validate(model, val, cfg.n_seed, device), "source": "measured",
                     "seconds": round(time.perf_counter() - t, 1)}
        entry["n_val"] = cfg.n_val
        result["models"][name] = entry
        print(f"{name:12s} step {step:6d}: validation MSE {entry['val_mse']:.6f} ({entry['source']}; "
              f"{cfg.n_val} sequences)", flush=True)
    result["provenance"] = provenance(device, time.perf_counter() - start)
    write_json(result, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
