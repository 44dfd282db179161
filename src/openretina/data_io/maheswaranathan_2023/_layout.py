"""Where the Maheswaranathan session files lie: ``<dataset>/ganglion_cell_data/<session>/<stim_type>.h5``."""

from __future__ import annotations

from pathlib import Path

from openretina.data_io.maheswaranathan_2023._session_file import resolve_data_path
from openretina.data_io.maheswaranathan_2023.constants import SESSIONS_FOLDER, STIM_TYPES
from openretina.errors import DataFileNotFoundError, DataFormatError


def find_session_files(base_data_path: str | Path, stim_type: str) -> dict[str, Path]:
    """Map each session folder name to its file ending in ``<stim_type>.h5``, sorted by session name.

    ``base_data_path`` may be the unzipped dataset folder, its ``ganglion_cell_data`` sub-folder, or a URL of the
    archive. Sessions without such a file (e.g. no white-noise recording) are skipped; a session with several
    matching files raises, because silently picking one (the reference let them overwrite each other) could mix
    recordings.
    """
    if stim_type not in STIM_TYPES:
        raise DataFormatError(f"stim_type must be one of {STIM_TYPES}, got {stim_type!r}.")
    root = resolve_data_path(base_data_path, "Maheswaranathan 2023 data")
    if (root / SESSIONS_FOLDER).is_dir():
        root = root / SESSIONS_FOLDER
    sessions: dict[str, Path] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        matches = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(f"{stim_type}.h5"))
        if len(matches) > 1:
            raise DataFormatError(
                f"session {folder.name!r}: several files end with '{stim_type}.h5': {[p.name for p in matches]}; "
                "keep exactly one per session."
            )
        if matches:
            sessions[folder.name] = matches[0]
    if not sessions:
        raise DataFileNotFoundError(
            f"no session folder under {str(root)!r} holds a file ending with '{stim_type}.h5'. Pass the unzipped "
            f"dataset folder or its {SESSIONS_FOLDER!r} sub-folder."
        )
    return sessions
