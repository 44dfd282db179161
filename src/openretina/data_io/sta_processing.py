"""Spatial and temporal filters from spike-triggered averages (STAs), for the spatial-contrast models.

An STA file is a numpy array ``(time, height, width)``. :func:`extract_filters_from_sta` finds the frame with
the largest spatial variance (the STA peak), fits a rotated elliptical Gaussian to it
(:func:`fit_2d_gaussian`), and returns

* the spatial filter: the fitted Gaussian with positive amplitude (OFF cells made positive), zero outside
  ``sigma_contour`` standard deviations (:func:`create_gaussian_mask`), unit L2 norm;
* the temporal filter: the STA time course at the fitted centre pixel (its sign keeps the cell's polarity),
  optionally only the last ``temporal_crop_frames`` frames, unit L2 norm;
* the fit parameters.

Compared with the reference: a non-finite STA (or one with no variation) still gives zero filters so that one
bad cell does not stop a population model from being built, but with a ``UserWarning`` naming the problem
instead of silently; file and shape errors name the file and the sizes. The reference import path is
:mod:`openretina.utils.sta_processing`.
"""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from openretina.errors import DataFileNotFoundError, DataShapeError

__all__ = [
    "create_gaussian_mask",
    "extract_filters_from_sta",
    "fit_2d_gaussian",
    "gaussian_2d",
    "load_sta_and_extract_filters",
]


def _quadratic_form(sx: float, sy: float, theta: float) -> tuple[float, float, float]:
    """Coefficients ``a, b, c`` of ``a·dx² + 2b·dx·dy + c·dy²`` for a Gaussian rotated by ``theta``."""
    cos2, sin2, sin_2t = np.cos(theta) ** 2, np.sin(theta) ** 2, np.sin(2 * theta)
    a = cos2 / (2 * sx**2) + sin2 / (2 * sy**2)
    b = sin_2t / (4 * sx**2) - sin_2t / (4 * sy**2)
    c = sin2 / (2 * sx**2) + cos2 / (2 * sy**2)
    return a, b, c


def gaussian_2d(
    xy: tuple[np.ndarray, np.ndarray], cx: float, cy: float, sx: float, sy: float, theta: float, amplitude: float
) -> np.ndarray:
    """Rotated elliptical Gaussian ``A·exp(-(a·dx² + 2b·dx·dy + c·dy²))`` at the points ``xy``, flattened.

    ``xy``: ``(x, y)`` coordinate arrays (x = column, y = row, in pixels); ``sx``/``sy``: standard deviations
    along the Gaussian's own axes; ``theta``: rotation in radians.
    """
    x, y = xy
    a, b, c = _quadratic_form(sx, sy, theta)
    dx, dy = np.asarray(x, dtype=np.float64) - cx, np.asarray(y, dtype=np.float64) - cy
    return (amplitude * np.exp(-(a * dx**2 + 2 * b * dx * dy + c * dy**2))).ravel()


def _default_fit(height: int, width: int, center: tuple[float, float], amplitude: float) -> dict[str, Any]:
    return {
        "center_x": float(center[1]),
        "center_y": float(center[0]),
        "sigma_x": min(height, width) / 6,
        "sigma_y": min(height, width) / 6,
        "theta": 0.0,
        "amplitude": float(amplitude),
    }


def fit_2d_gaussian(frame: np.ndarray, initial_center: tuple[float, float] | None = None) -> dict[str, Any]:
    """Least-squares fit of :func:`gaussian_2d` to a frame ``(H, W)``.

    Starts at ``initial_center`` ``(y, x)`` (default: the pixel of largest ``|value|``), ``σ = min(H, W)/6``,
    ``θ = 0`` and the value at the centre; the centre is bounded to the frame, ``σ_x ∈ [0.5, W]``,
    ``σ_y ∈ [0.5, H]``, ``θ ∈ [-π, π]``. Returns ``center_x, center_y, sigma_x, sigma_y, theta, amplitude,
    success, covariance``; when the fit fails, the starting values with ``success=False``, ``covariance=None``
    and the reason under ``error``.
    """
    from scipy.optimize import curve_fit

    image = np.asarray(frame, dtype=np.float64)
    if image.ndim != 2:
        raise DataShapeError(f"fit_2d_gaussian: expected one frame (height, width), got shape {image.shape}.")
    height, width = image.shape
    if initial_center is None:
        peak = np.unravel_index(int(np.argmax(np.abs(image))), image.shape)
        initial_center = (float(peak[0]), float(peak[1]))
    cy0 = float(np.clip(initial_center[0], 0, height - 1))
    cx0 = float(np.clip(initial_center[1], 0, width - 1))
    start = _default_fit(height, width, (cy0, cx0), image[round(cy0), round(cx0)])
    p0 = [start[key] for key in ("center_x", "center_y", "sigma_x", "sigma_y", "theta", "amplitude")]
    lower = [0.0, 0.0, 0.5, 0.5, -np.pi, -np.inf]
    upper = [width - 1.0, height - 1.0, float(width), float(height), np.pi, np.inf]
    p0 = list(np.clip(p0, lower, upper))
    yy, xx = np.mgrid[0:height, 0:width]
    try:
        values, covariance = curve_fit(gaussian_2d, (xx, yy), image.ravel(), p0=p0, bounds=(lower, upper), maxfev=5000)
    except (RuntimeError, ValueError) as error:
        return {**start, "success": False, "covariance": None, "error": str(error)}
    keys = ("center_x", "center_y", "sigma_x", "sigma_y", "theta", "amplitude")
    return {**{key: float(value) for key, value in zip(keys, values)}, "success": True, "covariance": covariance}


def create_gaussian_mask(
    shape: tuple[int, int], cx: float, cy: float, sx: float, sy: float, theta: float, n_sigma: float = 3
) -> np.ndarray:
    """float32 mask ``(H, W)``: 1 where the rotated, σ-normalised distance from the centre is ``<= n_sigma``."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    dx, dy = xx - cx, yy - cy
    # Coordinates along the Gaussian's own axes, in units of its standard deviations.
    along = (dx * np.cos(theta) + dy * np.sin(theta)) / sx
    across = (-dx * np.sin(theta) + dy * np.cos(theta)) / sy
    return (np.sqrt(along**2 + across**2) <= n_sigma).astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def extract_filters_from_sta(
    sta: np.ndarray, temporal_crop_frames: int | None = None, sigma_contour: float = 3
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Spatial filter ``(H, W)``, temporal filter ``(T',)`` and Gaussian fit of an STA ``(T, H, W)``.

    See the module docs. ``T' = temporal_crop_frames`` (the last frames) or ``T``. A non-finite or constant STA
    gives zero filters, the default fit with ``success=False``, and a ``UserWarning``.
    """
    array = np.asarray(sta, dtype=np.float64)
    if array.ndim != 3:
        raise DataShapeError(
            f"extract_filters_from_sta: expected an STA (time, height, width), got shape {array.shape}."
        )
    frames, height, width = array.shape
    if temporal_crop_frames is not None and not 0 < temporal_crop_frames <= frames:
        raise ValueError(f"temporal_crop_frames must be in [1, {frames}] for this STA, got {temporal_crop_frames}.")
    kept = temporal_crop_frames or frames
    spatial_variance = array.var(axis=(1, 2))
    if not np.isfinite(array).all() or not (spatial_variance > 0).any():
        warnings.warn(
            "extract_filters_from_sta: the STA is not finite or has no spatial structure; returning zero filters.",
            UserWarning,
            stacklevel=2,
        )
        params = {**_default_fit(height, width, ((height - 1) / 2, (width - 1) / 2), 0.0), "success": False}
        return np.zeros((height, width), np.float32), np.zeros(kept, np.float32), {**params, "covariance": None}
    peak_frame = array[int(np.argmax(spatial_variance))]
    params = fit_2d_gaussian(peak_frame)
    params["amplitude"] = abs(params["amplitude"])
    centre = (params["center_x"], params["center_y"], params["sigma_x"], params["sigma_y"], params["theta"])
    yy, xx = np.mgrid[0:height, 0:width]
    gaussian = gaussian_2d((xx, yy), *centre, params["amplitude"]).reshape(height, width)
    spatial = _unit(gaussian * create_gaussian_mask((height, width), *centre, n_sigma=sigma_contour))
    row = int(np.clip(round(params["center_y"]), 0, height - 1))
    column = int(np.clip(round(params["center_x"]), 0, width - 1))
    temporal = _unit(array[frames - kept :, row, column])
    return spatial, temporal, params


def load_sta_and_extract_filters(
    sta_dir: str | PathLike[str],
    file_name: str,
    flip_sta: bool = False,
    target_spatial_shape: tuple[int, int] | None = None,
    temporal_crop_frames: int | None = None,
    sigma_contour: float = 3,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Load ``sta_dir/file_name`` (``np.load``, ``(T, H, W)``) and extract its filters.

    ``flip_sta`` mirrors it along the width axis; ``target_spatial_shape`` ``(h, w)`` crops the centre to the
    stimulus size (the STA must be at least that large). Then :func:`extract_filters_from_sta`.
    """
    path = Path(sta_dir) / file_name
    if not path.is_file():
        raise DataFileNotFoundError(f"STA file {str(path)!r} does not exist; check sta_dir and the file name.")
    sta = np.load(path)
    if sta.ndim != 3:
        raise DataShapeError(f"STA file {str(path)!r}: expected an array (time, height, width), got shape {sta.shape}.")
    if flip_sta:
        sta = sta[:, :, ::-1]
    if target_spatial_shape is not None:
        target_h, target_w = (int(v) for v in target_spatial_shape)
        height, width = sta.shape[1:]
        if target_h > height or target_w > width:
            raise DataShapeError(
                f"STA file {str(path)!r} is {height}x{width} pixels, smaller than the target {target_h}x{target_w}; "
                "pass a target_spatial_shape no larger than the STA."
            )
        top, left = (height - target_h) // 2, (width - target_w) // 2
        sta = sta[:, top : top + target_h, left : left + target_w]
    return extract_filters_from_sta(sta, temporal_crop_frames, sigma_contour)
