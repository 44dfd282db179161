"""Space-time kernel analysis for MEIs and receptive fields: rank-1 decomposition, filtering, spectra.

Numpy/scipy only (no plotting), importable without matplotlib. The reference import path
:mod:`openretina.utils.video_analysis` re-exports these functions. Compared with the reference, short signals
work (the zero-phase filter's padding is limited to the signal length, so stimuli of 18 frames or fewer no
longer raise), a cutoff at or above the Nyquist frequency means "no filtering" instead of an error, and the
sign-defining centre patch is clipped to the image, so tiny images work.
"""

from __future__ import annotations

import numpy as np

from openretina.errors import DataShapeError

__all__ = ["butter_lowpass_filter", "calculate_fft", "decompose_kernel", "weighted_main_frequency"]


def butter_lowpass_filter(data: np.ndarray, lowpass_cutoff: float, fs: float, order: int = 5) -> np.ndarray:
    """Zero-phase Butterworth low-pass of ``data`` along its last axis (cutoff and ``fs`` in the same unit).

    Signals shorter than the filter's default padding use the longest padding that fits. A cutoff at or above
    the Nyquist frequency ``fs / 2`` leaves the data unchanged.
    """
    from scipy.signal import butter, filtfilt

    values = np.asarray(data, dtype=np.float64)
    if lowpass_cutoff >= fs / 2:
        return values.copy()
    if not lowpass_cutoff > 0:
        raise ValueError(f"lowpass_cutoff must be positive, got {lowpass_cutoff}.")
    b, a = butter(order, lowpass_cutoff / (fs / 2), btype="low")
    padlen = min(3 * max(len(a), len(b)), values.shape[-1] - 1)
    return np.asarray(filtfilt(b, a, values, axis=-1, padlen=max(padlen, 0)))


def calculate_fft(
    temporal_kernel: np.ndarray, sampling_frequency: float = 30.0, lowpass_cutoff: float | None = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude spectrum of a 1-D trace after an optional low-pass (``lowpass_cutoff=None``: no filter).

    Output: ``(frequencies, |FFT|)``, the non-negative half, ``n // 2`` values each, in the unit of
    ``sampling_frequency`` (Hz if it is a frame rate in Hz, cycles per frame if it is 1).
    """
    trace = np.asarray(temporal_kernel, dtype=np.float64)
    if trace.ndim != 1:
        raise DataShapeError(f"calculate_fft: expected a 1-D temporal trace, got shape {trace.shape}.")
    if lowpass_cutoff is not None:
        trace = butter_lowpass_filter(trace, lowpass_cutoff, sampling_frequency)
    half = len(trace) // 2
    frequencies = np.fft.fftfreq(len(trace), d=1.0 / sampling_frequency)[:half]
    return frequencies, np.abs(np.fft.fft(trace))[:half]


def weighted_main_frequency(freqs: np.ndarray, weights: np.ndarray) -> float:
    """Average of ``freqs`` weighted by ``weights`` (1-D, equal length); NaN if the weights sum to zero."""
    frequencies, values = np.asarray(freqs, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if frequencies.ndim != 1 or frequencies.shape != values.shape:
        raise DataShapeError(
            f"weighted_main_frequency: freqs and weights must be 1-D of equal length, got {frequencies.shape} "
            f"and {values.shape}."
        )
    total = values.sum()
    return float((frequencies * values).sum() / total) if total != 0 else float("nan")


def decompose_kernel(
    space_time_kernel: np.ndarray, scaling_factor: float = 1.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Best rank-1 approximation ``temporal ⊗ spatial`` of a space-time kernel (SVD).

    Input: ``(T, H, W)``. Output: ``(temporal (T,), spatial (H, W), second singular value)``. ``spatial`` is
    scaled to max ``|value| = 1`` and ``temporal`` carries the amplitude (times ``scaling_factor``), so
    ``outer(temporal, spatial)`` is the rank-1 approximation. Signs are chosen so that the mean over the
    central 5x5 patch (rows and columns ``size//2 - 3 .. size//2 + 1``, clipped to the image) of ``spatial`` is
    non-negative. The second singular value (0 for a single frame or pixel) measures what rank 1 misses.
    """
    kernel = np.asarray(space_time_kernel, dtype=np.float64)
    if kernel.ndim != 3:
        raise DataShapeError(f"decompose_kernel: expected a (time, height, width) kernel, got shape {kernel.shape}.")
    frames, height, width = kernel.shape
    u, s, vh = np.linalg.svd(kernel.reshape(frames, height * width), full_matrices=False)
    spatial = vh[0].reshape(height, width)
    peak = np.abs(spatial).max()
    if peak > 0:
        spatial = spatial / peak
    temporal = u[:, 0] * peak * s[0] * scaling_factor
    centre = spatial[max(height // 2 - 3, 0) : height // 2 + 2, max(width // 2 - 3, 0) : width // 2 + 2]
    if centre.mean() < 0:
        spatial, temporal = -spatial, -temporal
    return temporal, spatial, float(s[1]) if len(s) > 1 else 0.0
