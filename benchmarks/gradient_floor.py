"""Does the gradient of the paper's models point downhill? ``python benchmarks/gradient_floor.py``

The models are trained by backpropagation through their phase differences. The phase of a
frequency with almost no energy turns fast with the images behind it: its gradient grows as one
over that energy, and a small change of the inputs moves the loss only where the energy is. This
measures, for the learnable model at the start of its full run (``zero_param``'s gains, networks
passing its estimates through) and for the committed ``zero_param``, on training batches of the
learnable recipe:

* the norm of the loss's gradient with respect to the gains and to the networks' weights, exact
  and with each gradient floor of ``--floors`` (``fourier.gradient_floor``: the values are the same,
  the gradient is that of phases computed with the higher floor);
* how much the loss changes when the parameters take a step of length ``--step`` against each
  gradient (normalised), next to what the gradient predicts (``-step * norm``).

A gradient that is mostly the phases of empty frequencies has a large norm and predicts a fall
that the step does not make. Writes ``results/benchmarks/gradient_floor.json``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from motionseg import config, fourier, zoo
from motionseg.train import _init_from, _StepData, provenance, sequence_loss, write_json

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"gains": lambda name: not name.startswith("nets."), "networks": lambda name: name.startswith("nets.")}


def measure(model: torch.nn.Module, group: str, frames: torch.Tensor, n_seed: int, floor: float | None,
            steps: list[float]) -> dict[str, Any]:
    """Gradient norm of ``group`` and the loss change of a step of each length against it."""
    params = [p for n, p in model.named_parameters() if GROUPS[group](n)]
    with fourier.gradient_floor(floor):
        loss = sequence_loss(model, frames, n_seed)
    grads = torch.autograd.grad(loss, params)
    norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    start = [p.detach().clone() for p in params]
    change = []
    with torch.no_grad():
        for step in steps:
            for p, p0, g in zip(params, start, grads):
                p.copy_(p0 - step * g / norm)
            change.append(sequence_loss(model, frames, n_seed).item() - loss.item())
        for p, p0 in zip(params, start):
            p.copy_(p0)
    return {"loss": loss.item(), "norm": norm, "change": change, "predicted": [-s * norm for s in steps]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floors", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3])
    parser.add_argument("--steps", type=float, nargs="+", default=[1e-4, 1e-3],
                        help="lengths of the steps against the normalised gradient")
    parser.add_argument("--batches", type=int, default=4, help="training batches of the learnable recipe (16 sequences)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "gradient_floor.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    device = config.device()
    start = time.perf_counter()
    cfg = replace(zoo.training_config("learnable", "full"), workers=0)
    torch.manual_seed(cfg.seed)  # as train() does: the networks' random weights
    learnable = zoo.build("learnable").to(device)
    with tempfile.TemporaryDirectory() as tmp:
        _, weights = _init_from(learnable, cfg, Path(tmp) / "learnable" / "checkpoint.pt")
    models = {"learnable (start)": learnable, "zero_param": zoo.load("zero_param").to(device)}
    data = _StepData(cfg, 0, args.batches * cfg.batch_size)
    floors: list[float | None] = [None, *args.floors]
    result: dict[str, Any] = {"batches": args.batches, "batch_size": cfg.batch_size, "steps": args.steps,
                              "floors": floors, "init_weights": weights, "runs": []}
    for b in range(args.batches):
        frames = torch.stack([data[b * cfg.batch_size + i] for i in range(cfg.batch_size)]).float().to(device)
        for model_name, model in models.items():
            model.train()
            for group in ("gains", "networks"):
                if not any(GROUPS[group](n) for n, _ in model.named_parameters()):
                    continue
                for floor in floors:
                    row = {"model": model_name, "parameters": group, "floor": floor, "batch": b,
                           **measure(model, group, frames, cfg.n_seed, floor, args.steps)}
                    print(row, flush=True)
                    result["runs"].append(row)
    result["provenance"] = provenance(device, time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
