"""Writing stimuli and RGB frame arrays to mp4 and GIF files.

Colours and normalisation follow :mod:`openretina.plotting.colours` (global range, documented channel order).
GIFs need only Pillow (installed with matplotlib). mp4 needs the optional ``video`` extra
(``pip install 'openretina[video]'``: imageio and imageio-ffmpeg, which bundles an ffmpeg binary); without it
the writers raise an ``ImportError`` that says so.

Frame rates: ``fps`` if given, else the frame rate in ``model.data_info`` when a model is passed (see
:func:`~openretina.insilico.tuning_analyses.model_runs.frame_rate_of`), else the reference's defaults (5 frames
per second for :func:`save_stimulus_to_mp4_video`, slowed down for viewing; 30 for :func:`numpy_to_mp4_video`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from openretina.errors import DataShapeError
from openretina.plotting.colours import stimulus_to_rgb
from openretina.plotting.stimulus import undo_video_normalization

__all__ = [
    "numpy_to_mp4_video",
    "play_stimulus",
    "prepare_video_for_display",
    "save_stimulus_to_gif",
    "save_stimulus_to_mp4_video",
    "stitch_videos",
    "write_frames",
]

VIDEO_EXTRA_HINT = (
    "Writing mp4 files needs imageio and imageio-ffmpeg: pip install 'openretina[video]' "
    "(or pip install imageio imageio-ffmpeg). GIF export (save_stimulus_to_gif) works without them."
)


def _frame_rate(fps: float | None, model: nn.Module | None, default: float) -> float:
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}.")
        return float(fps)
    if model is not None:
        from openretina.insilico.tuning_analyses.model_runs import frame_rate_of

        return frame_rate_of(model)
    return default


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise DataShapeError(f"expected uint8 RGB frames (time, height, width, 3), got {frames.dtype} {frames.shape}.")
    return frames


def _even_sized(frames: np.ndarray) -> np.ndarray:
    """Repeat the last row/column where a size is odd: H.264 in yuv420p needs even sizes (no pixel is lost)."""
    pad = ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0))
    return np.pad(frames, pad, mode="edge") if any(p[1] for p in pad) else frames


def write_frames(frames: np.ndarray, path: str | PathLike[str], fps: float) -> Path:
    """Write uint8 RGB frames ``(T, H, W, 3)`` to ``path``; the suffix picks the format (".gif" or ".mp4").

    GIF frames keep their exact colours when a movie has at most 256 distinct colours (stimuli mapped by
    :func:`stimulus_to_rgb` from few values do); richer movies are quantised by Pillow. GIF timing is in whole
    milliseconds per frame.
    """
    target = Path(path)
    _check_frames(frames)
    if target.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(frame, mode="RGB") for frame in frames]
        paletted = [
            image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) for image in images
        ]
        paletted[0].save(
            target, save_all=True, append_images=paletted[1:], duration=round(1000 / fps), loop=0, disposal=1
        )
        return target
    if target.suffix.lower() != ".mp4":
        raise ValueError(f"unsupported video file {str(target)!r}: use a '.mp4' or '.gif' suffix.")
    try:
        import imageio.v2 as imageio
    except ImportError as error:
        raise ImportError(VIDEO_EXTRA_HINT) from error
    writer: Any = imageio.get_writer(target, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1)
    try:
        for frame in _even_sized(frames):
            writer.append_data(frame)
    finally:
        writer.close()
    return target


def _stimulus_frames(
    stimulus: torch.Tensor | np.ndarray,
    start_at_frame: int,
    value_range: Sequence[float] | None,
    normalization_values: Mapping[str, float] | None,
) -> np.ndarray:
    if normalization_values is not None:
        stimulus = undo_video_normalization(stimulus, normalization_values)
        value_range = (0.0, 255.0) if value_range is None else value_range
    frames = stimulus_to_rgb(stimulus, value_range)
    return frames[start_at_frame:]


def save_stimulus_to_mp4_video(
    stimulus: torch.Tensor | np.ndarray,
    filepath: str | PathLike[str],
    fps: float | None = None,
    start_at_frame: int = 0,
    apply_undo_video_normalization: bool = False,
    *,
    model: nn.Module | None = None,
    value_range: Sequence[float] | None = None,
    normalization_values: Mapping[str, float] | None = None,
) -> Path:
    """Write a stimulus ``(C, T, H, W)`` (tensor or array, C = 1..3) to an mp4 file; the input is not modified.

    ``apply_undo_video_normalization`` maps z-scored values back to screen intensities (``x·std + mean`` per
    channel, with ``normalization_values``, default the Höfling 18x16 statistics) and shows 0..255 as black..full.
    Otherwise the movie's global min..max (or ``value_range``) is shown. Frames before ``start_at_frame`` are
    skipped. Returns the path written.
    """
    return _save_stimulus(
        "save_stimulus_to_mp4_video", ".mp4", stimulus, filepath, fps, start_at_frame,
        apply_undo_video_normalization, model, value_range, normalization_values,
    )  # fmt: skip


def save_stimulus_to_gif(
    stimulus: torch.Tensor | np.ndarray,
    filepath: str | PathLike[str],
    fps: float | None = None,
    start_at_frame: int = 0,
    apply_undo_video_normalization: bool = False,
    *,
    model: nn.Module | None = None,
    value_range: Sequence[float] | None = None,
    normalization_values: Mapping[str, float] | None = None,
) -> Path:
    """Like :func:`save_stimulus_to_mp4_video` but writes an animated GIF (needs no optional packages)."""
    return _save_stimulus(
        "save_stimulus_to_gif", ".gif", stimulus, filepath, fps, start_at_frame,
        apply_undo_video_normalization, model, value_range, normalization_values,
    )  # fmt: skip


def _save_stimulus(
    caller: str,
    suffix: str,
    stimulus: torch.Tensor | np.ndarray,
    filepath: str | PathLike[str],
    fps: float | None,
    start_at_frame: int,
    apply_undo_video_normalization: bool,
    model: nn.Module | None,
    value_range: Sequence[float] | None,
    normalization_values: Mapping[str, float] | None,
) -> Path:
    """The body shared by the mp4 and GIF writers: check the suffix, map values to colours, write the frames."""
    if Path(filepath).suffix.lower() != suffix:
        raise ValueError(f"{caller} writes {suffix} files; {str(filepath)!r} does not end in {suffix!r}.")
    values = _undo_values(apply_undo_video_normalization, normalization_values)
    frames = _stimulus_frames(stimulus, start_at_frame, value_range, values)
    return write_frames(frames, filepath, _frame_rate(fps, model, 5.0))


def _undo_values(apply: bool, values: Mapping[str, float] | None) -> Mapping[str, float] | None:
    if not apply:
        return None
    if values is not None:
        return values
    from openretina.data_io.hoefling_2024.constants import pre_normalisation_values_18x16

    return pre_normalisation_values_18x16


def prepare_video_for_display(video_array: np.ndarray, layout: Literal["CTHW", "THWC"] | None = None) -> np.ndarray:
    """uint8 RGB frames ``(T, H, W, 3)`` with even height and width, from ``(C, T, H, W)`` or ``(T, H, W, C)``.

    ``layout`` names the input layout; None guesses it the reference's way (channels first if axis 0 is the
    smallest), which is ambiguous for very short movies, so pass it when you know it. Float input is
    min-max normalised globally; uint8 is kept. Odd sizes are cropped by one pixel, as browsers need even sizes.
    """
    array = np.asarray(video_array)
    if array.ndim != 4:
        raise DataShapeError(f"expected a 4-D video, got shape {array.shape}.")
    channels_first = layout == "CTHW" or (layout is None and int(np.argmin(array.shape)) == 0)
    frames_last = array if not channels_first else np.moveaxis(array, 0, -1)
    if array.dtype == np.uint8:
        movie = np.moveaxis(frames_last, -1, 0).astype(np.float64)
        rgb = stimulus_to_rgb(movie, value_range=(0, 255))
    else:
        rgb = stimulus_to_rgb(np.moveaxis(frames_last, -1, 0))
    height, width = rgb.shape[1] - rgb.shape[1] % 2, rgb.shape[2] - rgb.shape[2] % 2
    return rgb[:, :height, :width]


def numpy_to_mp4_video(
    video_array: np.ndarray,
    save_path: str | PathLike[str] | None = None,
    fps: float | None = None,
    display_video: bool = True,
    display_width: int = 640,
    display_height: int = 360,
    *,
    model: nn.Module | None = None,
) -> Path | None:
    """Write a video (see :func:`prepare_video_for_display`) to ``save_path`` and/or show it in a notebook.

    Display needs IPython; without ``save_path`` a temporary file is used for display and deleted. Returns the
    saved path (None when only displayed).
    """
    if save_path is None and not display_video:
        raise ValueError("numpy_to_mp4_video: give a save_path, set display_video=True, or both.")
    frames = prepare_video_for_display(video_array)
    rate = _frame_rate(fps, model, 30.0)
    if save_path is not None:
        written = write_frames(frames, save_path, rate)
        if display_video:
            _display(written, display_width, display_height)
        return written
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        _display(write_frames(frames, Path(folder) / "video.mp4", rate), display_width, display_height)
    return None


def _display(path: Path, width: int, height: int) -> None:
    from IPython.display import Video, display

    display(Video(str(path), embed=True, width=width, height=height))


def stitch_videos(
    video1: np.ndarray,
    video2: np.ndarray,
    separator_width: int = 50,
    resize_method: Literal["linear", "nearest", "cubic"] = "linear",
) -> np.ndarray:
    """Two uint8 RGB videos ``(T, H, W, 3)`` side by side with a white separator; the shorter one is resized
    (aspect ratio kept) to the taller height. Output: uint8 ``(T, H, W1' + separator + W2', 3)``."""
    for name, video in (("video1", video1), ("video2", video2)):
        if video.ndim != 4 or video.shape[-1] != 3:
            raise DataShapeError(f"{name} must be (time, height, width, 3), got shape {video.shape}.")
    if video1.shape[0] != video2.shape[0]:
        raise DataShapeError(f"videos differ in length: {video1.shape[0]} vs {video2.shape[0]} frames.")
    height = max(video1.shape[1], video2.shape[1])
    mode = {"linear": "bilinear", "nearest": "nearest", "cubic": "bicubic"}[resize_method]

    def resized(video: np.ndarray) -> np.ndarray:
        if video.shape[1] == height:
            return video.astype(np.uint8)
        width = round(video.shape[2] * height / video.shape[1])
        tensor = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float()
        scaled = torch.nn.functional.interpolate(tensor, size=(height, width), mode=mode)
        return scaled.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()

    separator = np.full((video1.shape[0], height, separator_width, 3), 255, dtype=np.uint8)
    return np.concatenate([resized(video1), separator, resized(video2)], axis=2)


def play_stimulus(
    video: torch.Tensor | np.ndarray,
    normalise: bool = True,
    fps: float | None = None,
    *,
    model: nn.Module | None = None,
) -> Any:
    """A notebook animation of a stimulus ``(C, T, H, W)`` (colours as in :mod:`openretina.plotting.colours`).

    ``normalise`` shows the movie's global min..max; otherwise values are taken as already in ``[0, 1]``.
    Returns ``IPython.display.HTML`` when IPython is installed, else the HTML string. The figure is closed.
    """
    from matplotlib import animation

    from openretina.plotting.figures import pyplot

    frames = stimulus_to_rgb(video, None if normalise else (0.0, 1.0))
    plt = pyplot()
    fig, ax = plt.subplots()
    image = ax.imshow(frames[0])
    ax.axis("off")

    def show(index: int) -> list[Any]:
        image.set_data(frames[index])
        return [image]

    interval = 1000 / _frame_rate(fps, model, 20.0)
    html = animation.FuncAnimation(fig, show, frames=len(frames), interval=interval, blit=True).to_jshtml()
    plt.close(fig)
    try:
        from IPython.display import HTML
    except ImportError:
        return html
    return HTML(html)
