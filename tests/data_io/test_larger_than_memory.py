"""Training on a memory-mapped movie 4x larger than an anonymous-memory budget.

A ~400 MB ``.npy`` movie and ~120 MB of responses (neuron-major, as files store them) are written chunk by chunk,
opened with ``mmap_mode="r"`` and served by the generic dataloaders. File-backed pages do not count towards
``RssAnon``; a copy of the movie or of the responses would.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from openretina.data_io import _arrays
from openretina.data_io._memory import PeakRssAnon
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit, compute_data_info
from openretina.data_io.base_dataloader import multiple_movies_dataloaders
from openretina.errors import NonFiniteDataError

BUDGET_BYTES = 100 * 1024**2
CHANNELS, HEIGHT, WIDTH = 2, 18, 16
FRAME_BYTES = CHANNELS * HEIGHT * WIDTH * 4
CLIP = 100
N_FRAMES = (4 * BUDGET_BYTES // FRAME_BYTES) // CLIP * CLIP  # ~400 MB of float32 frames
N_NEURONS = 170  # ~120 MB of responses: one copy of them alone exceeds the budget


def _write_movie(path: Path, n_frames: int, frames_per_chunk: int = 20_000) -> None:
    """Write a (C, T, H, W) float32 .npy file whose pixels equal their frame index, without holding it in RAM."""
    movie = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(CHANNELS, n_frames, HEIGHT, WIDTH))
    for start in range(0, n_frames, frames_per_chunk):
        stop = min(start + frames_per_chunk, n_frames)
        movie[:, start:stop] = np.arange(start, stop, dtype=np.float32)[None, :, None, None]
    movie.flush()
    del movie


def _write_responses(path: Path, n_frames: int, frames_per_chunk: int = 20_000) -> None:
    """Write (N, T) float32 responses equal to their frame index, without holding them in RAM."""
    responses = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N_NEURONS, n_frames))
    for start in range(0, n_frames, frames_per_chunk):
        stop = min(start + frames_per_chunk, n_frames)
        responses[:, start:stop] = np.arange(start, stop, dtype=np.float32)[None, :]
    responses.flush()
    del responses


@pytest.mark.slow
def test_epoch_over_memmap_movie_stays_under_budget(tmp_path: Path) -> None:
    path = tmp_path / "movie.npy"
    _write_movie(path, N_FRAMES)
    _write_responses(tmp_path / "responses.npy", N_FRAMES)
    assert path.stat().st_size >= 4 * BUDGET_BYTES * 0.99
    rng = np.random.default_rng(0)
    responses = ResponsesTrainTestSplit(
        train=np.load(tmp_path / "responses.npy", mmap_mode="r"),
        test=rng.random((N_NEURONS, 100), dtype=np.float32),
    )
    test_movie = rng.random((CHANNELS, 100, HEIGHT, WIDTH), dtype=np.float32)
    gc.collect()

    with PeakRssAnon() as memory:
        movies = MoviesTrainTestSplit(np.load(path, mmap_mode="r"), test=test_movie, norm_mean=0.0, norm_std=1.0)
        data_info = compute_data_info({"s": responses}, {"s": movies})
        loaders = multiple_movies_dataloaders(
            {"s": responses}, {"s": movies}, train_chunk_size=50, batch_size=64, clip_length=CLIP, num_val_clips=50
        )
        n_train_frames = n_val_frames = 0
        for batch in loaders["train"]["s"]:
            # Inputs are read from the right frames: pixel value == frame index == response value.
            assert (batch.inputs[:, 0, :, 0, 0] == batch.targets[:, :, 0]).all()
            n_train_frames += batch.inputs.shape[0] * batch.inputs.shape[2]
            del batch  # hold one batch at a time, as a training loop does
        for batch in loaders["validation"]["s"]:
            assert (batch.inputs[:, 1, :, -1, -1] == batch.targets[:, :, 3]).all()
            n_val_frames += batch.inputs.shape[0] * batch.inputs.shape[2]
            del batch

    n_clips = N_FRAMES // CLIP
    assert n_val_frames == 50 * CLIP
    assert n_train_frames >= ((n_clips - 50) * CLIP // 50 // 64) * 64 * 50  # every full training batch
    assert data_info["input_shape"] == (CHANNELS, HEIGHT, WIDTH)
    assert memory.growth < BUDGET_BYTES, f"RssAnon grew by {memory.growth / 2**20:.1f} MB (budget 100 MB)"


def test_chunked_finiteness_check_finds_late_nan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_arrays, "CHUNK_BYTES", 4 * CHANNELS * HEIGHT * WIDTH * 7)  # 7 frames per chunk
    path = tmp_path / "movie.npy"
    _write_movie(path, 100, frames_per_chunk=30)
    movie = np.load(path, mmap_mode="r+")
    movie[1, 64, 3, 2] = np.nan
    movie[0, 90, 0, 0] = np.inf
    movie.flush()
    with pytest.raises(NonFiniteDataError, match=r"2 non-finite .*\(1 NaN, 1 \+inf, 0 -inf\); first at index \(0, 90"):
        MoviesTrainTestSplit(train=np.load(path, mmap_mode="r"), test=np.zeros((CHANNELS, 5, HEIGHT, WIDTH)))
