"""Names and metadata scanning of the native HDF5 dataset layout.

A dataset directory holds ``stimuli/<name>.npy`` movies shared by all sessions and one ``<session>.h5``
(or ``.hdf5``) file per session. This module knows the key names and reads only *metadata* (shapes,
attributes), so both readers can validate a whole directory before loading any array. The layout and its
extensions are described in ``docs/hdf5_format.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError

STIMULI_FOLDER = "stimuli"
RESPONSES_PREFIX = "responses_"
# Extension: per-trial test responses (R, N, T). Checked before RESPONSES_PREFIX, which it also starts with.
RESPONSES_BY_TRIAL_PREFIX = "responses_by_trial_"
STIMULUS_PREFIX = "stimulus_"
SESSION_INFO_GROUP = "session_info"
# Extension: optional root attributes of a session file.
SAMPLING_RATE_ATTR = "sampling_rate_hz"
STIM_ID_ATTR = "stim_id"
SESSION_FILE_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class StimulusSource:
    """Where one stimulus of a session comes from and its shape ``(C, T, H, W)`` as stored."""

    name: str
    shape: tuple[int, ...]
    description: str  # human-readable location used in error messages
    session_specific: bool


@dataclass
class SessionLayout:
    """Metadata of one session file: response/stimulus shapes and root attributes, no array data."""

    name: str
    path: Path
    response_shapes: dict[str, tuple[int, ...]]
    by_trial_shapes: dict[str, tuple[int, ...]]
    stimuli: dict[str, StimulusSource]
    root_attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def stimulus_names(self) -> list[str]:
        """Names of the stimuli shown in this session, sorted (the order in which train parts are joined)."""
        return sorted(self.response_shapes)

    @property
    def stim_id(self) -> str | None:
        """The optional ``stim_id`` root attribute."""
        value = self.root_attributes.get(STIM_ID_ATTR)
        return None if value is None else str(value)

    def where(self) -> str:
        """Prefix for error messages naming this session and its file."""
        return f"session {self.name!r} ({self.path})"


def check_base_dir(base_data_path: str | Path) -> Path:
    """Return ``base_data_path`` as a Path after checking that it is an existing directory."""
    path = Path(base_data_path).expanduser()
    if not path.exists():
        raise DataFileNotFoundError(
            f"Dataset directory {str(path)!r} does not exist. Pass the folder that holds the '<session>.h5' files "
            f"and the '{STIMULI_FOLDER}/' subfolder (`openretina create-data DIR` writes an example)."
        )
    if not path.is_dir():
        raise DataFormatError(
            f"base_data_path {str(path)!r} is a file, expected a directory holding '<session>.h5' files and a "
            f"'{STIMULI_FOLDER}/' subfolder."
        )
    return path


def find_session_files(base: Path) -> dict[str, Path]:
    """Map session name (file stem) to file, sorted by name so the session order never depends on the OS."""
    files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix in SESSION_FILE_SUFFIXES)
    sessions: dict[str, Path] = {}
    for path in files:
        if path.stem in sessions:
            raise DataFormatError(
                f"Session {path.stem!r} is stored twice: {sessions[path.stem].name!r} and {path.name!r} in {base}. "
                "Keep one file per session."
            )
        sessions[path.stem] = path
    if not sessions:
        raise DataFileNotFoundError(
            f"No session files (*.h5 or *.hdf5) found in {str(base)!r}. Each recording session must be one HDF5 "
            f"file with 'responses_<stimulus>' datasets; see docs/hdf5_format.md."
        )
    return dict(sorted(sessions.items()))


def find_shared_stimuli(base: Path) -> dict[str, Path]:
    """Map stimulus name to its ``stimuli/<name>.npy`` file; warns when the folder does not exist."""
    folder = base / STIMULI_FOLDER
    if not folder.is_dir():
        warnings.warn(
            f"No '{STIMULI_FOLDER}/' folder in {str(base)!r}: every stimulus must then be stored in the session files "
            f"as '{STIMULUS_PREFIX}<name>'.",
            stacklevel=3,
        )
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.npy"))}


def open_shared_stimulus(path: Path) -> np.ndarray:
    """Memory-map a shared ``.npy`` stimulus read-only (nothing is read into RAM here)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        raise DataFormatError(
            f"Stimulus file {str(path)!r} cannot be read as a plain numeric .npy array ({error}). "
            "Save it with numpy.save(path, array) where array is a numeric (C, T, H, W) array."
        ) from error


def decode_attribute(value: Any) -> Any:
    """Turn an HDF5 attribute value into a plain Python value (str for strings, scalars for 0-d arrays)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in {"S", "O"}:
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return value


def scan_session(name: str, path: Path, shared_shapes: Mapping[str, tuple[tuple[int, ...], str]]) -> SessionLayout:
    """Read the metadata of one session file and check it is self-consistent.

    ``shared_shapes`` maps stimulus name to ``(shape, description)`` of the shared ``.npy`` stimuli.
    Checks: responses are 2-D ``(N, T)`` with one neuron count, every response has a stimulus (shared or
    session-specific) with as many frames as response time bins, and per-trial responses are
    ``(R, N, T)`` matching their trial average. Nothing but shapes and attributes is read.
    """
    responses: dict[str, tuple[int, ...]] = {}
    by_trial: dict[str, tuple[int, ...]] = {}
    session_stimuli: dict[str, tuple[int, ...]] = {}
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise DataFormatError(f"Session file {str(path)!r} is not a readable HDF5 file ({error}).") from error
    with file:
        for key, item in file.items():
            if key.startswith(RESPONSES_BY_TRIAL_PREFIX):
                target, stimulus = by_trial, key.removeprefix(RESPONSES_BY_TRIAL_PREFIX)
            elif key.startswith(RESPONSES_PREFIX):
                target, stimulus = responses, key.removeprefix(RESPONSES_PREFIX)
            elif key.startswith(STIMULUS_PREFIX):
                target, stimulus = session_stimuli, key.removeprefix(STIMULUS_PREFIX)
            else:
                continue
            if not isinstance(item, h5py.Dataset):
                raise DataFormatError(
                    f"session {name!r} ({path}): '{key}' is an HDF5 group, expected a dataset (an array)."
                )
            target[stimulus] = tuple(int(s) for s in item.shape)
        root_attributes = {k: decode_attribute(v) for k, v in file.attrs.items()}

    stimuli = {
        stim: StimulusSource(stim, shape, f"dataset '{STIMULUS_PREFIX}{stim}' in {path.name}", True)
        for stim, shape in session_stimuli.items()
    }
    for stim in responses:  # a session-specific movie overrides the shared one
        if stim not in stimuli and stim in shared_shapes:
            shape, description = shared_shapes[stim]
            stimuli[stim] = StimulusSource(stim, shape, description, False)
    layout = SessionLayout(name, path, responses, by_trial, stimuli, root_attributes)
    _check_responses(layout)
    return layout


def _check_responses(layout: SessionLayout) -> None:
    where = layout.where()
    neuron_counts: dict[str, int] = {}
    for stim, shape in sorted(layout.response_shapes.items()):
        key = RESPONSES_PREFIX + stim
        if len(shape) != 2:
            raise DataShapeError(
                f"{where}: dataset '{key}' has shape {shape}, expected 2-D (neurons, time). "
                f"Per-trial responses belong in '{RESPONSES_BY_TRIAL_PREFIX}{stim}' as (trials, neurons, time)."
            )
        neuron_counts[key] = shape[0]
        source = layout.stimuli.get(stim)
        if source is None:
            raise DataFormatError(
                f"{where}: dataset '{key}' has no stimulus: expected '{STIMULI_FOLDER}/{stim}.npy' in the dataset "
                f"directory or a dataset '{STIMULUS_PREFIX}{stim}' in the session file. Add the stimulus movie or "
                "remove the responses."
            )
        if len(source.shape) == 4 and source.shape[1] != shape[1]:
            raise DataShapeError(
                f"{where}: dataset '{key}' has {shape[1]} time bins but stimulus {stim!r} ({source.description}) "
                f"has {source.shape[1]} frames (expected equal). Check the trigger alignment or trim the longer one."
            )
    if len(set(neuron_counts.values())) > 1:
        counts = ", ".join(f"'{k}': {n}" for k, n in neuron_counts.items())
        raise DataShapeError(
            f"{where}: the responses disagree on the number of neurons ({counts}); every stimulus of a session "
            "must be recorded from the same neurons, in the same order."
        )
    for stim, shape in sorted(layout.by_trial_shapes.items()):
        key = RESPONSES_BY_TRIAL_PREFIX + stim
        average = layout.response_shapes.get(stim)
        if average is None:
            raise DataFormatError(
                f"{where}: dataset '{key}' has no trial average '{RESPONSES_PREFIX}{stim}'. Store the mean over "
                "trials there as well (shape (neurons, time))."
            )
        if len(shape) != 3 or shape[1:] != average:
            raise DataShapeError(
                f"{where}: dataset '{key}' has shape {shape}, expected (trials, neurons, time) = "
                f"(R, {average[0]}, {average[1]}) to match '{RESPONSES_PREFIX}{stim}' {average}."
            )


def check_stimulus_shape(source: StimulusSource, stimulus_size: tuple[int, int, int] | None) -> None:
    """Check a stimulus is 4-D ``(C, T, H, W)`` and, if given, has ``stimulus_size == (C, H, W)``."""
    if len(source.shape) != 4:
        raise DataShapeError(
            f"Stimulus {source.name!r} ({source.description}) has shape {source.shape}, expected 4-D "
            "(channels, time, height, width). Add a channel axis for grey-scale movies (array[None])."
        )
    if stimulus_size is None:
        return
    channels, height, width = stimulus_size
    actual = (source.shape[0], source.shape[2], source.shape[3])
    if actual != (channels, height, width):
        raise DataShapeError(
            f"Stimulus {source.name!r} ({source.description}) has (channels, height, width) = {actual} but "
            f"stimulus_size is {[channels, height, width]}. Set stimulus_size (color_channels, video_height, "
            "video_width in the config) to the stored size or resample the movie."
        )
