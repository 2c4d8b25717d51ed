"""Cost of one training step of every model, and what makes it cheaper on this machine.

``python benchmarks/bench_train_step.py [--batch 8] [--variants default channels_last compile]``

For each model and variant it times a training step on the same batch of 20-frame training
sequences (after warm-up steps) and reports seconds per sequence. A step is forward, loss
and backward; with ``--optimizer`` (or any variant that changes the optimizer) also Adam's
update. Variants are the execution settings of :class:`motionseg.config.TrainConfig`, set up
by the same code that training uses (:func:`motionseg.train.prepare_model`, ``make_optimizer``):

* ``default``: the model as shipped (its convolution weights are channels-last), float32;
* ``contiguous`` / ``channels_last``: every 4-D weight in PyTorch's default / channels-last layout;
* ``compile``: ``torch.compile`` (inductor) of the model's compile target (compile time is
  the first step's, reported separately);
* ``short``: 15-frame training sequences (10 seed + 5 predicted) instead of 20;
* ``bf16``: bf16 autocast of the forward pass (fp32 weights, fp32 loss);
* ``fused`` / ``bf16_fused``: Adam's fused kernel (always timed with the optimizer step);
* ``bf16_contiguous``: bf16 with contiguous weights (cuDNN may prefer either layout);
* ``fp32_strict``: float32 with TF32 switched off (CUDA only: what TF32 saves).

Each result also holds the first step's loss, so that a variant's numbers can be checked
against the default's, and whether weights and gradients were still finite after the steps.
``--interleave`` lets the variants of a model take turns, one step each per round, and reports
each variant's median round: on a machine shared with other work, load then falls on all alike. ``--data-workers`` measures how many training sequences per second
the generator delivers with that many DataLoader workers, to compare with the steps' appetite.
``compile`` runs only for the models named by ``--compile-models``: compiling a VLN's 19
unrolled steps had not finished after 6 minutes on the 2-core CPU, so they are left out by default.

Writes results/benchmarks/train_step_<device>.json (or ``--out``).
"""
from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from motionseg import config, data, train, zoo
from motionseg.train import provenance, write_json

ROOT = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "contiguous": {"channels_last": False},
    "channels_last": {"channels_last": True},
    "compile": {"compile": "inductor"},
    "short": {},
    "bf16": {"precision": "bf16"},
    "fused": {"fused_adam": True},
    "bf16_fused": {"precision": "bf16", "fused_adam": True},
    "bf16_contiguous": {"precision": "bf16", "channels_last": False},
    "fp32_strict": {},
}
CPU_VARIANTS = ("default", "contiguous", "channels_last", "compile", "short")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(step: Callable[[], None], device: torch.device, repeats: int) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    _sync(device)
    return (time.perf_counter() - start) / repeats


class _NoTF32:
    """TF32 off for matrix products and convolutions while inside (CUDA's strict float32)."""

    def __enter__(self) -> None:
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc: Any) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


class _Setup:
    """One model under one variant, ready to take timed training steps."""

    def __init__(self, name: str, variant: str, frames: torch.Tensor, device: torch.device,
                 with_optimizer: bool) -> None:
        settings = VARIANTS[variant]
        self.cfg = zoo.training_config(name, "full", size=frames.shape[-1], init_from=None, **settings)
        self.variant, self.device = variant, device
        torch.manual_seed(0)
        self.model = zoo.build(name, image_size=self.cfg.size).to(device).train()
        train.prepare_model(self.model, self.cfg)
        self.amp = train.autocast_dtype(self.cfg)
        self.batch = frames[:, :15] if variant == "short" else frames
        self.optimizer = None
        if with_optimizer or self.cfg.fused_adam:
            self.optimizer = train.make_optimizer([p for p in self.model.parameters() if p.requires_grad], self.cfg)
        self.losses: list[float] = []
        self.times: list[float] = []
        self.first = 0.0

    def step(self) -> None:
        self.model.zero_grad(set_to_none=True)
        loss = train.sequence_loss(self.model, self.batch, self.cfg.n_seed, autocast=self.amp)
        loss.backward()
        if self.optimizer is not None:
            self.optimizer.step()
        if not self.losses:
            self.losses.append(loss.item())

    def timed(self, repeats: int = 1) -> float:
        strict = _NoTF32() if self.variant == "fp32_strict" else None
        if strict:
            strict.__enter__()
        try:
            if not self.losses:  # the first call includes any compilation; then one for warm-up
                t0 = time.perf_counter()
                self.step()
                _sync(self.device)
                self.first = time.perf_counter() - t0
                self.step()
            seconds = _timed(self.step, self.device, repeats)
        finally:
            if strict:
                strict.__exit__()
        self.times.append(seconds)
        return seconds

    def result(self) -> dict:
        # after all the steps: is everything still finite? (a variant can break on a later step)
        params = list(self.model.parameters())
        finite = all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params) and \
            all(bool(torch.isfinite(p).all()) for p in params)
        times = sorted(self.times)
        seconds = times[len(times) // 2]  # the median round
        n = len(self.batch)
        return {"seconds_per_step": round(seconds, 5), "seconds_per_sequence": round(seconds / n, 6),
                "min_seconds_per_step": round(times[0], 5), "rounds": len(times),
                "first_step_seconds": round(self.first, 2), "frames": int(self.batch.shape[1]),
                "first_loss": self.losses[0], "optimizer": self.optimizer is not None, "finite": finite}


def measure(name: str, variant: str, frames: torch.Tensor, device: torch.device, repeats: int,
            with_optimizer: bool = False) -> dict:
    """Seconds per sequence of one training step of ``name`` under ``variant`` (mean of ``repeats``)."""
    setup = _Setup(name, variant, frames, device, with_optimizer)
    setup.timed(repeats)
    return setup.result()


def measure_interleaved(name: str, variants: list[str], frames: torch.Tensor, device: torch.device, rounds: int,
                        with_optimizer: bool = False, log: Callable[[str], None] = print) -> dict:
    """Every variant of ``name`` steps once per round, in turn; each reports its median round.

    On a machine shared with other work, load that comes and goes then affects every variant
    alike, where timing one variant after the other would credit it to whichever ran at the time.
    """
    setups, out = {}, {}
    for v in variants:
        try:
            setups[v] = _Setup(name, v, frames, device, with_optimizer)
        except Exception as err:  # a variant this machine cannot run: say so and go on
            out[v] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    for _ in range(rounds):
        for v, setup in list(setups.items()):
            try:
                setup.timed(1)
            except Exception as err:
                out[v] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
                del setups[v]
    out.update({v: setup.result() for v, setup in setups.items()})
    return {v: out[v] for v in variants}


def data_throughput(workers: int, batch: int, seconds: float = 4.0) -> dict:
    """Training sequences per second that ``workers`` DataLoader workers generate (after the first batch)."""
    cfg = zoo.training_config("vln_resnet", "full", workers=workers)
    dataset = train._StepData(cfg, 0, 10 ** 7)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers,
                                         prefetch_factor=4 if workers else None)
    it = iter(loader)
    next(it)  # workers started, photos and MNIST loaded
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        n += len(next(it))
    wall = time.perf_counter() - start
    del it
    return {"workers": workers, "sequences_per_second": round(n / wall, 1), "sequences": n}


def run(models: list[str], variants: list[str], batch: int, repeats: int, device: torch.device,
        with_optimizer: bool = False, compile_models: tuple[str, ...] = (), data_workers: tuple[int, ...] = (),
        size: int = config.SIZE, log: Callable[[str], None] = print, interleave: bool = False) -> dict:
    """Measure every model under every variant (a failure is recorded, not raised).

    ``interleave``: the variants of a model take turns, one step each, for ``repeats`` rounds
    (:func:`measure_interleaved`); else each variant is timed over ``repeats`` steps in a row.
    """
    torch.manual_seed(0)
    frames = torch.from_numpy(data.make_sequences(batch, "train", 0, size=size)["frames"]).to(device)
    result: dict = {"batch": batch, "models": {}, "with_optimizer": with_optimizer, "interleaved": interleave,
                    "repeats": repeats}
    start = time.perf_counter()
    for name in models:
        chosen = [v for v in variants if not (v == "compile" and name not in compile_models)
                  and not (v == "fp32_strict" and device.type != "cuda")]
        if interleave:
            results = measure_interleaved(name, chosen, frames, device, repeats, with_optimizer, log)
        else:
            results = {}
            for variant in chosen:
                try:
                    results[variant] = measure(name, variant, frames, device, repeats, with_optimizer)
                except Exception as err:  # a variant this machine cannot run: say so and go on
                    results[variant] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
        result["models"][name] = results
        for variant, res in results.items():
            if "error" in res:
                log(f"{name:15s} {variant:15s} failed: {res['error']}")
                continue
            log(f"{name:15s} {variant:15s} {res['seconds_per_step']:.4f} s/step, "
                f"{res['seconds_per_sequence']:.5f} s/sequence ({res['frames']} frames; first step "
                f"{res['first_step_seconds']:.1f} s; loss {res['first_loss']:.5f}"
                + ("" if res["finite"] else "; NOT FINITE after its steps") + ")")
    if data_workers:
        result["data"] = []
        for w in data_workers:
            res = data_throughput(w, batch)
            result["data"].append(res)
            log(f"data: {w} workers -> {res['sequences_per_second']:.0f} training sequences/s")
    result["provenance"] = provenance(device, time.perf_counter() - start)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=zoo.names())
    parser.add_argument("--variants", nargs="*", default=list(CPU_VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--optimizer", action="store_true", help="time Adam's update as part of every step")
    parser.add_argument("--compile-models", nargs="*", default=["zero_param", "learnable", "conv_pgp"])
    parser.add_argument("--data-workers", nargs="*", type=int, default=[])
    parser.add_argument("--interleave", action="store_true",
                        help="variants take turns, one step each per round (for a machine shared with other work)")
    parser.add_argument("--out", default=None, help="default: results/benchmarks/train_step_<device>.json")
    args = parser.parse_args()
    device = config.device()
    torch.set_float32_matmul_precision("high")  # as `python -m motionseg` runs
    result = run(args.models, args.variants, args.batch, args.repeats, device, args.optimizer,
                 tuple(args.compile_models), tuple(args.data_workers), interleave=args.interleave)
    out = Path(args.out) if args.out else ROOT / "results" / "benchmarks" / f"train_step_{device.type}.json"
    write_json(result, out)
    print(f"wrote {out}")


def workers_needed(step_seconds: float, batch: int, per_worker: float, cores: int | None = None) -> int:
    """DataLoader workers that keep ``batch / step_seconds`` sequences per second coming, with 50% to spare."""
    cores = cores or os.cpu_count() or 2
    need = 1.5 * batch / max(step_seconds, 1e-6) / max(per_worker, 1e-6)
    return int(min(max(2, math.ceil(need)), max(2, cores - 2)))


if __name__ == "__main__":
    main()
