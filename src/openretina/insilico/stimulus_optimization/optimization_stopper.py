"""When to stop a stimulus optimisation: iteration cap, patience on the loss, gradient-norm convergence.

:func:`~openretina.insilico.stimulus_optimization.optimizer.optimize_stimulus` gives every stimulus of a batch
its own copy of the stopper (reset at the start of each call) and feeds it that stimulus' loss and gradient
norm after every step; a stimulus whose stopper fires keeps its current value while the others go on.

Differences from the reference: :class:`OptimizationStopper` also accepts ``patience``/``min_delta`` (the
published documentation's ``OptimizationStopper(max_iterations=200, patience=20)``) and a gradient-norm
tolerance; :class:`EarlyStopper` is the same stopper with ``patience=1`` by default and a finite default
iteration cap (the reference looped up to ``sys.maxsize`` while the loss kept falling).
"""

from __future__ import annotations

import math
import sys

__all__ = ["EarlyStopper", "OptimizationStopper"]

EARLY_STOPPER_DEFAULT_MAX_ITERATIONS = 1000


class OptimizationStopper:
    """Stop after ``max_iterations`` steps (None: no cap), and optionally earlier.

    * ``patience``: stop once the loss has been more than ``min_delta`` above its best value for ``patience``
      consecutive checks (a check within ``min_delta`` of the best neither counts nor resets; a new best resets).
    * ``grad_norm_tol``: stop once the gradient norm of the stimulus falls below this value (converged).
    """

    def __init__(
        self,
        max_iterations: int | None,
        patience: int | None = None,
        min_delta: float = 0.0,
        grad_norm_tol: float | None = None,
    ) -> None:
        if max_iterations is not None and max_iterations < 0:
            raise ValueError(f"{type(self).__name__}: max_iterations must be >= 0 or None, got {max_iterations}.")
        if patience is not None and patience < 1:
            raise ValueError(f"{type(self).__name__}: patience must be >= 1 or None, got {patience}.")
        if min_delta < 0:
            raise ValueError(f"{type(self).__name__}: min_delta must be >= 0, got {min_delta}.")
        self.max_iterations = sys.maxsize if max_iterations is None else max_iterations
        self.patience = patience
        self.min_delta = min_delta
        self.grad_norm_tol = grad_norm_tol
        self.reset()

    def reset(self) -> None:
        """Forget the losses seen so far (called at the start of every optimisation)."""
        self._counter = 0
        self._min_loss = math.inf

    def early_stop(self, loss: float, grad_norm: float | None = None) -> bool:
        """Record the loss (and gradient norm) of one step; True if the optimisation should stop now."""
        if self.grad_norm_tol is not None and grad_norm is not None and grad_norm < self.grad_norm_tol:
            return True
        if self.patience is None:
            return False
        if loss < self._min_loss:
            self._min_loss = loss
            self._counter = 0
        elif loss > self._min_loss + self.min_delta:
            self._counter += 1
        return self._counter >= self.patience

    def __repr__(self) -> str:
        cap = None if self.max_iterations == sys.maxsize else self.max_iterations
        return (
            f"{type(self).__name__}(max_iterations={cap}, patience={self.patience}, min_delta={self.min_delta}, "
            f"grad_norm_tol={self.grad_norm_tol})"
        )


class EarlyStopper(OptimizationStopper):
    """:class:`OptimizationStopper` with patience on by default (``patience=1``) and at most 1000 iterations."""

    def __init__(
        self,
        max_iterations: int | None = EARLY_STOPPER_DEFAULT_MAX_ITERATIONS,
        patience: int = 1,
        min_delta: float = 0.0,
        grad_norm_tol: float | None = None,
    ) -> None:
        super().__init__(max_iterations, patience=patience, min_delta=min_delta, grad_norm_tol=grad_norm_tol)
