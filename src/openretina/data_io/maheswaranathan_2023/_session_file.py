"""Reading one session file of the ``/train|test/stimulus|response|repeats`` HDF5 layout.

Maheswaranathan et al. 2023 and Goldin et al. 2022 publish their sessions in the same layout, so both loaders
use these helpers. Every error names the file and the HDF5 key, the expected and the actual value.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from openretina.data_io._arrays import check_finite, iter_chunks
from openretina.data_io.base import MoviesTrainTestSplit, error_context
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError
from openretina.utils.file_utils import get_local_file_path

# Per-cell repeat datasets: "cell3" (what the published files contain) or "cell_3".
_CELL_KEY = re.compile(r"^cell_?(\d+)$")


def resolve_data_path(base_data_path: str | Path, what: str) -> Path:
    """Local folder for ``base_data_path``: a local path, or a URL that is downloaded (and unzipped) into the cache."""
    path = get_local_file_path(str(base_data_path), what=what)
    if not path.is_dir():
        raise DataFileNotFoundError(f"{what}: {str(path)!r} is not a folder; pass the folder holding the sessions.")
    return path


@contextmanager
def open_session_file(path: Path) -> Iterator[h5py.File]:
    """Open an HDF5 session file read-only, turning I/O failures into errors that name the file."""
    if not path.is_file():
        raise DataFileNotFoundError(f"session file {str(path)!r} does not exist.")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise DataFormatError(f"session file {str(path)!r} is not a readable HDF5 file ({error}).") from error
    with file:
        yield file


def _dataset(file: h5py.File, key: str) -> h5py.Dataset:
    item = file.get(key)
    if not isinstance(item, h5py.Dataset):
        parent = key.rsplit("/", 1)[0] or "/"
        group = file.get(parent)
        found = sorted(group.keys()) if isinstance(group, h5py.Group) else []
        state = "is a group, not a dataset" if item is not None else "is missing"
        raise DataFormatError(
            f"session file {file.filename!r}: key {key!r} {state}; {parent!r} holds {found}. "
            "Check that the file is an unmodified copy of the published dataset."
        )
    return item


def dataset_shape(file: h5py.File, key: str) -> tuple[int, ...]:
    """Shape of dataset ``key`` without reading it."""
    return tuple(int(s) for s in _dataset(file, key).shape)


def read_array(file: h5py.File, key: str, layout: str) -> np.ndarray:
    """Read dataset ``key`` as float32, checking its rank against ``layout`` (e.g. ``"(neurons, time)"``) and that
    all values are finite. The conversion happens while reading, so no float64 copy is made."""
    dataset = _dataset(file, key)
    expected_ndim = layout.count(",") + 1
    if dataset.ndim != expected_ndim:
        raise DataShapeError(
            f"session file {file.filename!r}: key {key!r} must be {expected_ndim}-D {layout}, got shape "
            f"{dataset.shape}."
        )
    values = np.empty(dataset.shape, dtype=np.float32)
    if values.size:
        dataset.read_direct(values)
    check_finite(values, f"session file {file.filename!r}, key {key!r}")
    return values


def read_movie(file: h5py.File, key: str) -> np.ndarray:
    """A grey-scale movie ``(T, H, W)`` stored under ``key``, returned with a channel axis: float32 ``(1, T, H, W)``."""
    return read_array(file, key, "(time, height, width)")[np.newaxis]


def zscore_in_place(train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    """Z-score both movies in place with the scalar mean and unbiased std of ``train``; returns ``(mean, std)``.

    Same statistics as :func:`openretina.data_io.base.normalize_train_test_movies` (float64 accumulation), but
    without allocating float64 copies: the Maheswaranathan training movie alone is 3.6 GB in float32.
    """
    count = train.size
    if count < 2:
        raise DataShapeError(f"training movie has {count} values; at least 2 are needed to z-score it.")
    mean = sum(float(chunk.sum(dtype=np.float64)) for _, chunk in iter_chunks(train)) / count
    squares = sum(float(np.square(chunk.astype(np.float64) - mean).sum()) for _, chunk in iter_chunks(train))
    std = (squares / (count - 1)) ** 0.5
    if std == 0.0:
        raise DataShapeError("training movie is constant (std 0); it cannot be z-scored.")
    for movie in (train, test):
        movie -= np.float32(mean)
        movie /= np.float32(std)
    return mean, std


def load_session_movies(
    session_files: dict[str, Path], stim_id: str, normalize_stimuli: bool
) -> dict[str, MoviesTrainTestSplit]:
    """``/train/stimulus`` and ``/test/stimulus`` of each session file as movies ``(1, T, H, W)`` float32.

    With ``normalize_stimuli`` both are z-scored in place with the training movie's mean and unbiased std
    (recorded in ``norm_mean``/``norm_std``). Shared by the Maheswaranathan and Goldin loaders (same layout).
    """
    movies: dict[str, MoviesTrainTestSplit] = {}
    for session, path in session_files.items():
        with error_context(f"session {session!r}"), open_session_file(path) as file:
            train = read_movie(file, "train/stimulus")
            test = read_movie(file, "test/stimulus")
            mean, std = zscore_in_place(train, test) if normalize_stimuli else (None, None)
            movies[session] = MoviesTrainTestSplit(
                train=train, test=test, stim_id=stim_id, norm_mean=mean, norm_std=std
            )
    return movies


def read_per_cell_repeats(file: h5py.File, group_key: str) -> np.ndarray | None:
    """Stack per-cell repeat datasets ``<group_key>/cell<k>`` (each ``(R, T)``) into float32 ``(R, N, T)``.

    Cells are ordered by the integer ``k`` (``cell10`` after ``cell9``); ``cell_<k>`` is accepted as well.
    Returns None when ``group_key`` holds no such dataset.
    """
    group = file.get(group_key)
    if not isinstance(group, h5py.Group):
        return None
    cells = sorted((int(m.group(1)), name) for name in group if (m := _CELL_KEY.match(name)))
    if not cells:
        return None
    per_cell = [read_array(file, f"{group_key}/{name}", "(repeats, time)") for _, name in cells]
    shapes = {name: cell.shape for (_, name), cell in zip(cells, per_cell)}
    if len(set(shapes.values())) != 1:
        raise DataShapeError(
            f"session file {file.filename!r}: per-cell repeats under {group_key!r} differ in (repeats, time): "
            f"{shapes}; every cell must have the same repeats and length."
        )
    return np.stack(per_cell, axis=1)


def align_to_stimulus(
    responses: np.ndarray,
    stimulus_frames: int,
    *,
    file: h5py.File,
    key: str,
    time_axis: int = -1,
    trim_one_extra_bin: bool = True,
) -> np.ndarray:
    """Trim responses that are exactly one bin longer than their stimulus (with a warning, if
    ``trim_one_extra_bin``); equal lengths pass.

    Any other difference raises :class:`DataShapeError`, since it cannot be an off-by-one binning artefact.
    """
    bins = responses.shape[time_axis]
    if bins == stimulus_frames:
        return responses
    if trim_one_extra_bin and bins == stimulus_frames + 1:
        warnings.warn(
            f"session file {file.filename!r}: {key!r} has {bins} time bins, one more than its stimulus "
            f"({stimulus_frames} frames); dropping the last bin so both stay aligned.",
            UserWarning,
            stacklevel=3,
        )
        return np.take(responses, np.arange(stimulus_frames), axis=time_axis)
    raise DataShapeError(
        f"session file {file.filename!r}: {key!r} has {bins} time bins but its stimulus has {stimulus_frames} frames "
        f"(expected equal{', or one extra bin that is trimmed' if trim_one_extra_bin else ''}); the file looks "
        "truncated or mismatched."
    )
