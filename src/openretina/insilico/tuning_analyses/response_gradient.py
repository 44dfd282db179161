"""Chromatic response gradients (Höfling et al. 2024): how a neuron's response changes with channel contrast.

A stimulus (usually a neuron's MEI) is scaled per channel by contrasts ``c = (c_0, ..., c_{C-1})``; on a grid
of contrasts we record the response ``r(c)`` and its gradient ``∂r/∂c``. For the two-channel Höfling models
channel 0 is green and channel 1 UV, and the grid is the (green, UV) plane plotted by
:func:`openretina.plotting.tuning.plot_vector_field_resp_iso`.

Compared with the reference implementation: any channel count (a ``C``-dimensional grid), the grid follows
``start``/``stop``/``step_size`` (the reference looped over ``[-1, 1]`` whatever was asked), all grid points are
evaluated in batches with frozen model parameters instead of one forward/backward pass each, and the model is
left in the mode it was in.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from openretina.errors import DataShapeError
from openretina.insilico.tuning_analyses.model_runs import frozen_eval

__all__ = ["MeiAcrossContrasts", "contrast_values", "equalize_channels", "get_gradient_grid", "trainer_fn"]


def _check_stimulus(stim: torch.Tensor, what: str) -> None:
    if stim.ndim != 5 or stim.shape[0] != 1:
        raise DataShapeError(
            f"{what}: expected one stimulus (1, channels, time, height, width), got {tuple(stim.shape)}."
        )


class MeiAcrossContrasts(nn.Module):
    """A fixed stimulus whose channels are scaled by trainable contrasts.

    ``contrast_values``: ``(C,)``; ``stim``: ``(1, C, T, H, W)`` (frozen).
    Output of ``forward()``: ``(1, C, T, H, W)`` with channel ``k`` multiplied by ``contrast_values[k]``.
    """

    def __init__(self, contrast_values: torch.Tensor, stim: torch.Tensor) -> None:
        super().__init__()
        _check_stimulus(stim, "MeiAcrossContrasts")
        if contrast_values.shape != (stim.shape[1],):
            raise DataShapeError(
                f"MeiAcrossContrasts: contrast_values must have one value per channel ({stim.shape[1]}), "
                f"got shape {tuple(contrast_values.shape)}."
            )
        self.contrast_values = nn.Parameter(contrast_values.detach().clone().float())
        self.stim = nn.Parameter(stim.detach().clone(), requires_grad=False)

    def forward(self) -> torch.Tensor:
        """The contrast-scaled stimulus ``(1, C, T, H, W)``."""
        return self.stim * self.contrast_values[None, :, None, None, None]


def _objective_model(model_neuron: Any) -> nn.Module | None:
    model = getattr(model_neuron, "model", None)
    return model if isinstance(model, nn.Module) else None


def _scores(model_neuron: Any, stimuli: torch.Tensor) -> torch.Tensor:
    """One objective value per stimulus, ``(B,)``: batched when the objective offers ``per_stimulus``."""
    per_stimulus = getattr(model_neuron, "per_stimulus", None)
    if per_stimulus is not None:
        return per_stimulus(stimuli)
    return torch.stack([model_neuron(stimuli[i : i + 1]).reshape(()) for i in range(len(stimuli))])


def trainer_fn(
    mei_contrast_gen: MeiAcrossContrasts,
    model_neuron: Any,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
    lr: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of the objective with respect to the contrasts, and the objective value, at one point.

    ``model_neuron`` is an objective (e.g. ``IncreaseObjective(model, neuron_indices=[i], data_key=...)``).
    ``optimizer_class`` and ``lr`` are accepted for compatibility with the reference call form; no optimiser
    step is taken, so they have no effect. Output: ``(gradient (C,), response ())`` numpy arrays.
    """
    del optimizer_class, lr  # compatibility only: the reference built an optimiser just to zero gradients
    model = _objective_model(model_neuron)
    contrasts = mei_contrast_gen.contrast_values
    with frozen_eval(model) if model is not None else nullcontext():
        response = _scores(model_neuron, mei_contrast_gen())[0]
        (gradient,) = torch.autograd.grad(response, contrasts)
    return gradient.detach().cpu().numpy(), response.detach().cpu().numpy()


def contrast_values(start: float = -1.0, stop: float = 1.0, step_size: float = 0.1) -> np.ndarray:
    """``start, start + step, ..., stop`` (inclusive), robust to float rounding: 21 values for -1..1 by 0.1."""
    if not step_size > 0 or stop < start:
        raise ValueError(f"need step_size > 0 and stop >= start, got start={start}, stop={stop}, step={step_size}.")
    count = round((stop - start) / step_size) + 1
    return start + step_size * np.arange(count)


def get_gradient_grid(
    stim: torch.Tensor,
    model_neuron: Any,
    n_channels: int = 2,
    start: float = -1.0,
    stop: float = 1.0,
    step_size: float = 0.1,
    batch_size: int = 64,
) -> tuple[np.ndarray, ...]:
    """Response and contrast gradient on a regular grid of per-channel contrasts.

    Input: ``stim`` ``(1, C, T, H, W)`` with ``C == n_channels``; ``model_neuron`` an objective.
    Output: ``(grid, resp_grid, norm_grid, values_0, ..., values_{C-1})`` with ``n`` contrast values per
    channel (:func:`contrast_values`): ``grid`` ``(C, n, ..., n)`` holds ``∂r/∂c_k`` at each grid point
    (grid axis ``k`` = contrast of channel ``k``), ``resp_grid`` ``(n, ..., n)`` the response and ``norm_grid``
    the gradient's L2 norm. For two channels this is the reference's
    ``(grid, resp_grid, norm_grid, green_contrast_values, uv_contrast_values)``.
    """
    _check_stimulus(stim, "get_gradient_grid")
    if stim.shape[1] != n_channels:
        raise DataShapeError(f"get_gradient_grid: n_channels={n_channels} but the stimulus has {stim.shape[1]}.")
    values = contrast_values(start, stop, step_size)
    n = len(values)
    points = torch.tensor(list(itertools.product(values, repeat=n_channels)), dtype=torch.float32)  # (n^C, C)
    model = _objective_model(model_neuron)
    stimulus = stim.detach().float()
    gradients, responses = [], []
    with frozen_eval(model) if model is not None else nullcontext():
        for first in range(0, len(points), batch_size):
            contrasts = points[first : first + batch_size].to(stimulus.device).requires_grad_(True)
            scores = _scores(model_neuron, stimulus * contrasts[:, :, None, None, None])
            # Stimuli are independent in eval mode, so d(sum)/d(contrasts_b) is stimulus b's own gradient.
            (gradient,) = torch.autograd.grad(scores.sum(), contrasts)
            gradients.append(gradient.detach().cpu())
            responses.append(scores.detach().cpu())
    grid_shape = (n,) * n_channels
    grid = torch.cat(gradients).T.reshape(n_channels, *grid_shape).numpy()
    resp_grid = torch.cat(responses).reshape(grid_shape).numpy()
    norm_grid = np.linalg.norm(grid, axis=0)
    return (grid, resp_grid, norm_grid, *([values.copy() for _ in range(n_channels)]))


def equalize_channels(stim: torch.Tensor, flip_green: bool = False) -> torch.Tensor:
    """Give every channel the same norm, ``‖stim‖/√C``, keeping the total norm; optionally negate channel 0.

    Input: ``(1, C, ...)``. Output: a new tensor of the same shape. A channel that is all zero cannot be
    rescaled and raises ``ValueError``.
    """
    if stim.ndim < 2 or stim.shape[0] != 1:
        raise DataShapeError(f"equalize_channels: expected (1, channels, ...), got {tuple(stim.shape)}.")
    channels = stim.shape[1]
    channel_norms = stim[0].reshape(channels, -1).norm(dim=1)
    if (channel_norms == 0).any():
        raise ValueError(
            f"equalize_channels: channel(s) {torch.nonzero(channel_norms == 0).flatten().tolist()} are all zero."
        )
    total = stim.norm()
    scale = (total / channels**0.5) / channel_norms
    if flip_green:
        scale = scale * torch.tensor([-1.0] + [1.0] * (channels - 1), dtype=scale.dtype, device=scale.device)
    return stim * scale.reshape(1, channels, *([1] * (stim.ndim - 2)))
