"""Writers of tiny data sets in the exact native layouts of the published datasets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import h5py
import numpy as np
import pytest

WriteH5 = Callable[[Path, Mapping[str, np.ndarray]], Path]


def write_h5_file(path: Path, datasets: Mapping[str, np.ndarray]) -> Path:
    """Write ``{"group/sub/name": array}`` into a new HDF5 file at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        for key, value in datasets.items():
            file.create_dataset(key, data=value)
    return path


@pytest.fixture
def write_h5() -> WriteH5:
    return write_h5_file
