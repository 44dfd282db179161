"""Probe movies for the LSTA vector-field analysis: a grey period, then one static image per movie.

Layouts: an image library is ``(images, channels, height, width)``; a movie batch is
``(images, channels, time, height, width)``. Differences from the reference:

* The grey period shows the mean luminance of the *images* (per channel), the level a retina adapted to the image
  set would see, instead of the mean of the whole movie array after normalisation.
* Normalisation returns a new array (the reference normalised in place), reads the current ``stim_mean`` /
  ``stim_std`` entries of ``data_info`` as well as the older ``movie_norm_dict``, and accepts per-channel values.
* The model's lag is read from ``number_of_cut_frames()`` when available and otherwise measured without gradients
  on one session (the reference ran all sessions with gradients on, which also raised a warning).
* An empty image folder, or an image smaller than the target size, raises an error naming the folder or file.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError
from openretina.insilico.tuning_analyses.model_runs import call_model, cut_frames_of, frozen_eval, input_shape_of

__all__ = [
    "GREY_OUTPUT_FRAMES",
    "get_model_temporal_padding",
    "load_and_preprocess_images",
    "normalize_movies_array",
    "prepare_movies_dataset",
]

GREY_OUTPUT_FRAMES = 10
"""Grey frames beyond the model's lag: the image appears at output frame 10, as in the reference."""

_PROBE_FRAMES = 100


def load_and_preprocess_images(
    image_dir: str | PathLike[str], target_h: int, target_w: int, n_channels: int
) -> np.ndarray:
    """Read every ``*.png`` of ``image_dir`` (sorted by name) as grey levels, subsample, centre-crop, repeat channels.

    Each image is subsampled by the integer stride ``max(1, int(min(H / target_h, W / target_w)))``, then the
    central ``target_h x target_w`` pixels are kept. Images may differ in size. Output: ``(images, n_channels,
    target_h, target_w)`` float32, grey levels 0..255 (the same in every channel).
    """
    from PIL import Image  # Pillow comes with matplotlib; imported here so analysis imports stay light

    folder = Path(image_dir)
    if not folder.is_dir():
        raise DataFileNotFoundError(f"load_and_preprocess_images: image folder {str(folder)!r} does not exist.")
    files = sorted(folder.glob("*.png"))
    if not files:
        raise DataFileNotFoundError(
            f"load_and_preprocess_images: no *.png file in {str(folder)!r}; put the images there as PNG files."
        )
    images = []
    for file in files:
        with Image.open(file) as opened:
            pixels = np.asarray(opened.convert("L"), dtype=np.float32)
        height, width = pixels.shape
        stride = max(1, int(min(height / target_h, width / target_w)))
        pixels = pixels[::stride, ::stride]
        if pixels.shape[0] < target_h or pixels.shape[1] < target_w:
            raise DataShapeError(
                f"load_and_preprocess_images: image {str(file)!r} is {height}x{width} pixels (height x width), "
                f"smaller than the target {target_h}x{target_w}; remove it or choose a smaller target."
            )
        top = (pixels.shape[0] - target_h) // 2
        left = (pixels.shape[1] - target_w) // 2
        images.append(pixels[top : top + target_h, left : left + target_w])
    return np.repeat(np.stack(images)[:, None], n_channels, axis=1)


def get_model_temporal_padding(
    model: nn.Module, n_channels: int, target_h: int, target_w: int, device: str | torch.device | None = None
) -> int:
    """Frames the model consumes before its first output frame (its lag), e.g. 30 for the Höfling models.

    Uses ``model.number_of_cut_frames()`` when the model has it; otherwise runs the model once, without
    gradients, on zeros ``(1, n_channels, 100, target_h, target_w)`` on ``device`` (default: the model's) and
    returns ``100 - time_out``. Models with several sessions are probed on their first session only.
    """
    cut = cut_frames_of(model)
    if cut is not None:
        return cut
    if device is None:
        parameter = next(iter(model.parameters()), None)
        device = parameter.device if parameter is not None else "cpu"
    keys: Any = getattr(model, "readout_keys", None)
    data_key = keys()[0] if callable(keys) else None
    probe = torch.zeros((1, n_channels, _PROBE_FRAMES, target_h, target_w), device=device)
    with frozen_eval(model), torch.no_grad():
        return _PROBE_FRAMES - int(call_model(model, probe, data_key).shape[1])


def _normalisation(data_info: Mapping[str, Any], session_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of the model's training stimuli, each of shape (1,) or (channels,)."""
    norm_dict = data_info.get("movie_norm_dict")
    if isinstance(norm_dict, Mapping):  # checkpoints before October 2025
        entry = norm_dict.get(session_id, norm_dict.get("default"))
        if not isinstance(entry, Mapping):
            raise DataFormatError(
                f"normalize_movies_array: data_info['movie_norm_dict'] has neither session {session_id!r} nor "
                f"'default' (keys: {sorted(norm_dict)})."
            )
        mean, std = entry["norm_mean"], entry["norm_std"]
    elif "stim_mean" in data_info and "stim_std" in data_info:
        mean, std = data_info["stim_mean"], data_info["stim_std"]
    else:
        raise DataFormatError(
            "normalize_movies_array: the model's data_info has neither 'stim_mean'/'stim_std' nor "
            f"'movie_norm_dict' (keys: {sorted(data_info)}); pass normalize_movies=False and normalise yourself."
        )
    return (
        np.asarray(mean, dtype=np.float32).reshape(-1),
        np.asarray(std, dtype=np.float32).reshape(-1),
    )


def normalize_movies_array(movies: np.ndarray, model: nn.Module, session_id: str, n_channels: int) -> np.ndarray:
    """``(movies - mean) / std`` with the stimulus statistics of the model's training data; a new array.

    Input and output: ``(images, n_channels, time, height, width)``. The statistics come from
    ``model.data_info``: ``stim_mean``/``stim_std``, or ``movie_norm_dict[session_id]`` (or its ``"default"``
    entry) for older checkpoints. Each may be one value or one value per channel.
    """
    array = np.asarray(movies, dtype=np.float32)
    if array.ndim != 5 or array.shape[1] != n_channels:
        raise DataShapeError(
            f"normalize_movies_array: expected movies (images, {n_channels}, time, height, width), got {array.shape}."
        )
    mean, std = _normalisation(getattr(model, "data_info", None) or {}, session_id)
    for name, values in (("mean", mean), ("std", std)):
        if values.size not in (1, n_channels):
            raise DataShapeError(
                f"normalize_movies_array: the stimulus {name} has {values.size} values; expected 1 or {n_channels}."
            )
    shape = (1, -1, 1, 1, 1)
    return ((array - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)


def prepare_movies_dataset(
    model: nn.Module,
    session_id: str,
    n_image_frames: int = 16,
    normalize_movies: bool = True,
    image_library: np.ndarray | None = None,
    image_dir: str | PathLike[str] | None = None,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, int]:
    """One movie per image: ``lag + 10`` grey frames, then the image for ``n_image_frames`` frames.

    Give exactly one of ``image_library`` ``(images, channels, height, width)`` (raw intensities) or ``image_dir``
    (PNG files, see :func:`load_and_preprocess_images`); channels, height and width must match the model's input.
    The grey level is the mean of the images per channel. With ``normalize_movies`` the movies are normalised
    like the model's training stimuli (:func:`normalize_movies_array`). ``device`` is only used to measure the lag
    of models without ``number_of_cut_frames``.

    Returns ``(movies, n_empty_frames)``: ``movies`` ``(images, channels, n_empty_frames + n_image_frames, height,
    width)`` float32, and the number of grey frames, ``lag + 10`` (the image appears at output frame 10).
    """
    if (image_library is None) == (image_dir is None):
        raise ValueError("prepare_movies_dataset: give exactly one of image_library or image_dir.")
    if n_image_frames < 1:
        raise ValueError(f"prepare_movies_dataset: n_image_frames must be >= 1, got {n_image_frames}.")
    channels, height, width = input_shape_of(model)
    if image_dir is not None:
        images = load_and_preprocess_images(image_dir, height, width, channels)
    else:
        images = np.asarray(image_library, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != (channels, height, width):
            raise DataShapeError(
                f"prepare_movies_dataset: image_library has shape {images.shape}; the model expects "
                f"(images, {channels}, {height}, {width})."
            )
    n_empty_frames = get_model_temporal_padding(model, channels, height, width, device) + GREY_OUTPUT_FRAMES
    grey = images.mean(axis=(0, 2, 3))  # (channels,)
    movies = np.empty((len(images), channels, n_empty_frames + n_image_frames, height, width), dtype=np.float32)
    movies[:, :, :n_empty_frames] = grey[None, :, None, None, None]
    movies[:, :, n_empty_frames:] = images[:, :, None]
    if normalize_movies:
        movies = normalize_movies_array(movies, model, session_id, channels)
    return movies, n_empty_frames
