"""A constant-velocity Kalman filter: the textbook idea behind the paper's model (eq. 1-2).

The state is ``[position, velocity]`` in one or two dimensions, laid out as
``[p_1, ..., p_d, v_1, ..., v_d]``. The model is

* ``x_t = F x_{t-1} + w``, ``w ~ N(0, Q)`` (constant velocity, white-noise acceleration),
* ``z_t = H x_t + v``, ``v ~ N(0, R)`` (only the position is measured).

:class:`ConstantVelocityKalman` does one prediction (:meth:`~ConstantVelocityKalman.predict`)
and one correction (:meth:`~ConstantVelocityKalman.update`) per step;
:func:`simulate_track` makes a deterministic noisy track to run it on.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def _check_variance(name: str, value: float, allow_zero: bool = True) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0.0 or (value == 0.0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite variance {bound}, got {value!r}")
    return value


def _check_dim(dim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim!r}")
    return int(dim)


class ConstantVelocityKalman:
    """Kalman filter for an object moving with (nearly) constant velocity.

    Parameters
    ----------
    dim:
        1 or 2 spatial dimensions.
    process_var:
        Variance of the random acceleration per unit time (``>= 0``); 0 trusts the
        constant-velocity model completely.
    measurement_var:
        Variance of each position measurement (``> 0``).
    dt:
        Time between steps (``> 0``).
    x0, p0:
        Initial state (length ``2 * dim``, default zeros) and initial variance of
        every state component (``> 0``; a large value says "we know nothing yet").

    Attributes ``F, H, Q, R`` are the model matrices, ``x`` the state estimate and
    ``P`` its covariance.
    """

    def __init__(self, dim: int = 1, process_var: float = 1e-3, measurement_var: float = 1.0,
                 dt: float = 1.0, x0: ArrayLike | None = None, p0: float = 100.0) -> None:
        self.dim = _check_dim(dim)
        process_var = _check_variance("process_var", process_var)
        measurement_var = _check_variance("measurement_var", measurement_var, allow_zero=False)
        dt = float(dt)
        if not math.isfinite(dt) or dt <= 0.0:
            raise ValueError(f"dt must be a finite time step > 0, got {dt!r}")
        p0 = _check_variance("p0", p0, allow_zero=False)

        eye = np.eye(self.dim)
        self.F: FloatArray = np.block([[eye, dt * eye], [np.zeros_like(eye), eye]])
        self.H: FloatArray = np.hstack([eye, np.zeros_like(eye)])
        # A random acceleration a over one step moves the position by a dt^2/2 and the
        # velocity by a dt, so both noises are correlated (discrete white-noise acceleration).
        g = np.array([[dt * dt / 2.0], [dt]])
        self.Q: FloatArray = np.kron(process_var * (g @ g.T), eye)
        self.R: FloatArray = measurement_var * eye
        self.P: FloatArray = p0 * np.eye(2 * self.dim)
        if x0 is None:
            self.x: FloatArray = np.zeros(2 * self.dim)
        else:
            x = np.asarray(x0, dtype=np.float64)
            if x.shape != (2 * self.dim,) or not np.all(np.isfinite(x)):
                raise ValueError(f"x0 must be {2 * self.dim} finite numbers [positions, velocities], "
                                 f"got shape {x.shape}")
            self.x = x.copy()

    def predict(self) -> FloatArray:
        """Prediction step: propagate the state and grow its uncertainty; returns the prior state."""
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + self.Q
        return self.x.copy()

    def update(self, z: ArrayLike) -> FloatArray:
        """Correction step with position measurement ``z`` (``dim`` numbers); returns the gain K.

        ``K`` has shape ``2 * dim x dim``: how much each state component moves per unit
        of innovation ``z - H x``.
        """
        zz = np.asarray(z, dtype=np.float64)
        if self.dim == 1 and zz.shape == ():
            zz = zz.reshape(1)
        if zz.shape != (self.dim,):
            raise ValueError(f"measurement must have shape ({self.dim},), got {zz.shape}")
        if not np.all(np.isfinite(zz)):
            raise ValueError("measurement contains NaN or inf")
        innovation = zz - self.H @ self.x
        s = self.H @ self.P @ self.H.T + self.R
        # solve instead of inverting S: same result, better conditioned
        k = np.linalg.solve(s, self.H @ self.P).T
        self.x = self.x + k @ innovation
        # Joseph form keeps P symmetric and positive semi-definite despite rounding
        a = np.eye(2 * self.dim) - k @ self.H
        self.P = a @ self.P @ a.T + k @ self.R @ k.T
        return k

    def step(self, z: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """One predict-update cycle; returns ``(posterior state, gain)``."""
        self.predict()
        k = self.update(z)
        return self.x.copy(), k


class Track(NamedTuple):
    """A simulated track: ``truth`` and ``measurements`` are ``n_steps x dim`` positions."""

    truth: FloatArray
    measurements: FloatArray
    velocity: FloatArray


def simulate_track(n_steps: int, seed: int, dim: int = 1, start: ArrayLike | None = None,
                   velocity: ArrayLike | None = None, measurement_var: float = 1.0,
                   dt: float = 1.0) -> Track:
    """Object moving with constant ``velocity`` from ``start``, measured with Gaussian noise.

    Deterministic for a given ``seed``. Defaults: start at the origin, velocity 0.5 per
    unit time along every axis.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
    dim = _check_dim(dim)
    measurement_var = _check_variance("measurement_var", measurement_var)
    dt = float(dt)
    if not math.isfinite(dt) or dt <= 0.0:
        raise ValueError(f"dt must be a finite time step > 0, got {dt!r}")
    p0 = np.zeros(dim) if start is None else np.asarray(start, dtype=np.float64).reshape(-1)
    v = np.full(dim, 0.5) if velocity is None else np.asarray(velocity, dtype=np.float64).reshape(-1)
    for name, value in (("start", p0), ("velocity", v)):
        if value.shape != (dim,) or not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be {dim} finite numbers, got shape {value.shape}")
    rng = np.random.default_rng(seed)
    t = dt * np.arange(n_steps, dtype=np.float64)[:, None]
    truth = p0 + t * v
    measurements = truth + math.sqrt(measurement_var) * rng.standard_normal((n_steps, dim))
    return Track(truth, measurements, v)


def filter_track(measurements: ArrayLike, kalman: ConstantVelocityKalman
                 ) -> tuple[FloatArray, FloatArray]:
    """Run ``kalman`` over ``n x dim`` measurements; returns states ``n x 2dim`` and gains ``n x 2dim x dim``.

    The first measurement is corrected against the filter's initial state without a
    prediction before it, so that ``x0`` is the state at the first measurement's time.
    """
    z = np.asarray(measurements, dtype=np.float64)
    if z.ndim == 1 and kalman.dim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[1] != kalman.dim or z.shape[0] < 1:
        raise ValueError(f"measurements must have shape n x {kalman.dim} with n >= 1, got {z.shape}")
    states = np.empty((z.shape[0], 2 * kalman.dim))
    gains = np.empty((z.shape[0], 2 * kalman.dim, kalman.dim))
    for i, zi in enumerate(z):
        if i > 0:
            kalman.predict()
        gains[i] = kalman.update(zi)
        states[i] = kalman.x
    return states, gains
