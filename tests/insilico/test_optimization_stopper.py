"""Stopping rules: the reference's EarlyStopper truth table, patience on OptimizationStopper, gradient norm."""

from __future__ import annotations

import sys

import pytest

from openretina.insilico.stimulus_optimization import EarlyStopper, OptimizationStopper

F, T = False, True


@pytest.mark.parametrize(
    ("min_delta", "patience", "losses", "expected"),
    [
        (0.0, 1, [1.0], [F]),
        (0.0, 1, [1.0, 1.1, 1.2, 1.3], [F, T, T, T]),
        (0.0, 1, [1.0, 0.9, 0.8, 0.7], [F, F, F, F]),
        (0.0, 3, [1.0, 1.1, 1.2, 1.3], [F, F, F, T]),
        (0.0, 3, [1.0, 0.9, 0.8, 0.7], [F, F, F, F]),
        (0.0, 3, [1.0, 0.9, 0.8, 0.7, 0.8, 0.9, 1.0, 1.1], [F, F, F, F, F, F, T, T]),
        (0.1, 1, [1.0, 1.01, 1.09, 1.15, 0.9, 1.01], [F, F, F, T, F, T]),
    ],
)
def test_early_stopper_truth_table(min_delta: float, patience: int, losses: list[float], expected: list[bool]) -> None:
    stopper = EarlyStopper(min_delta=min_delta, patience=patience)
    assert [stopper.early_stop(loss) for loss in losses] == expected


def test_optimization_stopper_is_an_iteration_cap_by_default() -> None:
    stopper = OptimizationStopper(max_iterations=7)
    assert stopper.max_iterations == 7
    assert not any(stopper.early_stop(loss) for loss in [1.0, 2.0, 3.0, 4.0])
    assert OptimizationStopper(None).max_iterations == sys.maxsize


def test_documentation_spelling_with_patience() -> None:
    stopper = OptimizationStopper(max_iterations=200, patience=2)
    assert [stopper.early_stop(loss) for loss in [3.0, 2.0, 2.5, 2.6, 1.0]] == [F, F, F, T, F]
    stopper.reset()
    assert [stopper.early_stop(loss) for loss in [5.0, 6.0]] == [F, F]  # the old minimum 1.0 is forgotten


def test_gradient_norm_convergence() -> None:
    stopper = OptimizationStopper(max_iterations=None, grad_norm_tol=1e-3)
    assert not stopper.early_stop(1.0, grad_norm=0.5)
    assert not stopper.early_stop(1.0)  # no gradient norm given: nothing to judge
    assert stopper.early_stop(1.0, grad_norm=1e-4)


def test_early_stopper_has_a_finite_default_cap_and_validates_arguments() -> None:
    assert EarlyStopper().max_iterations == 1000
    assert EarlyStopper().patience == 1
    with pytest.raises(ValueError, match="patience"):
        OptimizationStopper(10, patience=0)
    with pytest.raises(ValueError, match="max_iterations"):
        OptimizationStopper(-1)
