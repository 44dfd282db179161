"""Helpers of the Sridhar et al. 2025 dataloaders: trial-wise validation split, trial filtering, STA locations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from openretina.data_io.sridhar_2025._chunking import crop_margins
from openretina.data_io.sridhar_2025.constants import DEFAULT_SPLIT_SEED
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError

# Trials with repeated content (the end of one seed's sequence repeats its start) must stay on the same side.
_LINKED_TRIALS: tuple[tuple[int, int], ...] = ((0, 9), (10, 19))


def _splits_linked_trials(train_ids: np.ndarray, val_ids: np.ndarray) -> bool:
    return any((a in train_ids and b in val_ids) or (b in train_ids and a in val_ids) for a, b in _LINKED_TRIALS)


def get_trial_wise_validation_split(
    train_responses: np.ndarray,
    train_frac: float,
    seed: int | None = None,
    final_training: bool = False,
    hard_coded: tuple[Sequence[int], Sequence[int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split the trials (last axis of ``train_responses``) into training and validation trial ids.

    A random permutation (seed ``seed``, default 1000) gives the first ``int(n_trials * train_frac)`` trials to
    training; it is redrawn while trials 0 and 9, or 10 and 19, would land on different sides. With
    ``final_training`` the validation trials are added to training. ``hard_coded=(train, val)`` is returned as is.
    The permutations equal the reference's, but come from a local ``RandomState``: the global random states are
    left alone (the reference re-seeded Python, numpy and torch globally here).
    """
    if hard_coded is not None:
        return np.asarray(hard_coded[0], dtype=np.int64), np.asarray(hard_coded[1], dtype=np.int64)
    if not 0 < train_frac <= 1:
        raise DataFormatError(f"train_frac must be in (0, 1], got {train_frac}.")
    n_trials = int(np.shape(train_responses)[-1])
    rng = np.random.RandomState(DEFAULT_SPLIT_SEED if seed is None else seed)
    n_train = int(n_trials * train_frac)
    while True:
        order = rng.permutation(n_trials)
        train_ids, val_ids = order[:n_train], order[n_train:]
        if not _splits_linked_trials(train_ids, val_ids):
            break
    if final_training:
        train_ids = np.concatenate([train_ids, val_ids])
    return train_ids, val_ids


def filter_trials(
    train_responses: np.ndarray,
    all_train_ids: Sequence[int] | np.ndarray,
    all_validation_ids: Sequence[int] | np.ndarray,
    hard_coded: tuple[Sequence[int], Sequence[int]] | None = None,
    num_of_trials_to_use: int | None = None,
    starting_trial: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the training and validation trial ids in ``[starting_trial, starting_trial + num_of_trials_to_use)``
    (and below the number of recorded trials); with ``hard_coded`` ids only the upper bound applies."""
    n_recorded = int(np.shape(train_responses)[-1])
    train_ids = np.asarray(all_train_ids, dtype=np.int64)
    val_ids = np.asarray(all_validation_ids, dtype=np.int64)
    count = len(train_ids) + len(val_ids) if num_of_trials_to_use is None else num_of_trials_to_use
    stop = min(n_recorded, starting_trial + count)
    start = 0 if hard_coded is not None else starting_trial
    return (
        train_ids[(train_ids >= start) & (train_ids < stop)],
        val_ids[(val_ids >= start) & (val_ids < stop)],
    )


def sta_file_name(cell: int, retina_index: str) -> str:
    """File name of a cell's spike-triggered average: ``cell_data_<retina>_WN_stas_cell_<cell>.npy``."""
    return f"cell_data_{retina_index}_WN_stas_cell_{cell}.npy"


def get_locations_from_stas(
    sta_dir: str | Path,
    retina_index: str,
    cells: Sequence[int],
    crop: int | Sequence[int] = 0,
    flip_sta: bool = False,
) -> np.ndarray:
    """Receptive-field centre of each cell: the ``(row, col)`` pixel of largest temporal variance of its STA.

    Each STA file holds ``(n_frames, height, width)``. ``flip_sta`` mirrors it along axis 1 (height) first, as the
    reference does; ``crop`` = ``(top, bottom, left, right)`` (or one int for all) is removed before the search,
    so locations are in cropped coordinates. Output: int ``(n_cells, 2)``.
    """
    top, bottom, left, right = crop_margins(crop)
    locations = np.empty((len(cells), 2), dtype=np.int64)
    for i, cell in enumerate(cells):
        path = Path(sta_dir) / sta_file_name(cell, retina_index)
        if not path.is_file():
            raise DataFileNotFoundError(f"STA file {str(path)!r} of cell {cell} does not exist.")
        sta = np.load(path)
        if sta.ndim != 3:
            raise DataShapeError(f"STA file {str(path)!r} must be 3-D (frames, height, width), got {sta.shape}.")
        if flip_sta:
            sta = sta[:, ::-1]
        sta = sta[:, top : sta.shape[1] - bottom, left : sta.shape[2] - right]
        variance = sta.var(axis=0)
        locations[i] = np.unravel_index(int(np.argmax(variance)), variance.shape)
    return locations
