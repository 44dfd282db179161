"""Höfling et al. 2024 movies: one UV/green movie shared by all recording fields."""

from __future__ import annotations

from pathlib import Path

from openretina.data_io.base import MoviesTrainTestSplit
from openretina.errors import DataFileNotFoundError
from openretina.utils.file_utils import get_local_file_path


def _pickle_in(path: Path) -> Path:
    """``path`` itself, or the single ``.pkl`` file inside a folder (the published zips hold one pickle)."""
    if not path.is_dir():
        return path
    pickles = sorted(path.rglob("*.pkl"))
    if len(pickles) != 1:
        raise DataFileNotFoundError(
            f"movie folder {str(path)!r} must hold exactly one .pkl file, found {[str(p) for p in pickles]}; pass "
            "the pickle's path."
        )
    return pickles[0]


def movies_from_pickle(file_path: str | Path) -> MoviesTrainTestSplit:
    """Load the movie pickle (a local path, its unzipped folder, or a URL of the published zip).

    Pickle keys: ``train`` ``(2, 16200, H, W)`` (108 clips of 150 frames in clip-id order, UV and green, already
    jointly z-scored), ``test`` ``(2, 750, H, W)``, ``random_sequences`` ``(108, 20)`` (clip id shown at each
    position of each of the 20 presentation sequences) and ``movie_stats["dichromatic"]["mean"|"sd"]``.
    ``H x W`` is 18 x 16 (low resolution) or 72 x 64 (high resolution). Arrays are kept as stored (no copy).
    """
    local = _pickle_in(get_local_file_path(str(file_path), what="Höfling 2024 movie pickle"))
    return MoviesTrainTestSplit.from_pickle(local)
