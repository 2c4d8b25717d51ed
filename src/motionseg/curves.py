"""Learning curves of trained models and how far they still have to go.

A curve is the validation MSE of a run at its validation steps, with the wall seconds the
training had run by then (``History.val_seconds``; for checkpoints written before those were
recorded, the run's wall time spread evenly over its steps). :func:`fit_power_law` fits

    val_mse(s) = a * s ** (-b)

by least squares in log-log space (a straight line there), and :meth:`PowerLaw.reach` says
at which step the line reaches a target. The power law has no floor: as long as a curve
still falls like one it is an honest extrapolation, once it levels off (as every curve does
eventually) it is optimistic. With few points the exponent is uncertain, and the step
needed grows like ``target ** (-1 / b)``: :meth:`PowerLaw.reach` takes ``b`` so that a range
of exponents gives a range of steps.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import checkpoint

__all__ = ["Curve", "PowerLaw", "fit_power_law", "curve_from_checkpoint", "seconds_per_step", "projection",
           "report", "Convergence", "convergence"]

# A run has converged when its best validation MSE improved by less than this fraction over the
# last quarter of its steps (the project's criterion for "trained to convergence").
CONVERGED_GAIN = 0.01


@dataclass
class Convergence:
    """How much the best validation MSE improved over the last quarter of a run's steps."""

    steps: int  # the run's last validation step
    best_before: float  # best validation MSE at or before 3/4 of the steps
    best: float  # best validation MSE of the whole run
    gain: float  # (best_before - best) / best_before
    converged: bool


def convergence(val_step: Sequence[int], val_mse: Sequence[float], threshold: float = CONVERGED_GAIN) -> Convergence:
    """Whether a curve has flattened: best MSE improved by less than ``threshold`` over the last quarter.

    Needs validations both before and after three quarters of the steps; with fewer the run has
    not converged.
    """
    if len(val_step) != len(val_mse):
        raise ValueError(f"val_step and val_mse differ in length ({len(val_step)} and {len(val_mse)})")
    if not val_step:
        return Convergence(0, math.nan, math.nan, math.nan, False)
    last = int(val_step[-1])
    before = [m for s, m in zip(val_step, val_mse) if s <= 0.75 * last]
    best = float(min(val_mse))
    if not before or len(before) == len(val_mse):
        return Convergence(last, math.nan, best, math.nan, False)
    best_before = float(min(before))
    gain = (best_before - best) / best_before
    return Convergence(last, best_before, best, gain, gain < threshold)


@dataclass
class Curve:
    """Validation MSE of one run against training steps and wall seconds."""

    model: str
    steps: list[int]
    val_mse: list[float]
    seconds: list[float]
    estimated_seconds: int = 0  # how many leading entries of ``seconds`` are estimated from steps
    device: str = ""  # the device of the runs (the last one if several)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PowerLaw:
    """``y = a * x ** (-b)``, stored around the centroid of the fitted points in log space.

    ``log y = log_y0 - b * (log x - log_x0)``: changing ``b`` turns the line around the
    centroid, which is where a fit's line is best determined.
    """

    b: float
    log_x0: float
    log_y0: float
    b_se: float | None  # standard error of the exponent (None with two points)
    n: int  # points fitted

    @property
    def a(self) -> float:
        return math.exp(self.log_y0 + self.b * self.log_x0)

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.exp(self.log_y0 - self.b * (np.log(x) - self.log_x0))

    def reach(self, y: float, b: float | None = None) -> float:
        """Where the line (with exponent ``b``, default the fitted one) reaches ``y``."""
        b = self.b if b is None else b
        if b <= 0:
            return math.inf
        return math.exp(self.log_x0 + (self.log_y0 - math.log(y)) / b)


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Least-squares line through ``(log x, log y)``; at least two points with distinct ``x``."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        raise ValueError(f"a power law needs two or more points at distinct x, got {list(x)}")
    mx, my = float(lx.mean()), float(ly.mean())
    sxx = float(((lx - mx) ** 2).sum())
    slope = float(((lx - mx) * (ly - my)).sum()) / sxx
    se = None
    if len(lx) > 2:
        resid = ly - (my + slope * (lx - mx))
        se = math.sqrt(float((resid ** 2).sum()) / (len(lx) - 2) / sxx)
    return PowerLaw(b=-slope, log_x0=mx, log_y0=my, b_se=se, n=len(lx))


def curve_from_checkpoint(path: Path, extra: dict[str, Any] | None = None) -> Curve:
    """The validation curve stored in a checkpoint's history.

    ``extra``: a validation point measured afterwards at the checkpoint's own step (``step``,
    ``val_mse``), for checkpoints whose last validation lies before their last step; it is
    used only if it belongs to this checkpoint's step and the history has no point there. The
    validation of a run's start (step 0, runs from trained weights) is left out: a power law in
    the steps has no value there.
    """
    ckpt = checkpoint.read(path)
    h, prov, step = ckpt["history"], ckpt.get("provenance", {}), int(ckpt["step"])
    steps, mse = list(h["val_step"]), list(h["val_mse"])
    seconds = list(h.get("val_seconds", []))
    per_step = float(prov.get("wall_seconds", 0.0)) / step if step else 0.0
    missing = len(steps) - len(seconds)
    estimated = int(prov.get("val_seconds_estimated", 0)) + max(missing, 0)
    seconds = [s * per_step for s in steps[:missing]] + seconds
    if steps and steps[0] == 0:
        steps, mse, seconds = steps[1:], mse[1:], seconds[1:]
        estimated = max(estimated - 1, 0)
    if extra and int(extra["step"]) == step and (not steps or steps[-1] < step):
        steps.append(step)
        mse.append(float(extra["val_mse"]))
        seconds.append(float(prov.get("wall_seconds", step * per_step)))
    runs = prov.get("runs") or []
    device = runs[-1]["device"] if runs else prov.get("device", "")
    return Curve(model=ckpt["model"], steps=steps, val_mse=mse, seconds=seconds,
                 estimated_seconds=estimated, device=device)


def seconds_per_step(path: Path) -> dict[str, Any]:
    """Wall seconds per training step of a checkpoint's last run (all runs if none recorded)."""
    ckpt = checkpoint.read(path)
    prov = ckpt.get("provenance", {})
    runs = [r for r in prov.get("runs") or [] if r["steps"][1] > r["steps"][0]]
    if runs:
        last = runs[-1]
        n = last["steps"][1] - last["steps"][0]
        return {"seconds": last["wall_seconds"] / n, "steps": n, "device": last["device"],
                "execution": last.get("execution", {}), "source": "last run"}
    return {"seconds": float(prov["wall_seconds"]) / int(ckpt["step"]), "steps": int(ckpt["step"]),
            "device": prov.get("device", ""), "execution": {}, "source": "all runs"}


def projection(curve: Curve, target: float, seconds_each: float, first: int = 0) -> dict[str, Any]:
    """Where the power law through ``curve`` (its points from index ``first``) reaches ``target``.

    Returns the fit, the step where it reaches ``target`` and the range of steps for the
    exponent plus or minus one standard error (the same step twice when two points leave no
    error to estimate), the steps still to go from the curve's last step, and the GPU hours
    those take at ``seconds_each`` seconds per step.
    """
    fit = fit_power_law(curve.steps[first:], curve.val_mse[first:])
    se = fit.b_se or 0.0
    step = fit.reach(target)
    # a smaller exponent means a flatter line and more steps
    steps_range = [fit.reach(target, fit.b + se), fit.reach(target, fit.b - se)]
    done = curve.steps[-1]

    def hours(s: float) -> float:
        return max(s - done, 0.0) * seconds_each / 3600

    return {"target": target, "a": fit.a, "b": fit.b, "b_se": fit.b_se, "points": fit.n,
            "step": step, "step_range": steps_range, "steps_to_go": max(step - done, 0.0),
            "gpu_hours": hours(step), "gpu_hours_range": [hours(s) for s in steps_range],
            "seconds_per_step": seconds_each}


def read_extra(path: Path) -> dict[str, Any]:
    """The validation points measured at checkpoints' own steps (``benchmarks/learning_curves.py``)."""
    path = Path(path)
    return json.loads(path.read_text())["models"] if path.is_file() else {}


def report(name: str, root: Path | None = None) -> dict[str, Any]:
    """Everything about the learning curve of the trained model ``name`` under ``root`` (default ``results/``).

    * ``curve``: its validation curve, extended by the point that ``benchmarks/learning_curves.py``
      measured at the checkpoint's own step (``root/benchmarks/learning_curves.json``);
    * ``test``: its full-profile test metrics (``root/<name>/metrics_full.json``), taken to belong
      to the checkpoint (every command that trains these checkpoints re-evaluates them);
    * ``test_over_val``: test MSE over the last validation MSE, when that validation is at the
      checkpoint's step (``calibrated``), else 1;
    * ``paper_mse``: the paper's Table 1 MSE of the model, and ``target``: the same in validation
      terms (divided by ``test_over_val``);
    * ``speed``: :func:`seconds_per_step` of its last run;
    * ``projection``: :func:`projection` of the curve to ``target``, when the curve has two or
      more points and the test MSE is still above the paper's.
    """
    from . import results, zoo
    root = Path(root) if root is not None else zoo.RESULTS
    path = zoo.checkpoint_path(name, root)
    step = int(checkpoint.read(path)["step"])
    curve = curve_from_checkpoint(path, read_extra(root / "benchmarks" / "learning_curves.json").get(name))
    metrics = root / name / "metrics_full.json"
    test = json.loads(metrics.read_text()) if metrics.is_file() else None
    calibrated = test is not None and bool(curve.steps) and curve.steps[-1] == step
    ratio = test["mse"] / curve.val_mse[-1] if calibrated and test is not None else 1.0
    paper = results.PAPER_TABLE1[name][1]
    out: dict[str, Any] = {"model": name, "step": step, "curve": curve, "test": test, "calibrated": calibrated,
                           "test_over_val": ratio, "paper_mse": paper, "target": paper / ratio,
                           "speed": seconds_per_step(path)}
    if len(curve.steps) >= 2 and (test is None or test["mse"] > paper):
        out["projection"] = projection(curve, paper / ratio, out["speed"]["seconds"])
    return out
