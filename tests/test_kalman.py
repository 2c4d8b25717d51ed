"""Tests of the constant-velocity Kalman filter used in the Kalman chapter."""
from __future__ import annotations

import numpy as np
import pytest

from motionseg.kalman import ConstantVelocityKalman, filter_track, simulate_track


@pytest.mark.parametrize("dim", [1, 2])
def test_filter_beats_raw_measurements(dim: int) -> None:
    track = simulate_track(80, seed=3, dim=dim, measurement_var=4.0)
    kf = ConstantVelocityKalman(dim=dim, process_var=1e-4, measurement_var=4.0)
    states, _ = filter_track(track.measurements, kf)
    raw = np.sqrt(np.mean((track.measurements - track.truth) ** 2))
    filtered = np.sqrt(np.mean((states[:, :dim] - track.truth) ** 2))
    assert filtered < 0.7 * raw
    np.testing.assert_allclose(states[-1, dim:], track.velocity, atol=0.1)


def test_simulate_track_is_deterministic() -> None:
    a = simulate_track(10, seed=7, dim=2)
    b = simulate_track(10, seed=7, dim=2)
    c = simulate_track(10, seed=8, dim=2)
    np.testing.assert_array_equal(a.measurements, b.measurements)
    assert not np.array_equal(a.measurements, c.measurements)
    assert a.truth.shape == a.measurements.shape == (10, 2)


@pytest.mark.parametrize("dim", [1, 2])
def test_gain_shape_and_decay(dim: int) -> None:
    kf = ConstantVelocityKalman(dim=dim, process_var=1e-4, measurement_var=1.0)
    _, gains = filter_track(simulate_track(30, seed=0, dim=dim).measurements, kf)
    assert gains.shape == (30, 2 * dim, dim)
    # the position gain falls as the estimate gains confidence
    assert gains[-1, 0, 0] < gains[1, 0, 0]
    assert kf.P.shape == (2 * dim, 2 * dim)
    np.testing.assert_allclose(kf.P, kf.P.T)


def test_scalar_measurement_accepted_in_1d() -> None:
    kf = ConstantVelocityKalman(dim=1)
    kf.predict()
    assert kf.update(1.5).shape == (2, 1)


@pytest.mark.parametrize("kwargs", [
    {"process_var": -1.0},
    {"measurement_var": -0.5},
    {"measurement_var": 0.0},
    {"dt": 0.0},
    {"dim": 3},
    {"p0": float("nan")},
    {"x0": [1.0, 2.0, 3.0]},
])
def test_bad_filter_settings_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ConstantVelocityKalman(**kwargs)


def test_bad_measurement_raises() -> None:
    kf = ConstantVelocityKalman(dim=2)
    with pytest.raises(ValueError, match="shape"):
        kf.update([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        kf.update([1.0, float("nan")])
    with pytest.raises(ValueError):
        filter_track(np.zeros((5, 1)), kf)


@pytest.mark.parametrize("kwargs", [
    {"n_steps": 0},
    {"measurement_var": -1.0},
    {"velocity": [1.0, 2.0]},
])
def test_bad_simulation_settings_raise(kwargs: dict) -> None:
    args = {"n_steps": 5, "seed": 0, **kwargs}
    with pytest.raises(ValueError):
        simulate_track(**args)
