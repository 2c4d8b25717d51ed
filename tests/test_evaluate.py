"""The evaluation loop against a direct computation from the predictions.

Every number :func:`motionseg.evaluate.evaluate` reports is recomputed here from the
predictions themselves: numpy means for L1 and MSE, scikit-image for SSIM, and hand
reasoning (shifted rectangles, a 3-4-5 triangle) for the state metrics. Five 128 x 128
test sequences, evaluated in batches of 2 and 3 (neither divides 5), keep it fast.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch import Tensor

from motionseg import data, evaluate, metrics

N = 5
N_SEED, N_FUTURE = evaluate.N_SEED, evaluate.N_FUTURE
STEPS = N_SEED - 1 + N_FUTURE  # states exist for frames 1 .. 19 (entry k is frame k + 1)
SHIFT = 3  # pixels the wrong alpha is moved by
VEL_ERROR = (0.3, 0.4)  # a 3-4-5 triangle: end-point error 0.5

Predictor = Callable[[dict[str, Tensor]], tuple[Tensor, dict[str, Tensor] | None]]


def perturbed(batch: dict[str, Tensor]) -> tuple[Tensor, None]:
    """The target plus a perturbation that varies over pixels and frames (a function of each sequence alone)."""
    target = batch["frames"][:, N_SEED:N_SEED + N_FUTURE]
    k = torch.arange(N_FUTURE, dtype=torch.float32)[None, :, None, None]
    return (target + 0.05 * torch.sin(20 * target + k)).clamp(0.0, 1.0), None


def _true_states(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    frames = slice(1, STEPS + 1)
    return {"alpha": batch["alpha"][:, frames].clone(),
            "velocity": batch["velocity"][:, None, :].expand(-1, STEPS, -1).clone(),
            "bg": batch["bg"][:, frames].clone()}


def perfect_states(batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Copy-last frames with the true alpha, velocity and background as states."""
    return batch["frames"][:, N_SEED - 1:N_SEED].repeat(1, N_FUTURE, 1, 1), _true_states(batch)


def towards_centre(alpha: Tensor) -> Tensor:
    """+1 or -1 per sequence: the x direction from the square's centre to the image centre."""
    cols = (alpha[:, 0] > 0.5).any(-2).to(torch.float32)  # B x W: columns the square covers
    x = torch.arange(alpha.shape[-1], dtype=torch.float32)
    centre = (cols * x).sum(-1) / cols.sum(-1)
    return torch.where(centre < alpha.shape[-1] / 2, 1, -1)


def wrong_states(batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Alpha rolled SHIFT px towards the centre (no wrap-around), velocity off by VEL_ERROR, BG 1.5x too bright."""
    pred, states = perfect_states(batch)
    direction = towards_centre(batch["alpha"])
    states["alpha"] = torch.stack([a.roll(SHIFT * int(d), dims=-1) for a, d in zip(states["alpha"], direction)])
    states["velocity"] = states["velocity"] + torch.tensor(VEL_ERROR)
    states["bg"] = 1.5 * states["bg"]
    return pred, states


def predictors() -> dict[str, Predictor]:
    ref = evaluate.reference_predictors(N_SEED, N_FUTURE)
    return {"copy_last": ref["copy_last"], "oracle": ref["oracle"], "perturbed": perturbed,
            "perfect_states": perfect_states, "wrong_states": wrong_states}


@pytest.fixture(scope="module")
def sequences() -> dict[str, np.ndarray]:
    """The same five test sequences that ``evaluate`` draws, generated in one piece."""
    return data.make_sequences(N, "test", 0)


@pytest.fixture(scope="module")
def results_by_batch_size() -> dict[int, dict[str, dict]]:
    return {b: evaluate.evaluate(predictors(), n=N, batch_size=b) for b in (2, 3)}


@pytest.fixture(scope="module", params=[2, 3])
def results(request: pytest.FixtureRequest, results_by_batch_size: dict) -> dict[str, dict]:
    return results_by_batch_size[request.param]


@pytest.fixture(scope="module")
def direct_predictions(sequences: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each predictor's output on all five sequences at once, as float64."""
    frames = sequences["frames"].astype(np.float64)
    batch = {k: torch.from_numpy(v) for k, v in sequences.items()}
    return {
        # copy-last written out here, not taken from the module under test
        "copy_last": np.repeat(frames[:, N_SEED - 1:N_SEED], N_FUTURE, axis=1),
        "oracle": evaluate.oracle_predict(batch, N_SEED, N_FUTURE).double().numpy(),
        "perturbed": perturbed(batch)[0].double().numpy(),
    }


@pytest.fixture(scope="module")
def direct_metrics(sequences: dict[str, np.ndarray], direct_predictions: dict[str, np.ndarray]
                   ) -> dict[str, dict[str, np.ndarray]]:
    target = sequences["frames"][:, N_SEED:N_SEED + N_FUTURE].astype(np.float64)
    return {name: direct_frame_metrics(pred, target) for name, pred in direct_predictions.items()}


def flatten(value: object, prefix: str = "") -> dict[str, float]:
    """Nested dicts and lists of numbers as one flat dict, so ``pytest.approx`` can compare them."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}[{i}]").items()}
    return {prefix: float(value)}


def direct_frame_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """N x N_FUTURE arrays of L1, MSE and SSIM per predicted frame, computed without motionseg."""
    err = pred - target
    ssim = np.array([[structural_similarity(p, t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            data_range=1.0) for p, t in zip(ps, ts)]
                     for ps, ts in zip(pred, target)])
    return {"l1": np.abs(err).mean(axis=(-2, -1)), "mse": (err ** 2).mean(axis=(-2, -1)), "ssim": ssim}


# -- frame metrics -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["copy_last", "oracle", "perturbed"])
def test_frame_metrics_equal_direct_computation(results: dict, direct_metrics: dict, name: str) -> None:
    direct = direct_metrics[name]
    row = results[name]
    assert row["n"] == N
    for key, values in direct.items():
        # float32 sums of 128 x 128 pixels in the module, float64 here
        tol = {"abs": 1e-5} if key == "ssim" else {"rel": 1e-5, "abs": 1e-9}
        # documented order: per predicted frame over sequences, then over frames
        assert row["per_frame"][key] == pytest.approx(values.mean(0).tolist(), **tol), key
        assert row[key] == pytest.approx(float(values.mean(0).mean()), **tol), key
        assert row["per_sequence"][key] == pytest.approx(values.mean(1).tolist(), **tol), key


def test_perturbation_is_visible(results: dict) -> None:
    """The perturbed row is neither perfect nor as bad as copy-last: the comparison above has teeth."""
    row = results["perturbed"]
    assert 1e-4 < row["mse"] < results["copy_last"]["mse"]
    assert row["ssim"] < 0.999


def test_result_does_not_depend_on_batch_size(results_by_batch_size: dict) -> None:
    for name, row in results_by_batch_size[2].items():
        other = results_by_batch_size[3][name]
        for key in ("n", "l1", "mse", "ssim", "per_frame", "per_sequence", "mse_by_region", "per_state_step"):
            assert flatten(other[key]) == pytest.approx(flatten(row[key]), rel=1e-9, abs=1e-12), (name, key)


# -- MSE by region -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["copy_last", "oracle", "perturbed"])
def test_mse_by_region_sums_to_mse_and_digit_part_is_direct(results: dict, sequences: dict,
                                                             direct_predictions: dict, name: str) -> None:
    row = results[name]
    assert set(row["mse_by_region"]) == set(metrics.REGIONS)
    assert sum(row["mse_by_region"].values()) == pytest.approx(row["mse"], rel=1e-5)
    # the digit part by its documented definition: pixels with alpha > 0.01 in the predicted frame
    target = sequences["frames"][:, N_SEED:N_SEED + N_FUTURE].astype(np.float64)
    digit = sequences["alpha"][:, N_SEED:N_SEED + N_FUTURE] > 0.01
    se = (direct_predictions[name] - target) ** 2
    expected = float((se * digit).sum(axis=(-2, -1)).mean() / (se.shape[-1] * se.shape[-2]))
    assert row["mse_by_region"]["digit"] == pytest.approx(expected, rel=1e-5, abs=1e-12)


# -- state metrics -----------------------------------------------------------------------------

def test_no_states_no_state_metrics(results: dict) -> None:
    for name in ("copy_last", "oracle", "perturbed"):
        assert results[name]["per_state_step"] == {}


def test_perfect_states(results: dict) -> None:
    steps = results["perfect_states"]["per_state_step"]
    assert steps["iou"] == [1.0] * STEPS
    assert steps["epe"] == [0.0] * STEPS
    assert steps["bg_revealed_l1"] == [0.0] * STEPS


def test_wrong_alpha_iou_is_that_of_shifted_rectangles(results: dict, sequences: dict) -> None:
    masks = sequences["alpha"][:, 1:STEPS + 1] > 0.5
    direction = towards_centre(torch.from_numpy(sequences["alpha"])).tolist()
    expected = np.empty(masks.shape[:2])
    for i, k in np.ndindex(*masks.shape[:2]):
        rows, cols = np.flatnonzero(masks[i, k].any(1)), np.flatnonzero(masks[i, k].any(0))
        h, w = len(rows), len(cols)
        # the premises: the true mask is a solid rectangle, and rolling it does not wrap around
        assert masks[i, k].sum() == h * w > 0
        assert 0 <= cols[0] + direction[i] * SHIFT and cols[-1] + direction[i] * SHIFT < masks.shape[-1]
        # a w-wide rectangle against itself moved by SHIFT: overlap w - SHIFT, union w + SHIFT columns
        expected[i, k] = (w - SHIFT) / (w + SHIFT)
    assert results["wrong_states"]["per_state_step"]["iou"] == pytest.approx(expected.mean(0).tolist(), abs=1e-6)


def test_wrong_velocity_end_point_error(results: dict) -> None:
    assert results["wrong_states"]["per_state_step"]["epe"] == pytest.approx([0.5] * STEPS, abs=1e-6)


def test_wrong_background_error_on_revealed_pixels(results: dict, sequences: dict) -> None:
    """BG 1.5x too bright errs by 0.5 x BG; averaged over revealed pixels, then over sequences that have any."""
    alpha, bg = sequences["alpha"], sequences["bg"].astype(np.float64)
    expected = []
    for k in range(1, STEPS + 1):
        # revealed, as documented: covered in the first frame, uncovered in this one
        revealed = (alpha[:, 0] > 0.5) & (alpha[:, k] < 0.5)
        per_seq = [0.5 * bg[i, k][revealed[i]].mean() for i in range(N) if revealed[i].any()]
        expected.append(float(np.mean(per_seq)))
    # a sequence without revealed pixels at some step is left out, not counted as 0
    assert any(not ((alpha[i, 0] > 0.5) & (alpha[i, k] < 0.5)).any() for i in range(N) for k in range(1, STEPS + 1))
    assert results["wrong_states"]["per_state_step"]["bg_revealed_l1"] == pytest.approx(expected, rel=1e-5)
