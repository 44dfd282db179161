"""Artificial visual stimuli: chirp, moving bar, gratings, flashes and white noise, all rendered procedurally.

Two families of functions live here:

* The reference-compatible loaders (``load_chirp``, ``load_moving_bar``, ``load_moving_bar_stack``, their
  ``*_72_64px`` variants, ``load_stimulus``, ``normalize_stimulus``, ``discretize_triggers``,
  ``align_stimulus_to_trigger`` and ``colored_stimulus``). They keep the reference names and output layouts
  (``(T, H, W, 2)`` numpy float32 on the 0–254 intensity scale, or ``(x - 128) / 128`` when normalised), but
  the chirp and moving bar are *rendered* from the Euler-lab stimulus definitions instead of read from
  pre-rendered pickles (which no longer ship with the reference and made its loaders fail).
* Generators (``generate_chirp``, ``generate_moving_bar``, ``generate_gratings``, ``generate_flashes``,
  ``generate_white_noise``) that return float32 torch tensors ready for a model:
  ``(C, T, H, W)``, or ``(B, C, T, H, W)`` for a batch of conditions. Their values are contrasts in
  ``[-1, 1]``: -1 is dark, 0 the mid-grey background, +1 full brightness. Map them to a model's input units
  yourself if the model was trained on z-scored movies (e.g. multiply by the contrast its training movie had).

Screen geometry used everywhere: pixel ``(row, col)`` has its centre at ``x = (col + 0.5 - W / 2)``,
``y = (H / 2 - row - 0.5)`` pixels from the screen centre, i.e. x grows to the right and y grows *upwards*
(row 0 is the top row). Angles are in degrees, counter-clockwise from the +x axis ("screen angles"):
0° = rightwards, 90° = upwards. The reference moving-bar direction *labels* follow a different convention,
see :func:`reference_direction_to_screen_angle`.
"""

from __future__ import annotations

import itertools
import math
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError, OpenRetinaError

__all__ = [
    "REFERENCE_MOVING_BAR_DIRECTIONS",
    "StimulusParameterError",
    "align_stimulus_to_trigger",
    "chirp_intensity",
    "colored_stimulus",
    "discretize_triggers",
    "generate_chirp",
    "generate_flashes",
    "generate_gratings",
    "generate_moving_bar",
    "generate_white_noise",
    "load_chirp",
    "load_chirp_30hz_72_64px",
    "load_moving_bar",
    "load_moving_bar_30hz_72_64px",
    "load_moving_bar_stack",
    "load_stimulus",
    "normalize_stimulus",
    "reference_direction_to_screen_angle",
]


class StimulusParameterError(OpenRetinaError, ValueError):
    """A stimulus generator got an argument outside its valid range."""


# Intensity scale of the Euler-lab stimulus scripts: 0 = dark, 127 = mid grey, 254 = full brightness.
_DARK, _MID, _BRIGHT = 0.0, 127.0, 254.0

# Chirp timeline (seconds): (duration, kind). Total 33 s; second trigger 5 s after the first.
_CHIRP_SEGMENTS: tuple[tuple[float, str], ...] = (
    (2.0, "dark"),
    (3.0, "bright"),
    (3.0, "dark"),
    (2.0, "mid"),
    (8.0, "frequency_chirp"),
    (2.0, "mid"),
    (8.0, "contrast_chirp"),
    (2.0, "mid"),
    (3.0, "dark"),
)
CHIRP_DURATION_S = sum(duration for duration, _ in _CHIRP_SEGMENTS)
_CHIRP_RATE_HZ_PER_S = 1.0  # frequency chirp sweeps 0 -> 8 Hz in 8 s
_CONTRAST_CHIRP_HZ = 2.0
_CHIRP_TRIGGERS_PER_REPETITION = 2

REFERENCE_MOVING_BAR_DIRECTIONS: tuple[int, ...] = (0, 180, 45, 225, 90, 270, 135, 315)
_BAR_SPEED_UM_PER_S = 1000.0
_BAR_WIDTH_UM = 300.0  # extent along the motion
_BAR_LENGTH_UM = 1000.0  # extent perpendicular to the motion
_BAR_START_DISTANCE_UM = 2000.0  # the bar travels from -2000 um to +2000 um through the screen centre
_BAR_SECONDS_PER_DIRECTION = 4.1  # 123 frames at 30 Hz, as in the reference recordings
_BAR_TRIGGERS_PER_REPETITION = len(REFERENCE_MOVING_BAR_DIRECTIONS)

_LOW_RES = {"height": 18, "width": 16, "pixel_size_um": 50.0}
_HIGH_RES = {"height": 72, "width": 64, "pixel_size_um": 12.5}
_REFERENCE_FRAME_RATE = 30.0
_SUPERSAMPLING = 4  # sub-pixel samples per axis used to anti-alias shapes' edges


# --------------------------------------------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------------------------------------------
def _require_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise StimulusParameterError(f"{name} must be a finite number > 0, got {value!r}.")


def _require_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise StimulusParameterError(f"{name} must be a finite number >= 0, got {value!r}.")


def _require_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise StimulusParameterError(f"{name} must be an integer >= 1, got {value!r}.")


def _movie_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Validate a ``(C, T, H, W)`` or ``(B, C, T, H, W)`` shape and return it as a tuple of ints."""
    dims = tuple(int(size) for size in shape)
    if len(dims) not in (4, 5):
        raise DataShapeError(
            f"shape must be (C, T, H, W) or (B, C, T, H, W), got {len(dims)} dimensions {dims}. "
            "Pass e.g. model.stimulus_shape(time_steps=...)."
        )
    if any(size < 1 for size in dims):
        raise DataShapeError(f"every entry of shape must be >= 1, got {dims}.")
    return dims


# --------------------------------------------------------------------------------------------------------------
# Screen geometry
# --------------------------------------------------------------------------------------------------------------
def _pixel_centres(height: int, width: int, supersampling: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)`` sample coordinates in pixels relative to the screen centre, y pointing up.

    With ``supersampling = s`` each pixel holds ``s x s`` samples; the arrays have shape ``(H*s, W*s)``.
    """
    offsets_x = (np.arange(width * supersampling) + 0.5) / supersampling - width / 2
    offsets_y = height / 2 - (np.arange(height * supersampling) + 0.5) / supersampling
    x, y = np.meshgrid(offsets_x, offsets_y)
    return x, y


def _pixel_coverage(inside: np.ndarray, supersampling: int) -> np.ndarray:
    """Average boolean sub-pixel samples ``(..., H*s, W*s)`` into the covered fraction ``(..., H, W)``."""
    *lead, rows, cols = inside.shape
    blocks = inside.reshape(*lead, rows // supersampling, supersampling, cols // supersampling, supersampling)
    return blocks.mean(axis=(-3, -1), dtype=np.float32)


def reference_direction_to_screen_angle(direction_deg: float) -> float:
    """Convert a reference moving-bar direction label to the screen angle of the bar's motion.

    The Euler-lab script moves a bar labelled ``θ`` along ``(-sin θ, -cos θ)`` (with ``φ = θ - 90°``, the
    start is ``2000·(cos φ, -sin φ)`` µm and each frame steps by ``(-cos φ, sin φ)·v/f``). In screen
    angles that is ``270° - θ``: label 0° moves down, 90° left, 180° up, 270° right.
    """
    return float((270.0 - direction_deg) % 360.0)


# --------------------------------------------------------------------------------------------------------------
# Chirp
# --------------------------------------------------------------------------------------------------------------
def chirp_intensity(times_s: np.ndarray) -> np.ndarray:
    """Spot intensity (0–254 scale) of the chirp at the given times in seconds since its start.

    Segments: 2 s dark, 3 s bright, 3 s dark, 2 s mid grey, 8 s frequency chirp
    ``127 + 127·sin(π·t²)`` (instantaneous frequency ``t`` Hz, i.e. 0 -> 8 Hz), 2 s grey, 8 s contrast chirp
    ``127 + floor(127·t/8)·sin(2π·2t)``, 2 s grey, 3 s dark. Times outside ``[0, 33)`` s are dark.
    """
    times = np.asarray(times_s, dtype=np.float64)
    intensity = np.full(times.shape, _DARK)
    start = 0.0
    for duration, kind in _CHIRP_SEGMENTS:
        in_segment = (times >= start) & (times < start + duration)
        local = times[in_segment] - start
        if kind == "bright":
            intensity[in_segment] = _BRIGHT
        elif kind == "mid":
            intensity[in_segment] = _MID
        elif kind == "frequency_chirp":
            intensity[in_segment] = _MID + _MID * np.sin(np.pi * _CHIRP_RATE_HZ_PER_S * local**2)
        elif kind == "contrast_chirp":
            amplitude = np.floor(_MID * local / duration)
            intensity[in_segment] = _MID + amplitude * np.sin(2 * np.pi * _CONTRAST_CHIRP_HZ * local)
        start += duration
    return intensity


def _render_chirp(
    height: int, width: int, frame_rate: float, pixel_size_um: float, spot_diameter_um: float
) -> np.ndarray:
    """Chirp frames ``(T, H, W)`` on the 0–254 scale: a disc of the chirp intensity on a dark background."""
    num_frames = round(CHIRP_DURATION_S * frame_rate)
    intensity = chirp_intensity(np.arange(num_frames) / frame_rate)
    x, y = _pixel_centres(height, width, _SUPERSAMPLING)
    radius_px = spot_diameter_um / 2 / pixel_size_um
    coverage = _pixel_coverage(x**2 + y**2 <= radius_px**2, _SUPERSAMPLING)
    return (intensity[:, None, None] * coverage[None]).astype(np.float32)


def generate_chirp(
    num_channels: int = 2,
    height: int = 18,
    width: int = 16,
    frame_rate: float = 30.0,
    pixel_size_um: float = 50.0,
    spot_diameter_um: float = 1000.0,
) -> torch.Tensor:
    """Render the 33 s "chirp" (full-field steps, frequency and contrast chirps) as model input.

    The spot is a disc of ``spot_diameter_um`` centred on the screen (edge pixels anti-aliased), dark
    outside. Frame ``k`` shows the stimulus at time ``k / frame_rate``, so at 30 Hz the segments start at
    frames 0, 60, 150, 240, 300, 540, 600, 840 and 900 of 990. See :func:`chirp_intensity`.

    Output: float32 tensor ``(C, T, H, W)`` with values in ``[-1, 1]`` (dark -1, grey 0, bright +1); all
    channels identical (achromatic).
    """
    for name, value in (("num_channels", num_channels), ("height", height), ("width", width)):
        _require_positive_int(name, value)
    for name, fvalue in (
        ("frame_rate", frame_rate),
        ("pixel_size_um", pixel_size_um),
        ("spot_diameter_um", spot_diameter_um),
    ):
        _require_positive(name, fvalue)
    if frame_rate < 2 * 8.0:
        raise StimulusParameterError(f"frame_rate must be >= 16 Hz to render the 8 Hz chirp, got {frame_rate}.")
    frames = _render_chirp(height, width, frame_rate, pixel_size_um, spot_diameter_um)
    contrast = (frames - _MID) / _MID
    return torch.from_numpy(np.broadcast_to(contrast, (num_channels, *contrast.shape)).copy())


# --------------------------------------------------------------------------------------------------------------
# Moving bar
# --------------------------------------------------------------------------------------------------------------
def generate_moving_bar(
    directions: Sequence[float] = (0, 45, 90, 135, 180, 225, 270, 315),
    speed_um_per_s: float = _BAR_SPEED_UM_PER_S,
    bar_width_um: float = _BAR_WIDTH_UM,
    bar_length_um: float = _BAR_LENGTH_UM,
    start_distance_um: float = _BAR_START_DISTANCE_UM,
    frames_per_direction: int | None = None,
    num_channels: int = 2,
    height: int = 18,
    width: int = 16,
    pixel_size_um: float = 50.0,
    frame_rate: float = 30.0,
) -> torch.Tensor:
    """Render a bright bar moving across a dark screen, one condition per direction.

    Each direction is a screen angle in degrees (0° rightwards, 90° upwards). The bar (``bar_width_um``
    along the motion, ``bar_length_um`` across it) starts ``start_distance_um`` before the screen centre
    and moves through it at ``speed_um_per_s``; frame ``k`` shows it at ``k / frame_rate`` s.
    ``frames_per_direction`` defaults to the time needed to travel ``2·start_distance_um``.
    For the reference direction labels use :func:`reference_direction_to_screen_angle`.

    Output: float32 tensor ``(B, C, T, H, W)`` with ``B = len(directions)``; bar +1, background -1.
    """
    if len(directions) == 0:
        raise StimulusParameterError("directions must contain at least one angle in degrees, got an empty sequence.")
    for name, value in (("num_channels", num_channels), ("height", height), ("width", width)):
        _require_positive_int(name, value)
    for name, fvalue in (
        ("speed_um_per_s", speed_um_per_s),
        ("bar_width_um", bar_width_um),
        ("bar_length_um", bar_length_um),
        ("pixel_size_um", pixel_size_um),
        ("frame_rate", frame_rate),
    ):
        _require_positive(name, fvalue)
    _require_non_negative("start_distance_um", start_distance_um)
    if frames_per_direction is None:
        frames_per_direction = max(1, math.ceil(2 * start_distance_um / speed_um_per_s * frame_rate))
    _require_positive_int("frames_per_direction", frames_per_direction)

    x, y = _pixel_centres(height, width, _SUPERSAMPLING)
    x_um, y_um = x * pixel_size_um, y * pixel_size_um
    travelled = np.arange(frames_per_direction) * speed_um_per_s / frame_rate - start_distance_um
    conditions = []
    for direction in directions:
        angle = math.radians(float(direction))
        along_x, along_y = math.cos(angle), math.sin(angle)
        # Coordinates of every sub-pixel along and across the motion, relative to the bar centre per frame.
        along = (x_um * along_x + y_um * along_y)[None] - travelled[:, None, None]
        across = -x_um * along_y + y_um * along_x
        inside = (np.abs(along) <= bar_width_um / 2) & (np.abs(across) <= bar_length_um / 2)[None]
        conditions.append(_pixel_coverage(inside, _SUPERSAMPLING))
    bars = np.stack(conditions)[:, None] * 2.0 - 1.0  # (B, 1, T, H, W), coverage 0..1 -> -1..1
    bars = np.broadcast_to(bars, (len(conditions), num_channels, *bars.shape[2:]))
    return torch.from_numpy(bars.astype(np.float32))


# --------------------------------------------------------------------------------------------------------------
# Gratings, flashes, white noise
# --------------------------------------------------------------------------------------------------------------
def generate_gratings(
    shape: Sequence[int],
    temporal_frequency: float = 2.0,
    spatial_frequency: float = 0.1,
    orientation: float = 0.0,
    contrast: float = 1.0,
    phase: float = 0.0,
    drifting: bool = True,
    frame_rate: float = 30.0,
) -> torch.Tensor:
    """Sinusoidal gratings, drifting or counter-phase modulated, in every channel of ``shape``.

    Args:
        shape: ``(C, T, H, W)`` or ``(B, C, T, H, W)``, e.g. ``model.stimulus_shape(time_steps=30)``.
        temporal_frequency: Hz (cycles per second at ``frame_rate``); must stay below Nyquist,
            ``frame_rate / 2``.
        spatial_frequency: cycles per pixel, in ``[0, 0.5]``.
        orientation: screen angle (degrees) of the wave vector; a drifting grating moves this way and its
            stripes run perpendicular to it (0° = vertical stripes drifting rightwards).
        contrast: amplitude in ``[0, 1]``; values lie in ``[-contrast, contrast]``.
        phase: spatial phase in degrees at the screen centre and ``t = 0``.
        drifting: ``True`` for ``contrast·cos(2π(f_s·d - f_t·t) + phase)``; ``False`` for a standing
            (counter-phase) grating ``contrast·cos(2π f_s·d + phase)·cos(2π f_t·t)``, where ``d`` is the
            position along ``orientation`` in pixels.
        frame_rate: frames per second; frame ``k`` is at ``t = k / frame_rate``.

    Output: float32 tensor of exactly ``shape``.
    """
    dims = _movie_shape(shape)
    _require_positive("frame_rate", frame_rate)
    _require_non_negative("temporal_frequency", temporal_frequency)
    if temporal_frequency >= frame_rate / 2:
        raise StimulusParameterError(
            f"temporal_frequency {temporal_frequency} Hz is at or above the Nyquist frequency {frame_rate / 2} Hz "
            f"of frame_rate {frame_rate} Hz; lower it or raise frame_rate."
        )
    _require_non_negative("spatial_frequency", spatial_frequency)
    if spatial_frequency > 0.5:
        raise StimulusParameterError(
            f"spatial_frequency must be <= 0.5 cycles/pixel (Nyquist), got {spatial_frequency}."
        )
    if not 0 <= contrast <= 1:
        raise StimulusParameterError(f"contrast must lie in [0, 1], got {contrast}.")
    num_frames, height, width = dims[-3:]
    x, y = _pixel_centres(height, width)
    angle = math.radians(orientation)
    spatial_phase = 2 * np.pi * spatial_frequency * (x * math.cos(angle) + y * math.sin(angle)) + math.radians(phase)
    temporal_phase = 2 * np.pi * temporal_frequency * np.arange(num_frames) / frame_rate
    if drifting:
        frames = np.cos(spatial_phase[None] - temporal_phase[:, None, None])
    else:
        frames = np.cos(spatial_phase)[None] * np.cos(temporal_phase)[:, None, None]
    frames = (contrast * frames).astype(np.float32)
    return torch.from_numpy(np.broadcast_to(frames, dims).copy())


def generate_flashes(
    num_flashes: int = 4,
    flash_duration_s: float = 1.0,
    interval_s: float = 2.0,
    polarity: Literal["on", "off", "alternating"] = "alternating",
    channel: int | None = None,
    contrast: float = 1.0,
    num_channels: int = 2,
    height: int = 18,
    width: int = 16,
    frame_rate: float = 30.0,
) -> torch.Tensor:
    """Full-field flashes on a grey background: ``interval, flash, interval, flash, ..., interval``.

    ``polarity`` "on" flashes go to ``+contrast``, "off" to ``-contrast``; "alternating" starts with ON.
    ``channel=None`` flashes every channel (achromatic); an index flashes only that channel (chromatic step).
    Durations are rounded to whole frames.

    Output: float32 tensor ``(C, T, H, W)``, ``T = (num_flashes + 1)·interval + num_flashes·flash`` frames.
    """
    for name, value in (
        ("num_flashes", num_flashes),
        ("num_channels", num_channels),
        ("height", height),
        ("width", width),
    ):
        _require_positive_int(name, value)
    _require_positive("frame_rate", frame_rate)
    flash_frames = round(flash_duration_s * frame_rate)
    interval_frames = round(interval_s * frame_rate)
    if flash_frames < 1:
        raise StimulusParameterError(
            f"flash_duration_s {flash_duration_s} s is shorter than one frame at {frame_rate} Hz."
        )
    _require_non_negative("interval_s", interval_s)
    if polarity not in ("on", "off", "alternating"):
        raise StimulusParameterError(f"polarity must be 'on', 'off' or 'alternating', got {polarity!r}.")
    if channel is not None and not 0 <= channel < num_channels:
        raise StimulusParameterError(f"channel must be None or in [0, {num_channels - 1}], got {channel}.")
    if not 0 <= contrast <= 1:
        raise StimulusParameterError(f"contrast must lie in [0, 1], got {contrast}.")

    period = interval_frames + flash_frames
    trace = np.zeros(num_flashes * period + interval_frames, dtype=np.float32)
    for index in range(num_flashes):
        sign = {"on": 1.0, "off": -1.0}.get(polarity, 1.0 if index % 2 == 0 else -1.0)
        start = interval_frames + index * period
        trace[start : start + flash_frames] = sign * contrast
    movie = np.zeros((num_channels, trace.size, height, width), dtype=np.float32)
    flashed = slice(None) if channel is None else slice(channel, channel + 1)
    movie[flashed] = trace[None, :, None, None]
    return torch.from_numpy(movie)


def generate_white_noise(
    shape: Sequence[int],
    seed: int | np.random.Generator = 0,
    contrast: float = 1.0,
    distribution: Literal["binary", "gaussian"] = "binary",
) -> torch.Tensor:
    """Spatio-temporal white noise, independent per pixel, channel and frame.

    ``distribution="binary"`` draws ``±contrast`` with equal probability; ``"gaussian"`` draws from
    ``N(0, contrast²)``. Uses its own ``numpy.random.Generator`` (seeded by ``seed``); global RNGs are untouched.

    Output: float32 tensor of exactly ``shape`` (``(C, T, H, W)`` or ``(B, C, T, H, W)``).
    """
    dims = _movie_shape(shape)
    _require_non_negative("contrast", contrast)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if distribution == "binary":
        noise = np.where(rng.random(dims) < 0.5, -contrast, contrast).astype(np.float32)
    elif distribution == "gaussian":
        noise = rng.standard_normal(dims, dtype=np.float32) * np.float32(contrast)
    else:
        raise StimulusParameterError(f"distribution must be 'binary' or 'gaussian', got {distribution!r}.")
    return torch.from_numpy(noise)


# --------------------------------------------------------------------------------------------------------------
# Reference-compatible helpers and loaders (numpy, (T, H, W, 2) layout)
# --------------------------------------------------------------------------------------------------------------
def normalize_stimulus(stimulus: np.ndarray) -> np.ndarray:
    """Map 8-bit-style intensities to roughly ``[-1, 1]`` with ``(x - 128) / 128``; returns float32."""
    return ((np.asarray(stimulus, dtype=np.float32) - 128.0) / 128.0).astype(np.float32)


def discretize_triggers(trigger_times: Sequence[float] | np.ndarray, frame_rate: float = 30) -> list[int]:
    """Convert trigger times in seconds to frame indices.

    Rounds to the *nearest* frame (the reference truncates, which shifts triggers that arrive a hair before a
    frame boundary, e.g. ``1.9999 s``, a whole frame early).
    """
    times = np.asarray(trigger_times, dtype=np.float64)
    if times.ndim != 1:
        raise DataShapeError(f"trigger_times must be 1-D (one time per trigger), got shape {times.shape}.")
    if not np.all(np.isfinite(times)):
        raise DataFormatError("trigger_times contains NaN or infinite values; remove or fix those triggers.")
    _require_positive("frame_rate", frame_rate)
    return [int(frame) for frame in np.rint(times * frame_rate)]


def align_stimulus_to_trigger(stimulus: np.ndarray, start_frames: Sequence[int]) -> np.ndarray:
    """Repeat ``stimulus`` so that repetition ``i`` starts exactly at frame ``start_frames[i]``.

    Input: ``stimulus (T, ...)``, one repetition. Gaps before a repetition are filled with zeros (dark).
    If a trigger arrives before the previous repetition has finished (the recording ran faster than the
    stimulus file), the previous repetition is cut at that trigger with a warning, so that every repetition
    still starts at its own trigger (the reference kept appending, shifting all later repetitions).

    Output: ``(start_frames[-1] + T, ...)`` array of the stimulus dtype.
    """
    starts = [int(frame) for frame in start_frames]
    if not starts:
        raise DataFormatError("start_frames is empty; pass at least one trigger frame.")
    if any(frame < 0 for frame in starts) or any(b < a for a, b in itertools.pairwise(starts)):
        raise DataFormatError(f"start_frames must be non-negative and non-decreasing, got {starts}.")
    stimulus = np.asarray(stimulus)
    length = stimulus.shape[0]
    aligned = np.zeros((starts[-1] + length, *stimulus.shape[1:]), dtype=stimulus.dtype)
    for index, start in enumerate(starts):
        end = start + length
        if index + 1 < len(starts) and starts[index + 1] < end:
            warnings.warn(
                f"trigger {index + 1} (frame {starts[index + 1]}) arrives before repetition {index} ends "
                f"(frame {end}); repetition {index} is cut short to keep later repetitions on their triggers.",
                stacklevel=2,
            )
            end = starts[index + 1]
        aligned[start:end] = stimulus[: end - start]
    return aligned


def _finish_reference_stimulus(
    frames: np.ndarray,
    normalize: bool,
    trigger_times: Sequence[float] | np.ndarray | None,
    num_triggers_per_repetition: int,
    frame_rate: float = _REFERENCE_FRAME_RATE,
) -> np.ndarray:
    """Shared tail of the reference loaders: frames ``(T, H, W, C)`` on 0–254 -> ``(T, H, W, 2)`` float32."""
    if frames.ndim != 4 or frames.shape[-1] < 2:
        raise DataShapeError(f"stimulus frames must be (T, H, W, C>=2), got shape {frames.shape}.")
    stimulus = np.asarray(frames[..., :2], dtype=np.float32)
    if trigger_times is not None:
        _require_positive_int("num_triggers_per_repetition", num_triggers_per_repetition)
        start_frames = discretize_triggers(trigger_times, frame_rate)[::num_triggers_per_repetition]
        stimulus = align_stimulus_to_trigger(stimulus, start_frames)
    return normalize_stimulus(stimulus) if normalize else stimulus


def _grey_frames_to_reference_layout(frames: np.ndarray) -> np.ndarray:
    """Achromatic frames ``(T, H, W)`` -> ``(T, H, W, 2)`` (both channels, UV and green, identical)."""
    return np.repeat(frames[..., None], 2, axis=-1)


def load_stimulus(
    file_path: str | Path,
    normalize: bool,
    trigger_times: Sequence[float] | np.ndarray | None,
    num_triggers_per_repetition: int,
    downsample_t_factor: int = 1,
) -> np.ndarray:
    """Load a pre-rendered ``(T, H, W, C)`` uint8/float stimulus (``.npy``, or a reference ``.pickle``).

    Keeps every ``downsample_t_factor``-th frame and the first two channels, optionally aligns repetitions to
    triggers (every ``num_triggers_per_repetition``-th trigger starts one) and normalises.
    Only unpickle files you trust. Output: ``(T, H, W, 2)`` float32.
    """
    path = Path(file_path)
    if not path.is_file():
        raise DataFileNotFoundError(
            f"stimulus file {str(path)!r} does not exist. The chirp and moving bar need no file: use load_chirp() "
            "or load_moving_bar(), which render them."
        )
    _require_positive_int("downsample_t_factor", downsample_t_factor)
    if path.suffix == ".npy":
        frames = np.load(path, allow_pickle=False)
    else:
        with path.open("rb") as handle:
            frames = np.asarray(pickle.load(handle))
    return _finish_reference_stimulus(
        np.asarray(frames)[::downsample_t_factor], normalize, trigger_times, num_triggers_per_repetition
    )


def _reference_chirp(
    resolution: dict[str, Any], normalize: bool, trigger_times: Sequence[float] | np.ndarray | None
) -> np.ndarray:
    frames = _render_chirp(
        resolution["height"], resolution["width"], _REFERENCE_FRAME_RATE, resolution["pixel_size_um"], 1000.0
    )
    return _finish_reference_stimulus(
        _grey_frames_to_reference_layout(frames), normalize, trigger_times, _CHIRP_TRIGGERS_PER_REPETITION
    )


def load_chirp(normalize: bool = True, trigger_times: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """The chirp at 30 Hz on the 18×16 px (50 µm/px) grid, rendered (see :func:`generate_chirp`).

    Output: ``(990, 18, 16, 2)`` float32 on 0–254, or ``(x - 128) / 128`` with ``normalize``; with
    ``trigger_times`` (seconds, two triggers per repetition) the repetitions are placed on their triggers.
    """
    return _reference_chirp(_LOW_RES, normalize, trigger_times)


def load_chirp_30hz_72_64px(
    normalize: bool = True, trigger_times: Sequence[float] | np.ndarray | None = None
) -> np.ndarray:
    """Like :func:`load_chirp` on the 72×64 px (12.5 µm/px) grid. Output: ``(990, 72, 64, 2)`` float32."""
    return _reference_chirp(_HIGH_RES, normalize, trigger_times)


def _reference_moving_bar(
    resolution: dict[str, Any], normalize: bool, trigger_times: Sequence[float] | np.ndarray | None
) -> np.ndarray:
    bars = generate_moving_bar(
        directions=[reference_direction_to_screen_angle(label) for label in REFERENCE_MOVING_BAR_DIRECTIONS],
        frames_per_direction=round(_BAR_SECONDS_PER_DIRECTION * _REFERENCE_FRAME_RATE),
        num_channels=1,
        height=resolution["height"],
        width=resolution["width"],
        pixel_size_um=resolution["pixel_size_um"],
        frame_rate=_REFERENCE_FRAME_RATE,
    ).numpy()
    grey = (bars[:, 0].reshape(-1, *bars.shape[-2:]) + 1.0) * _MID  # (8·T, H, W), contrast -> 0..254
    return _finish_reference_stimulus(
        _grey_frames_to_reference_layout(grey), normalize, trigger_times, _BAR_TRIGGERS_PER_REPETITION
    )


def load_moving_bar(normalize: bool = True, trigger_times: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """The 8-direction moving bar at 30 Hz on the 18×16 px grid, rendered, without the dark lead-in/out.

    Directions in the reference order and labels ``REFERENCE_MOVING_BAR_DIRECTIONS`` (0, 180, 45, 225, 90,
    270, 135, 315; see :func:`reference_direction_to_screen_angle` for where they point), 123 frames each:
    300×1000 µm bright bar, 1000 µm/s. Output: ``(984, 18, 16, 2)`` float32 (0–254, or normalised).
    With ``trigger_times`` (8 triggers per repetition) repetitions are placed on their triggers.
    """
    return _reference_moving_bar(_LOW_RES, normalize, trigger_times)


def load_moving_bar_30hz_72_64px(
    normalize: bool = True, trigger_times: Sequence[float] | np.ndarray | None = None
) -> np.ndarray:
    """Like :func:`load_moving_bar` on the 72×64 px (12.5 µm/px) grid. Output: ``(984, 72, 64, 2)`` float32."""
    return _reference_moving_bar(_HIGH_RES, normalize, trigger_times)


def load_moving_bar_stack(normalize: bool = True, number_of_moving_bars: int = 8) -> np.ndarray:
    """The moving bar split into one block per direction. Output: ``(8, 123, 18, 16, 2)`` float32."""
    stimulus = load_moving_bar(normalize=normalize)
    _require_positive_int("number_of_moving_bars", number_of_moving_bars)
    if stimulus.shape[0] % number_of_moving_bars != 0:
        raise DataShapeError(
            f"the moving bar has {stimulus.shape[0]} frames, not divisible into {number_of_moving_bars} "
            f"equal blocks; use number_of_moving_bars={len(REFERENCE_MOVING_BAR_DIRECTIONS)}."
        )
    return stimulus.reshape(number_of_moving_bars, -1, *stimulus.shape[1:])


def colored_stimulus(
    channel_idx: int,
    stimulus_length: int,
    size_x: int,
    size_y: int,
    pad_front: int = 0,
    pad_end: int = 0,
    num_color_channels: int = 2,
) -> np.ndarray:
    """Full-field step in one colour channel: 1.0 during the stimulus, 0 in the padding and other channels.

    Output: float32 array ``(1, num_color_channels, pad_front + stimulus_length + pad_end, size_x, size_y)``.
    """
    for name, value in (
        ("stimulus_length", stimulus_length),
        ("size_x", size_x),
        ("size_y", size_y),
        ("num_color_channels", num_color_channels),
    ):
        _require_positive_int(name, value)
    if pad_front < 0 or pad_end < 0:
        raise StimulusParameterError(f"pad_front and pad_end must be >= 0, got {pad_front} and {pad_end}.")
    if not 0 <= channel_idx < num_color_channels:
        raise StimulusParameterError(f"channel_idx must be in [0, {num_color_channels - 1}], got {channel_idx}.")
    stimulus = np.zeros((1, num_color_channels, pad_front + stimulus_length + pad_end, size_x, size_y), np.float32)
    stimulus[0, channel_idx, pad_front : pad_front + stimulus_length] = 1.0
    return stimulus
