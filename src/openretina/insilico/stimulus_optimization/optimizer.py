"""Gradient ascent on a stimulus batch: :func:`optimize_stimulus` and its :class:`OptimizationResult`.

The call form of the reference is kept (``optimize_stimulus(stimulus=..., optimizer_init_fn=...,
objective_object=..., optimization_stopper=...)``, result written into ``stimulus`` in place). Differences:

* It also returns an :class:`OptimizationResult` (final and best stimulus, per-iteration history).
* The model runs in eval mode with frozen parameters (no ``.grad`` is ever written to them); its modes and
  ``requires_grad`` flags are restored afterwards. The stimulus keeps its ``requires_grad`` flag, so the same
  tensor can be optimised again (the reference silently turned it off, making a second call a no-op).
* A batch of stimuli is optimised at once: with objectives and regularisers from this package, the loss of each
  stimulus is computed separately and each stimulus has its own stopper, so every stimulus of the batch follows
  exactly the path it would follow alone (up to float rounding).
* ``seed`` makes random components (e.g. :class:`~.objective.JitteredObjective`) reproducible without touching
  the caller's global random state. Tuples of regularisers or postprocessors are accepted like lists.
* The postprocessors are also applied once before the first step, so every evaluated stimulus satisfies the
  constraints (the reference evaluated the unconstrained initial stimulus first).
* A stimulus too short for the model fails on the first step with the model's
  :class:`~openretina.errors.InsufficientFramesError` (frames needed vs given).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from openretina.errors import DataShapeError, OpenRetinaError
from openretina.insilico.stimulus_optimization.optimization_stopper import OptimizationStopper
from openretina.modules.layers.convolutions import conv_backend

__all__ = ["OptimizationResult", "StimulusOptimizationError", "frozen_model", "optimize_stimulus", "random_stimulus"]

T = TypeVar("T")


class RegularizationLoss(Protocol):
    """Anything with ``forward(stimulus)`` returning a penalty, e.g. a ``StimulusRegularizationLoss``."""

    def forward(self, stimulus: torch.Tensor) -> Any:
        """Penalty (0-d) of the stimulus batch."""


class Postprocessor(Protocol):
    """Anything with ``process(stimulus)`` (e.g. a :class:`~.regularizer.StimulusPostprocessor`)."""

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Processed stimulus batch, same shape."""


class StimulusOptimizationError(OpenRetinaError, ValueError):
    """The stimulus cannot be optimised as given (not a leaf tensor, not floating point, ...)."""


@dataclass(frozen=True)
class OptimizationResult:
    """Outcome of :func:`optimize_stimulus` (``batch`` stimuli, ``iterations`` steps taken).

    * ``stimulus``: the final stimulus ``(batch, channels, time, height, width)`` (a detached copy).
    * ``best_stimulus``: per stimulus, the evaluated iterate with the lowest loss (same layout).
    * ``objective_history``, ``regularization_history``, ``loss_history``: ``(iterations, batch)``, the values
      of each step's objective, total regularisation and loss (= regularisation − objective), evaluated before
      that step's update. After a stimulus has stopped, its rows hold the values of its final (frozen) stimulus.
    * ``stopped_at``: ``(batch,)``, the number of steps each stimulus took.
    """

    stimulus: torch.Tensor
    best_stimulus: torch.Tensor
    objective_history: torch.Tensor
    regularization_history: torch.Tensor
    loss_history: torch.Tensor
    stopped_at: torch.Tensor

    @property
    def iterations(self) -> int:
        """Number of optimisation steps run."""
        return int(self.loss_history.shape[0])

    @property
    def best_loss(self) -> torch.Tensor:
        """Lowest loss of each stimulus, ``(batch,)``."""
        return self.loss_history.min(dim=0).values


@contextmanager
def frozen_model(model: nn.Module | None) -> Iterator[None]:
    """Eval mode and ``requires_grad=False`` for every parameter inside the block; both restored afterwards."""
    if model is None:
        yield
        return
    modes = {module: module.training for module in model.modules()}
    flags = {parameter: parameter.requires_grad for parameter in model.parameters()}
    model.eval()
    for parameter in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
        for parameter, flag in flags.items():
            parameter.requires_grad_(flag)


def random_stimulus(shape: Sequence[int], seeds: Sequence[int], std: float = 0.1) -> torch.Tensor:
    """A batch of Gaussian stimuli, stimulus ``b`` drawn from its own generator seeded with ``seeds[b]``.

    ``shape``: one stimulus ``(channels, time, height, width)``, or a model's ``stimulus_shape(...)`` whose batch
    axis is ignored. Output: ``(len(seeds), channels, time, height, width)``; stimulus ``b`` is the same whatever
    the other seeds, so a batched run can be compared with single runs.
    """
    single = tuple(shape[1:]) if len(shape) == 5 else tuple(shape)
    if len(single) != 4:
        raise DataShapeError(f"random_stimulus: expected (C, T, H, W) or (B, C, T, H, W), got shape {tuple(shape)}.")
    draws = [torch.randn(single, generator=torch.Generator().manual_seed(int(seed))) for seed in seeds]
    return torch.stack(draws) * std


def _as_list(items: T | Sequence[T] | None) -> list[T]:
    if items is None:
        return []
    if isinstance(items, list | tuple):
        return list(items)
    return [items]  # type: ignore[list-item]


def _find_model(objective: Any) -> nn.Module | None:
    model = getattr(objective, "model", None)
    if model is None:
        model = getattr(objective, "_model", None)
    return model if isinstance(model, nn.Module) else None


def _per_stimulus(component: Any, stimulus: torch.Tensor) -> torch.Tensor:
    """Per-stimulus values ``(batch,)`` if ``component`` provides them, else its 0-d total as shape ``(1,)``."""
    per_stimulus = getattr(component, "per_stimulus", None)
    value = per_stimulus(stimulus) if callable(per_stimulus) else component.forward(stimulus)
    return torch.as_tensor(value, dtype=stimulus.dtype, device=stimulus.device).reshape(-1)


def _check_stimulus(stimulus: torch.Tensor) -> None:
    if not stimulus.is_leaf:
        raise StimulusOptimizationError(
            "optimize_stimulus: the stimulus must be a leaf tensor (created directly, e.g. torch.randn(..., "
            "requires_grad=True)), not the result of an operation; use x.detach().clone() to get one."
        )
    if not stimulus.is_floating_point():
        raise StimulusOptimizationError(
            f"optimize_stimulus: the stimulus must be floating point, got {stimulus.dtype}."
        )
    if stimulus.dim() != 5:
        raise DataShapeError(
            f"optimize_stimulus: expected a stimulus (batch, channels, time, height, width), got shape "
            f"{tuple(stimulus.shape)}. Build it with model.stimulus_shape(time_steps=..., num_batches=...)."
        )


def optimize_stimulus(
    stimulus: torch.Tensor,
    optimizer_init_fn: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    objective_object: Any,
    optimization_stopper: OptimizationStopper,
    stimulus_regularization_loss: RegularizationLoss | Sequence[RegularizationLoss] | None = None,
    stimulus_postprocessor: Postprocessor | Sequence[Postprocessor] | None = None,
    *,
    seed: int | None = None,
    convolution_backend: str | None = "auto",
) -> OptimizationResult:
    """Maximise ``objective_object`` over ``stimulus`` (modified in place) and return the result.

    Input: ``stimulus`` (batch, channels, time, height, width), a leaf tensor. The postprocessors are applied to
    it once before the first step. Each step: loss = Σ regularisers − objective; one optimiser step;
    postprocessors applied in order to the stimulus values; then each stimulus' stopper sees its loss (before
    postprocessing) and gradient norm. ``objective_object`` needs ``forward``
    (score to maximise); with ``per_stimulus`` (all objectives of this package) stimuli are optimised and stopped
    independently, otherwise the batch is treated as one unit. The model (``objective_object.model``) runs in
    eval mode with frozen parameters. ``seed`` seeds torch's random generator for this call only.
    ``convolution_backend`` is the separable-convolution path used during the call (see
    :func:`openretina.modules.layers.convolutions.set_conv_backend`): ``"auto"`` by default, because an
    optimisation repeats one input shape many times, so timing the paths once pays back (the dense path's input
    gradient is the slowest); None keeps the global setting.
    """
    _check_stimulus(stimulus)
    regularizers = _as_list(stimulus_regularization_loss)
    postprocessors = _as_list(stimulus_postprocessor)
    devices = [stimulus.device] if stimulus.device.type != "cpu" else []
    backend = conv_backend(convolution_backend) if convolution_backend is not None else nullcontext()
    with (
        torch.random.fork_rng(devices=devices, enabled=seed is not None),
        frozen_model(_find_model(objective_object)),
        backend,
    ):
        if seed is not None:
            torch.manual_seed(seed)
        return _run(stimulus, optimizer_init_fn, objective_object, optimization_stopper, regularizers, postprocessors)


def _run(
    stimulus: torch.Tensor,
    optimizer_init_fn: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    objective: Any,
    stopper: OptimizationStopper,
    regularizers: list[RegularizationLoss],
    postprocessors: list[Postprocessor],
) -> OptimizationResult:
    batch = stimulus.shape[0]
    had_grad = stimulus.requires_grad
    stimulus.requires_grad_(True)
    with torch.no_grad():  # start from a point that satisfies the constraints, like every later iterate
        for postprocessor in postprocessors:
            stimulus.data = postprocessor.process(stimulus.data)
    optimizer = optimizer_init_fn([stimulus])
    stoppers: list[OptimizationStopper] | None = None
    active = torch.ones(batch, dtype=torch.bool, device=stimulus.device)
    history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    best_stimulus = stimulus.detach().clone()
    best_loss = torch.full((batch,), torch.inf, dtype=stimulus.dtype, device=stimulus.device)
    stopped_at = torch.zeros(batch, dtype=torch.long)
    try:
        for _ in range(stopper.max_iterations):
            objective_values, regularization = _evaluate(objective, regularizers, stimulus)
            losses = regularization - objective_values  # (batch,), or (1,) when the batch is one joint unit
            optimizer.zero_grad()
            losses.sum().backward()
            separate = losses.shape[0] == batch
            units = batch if separate else 1
            if stoppers is None:
                stoppers = [copy.deepcopy(stopper) for _ in range(units)]
                for own in stoppers:
                    own.reset()
            grad = stimulus.grad if stimulus.grad is not None else torch.zeros_like(stimulus)
            grad_norms = grad.flatten(start_dim=1).norm(dim=1) if separate else grad.norm().reshape(1)

            detached = losses.detach()
            improved = active & (detached.expand(batch) < best_loss)
            best_loss = torch.where(improved, detached.expand(batch), best_loss)
            best_stimulus[improved] = stimulus.detach()[improved]
            frozen = stimulus.detach()[~active].clone()
            history.append(_history_row(objective_values, regularization, losses, batch))

            optimizer.step()
            with torch.no_grad():
                for postprocessor in postprocessors:
                    stimulus.data = postprocessor.process(stimulus.data)
                stimulus.data[~active] = frozen  # stopped stimuli keep their value
            stopped_at[active.cpu()] += 1
            active = _still_active(stoppers, active, detached, grad_norms, separate)
            if not bool(active.any()):
                break
    finally:
        stimulus.grad = None
        stimulus.requires_grad_(had_grad)
    empty = torch.zeros(0, batch, dtype=stimulus.dtype)
    objective_history, regularization_history, loss_history = (
        (torch.stack(column) for column in zip(*history)) if history else (empty, empty, empty)
    )
    return OptimizationResult(
        stimulus=stimulus.detach().clone(),
        best_stimulus=best_stimulus,
        objective_history=objective_history,
        regularization_history=regularization_history,
        loss_history=loss_history,
        stopped_at=stopped_at,
    )


def _evaluate(
    objective: Any, regularizers: list[RegularizationLoss], stimulus: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Objective and total regularisation, per stimulus ``(batch,)`` if every component provides per-stimulus
    values, otherwise both as batch totals ``(1,)`` (a joint value must not be broadcast to every stimulus)."""
    objective_values = _per_stimulus(objective, stimulus)
    penalties = [_per_stimulus(reg, stimulus) for reg in regularizers]
    batch_shape = (stimulus.shape[0],)
    if objective_values.shape != batch_shape or any(values.shape != batch_shape for values in penalties):
        objective_values = objective_values.sum().reshape(1)
        penalties = [values.sum().reshape(1) for values in penalties]
    return objective_values, sum(penalties, torch.zeros_like(objective_values))


def _history_row(
    objective: torch.Tensor, regularization: torch.Tensor, loss: torch.Tensor, batch: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    objective_row, regularization_row, loss_row = (
        values.detach().expand(batch).clone().cpu() for values in (objective, regularization, loss)
    )
    return objective_row, regularization_row, loss_row


def _still_active(
    stoppers: list[OptimizationStopper],
    active: torch.Tensor,
    losses: torch.Tensor,
    grad_norms: torch.Tensor,
    separate: bool,
) -> torch.Tensor:
    """Ask each still-running stimulus' stopper (or the single joint stopper) whether to go on."""
    # Stoppers written for the reference take only the loss.
    takes_grad_norm = "grad_norm" in inspect.signature(stoppers[0].early_stop).parameters

    def stop(own: OptimizationStopper, loss: float, grad_norm: float) -> bool:
        return bool(own.early_stop(loss, grad_norm=grad_norm) if takes_grad_norm else own.early_stop(loss))

    loss_values, norm_values = losses.tolist(), grad_norms.tolist()
    if not separate:
        return active & (not stop(stoppers[0], loss_values[0], norm_values[0]))
    flags = active.tolist()
    for index, own in enumerate(stoppers):
        if flags[index] and stop(own, loss_values[index], norm_values[index]):
            flags[index] = False
    return torch.tensor(flags, dtype=torch.bool, device=active.device)
