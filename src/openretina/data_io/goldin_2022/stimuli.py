"""Flashed natural images of the Goldin et al. 2022 dataset, as one-frame-per-image movies."""

from __future__ import annotations

from pathlib import Path

from openretina.data_io.base import MoviesTrainTestSplit
from openretina.data_io.goldin_2022._layout import find_session_files
from openretina.data_io.goldin_2022.constants import Specie
from openretina.data_io.maheswaranathan_2023._session_file import load_session_movies


def load_all_stimuli(
    base_data_path: str | Path,
    stim_type: str = "naturalscene",
    specie: Specie = "mouse",
    normalize_stimuli: bool = True,
) -> dict[str, MoviesTrainTestSplit]:
    """Load every ``specie`` session's image sets as movies with one image per frame.

    Reads ``/train/stimulus`` ``(n_train_images, 108, 108)`` and ``/test/stimulus`` ``(n_test_images, 108, 108)``.
    Output: ``{session: MoviesTrainTestSplit(train (1, n_train_images, 108, 108), test (1, n_test_images, 108,
    108))}``, float32, ``stim_id=stim_type``; with ``normalize_stimuli`` z-scored with the training images' mean
    and unbiased std (recorded in ``norm_mean``/``norm_std``).
    """
    return load_session_movies(find_session_files(base_data_path, specie), stim_type, normalize_stimuli)
