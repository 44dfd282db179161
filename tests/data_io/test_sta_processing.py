"""STA filter extraction on small STA files written by the tests, with known Gaussian receptive fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openretina.errors import DataFileNotFoundError, DataShapeError
from openretina.utils.sta_processing import (
    create_gaussian_mask,
    extract_filters_from_sta,
    fit_2d_gaussian,
    gaussian_2d,
    load_sta_and_extract_filters,
)

HEIGHT, WIDTH, FRAMES = 20, 24, 12
TRUE = {"cx": 14.0, "cy": 8.0, "sx": 2.0, "sy": 3.0, "theta": 0.4}


def gaussian_frame(amplitude: float = 1.0) -> np.ndarray:
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return gaussian_2d((xx, yy), *TRUE.values(), amplitude).reshape(HEIGHT, WIDTH)


def time_course() -> np.ndarray:
    return np.sin(np.linspace(0, np.pi, FRAMES)) * np.linspace(0.2, 1.0, FRAMES)


def write_sta(tmp_path: Path, amplitude: float = 1.0, noise: float = 0.01) -> Path:
    sta = np.einsum("t,hw->thw", time_course(), gaussian_frame(amplitude))
    sta += noise * np.random.default_rng(0).normal(size=sta.shape)
    np.save(tmp_path / "cell.npy", sta)
    return tmp_path / "cell.npy"


def test_gaussian_matches_the_formula_at_hand_picked_points() -> None:
    # On the major axis (rotated by theta) one sigma away the value is A·exp(-1/2).
    theta, sx = TRUE["theta"], TRUE["sx"]
    x, y = TRUE["cx"] + sx * np.cos(theta), TRUE["cy"] + sx * np.sin(theta)
    value = gaussian_2d((np.array([x, TRUE["cx"]]), np.array([y, TRUE["cy"]])), *TRUE.values(), 2.0)
    np.testing.assert_allclose(value, [2.0 * np.exp(-0.5), 2.0])


def test_fit_recovers_the_parameters() -> None:
    fit = fit_2d_gaussian(-3.0 * gaussian_frame())
    assert fit["success"] and fit["covariance"].shape == (6, 6)
    assert fit["center_x"] == pytest.approx(TRUE["cx"], abs=1e-3) and fit["center_y"] == pytest.approx(8.0, abs=1e-3)
    assert fit["sigma_x"] == pytest.approx(2.0, abs=1e-3) and fit["sigma_y"] == pytest.approx(3.0, abs=1e-3)
    assert fit["theta"] == pytest.approx(0.4, abs=1e-3) and fit["amplitude"] == pytest.approx(-3.0, abs=1e-3)


def test_mask_counts_points_inside_the_ellipse() -> None:
    mask = create_gaussian_mask((HEIGHT, WIDTH), 10.0, 10.0, 2.0, 1.0, 0.0, n_sigma=1)
    assert mask.dtype == np.float32
    # Unrotated ellipse with half-axes 2 (x) and 1 (y): 5 points on the row, 1 above and below the centre.
    assert mask.sum() == 7 and mask[10, 8:13].all() and mask[9, 10] == mask[11, 10] == 1
    rotated = create_gaussian_mask((HEIGHT, WIDTH), 10.0, 10.0, 2.0, 1.0, np.pi / 2, n_sigma=1)
    assert rotated[8:13, 10].all() and rotated[10, 9] == rotated[10, 11] == 1 and rotated.sum() == 7


@pytest.mark.parametrize("amplitude", [1.0, -1.0])  # ON and OFF cells
def test_extracted_filters_are_the_masked_gaussian_and_the_centre_time_course(tmp_path: Path, amplitude: float) -> None:
    spatial, temporal, params = load_sta_and_extract_filters(tmp_path, write_sta(tmp_path, amplitude).name)
    assert spatial.dtype == temporal.dtype == np.float32 and spatial.shape == (HEIGHT, WIDTH)
    assert params["amplitude"] > 0 and params["center_x"] == pytest.approx(14.0, abs=0.05)
    expected = gaussian_frame() * create_gaussian_mask((HEIGHT, WIDTH), *TRUE.values(), n_sigma=3)
    assert np.corrcoef(spatial.ravel(), expected.ravel())[0, 1] > 0.999 and np.linalg.norm(spatial) == pytest.approx(1)
    fitted = [params[key] for key in ("center_x", "center_y", "sigma_x", "sigma_y", "theta")]
    np.testing.assert_array_equal(spatial > 0, create_gaussian_mask((HEIGHT, WIDTH), *fitted, n_sigma=3) > 0)
    centre = time_course() * gaussian_frame(amplitude)[8, 14]
    np.testing.assert_allclose(temporal, centre / np.linalg.norm(centre), atol=0.02)  # keeps the polarity
    _, cropped, _ = extract_filters_from_sta(np.load(tmp_path / "cell.npy"), temporal_crop_frames=4)
    np.testing.assert_allclose(cropped, centre[-4:] / np.linalg.norm(centre[-4:]), atol=0.05)


def test_flip_and_centre_crop(tmp_path: Path) -> None:
    write_sta(tmp_path)
    _, _, flipped = load_sta_and_extract_filters(tmp_path, "cell.npy", flip_sta=True)
    assert flipped["center_x"] == pytest.approx(WIDTH - 1 - 14.0, abs=0.05)
    _, _, cropped = load_sta_and_extract_filters(tmp_path, "cell.npy", target_spatial_shape=(16, 20))
    assert cropped["center_x"] == pytest.approx(12.0, abs=0.05) and cropped["center_y"] == pytest.approx(6.0, abs=0.05)
    with pytest.raises(DataShapeError, match="smaller than the target 30x20"):
        load_sta_and_extract_filters(tmp_path, "cell.npy", target_spatial_shape=(30, 20))
    with pytest.raises(DataFileNotFoundError, match=r"missing\.npy"):
        load_sta_and_extract_filters(tmp_path, "missing.npy")


def test_non_finite_sta_gives_zero_filters_with_a_warning() -> None:
    sta = np.full((FRAMES, HEIGHT, WIDTH), np.nan)
    with pytest.warns(UserWarning, match="not finite"):
        spatial, temporal, params = extract_filters_from_sta(sta, temporal_crop_frames=5)
    assert not spatial.any() and temporal.shape == (5,) and not temporal.any() and params["success"] is False
    with pytest.raises(DataShapeError, match="time, height, width"):
        extract_filters_from_sta(sta[0])
