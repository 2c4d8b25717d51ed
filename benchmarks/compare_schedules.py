"""Which batch size and learning-rate schedule reach a low validation error in the fewest seconds?

``python benchmarks/compare_schedules.py --model vln_resnet --seconds 100 --out DIR``

Trains the model from scratch once per candidate, each for the same wall-clock budget, and
records validation MSE against steps and seconds. A candidate is
``schedule:batch:lr[:warmup]``, e.g. ``cyclic:16:2e-4`` (today's full schedule, whose
4,000-step cycle a short budget does not finish) or ``cosine:32:4e-4:100`` (warm-up and
cosine decay, its steps chosen to fill the budget at the step time measured first).
``--execution bf16`` etc. apply the same execution settings to every candidate. Needs a GPU
to say anything about the full schedules; ``--dry-run`` checks the wiring on the CPU at
toy sizes. Writes ``DIR/schedules.json`` (one learning curve per candidate).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from motionseg import config, train, zoo
from motionseg.train import provenance, write_json

DEFAULT = ["cyclic:16:2e-4", "cosine:16:2e-4:100", "cosine:32:4e-4:100", "cosine:64:8e-4:100"]
EXECUTION = {"fp32": {}, "bf16": {"precision": "bf16"}, "bf16_fused": {"precision": "bf16", "fused_adam": True}}


def parse(candidate: str) -> dict[str, Any]:
    """``schedule:batch:lr[:warmup]`` -> TrainConfig settings."""
    parts = candidate.split(":")
    if len(parts) not in (3, 4) or parts[0] not in config.SCHEDULES:
        raise ValueError(f"candidate {candidate!r} is not schedule:batch:lr[:warmup] with a schedule of "
                         f"{config.SCHEDULES}")
    out: dict[str, Any] = {"schedule": parts[0], "batch_size": int(parts[1]), "lr": float(parts[2])}
    if len(parts) == 4:
        out["warmup_steps"] = int(parts[3])
    return out


def seconds_per_step(model: str, settings: dict[str, Any], device: torch.device, size: int) -> float:
    """Median of a few training steps (after one for warm-up) with these settings."""
    cfg = zoo.training_config(model, "full", size=size, init_from=None, **settings)
    net = zoo.build(model, image_size=size).to(device).train()
    train.prepare_model(net, cfg)
    opt = train.make_optimizer(net.parameters(), cfg)
    frames = torch.rand(cfg.batch_size, 20, size, size, device=device)
    times = []
    for _ in range(4):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        train.sequence_loss(net, frames, cfg.n_seed, autocast=train.autocast_dtype(cfg)).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vln_resnet", choices=list(zoo.BASELINES))
    parser.add_argument("--seconds", type=float, default=100.0, help="wall-clock budget of each candidate")
    parser.add_argument("--candidates", nargs="*", default=DEFAULT)
    parser.add_argument("--execution", choices=list(EXECUTION), default="fp32")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--out", type=Path, required=True, help="where schedules.json goes")
    parser.add_argument("--work", type=Path, default=Path("/tmp/motionseg_schedules"), help="the candidates' checkpoints")
    parser.add_argument("--dry-run", action="store_true", help="CPU, 64 x 64, batch 2, two steps each")
    args = parser.parse_args()
    device = torch.device("cpu") if args.dry_run else config.device()
    size = 64 if args.dry_run else config.SIZE
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.benchmark = True
    result: dict[str, Any] = {"model": args.model, "seconds": args.seconds, "execution": args.execution,
                              "candidates": {}}
    start = time.perf_counter()
    for candidate in args.candidates:
        settings = {**parse(candidate), **EXECUTION[args.execution]}
        if args.dry_run:
            settings["batch_size"] = 2
        per_step = seconds_per_step(args.model, settings, device, size)
        steps = 2 if args.dry_run else max(20, int(args.seconds * 0.85 / per_step))  # 15% for validation, data
        if settings["schedule"] == "cosine":
            settings["warmup_steps"] = min(settings.get("warmup_steps", 0), steps // 4)
        cfg = zoo.training_config(args.model, "full", size=size, init_from=None, steps=steps,
                                  n_train=steps * settings["batch_size"], n_val=2 if args.dry_run else 256,
                                  cycle_steps=4000, val_every=max(1, steps // 5), checkpoint_every=steps,
                                  val_at_stop=True, workers=0 if args.dry_run else args.workers,
                                  pin_memory=device.type == "cuda", **settings)
        out = args.work / candidate.replace(":", "_") / args.model / "checkpoint.pt"
        _, history = train.train(cfg, out, force=True, device=device, progress=False, time_limit=args.seconds)
        result["candidates"][candidate] = {"settings": settings, "seconds_per_step": per_step, "steps": steps,
                                           "val_step": history.val_step, "val_mse": history.val_mse,
                                           "val_seconds": history.val_seconds}
        print(f"{candidate:22s} {per_step:.3f} s/step, {history.step[-1]} of {steps} steps: validation MSE "
              f"{history.val_mse[-1]:.5f} after {history.val_seconds[-1]:.0f} s", flush=True)
        write_json(result, args.out / "schedules.json")
    result["provenance"] = provenance(device, time.perf_counter() - start)
    write_json(result, args.out / "schedules.json")


if __name__ == "__main__":
    main()
