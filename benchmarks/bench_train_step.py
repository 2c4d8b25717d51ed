"""Cost of one training step of every model, and what makes it cheaper on this machine.

``python benchmarks/bench_train_step.py [--batch 8] [--variants default channels_last compile]``

For each model and variant it times forward + backward of the training loss on the same
batch of 20-frame training sequences (after warm-up steps) and reports seconds per
sequence. Variants:

* ``default``: the model as shipped (its convolution weights are channels-last);
* ``contiguous``: every 4-D weight in PyTorch's default (contiguous) memory format;
* ``channels_last``: every 4-D weight converted to the channels-last memory format;
* ``compile``: ``torch.compile`` of the loss function (compile time reported separately);
* ``short``: 15-frame training sequences (10 seed + 5 predicted) instead of 20.

``compile`` runs only for the models named by ``--compile-models``: compiling a VLN's 19
unrolled steps had not finished after 6 minutes on the 2-core CPU, so they are left out by default.

Writes results/benchmarks/train_step_<device>.json.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch

from motionseg import config, data, zoo
from motionseg.train import provenance, sequence_loss, write_json

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("default", "contiguous", "channels_last", "compile", "short")


def _timed(step: Callable[[], None], device: torch.device, repeats: int) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    sync()
    return (time.perf_counter() - start) / repeats


def measure(name: str, variant: str, frames: torch.Tensor, device: torch.device, repeats: int) -> dict:
    """Seconds per sequence of one training step of ``name`` under ``variant``."""
    model = zoo.build(name).to(device).train()
    if variant in ("channels_last", "contiguous"):
        fmt = torch.channels_last if variant == "channels_last" else torch.contiguous_format
        model = model.to(memory_format=fmt)
    batch = frames[:, :15] if variant == "short" else frames

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        return sequence_loss(model, x, 10)

    fn = torch.compile(loss_fn) if variant == "compile" else loss_fn

    def step() -> None:
        model.zero_grad(set_to_none=True)
        fn(batch).backward()

    t0 = time.perf_counter()
    step()  # the first call includes any compilation
    first = time.perf_counter() - t0
    step()  # warm-up
    seconds = _timed(step, device, repeats)
    return {"seconds_per_step": round(seconds, 4), "seconds_per_sequence": round(seconds / len(frames), 5),
            "first_step_seconds": round(first, 2), "frames": int(batch.shape[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=zoo.names())
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--compile-models", nargs="*", default=["zero_param", "learnable", "conv_pgp"])
    args = parser.parse_args()
    device = config.device()
    torch.manual_seed(0)
    frames = torch.from_numpy(data.make_sequences(args.batch, "train", 0)["frames"]).to(device)
    result: dict = {"batch": args.batch, "models": {}}
    start = time.perf_counter()
    for name in args.models:
        result["models"][name] = {}
        for variant in args.variants:
            if variant == "compile" and name not in args.compile_models:
                continue
            res = measure(name, variant, frames, device, args.repeats)
            result["models"][name][variant] = res
            print(f"{name:11s} {variant:14s} {res['seconds_per_sequence']:.4f} s/sequence "
                  f"({res['frames']} frames; first step {res['first_step_seconds']:.1f} s)", flush=True)
    result["provenance"] = provenance(device, time.perf_counter() - start)
    out = ROOT / "results" / "benchmarks" / f"train_step_{device.type}.json"
    write_json(result, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
