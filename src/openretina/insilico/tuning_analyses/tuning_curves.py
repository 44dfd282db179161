"""Tuning curves of every neuron of a model, many stimulus conditions per forward pass.

All stimuli come from :mod:`openretina.data_io.artificial_stimuli` as contrasts in ``[-1, 1]``; ``amplitude``
scales them into the model's input units (e.g. the contrast of the z-scored training movie). The model runs in
eval mode with frozen parameters and no gradients, ``batch_size`` conditions at a time, and is left as it was.

* :func:`grating_tuning`: drifting gratings varying one of direction, spatial frequency, temporal frequency,
  contrast or colour (per-channel weights).
* :func:`moving_bar_tuning`: a bar moving in several directions (feed the result to the selectivity indices).
* :func:`chirp_response`, :func:`flash_response`: response time courses to the chirp and to full-field flashes.

Frame rates come from the ``frame_rate`` argument or the model's ``data_info`` (see
:func:`~openretina.insilico.tuning_analyses.model_runs.frame_rate_of`); nothing assumes 30 Hz.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from openretina.data_io.artificial_stimuli import (
    generate_chirp,
    generate_flashes,
    generate_gratings,
    generate_moving_bar,
)
from openretina.errors import DataShapeError
from openretina.insilico.tuning_analyses.model_runs import (
    check_enough_frames,
    cut_frames_of,
    frame_rate_of,
    input_shape_of,
    model_responses,
)

__all__ = [
    "GratingParameter",
    "ResponseTrace",
    "TuningCurve",
    "chirp_response",
    "flash_response",
    "grating_tuning",
    "moving_bar_tuning",
]

GratingParameter = Literal["direction", "spatial_frequency", "temporal_frequency", "contrast", "colour"]
Statistic = Literal["mean", "max"]
_GRATING_PARAMETERS: tuple[str, ...] = ("direction", "spatial_frequency", "temporal_frequency", "contrast", "colour")


@dataclass(frozen=True)
class TuningCurve:
    """Responses of every neuron to one family of stimuli.

    ``values``: the varied parameter, ``(V,)`` (or ``(V, C)`` channel weights for colour).
    ``responses``: ``(V, N)``, each the time-mean (or maximum) of the neuron's output over the stimulus.
    """

    parameter: str
    values: np.ndarray
    responses: np.ndarray

    def preferred_index(self) -> np.ndarray:
        """Index of the condition with the largest response, per neuron: ``(N,)``."""
        return np.asarray(self.responses.argmax(axis=0))

    def preferred_value(self) -> np.ndarray:
        """The parameter value with the largest response, per neuron: ``(N,)`` (``(N, C)`` for colour)."""
        return np.asarray(self.values[self.preferred_index()])


@dataclass(frozen=True)
class ResponseTrace:
    """Response time course: ``times`` ``(T,)`` in seconds from stimulus onset, ``responses`` ``(T, N)``."""

    times: np.ndarray
    responses: np.ndarray


def _reduce(responses: torch.Tensor, statistic: Statistic) -> np.ndarray:
    """(conditions, time, neurons) -> (conditions, neurons)."""
    if statistic == "mean":
        return responses.mean(dim=1).numpy()
    if statistic == "max":
        return responses.amax(dim=1).numpy()
    raise ValueError(f"statistic must be 'mean' or 'max', got {statistic!r}.")


def _channel_weights(weights: Sequence[float] | np.ndarray | None, channels: int) -> np.ndarray:
    if weights is None:
        return np.ones(channels, dtype=np.float32)
    array = np.asarray(weights, dtype=np.float32)
    if array.shape != (channels,):
        raise DataShapeError(f"channel_weights must have one weight per model channel ({channels}), got {array.shape}.")
    return array


def grating_tuning(
    model: nn.Module,
    parameter: GratingParameter,
    values: Sequence[Any] | np.ndarray,
    *,
    data_key: str | None = None,
    frame_rate: float | None = None,
    time_steps: int | None = None,
    direction: float = 0.0,
    spatial_frequency: float = 0.1,
    temporal_frequency: float = 2.0,
    contrast: float = 1.0,
    channel_weights: Sequence[float] | np.ndarray | None = None,
    amplitude: float = 1.0,
    statistic: Statistic = "mean",
    batch_size: int = 32,
) -> TuningCurve:
    """Drifting-grating tuning curve along ``parameter``, the other parameters fixed.

    Args:
        parameter: "direction" (degrees, screen angle of motion), "spatial_frequency" (cycles/pixel),
            "temporal_frequency" (Hz), "contrast" (0..1) or "colour" (``values`` are per-channel weights,
            ``(V, C)``; e.g. ``[[1, 0], [0, 1], [1, 1]]`` for green-only, UV-only, both).
        values: the values of ``parameter`` to test.
        time_steps: stimulus frames (default: the model's cut frames plus one second).
        direction, spatial_frequency, temporal_frequency, contrast: the fixed grating parameters.
        channel_weights: per-channel multiplier ``(C,)`` for every condition (default all 1).
        amplitude: scale from contrast units to model input units.
        statistic: "mean" or "max" of each neuron's output over time.
    Output: :class:`TuningCurve` with responses ``(V, N)``.
    """
    if parameter not in _GRATING_PARAMETERS:
        raise ValueError(f"parameter must be one of {list(_GRATING_PARAMETERS)}, got {parameter!r}.")
    rate = frame_rate_of(model, frame_rate)
    channels, height, width = input_shape_of(model)
    frames = time_steps if time_steps is not None else (cut_frames_of(model) or 0) + max(1, round(rate))
    check_enough_frames(model, frames, "grating_tuning")
    value_array = np.asarray(values, dtype=np.float64)
    if parameter == "colour":
        if value_array.ndim != 2 or value_array.shape[1] != channels:
            raise DataShapeError(
                f"colour tuning needs values of shape (conditions, {channels}) (one weight per channel), "
                f"got {value_array.shape}."
            )
    elif value_array.ndim != 1 or value_array.size == 0:
        raise DataShapeError(f"values must be a non-empty 1-D sequence, got shape {value_array.shape}.")
    base_weights = _channel_weights(channel_weights, channels)
    settings: dict[str, Any] = {
        "orientation": direction,
        "spatial_frequency": spatial_frequency,
        "temporal_frequency": temporal_frequency,
        "contrast": contrast,
    }
    key = {"direction": "orientation"}.get(parameter, parameter)
    stimuli = []
    for value in value_array:
        weights = base_weights * (value.astype(np.float32) if parameter == "colour" else 1.0)
        condition = dict(settings) if parameter == "colour" else {**settings, key: float(value)}
        grating = generate_gratings(shape=(1, frames, height, width), frame_rate=rate, **condition)
        stimuli.append(grating * torch.from_numpy(weights)[:, None, None, None] * amplitude)
    responses = model_responses(model, torch.stack(stimuli), data_key, batch_size)
    return TuningCurve(parameter, value_array, _reduce(responses, statistic))


def _with_history(movie: torch.Tensor, history: int) -> torch.Tensor:
    """Prepend ``history`` copies of the first frame so output frame ``j`` belongs to stimulus frame ``j``.

    Input: (..., C, T, H, W). Output: (..., C, history + T, H, W).
    """
    first = movie[..., :1, :, :]
    return torch.cat([first.expand(*first.shape[:-3], history, *first.shape[-2:]), movie], dim=-3)


def moving_bar_tuning(
    model: nn.Module,
    directions: Sequence[float] = (0, 45, 90, 135, 180, 225, 270, 315),
    *,
    data_key: str | None = None,
    frame_rate: float | None = None,
    amplitude: float = 1.0,
    statistic: Statistic = "max",
    batch_size: int = 32,
    **bar_options: Any,
) -> TuningCurve:
    """Responses to a bar moving in each of ``directions`` (screen angles, degrees; 0° rightwards, 90° up).

    ``bar_options`` go to :func:`~openretina.data_io.artificial_stimuli.generate_moving_bar` (speed, bar size,
    pixel size, ...). The first frame is repeated for the model's cut frames, so the whole sweep is seen.
    Output: :class:`TuningCurve` with responses ``(directions, N)``; by default each neuron's peak response.
    """
    rate = frame_rate_of(model, frame_rate)
    channels, height, width = input_shape_of(model)
    bars = generate_moving_bar(
        directions=directions, num_channels=channels, height=height, width=width, frame_rate=rate, **bar_options
    )
    stimuli = _with_history(bars, cut_frames_of(model) or 0) * amplitude
    responses = model_responses(model, stimuli, data_key, batch_size)
    return TuningCurve("direction", np.asarray(directions, dtype=np.float64), _reduce(responses, statistic))


def _trace(model: nn.Module, movie: torch.Tensor, data_key: str | None, rate: float, amplitude: float) -> ResponseTrace:
    stimulus = _with_history(movie, cut_frames_of(model) or 0)[None] * amplitude
    responses = model_responses(model, stimulus, data_key)[0].numpy()
    times = np.arange(responses.shape[0]) / rate + (movie.shape[1] - responses.shape[0]) / rate
    return ResponseTrace(times, responses)


def chirp_response(
    model: nn.Module,
    *,
    data_key: str | None = None,
    frame_rate: float | None = None,
    amplitude: float = 1.0,
    **chirp_options: Any,
) -> ResponseTrace:
    """Response of every neuron to the 33 s chirp (:func:`~openretina.data_io.artificial_stimuli.generate_chirp`).

    The chirp's first (dark) frame is repeated for the model's cut frames, so frame ``k`` of the chirp gives
    output ``k``. Output: :class:`ResponseTrace`, ``responses`` ``(T, N)``, ``times`` ``k / frame_rate``.
    """
    rate = frame_rate_of(model, frame_rate)
    channels, height, width = input_shape_of(model)
    chirp = generate_chirp(num_channels=channels, height=height, width=width, frame_rate=rate, **chirp_options)
    return _trace(model, chirp, data_key, rate, amplitude)


def flash_response(
    model: nn.Module,
    *,
    data_key: str | None = None,
    frame_rate: float | None = None,
    amplitude: float = 1.0,
    **flash_options: Any,
) -> ResponseTrace:
    """Response of every neuron to full-field flashes (:func:`~openretina.data_io.artificial_stimuli.generate_flashes`).

    ``flash_options``: ``num_flashes``, ``flash_duration_s``, ``interval_s``, ``polarity``, ``channel`` (a single
    channel for a chromatic step), ``contrast``. Output: :class:`ResponseTrace` aligned like :func:`chirp_response`.
    """
    rate = frame_rate_of(model, frame_rate)
    channels, height, width = input_shape_of(model)
    flashes = generate_flashes(num_channels=channels, height=height, width=width, frame_rate=rate, **flash_options)
    return _trace(model, flashes, data_key, rate, amplitude)
