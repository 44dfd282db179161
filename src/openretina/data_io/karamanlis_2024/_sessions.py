"""Where the Karamanlis session files lie: ``<base>/<session containing the species>/…<stim_type>_data.mat``."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

from openretina.data_io.karamanlis_2024.constants import SPECIES, STIM_TYPES
from openretina.data_io.maheswaranathan_2023._session_file import resolve_data_path
from openretina.errors import DataFileNotFoundError, DataFormatError


def _extract_session_zip(archive: Path) -> Path:
    """Extract ``<name>.zip`` once into ``<name>/`` next to it (the archive is kept) and return that folder."""
    target = archive.with_suffix("")
    if target.is_dir():
        return target
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        # Archives either hold the session folder itself or the files of the session.
        wrapped = all(name.startswith(f"{target.name}/") for name in names)
        bundle.extractall(archive.parent if wrapped else target)
    return target


def session_folders(base_data_path: str | Path, specie: str) -> dict[str, Path]:
    """Session name -> folder for every entry of ``base_data_path`` whose name contains ``specie``.

    ``.zip`` archives are extracted next to themselves on first use; the session is named after the folder in
    both loaders (the reference keyed local zips as ``<name>.zip`` in one loader and ``<name>`` in the other).
    """
    if specie not in SPECIES:
        raise DataFormatError(f"specie must be one of {SPECIES}, got {specie!r}.")
    root = resolve_data_path(base_data_path, "Karamanlis 2024 sessions")
    folders: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if specie not in entry.name:
            continue
        if entry.is_dir():
            folders[entry.name] = entry
        elif entry.suffix == ".zip":
            folder = _extract_session_zip(entry)
            folders[folder.name] = folder
    if not folders:
        raise DataFileNotFoundError(
            f"no session folder or .zip with {specie!r} in its name under {str(root)!r}; pass the 'sessions' folder "
            "of the Karamanlis 2024 data."
        )
    return folders


def session_file(folder: Path, suffix: str) -> Path | None:
    """The single file of ``folder`` whose name ends with ``suffix``; None (with a warning) if there is none."""
    matches = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffix))
    if len(matches) > 1:
        raise DataFormatError(
            f"session {folder.name!r}: several files end with {suffix!r}: {[p.name for p in matches]}; keep one."
        )
    if not matches:
        warnings.warn(
            f"session {folder.name!r}: no file ending with {suffix!r}; skipping it.", UserWarning, stacklevel=3
        )
        return None
    return matches[0]


def check_stim_type(stim_type: str) -> None:
    """Raise for a stimulus type the dataset does not have."""
    if stim_type not in STIM_TYPES:
        raise DataFormatError(f"stim_type must be one of {STIM_TYPES}, got {stim_type!r}.")
