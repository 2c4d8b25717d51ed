"""Peak memory of one model call, per seed and per predicted frame: the numbers behind ``validation.PEAK_MULTIPLES``.

``python benchmarks/peak_memory.py [--size 64] [--models zero_param vln_resnet ...]``

Each measurement is one call in a fresh process: the peak resident memory (``VmHWM``) after the
call minus that before it, the model built and the seed frames made. ``nograd`` calls run under
``torch.no_grad`` (the filter models with their states kept, as ``evaluate`` runs them);
``autograd`` calls run the forward and the backward pass of a loss on the output. For each
model and mode four calls (batch 1 and 4; 1 and N predicted frames after 10 seed frames) give

* the cost of one predicted frame per sequence (the slope in N),
* the cost of one seed frame per sequence (what remains of a sequence's cost at 1 frame),
* the fixed part (what the first call sets up, beside any sequence),

the first two as multiples of one frame (H x W float32). CPU only, one thread per process.

Measured on the 2-core CPU (issue 23; filter models at 128 x 128, the baselines at 64 x 64):

=================  ==============  ==============  ==================  ==================
model              nograd seed     nograd future   autograd seed       autograd future
=================  ==============  ==============  ==================  ==================
zero_param         14              8.4             94                  23
learnable          14              7.7             214                 21
zero_param_plus    11              8.5             32                  17
learnable_plus     23              7.4             182                 19
conv_pgp           16              2.0 [1]         52                  118
vln_resnet         39              7.7-11 [1]      664                 733
=================  ==============  ==============  ==================  ==================

Fixed parts up to 45 MB. [1] from the slope between 200 and 1,000 predicted frames at batch 1
(without the states kept: learnable_plus 10.2 there), where the four calls above leave it in the
noise. The estimate of ``motionseg.validation`` rounds each up, takes the largest of the filter
models for all four, and adds 64 MiB and a quarter.
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
MODES = ("nograd", "autograd")

ONE_CALL = """
import json, resource, sys
import torch
torch.set_num_threads(1)
from motionseg import zoo
name, mode, n, size, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

def high_water():
    # VmHWM belongs to this process's memory map; ru_maxrss would start at the parent's size,
    # which Linux carries over into a child across exec
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

model = zoo.build(name, image_size=size)
model.eval() if mode == "nograd" else model.train()
seed = torch.rand(batch, 10, size, size, generator=torch.Generator().manual_seed(0))
base = high_water()
if mode == "nograd":
    with torch.no_grad():
        model.run(seed, n, keep_states=True) if hasattr(model, "run") else model(seed, n)
else:
    model(seed, n).square().mean().backward()
print(json.dumps(high_water() - base))
"""


def peak(name: str, mode: str, n: int, size: int, batch: int = 1) -> int:
    """Bytes that one call (``batch`` sequences, 10 seed frames, ``n`` predicted) adds to the peak."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", ONE_CALL, name, mode, str(n), str(size), str(batch)], env=env,
                         capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


def fit(name: str, mode: str, size: int, n: int) -> dict[str, float]:
    """Seed and predicted-frame multiples and the fixed part (MB) from four calls."""
    frame = 4 * size * size
    p = {(b, k): peak(name, mode, k, size, b) for b in (1, 4) for k in (1, n)}
    short, long = (p[4, 1] - p[1, 1]) / 3, (p[4, n] - p[1, n]) / 3  # one sequence's part
    future = (long - short) / (n - 1)
    return {"seed": (short - future) / 10 / frame, "future": future / frame, "fixed_MB": (p[1, 1] - short) / 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="frame size (64 to 256, even)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--n", type=int, default=40, help="the longer horizon of the fit")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from motionseg import zoo
    from motionseg.validation import peak_multiples

    print(f"{'model':16s} {'mode':9s} {'seed':>7s} {'(used)':>7s} {'future':>7s} {'(used)':>7s} {'fixed MB':>9s}")
    for name in args.models:
        model = zoo.build(name, image_size=args.size)
        for mode in MODES:
            got = fit(name, mode, args.size, args.n)
            used = peak_multiples(model if name in zoo.BASELINES else None, mode == "autograd")
            print(f"{name:16s} {mode:9s} {got['seed']:7.1f} {used[0]:7.1f} {got['future']:7.1f} {used[1]:7.1f} "
                  f"{got['fixed_MB']:9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
