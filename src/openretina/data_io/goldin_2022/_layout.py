"""Where the Goldin session files lie: one HDF5 file per session, all in one folder."""

from __future__ import annotations

from pathlib import Path

from openretina.data_io.goldin_2022.constants import SESSION_FILE_SUFFIXES, SPECIES
from openretina.data_io.maheswaranathan_2023._session_file import resolve_data_path
from openretina.errors import DataFileNotFoundError, DataFormatError


def find_session_files(base_data_path: str | Path, specie: str) -> dict[str, Path]:
    """Map session name (file name without suffix) to path for every HDF5 file whose name contains ``specie``.

    Only files ending in ``.h5``/``.hdf5`` are considered, so notes, archives or folders next to the data are
    ignored (the reference tried to open any entry containing the species name).
    """
    if specie not in SPECIES:
        raise DataFormatError(f"specie must be one of {SPECIES}, got {specie!r}.")
    root = resolve_data_path(base_data_path, "Goldin 2022 data")
    sessions = {
        path.name.removesuffix(path.suffix): path
        for path in sorted(root.iterdir())
        if path.is_file() and specie in path.name and path.suffix in SESSION_FILE_SUFFIXES
    }
    if not sessions:
        raise DataFileNotFoundError(
            f"no HDF5 file ({'/'.join(SESSION_FILE_SUFFIXES)}) with {specie!r} in its name under {str(root)!r}; "
            "pass the folder holding the Goldin 2022 session files."
        )
    return sessions
