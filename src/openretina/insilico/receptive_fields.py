"""Linearised receptive fields of a trained model: the gradient of each neuron's response at a blank stimulus."""

from __future__ import annotations

import numpy as np
import torch

from openretina.errors import DataShapeError
from openretina.eval.metrics import correlation_numpy


def linearised_receptive_fields(
    model: torch.nn.Module, data_key: str | None, time_steps: int | None = None
) -> np.ndarray:
    """Gradient of every neuron's last output frame with respect to a blank (all-zero) input.

    For a z-scored stimulus, zero is the mean grey, so this is the model's linear approximation around the
    mean stimulus: the analogue of a spike-triggered average. The model is evaluated in eval mode and left in
    the mode it was in; its parameters receive no gradient.
    Output: ``(N, C, L, H, W)`` with ``L = time_steps`` (default: the frames one output frame needs) and lag
    index 0 the *most recent* frame, the convention of spike-triggered averages.
    """
    frames = time_steps if time_steps is not None else int(model.number_of_cut_frames()) + 1  # type: ignore[operator]
    shape = model.stimulus_shape(time_steps=frames, num_batches=1)  # type: ignore[operator]
    num_neurons = _num_neurons(model, data_key, shape)
    was_training = model.training
    model.eval()
    try:
        stimulus = torch.zeros((num_neurons, *shape[1:]), requires_grad=True)
        responses = model(stimulus, data_key=data_key)[:, -1, :]  # (N copies, N neurons)
        grad = torch.autograd.grad(responses.diagonal().sum(), stimulus)[0]
    finally:
        model.train(was_training)
    return grad.flip(2).numpy()


def _num_neurons(model: torch.nn.Module, data_key: str | None, shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        output = model(torch.zeros(shape), data_key=data_key)
    if output.ndim != 3:
        raise DataShapeError(f"expected model output (batch, time, neurons), got shape {tuple(output.shape)}.")
    return int(output.shape[2])


def spatial_profile_correlation(estimated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-neuron Pearson correlation of two sets of receptive fields ``(N, ...)`` over all their pixels."""
    if estimated.shape != truth.shape:
        raise DataShapeError(f"receptive fields differ in shape: {estimated.shape} vs {truth.shape}.")
    return correlation_numpy(estimated.reshape(len(estimated), -1), truth.reshape(len(truth), -1), axis=1)
