"""Tests of the metrics (L1, MSE, SSIM, mask IoU, velocity error) and of the evaluation loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from motionseg import data, evaluate, metrics


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return data.make_sequences(2, "test", 0, size=64)["frames"]


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=1.0))


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# -- SSIM --------------------------------------------------------------------------------------

@pytest.mark.parametrize("i, j", [((0, 0), (0, 1)), ((1, 3), (1, 12)), ((0, 5), (1, 5)), ((1, 19), (1, 19))])
def test_ssim_matches_skimage_on_frames(frames: np.ndarray, i: tuple, j: tuple) -> None:
    a, b = frames[i], frames[j]
    got = float(metrics.ssim(torch.from_numpy(a), torch.from_numpy(b)))
    assert got == pytest.approx(skimage_ssim(a, b), abs=1e-5)


@pytest.mark.parametrize("shape, noise", [((64, 64), 0.05), ((40, 57), 0.2), ((11, 11), 0.5), ((32, 32), 1.0)])
def test_ssim_matches_skimage_on_random_images(shape: tuple, noise: float) -> None:
    rng = np.random.default_rng(0)
    a = rng.random(shape).astype(np.float32)
    b = np.clip(a + noise * rng.standard_normal(shape), 0, 1).astype(np.float32)
    got = float(metrics.ssim(torch.from_numpy(a), torch.from_numpy(b)))
    assert got == pytest.approx(skimage_ssim(a, b), abs=1e-5)


def structured_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Image pairs where each SSIM term matters: structure, contrast, luminance, near-black means (C1)."""
    y, x = np.mgrid[0:36, 0:44]
    checker = ((y // 4 + x // 4) % 2).astype(np.float32)
    ramp = (x / 43).astype(np.float32)
    square = np.zeros((36, 44), np.float32)
    square[8:24, 10:26] = 0.9
    return {
        "checker_shifted": (checker, np.roll(checker, 2, axis=1)),
        "checker_inverted": (checker, 1 - checker),
        "ramp_brighter": (0.5 * ramp, 0.5 * ramp + 0.3),
        "ramp_lower_contrast": (ramp, 0.25 + 0.5 * ramp),
        "near_black": (0.02 * checker, 0.02 * np.roll(checker, 1, axis=0)),
        "constant_vs_ramp": (np.full_like(ramp, 0.4), ramp),
        "square_moved": (square, np.roll(square, (3, 2), axis=(0, 1))),
        "square_on_ramp": (square, np.maximum(square, 0.3 * ramp)),
    }


def test_ssim_in_float64_equals_skimage_on_structured_images() -> None:
    """float64 in, float64 arithmetic on both sides: equal to rounding, so any change of formula shows.

    (skimage, like ``metrics.ssim``, computes float32 input in float32; on the ramps that is
    up to ~2e-5 off the exact value, hence float64 here.)
    """
    pairs = structured_pairs()
    a = torch.from_numpy(np.stack([p[0] for p in pairs.values()]).astype(np.float64))
    b = torch.from_numpy(np.stack([p[1] for p in pairs.values()]).astype(np.float64))
    got = metrics.ssim(a, b)  # all pairs in one batched call
    assert got.dtype == torch.float64
    for value, x, y, name in zip(got.tolist(), a.numpy(), b.numpy(), pairs):
        assert value == pytest.approx(skimage_ssim(x, y), abs=1e-10), name
    # a float64 target is enough to compute in float64
    assert metrics.ssim(a.float(), b).dtype == torch.float64
    assert metrics.ssim(a.float(), b.float()).dtype == torch.float32


def test_ssim_of_identical_images_is_one(frames: np.ndarray) -> None:
    x = torch.from_numpy(frames[0, :4])
    assert torch.allclose(metrics.ssim(x, x), torch.ones(4), atol=1e-6)
    c = torch.full((20, 20), 0.3)
    assert float(metrics.ssim(c, c)) == pytest.approx(1.0, abs=1e-6)


def test_ssim_too_small_raises() -> None:
    with pytest.raises(ValueError, match="11 x 11"):
        metrics.ssim(torch.rand(10, 20), torch.rand(10, 20))


# -- L1 / MSE / shapes -------------------------------------------------------------------------

def test_l1_and_mse_simple() -> None:
    a = torch.zeros(4, 4)
    b = torch.zeros(4, 4)
    b[0, :] = 1.0  # a quarter of the pixels differ by 1
    assert float(metrics.l1(a, b)) == pytest.approx(0.25)
    assert float(metrics.mse(a, b)) == pytest.approx(0.25)
    assert float(metrics.l1(a, a + 0.5)) == pytest.approx(0.5)
    assert float(metrics.mse(a, a + 0.5)) == pytest.approx(0.25)
    assert float(metrics.mse(b, b)) == 0.0


@pytest.mark.parametrize("fn", [metrics.l1, metrics.mse, metrics.ssim])
def test_batched_shapes(fn) -> None:
    a, b = rand(3, 5, 16, 16, seed=1), rand(3, 5, 16, 16, seed=2)
    out = fn(a, b)
    assert out.shape == (3, 5)
    # each entry is the metric of that image alone
    assert float(out[2, 4]) == pytest.approx(float(fn(a[2, 4], b[2, 4])), abs=1e-6)


@pytest.mark.parametrize("fn", [metrics.l1, metrics.mse, metrics.ssim, metrics.mask_iou])
def test_mismatched_shapes_raise(fn) -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        fn(torch.rand(2, 16, 16), torch.rand(2, 16, 17))


def test_masked_mean_abs_mismatched_shapes_raise() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.masked_mean_abs(torch.rand(16, 16), torch.rand(15, 16), torch.ones(16, 16, dtype=torch.bool))


# -- state metrics -----------------------------------------------------------------------------

def test_mask_iou() -> None:
    a = torch.zeros(8, 8)
    a[:4] = 1.0
    b = torch.zeros(8, 8)
    b[4:] = 1.0
    c = torch.zeros(8, 8)
    c[:2] = 1.0
    empty = torch.zeros(8, 8)
    assert float(metrics.mask_iou(a, a)) == 1.0
    assert float(metrics.mask_iou(a, b)) == 0.0
    assert float(metrics.mask_iou(empty, empty)) == 1.0
    assert float(metrics.mask_iou(a, empty)) == 0.0
    assert float(metrics.mask_iou(c, a)) == pytest.approx(0.5)
    # threshold 0.5: soft masks just above or below it
    assert float(metrics.mask_iou(a * 0.6, a)) == 1.0
    assert float(metrics.mask_iou(a * 0.4, a)) == 0.0
    assert metrics.mask_iou(torch.stack([a, a]), torch.stack([a, b])).tolist() == [1.0, 0.0]


def test_endpoint_error() -> None:
    v = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    w = torch.tensor([[4.0, 6.0], [0.0, 0.0]])
    assert metrics.endpoint_error(v, w).tolist() == pytest.approx([5.0, 0.0])
    assert metrics.endpoint_error(v[None].expand(3, -1, -1), w[None].expand(3, -1, -1)).shape == (3, 2)
    with pytest.raises(ValueError):
        metrics.endpoint_error(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError):
        metrics.endpoint_error(torch.zeros(2, 2), torch.zeros(3, 2))


def test_masked_mean_abs() -> None:
    a = torch.zeros(2, 4, 4)
    b = torch.ones(2, 4, 4)
    b[:, 0, 0] = 3.0
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 0, :2] = True  # |a - b| = 3 and 1
    out = metrics.masked_mean_abs(a, b, mask)
    assert float(out[0]) == pytest.approx(2.0)
    assert math.isnan(float(out[1]))  # empty mask


# -- evaluation --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference_results() -> dict:
    return evaluate.evaluate(evaluate.reference_predictors(), n=4, batch_size=2)


def test_reference_rows(reference_results: dict) -> None:
    r = reference_results
    assert set(r) == {"copy_last", "oracle"}
    for name, row in r.items():
        assert row["n"] == 4, name
        for k in ("l1", "mse", "ssim"):
            assert len(row["per_frame"][k]) == 10, (name, k)
            assert row[k] == pytest.approx(float(np.mean(row["per_frame"][k]))), (name, k)
        assert row["per_state_step"] == {}
        assert row["sequences_per_second"] > 0
        assert set(row["mse_by_region"]) == set(metrics.REGIONS)
        assert sum(row["mse_by_region"].values()) == pytest.approx(row["mse"], rel=1e-5)
    assert r["oracle"]["mse"] < r["copy_last"]["mse"]
    assert r["oracle"]["mse"] < 1e-3
    assert r["oracle"]["ssim"] > r["copy_last"]["ssim"]
    # copy-last errors grow as the digit moves away
    mse = r["copy_last"]["per_frame"]["mse"]
    assert mse[-1] > mse[0]


def test_copy_last_repeats_last_seed_frame() -> None:
    seed = rand(2, 10, 16, 16)
    out = evaluate.CopyLast()(seed, 7)
    assert out.shape == (2, 7, 16, 16)
    assert torch.equal(out, seed[:, -1:].expand(-1, 7, -1, -1))
    assert evaluate.CopyLast()(seed, 0).shape == (2, 0, 16, 16)
    with pytest.raises(ValueError):
        evaluate.CopyLast()(seed * 2, 7)


def test_evaluate_too_many_frames_raises() -> None:
    with pytest.raises(ValueError, match="n_seed"):
        evaluate.evaluate(evaluate.reference_predictors(15, 10), n=2, batch_size=2, n_seed=15, n_future=10)


def test_mse_by_region_adds_up_and_locates_errors() -> None:
    torch.manual_seed(0)
    seed_alpha = torch.zeros(2, 3, 8, 8)
    seed_alpha[:, :, 2:4, 2:4] = 1.0  # hidden in every seed frame
    seed_alpha[:, 0, 5:7, 5:7] = 1.0  # covered in one seed frame only
    future_alpha = torch.zeros(2, 4, 8, 8)
    future_alpha[:, :, 0, 0] = 1.0
    target = torch.rand(2, 4, 8, 8)
    pred = target.clone()
    pred[:, :, 2, 2] += 0.5  # never seen
    pred[:, :, 5, 5] += 0.5  # seen, then covered
    pred[:, :, 0, 0] += 0.5  # the digit
    parts = metrics.mse_by_region(pred, target, seed_alpha, future_alpha)
    assert set(parts) == set(metrics.REGIONS)
    torch.testing.assert_close(sum(parts.values()), metrics.mse(pred, target))
    for name in ("digit", "never_seen", "seen_then_covered"):
        torch.testing.assert_close(parts[name], torch.full((2, 4), 0.25 / 64))
    assert (parts["static"] == 0).all()


def test_mse_by_region_rejects_mismatched_masks() -> None:
    x = torch.rand(1, 2, 8, 8)
    with pytest.raises(ValueError, match="seed masks"):
        metrics.mse_by_region(x, x, torch.rand(1, 3, 6, 6), x)


def test_mse_by_region_thresholds_are_those_documented() -> None:
    """Covered where alpha > cover (0.01), hidden where alpha >= 1 - cover: checked at and near the edges."""
    seed_alpha = torch.zeros(1, 2, 8, 8)
    seed_alpha[:, :, 1, 1] = 0.99  # exactly 1 - cover in every seed frame: hidden, never seen
    seed_alpha[:, :, 2, 2] = 0.98  # not hidden: seen (a little) through the digit, then covered
    seed_alpha[:, 0, 3, 3] = 0.02  # covered (faintly) in one seed frame
    future_alpha = torch.zeros(1, 1, 8, 8)
    future_alpha[:, :, 4, 4] = 0.05  # a faint edge of the digit
    target = torch.zeros(1, 1, 8, 8)
    pred = target.clone()
    for y, x in ((1, 1), (2, 2), (3, 3), (4, 4)):
        pred[:, :, y, x] = 0.5 + 0.1 * y
    parts = metrics.mse_by_region(pred, target, seed_alpha, future_alpha)
    expected = {"never_seen": 0.6 ** 2, "seen_then_covered": 0.7 ** 2 + 0.8 ** 2, "digit": 0.9 ** 2, "static": 0.0}
    for name, value in expected.items():
        torch.testing.assert_close(parts[name], torch.full((1, 1), value / 64), msg=name)


def test_match_objects_pairs_layers_with_objects_whatever_their_order() -> None:
    true = torch.zeros(1, 2, 16, 16)
    true[0, 0, 2:6, 2:6] = 1
    true[0, 1, 10:14, 10:14] = 1
    layers = true.flip(1).clone()  # the same masks, in the other order
    layers[0, 0, 10:14, 10:12] = 0  # half of object 1
    iou, layer = metrics.match_objects(layers, true)
    assert layer.tolist() == [[1, 0]]
    torch.testing.assert_close(iou, torch.tensor([[1.0, 0.5]]))
    # fewer layers than objects: the unmatched object scores 0 and no layer
    iou, layer = metrics.match_objects(layers[:, :1], true)
    assert layer.tolist() == [[-1, 0]] and iou.tolist() == [[0.0, 0.5]]
    # more layers than objects: an extra layer is left out
    iou, layer = metrics.match_objects(torch.cat([torch.zeros(1, 1, 16, 16), true], 1), true)
    assert layer.tolist() == [[1, 2]] and iou.tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError, match="layers must be B x K x H x W"):
        metrics.match_objects(layers[0], true)
