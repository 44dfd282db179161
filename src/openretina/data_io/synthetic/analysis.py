"""Classical analyses used to check the synthetic retina against its ground truth.

Spike-triggered averages, rank-1 space-time receptive-field estimates and an STA-based linear-nonlinear (LN)
model; layouts are stated per function. Correlations and noise ceilings come from :mod:`openretina.eval`.
"""

from __future__ import annotations

import numpy as np
import torch

from openretina.errors import DataShapeError

__all__ = [
    "ln_model_prediction",
    "rank_one_receptive_field",
    "spike_triggered_average",
]


def _check_movie_and_responses(stimulus: np.ndarray, responses: np.ndarray) -> None:
    if stimulus.ndim != 4:
        raise DataShapeError(f"stimulus must be (C, T, H, W), got shape {stimulus.shape}.")
    if responses.ndim != 2 or responses.shape[1] != stimulus.shape[1]:
        raise DataShapeError(
            f"responses must be (N, T) with T = {stimulus.shape[1]} stimulus frames, got shape {responses.shape}."
        )


def spike_triggered_average(stimulus: np.ndarray, responses: np.ndarray, num_lags: int) -> np.ndarray:
    """Response-weighted average of the mean-subtracted stimulus preceding each frame.

    Input: stimulus ``(C, T, H, W)``, responses ``(N, T)`` (spike counts or rates, frame-aligned).
    Output: ``(N, C, L, H, W)`` with lag index 0 = the response frame itself (same convention as the
    ground-truth temporal filters); frames whose history would start before the movie are skipped.
    """
    _check_movie_and_responses(stimulus, responses)
    num_channels, num_frames, height, width = stimulus.shape
    if not 1 <= num_lags < num_frames:
        raise DataShapeError(f"num_lags must lie in [1, {num_frames - 1}] for {num_frames} frames, got {num_lags}.")
    # float32 torch matmuls: several times faster than numpy float64 on small CPUs, ample precision for averages.
    frames = torch.from_numpy(np.moveaxis(stimulus, 1, 0).reshape(num_frames, -1).astype(np.float32))
    frames -= frames.mean(dim=0)
    weights = torch.from_numpy(responses[:, num_lags - 1 :].astype(np.float32))  # frames with a full history
    totals = weights.sum(dim=1, keepdim=True)
    totals[totals == 0] = 1.0
    per_lag = [weights @ frames[num_lags - 1 - lag : num_frames - lag] / totals for lag in range(num_lags)]
    sta = torch.stack(per_lag, dim=1).numpy().astype(np.float64)
    return sta.reshape(len(responses), num_lags, num_channels, height, width).transpose(0, 2, 1, 3, 4)


def rank_one_receptive_field(sta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best space-time separable approximation of STAs (leading singular vectors).

    Input: ``(N, C, L, H, W)``. Output: spatial ``(N, C, H, W)`` and temporal ``(N, L)`` components, signed so
    that the temporal component's largest-magnitude entry is positive (then an OFF cell has a negative
    spatial centre, matching the ground-truth convention). The scale sits in the spatial part.
    """
    if sta.ndim != 5:
        raise DataShapeError(f"sta must be (N, C, L, H, W), got shape {sta.shape}.")
    num_cells, num_channels, num_lags, height, width = sta.shape
    matrices = sta.transpose(0, 2, 1, 3, 4).reshape(num_cells, num_lags, -1)
    left, singular, right = np.linalg.svd(matrices, full_matrices=False)
    temporal = left[:, :, 0]
    spatial = right[:, 0, :] * singular[:, :1]
    peak = temporal[np.arange(num_cells), np.abs(temporal).argmax(axis=1)]
    sign = np.where(peak < 0, -1.0, 1.0)
    return (spatial * sign[:, None]).reshape(num_cells, num_channels, height, width), temporal * sign[:, None]


def _linear_prediction(stimulus: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Apply space-time filters ``(N, C, L, H, W)`` causally to ``(C, T, H, W)``; output ``(N, T)``."""
    num_cells, _, num_lags = filters.shape[:3]
    num_frames = stimulus.shape[1]
    frames = np.moveaxis(stimulus, 1, 0).reshape(num_frames, -1).astype(np.float64)
    per_lag = filters.transpose(2, 0, 1, 3, 4).reshape(num_lags, num_cells, -1)
    output = np.zeros((num_cells, num_frames))
    for lag in range(num_lags):
        output[:, lag:] += per_lag[lag] @ frames[: num_frames - lag].T
    return output


def ln_model_prediction(
    fit_stimulus: np.ndarray,
    fit_responses: np.ndarray,
    eval_stimulus: np.ndarray,
    num_lags: int,
    num_bins: int = 25,
) -> np.ndarray:
    """Predict responses with an LN model: the rank-1 STA as linear filter, then a binned static nonlinearity.

    The nonlinearity is the mean response per quantile bin of the generator signal on the fit data, read
    out by linear interpolation between bin centres. Inputs: fit stimulus ``(C, T, H, W)``, fit responses
    ``(N, T)``, evaluation stimulus ``(C, T', H, W)`` (white noise is the classical choice).
    Output: predicted responses ``(N, T')``.
    """
    # The rank-1 (space-time separable) STA: the raw STA's estimation noise would swamp the generator signal.
    spatial, temporal = rank_one_receptive_field(spike_triggered_average(fit_stimulus, fit_responses, num_lags))
    sta = temporal[:, None, :, None, None] * spatial[:, :, None]
    generator_fit = _linear_prediction(fit_stimulus, sta)[:, num_lags - 1 :]
    targets = fit_responses[:, num_lags - 1 :]
    generator_eval = _linear_prediction(eval_stimulus, sta)
    prediction = np.empty_like(generator_eval)
    quantiles = np.linspace(0, 1, num_bins + 1)
    for cell, (signal, target) in enumerate(zip(generator_fit, targets)):
        edges = np.quantile(signal, quantiles)
        bins = np.clip(np.searchsorted(edges, signal, side="right") - 1, 0, num_bins - 1)
        counts = np.maximum(np.bincount(bins, minlength=num_bins), 1)
        centres = np.bincount(bins, weights=signal, minlength=num_bins) / counts
        means = np.bincount(bins, weights=target, minlength=num_bins) / counts
        prediction[cell] = np.interp(generator_eval[cell], centres, means)
    return prediction
