"""One prepared device session: the paper's models first, then the baselines; measure, train, evaluate, bring back.

Run it through ``benchmarks/gpu_session.sh`` (see ``benchmarks/GPU_SESSION.md``); on the CPU,
``python benchmarks/gpu_session.py --dry-run --work /tmp/gs --out /tmp/gs_out`` runs every
stage at toy sizes. Stages, all within one time budget (``--budget`` seconds):

1. **check**: device, versions, that the data generator makes train and test sequences;
   the committed checkpoints of the trained models (the paper's two, then the three
   baselines) are copied to ``WORK/results`` (the repository's ``results/`` is never written);
2. **cuda tests**: ``tests/test_cuda.py``, every model's forward and backward and the FFT-based
   steps on the GPU against the CPU, within stated tolerances (its output goes into the log);
3. **bench**: one training step (forward, loss, backward, Adam) of every model, batch 16,
   under each execution variant (fp32 as shipped, strict fp32 without TF32, bf16, bf16 with
   fused Adam, bf16 with contiguous weights, contiguous fp32), and how many training
   sequences per second the generator delivers with 1 and with many workers;
4. **choose**: per model, the fastest variant whose first loss agrees with fp32 to 1%,
   whose weights and gradients are still finite after the timed steps, and that is at least
   10% faster than fp32 (else fp32); and enough data workers;
5. **train**: resume each model (``--share``, the paper's models first) with the chosen settings,
   validating every 250 steps and when it stops;
6. **evaluate**: the trained models on the full test set (1,000 sequences);
7. **curves**: each baseline's learning curve and the power-law projection to the paper's MSE;
8. **pack**: ``OUT/results/<model>/checkpoint.pt`` (weights, for ``results/``),
   ``OUT/resume/<model>/resume.pt`` (compact resume state) and ``WORK/bundle`` (metrics,
   ``gpu_session.json``, the benchmark, the CUDA tests' output), which the shell script tars with
   the log into ``OUT/session.tgz`` (with the paper's models' small checkpoints): 7 files, each under 16 MiB.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_train_step as bench  # noqa: E402

from motionseg import checkpoint, config, curves, data, train, zoo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("conv_pgp", "vln_resnet", "vln_ldc")
PAPER = ("zero_param", "learnable")  # trained first: the paper's rows come before the baselines'
TRAINED = (*PAPER, *BASELINES)
SESSION_VARIANTS = ["default", "fp32_strict", "bf16", "bf16_fused", "bf16_contiguous", "contiguous"]
PREFERENCE = ["bf16_fused", "bf16", "bf16_contiguous", "fused", "contiguous"]
LIMITS = {"files": 8, "file_bytes": 16 * 2 ** 20, "total_bytes": 64 * 2 ** 20}

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


def check(work: Path, dry: bool) -> dict[str, Any]:
    device = config.device()
    info = {"device": train.device_name(device), "torch": str(torch.__version__), "python": sys.version.split()[0],
            "cpus": os.cpu_count(), "commit": train.git_commit(), "dry_run": dry,
            "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}}
    log(f"device {info['device']}, torch {info['torch']}, python {info['python']}, {info['cpus']} CPUs, "
        f"commit {info['commit']}")
    for split in ("train", "test"):
        data.make_sequences(1, split)  # MNIST and the split's photos load here or the session stops now
    log("data generator: train and test sequences OK")
    for name in TRAINED:
        src = zoo.checkpoint_path(name)
        dst = zoo.checkpoint_path(name, work / "results")
        dst.parent.mkdir(parents=True, exist_ok=True)
        for f in ("checkpoint.pt", checkpoint.RESUME_NAME, "metrics_full.json"):
            if (src.parent / f).exists():
                shutil.copy(src.parent / f, dst.parent / f)
        ckpt = checkpoint.read(dst)
        info.setdefault("start_steps", {})[name] = int(ckpt["step"])
        log(f"{name}: checkpoint at step {ckpt['step']} (version {ckpt['version']})")
    return info


def choose(results: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """The fastest variant that agrees with fp32 and is at least 10% faster (else ``default``)."""
    runs = results["models"].get(name, {})
    base = runs.get("default")
    if not base or "error" in base:
        return "default", {}
    best = "default"
    for v in PREFERENCE:
        r = runs.get(v)
        if not r or "error" in r or not r.get("finite", False):
            continue
        agrees = abs(r["first_loss"] - base["first_loss"]) <= 0.01 * abs(base["first_loss"])
        if agrees and r["seconds_per_step"] <= 0.9 * base["seconds_per_step"] and \
                r["seconds_per_step"] < runs[best]["seconds_per_step"]:
            best = v
    return best, dict(bench.VARIANTS[best])


def train_stage(work: Path, plan: dict[str, dict[str, Any]], limits: dict[str, float], dry: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in TRAINED:
        path = zoo.checkpoint_path(name, work / "results")
        settings = plan[name]["settings"]
        if dry:  # one step, no validation (the validation set of 256 sequences takes minutes on the CPU)
            settings = {**settings, "val_every": 10 ** 9, "checkpoint_every": 10 ** 9, "val_at_stop": False}
        before = int(checkpoint.read(path)["step"])
        if dry and name.startswith("vln"):  # a VLN step of batch 16 needs about 15 GB on the CPU: load only
            settings = {**settings, "steps": before}
        cfg = zoo.training_config(name, "full", **settings)
        if limits[name] <= 0 and not dry:
            log(f"{name}: no training time in this session (--share)")
            continue
        start = time.perf_counter()
        log(f"{name}: training from step {before} for {limits[name]:.0f} s with {settings}")
        try:
            train.train(cfg, path, resume=True, time_limit=limits[name], progress=False,
                        command=f"benchmarks/gpu_session.sh ({name}, {limits[name]:.0f} s)")
        except KeyboardInterrupt as stop:  # the shell's timeout: the checkpoint is saved
            log(f"{name}: interrupted ({stop})")
        except Exception as err:  # this baseline failed: keep its last checkpoint, go on with the next
            log(f"{name}: training failed: {type(err).__name__}: {err}")
            out[name] = {"from": before, "error": f"{type(err).__name__}: {err}"}
            continue
        ckpt = checkpoint.read(path)
        h, wall = ckpt["history"], time.perf_counter() - start
        steps = int(ckpt["step"]) - before
        runs = ckpt["provenance"].get("runs") or [{}]
        out[name] = {"from": before, "to": int(ckpt["step"]), "wall_seconds": round(wall, 1),
                     "seconds_per_step": round(runs[-1].get("wall_seconds", 0.0) / steps, 4) if steps else None,
                     "val": list(zip(h["val_step"], h["val_mse"]))[-4:]}
        log(f"{name}: steps {before} -> {ckpt['step']} in {wall:.0f} s; last validations {out[name]['val']}")
    return out


def evaluate_stage(work: Path, timeout: float, dry: bool) -> dict[str, Any]:
    root = work / "results"
    cmd = [sys.executable, "-m", "motionseg", "evaluate", *TRAINED, "--profile", "full",
           "--results", str(root), "--out", str(root)] + (["--n", "4"] if dry else [])
    log(f"evaluate: {' '.join(cmd[1:])} (at most {timeout:.0f} s)")
    done = subprocess.run(cmd, timeout=max(timeout, 10), capture_output=True, text=True)
    for line in (done.stdout + done.stderr).splitlines():
        if "MSE" in line or "error" in line.lower():
            log("  " + line.strip())
    if done.returncode:
        raise RuntimeError(f"evaluate exited with {done.returncode}")
    return {name: json.loads((root / name / "metrics_full.json").read_text()) for name in TRAINED}


def curves_stage(work: Path) -> dict[str, Any]:
    out = {}
    for name in BASELINES:
        rep = curves.report(name, work / "results")
        rep["curve"] = rep["curve"].to_dict()
        p = rep.get("projection")
        if p is not None:
            log(f"{name}: power law b={p['b']:.2f} through {p['points']} validations: the paper's MSE "
                f"{rep['paper_mse']} at step {p['step']:.0f}, {p['gpu_hours']:.1f} GPU hours more at "
                f"{p['seconds_per_step']:.3f} s/step" + ("" if rep["calibrated"] else " (not calibrated to the test set)"))
        out[name] = rep
    return out


def pack(work: Path, out_dir: Path) -> list[str]:
    """Weights and compact resume states to ``out_dir``; metrics and reports to ``work/bundle``."""
    bundle = work / "bundle"
    files = []
    for name in PAPER:  # small (tens of KB): inside session.tgz, which has room; the files back are 8 at most
        path = zoo.checkpoint_path(name, work / "results")
        target = bundle / "results" / name
        target.mkdir(parents=True, exist_ok=True)
        for f in ("checkpoint.pt", checkpoint.RESUME_NAME, "metrics_full.json"):
            if (path.parent / f).exists():
                shutil.copy(path.parent / f, target / f)
    for name in BASELINES:
        path = zoo.checkpoint_path(name, work / "results")
        resume = train.compact_resume(path)  # first: a version-1 checkpoint is split into weights and state
        weights = out_dir / "results" / name / "checkpoint.pt"
        weights.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, weights)
        target = out_dir / "resume" / name / checkpoint.RESUME_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(resume, target)
        metrics = path.parent / "metrics_full.json"
        if metrics.exists():
            (bundle / "results" / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(metrics, bundle / "results" / name / "metrics_full.json")
        if checkpoint.read(weights).get("version") != checkpoint.VERSION or "optimizer" in checkpoint.read(weights):
            raise RuntimeError(f"{weights} is not a weights-only checkpoint")
        files += [str(weights), str(target)]
    sizes = {f: Path(f).stat().st_size for f in files}
    for f, n in sizes.items():
        log(f"pack: {Path(f).relative_to(out_dir)} {n / 2 ** 20:.1f} MiB")
    over = [f for f, n in sizes.items() if n > LIMITS["file_bytes"]]
    if over or sum(sizes.values()) > LIMITS["total_bytes"] - 8 * 2 ** 20 or len(files) + 1 > LIMITS["files"]:
        raise RuntimeError(f"what would come back breaks the transfer limits {LIMITS}: {sizes}")
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for all stages (default 540)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/motionseg_gpu"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/motionseg_gpu_out")))
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, toy sizes: bench at 64 x 64, one Conv-PGP step (the VLNs are resumed without a "
                             "step: one takes about 15 GB there), 4 test sequences")
    parser.add_argument("--share", default="zero_param=2,learnable=3,conv_pgp=1,vln_resnet=2,vln_ldc=2",
                        help="training time shares (the paper's models first)")
    parser.add_argument("--execution", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto: the measured fastest variant that agrees with fp32")
    parser.add_argument("--compile-models", nargs="*", default=[], help="also bench torch.compile for these")
    parser.add_argument("--bench-seconds", type=float, default=100.0, help="most seconds for the benchmark")
    parser.add_argument("--eval-seconds", type=float, default=90.0, help="seconds kept for the evaluation")
    args = parser.parse_args()
    dry = args.dry_run
    if dry:
        os.environ["MOTIONSEG_DEVICE"] = "cpu"
    torch.set_float32_matmul_precision("high")  # as `python -m motionseg` runs
    torch.backends.cudnn.benchmark = True
    deadline = T0 + args.budget
    (args.work / "bundle" / "results" / "benchmarks").mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"budget": args.budget, "stages": {}}
    summary = args.work / "bundle" / "results" / "benchmarks" / "gpu_session.json"

    def stage_done(name: str, since: float) -> None:
        report["stages"][name] = round(time.perf_counter() - since, 1)
        train.write_json(report, summary)

    status = 0
    t = time.perf_counter()
    report["info"] = check(args.work, dry)
    stage_done("check", t)
    device = config.device()

    # the CUDA path of the test suite: every model on the GPU against the CPU (skips without CUDA)
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           str(ROOT / "tests" / "test_cuda.py")], capture_output=True, text=True, timeout=240)
    report["cuda_tests"] = {"exit": done.returncode, "tail": done.stdout[-2000:]}
    log(f"cuda tests: exit {done.returncode}: {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ''}")
    stage_done("cuda_tests", t)

    # bench: every model, the baselines first (they matter for this session's choices)
    t = time.perf_counter()
    batch, repeats = (1, 1) if dry else (16, 5)
    variants = ["default", "bf16", "bf16_fused"] if dry else SESSION_VARIANTS + (["compile"] if args.compile_models else [])
    models = [*TRAINED, *[m for m in zoo.names() if m not in TRAINED and m not in zoo.AUTHORS]]
    result: dict[str, Any] = {"batch": batch, "models": {}, "with_optimizer": True}
    for name in models:
        if time.perf_counter() - t > args.bench_seconds:
            log(f"bench: out of its {args.bench_seconds:.0f} s, {name} and later models skipped")
            break
        part = bench.run([name], variants, batch, repeats, device, with_optimizer=True, size=64 if dry else config.SIZE,
                         compile_models=tuple(args.compile_models), log=log, interleave=True)
        result["models"].update(part["models"])
    workers_tried = (0, 1) if dry else (1, max(2, (os.cpu_count() or 4) - 2))
    result["data"] = []
    for w in workers_tried:
        res = bench.data_throughput(w, batch if not dry else 2, seconds=1.0 if dry else 3.0)
        result["data"].append(res)
        log(f"data: {w} workers -> {res['sequences_per_second']:.0f} training sequences/s")
    result["provenance"] = train.provenance(device, time.perf_counter() - t)
    train.write_json(result, args.work / "bundle" / "results" / "benchmarks" / f"train_step_{device.type}_session.json")
    report["bench"] = result
    stage_done("bench", t)

    # choose
    per_worker = max(r["sequences_per_second"] / max(r["workers"], 1) for r in result["data"])
    plan: dict[str, dict[str, Any]] = {}
    for name in TRAINED:
        if args.execution == "auto":
            variant, settings = choose(result, name)
        else:
            variant = "default" if args.execution == "fp32" else "bf16_fused"
            settings = dict(bench.VARIANTS[variant])
        step_s = result["models"].get(name, {}).get(variant, {}).get("seconds_per_step", 1.0)
        workers = 1 if dry else bench.workers_needed(step_s, 16, per_worker)
        settings.update(workers=workers, prefetch=4, pin_memory=device.type == "cuda", val_every=250,
                        checkpoint_every=250, val_at_stop=True)
        plan[name] = {"variant": variant, "settings": settings, "bench_seconds_per_step": step_s}
        log(f"{name}: {variant} ({step_s:.4f} s/step in the bench), {workers} data workers")
    report["plan"] = plan
    train.write_json(report, summary)

    # train: what is left after the reserves for evaluation and packing
    t = time.perf_counter()
    reserve = (30.0 if dry else args.eval_seconds) + 25.0
    left = max(deadline - time.perf_counter() - reserve, 0.0)
    shares = {k: float(v) for k, v in (item.split("=") for item in args.share.split(","))}
    limits = {name: (0.0 if dry else left * shares.get(name, 0) / sum(shares.values())) for name in TRAINED}
    try:
        report["train"] = train_stage(args.work, plan, limits, dry)
    except Exception as err:  # keep what was saved: evaluate and pack it anyway
        log(f"train: failed: {type(err).__name__}: {err}")
        status = 1
    stage_done("train", t)

    t = time.perf_counter()
    metrics: dict[str, Any] = {}
    try:
        metrics = evaluate_stage(args.work, deadline - time.perf_counter() - 20.0, dry)
        report["test"] = {k: {m: v[m] for m in ("l1", "mse", "ssim", "n")} for k, v in metrics.items()}
    except Exception as err:
        log(f"evaluate: failed: {type(err).__name__}: {err}")
        status = 1
    stage_done("evaluate", t)

    t = time.perf_counter()
    try:
        report["curves"] = curves_stage(args.work)
    except Exception as err:
        log(f"curves: failed: {type(err).__name__}: {err}")
    stage_done("curves", t)

    t = time.perf_counter()
    try:
        report["packed"] = [str(Path(f).relative_to(args.out)) for f in pack(args.work, args.out)]
    except Exception as err:
        log(f"pack: failed: {type(err).__name__}: {err}")
        status = 1
    stage_done("pack", t)
    log(f"done in {time.perf_counter() - T0:.0f} s of a {args.budget:.0f} s budget (status {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
