"""Inference throughput of every model on this machine: ``python benchmarks/bench_inference.py``.

Times ``forward(seed_frames, 10)`` on the same batch of test sequences for each model
(untrained weights: speed does not depend on them) and writes
results/benchmarks/inference_<device>.json with the ratio of the zero-parameter model's
throughput to VLN-ResNet's, measured in the same run.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from motionseg import config, data, zoo
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=zoo.names())
    args = parser.parse_args()
    device = config.device()
    seed = torch.from_numpy(data.make_sequences(args.batch, "test", 0)["frames"][:, :10]).to(device)
    result: dict = {"batch": args.batch, "models": {}}
    start_all = time.perf_counter()
    for name in args.models:
        model = zoo.build(name).to(device).eval()
        with torch.no_grad():
            model(seed[:1], 10)  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                model(seed, 10)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        best = min(times)
        result["models"][name] = {"seconds_per_batch": round(best, 4),
                                  "sequences_per_second": round(args.batch / best, 2)}
        print(f"{name:12s} {args.batch / best:9.2f} sequences/s")
    m = result["models"]
    if "zero_param" in m and "vln_resnet" in m:
        result["zero_param_over_vln_resnet"] = round(m["zero_param"]["sequences_per_second"]
                                                     / m["vln_resnet"]["sequences_per_second"], 2)
        print(f"zero_param is {result['zero_param_over_vln_resnet']}x as fast as vln_resnet")
    result["provenance"] = provenance(device, time.perf_counter() - start_all)
    write_json(result, ROOT / "results" / "benchmarks" / f"inference_{device.type}.json")


if __name__ == "__main__":
    main()
