"""LSTA vector fields on hand-made models whose gradients are known in closed form."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError
from openretina.insilico.vector_field_analysis import (
    bin_vector_field,
    compute_lsta_library,
    get_images_coordinate,
    get_model_temporal_padding,
    get_pc_from_pca,
    image_onset_frame,
    load_and_preprocess_images,
    normalize_movies_array,
    prepare_movies_dataset,
)

matplotlib.use("Agg")

C, H, W, K = 2, 5, 4, 4  # channels, height, width, temporal kernel length (lag = K - 1 = 3)
LAG = K - 1
STIM_MEAN, STIM_STD = 2.0, 4.0


class FilterModel(nn.Module):
    """Response of cell n at output frame j: ``f(sum_{c,k,h,w} F[n,c,k,h,w] * x[c, j+k, h, w])``.

    ``f`` is the identity (``power=1``, linear) or the square (``power=2``). Input: (batch, C, time, H, W).
    Output: (batch, time - 3, cells). No ``number_of_cut_frames``: the lag must be measured.
    """

    def __init__(self, cells: int = 3, power: int = 1) -> None:
        super().__init__()
        self.filters = nn.Parameter(torch.randn((cells, C, K, H, W), generator=torch.Generator().manual_seed(1)))
        self.power = power
        self.data_info = {"input_shape": (C, H, W), "stim_mean": STIM_MEAN, "stim_std": STIM_STD}

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        windows = x.unfold(2, K, 1)  # (batch, C, time_out, H, W, K)
        return torch.einsum("bcthwk,nckhw->btn", windows, self.filters) ** self.power

    def stimulus_shape(self, time_steps: int, num_batches: int = 1) -> tuple[int, int, int, int, int]:
        return (num_batches, C, time_steps, H, W)


def image_library(count: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 10, size=(count, C, H, W)).astype(np.float32)


def test_prepare_movies_dataset_grey_then_normalised_image() -> None:
    model = FilterModel()
    images = image_library()
    movies, n_empty = prepare_movies_dataset(model, "s", n_image_frames=6, image_library=images)
    assert n_empty == LAG + 10 and movies.shape == (12, C, n_empty + 6, H, W)
    grey = (images.mean(axis=(0, 2, 3)) - STIM_MEAN) / STIM_STD  # mean luminance of the images, per channel
    for frame in range(n_empty):
        np.testing.assert_allclose(movies[:, :, frame], np.broadcast_to(grey[None, :, None, None], (12, C, H, W)))
    expected_images = (images - STIM_MEAN) / STIM_STD
    for frame in range(n_empty, n_empty + 6):
        np.testing.assert_allclose(movies[:, :, frame], expected_images, rtol=1e-6)
    assert image_onset_frame(movies) == n_empty
    raw, _ = prepare_movies_dataset(model, "s", n_image_frames=2, normalize_movies=False, image_library=images)
    np.testing.assert_allclose(raw[:, :, -1], images)


def test_prepare_movies_dataset_rejects_bad_input() -> None:
    model = FilterModel()
    with pytest.raises(ValueError, match="exactly one"):
        prepare_movies_dataset(model, "s")
    with pytest.raises(DataShapeError, match=r"\(images, 2, 5, 4\)"):
        prepare_movies_dataset(model, "s", image_library=np.zeros((3, 1, H, W)))


def test_normalisation_reads_legacy_per_session_dict_and_default() -> None:
    model = FilterModel()
    norm_dict = {"a": {"norm_mean": 1.0, "norm_std": 2.0}, "default": {"norm_mean": 3.0, "norm_std": 1.0}}
    model.data_info = {"movie_norm_dict": norm_dict}
    movies = np.full((1, C, 2, H, W), 5.0, dtype=np.float32)
    assert np.all(normalize_movies_array(movies, model, "a", C) == 2.0)
    assert np.all(normalize_movies_array(movies, model, "other", C) == 2.0)
    assert np.all(movies == 5.0)  # the input is not modified
    model.data_info = {}
    with pytest.raises(DataFormatError, match="stim_mean"):
        normalize_movies_array(movies, model, "a", C)


def test_load_and_preprocess_images_subsamples_and_centre_crops(tmp_path: Path) -> None:
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, size=(23, 17), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "b.png")
    Image.fromarray(255 - pixels).save(tmp_path / "a.png")
    images = load_and_preprocess_images(tmp_path, target_h=5, target_w=4, n_channels=3)
    # stride int(min(23 / 5, 17 / 4)) = 4 -> 6 x 5 pixels -> crop rows 0..4 (offset 0), columns 0..3 (offset 0)
    expected = pixels[::4, ::4][:5, :4].astype(np.float32)
    assert images.shape == (2, 3, 5, 4) and images.dtype == np.float32
    np.testing.assert_array_equal(images[1, 2], expected)  # sorted by name: b.png second
    np.testing.assert_array_equal(images[0, 0], 255 - expected)
    with pytest.raises(DataShapeError, match="smaller than the target"):
        load_and_preprocess_images(tmp_path, target_h=30, target_w=4, n_channels=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileNotFoundError, match=r"no \*\.png"):
        load_and_preprocess_images(empty, 5, 4, 1)


def test_temporal_padding_is_measured_for_models_without_cut_frames() -> None:
    assert get_model_temporal_padding(FilterModel(), C, H, W, "cpu") == LAG


def test_lsta_of_linear_model_is_the_filter_averaged_over_driving_image_frames() -> None:
    model = FilterModel(power=1).train()
    movies, n_empty = prepare_movies_dataset(model, "s", n_image_frames=6, image_library=image_library())
    assert n_empty == 13
    # Output frames 10 and 11 depend on input frames 10..14; the image shows from frame 13 on.
    # d/dx_13 = F[k=3] (via j=10) + F[k=2] (via j=11); d/dx_14 = F[k=3] (via j=11). Mean of the two frames:
    lsta, responses = compute_lsta_library(model, movies, "s", cell_id=1, integration_window=(10, 12))
    filters = model.filters.detach().numpy()[1]
    expected = (filters[:, 2] + 2 * filters[:, 3]) / 2
    assert lsta.shape == (12, C, H, W)
    for image_lsta in lsta:  # the same for every image: the model is linear
        np.testing.assert_allclose(image_lsta, expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(responses, model(torch.from_numpy(movies)).numpy(), rtol=1e-5, atol=1e-4)
    assert model.training and model.filters.requires_grad and model.filters.grad is None


def test_lsta_of_quadratic_model_scales_the_filter_by_the_drive() -> None:
    model = FilterModel(power=2)
    movies, _ = prepare_movies_dataset(model, "s", n_image_frames=6, image_library=image_library())
    # Output frames 13..15 see only the image I: r = (S . I)^2 with S = sum_k F[k]. Averaged over the 6 image
    # frames, the gradient is 3 windows * 2 (S . I) S / 6 = (S . I) S.
    lsta, _ = compute_lsta_library(model, movies, "s", cell_id=0, integration_window=(13, 16), batch_size=5)
    summed = model.filters.detach().numpy()[0].sum(axis=1)  # (C, H, W)
    images = movies[:, :, -1]
    expected = np.einsum("nchw,chw->n", images, summed)[:, None, None, None] * summed[None]
    np.testing.assert_allclose(lsta, expected, rtol=1e-4, atol=1e-4)


def test_lsta_rejects_bad_windows_and_cells() -> None:
    model = FilterModel()
    movies, _ = prepare_movies_dataset(model, "s", n_image_frames=6, image_library=image_library(count=2))
    with pytest.raises(DataShapeError, match="0 <= w0 < w1 <= 16"):
        compute_lsta_library(model, movies, "s", 0, integration_window=(10, 30))
    with pytest.raises(DataShapeError, match="no image frame drives the window"):
        compute_lsta_library(model, movies, "s", 0, integration_window=(2, 8))
    with pytest.raises(IndexError, match="cell_id 7 is out of range"):
        compute_lsta_library(model, movies, "s", 7, integration_window=(10, 12))


def orthonormal_pair(pixels: int) -> tuple[np.ndarray, np.ndarray]:
    basis, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((pixels, 2)))
    return basis[:, 0], basis[:, 1]


def test_pca_recovers_the_planted_components_and_their_variance() -> None:
    u, v = orthonormal_pair(H * W)
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 3.0, 200), rng.normal(0, 1.0, 200)
    lstas = np.zeros((200, C, H, W))
    lstas[:, 1] = (5.0 + a[:, None] * u + b[:, None] * v).reshape(200, H, W)
    pc1, pc2, ratio = get_pc_from_pca(None, 1, lstas)
    # Independent computation: eigenvectors of the sample covariance.
    flat = lstas[:, 1].reshape(200, -1)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(flat, rowvar=False))
    top = eigenvectors[:, ::-1][:, :2]
    for pc, expected in zip((pc1, pc2), top.T):
        np.testing.assert_allclose(np.abs(pc @ expected), 1.0, atol=1e-8)
        assert pc[np.argmax(np.abs(pc))] > 0  # sign convention: largest pixel positive
    np.testing.assert_allclose(ratio, eigenvalues[::-1][:2] / eigenvalues.sum(), rtol=1e-8)
    assert ratio[0] > ratio[1] > 0.05
    with pytest.raises(DataFormatError, match="all identical"):
        get_pc_from_pca(None, 0, lstas)


def test_image_coordinates_are_centred_projections() -> None:
    u, v = orthonormal_pair(H * W)
    images = np.random.default_rng(5).normal(size=(6, H, W))
    flat = images.reshape(6, -1)
    centred = get_images_coordinate(images, u, v)
    raw = get_images_coordinate(images, u, v, center=False)
    np.testing.assert_allclose(raw, np.stack([flat @ u, flat @ v], axis=1))
    np.testing.assert_allclose(centred, raw - raw.mean(axis=0))


def test_binning_averages_per_bin_and_keeps_points_on_the_upper_edge() -> None:
    coordinates = np.array([[0.0, 0.0], [0.1, 0.1], [1.0, 1.0], [2.0, 2.0], [1.9, 0.2]])
    vectors = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 1.0], [0.0, 3.0], [5.0, 5.0]])
    responses = np.array([1.0, 3.0, 10.0, 20.0, 7.0])
    field = bin_vector_field(coordinates, vectors, x_bins=2, y_bins=2, responses=responses)
    # Edges [0, 1, 2] on both axes: bins (0, 0) = points 0, 1; (1, 0) = point 4; (1, 1) = points 2, 3 (2.0 is kept).
    np.testing.assert_allclose(field.tails, [[0.05, 0.05], [1.9, 0.2], [1.5, 1.5]])
    np.testing.assert_allclose(field.vectors, [[2.0, 1.0], [5.0, 5.0], [0.0, 2.0]])
    np.testing.assert_allclose(field.bin_centers, [[0.5, 0.5], [1.5, 0.5], [1.5, 1.5]])
    np.testing.assert_array_equal(field.counts, [2, 1, 2])
    assert field.responses is not None
    np.testing.assert_allclose(field.responses, [2.0, 7.0, 15.0])
    with pytest.raises(DataShapeError, match=r"response_library\[:, w0:w1, cell_id\]"):
        bin_vector_field(coordinates, vectors, responses=np.zeros((5, 4, 3)))


def test_reference_module_pipeline_and_figures() -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from openretina.insilico.vector_field_analysis import vector_field_analysis as vfa

    model = FilterModel(power=2)
    movies, _ = vfa.prepare_movies_dataset(model, "s", n_image_frames=6, image_library=image_library(count=40))
    lsta, responses = vfa.compute_lsta_library(model, movies, "s", 0, integration_window=(13, 16))
    pc1, pc2, ratio = vfa.get_pc_from_pca(model, 0, lsta, plot=True)
    # Every LSTA is a multiple of the summed filter S (see the quadratic test): PC1 is S, explaining everything.
    summed = model.filters.detach().numpy()[0].sum(axis=1)[0].ravel()
    np.testing.assert_allclose(abs(pc1 @ summed) / np.linalg.norm(summed), 1.0, atol=1e-5)
    assert ratio[0] > 0.999
    images = movies[:, 0, -1]
    coordinates = vfa.get_images_coordinate(images, pc1, pc2, plot=True)
    per_image = responses[:, 13:16, 0].mean(axis=1)
    clean = vfa.plot_clean_vectorfield(lsta, 0, pc1, pc2, images, coordinates, ratio, 5, 5, responses=per_image)
    untreated = vfa.plot_untreated_vectorfield(lsta, 0, pc1, pc2, coordinates)
    assert isinstance(clean, Figure) and isinstance(untreated, Figure)
    assert len(clean.axes) == 4  # field, colour bar, two PC insets
    assert clean.axes[-1].get_title() == "PC2 (0.0%)" and clean.axes[-2].get_title() == "PC1 (100.0%)"
    assert len(plt.get_fignums()) == 4  # the two figures drawn by plot=True as well
    plt.close("all")
