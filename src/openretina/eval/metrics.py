"""Per-neuron evaluation metrics (numpy).

Layouts follow the reference's evaluation functions so that their callers work unchanged: time is the axis
given by ``axis`` (default last) for the pairwise metrics, and repeated responses are ``(T, R, N)`` (time,
repeats, neurons). The containers store per-trial responses as ``(R, N, T)``; convert with
``trials.transpose(2, 0, 1)``.
"""

from __future__ import annotations

import numpy as np
import torch

from openretina.errors import DataShapeError
from openretina.modules.losses.correlation import pearson_correlation

EPSILON = 1e-8

__all__ = [
    "EPSILON",
    "MSE_numpy",
    "correlation_numpy",
    "crop_responses",
    "explainable_vs_total_var",
    "feve",
    "poisson_loss_numpy",
]


def correlation_numpy(y1: np.ndarray, y2: np.ndarray, axis: int = -1, eps: float = EPSILON, **kwargs) -> np.ndarray:
    """Pearson correlation along ``axis`` (numpy in, numpy out), with ``eps`` keeping constant traces at 0.

    Computed by :func:`openretina.modules.losses.pearson_correlation`, the one correlation of the package (losses,
    training metrics and evaluation agree to the last digit). The reference divided by ``std + eps``; here the
    variances get ``eps**2``, which differs from it by less than ``eps`` relative. Extra keyword arguments:
    ``keepdims=True`` keeps the reduced axis.
    """
    keepdim = bool(kwargs.pop("keepdims", False))
    if kwargs:
        raise TypeError(f"correlation_numpy got unexpected keyword arguments {sorted(kwargs)}")
    a = torch.as_tensor(np.asarray(y1, dtype=np.float64))
    b = torch.as_tensor(np.asarray(y2, dtype=np.float64))
    a, b = torch.broadcast_tensors(a, b)
    return pearson_correlation(a, b, dim=axis % a.ndim, eps=eps**2, keepdim=keepdim).numpy()


def MSE_numpy(y1: np.ndarray, y2: np.ndarray, axis: int = -1) -> np.ndarray:  # reference name
    """Mean squared error along ``axis``."""
    return ((y1 - y2) ** 2).mean(axis=axis)


def poisson_loss_numpy(
    y_true: np.ndarray, y_pred: np.ndarray, eps: float = EPSILON, mean_axis: int | None = -1
) -> np.ndarray:
    """Poisson negative log-likelihood without the constant term: ``mean(y_pred - y_true * log(y_pred + eps))``."""
    return (y_pred - y_true * np.log(y_pred + eps)).mean(axis=mean_axis)


def _check_repeated(name: str, array: np.ndarray) -> None:
    if array.ndim != 3:
        raise DataShapeError(
            f"{name} must be (time, repeats, neurons), got shape {array.shape}. Per-trial arrays stored as "
            "(repeats, neurons, time) convert with .transpose(2, 0, 1)."
        )


def explainable_vs_total_var(repeated: np.ndarray, eps: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Share of response variance that is repeatable across trials.

    Input: ``(T, R, N)``. Returns ``(var_ratio (N,), explainable_var (N,))`` with total variance over time and
    repeats, noise variance the time-mean of the across-repeat variance (both ddof 1), explainable = total -
    noise (floored at ``eps``) and ratio = explainable / total.
    """
    _check_repeated("repeated", repeated)
    num_frames, num_repeats, num_neurons = repeated.shape
    total = repeated.reshape(num_frames * num_repeats, num_neurons).var(axis=0, ddof=1)
    noise = repeated.var(axis=1, ddof=1).mean(axis=0)
    explainable = np.maximum(total - noise, eps)
    return explainable / (total + eps), explainable


def feve(targets: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Fraction of explainable variance explained, per neuron, in [0, 1].

    Inputs: targets ``(T, R, N)``; predictions ``(T, R, N)`` or ``(T, N)`` (then used for every repeat).
    """
    _check_repeated("targets", targets)
    if predictions.ndim == 2:
        predictions = np.repeat(predictions[:, None, :], targets.shape[1], axis=1)
    if predictions.shape != targets.shape:
        raise DataShapeError(
            f"predictions of shape {predictions.shape} do not match targets {targets.shape} (time, repeats, neurons)."
        )
    mse = ((targets - predictions) ** 2).mean(axis=(0, 1))
    var_ratio, explainable = explainable_vs_total_var(targets)
    noise = explainable / var_ratio - explainable
    return np.maximum(0.0, 1.0 - np.maximum(mse - noise, 0.0) / explainable)


def crop_responses(responses: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop the first frames of ``responses (..., T)`` so it matches ``predictions (T', ...)``; returns it and the lag.

    Models consume ``lag = T - T'`` frames of history before their first output frame.
    """
    lag = responses.shape[-1] - predictions.shape[0]
    if lag < 0:
        raise DataShapeError(
            f"predictions have {predictions.shape[0]} frames, more than the {responses.shape[-1]} response frames."
        )
    return responses[..., lag:], lag
