"""Linearised receptive fields of a trained model, from response gradients or spike-triggered averages.

Two estimates, both ``(N, C, L, H, W)`` with lag index 0 the *most recent* frame (the convention of
spike-triggered averages):

* ``method="gradient"``: the gradient of each neuron's last output frame with respect to a blank (all-zero)
  stimulus. For a z-scored stimulus zero is the mean grey, so this is the model's linear approximation around
  the mean stimulus. Exact and cheap (one backward pass per ``batch_size`` neurons).
* ``method="sta"``: the spike-triggered average of model responses to white noise
  (:func:`~openretina.data_io.artificial_stimuli.generate_white_noise`), mean-subtracted and divided by the
  noise variance so that, for a linear model, it estimates the same kernel as the gradient. It probes the
  model over the whole noise distribution rather than at one point, so rectifying cells are captured too.

:func:`visualize_receptive_fields` turns either into one spatial map per neuron, resampled for display.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from openretina.data_io.artificial_stimuli import generate_white_noise
from openretina.errors import DataShapeError
from openretina.eval.metrics import correlation_numpy
from openretina.insilico.tuning_analyses.model_runs import (
    _device_of,
    call_model,
    check_enough_frames,
    cut_frames_of,
    frozen_eval,
)

__all__ = [
    "linearised_receptive_fields",
    "spatial_profile_correlation",
    "spatial_receptive_fields",
    "visualize_receptive_fields",
]

Method = Literal["gradient", "sta"]


def linearised_receptive_fields(
    model: nn.Module,
    data_key: str | None,
    time_steps: int | None = None,
    *,
    method: Method = "gradient",
    batch_size: int = 64,
    num_noise_stimuli: int = 512,
    noise_frames: int | None = None,
    noise_contrast: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Linear receptive field of every neuron of ``model`` (session ``data_key``; None = all sessions).

    Args:
        time_steps: number of lags ``L`` (default: the frames one output frame needs, ``cut + 1``).
        method: "gradient" (at the blank stimulus) or "sta" (white-noise spike-triggered average).
        batch_size: neurons per backward pass ("gradient") or noise movies per forward pass ("sta").
        num_noise_stimuli, noise_frames, noise_contrast, seed: the white noise of "sta": that many binary
            ``±noise_contrast`` movies of ``noise_frames`` frames (default ``L + 63``), generated with ``seed``.

    The model is evaluated in eval mode with frozen parameters and left as it was.
    Output: float32 numpy ``(N, C, L, H, W)``, lag 0 = most recent frame.
    """
    cut = cut_frames_of(model)
    lags = time_steps if time_steps is not None else (cut if cut is not None else 0) + 1
    check_enough_frames(model, lags, "linearised_receptive_fields")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    with frozen_eval(model):
        if method == "gradient":
            return _gradient_receptive_fields(model, data_key, lags, batch_size)
        if method == "sta":
            frames = noise_frames if noise_frames is not None else lags + 63
            if frames < lags:
                raise ValueError(f"noise_frames ({frames}) must be at least the number of lags ({lags}).")
            return _sta_receptive_fields(
                model, data_key, lags, frames, num_noise_stimuli, noise_contrast, seed, batch_size
            )
    raise ValueError(f"method must be 'gradient' or 'sta', got {method!r}.")


def _gradient_receptive_fields(model: nn.Module, data_key: str | None, lags: int, batch_size: int) -> np.ndarray:
    shape = tuple(model.stimulus_shape(time_steps=lags, num_batches=1))  # type: ignore[operator]
    device = _device_of(model)
    with torch.no_grad():
        num_neurons = call_model(model, torch.zeros(shape, device=device), data_key).shape[2]
    fields = []
    for start in range(0, num_neurons, batch_size):
        neurons = torch.arange(start, min(start + batch_size, num_neurons), device=device)
        # One blank copy per neuron: copy i only receives the gradient of neuron i.
        stimulus = torch.zeros((len(neurons), *shape[1:]), device=device, requires_grad=True)
        last_frame = call_model(model, stimulus, data_key)[:, -1, :]
        (grad,) = torch.autograd.grad(last_frame[torch.arange(len(neurons)), neurons].sum(), stimulus)
        fields.append(grad.flip(2).cpu())
    return torch.cat(fields).numpy().astype(np.float32)


def _sta_receptive_fields(
    model: nn.Module,
    data_key: str | None,
    lags: int,
    frames: int,
    num_stimuli: int,
    contrast: float,
    seed: int,
    batch_size: int,
) -> np.ndarray:
    if num_stimuli < 1 or not contrast > 0:
        raise ValueError(f"need num_noise_stimuli >= 1 and noise_contrast > 0, got {num_stimuli} and {contrast}.")
    _, channels, _, height, width = model.stimulus_shape(time_steps=frames, num_batches=1)  # type: ignore[operator]
    rng = np.random.default_rng(seed)
    device = _device_of(model)
    sums: torch.Tensor | None = None
    count = 0
    with torch.no_grad():
        for start in range(0, num_stimuli, batch_size):
            size = min(batch_size, num_stimuli - start)
            noise = generate_white_noise((size, channels, frames, height, width), seed=rng, contrast=contrast)
            noise = noise.to(device)
            responses = call_model(model, noise, data_key)  # (B, T_out, N)
            t_out = responses.shape[1]
            first = frames - t_out  # output frame j sees input frames up to first + j
            if first + 1 < lags:
                raise ValueError(f"the model's output frame 0 sees only {first + 1} frames, fewer than {lags} lags.")
            centred = responses - responses.mean(dim=(0, 1), keepdim=True)
            # Lag l of output frame j is input frame first + j - l; one matrix product per lag keeps memory small.
            batch_sum = torch.stack(
                [
                    torch.einsum("btn,bcthw->nchw", centred, noise[:, :, first - lag : first - lag + t_out])
                    for lag in range(lags)
                ],
                dim=2,
            )
            sums = batch_sum if sums is None else sums + batch_sum
            count += size * t_out
    assert sums is not None  # num_stimuli >= 1 was checked
    return (sums / (count * contrast**2)).cpu().numpy().astype(np.float32)


def spatial_receptive_fields(receptive_fields: np.ndarray) -> np.ndarray:
    """The spatial profile of each neuron at its peak frame: the ``(channel, lag)`` slice with most energy.

    Signs are kept (an OFF centre stays negative). Input: ``(N, C, L, H, W)``. Output: ``(N, H, W)``.
    """
    if receptive_fields.ndim != 5:
        raise DataShapeError(
            f"receptive_fields must be (neurons, channels, lags, height, width), got shape {receptive_fields.shape}."
        )
    n, c, lags, h, w = receptive_fields.shape
    energy = (receptive_fields.reshape(n, c * lags, h * w) ** 2).sum(axis=2)
    peak = energy.argmax(axis=1)
    return receptive_fields.reshape(n, c * lags, h, w)[np.arange(n), peak]


def visualize_receptive_fields(
    model: nn.Module,
    resolution: tuple[int, int] | None = (64, 64),
    data_key: str | None = None,
    *,
    method: Method = "gradient",
    normalize: bool = True,
    time_steps: int | None = None,
    **estimator_kwargs: object,
) -> np.ndarray:
    """One spatial receptive-field map per neuron, ready for ``imshow``.

    The linearised receptive fields (:func:`linearised_receptive_fields`, ``method`` "gradient" or "sta";
    further keyword arguments go there) are reduced to the spatial profile at each neuron's peak frame
    (:func:`spatial_receptive_fields`), resampled bilinearly to ``resolution = (height, width)`` (None keeps
    the model's own size, e.g. 18x16) and, with ``normalize``, scaled to max ``|value| = 1`` per neuron.
    With ``data_key=None`` a multi-session model reports all sessions' neurons (sorted session order).

    Output: float32 numpy ``(N, height, width)``.
    """
    fields = linearised_receptive_fields(model, data_key, time_steps, method=method, **estimator_kwargs)  # type: ignore[arg-type]
    maps = spatial_receptive_fields(fields)
    if resolution is not None:
        if len(resolution) != 2 or min(resolution) < 1:
            raise ValueError(f"resolution must be (height, width) with positive sizes, got {resolution}.")
        size = (int(resolution[0]), int(resolution[1]))
        maps = F.interpolate(torch.from_numpy(maps)[:, None], size=size, mode="bilinear")[:, 0].numpy()
    if normalize:
        peak = np.abs(maps).reshape(len(maps), -1).max(axis=1)
        maps = maps / np.where(peak > 0, peak, 1.0)[:, None, None]
    return maps.astype(np.float32)


def spatial_profile_correlation(estimated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-neuron Pearson correlation of two sets of receptive fields ``(N, ...)`` over all their pixels."""
    if estimated.shape != truth.shape:
        raise DataShapeError(f"receptive fields differ in shape: {estimated.shape} vs {truth.shape}.")
    return correlation_numpy(estimated.reshape(len(estimated), -1), truth.reshape(len(truth), -1), axis=1)
