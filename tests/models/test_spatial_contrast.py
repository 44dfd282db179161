"""Spatial-contrast models; STA loading is replaced by fixed filters so the model arithmetic is tested alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError
from openretina.models import spatial_contrast
from openretina.models.spatial_contrast import SingleCellSpatialContrast, SpatialContrastCoreReadout

HEIGHT, WIDTH, FILTER_LENGTH = 9, 11, 4


def _filters(cell: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    rng = np.random.default_rng(cell)
    spatial = rng.random((HEIGHT, WIDTH)).astype(np.float32)
    temporal = rng.standard_normal(FILTER_LENGTH).astype(np.float32)
    return spatial, temporal, {"center_y": 2.7, "center_x": 9.2}


@pytest.fixture
def fake_sta(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, int]]]:
    calls: list[tuple[str, tuple[int, int]]] = []

    def load(sta_dir, file_name, flip_sta, target_spatial_shape, temporal_crop_frames, sigma_contour):
        calls.append((file_name, target_spatial_shape))
        cell = int(file_name.rsplit("_", 1)[-1].split(".")[0]) if file_name[-5].isdigit() else 0
        return _filters(cell)

    monkeypatch.setattr(spatial_contrast, "load_sta_filters", load)
    return calls


def _expected(x: torch.Tensor, spatial: torch.Tensor, temporal: torch.Tensor, w, a, b, c) -> torch.Tensor:
    """r = a softplus(b (I + w LSC) + c) with explicit sums over the temporal window and the patch."""
    n_out = x.shape[2] - temporal.shape[0] + 1
    filtered = torch.stack(
        [(x[:, 0, t : t + temporal.shape[0]] * temporal[None, :, None, None]).sum(dim=1) for t in range(n_out)], dim=1
    )  # (batch, n_out, h, w)
    weight_sum = spatial.sum() + 1e-8
    intensity = (filtered * spatial).sum(dim=(2, 3)) / weight_sum
    variance = ((filtered - intensity[..., None, None]) ** 2 * spatial).sum(dim=(2, 3)) / weight_sum
    contrast = variance.clamp(min=1e-6).sqrt()
    return (a * F.softplus(b * (intensity + w * contrast) + c))[..., None]


def test_single_cell_forward_matches_formula(fake_sta) -> None:
    model = SingleCellSpatialContrast(
        (1, 20, HEIGHT, WIDTH), "stas", "cell.npy", spat_crop_size=(5, 5), w_init=0.5, a_init=2.0, c_init=-1.0
    )
    assert fake_sta == [("cell.npy", (HEIGHT, WIDTH))]
    assert model.rf_location == (2, 9)
    spatial, temporal, _ = _filters()
    # Crop window of 5 around (2, 9), shifted inside the 9 x 11 frame: rows 0..4, columns 6..10.
    crop = torch.from_numpy(spatial)[0:5, 6:11]
    assert torch.equal(model.spatial_filter, crop)
    x = torch.randn(2, 1, 12, HEIGHT, WIDTH)
    with torch.no_grad():
        output = model(x)
    expected = _expected(x[..., 0:5, 6:11], crop, torch.from_numpy(temporal), 0.5, 2.0, 1.0, -1.0)
    assert output.shape == (2, 12 - FILTER_LENGTH + 1, 1)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-6)


def test_single_cell_state_layout_and_constraints(fake_sta) -> None:
    model = SingleCellSpatialContrast((1, 20, HEIGHT, WIDTH), "stas", "cell.npy")
    assert list(model.state_dict()) == [
        "nl_a",
        "nl_b",
        "nl_c",
        "w",
        "spatial_filter",
        "temporal_filter",
        "spatial_filter_sum",
    ]
    with torch.no_grad():
        model.nl_a.fill_(-1.0)
        model.w.fill_(-0.5)
    model.on_train_batch_end(None, None, 0)
    assert model.nl_a.item() == 0.0 and model.w.item() == 0.0


def test_uniform_stimulus_has_finite_gradients(fake_sta) -> None:
    model = SingleCellSpatialContrast((1, 20, HEIGHT, WIDTH), "stas", "cell.npy", w_init=1.0)
    model(torch.ones(1, 1, 6, HEIGHT, WIDTH)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_single_cell_rejects_colour_and_wrong_frames(fake_sta) -> None:
    with pytest.raises(DataShapeError, match="single-channel"):
        SingleCellSpatialContrast((2, 20, HEIGHT, WIDTH), "stas", "cell.npy")
    model = SingleCellSpatialContrast((1, 20, HEIGHT, WIDTH), "stas", "cell.npy")
    with pytest.raises(DataShapeError, match="expected"):
        model(torch.zeros(1, 1, 2, HEIGHT, WIDTH))


def test_missing_sta_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"missing\.npy"):
        SingleCellSpatialContrast((1, 20, HEIGHT, WIDTH), tmp_path, "missing.npy")


def test_core_readout_needs_cell_indices(fake_sta) -> None:
    with pytest.raises(DataFormatError, match="sessions_kwargs"):
        SpatialContrastCoreReadout((1, 20, HEIGHT, WIDTH), {"01": 2}, sta_dir="stas")
    with pytest.raises(DataFormatError, match="lists 1 cells"):
        SpatialContrastCoreReadout(
            (1, 20, HEIGHT, WIDTH),
            {"01": 2},
            sta_dir="stas",
            data_info={"sessions_kwargs": {"01": {"cell_indices": [3]}}},
        )


def test_core_readout_builds_one_readout_per_session(fake_sta) -> None:
    data_info = {
        "input_shape": (1, HEIGHT, WIDTH),
        "sessions_kwargs": {"01": {"cell_indices": [3, 5]}, "02": {"cell_indices": [7]}},
    }
    model = SpatialContrastCoreReadout(
        (1, 20, HEIGHT, WIDTH), {"01": 2, "02": 1}, sta_dir="stas", cut_first_n_frames=2, data_info=data_info
    )
    assert [name for name, _ in fake_sta] == [
        "cell_data_01_WN_stas_cell_3.npy",
        "cell_data_01_WN_stas_cell_5.npy",
        "cell_data_02_WN_stas_cell_7.npy",
    ]
    assert torch.equal(model.readout["01"].spatial_filters[1], torch.from_numpy(_filters(5)[0]))
    x = torch.randn(2, 1, 10, HEIGHT, WIDTH)
    with torch.no_grad():
        output = model(x, data_key="01")
    assert output.shape == (2, 10 - 2 - FILTER_LENGTH + 1, 2)
    assert model.number_of_cut_frames() == 2 + FILTER_LENGTH - 1
    with torch.no_grad():
        model.readout["02"].nl_a.fill_(-3.0)
    model.on_train_batch_end(None, None, 0)
    assert (model.readout["02"].nl_a == 0).all()
