"""Quality of the trained models against Table 1 of the paper: ``python benchmarks/bench_quality.py``.

Evaluates the committed checkpoints on the profile's test set (full: 1,000 sequences) and
reports, per model, L1 / MSE / SSIM beside the paper's row (for our plus models, the row of the
paper's model they extend) and whether each is met, the
state metrics (mask IoU at the last seed frame, velocity end-point error, background error
on revealed pixels at the last predicted frame) and the MSE split by region
(``metrics.mse_by_region``). Writes results/benchmarks/quality_<profile>.json.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from motionseg import config, evaluate, results, zoo
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", choices=zoo.names(),
                        default=["zero_param", "learnable", "zero_param_plus", "learnable_plus"])
    parser.add_argument("--profile", choices=config.PROFILES, default=None)
    parser.add_argument("--n", type=int, default=None, help="test sequences (default: the profile's)")
    parser.add_argument("--results", default=str(zoo.RESULTS), help="where the checkpoints are")
    args = parser.parse_args()
    prof = config.profile(args.profile)
    device = config.device()
    n = args.n or prof.n_test
    predictors = {}
    for name in args.models:
        model = zoo.load(name, Path(args.results) / name / "checkpoint.pt").to(device)
        predictors[name] = evaluate.model_predictor(model, device=device)
    start = time.perf_counter()
    res = evaluate.evaluate(predictors, n=n, batch_size=prof.eval_batch_size)
    out: dict = {"profile": prof.name, "n": n, "models": {}}
    print(f"{prof.name} profile, {n} test sequences, {device.type}")
    print(f"{'model':15s} {'metric':6s} {'ours':>8s} {'paper':>8s}  met")
    for name, r in res.items():
        row = {k: r[k] for k in ("l1", "mse", "ssim", "mse_by_region")}
        # our models are compared with the paper's row of the model they extend
        paper = results.PAPER_TABLE1[name.removesuffix("_plus")][:3]
        row["paper"] = dict(zip(("l1", "mse", "ssim"), paper))
        row["met"] = {"l1": r["l1"] <= paper[0], "mse": r["mse"] <= paper[1], "ssim": r["ssim"] >= paper[2]}
        for k, ours, theirs in zip(("l1", "mse", "ssim"), (r["l1"], r["mse"], r["ssim"]), paper):
            print(f"{name:15s} {k:6s} {ours:8.5f} {theirs:8.5f}  {'yes' if row['met'][k] else 'NO'}")
        s = r["per_state_step"]
        if s:
            last_seed = 8  # states start at frame 1: entry 8 is frame 9, the last seed frame
            row["iou_last_seed"] = s["iou"][last_seed]
            row["epe_last_seed"] = s["epe"][last_seed]
            row["bg_revealed_l1_last"] = s["bg_revealed_l1"][-1]
            print(f"{name:11s} mask IoU {row['iou_last_seed']:.3f}, velocity error {row['epe_last_seed']:.4f} px/frame "
                  f"(frame 9), revealed-background L1 {row['bg_revealed_l1_last']:.4f} (frame 19)")
        print(f"{name:11s} MSE by region: " + ", ".join(f"{k} {v:.6f}" for k, v in r["mse_by_region"].items()))
        out["models"][name] = row
    out["provenance"] = provenance(device, time.perf_counter() - start)
    write_json(out, ROOT / "results" / "benchmarks" / f"quality_{prof.name}.json")


if __name__ == "__main__":
    main()
