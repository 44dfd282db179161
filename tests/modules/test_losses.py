"""Losses against plain-numpy computations, target alignment, reductions and numerical safety."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openretina.errors import DataShapeError
from openretina.modules import measures
from openretina.modules.losses import (
    CelltypeCorrelationLoss3d,
    CelltypePoissonLoss3d,
    CorrelationLoss3d,
    L1CorrelationLoss3d,
    L1PoissonLoss3d,
    MSE3d,
    PoissonLoss3d,
    ScaledCorrelationLoss3d,
    StandardPoissonLoss3d,
    pearson_correlation,
)


@pytest.fixture
def pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Predictions (batch 3, time 6, neurons 4) and targets with 2 extra leading frames (lag 2)."""
    output = rng.uniform(0.1, 3.0, size=(3, 6, 4))
    target = rng.poisson(1.5, size=(3, 8, 4)).astype(np.float64)
    return output, target


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).double()


def _numpy_poisson(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    lag = target.shape[1] - output.shape[1]
    return output - target[:, lag:] * np.log(output + 1e-16)


def _numpy_corr(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per (batch, neuron) correlation over time with np.corrcoef; shape (batch, neurons)."""
    lag = target.shape[1] - output.shape[1]
    aligned = target[:, lag:]
    return np.array(
        [
            [np.corrcoef(output[b, :, n], aligned[b, :, n])[0, 1] for n in range(output.shape[2])]
            for b in range(output.shape[0])
        ]
    )


# ------------------------------------------------------------------------------------------------------ Poisson


def test_poisson_hand_computed_value_with_lag() -> None:
    output = torch.tensor([[[1.0], [2.0]]])
    target = torch.tensor([[[5.0], [1.0], [3.0]]])  # lag 1: the 5 is dropped
    expected = (1.0 - 1.0 * np.log(1.0)) + (2.0 - 3.0 * np.log(2.0))
    assert PoissonLoss3d()(output, target).item() == pytest.approx(expected, rel=1e-6)


def test_poisson_reductions(pair: tuple[np.ndarray, np.ndarray]) -> None:
    output, target = pair
    elementwise = _numpy_poisson(output, target)
    assert PoissonLoss3d()(_t(output), _t(target)).item() == pytest.approx(elementwise.sum(), rel=1e-10)
    assert PoissonLoss3d(avg=True)(_t(output), _t(target)).item() == pytest.approx(elementwise.mean(), rel=1e-10)
    assert PoissonLoss3d(reduction="mean")(_t(output), _t(target)).item() == pytest.approx(elementwise.mean())
    per_neuron = PoissonLoss3d(per_neuron=True)(_t(output), _t(target))
    np.testing.assert_allclose(per_neuron.numpy(), elementwise.reshape(-1, 4).mean(axis=0), rtol=1e-10)


def test_l1_poisson_adds_reduced_activity(pair: tuple[np.ndarray, np.ndarray]) -> None:
    output, target = pair
    elementwise = _numpy_poisson(output, target)
    loss = L1PoissonLoss3d(gamma_l1=0.1)(_t(output), _t(target))
    assert loss.item() == pytest.approx(elementwise.sum() + 0.1 * np.abs(output).sum(), rel=1e-10)
    mean_loss = L1PoissonLoss3d(avg=True, gamma_l1=0.1)(_t(output), _t(target))
    assert mean_loss.item() == pytest.approx(elementwise.mean() + 0.1 * np.abs(output).mean(), rel=1e-10)
    per_neuron = L1PoissonLoss3d(per_neuron=True, gamma_l1=0.1)(_t(output), _t(target))
    expected = elementwise.reshape(-1, 4).mean(0) + 0.1 * np.abs(output).reshape(-1, 4).mean(0)
    np.testing.assert_allclose(per_neuron.numpy(), expected, rtol=1e-10)


def test_celltype_poisson_weights_samples_by_group(pair: tuple[np.ndarray, np.ndarray]) -> None:
    output, target = pair
    counts = torch.tensor([2.0, 6.0])
    assignment = torch.tensor([1, 2, 2])
    weights = np.array([4 / 2, 4 / 6, 4 / 6])  # mean(counts) / counts[group - 1]
    expected = (_numpy_poisson(output, target) * weights[:, None, None]).sum()
    assert CelltypePoissonLoss3d()(_t(output), _t(target), assignment, counts).item() == pytest.approx(expected)
    with pytest.raises(DataShapeError, match="1-based"):
        CelltypePoissonLoss3d()(_t(output), _t(target), torch.tensor([0, 1, 1]), counts)
    for loss in (CelltypePoissonLoss3d(), CelltypeCorrelationLoss3d()):
        with pytest.raises(DataShapeError, match="one per batch sample"):
            loss(_t(output), _t(target), torch.tensor([1, 2]), counts)
    standard = StandardPoissonLoss3d()(_t(output), _t(target), assignment, counts)
    assert standard.item() == pytest.approx(_numpy_poisson(output, target).sum())


@pytest.mark.parametrize("prediction", [0.0, 1e-30])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_poisson_is_finite_for_zero_and_tiny_predictions(prediction: float, dtype: torch.dtype) -> None:
    output = torch.full((2, 3, 4), prediction, dtype=dtype, requires_grad=True)
    target = torch.full((2, 3, 4), 2.0, dtype=dtype)
    for loss_fn in (PoissonLoss3d(), PoissonLoss3d(avg=True), L1PoissonLoss3d(), PoissonLoss3d(per_neuron=True)):
        loss = loss_fn(output, target)
        assert torch.isfinite(loss).all()
        loss.sum().backward()
        # d/dŷ = 1 - y / (ŷ + 1e-16) ≈ -2e16 is finite in float32/bfloat16 but beyond float16's range (65504).
        assert output.grad is not None and (dtype == torch.float16 or torch.isfinite(output.grad).all())
        output.grad = None
    # Zero predictions where nothing was observed cost nothing.
    assert PoissonLoss3d()(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)).item() == 0.0


def test_poisson_str() -> None:
    assert str(PoissonLoss3d(avg=True)) == "PoissonLoss3d(bias=1e-16 per_neuron=False avg=True)"


# ---------------------------------------------------------------------------------------------------- alignment


@pytest.mark.parametrize(
    "loss_fn", [PoissonLoss3d(), CorrelationLoss3d(), MSE3d(), ScaledCorrelationLoss3d(scale=3)], ids=str
)
def test_first_lag_target_frames_are_dropped(loss_fn: torch.nn.Module, pair: tuple[np.ndarray, np.ndarray]) -> None:
    output, target = pair
    poisoned = target.copy()
    poisoned[:, :2] = np.nan  # lag = 2: these frames must never be read
    assert loss_fn(_t(output), _t(poisoned)).item() == pytest.approx(loss_fn(_t(output), _t(target)).item())
    assert np.isfinite(loss_fn(_t(output), _t(poisoned)).item())


@pytest.mark.parametrize("loss_fn", [PoissonLoss3d(), CorrelationLoss3d(), MSE3d()], ids=str)
def test_shape_errors_name_expected_and_actual(loss_fn: torch.nn.Module) -> None:
    with pytest.raises(DataShapeError, match=r"\(2, 5, 3\).*\(2, 5, 4\)"):
        loss_fn(torch.ones(2, 5, 3), torch.ones(2, 5, 4))
    with pytest.raises(DataShapeError, match="at least as long"):
        loss_fn(torch.ones(2, 5, 3), torch.ones(2, 4, 3))
    with pytest.raises(DataShapeError, match=r"\(batch, time, neurons\)"):
        loss_fn(torch.ones(5, 3), torch.ones(5, 3))


def test_reduction_argument_validation() -> None:
    with pytest.raises(ValueError, match="contradicts"):
        PoissonLoss3d(avg=True, reduction="sum")
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        CorrelationLoss3d(reduction="max")
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        MSE3d(reduction="none")


# -------------------------------------------------------------------------------------------- mean invariance


def _enlarged(output: np.ndarray, target: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    lag = target.shape[1] - output.shape[1]
    if how == "batch":
        return np.concatenate([output, output]), np.concatenate([target, target])
    if how == "time":  # clip twice as long with repeated data, same lag
        return np.concatenate([output, output], axis=1), np.concatenate([target, target[:, lag:]], axis=1)
    return np.concatenate([output, output], axis=2), np.concatenate([target, target], axis=2)  # neurons


@pytest.mark.parametrize("how", ["batch", "time", "neurons"])
@pytest.mark.parametrize(
    "loss_cls", [PoissonLoss3d, L1PoissonLoss3d, CorrelationLoss3d, MSE3d], ids=lambda c: c.__name__
)
def test_mean_reduction_is_invariant_and_sum_is_not(
    loss_cls: type[torch.nn.Module], how: str, pair: tuple[np.ndarray, np.ndarray]
) -> None:
    output, target = pair
    big_output, big_target = _enlarged(output, target, how)
    mean_loss = loss_cls(reduction="mean")
    small = mean_loss(_t(output), _t(target)).item()
    assert mean_loss(_t(big_output), _t(big_target)).item() == pytest.approx(small, rel=1e-10)
    # The summed loss grows with the data (a correlation is one number per sample and neuron, whatever the length).
    factor = 1 if (loss_cls is CorrelationLoss3d and how == "time") else 2
    sum_loss = loss_cls(reduction="sum")
    enlarged = sum_loss(_t(big_output), _t(big_target)).item()
    assert enlarged == pytest.approx(factor * sum_loss(_t(output), _t(target)).item(), rel=1e-10)


# -------------------------------------------------------------------------------------------------- correlation


def test_pearson_correlation_matches_numpy(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(2, 5, 20, 3))
    expected = np.array([[np.corrcoef(x[b, :, n], y[b, :, n])[0, 1] for n in range(3)] for b in range(5)])
    np.testing.assert_allclose(pearson_correlation(_t(x), _t(y), dim=1).numpy(), expected, rtol=1e-10)
    assert pearson_correlation(_t(x), _t(y), dim=1, keepdim=True).shape == (5, 1, 3)
    flat = pearson_correlation(_t(x[0, :, 0]), _t(y[0, :, 0]), dim=0)
    assert flat.item() == pytest.approx(expected[0, 0])
    with pytest.raises(DataShapeError, match="same shape"):
        pearson_correlation(_t(x), _t(y[:, :10]))


def test_correlation_of_constant_trace_is_zero_not_nan() -> None:
    output = torch.ones(2, 10, 3)
    target = torch.randn(2, 10, 3)
    assert torch.equal(pearson_correlation(output, target), torch.zeros(2, 3))
    assert torch.isfinite(CorrelationLoss3d()(torch.zeros(2, 10, 3), torch.zeros(2, 10, 3)))


def test_correlation_loss_reductions_and_side_effect(pair: tuple[np.ndarray, np.ndarray]) -> None:
    output, target = pair
    rho = _numpy_corr(output, target)
    loss = CorrelationLoss3d()
    assert loss(_t(output), _t(target)).item() == pytest.approx(-rho.sum(), rel=1e-8)
    np.testing.assert_allclose(loss._per_neuron_correlations.numpy(), rho.mean(axis=0), rtol=1e-8)
    assert "_per_neuron_correlations" not in loss.state_dict()
    metric = CorrelationLoss3d(avg=True, negate=False)
    assert metric(_t(output), _t(target)).item() == pytest.approx(rho.mean(), rel=1e-8)
    per_neuron = CorrelationLoss3d(per_neuron=True)(_t(output), _t(target))
    np.testing.assert_allclose(per_neuron.numpy(), -rho.mean(axis=0), rtol=1e-8)


def test_celltype_correlation_loss(pair: tuple[np.ndarray, np.ndarray]) -> None:
    output, target = pair
    rho = _numpy_corr(output, target)
    weights = 2.0 / np.array([1.0, 3.0, 3.0])  # counts [1, 3]: mean 2 divided by the sample's group count
    loss = CelltypeCorrelationLoss3d(avg=True)
    value = loss(_t(output), _t(target), torch.tensor([1, 2, 2]), torch.tensor([1.0, 3.0]))
    assert value.item() == pytest.approx(-(rho * weights[:, None]).mean(), rel=1e-8)
    np.testing.assert_allclose(loss._per_neuron_correlations.numpy(), -(rho * weights[:, None]).mean(0), rtol=1e-8)


def test_l1_correlation_loss(pair: tuple[np.ndarray, np.ndarray]) -> None:
    output, target = pair
    pre_calcium = output - 1.0
    rho = _numpy_corr(output, target)
    value = L1CorrelationLoss3d()((_t(output), _t(pre_calcium)), _t(target))
    assert value.item() == pytest.approx(-rho.sum() + 0.0002 * np.abs(pre_calcium).sum(), rel=1e-8)
    value_avg = measures.L1CorrelationLoss3d(avg=True)((_t(output), _t(pre_calcium)), _t(target), None, None)
    assert value_avg.item() == pytest.approx(-rho.mean() + 0.0002 * np.abs(pre_calcium).mean(), rel=1e-8)


def test_scaled_correlation_averages_windows(rng: np.random.Generator) -> None:
    output = rng.normal(size=(2, 7, 3))
    target = rng.normal(size=(2, 9, 3))
    windows = [(0, 3), (3, 6), (6, 7)]
    # A one-frame window has zero variance: its correlation is 0.
    per_window = [
        _numpy_corr(output[:, a:b], target[:, 2:][:, a:b]) if b - a > 1 else np.zeros((2, 3)) for a, b in windows
    ]
    expected = -np.mean(per_window, axis=0).sum()
    assert ScaledCorrelationLoss3d(scale=3)(_t(output), _t(target)).item() == pytest.approx(expected, rel=1e-8)
    # The reference default `scale=30.0` crashed; here it means 30 frames.
    default = ScaledCorrelationLoss3d(scale=30.0)
    assert default.scale == 30
    assert default(_t(output), _t(target)).item() == pytest.approx(-_numpy_corr(output, target).sum(), rel=1e-8)
    with pytest.raises(ValueError, match="whole number"):
        ScaledCorrelationLoss3d(scale=2.5)


# ---------------------------------------------------------------------------------------------- MSE + measures


def test_mse(pair: tuple[np.ndarray, np.ndarray]) -> None:
    output, target = pair
    squared = (output - target[:, 2:]) ** 2
    assert MSE3d()(_t(output), _t(target)).item() == pytest.approx(squared.sum(), rel=1e-10)
    assert MSE3d(reduction="mean")(_t(output), _t(target)).item() == pytest.approx(squared.mean(), rel=1e-10)


def test_measures_reexports_the_same_classes() -> None:
    assert measures.PoissonLoss3d is PoissonLoss3d
    assert measures.CorrelationLoss3d is CorrelationLoss3d
    assert measures.MSE3d is MSE3d
    assert measures.ScaledCorrelationLoss3d is ScaledCorrelationLoss3d
    assert measures.StandardPoissonLoss3d is StandardPoissonLoss3d
