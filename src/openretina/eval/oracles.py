"""Noise ceilings: how well a neuron's responses can be predicted at best, given trial-to-trial variability."""

from __future__ import annotations

import numpy as np

from openretina.errors import DataShapeError
from openretina.eval.metrics import correlation_numpy

__all__ = ["global_mean_oracle", "oracle_corr_jackknife", "oracle_correlation"]


def _cut(responses: np.ndarray, cut_first_n_frames: int | None) -> np.ndarray:
    return responses[cut_first_n_frames:] if cut_first_n_frames else responses


def oracle_corr_jackknife(repeated: np.ndarray, cut_first_n_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out oracle correlation per neuron.

    Input: ``(T, R, N)`` (time, repeats, neurons), ``R >= 2``. Each trial is correlated with the mean of the
    other ``R - 1`` trials, over all frames and trials at once. Returns ``(score (N,), loo_means (T, R, N))``.
    The score underestimates the correlation of a single trial with the noise-free response.
    """
    if repeated.ndim != 3:
        raise DataShapeError(f"repeated must be (time, repeats, neurons), got shape {repeated.shape}.")
    if repeated.shape[1] < 2:
        raise DataShapeError(f"the jackknife oracle needs at least 2 repeats, got {repeated.shape[1]}.")
    data = _cut(repeated, cut_first_n_frames).astype(np.float64)
    num_repeats = data.shape[1]
    loo_means = (data.sum(axis=1, keepdims=True) - data) / (num_repeats - 1)
    flat = data.reshape(-1, data.shape[2])
    score = correlation_numpy(flat, loo_means.reshape(-1, data.shape[2]), axis=0)
    return score, loo_means


def global_mean_oracle(responses: np.ndarray, cut_first_n_frames: int | None = None) -> np.ndarray:
    """Correlation of each neuron with the across-neuron mean response. Input ``(T, R, N)`` or ``(T, N)``."""
    if responses.ndim == 2:
        responses = responses[:, None, :]
    if responses.ndim != 3:
        raise DataShapeError(f"responses must be (time, [repeats,] neurons), got shape {responses.shape}.")
    data = _cut(responses, cut_first_n_frames).astype(np.float64)
    flat = data.reshape(-1, data.shape[2])
    return correlation_numpy(flat, flat.mean(axis=1, keepdims=True), axis=0)


def oracle_correlation(trials: np.ndarray) -> np.ndarray:
    """Jackknife oracle correlation ``(N,)`` of per-trial responses in the containers' layout ``(R, N, T)``."""
    if trials.ndim != 3:
        raise DataShapeError(f"trials must be (repeats, neurons, time), got shape {trials.shape}.")
    return oracle_corr_jackknife(np.asarray(trials).transpose(2, 0, 1))[0]
