"""Does training improve the learnable extension on its start? ``python benchmarks/learnable_start.py``

The full ``learnable`` run starts from the committed ``zero_param`` gains with its networks passing
the zero-parameter estimates through. This measures, on the validation sequences of that recipe
(never the test set):

* the committed ``zero_param``, the learnable model at its start, and the same with its three
  networks switched off (the learnable model's own cycle, which differs from ``zero_param`` where the
  authors' weights chose so: frame 1 keeps the moved state, A is blended with its network's output);
* for each ``--lr`` (the peak of the recipe's cyclic schedule), the training loss per 25 steps and
  the validation MSE every 50 steps of ``--steps`` steps of that recipe from the same start.

If the validation MSE rises from the start at every learning rate while the training loss does not
fall, training does not find what the networks could add from this start. ``--train gains`` or
``--train nets`` trains only those parameters (the others stay at the start), to see which of
them the damage comes from. ``--grad-floor`` trains with the surrogate gradient of the phase
differences (``TrainConfig.grad_floor``; ``benchmarks/gradient_floor.py`` shows why). Writes
``results/benchmarks/learnable_start.json`` (``learnable_start_<train>[_floor<f>].json`` for the
other options); the checkpoints go to a temporary folder.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from motionseg import config, zoo
from motionseg.train import _init_from, provenance, train, validate, validation_frames, validation_options, write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, nargs="+", default=[0.0002, 0.002])
    parser.add_argument("--n-val", type=int, default=128)
    parser.add_argument("--train", choices=("all", "gains", "nets"), default="all",
                        help="which parameters train (the others stay at the start): all, the gains only, the nets only")
    parser.add_argument("--grad-floor", type=float, default=None,
                        help="train with this gradient floor of the phase differences (default: the exact gradient)")
    parser.add_argument("--force", action="store_true", help="replace the output file if it exists")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/benchmarks/learnable_start.json (learnable_start_<train>.json "
                             "for --train gains or nets, with _floor<f> for --grad-floor)")
    args = parser.parse_args()
    if args.out is None:
        name = "learnable_start" + ("" if args.train == "all" else f"_{args.train}")
        name += "" if args.grad_floor is None else f"_floor{args.grad_floor:g}"
        args.out = ROOT / "results" / "benchmarks" / f"{name}.json"
    if args.out.exists() and not args.force:  # an hour of runs is not replaced by accident
        parser.error(f"{args.out} exists: --out another file for other learning rates, --force replaces it")
    torch.set_num_threads(1)
    device = config.device()
    start = time.perf_counter()
    base = zoo.training_config("learnable", "full")
    cfg = replace(base, n_val=args.n_val, workers=0, steps=args.steps, val_every=50, checkpoint_every=args.steps)
    frames = validation_frames(cfg)
    result: dict[str, Any] = {"steps": args.steps, "n_val": args.n_val, "recipe_lr": base.lr, "train": args.train,
                              "grad_floor": args.grad_floor,
                              "validation_options": validation_options(cfg),
                              "start": {}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(cfg.seed)  # as train() does: the networks' random weights of the runs below
        model = zoo.build("learnable").to(device)
        _, weights = _init_from(model, cfg, Path(tmp) / "learnable" / "checkpoint.pt")
        result["init_weights"] = weights
        model.eval()
        result["start"]["zero_param"] = validate(zoo.load("zero_param").to(device), frames, cfg.n_seed, device)
        result["start"]["learnable"] = validate(model, frames, cfg.n_seed, device)
        result["start"]["learnable, networks off"] = validate(
            model.without("modelA", "modelFG", "modelBG"), frames, cfg.n_seed, device)
        print(result["start"], flush=True)
        for lr in args.lr:
            run_cfg = replace(cfg, lr=lr, grad_floor=args.grad_floor)
            torch.manual_seed(cfg.seed)
            trained = zoo.build("learnable")  # the start of the runs above (train() loads zero_param's gains into it)
            for name, p in trained.named_parameters():
                p.requires_grad_(args.train == "all" or (args.train == "nets") == name.startswith("nets."))
            _, history = train(run_cfg, Path(tmp) / f"lr{lr}" / "learnable" / "checkpoint.pt", device=device,
                               progress=False, model=trained)
            loss = history.loss
            result["runs"][f"{lr:g}"] = {
                "loss_per_25_steps": [sum(loss[i:i + 25]) / len(loss[i:i + 25]) for i in range(0, len(loss), 25)],
                "val_step": history.val_step, "val_mse": history.val_mse}
            print(lr, result["runs"][f"{lr:g}"], flush=True)
    result["provenance"] = provenance(device, time.perf_counter() - start)
    write_json(result, args.out)


if __name__ == "__main__":
    main()
