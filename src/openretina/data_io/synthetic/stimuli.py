"""Stimulus movies of the synthetic retina: naturalistic 1/f scenes viewed with saccades, and white noise.

Movies are float32 ``(C, T, H, W)`` in *contrast* units (scene mean 0, RMS contrast about 1 before
display clipping); :func:`to_display_intensity` maps them to an 8-bit-like display scale.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "power_law_image",
    "saccadic_scene_movie",
    "spatial_power_spectrum",
    "to_display_intensity",
    "white_noise_movie",
]

DISPLAY_MEAN = 127.0
DISPLAY_CONTRAST = 42.0  # display units per unit of contrast: +-3 RMS stays inside 0..255
FULL_CONTRAST = DISPLAY_MEAN / DISPLAY_CONTRAST  # contrast of a binary 0 / 254 stimulus


def power_law_image(
    num_channels: int,
    height: int,
    width: int,
    exponent: float,
    channel_correlation: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Periodic random image whose spatial power spectrum falls as ``1 / f^exponent`` (natural images: ~2).

    Shaped in the Fourier domain from white noise; each channel mixes a shared and a private image so channels
    correlate by about ``channel_correlation``. Every channel has mean 0 and std 1. Output: ``(C, H, W)`` float64.
    """
    freq_y = np.fft.fftfreq(height)[:, None]
    freq_x = np.fft.rfftfreq(width)[None, :]
    radial = np.hypot(freq_y, freq_x)
    radial[0, 0] = np.inf  # no DC component
    amplitude = radial ** (-exponent / 2)

    def shaped_noise() -> np.ndarray:
        image = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((height, width))) * amplitude, s=(height, width))
        return (image - image.mean()) / image.std()

    shared = shaped_noise()
    channels = [
        np.sqrt(channel_correlation) * shared + np.sqrt(1 - channel_correlation) * shaped_noise()
        for _ in range(num_channels)
    ]
    return np.stack([(channel - channel.mean()) / channel.std() for channel in channels])


def _eye_positions(
    num_frames: int,
    frame_rate: float,
    scene_shape: tuple[int, int],
    fixation_s: float,
    drift_px_per_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Gaze position ``(T, 2)`` (row, col; float pixels): fixations of ``U(0.5, 1.5)·fixation_s`` seconds at
    uniformly random scene positions (saccades are instantaneous jumps), with a slow straight drift inside each."""
    positions = np.empty((num_frames, 2))
    frame = 0
    while frame < num_frames:
        duration = max(1, round(rng.uniform(0.5, 1.5) * fixation_s * frame_rate))
        start = rng.uniform(0, scene_shape)
        angle = rng.uniform(0, 2 * np.pi)
        velocity = drift_px_per_s / frame_rate * np.array([np.sin(angle), np.cos(angle)])
        steps = np.arange(min(duration, num_frames - frame))[:, None]
        positions[frame : frame + len(steps)] = start + steps * velocity
        frame += len(steps)
    return positions


def saccadic_scene_movie(
    num_frames: int,
    num_channels: int,
    height: int,
    width: int,
    rng: np.random.Generator,
    frame_rate: float = 30.0,
    spectral_exponent: float = 2.0,
    channel_correlation: float = 0.8,
    scene_scale: int = 4,
    fixation_s: float = 1.0,
    drift_px_per_s: float = 1.5,
) -> np.ndarray:
    """A window of ``H x W`` pixels scanning one large 1/f scene with saccade-like jumps and fixational drift.

    The scene is ``scene_scale`` times the window in each dimension and periodic, so the window wraps around
    instead of hitting edges; sub-pixel gaze positions are rendered by bilinear interpolation. Contrast is in
    scene standard deviations. Output: ``(C, T, H, W)`` float32.
    """
    scene_shape = (height * scene_scale, width * scene_scale)
    scene = power_law_image(num_channels, *scene_shape, spectral_exponent, channel_correlation, rng)
    gaze = _eye_positions(num_frames, frame_rate, scene_shape, fixation_s, drift_px_per_s, rng)
    rows = gaze[:, 0, None, None] + np.arange(height)[None, :, None]  # (T, H, 1)
    cols = gaze[:, 1, None, None] + np.arange(width)[None, None, :]  # (T, 1, W)
    row0, col0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    row_frac, col_frac = rows - row0, cols - col0
    row0, col0 = row0 % scene_shape[0], col0 % scene_shape[1]
    row1, col1 = (row0 + 1) % scene_shape[0], (col0 + 1) % scene_shape[1]
    movie = (
        scene[:, row0, col0] * (1 - row_frac) * (1 - col_frac)
        + scene[:, row0, col1] * (1 - row_frac) * col_frac
        + scene[:, row1, col0] * row_frac * (1 - col_frac)
        + scene[:, row1, col1] * row_frac * col_frac
    )
    return movie.astype(np.float32)


def white_noise_movie(
    num_frames: int, num_channels: int, height: int, width: int, rng: np.random.Generator, amplitude: float = 1.0
) -> np.ndarray:
    """Binary white noise, ``±amplitude`` contrast independently per pixel, channel and frame.

    Output: ``(C, T, H, W)`` float32.
    """
    return np.where(rng.random((num_channels, num_frames, height, width)) < 0.5, -amplitude, amplitude).astype(
        np.float32
    )


def to_display_intensity(contrast_movie: np.ndarray) -> np.ndarray:
    """Map contrast to an 8-bit-like display scale, ``127 + 42·contrast`` clipped to ``[0, 255]`` (float32)."""
    return np.clip(DISPLAY_MEAN + DISPLAY_CONTRAST * contrast_movie, 0.0, 255.0).astype(np.float32)


def spatial_power_spectrum(movie: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged spatial power spectrum of a movie, averaged over channels and frames.

    Each frame is mean-subtracted and Hann-windowed before the 2-D FFT. Input: ``(C, T, H, W)``.
    Output: ``(frequencies, power)``, frequencies in cycles/pixel (DC excluded, up to Nyquist).
    """
    _, _, height, width = movie.shape
    frames = movie - movie.mean(axis=(-2, -1), keepdims=True)
    window = np.hanning(height)[:, None] * np.hanning(width)[None, :]
    power = (np.abs(np.fft.fft2(frames * window)) ** 2).mean(axis=(0, 1))
    radial = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :])
    # Bin on rings one frequency step wide; the step is set by the larger dimension.
    step = 1.0 / max(height, width)
    ring = np.rint(radial / step).astype(int)
    valid = (ring > 0) & (radial <= 0.5)
    counts = np.bincount(ring[valid])
    sums = np.bincount(ring[valid], weights=power[valid])
    present = counts > 0
    return np.flatnonzero(present) * step, sums[present] / counts[present]
