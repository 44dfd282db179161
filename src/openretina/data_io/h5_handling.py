"""General helpers to inspect, load and unpack HDF5 files (also importable as ``openretina.utils.h5_handling``).

Unlike the reference helpers, ``load_h5_into_dict`` copies each group's attributes once (not once per
member) and reads datasets one at a time instead of guessing up front whether the file fits in memory.
"""

from __future__ import annotations

import json
import pprint
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm.auto import tqdm

from openretina.errors import DataFileNotFoundError, DataFormatError

ATTRIBUTES_KEY = "__attributes__"


def count_items(group: h5py.Group) -> int:
    """Number of datasets in ``group`` and all its subgroups."""
    return sum(count_items(item) if isinstance(item, h5py.Group) else 1 for item in group.values())


def load_h5_into_dict(file_path: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Read a whole HDF5 file into nested dicts of numpy arrays (one dict per group).

    The attributes of each group (and of the file itself) appear as extra keys of that group's dict, next to
    its members; a member with the same name as an attribute wins. ``progress`` shows a bar over datasets.
    """
    with _open(file_path) as file:
        with tqdm(total=count_items(file), disable=not progress, desc=f"Loading {Path(file_path).name}") as bar:
            return _group_to_dict(file, bar)


def _group_to_dict(group: h5py.Group, bar: tqdm) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            content[key] = _group_to_dict(item, bar)
        else:
            content[key] = item[...]
            bar.update()
    for key, value in group.attrs.items():
        content.setdefault(key, value)
    return content


def h5_to_folders(file_path: str | Path, output_dir: str | Path) -> None:
    """Unpack an HDF5 file into folders: groups become directories, datasets ``<name>.npy`` files and
    non-empty group attributes ``__attributes__.json``."""
    with _open(file_path) as file:
        _group_to_folder(file, Path(output_dir))


def _group_to_folder(group: h5py.Group, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            _group_to_folder(item, folder / key)
        else:
            np.save(folder / f"{key}.npy", item[...], allow_pickle=False)
    if group.attrs:
        attributes = {key: _to_json(value) for key, value in group.attrs.items()}
        (folder / f"{ATTRIBUTES_KEY}.json").write_text(json.dumps(attributes, indent=2))


def _to_json(value: Any) -> Any:
    """Convert an attribute value (numpy scalar/array, bytes) into JSON-serialisable Python values."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_to_json(v) for v in value.tolist()] if value.dtype.kind in {"S", "O"} else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def h5_structure(file_path: str | Path) -> dict[str, Any]:
    """Nested dict describing a file: ``"h5.Dataset(shape=...), dtype"`` per dataset and an
    ``"__attributes__"`` entry per group that has attributes."""
    with _open(file_path) as file:
        return _describe(file)


def _describe(group: h5py.Group) -> dict[str, Any]:
    description: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            description[key] = _describe(item)
        else:
            description[key] = f"h5.Dataset(shape={item.shape}), {item.dtype}"
    if group.attrs:
        description[ATTRIBUTES_KEY] = {key: _to_json(value) for key, value in group.attrs.items()}
    return description


def print_h5_structure(file_path: str | Path) -> None:
    """Print the groups, datasets (shape, dtype) and attributes of an HDF5 file without reading any data."""
    pprint.pprint(h5_structure(file_path), width=120, sort_dicts=False)


def load_dataset_from_h5(file_path: str | Path, dataset_path: str) -> np.ndarray:
    """Read one dataset (e.g. ``"session_info/celltypes"``) of an HDF5 file into memory."""
    with _open(file_path) as file:
        item = file.get(dataset_path)
        if item is None:
            raise DataFileNotFoundError(
                f"Dataset {dataset_path!r} not found in {str(file_path)!r}; its top-level keys are "
                f"{sorted(file.keys())}. Use print_h5_structure(path) to see the whole tree."
            )
        if not isinstance(item, h5py.Dataset):
            raise DataFormatError(
                f"{dataset_path!r} in {str(file_path)!r} is a group, not a dataset; its members are "
                f"{sorted(item.keys())}."
            )
        return item[...]


def _open(file_path: str | Path) -> h5py.File:
    path = Path(file_path)
    if not path.is_file():
        raise DataFileNotFoundError(f"HDF5 file {str(path)!r} does not exist.")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DataFormatError(f"{str(path)!r} is not a readable HDF5 file ({error}).") from error
