"""Mapping model stimuli to displayable RGB, one convention for every plot, animation and video file.

Channel order (the model's input channels, ``(C, T, H, W)``):

* 1 channel: grey (R = G = B).
* 2 channels (Höfling green/UV): channel 0 -> green, channel 1 -> red and blue, so UV shows as purple and
  equal green and UV as white. The reference's mp4 writer showed UV as red and its notebooks as purple;
  here every output uses purple.
* 3 channels: RGB in channel order (the reference's mp4 writer swapped red and blue).

Normalisation is *global*: one value range for the whole movie and all channels, never per frame, so
brightness and colour balance stay comparable across frames. The default range is the movie's min..max; pass
``value_range`` to fix it (e.g. ``(-1, 1)`` for contrast stimuli, so 0 is mid grey in every movie). A constant
movie becomes mid grey instead of dividing by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from openretina.errors import DataShapeError, NonFiniteDataError

__all__ = ["CHANNEL_STYLES", "ColorMapper", "channel_style", "stimulus_to_rgb", "to_numpy"]

# Line colours and names used by the plots, by channel count.
CHANNEL_STYLES: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    1: (("black",), ("Grey",)),
    2: (("darkgreen", "darkviolet"), ("Green", "UV")),
    3: (("red", "green", "blue"), ("Red", "Green", "Blue")),
}

# Rows: output R, G, B; columns: input channels.
_CHANNEL_TO_RGB: dict[int, np.ndarray] = {
    1: np.array([[1.0], [1.0], [1.0]]),
    2: np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]),
    3: np.eye(3),
}


def to_numpy(array: torch.Tensor | np.ndarray) -> np.ndarray:
    """A float64 numpy copy of a tensor (detached, on the CPU) or array; the caller's data is never changed."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().double().numpy()
    return np.array(array, dtype=np.float64)


def channel_style(num_channels: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(line colours, channel names)`` for a stimulus with 1, 2 or 3 channels."""
    if num_channels not in CHANNEL_STYLES:
        raise DataShapeError(f"plots support stimuli with 1, 2 or 3 channels, got {num_channels}.")
    return CHANNEL_STYLES[num_channels]


def stimulus_to_rgb(stimulus: torch.Tensor | np.ndarray, value_range: Sequence[float] | None = None) -> np.ndarray:
    """RGB frames of a stimulus, with the channel mapping and global normalisation of the module docs.

    Input: ``(C, T, H, W)`` with ``C`` in 1..3 (tensor or array; not modified). Values outside
    ``value_range`` are clipped. Output: uint8 ``(T, H, W, 3)``.
    """
    movie = to_numpy(stimulus)
    if movie.ndim != 4:
        raise DataShapeError(f"expected a stimulus (channels, time, height, width), got shape {movie.shape}.")
    channels = movie.shape[0]
    if channels not in _CHANNEL_TO_RGB:
        raise DataShapeError(f"videos support stimuli with 1, 2 or 3 channels, got {channels} (shape {movie.shape}).")
    if not np.isfinite(movie).all():
        raise NonFiniteDataError("the stimulus contains NaN or infinite values; it cannot be shown as a video.")
    low, high = (movie.min(), movie.max()) if value_range is None else (float(value_range[0]), float(value_range[1]))
    if high < low:
        raise ValueError(f"value_range must be (low, high) with low <= high, got {value_range}.")
    scaled = np.full_like(movie, 0.5) if high == low else np.clip((movie - low) / (high - low), 0.0, 1.0)
    rgb = np.einsum("rc,cthw->thwr", _CHANNEL_TO_RGB[channels], scaled)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


class ColorMapper:
    """Colours from a matplotlib colormap for numbers in ``[vmin, vmax]`` (e.g. one colour per condition)."""

    def __init__(self, cmap_name: str, vmin: float = 0, vmax: float = 1) -> None:
        import matplotlib

        self.cmap: Any = matplotlib.colormaps[cmap_name]
        self.norm = matplotlib.colors.Normalize(vmin=vmin, vmax=vmax)

    def get_color(self, number: float) -> tuple[float, float, float, float]:
        """RGBA of the colormap at ``number`` (normalised to ``[vmin, vmax]``)."""
        return tuple(self.cmap(self.norm(number)))
