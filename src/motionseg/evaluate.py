"""Evaluation on the test set, streamed in batches so memory stays bounded.

Besides the models, two reference rows that the paper does not have: *copy last*
(repeat the last seed frame, the floor every model must beat) and the *oracle*, which
knows the true foreground, alpha, background and velocity and moves the last seed frame's
layers with the Fourier shift theorem (the ceiling of predicting that way; its error is
all at the digit's edges, from half-pixel shifts, which templates per sub-pixel phase avoid:
see :meth:`motionseg.zero_param_plus.ZeroParamPlus.smooth_layers`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from . import data, fourier, metrics
from .validation import check_seed_frames

N_SEED = 10
N_FUTURE = 10

class CopyLast(nn.Module):
    """Predict that nothing moves: every future frame is the last seed frame."""

    def forward(self, seed_frames: Tensor, n_future: int = N_FUTURE) -> Tensor:
        n_future = check_seed_frames(seed_frames, min_seed=1, n_future=n_future, model=self)
        return seed_frames[:, -1:].expand(-1, n_future, -1, -1).clone()


def oracle_predict(batch: dict[str, Tensor], n_seed: int = N_SEED, n_future: int = N_FUTURE) -> Tensor:
    """Move the true layers of the last seed frame by the true velocity (Fourier shift)."""
    alpha = batch["alpha"][:, n_seed - 1]
    premult = alpha * batch["fg"][:, n_seed - 1]
    bg = batch["bg"][:, n_seed - 1]
    steps = torch.arange(1, n_future + 1, dtype=torch.float32, device=alpha.device)
    shift = batch["velocity"][:, None, :] * steps[None, :, None]  # B x n_future x 2
    moved_alpha = fourier.fourier_shift(alpha[:, None].expand(-1, n_future, -1, -1), shift)
    moved_fg = fourier.fourier_shift(premult[:, None].expand(-1, n_future, -1, -1), shift)
    return (moved_fg + (1 - moved_alpha) * bg[:, None]).clamp(0.0, 1.0)


@dataclass
class Accumulator:
    """Running sums of per-frame metrics over the test set."""

    n: int = 0
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    per_sequence: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, values: Tensor) -> None:
        """Add a B x steps tensor of per-sequence values (NaN entries are skipped)."""
        v = values.detach().double().cpu().numpy()
        ok = ~np.isnan(v)
        s = np.where(ok, v, 0.0).sum(0)
        c = ok.sum(0)
        if name in self.sums:
            self.sums[name] += s
            self.counts[name] += c
        else:
            self.sums[name], self.counts[name] = s, c

    def per_step(self) -> dict[str, list[float]]:
        return {k: (self.sums[k] / np.maximum(self.counts[k], 1)).tolist() for k in self.sums}


def frame_metrics(acc: Accumulator, pred: Tensor, target: Tensor) -> None:
    """Accumulate L1, MSE and SSIM per predicted frame, and each sequence's mean over its frames."""
    for name, fn in (("l1", metrics.l1), ("mse", metrics.mse), ("ssim", metrics.ssim)):
        values = fn(pred, target)
        acc.add(name, values)
        # six significant digits keep the results files small and are plenty to re-check them
        acc.per_sequence.setdefault(name, []).extend(float(f"{v:.6g}") for v in values.double().mean(1).tolist())


def state_metrics(acc: Accumulator, states: dict[str, Tensor], batch: dict[str, Tensor], n_seed: int) -> None:
    """Mask IoU, velocity end-point error and error of the background on revealed pixels.

    States are indexed by the frame they belong to: entry ``k`` is frame ``k + 1``. The true
    velocity of entry ``k`` is the displacement from frame ``k`` to ``k + 1``: the constant
    ``velocity``, or ``velocity_per_frame`` where the generator gives it (bounces). With several
    objects the mask is compared with their union (what the frame shows) and the velocity with
    that of the nearest object (a one-motion model may lock on to any of them).
    """
    alpha, vel, bg = states["alpha"], states["velocity"], states["bg"]
    steps = alpha.shape[1]
    frames = torch.arange(1, steps + 1)
    true_alpha = batch["alpha"][:, frames]
    acc.add("iou", metrics.mask_iou(alpha, true_alpha))
    acc.add("epe", _velocity_error(vel, batch))
    # revealed: covered in the first frame, uncovered in this one
    revealed = (batch["alpha"][:, :1] > 0.5) & (true_alpha < 0.5)
    acc.add("bg_revealed_l1", metrics.masked_mean_abs(bg, batch["bg"][:, frames], revealed))


def _velocity_error(vel: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """End-point error of B x steps x 2 velocities against the truth (see :func:`state_metrics`)."""
    steps = vel.shape[1]
    if "obj_velocity" in batch:  # B x K x steps x 2, the nearest object's error
        if "obj_velocity_per_frame" in batch:
            truth = batch["obj_velocity_per_frame"][:, :, :steps]
        else:
            truth = batch["obj_velocity"][:, :, None].expand(-1, -1, steps, -1)
        return metrics.endpoint_error(vel[:, None].expand_as(truth), truth).amin(1)
    if "velocity_per_frame" in batch:
        return metrics.endpoint_error(vel, batch["velocity_per_frame"][:, :steps])
    return metrics.endpoint_error(vel, batch["velocity"][:, None].expand_as(vel))


def region_metrics(acc: Accumulator, pred: Tensor, batch: dict[str, Tensor], n_seed: int) -> None:
    """Accumulate the MSE of each predicted frame split by region (see :func:`metrics.mse_by_region`)."""
    n_future = pred.shape[1]
    parts = metrics.mse_by_region(pred, batch["frames"][:, n_seed:n_seed + n_future],
                                  batch["alpha"][:, :n_seed], batch["alpha"][:, n_seed:n_seed + n_future])
    for region, value in parts.items():
        acc.add(f"region_{region}", value)


Predictor = Callable[[dict[str, Tensor]], tuple[Tensor, dict[str, Tensor] | None]]


def model_predictor(model: nn.Module, n_seed: int = N_SEED, n_future: int = N_FUTURE,
                    device: torch.device | str = "cpu") -> Predictor:
    """Wrap a model; models with a ``run(..., keep_states=True)`` also report their states."""
    def predict(batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor] | None]:
        seed = batch["frames"][:, :n_seed].to(device)
        with torch.no_grad():
            if hasattr(model, "run"):
                pred, states = model.run(seed, n_future, keep_states=True)
                return pred.cpu(), {k: v.cpu() for k, v in states.stacked().items()}
            return model(seed, n_future).cpu(), None
    return predict


def true_motion_predictor(model: nn.Module, n_seed: int = N_SEED, n_future: int = N_FUTURE,
                          device: torch.device | str = "cpu") -> Predictor:
    """A diagnostic: the model with its motion state replaced by the true translation at every step.

    Whatever the model's own motion estimate, ``T`` is the phase ramp of the sequence's true
    velocity; the rest of the cycle (segmentation, corrections) runs as usual. Comparing with
    the model itself separates the error that motion estimation causes from the rest.
    """
    class TrueMotion(type(model)):  # type: ignore[misc, valid-type]
        true_velocity: Tensor

        def observe_motion(self, x: Tensor, t: int, motion: Tensor | None) -> Tensor:
            return fourier.phase_ramp(self.true_velocity.to(x.device), x.shape[-2], x.shape[-1])

        def update_motion(self, before, after, motion, t):  # type: ignore[no-untyped-def]
            assert motion is not None
            out = super().update_motion(before, after, motion, t)
            # the paper's model also returns the energy behind its estimate (for its phase filter)
            return (motion, out[1]) if isinstance(out, tuple) else motion

    copy = TrueMotion(options=model.options)
    copy.load_state_dict(model.state_dict())
    copy.eval()
    inner = model_predictor(copy, n_seed, n_future, device)

    def predict(batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor] | None]:
        copy.true_velocity = batch["velocity"]
        return inner(batch)
    return predict


def evaluate(predictors: dict[str, Predictor], n: int = 1000, batch_size: int = 50, split: str = "test",
             seed: int = 0, n_seed: int = N_SEED, n_future: int = N_FUTURE, progress: bool = False,
             batches: Iterable[dict[str, np.ndarray]] | None = None, **options: Any) -> dict[str, dict]:
    """Evaluate several predictors on the same ``n`` sequences; returns metrics per predictor.

    ``options`` are generator options of :func:`motionseg.data.make_sequences` (``n_frames``,
    ``bounce``, ``n_digits``, ...; default: the paper's data); ``n_seed + n_future`` must not
    exceed ``n_frames``. ``batches``: batches of sequences to evaluate on instead of the
    generator's (e.g. windows cut from longer sequences); ``n`` then only sizes the progress bar.
    """
    n_frames = options.get("n_frames", data.N_FRAMES)
    if batches is None and n_seed + n_future > n_frames:
        if "n_frames" in options:
            raise ValueError(f"n_seed + n_future must be <= n_frames = {n_frames}, got {n_seed} + {n_future}")
        raise ValueError(f"n_seed + n_future must be <= {data.N_FRAMES}, got {n_seed} + {n_future}")
    if batches is not None and options:
        raise ValueError(f"pass generator options or batches, not both (got options {sorted(options)})")
    accs = {name: Accumulator() for name in predictors}
    seconds = {name: 0.0 for name in predictors}
    if batches is None:
        batches = data.iter_batches(n, batch_size, split, seed, **options)
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(batches, total=-(-n // batch_size), desc="evaluating")
    for raw in batches:
        batch = {k: torch.from_numpy(v) for k, v in raw.items()}
        if batch["frames"].shape[1] < n_seed + n_future:
            raise ValueError(f"n_seed + n_future = {n_seed + n_future} exceeds the {batch['frames'].shape[1]} "
                             "frames of the sequences given")
        target = batch["frames"][:, n_seed:n_seed + n_future]
        for name, predict in predictors.items():
            start = time.perf_counter()
            pred, states = predict(batch)
            seconds[name] += time.perf_counter() - start
            frame_metrics(accs[name], pred, target)
            region_metrics(accs[name], pred, batch, n_seed)
            if states is not None:
                state_metrics(accs[name], states, batch, n_seed)
            accs[name].n += pred.shape[0]
    out = {}
    frame_keys = ("l1", "mse", "ssim")
    for name, acc in accs.items():
        per_step = acc.per_step()
        summary = {k: float(np.mean(per_step[k])) for k in frame_keys}
        regions = {k[len("region_"):]: float(np.mean(v)) for k, v in per_step.items() if k.startswith("region_")}
        out[name] = {"n": acc.n, **summary, "per_frame": {k: per_step[k] for k in frame_keys},
                     "per_sequence": acc.per_sequence,
                     "mse_by_region": regions,
                     "per_state_step": {k: v for k, v in per_step.items()
                                        if k not in frame_keys and not k.startswith("region_")},
                     "seconds": seconds[name], "sequences_per_second": acc.n / max(seconds[name], 1e-9)}
    return out


def reference_predictors(n_seed: int = N_SEED, n_future: int = N_FUTURE) -> dict[str, Predictor]:
    """The copy-last floor and the oracle ceiling."""
    copy_last = CopyLast()
    return {
        "copy_last": lambda b: (copy_last(b["frames"][:, :n_seed], n_future), None),
        "oracle": lambda b: (oracle_predict(b, n_seed, n_future), None),
    }


# -- per object (the multi-object model, beyond the paper) -------------------------------------

def _objects_at(batch: dict[str, np.ndarray], t: int) -> tuple[Tensor, Tensor]:
    """The true objects' own masks at frame ``t`` (B x M x H x W) and velocities (B x M x 2)."""
    if "obj_alpha" in batch:
        return torch.from_numpy(batch["obj_alpha"][:, :, t]), torch.from_numpy(batch["obj_velocity"])
    return torch.from_numpy(batch["alpha"][:, None, t]), torch.from_numpy(batch["velocity"])[:, None]


def compare_objects(models: dict[str, nn.Module], n: int, n_digits: int, split: str = "train", seed: int = 1000,
                    batch_size: int = 50, photo_set: str = "all", n_seed: int = N_SEED,
                    n_future: int = N_FUTURE) -> dict[str, dict[str, float]]:
    """Several multi-object models on the same ``n`` sequences (default: validation, training split
    seed 1000): per model the MSE of the predicted frames, the mean per-object mask IoU of the moving
    objects at the last seed frame, and seconds per sequence of its forward passes."""
    ious: dict[str, list[float]] = {k: [] for k in models}
    squared = dict.fromkeys(models, 0.0)
    seconds = dict.fromkeys(models, 0.0)
    for batch in data.iter_batches(n, batch_size, split, seed, n_digits=n_digits, photo_set=photo_set):
        frames = torch.from_numpy(batch["frames"])
        x, future = frames[:, :n_seed], frames[:, n_seed:n_seed + n_future]
        true_alpha, true_velocity = _objects_at(batch, n_seed - 1)
        moving = true_velocity.norm(dim=-1) > 0
        for label, model in models.items():
            with torch.no_grad():
                start = time.perf_counter()
                pred = model(x, future.shape[1])
                seconds[label] += time.perf_counter() - start
            ious[label] += metrics.match_objects(model.layers.alpha, true_alpha)[0][moving].tolist()
            squared[label] += float(((pred - future) ** 2).mean(dim=(1, 2, 3)).sum())
    return {label: {"mse": squared[label] / n, "iou": sum(ious[label]) / max(len(ious[label]), 1),
                    "seconds_per_sequence": seconds[label] / n} for label in models}


def _layers_of(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """Masks (B x K x H x W) and velocities (B x K x 2) at the last seed frame, and the front-to-back
    order (B x K, None for one layer): from a multi-object model's ``layers`` of its last run, else
    from a one-layer model's final state."""
    layers = getattr(model, "layers", None)
    if layers is not None:
        return layers.alpha, layers.velocity, layers.order
    _, states = model.run(x, 0, keep_states=True)
    st = states.stacked()
    return st["alpha"][:, -1:], st["velocity"][:, -1:], None


def matched_masks(alpha: Tensor, layer: Tensor) -> Tensor:
    """The layers (B x K x H x W) matched to each object (``layer``: B x M, -1 for none: empty)."""
    rows = torch.arange(alpha.shape[0], device=alpha.device)[:, None]
    picked = alpha[rows, layer.clamp_min(0)]
    return picked * (layer >= 0)[..., None, None].to(alpha.dtype)


def evaluate_objects(model: nn.Module, n_digits: int, n: int = 200, batch_size: int = 50, split: str = "test",
                     seed: int = 0, n_seed: int = N_SEED, n_future: int = N_FUTURE) -> dict[str, Any]:
    """Frame metrics and per-object metrics of one model on ``n`` sequences of ``n_digits`` objects.

    Per object at the last seed frame: the mask IoU, precision and recall and the velocity error
    (px/frame) of the layer matched to it (:func:`metrics.match_objects`; each object's own,
    unoccluded mask). A static
    object is background to every motion-based model: it is counted (``static_objects``), not
    scored. ``front``: among sequences whose first two objects overlap in a seed frame, the
    share where the layer matched to the object in front (object 0) is also composed in front
    (models with an order only). ``seconds_per_sequence`` times the forward passes.
    """
    sums: dict[str, list[float]] = {"mse": [], "l1": [], "ssim": [], "iou": [], "epe": [], "precision": [],
                                    "recall": []}
    seconds, static, front, overlapping = 0.0, 0, 0, 0
    for batch in data.iter_batches(n, batch_size, split, seed, n_digits=n_digits):
        x = torch.from_numpy(batch["frames"])
        start = time.perf_counter()
        with torch.no_grad():
            pred = model(x[:, :n_seed], n_future)
        seconds += time.perf_counter() - start
        target = x[:, n_seed:n_seed + n_future]
        sums["mse"] += metrics.mse(pred, target).mean(1).tolist()
        sums["l1"] += metrics.l1(pred, target).mean(1).tolist()
        sums["ssim"] += metrics.ssim(pred, target).mean(1).tolist()
        with torch.no_grad():
            alpha, velocity, order = _layers_of(model, x[:, :n_seed])
        true_alpha, true_velocity = _objects_at(batch, n_seed - 1)
        iou, layer = metrics.match_objects(alpha, true_alpha)
        matched = velocity[torch.arange(len(x))[:, None], layer.clamp_min(0)]
        epe = torch.where(layer >= 0, (matched - true_velocity).norm(dim=-1), torch.full_like(iou, float("nan")))
        moving = true_velocity.norm(dim=-1) > 0
        # the matched layer's mask against the object's: how much of it is the object (precision)
        # and how much of the object it covers (recall), both at A > 0.5 like the IoU
        found = (matched_masks(alpha, layer) > 0.5).flatten(2)
        true = (true_alpha > 0.5).flatten(2)
        both = (found & true).sum(-1).float()
        size = found.sum(-1).float()  # an empty mask has no precision (its IoU and recall are 0)
        sums["precision"] += torch.where(size > 0, both / size.clamp_min(1), torch.nan)[moving].tolist()
        sums["recall"] += (both / true.sum(-1).clamp_min(1))[moving].tolist()
        sums["iou"] += iou[moving].tolist()
        sums["epe"] += epe[moving].tolist()
        static += int((~moving).sum())
        if order is not None and true_alpha.shape[1] > 1:
            seen = torch.from_numpy(batch["obj_alpha"][:, :2, :n_seed])
            overlap = ((seen[:, 0] > 0.5) & (seen[:, 1] > 0.5)).flatten(1).any(1) & (layer[:, :2] >= 0).all(1)
            overlapping += int(overlap.sum())
            front += int((overlap & (order[:, 0] == layer[:, 0])).sum())
    out: dict[str, Any] = {k: float(np.nanmean(v)) if v else float("nan") for k, v in sums.items()}
    out.update(unmatched_objects=int(np.isnan(sums["epe"]).sum()), static_objects=static,
               overlapping_sequences=overlapping, front=front / overlapping if overlapping else float("nan"),
               seconds_per_sequence=seconds / n, n=n)
    return out
