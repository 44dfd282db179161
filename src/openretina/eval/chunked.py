"""Model predictions of a test movie served in several chunks, aligned frame by frame with the recorded responses.

A temporal model consumes ``lag`` frames of history before its first prediction, so a chunk of ``L`` frames starting
at frame ``s`` yields predictions for frames ``s + lag .. s + L - 1``. Each chunk is cropped by *its own* lag and
the predicted frame indices are kept, so the responses are indexed with exactly the frames that were predicted.
(The reference concatenated the chunks and cropped once with a single global lag, which misaligns every chunk
after the first when the test movie is split.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from openretina.errors import DataFormatError, DataShapeError

__all__ = ["AlignedPrediction", "predict_chunks", "predict_test_loader"]

# Chunks of equal length are run through the model this many at a time.
_CHUNKS_PER_BATCH = 16


@dataclass(frozen=True)
class AlignedPrediction:
    """Predictions of one session's test movie and the movie frames they belong to.

    Attributes:
        predictions: ``(T_pred, N)`` model responses, one row per distinct predicted frame, in frame order.
        frames: ``(T_pred,)`` sorted indices of those frames in the test movie.
        lags: frames of history each chunk consumed before its first prediction (one entry per chunk).
    """

    predictions: np.ndarray
    frames: np.ndarray
    lags: tuple[int, ...]

    @property
    def lag(self) -> int:
        """The lag shared by all chunks (models with a fixed temporal receptive field have exactly one)."""
        if len(set(self.lags)) > 1:
            raise DataShapeError(f"chunks have different lags {sorted(set(self.lags))}; use .lags instead.")
        return self.lags[0]


def _run_model(model: torch.nn.Module, inputs: torch.Tensor, data_key: str) -> np.ndarray:
    device = next(model.parameters()).device
    return model(inputs.to(device), data_key=data_key).detach().float().cpu().numpy()


@torch.no_grad()
def predict_chunks(
    model: torch.nn.Module,
    movie: np.ndarray | torch.Tensor,
    data_key: str,
    starts: Sequence[int],
    chunk_size: int,
) -> AlignedPrediction:
    """Run ``model`` on the chunks ``movie[:, s : s + chunk_size]`` and align each output with its frames.

    Input: ``movie`` ``(C, T, H, W)``; the model maps ``(B, C, L, H, W) -> (B, L_out, N)``. Frames predicted by
    more than one (overlapping) chunk keep the prediction of the first chunk that covers them.
    """
    movie_tensor = torch.as_tensor(np.asarray(movie) if not isinstance(movie, torch.Tensor) else movie).float()
    if movie_tensor.ndim != 4:
        raise DataShapeError(f"movie must be (channels, time, height, width), got shape {tuple(movie_tensor.shape)}.")
    num_frames = movie_tensor.shape[1]
    windows = [(int(s), min(int(s) + chunk_size, num_frames)) for s in starts]
    if not windows or any(not 0 <= s < num_frames for s, _ in windows):
        raise DataFormatError(f"chunk starts {list(starts)} must be non-empty and lie in [0, {num_frames}).")
    outputs: dict[tuple[int, int], np.ndarray] = {}
    by_length: dict[int, list[tuple[int, int]]] = {}
    for window in windows:
        by_length.setdefault(window[1] - window[0], []).append(window)
    for group in by_length.values():
        for first in range(0, len(group), _CHUNKS_PER_BATCH):
            batch = group[first : first + _CHUNKS_PER_BATCH]
            inputs = torch.stack([movie_tensor[:, s:e] for s, e in batch])
            for window, output in zip(batch, _run_model(model, inputs, data_key), strict=True):
                outputs[window] = output
    frame_lists, prediction_lists, lags = [], [], []
    for start, end in windows:
        output = outputs[(start, end)]
        lag = (end - start) - output.shape[0]
        if lag < 0:
            raise DataShapeError(f"the model returned {output.shape[0]} frames for a chunk of {end - start} frames.")
        lags.append(lag)
        frame_lists.append(np.arange(start + lag, end))
        prediction_lists.append(output)
    frames = np.concatenate(frame_lists)
    predictions = np.concatenate(prediction_lists)
    unique_frames, first_index = np.unique(frames, return_index=True)  # sorted, first occurrence of each
    return AlignedPrediction(predictions=predictions[first_index], frames=unique_frames, lags=tuple(lags))


def predict_test_loader(model: torch.nn.Module, loader: DataLoader, data_key: str) -> AlignedPrediction:
    """Predictions for every chunk a test DataLoader of :func:`get_movie_dataloader` serves, with their frames.

    The chunks are read from the loader's sampler (start frames) and dataset (``chunk_size``); batching and
    ``drop_last`` of the loader play no part, so every chunk is evaluated exactly once.
    """
    dataset = loader.dataset
    # Datasets whose items are numbered chunks (not start frames) say where each chunk starts themselves.
    starts = getattr(dataset, "chunk_starts", None)
    if starts is None:
        starts = getattr(loader.sampler, "indices", None)
    chunk_size = getattr(dataset, "chunk_size", None)
    if starts is None or chunk_size is None:
        raise DataFormatError(
            f"session {data_key!r}: the test loader must come from get_movie_dataloader (a MovieSampler with "
            f"`indices` and a MovieDataSet with `chunk_size`); got {type(loader.sampler).__name__} / "
            f"{type(dataset).__name__}."
        )
    movie = dataset[:].inputs
    return predict_chunks(model, movie, data_key, starts, int(chunk_size))
