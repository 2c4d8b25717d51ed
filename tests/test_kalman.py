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


# -- against the textbook equations ----------------------------------------------------------
# 1-D constant velocity, written out here: F = [[1, dt], [0, 1]], H = [1, 0], a random
# acceleration of variance q per unit time, Q = q [[dt^4/4, dt^3/2], [dt^3/2, dt^2]], R = r.
# dt, q and r are not 1, so that a Q built for the wrong step, a q squared or R in the wrong
# place changes the numbers.

DT, Q_VAR, R_VAR, P0 = 0.5, 0.4, 2.5, 9.0


def textbook(dt: float = DT, q: float = Q_VAR, r: float = R_VAR) -> tuple[np.ndarray, ...]:
    f = np.array([[1.0, dt], [0.0, 1.0]])
    h = np.array([[1.0, 0.0]])
    qm = q * np.array([[dt ** 4 / 4, dt ** 3 / 2], [dt ** 3 / 2, dt ** 2]])
    return f, h, qm, np.array([[r]])


def test_model_matrices_are_the_textbook_ones() -> None:
    kf = ConstantVelocityKalman(dim=1, process_var=Q_VAR, measurement_var=R_VAR, dt=DT, p0=P0)
    f, h, qm, rm = textbook()
    np.testing.assert_allclose(kf.F, f, rtol=1e-12)
    np.testing.assert_allclose(kf.H, h, rtol=1e-12)
    np.testing.assert_allclose(kf.Q, qm, rtol=1e-12)
    np.testing.assert_allclose(kf.R, rm, rtol=1e-12)
    np.testing.assert_allclose(kf.P, P0 * np.eye(2), rtol=1e-12)


def test_predict_and_update_follow_the_textbook_equations() -> None:
    f, h, qm, rm = textbook()
    x0 = np.array([1.0, -0.5])
    kf = ConstantVelocityKalman(dim=1, process_var=Q_VAR, measurement_var=R_VAR, dt=DT, x0=x0, p0=P0)
    x, p = x0.copy(), P0 * np.eye(2)
    for z in np.random.default_rng(5).normal(0.0, 3.0, size=6):
        prior = kf.predict()
        x, p = f @ x, f @ p @ f.T + qm
        np.testing.assert_allclose(prior, x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(kf.P, p, rtol=1e-12, atol=1e-12)
        gain = kf.update(z)
        s = h @ p @ h.T + rm
        k = p @ h.T @ np.linalg.inv(s)
        x = x + (k @ (np.array([z]) - h @ x))
        p = (np.eye(2) - k @ h) @ p  # the short form; the filter's Joseph form equals it in exact arithmetic
        np.testing.assert_allclose(gain, k, rtol=1e-10)
        np.testing.assert_allclose(kf.x, x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(kf.P, p, rtol=1e-9, atol=1e-12)


def test_filter_track_corrects_first_then_predicts_and_corrects() -> None:
    f, h, qm, rm = textbook()
    z = np.array([0.3, 1.1, 0.4, 2.0])
    kf = ConstantVelocityKalman(dim=1, process_var=Q_VAR, measurement_var=R_VAR, dt=DT, p0=P0)
    states, gains = filter_track(z, kf)
    x, p = np.zeros(2), P0 * np.eye(2)
    for i, zi in enumerate(z):
        if i > 0:  # the first measurement belongs to x0's time: no prediction before it
            x, p = f @ x, f @ p @ f.T + qm
        k = p @ h.T / (h @ p @ h.T + rm)
        x, p = x + (k @ (zi - h @ x)), (np.eye(2) - k @ h) @ p
        np.testing.assert_allclose(states[i], x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gains[i], k, rtol=1e-10)


def test_two_dimensions_are_two_independent_one_dimensional_filters() -> None:
    """State layout [p_y, p_x, v_y, v_x]: each axis alone is the 1-D filter of that axis."""
    track = simulate_track(12, seed=1, dim=2, velocity=[0.7, -0.2], measurement_var=R_VAR, dt=DT)
    kf2 = ConstantVelocityKalman(dim=2, process_var=Q_VAR, measurement_var=R_VAR, dt=DT, p0=P0)
    states2, gains2 = filter_track(track.measurements, kf2)
    for axis in range(2):
        kf1 = ConstantVelocityKalman(dim=1, process_var=Q_VAR, measurement_var=R_VAR, dt=DT, p0=P0)
        states1, gains1 = filter_track(track.measurements[:, axis], kf1)
        np.testing.assert_allclose(states2[:, [axis, 2 + axis]], states1, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gains2[:, [axis, 2 + axis], axis], gains1[:, :, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gains2[:, [axis, 2 + axis], 1 - axis], 0.0, atol=1e-12)


# -- a statistical property --------------------------------------------------------------------

def simulate_model(n: int, dim: int, seed: int, x0: np.ndarray, p0: float) -> np.ndarray:
    """Measurements (n x dim) of a track drawn from exactly the filter's model, process noise included.

    The start is drawn from the filter's prior N(x0, p0 I), so the model is right from the first step.
    """
    rng = np.random.default_rng(seed)
    f, h, qm, rm = textbook()
    # Q = q g g' has rank one: the noise is one random acceleration per step and axis
    g = np.array([DT ** 2 / 2, DT]) * np.sqrt(Q_VAR)
    np.testing.assert_allclose(np.outer(g, g), qm)
    z = np.empty((n, dim))
    for axis in range(dim):  # the axes are independent draws of the same 1-D model
        x = x0[[axis, dim + axis]] + np.sqrt(p0) * rng.standard_normal(2)
        for t in range(n):
            if t > 0:
                x = f @ x + g * rng.standard_normal()
            z[t, axis] = (h @ x)[0] + np.sqrt(rm[0, 0]) * rng.standard_normal()
    return z


@pytest.mark.parametrize("dim", [1, 2])
def test_normalised_innovation_squared_is_chi_square(dim: int) -> None:
    """With the right noise model, z - H x_prior has covariance S = H P H' + R: NIS ~ chi2(dim) per step.

    The sum over n independent steps is chi2(n * dim); it must lie within that
    distribution's central 99.9 %. A Q or R off by the factors of a plausible bug moves
    the mean far outside (e.g. Q for dt = 1 instead of 0.5, or R missing from P's update).
    """
    from scipy.stats import chi2

    n = 1500
    x0 = np.zeros(2 * dim)
    z = simulate_model(n, dim, seed=11, x0=x0, p0=P0)
    kf = ConstantVelocityKalman(dim=dim, process_var=Q_VAR, measurement_var=R_VAR, dt=DT, x0=x0, p0=P0)
    nis = np.empty(n)
    for t in range(n):
        if t > 0:
            kf.predict()
        innovation = z[t] - kf.x[:dim]
        s = kf.P[:dim, :dim] + R_VAR * np.eye(dim)
        nis[t] = innovation @ np.linalg.solve(s, innovation)
        kf.update(z[t])
    lo, hi = chi2.ppf([0.0005, 0.9995], n * dim)
    assert lo < nis.sum() < hi, (nis.mean() / dim, lo / n / dim, hi / n / dim)
