"""Regularisers against hand-computed values and an independent numpy implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openretina.errors import DataShapeError
from openretina.modules.layers.regularizers import (
    EPS,
    FlatLaplaceL23dnorm,
    GaussianLaplaceL2,
    Laplace,
    Laplace1d,
    LAPLACE_3x3,
    LaplaceL2norm,
    TimeLaplaceL23dnorm,
    gaussian2d,
    group_sparsity_norm,
)


def _correlate2d_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Plain-loop 2-D cross-correlation without padding (independent of torch)."""
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = np.sum(image[r : r + kh, c : c + kw] * kernel)
    return out


def _numpy_flat_laplace(weights: np.ndarray, padding: int, avg: bool = False) -> float:
    """Reference-free re-computation of agg(L(w)^2) / (agg(w^2) + EPS) over all (out, in) maps."""
    kernel = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float64)
    maps = weights.reshape(-1, weights.shape[-2], weights.shape[-1]).astype(np.float64)
    responses = [_correlate2d_valid(np.pad(m, padding), kernel) for m in maps]
    squares = np.concatenate([r.ravel() for r in responses]) ** 2
    if avg:
        return float(squares.mean() / ((maps**2).mean() + EPS))
    return float(squares.sum() / ((maps**2).sum() + EPS))


def test_laplace_constants_have_leading_singleton_dims() -> None:
    assert LAPLACE_3x3.shape == (1, 1, 3, 3)
    assert LAPLACE_3x3.dtype == np.float32
    # A discrete Laplacian sums to zero, so constant images give zero response.
    for size in (3, 5, 7):
        assert Laplace(filter_size=size).filter.sum().item() == 0.0


def test_laplace_of_delta_reproduces_the_filter() -> None:
    delta = torch.zeros(1, 1, 3, 3)
    delta[0, 0, 1, 1] = 1.0
    out = Laplace()(delta)  # default padding keeps the size
    expected = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
    torch.testing.assert_close(out[0, 0], expected)


def test_laplace_rejects_unknown_filter_size() -> None:
    with pytest.raises(ValueError, match="filter_size"):
        Laplace(filter_size=4)


def test_laplace_buffer_persistence_flag_controls_state_dict() -> None:
    assert list(Laplace().state_dict()) == ["filter"]
    assert list(Laplace(persistent_buffer=False).state_dict()) == []
    assert list(Laplace1d(persistent_buffer=False).state_dict()) == []
    assert list(TimeLaplaceL23dnorm(padding=0, persistent_buffer=False).state_dict()) == []
    assert list(FlatLaplaceL23dnorm(padding=0).state_dict()) == ["laplace.filter"]


def test_flat_laplace_of_delta_hand_computed() -> None:
    delta = torch.zeros(1, 1, 1, 3, 3)
    delta[..., 1, 1] = 1.0
    # Padding 1: the response is the full filter, squares sum to 16 + 4 * 1 = 20.
    assert FlatLaplaceL23dnorm()(delta).item() == pytest.approx(20.0 / (1.0 + EPS))
    # Padding 0: only the centre tap survives, response 4 -> 16.
    assert FlatLaplaceL23dnorm(padding=0)(delta).item() == pytest.approx(16.0 / (1.0 + EPS))


def test_flat_laplace_of_linear_ramp_is_zero_without_padding() -> None:
    ramp = torch.arange(25, dtype=torch.float32).view(1, 1, 1, 5, 5)
    assert FlatLaplaceL23dnorm(padding=0)(ramp).item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("avg", [False, True])
def test_flat_laplace_matches_numpy(padding: int, avg: bool) -> None:
    weights = torch.randn(4, 3, 1, 7, 6, generator=torch.Generator().manual_seed(0))
    ours = FlatLaplaceL23dnorm(padding=padding)(weights, avg=avg).item()
    assert ours == pytest.approx(_numpy_flat_laplace(weights.numpy(), padding, avg), rel=1e-5)


def test_laplace_l2norm_on_4d_weights_matches_numpy() -> None:
    weights = torch.randn(2, 5, 6, 6, generator=torch.Generator().manual_seed(1))
    ours = LaplaceL2norm(padding=0)(weights).item()
    assert ours == pytest.approx(_numpy_flat_laplace(weights.numpy(), 0), rel=1e-5)


def test_time_laplace_hand_computed() -> None:
    # One trace [0, 1, 0]: padded response [-1, 2, -1] -> squares 6; without padding only the centre 2 -> 4.
    trace = torch.tensor([0.0, 1.0, 0.0]).view(1, 1, 3, 1, 1)
    assert TimeLaplaceL23dnorm()(trace).item() == pytest.approx(6.0 / (1.0 + EPS))
    assert TimeLaplaceL23dnorm(padding=0)(trace).item() == pytest.approx(4.0 / (1.0 + EPS))
    # Mean aggregation over 2 traces of [1, 2, 4]: valid responses 2*2 - 1 - 4 = -1 -> mean(1) / mean(w^2).
    traces = torch.tensor([1.0, 2.0, 4.0]).repeat(2, 1).view(2, 1, 3, 1, 1)
    assert TimeLaplaceL23dnorm(padding=0)(traces, avg=True).item() == pytest.approx(1.0 / (21.0 / 3 + EPS))


def test_laplace1d_default_padding_keeps_length() -> None:
    x = torch.randn(3, 1, 10)
    assert Laplace1d()(x).shape == (3, 1, 10)


def test_shape_errors_name_the_regulariser() -> None:
    with pytest.raises(DataShapeError, match=r"TimeLaplaceL23dnorm.*spatial size"):
        TimeLaplaceL23dnorm()(torch.randn(2, 2, 5, 3, 3))
    with pytest.raises(DataShapeError, match=r"FlatLaplaceL23dnorm.*temporal size 1"):
        FlatLaplaceL23dnorm()(torch.randn(2, 2, 5, 3, 3))
    with pytest.raises(DataShapeError, match=r"LaplaceL2norm.*4-D"):
        LaplaceL2norm()(torch.randn(2, 2, 1, 3, 3))


def test_flat_laplace_is_differentiable() -> None:
    weights = torch.randn(3, 2, 1, 5, 5, requires_grad=True)
    FlatLaplaceL23dnorm(padding=0)(weights).backward()
    assert weights.grad is not None and torch.isfinite(weights.grad).all() and weights.grad.abs().sum() > 0


def test_gaussian2d_centre_normalisation_and_shift() -> None:
    g = gaussian2d(5, sigma=1.0)
    assert g.dtype == np.float32 and g.shape == (5, 5)
    assert g[2, 2] == pytest.approx(1.0) and g.min() == pytest.approx(0.0)
    # Unnormalised value at offset (dy=1, dx=2): exp(-(1 + 4) / 2).
    raw = gaussian2d(5, sigma=1.0, normalize=False)
    assert raw[3, 4] == pytest.approx(np.exp(-2.5), rel=1e-6)
    # Shifting the centre by one row moves the peak down one row.
    shifted = gaussian2d((5, 7), sigma=1.0, center=(1, 0), normalize=False)
    assert shifted.shape == (5, 7) and np.unravel_index(shifted.argmax(), shifted.shape) == (3, 3)


def test_gaussian2d_elongation_and_rotation() -> None:
    # gamma=2 halves the width along y; theta=pi/2 swaps the two axes.
    flat = gaussian2d(9, sigma=2.0, gamma=2.0, normalize=False)
    assert flat[4, 8] == pytest.approx(np.exp(-0.5 * 16 / 4), rel=1e-6)  # 4 px along x, sigma_x = 2
    assert flat[8, 4] == pytest.approx(np.exp(-0.5 * 16 / 1), rel=1e-5)  # 4 px along y, sigma_y = 1
    rotated = gaussian2d(9, sigma=2.0, gamma=2.0, theta=np.pi / 2, normalize=False)
    np.testing.assert_allclose(rotated, flat.T, rtol=1e-5, atol=1e-7)


def test_gaussian_laplace_matches_manual_weighting() -> None:
    weights = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    reg = GaussianLaplaceL2(kernel=5)
    assert list(reg.state_dict()) == ["laplace.filter"]
    kernel = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float64)
    g = gaussian2d(5, sigma=5 / 4)
    maps = weights.numpy().reshape(6, 5, 5).astype(np.float64)
    responses = np.stack([_correlate2d_valid(np.pad(m, 1), kernel) for m in maps]) * (1 - g)
    expected = (responses**2).sum() / ((maps**2).sum() + EPS)
    assert reg(weights).item() == pytest.approx(expected, rel=1e-5)


def test_group_sparsity_hand_computed() -> None:
    # One output channel reading from two inputs with norms 3 and 4: (3 + 4) / 5.
    weight = torch.tensor([[[3.0], [4.0]]])
    assert group_sparsity_norm(weight, eps=0.0).item() == pytest.approx(1.4)
    # Each output channel using a single input scores 1, so two such channels score 2.
    one_hot = torch.zeros(2, 3, 1, 2, 2)
    one_hot[0, 1] = 0.5
    one_hot[1, 2] = -2.0
    assert group_sparsity_norm(one_hot).item() == pytest.approx(2.0, rel=1e-6)


def test_group_sparsity_gradient_is_finite_for_zero_kernels() -> None:
    weight = torch.zeros(2, 3, 1, 3, 3)
    weight[0, 0] = 1.0
    weight.requires_grad_(True)
    group_sparsity_norm(weight).backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all()
