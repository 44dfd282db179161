"""Write stimuli and session files in the native HDF5 layout (see ``docs/hdf5_format.md``).

Every file is written under a temporary name in its destination folder and renamed into place only when
complete, so an interrupted or failed write never leaves a truncated file behind, and an existing file is
replaced only when ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from openretina.data_io.h5_layout import (
    RESPONSES_BY_TRIAL_PREFIX,
    RESPONSES_PREFIX,
    SAMPLING_RATE_ATTR,
    SESSION_INFO_GROUP,
    STIM_ID_ATTR,
    STIMULI_FOLDER,
    STIMULUS_PREFIX,
)
from openretina.errors import DataShapeError, OpenRetinaError


class OutputExistsError(OpenRetinaError, FileExistsError):
    """A file that would be written already exists and overwriting was not requested."""


def stimulus_path(directory: str | Path, name: str) -> Path:
    """Path of the shared stimulus ``name`` in a dataset directory: ``<directory>/stimuli/<name>.npy``."""
    return Path(directory) / STIMULI_FOLDER / f"{name}.npy"


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """Raise OutputExistsError listing every path that exists, unless ``overwrite`` is set."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"Refusing to overwrite existing file(s): {existing}. Choose an empty directory or pass overwrite=True "
            "(`--overwrite` on the command line)."
        )


@contextlib.contextmanager
def atomic_path(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds, else delete it."""
    refuse_existing([path], overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_stimulus(directory: str | Path, name: str, movie: np.ndarray, *, overwrite: bool = False) -> Path:
    """Save a shared stimulus as ``<directory>/stimuli/<name>.npy``.

    Input: movie (channels, time, height, width); stored with its own dtype (float32 recommended: it is then
    memory-mapped by the reader without any copy).
    """
    movie = np.asarray(movie)
    if movie.ndim != 4:
        raise DataShapeError(
            f"Stimulus {name!r} has shape {movie.shape}, expected 4-D (channels, time, height, width)."
        )
    path = stimulus_path(directory, name)
    with atomic_path(path, overwrite) as temporary, open(temporary, "wb") as handle:
        np.save(handle, movie, allow_pickle=False)
    return path


def write_session_file(
    path: str | Path,
    responses: Mapping[str, np.ndarray],
    *,
    responses_by_trial: Mapping[str, np.ndarray] | None = None,
    stimuli: Mapping[str, np.ndarray] | None = None,
    session_info: Mapping[str, Any] | None = None,
    sampling_rate_hz: float | None = None,
    stim_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write one session file of the HDF5 layout.

    Args:
        path: destination, ``<dataset dir>/<session>.hdf5`` (or ``.h5``); the stem is the session name.
        responses: ``{stimulus name: (neurons, time)}`` trial-averaged responses.
        responses_by_trial: optional ``{test stimulus name: (trials, neurons, time)}``.
        stimuli: optional session-specific ``{name: (channels, time, height, width)}`` movies.
        session_info: optional per-neuron or per-session metadata (e.g. ``celltypes`` (N,)); values are arrays,
            lists of strings, or nested mappings (written as subgroups).
        sampling_rate_hz, stim_id: optional root attributes.
        overwrite: replace an existing file.

    Shapes are checked against each other when the directory is read (``load_responses``).
    """
    path = Path(path)
    with atomic_path(path, overwrite) as temporary, h5py.File(temporary, "w") as file:
        for name, array in responses.items():
            file.create_dataset(RESPONSES_PREFIX + name, data=np.asarray(array))
        for name, array in (responses_by_trial or {}).items():
            file.create_dataset(RESPONSES_BY_TRIAL_PREFIX + name, data=np.asarray(array))
        for name, array in (stimuli or {}).items():
            file.create_dataset(STIMULUS_PREFIX + name, data=np.asarray(array))
        if session_info is not None:
            _write_group(file.create_group(SESSION_INFO_GROUP), session_info)
        if sampling_rate_hz is not None:
            file.attrs[SAMPLING_RATE_ATTR] = float(sampling_rate_hz)
        if stim_id is not None:
            file.attrs[STIM_ID_ATTR] = stim_id
    return path


def _write_group(group: h5py.Group, content: Mapping[str, Any]) -> None:
    """Write arrays (unicode text as UTF-8 HDF5 strings) and nested mappings (as subgroups) into ``group``."""
    for key, value in content.items():
        if isinstance(value, Mapping):
            _write_group(group.create_group(key), value)
            continue
        array = np.asarray(value)
        if array.dtype.kind == "U":  # HDF5 has no fixed-width unicode type
            array = array.astype(h5py.string_dtype())
        group.create_dataset(key, data=array)
