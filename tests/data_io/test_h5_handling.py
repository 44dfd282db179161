"""Generic HDF5 helpers (`openretina.utils.h5_handling` is the reference import path)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import openretina.data_io.h5_handling as domain
import openretina.utils.h5_handling as reference_path
from openretina.errors import DataFileNotFoundError, DataFormatError


@pytest.fixture
def h5_file(tmp_path: Path) -> Path:
    path = tmp_path / "field.h5"
    with h5py.File(path, "w") as file:
        file.attrs["experimenter"] = "ab"
        file["traces"] = np.arange(6.0).reshape(2, 3)
        group = file.create_group("meta")
        group.attrs["eye"] = "left"
        group.attrs["scale"] = np.float32(0.5)
        group.attrs["roi"] = "attribute loses to the dataset"
        group["roi"] = np.array([3, 1, 2])
        group.create_group("deep")["depth"] = np.array(4.5)
    return path


def test_reference_path_reexports_the_same_functions() -> None:
    for name in ("count_items", "load_h5_into_dict", "h5_to_folders", "print_h5_structure", "load_dataset_from_h5"):
        assert getattr(reference_path, name) is getattr(domain, name)


def test_count_items_counts_datasets_recursively(h5_file: Path) -> None:
    with h5py.File(h5_file, "r") as file:
        assert domain.count_items(file) == 3
        assert domain.count_items(file["meta"]) == 2


def test_load_h5_into_dict_reads_data_and_attributes(h5_file: Path) -> None:
    content = domain.load_h5_into_dict(h5_file, progress=False)
    assert set(content) == {"traces", "meta", "experimenter"}
    np.testing.assert_array_equal(content["traces"], np.arange(6.0).reshape(2, 3))
    assert content["experimenter"] == "ab"
    meta = content["meta"]
    assert set(meta) == {"roi", "deep", "eye", "scale"}
    np.testing.assert_array_equal(meta["roi"], [3, 1, 2])  # the dataset wins over the attribute of that name
    assert meta["eye"] == "left" and meta["scale"] == np.float32(0.5)
    assert float(meta["deep"]["depth"]) == 4.5


def test_h5_to_folders_mirrors_the_tree(h5_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "unpacked"
    domain.h5_to_folders(h5_file, out)
    np.testing.assert_array_equal(np.load(out / "traces.npy"), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(np.load(out / "meta" / "roi.npy"), [3, 1, 2])
    assert float(np.load(out / "meta" / "deep" / "depth.npy")) == 4.5
    assert json.loads((out / "__attributes__.json").read_text()) == {"experimenter": "ab"}
    attributes = json.loads((out / "meta" / "__attributes__.json").read_text())
    assert attributes == {"eye": "left", "scale": 0.5, "roi": "attribute loses to the dataset"}
    assert not (out / "meta" / "deep" / "__attributes__.json").exists()


def test_print_h5_structure_shows_shapes_dtypes_and_attributes(h5_file: Path, capsys: pytest.CaptureFixture) -> None:
    domain.print_h5_structure(h5_file)
    printed = capsys.readouterr().out
    assert "'traces': 'h5.Dataset(shape=(2, 3)), float64'" in printed
    assert "'depth': 'h5.Dataset(shape=()), float64'" in printed
    assert "'__attributes__': {'experimenter': 'ab'}" in printed
    assert "'eye': 'left'" in printed


def test_load_dataset_from_h5(h5_file: Path) -> None:
    np.testing.assert_array_equal(domain.load_dataset_from_h5(h5_file, "meta/roi"), [3, 1, 2])
    with pytest.raises(DataFileNotFoundError, match=r"'meta/eye' not found .* \['meta', 'traces'\]"):
        domain.load_dataset_from_h5(h5_file, "meta/eye")
    with pytest.raises(DataFormatError, match=r"'meta' .* is a group"):
        domain.load_dataset_from_h5(h5_file, "meta")
    with pytest.raises(FileNotFoundError, match=r"missing\.h5"):
        domain.load_dataset_from_h5(h5_file.with_name("missing.h5"), "traces")
