"""How fast the generator makes the test set: ``python benchmarks/bench_data.py [--n 1000]``.

Writes results/benchmarks/data.json (sequences per second, wall time, provenance).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from motionseg import data
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    data.make_sequences(2)  # load MNIST and the photos once, outside the timing
    start = time.perf_counter()
    for _ in data.iter_batches(args.n, args.batch):
        pass
    wall = time.perf_counter() - start
    result = {"n": args.n, "batch": args.batch, "seconds": round(wall, 2),
              "sequences_per_second": round(args.n / wall, 1),
              "provenance": provenance(torch.device("cpu"), wall)}
    write_json(result, ROOT / "results" / "benchmarks" / "data.json")
    print(f"{args.n} test sequences in {wall:.1f} s ({args.n / wall:.0f} sequences/s)")


if __name__ == "__main__":
    main()
