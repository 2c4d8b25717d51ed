"""Peak memory of one model call per predicted frame: the numbers behind ``validation.PEAK_MULTIPLES``.

``python benchmarks/peak_memory.py [--size 64] [--models zero_param vln_resnet ...]``

For each model and mode (``nograd``: under ``torch.no_grad``; ``backward``: with autograd, the
forward pass and the backward pass of a loss on its output) one call is made at two horizons,
each in a fresh process: the peak resident memory (``VmHWM``) after the call minus that after
two warm-up calls with ``n_future=2``. The slope between the two horizons, divided by
the bytes of one predicted frame (H x W float32, batch 1), is the multiple that
:func:`motionseg.validation.estimate_bytes` uses (it applies the multiple to the seed frames
too, and a margin on top). CPU only; runs one thread per process.

Measured on the 2-core CPU at 64 x 64 (issue 23), multiples of one predicted frame:

=================  ========  ========
model              nograd    backward
=================  ========  ========
zero_param         3.1       20.7
learnable          3.1       22.4
zero_param_plus    3.1       17.2
learnable_plus     10.2      26.3
conv_pgp           2.0       123
vln_resnet         7.7 [1]   748
vln_ldc            2.1       755
=================  ========  ========

[1] 11.1 in a second run: the VLNs' many small allocations without autograd make their number
noisy. At 128 x 128: zero_param 20.6 (backward), learnable_plus 10.0 (nograd), vln_resnet 736
(backward). A forward pass with autograd alone keeps 13 to 19 times a frame for the filter
models, 112 for Conv-PGP and 743 to 755 for the VLNs; the backward pass adds little.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("zero_param", "learnable", "zero_param_plus", "learnable_plus", "conv_pgp", "vln_resnet", "vln_ldc")
# horizons per mode: long enough for the slope to stand out of the allocator's noise
HORIZONS = {"nograd": (200, 1000), "backward": (40, 200)}
BASELINE_HORIZONS = {"nograd": (200, 1000), "backward": (10, 40)}  # a VLN's autograd call is dear

ONE_CALL = """
import json, resource, sys
import torch
torch.set_num_threads(1)
from motionseg import zoo
name, mode, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = zoo.build(name, image_size=size)
model.eval() if mode == "nograd" else model.train()
seed = torch.rand(1, 10, size, size, generator=torch.Generator().manual_seed(0))

def call(k):
    if mode == "nograd":
        with torch.no_grad():
            return model(seed, k)
    out = model(seed, k)
    out.square().mean().backward()
    model.zero_grad(set_to_none=True)
    return out

def high_water():
    # VmHWM belongs to this process's memory map; ru_maxrss would start at the parent's size,
    # which Linux carries over into a child across exec
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

call(2)
call(2)
base = high_water()
call(n)
print(json.dumps(high_water() - base))
"""


def peak(name: str, mode: str, n: int, size: int) -> int:
    """Bytes one call with ``n_future=n`` added to the peak, measured in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", ONE_CALL, name, mode, str(n), str(size)], env=env,
                         capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="frame size (64 to 256, even)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from motionseg import zoo
    from motionseg.validation import peak_multiples

    frame = 4 * args.size * args.size
    print(f"{'model':16s} {'mode':9s} {'measured':>9s} {'used':>7s}")
    for name in args.models:
        used = peak_multiples(zoo.build(name, image_size=args.size))
        for i, mode in enumerate(("nograd", "backward")):
            short, long = (BASELINE_HORIZONS if name in zoo.BASELINES else HORIZONS)[mode]
            slope = (peak(name, mode, long, args.size) - peak(name, mode, short, args.size)) / (long - short)
            print(f"{name:16s} {mode:9s} {slope / frame:9.1f} {used[i]:7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
