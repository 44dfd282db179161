"""Chunked test sets: every chunk is cropped by its own lag, so predictions line up with the right frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openretina.data_io.base_dataloader import get_movie_dataloader
from openretina.errors import DataFormatError, DataShapeError
from openretina.eval.chunked import predict_chunks, predict_test_loader
from openretina.eval.metrics import correlation_numpy


class EchoModel(torch.nn.Module):
    """Predicts neuron n at output frame j as (n + 1) * pixel (0, 0) of channel 0 at input frame j + lag.

    Input: (batch, channels, time, height, width). Output: (batch, time - lag, neurons).
    """

    def __init__(self, lag: int, num_neurons: int = 2) -> None:
        super().__init__()
        self.lag = lag
        self.scale = torch.nn.Parameter(torch.arange(1.0, num_neurons + 1.0))

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        return x[:, 0, self.lag :, 0, 0, None] * self.scale


def ramp_movie(num_frames: int) -> np.ndarray:
    movie = np.zeros((1, num_frames, 2, 2), dtype=np.float32)
    movie[0, :, 0, 0] = np.sin(np.arange(num_frames) * 0.7) + np.arange(num_frames) * 0.01
    return movie


def test_each_chunk_is_aligned_with_its_own_frames() -> None:
    movie = ramp_movie(30)
    aligned = predict_chunks(EchoModel(lag=3), movie, "s", starts=[0, 10, 20], chunk_size=10)
    expected_frames = np.concatenate([np.arange(3, 10), np.arange(13, 20), np.arange(23, 30)])
    np.testing.assert_array_equal(aligned.frames, expected_frames)
    np.testing.assert_allclose(aligned.predictions[:, 0], movie[0, expected_frames, 0, 0])
    np.testing.assert_allclose(aligned.predictions[:, 1], 2 * movie[0, expected_frames, 0, 0])
    assert aligned.lags == (3, 3, 3) and aligned.lag == 3


def test_chunked_correlation_is_exact_where_a_global_lag_is_not() -> None:
    movie = ramp_movie(30)
    responses = movie[0, :, 0, 0][:, None] * np.array([1.0, 2.0])  # (T, N): what the echo model predicts
    aligned = predict_chunks(EchoModel(lag=3), movie, "s", starts=[0, 10, 20], chunk_size=10)
    ours = correlation_numpy(responses[aligned.frames], aligned.predictions, axis=0)
    np.testing.assert_allclose(ours, 1.0, atol=1e-6)
    # The reference's way: concatenate the chunk outputs and crop the responses once by T - T_out.
    global_lag = responses.shape[0] - aligned.predictions.shape[0]
    reference = correlation_numpy(responses[global_lag:], aligned.predictions, axis=0)
    assert (reference < 0.9).all()


def test_overlapping_chunks_keep_one_prediction_per_frame() -> None:
    movie = ramp_movie(25)
    aligned = predict_chunks(EchoModel(lag=2), movie, "s", starts=[0, 10, 15], chunk_size=10)
    np.testing.assert_array_equal(aligned.frames, np.concatenate([np.arange(2, 10), np.arange(12, 25)]))
    np.testing.assert_allclose(aligned.predictions[:, 0], movie[0, aligned.frames, 0, 0])


def test_short_last_chunk_and_invalid_starts() -> None:
    movie = ramp_movie(24)
    aligned = predict_chunks(EchoModel(lag=2), movie, "s", starts=[0, 10, 20], chunk_size=10)
    assert aligned.frames[-1] == 23 and len(aligned.frames) == 8 + 8 + 2
    with pytest.raises(DataFormatError):
        predict_chunks(EchoModel(lag=2), movie, "s", starts=[30], chunk_size=10)
    with pytest.raises(DataShapeError):
        predict_chunks(EchoModel(lag=2), movie[0], "s", starts=[0], chunk_size=10)


def test_predict_test_loader_uses_every_chunk_of_the_loader() -> None:
    movie = ramp_movie(40)
    responses = {"avg": np.repeat(movie[0, :, 0, 0][:, None], 2, axis=1), "by_trial": None}
    loader = get_movie_dataloader(
        movie, responses, split="test", scene_length=10, chunk_size=10, batch_size=3, allow_over_boundaries=False
    )
    aligned = predict_test_loader(EchoModel(lag=4), loader, "s")
    expected = np.concatenate([np.arange(s + 4, s + 10) for s in range(0, 40, 10)])
    np.testing.assert_array_equal(aligned.frames, expected)  # 4 chunks, although batch_size=3 with drop_last
    np.testing.assert_allclose(aligned.predictions[:, 0], movie[0, expected, 0, 0])
