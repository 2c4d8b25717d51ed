"""The convergence criterion of the project's trainings (motionseg.curves.convergence)."""
from __future__ import annotations

import pytest

from motionseg.curves import convergence


def test_a_falling_curve_has_not_converged() -> None:
    steps = [100, 200, 300, 400]
    c = convergence(steps, [0.004, 0.003, 0.0025, 0.0022])  # 12 % better in the last quarter
    assert not c.converged and c.gain == pytest.approx(0.12)


def test_a_flat_curve_has_converged_even_with_noise() -> None:
    c = convergence([100, 200, 300, 400, 500, 600, 700, 800], [4, 3, 2.5, 2.2, 2.1, 2.1, 2.11, 2.095])
    assert c.converged and c.best_before == 2.1 and c.best == 2.095


def test_too_few_points_is_not_converged() -> None:
    assert not convergence([100], [0.003]).converged
    assert not convergence([], []).converged
    with pytest.raises(ValueError, match="differ in length"):
        convergence([1, 2], [0.1])
