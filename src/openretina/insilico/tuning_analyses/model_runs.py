"""Running a trained model on many probe stimuli: eval mode, frozen parameters, batches, frame checks.

Every analysis in :mod:`openretina.insilico.tuning_analyses` and :mod:`openretina.insilico.receptive_fields`
goes through these helpers, so they all leave the model exactly as they found it (training flag and
``requires_grad`` of every parameter) and never accumulate parameter gradients.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from openretina.errors import DataFormatError, DataShapeError, InsufficientFramesError

# data_info keys that may hold the stimulus frame rate in Hz, in order of preference.
FRAME_RATE_KEYS: tuple[str, ...] = ("frame_rate_hz", "stimulus_rate_hz", "frame_rate", "fps")


def _hertz(value: object) -> float | None:
    """A frame rate stored as a number or as text such as ``"85Hz"`` (some reference checkpoints), else None."""
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(?:hz)?\s*", str(value), flags=re.IGNORECASE)
    return float(match.group(1)) if match else None


def frame_rate_of(model: nn.Module, frame_rate: float | None = None) -> float:
    """The stimulus frame rate in Hz: ``frame_rate`` if given, else the model's ``data_info`` entry.

    Looks for the keys :data:`FRAME_RATE_KEYS`. Raises :class:`DataFormatError` if neither is available,
    rather than assuming 30 Hz (a Höfling-specific value).
    """
    if frame_rate is not None:
        if not frame_rate > 0:
            raise ValueError(f"frame_rate must be a positive number of Hz, got {frame_rate}.")
        return float(frame_rate)
    data_info = getattr(model, "data_info", None)
    if isinstance(data_info, Mapping):
        for key in FRAME_RATE_KEYS:
            rate = _hertz(data_info.get(key))
            if rate is not None and rate > 0:
                return rate
    raise DataFormatError(
        f"{type(model).__name__}: the stimulus frame rate is unknown (data_info has none of the keys "
        f"{list(FRAME_RATE_KEYS)}). Pass frame_rate=... in Hz, e.g. frame_rate=30.0 for the Höfling models."
    )


def cut_frames_of(model: nn.Module) -> int | None:
    """Frames the model consumes before its first output frame, or None if the model cannot tell."""
    method = getattr(model, "number_of_cut_frames", None)
    return None if method is None else int(method())


def check_enough_frames(model: nn.Module, time_steps: int, what: str) -> None:
    """Raise :class:`InsufficientFramesError` if ``time_steps`` frames leave the model no output frame."""
    cut = cut_frames_of(model)
    if cut is not None and time_steps <= cut:
        raise InsufficientFramesError(
            f"{what}: {time_steps} stimulus frames leave no output frame; {type(model).__name__} consumes {cut} "
            f"frames, so pass at least {cut + 1} (time_steps={cut + 1})."
        )


@contextmanager
def frozen_eval(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode with parameters excluded from autograd; training flag and ``requires_grad`` restored after."""
    was_training = model.training
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    model.eval()
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield model
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
        model.train(was_training)


def call_model(model: nn.Module, stimulus: torch.Tensor, data_key: str | None) -> torch.Tensor:
    """``model(stimulus)``, passing ``data_key`` only when given (plain ``nn.Module`` models need not take it).

    Input: (batch, channels, time, height, width). Output: (batch, time_out, neurons), checked.
    """
    output = model(stimulus) if data_key is None else model(stimulus, data_key=data_key)
    if output.ndim != 3 or output.shape[0] != stimulus.shape[0]:
        raise DataShapeError(
            f"{type(model).__name__}: expected output (batch={stimulus.shape[0]}, time, neurons), "
            f"got shape {tuple(output.shape)}."
        )
    if output.shape[1] == 0:
        raise InsufficientFramesError(
            f"{type(model).__name__}: {stimulus.shape[2]} stimulus frames gave no output frame; use more frames."
        )
    return output


def model_responses(
    model: nn.Module, stimuli: torch.Tensor, data_key: str | None = None, batch_size: int = 32
) -> torch.Tensor:
    """Responses to many stimuli, ``batch_size`` per forward pass, without gradients.

    Input: (conditions, channels, time, height, width) on any device (moved to the model's device).
    Output: (conditions, time_out, neurons) float tensor on the CPU.
    """
    if stimuli.ndim != 5:
        raise DataShapeError(
            f"stimuli must be (conditions, channels, time, height, width), got shape {tuple(stimuli.shape)}."
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    device = _device_of(model)
    outputs = []
    with frozen_eval(model), torch.no_grad():
        for start in range(0, stimuli.shape[0], batch_size):
            chunk = stimuli[start : start + batch_size].to(device=device, dtype=torch.float32)
            outputs.append(call_model(model, chunk, data_key).cpu())
    return torch.cat(outputs)


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(iter(model.parameters()), None)
    return torch.device("cpu") if parameter is None else parameter.device


def input_shape_of(model: nn.Module) -> tuple[int, int, int]:
    """``(channels, height, width)`` of the model's stimulus, from ``stimulus_shape``."""
    stimulus_shape: Any = getattr(model, "stimulus_shape", None)
    if stimulus_shape is None:
        raise DataFormatError(
            f"{type(model).__name__} has no stimulus_shape(time_steps, num_batches) method, so the stimulus size is "
            "unknown; use an openretina model or add that method."
        )
    _, channels, _, height, width = stimulus_shape(time_steps=1, num_batches=1)
    return int(channels), int(height), int(width)
