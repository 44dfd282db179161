"""Stimulus side of the Sridhar et al. 2025 dataset.

The movies are rendered inside the dataloaders from images and fixations, so the data-io stage only needs
movies with the right *shapes* (for shape checks and ``data_info``). The reference allocated full-size zero
arrays for that (gigabytes of zeros); :func:`build_movies_from_responses` returns zero-stride read-only views of a
single zero instead, which cost no memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from openretina.data_io.base import MoviesTrainTestSplit, error_context
from openretina.data_io.sridhar_2025.responses import load_responses, select_sessions
from openretina.errors import DataFileNotFoundError, DataShapeError


def _zeros(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float32 array of zeros of ``shape`` that occupies 4 bytes."""
    return np.broadcast_to(np.zeros((), dtype=np.float32), shape)


def build_placeholder_movies(
    session_ids: Iterable[str],
    *,
    channels: int,
    height: int,
    width: int,
    time_bins: int = 1,
    test_time_bins: int | None = None,
    stim_id_prefix: str = "sridhar_2025",
    norm_mean: float = 0.0,
    norm_std: float = 1.0,
) -> dict[str, MoviesTrainTestSplit]:
    """Zero movies ``(channels, time_bins, height, width)`` (test: ``test_time_bins``, default ``time_bins``) per
    session, ``stim_id="<stim_id_prefix>_<session>"``. They carry shapes only and use no memory."""
    test_bins = time_bins if test_time_bins is None else test_time_bins
    return {
        session: MoviesTrainTestSplit(
            train=_zeros((channels, time_bins, height, width)),
            test=_zeros((channels, test_bins, height, width)),
            stim_id=f"{stim_id_prefix}_{session}",
            norm_mean=norm_mean,
            norm_std=norm_std,
        )
        for session in session_ids
    }


def build_movies_from_responses(
    base_path: str | Path,
    response_files: Mapping[str, str],
    *,
    channels: int,
    height: int,
    width: int,
    stim_id_prefix: str = "sridhar_2025",
    stimulus_seed: int = 0,
    norm_mean: float = 0.0,
    norm_std: float = 1.0,
    sessions: Sequence[str] | None = None,
) -> dict[str, MoviesTrainTestSplit]:
    """Zero movies matching each session's responses (of ``sessions`` only, when given): train ``(channels,
    frames_per_trial * n_trials, height, width)``, test ``(channels, T_test, height, width)``; see
    :func:`build_placeholder_movies`.

    The default ``stim_id_prefix`` (the reference's) gives ``"sridhar_2025_<session>"`` while
    :func:`..responses.response_splits_from_pickles` uses ``"sridhar_<session>"``; pass ``stim_id_prefix="sridhar"``
    for ``ResponsesTrainTestSplit.check_matching_stimulus`` to accept the pair."""
    movies: dict[str, MoviesTrainTestSplit] = {}
    for session, data in load_responses(base_path, select_sessions(response_files, sessions), stimulus_seed).items():
        _, frames_per_trial, n_trials = data["train_responses"].shape
        with error_context(f"session {session!r}"):
            movies.update(
                build_placeholder_movies(
                    [session], channels=channels, height=height, width=width, time_bins=frames_per_trial * n_trials,
                    test_time_bins=data["test_responses"].shape[1], stim_id_prefix=stim_id_prefix,
                    norm_mean=norm_mean, norm_std=norm_std,
                )
            )  # fmt: skip
    return movies


def load_frames(img_dir_name: str | Path, frame_file: str, full_img_w: int, full_img_h: int) -> np.ndarray:
    """Load every ``.npy`` image in ``img_dir_name`` whose name contains ``frame_file``, in name order.

    Each file holds one image ``(full_img_w, full_img_h)`` with values 0..255. Output: float16
    ``(n_images, full_img_w, full_img_h)`` scaled to 0..1, filled by 4 reader threads.
    """
    folder = Path(img_dir_name)
    if not folder.is_dir():
        raise DataFileNotFoundError(f"image folder {str(folder)!r} does not exist.")
    paths: Sequence[Path] = sorted(p for p in folder.iterdir() if frame_file in p.name and p.suffix == ".npy")
    if not paths:
        raise DataFileNotFoundError(f"no .npy file with {frame_file!r} in its name in {str(folder)!r}.")
    frames = np.empty((len(paths), full_img_w, full_img_h), dtype=np.float16)

    def read(index: int) -> None:
        image = np.load(paths[index])
        if image.shape != (full_img_w, full_img_h):
            raise DataShapeError(
                f"image {str(paths[index])!r} has shape {image.shape}, expected (full_img_w, full_img_h) = "
                f"({full_img_w}, {full_img_h})."
            )
        frames[index] = image / 255.0

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(read, range(len(paths))))
    return frames
