"""Stimulus plots: the rank-1 space-time composition of an MEI (or any stimulus) and un-normalisation.

Compared with the reference: the time axis uses the ``frame_rate`` you pass (seconds) or frame numbers when
you pass none, instead of assuming 30 Hz; the temporal axis limits are symmetric; stimuli of any length work;
there is no Höfling-specific scale bar unless asked for (``scale_bar=(pixels, label)``); and the input is never
modified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from openretina.errors import DataFormatError, DataShapeError
from openretina.plotting.colours import channel_style, to_numpy
from openretina.plotting.kernels import calculate_fft, decompose_kernel, weighted_main_frequency

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_stimulus_composition", "undo_video_normalization"]


def undo_video_normalization(
    video: torch.Tensor | np.ndarray, values_dict: Mapping[str, float] | None = None
) -> torch.Tensor:
    """Screen intensities of a z-scored video: ``x·std_k + mean_k`` for every channel ``k``, rounded.

    ``values_dict`` holds ``channel_{k}_mean`` and ``channel_{k}_std`` (default: the Höfling 18x16 movie
    statistics, ``pre_normalisation_values_18x16``). Input: ``(C, T, H, W)``, not modified.
    Output: int32 tensor of the same shape (the reference's dtype; it swapped mean and std in its video writer).
    """
    if values_dict is None:
        from openretina.data_io.hoefling_2024.constants import pre_normalisation_values_18x16

        values_dict = pre_normalisation_values_18x16
    movie = torch.as_tensor(to_numpy(video))
    if movie.ndim != 4:
        raise DataShapeError(
            f"undo_video_normalization: expected (channels, time, height, width), got {tuple(movie.shape)}."
        )
    restored = torch.empty_like(movie)
    for channel in range(movie.shape[0]):
        keys = (f"channel_{channel}_mean", f"channel_{channel}_std")
        missing = [key for key in keys if key not in values_dict]
        if missing:
            raise DataFormatError(
                f"undo_video_normalization: values_dict lacks {missing} for channel {channel} of {movie.shape[0]}; "
                f"it has {sorted(values_dict)}."
            )
        restored[channel] = movie[channel] * values_dict[keys[1]] + values_dict[keys[0]]
    return torch.round(restored).to(torch.int32)


def plot_stimulus_composition(
    stimulus: torch.Tensor | np.ndarray,
    temporal_trace_ax: Axes,
    freq_ax: Axes | None,
    spatial_ax: Axes,
    lowpass_cutoff: float = 10.0,
    highlight_x_list: Sequence[tuple[int, int]] | None = None,
    *,
    frame_rate: float | None = None,
    scale_bar: tuple[float, str] | None = None,
) -> None:
    """Draw each channel's rank-1 decomposition (:func:`~openretina.plotting.kernels.decompose_kernel`).

    Input: ``stimulus`` ``(C, T, H, W)`` with C = 1..3 (tensor or array). Panels:

    * ``spatial_ax``: the channels' spatial components (each max ``|value| = 1``) side by side, ``RdBu_r``,
      limits ±1, a black frame around each channel; ``scale_bar=(length_px, label)`` adds a bar.
    * ``temporal_trace_ax``: one temporal component per channel against time in seconds (with ``frame_rate``,
      Hz) or in frames (without); ``highlight_x_list`` shades ``(first, last)`` frame ranges.
    * ``freq_ax`` (optional): each trace's magnitude spectrum after a low-pass at ``lowpass_cutoff`` Hz (only
      with ``frame_rate``; without it frequencies are in cycles per frame and nothing is filtered), titled with
      the power-weighted mean frequency per channel.
    """
    from matplotlib.patches import Rectangle

    movie = to_numpy(stimulus)
    if movie.ndim != 4:
        raise DataShapeError(
            f"plot_stimulus_composition: expected one stimulus (channels, time, height, width), got {movie.shape}; "
            "index the batch first, e.g. stimulus[0]."
        )
    channels, frames, height, width = movie.shape
    colours, names = channel_style(channels)
    parts = [decompose_kernel(movie[channel]) for channel in range(channels)]
    joined_names = "/".join(names)

    spatial = np.concatenate([spatial for _, spatial, _ in parts], axis=1)
    spatial_ax.imshow(spatial, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    for channel in range(channels):
        spatial_ax.add_patch(
            Rectangle((channel * width - 0.5, -0.5), width, height, fill=False, edgecolor="black", linewidth=2)
        )
    if scale_bar is not None:
        length, label = scale_bar
        spatial_ax.plot([0.5, 0.5 + length], [height - 1.5, height - 1.5], color="black", linewidth=3)
        spatial_ax.text(0.5, height - 2.0, label, fontsize=8)
    spatial_ax.set_title(f"Spatial Component ({joined_names})")
    spatial_ax.axis("off")

    time = np.arange(frames) / frame_rate if frame_rate is not None else np.arange(frames, dtype=np.float64)
    largest = max(float(np.abs(temporal).max()) for temporal, _, _ in parts) or 1.0
    for (temporal, _, _), colour, name in zip(parts, colours, names):
        temporal_trace_ax.plot(time, temporal, color=colour, label=name)
    temporal_trace_ax.set_ylim(-1.1 * largest, 1.1 * largest)
    temporal_trace_ax.set_xlabel("Time [s]" if frame_rate is not None else "Time [frames]")
    temporal_trace_ax.set_title("Temporal Trace of the Stimulus")
    for first, last in highlight_x_list or ():
        temporal_trace_ax.axvspan(time[first], time[min(last, frames - 1)], color="black", alpha=0.1)

    if freq_ax is not None:
        rate = frame_rate if frame_rate is not None else 1.0
        cutoff = lowpass_cutoff if frame_rate is not None else None
        main_frequencies = []
        for (temporal, _, _), colour in zip(parts, colours):
            freqs, magnitudes = calculate_fft(temporal, rate, cutoff)
            freq_ax.plot(freqs, magnitudes, color=colour)
            main_frequencies.append(weighted_main_frequency(freqs, magnitudes))
        unit = "Hz" if frame_rate is not None else "cycles/frame"
        freq_ax.set_xlim(0, (cutoff + 1) if cutoff is not None and cutoff < rate / 2 else rate / 2)
        freq_ax.set_xlabel(f"Frequency [{unit}]")
        values = "/".join(f"{value:.1f}" if frame_rate is not None else f"{value:.3f}" for value in main_frequencies)
        freq_ax.set_title(f"Weighted Frequency: {values} {unit} ({joined_names})")
