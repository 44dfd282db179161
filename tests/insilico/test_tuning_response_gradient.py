"""Chromatic response gradients: batched grid against the analytic gradient of a toy model, any channel count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from openretina.errors import DataShapeError
from openretina.insilico.stimulus_optimization import IncreaseObjective
from openretina.insilico.tuning_analyses import MeiAcrossContrasts, equalize_channels, get_gradient_grid, trainer_fn
from openretina.insilico.tuning_analyses.response_gradient import contrast_values

WEIGHTS = (1.5, -0.7, 0.4)


class ChannelSumModel(nn.Module):
    """(batch, C, time, h, w) -> (batch, time, 1): softplus(Σ_c WEIGHTS[c] · spatial mean of channel c)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.tensor(WEIGHTS[:channels]))

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        drive = torch.einsum("bcthw,c->bt", x, self.weights) / (x.shape[3] * x.shape[4])
        return nn.functional.softplus(drive)[..., None]


def stimulus(channels: int) -> torch.Tensor:
    return torch.randn(1, channels, 4, 3, 3, generator=torch.Generator().manual_seed(channels)) + 0.5


def analytic(stim: torch.Tensor, contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Response and gradient of the time-mean response at contrasts (C,), computed by hand."""
    channel_means = stim[0].mean(dim=(2, 3)).double().numpy()  # (C, T)
    weights = np.asarray(WEIGHTS[: stim.shape[1]])[:, None]
    drive = (weights * contrasts[:, None] * channel_means).sum(axis=0)  # (T,)
    sigmoid = 1 / (1 + np.exp(-drive))
    return np.log1p(np.exp(drive)).mean(), (sigmoid[None] * weights * channel_means).mean(axis=1)


def test_two_channel_grid_matches_the_analytic_gradient() -> None:
    model = ChannelSumModel(2).train()
    stim = stimulus(2)
    grid, resp, norm, green, uv = get_gradient_grid(stim, IncreaseObjective(model, neuron_indices=[0]), step_size=0.25)
    np.testing.assert_allclose(green, np.linspace(-1, 1, 9), atol=1e-12)
    np.testing.assert_array_equal(green, uv)
    assert grid.shape == (2, 9, 9) and resp.shape == norm.shape == (9, 9)
    for i, j in [(0, 0), (2, 7), (8, 4)]:
        expected_response, expected_gradient = analytic(stim, np.array([green[i], uv[j]]))
        assert resp[i, j] == pytest.approx(expected_response, rel=1e-5)
        np.testing.assert_allclose(grid[:, i, j], expected_gradient, rtol=1e-4, atol=1e-7)
        assert norm[i, j] == pytest.approx(np.linalg.norm(expected_gradient), rel=1e-4)
    assert model.training and model.weights.requires_grad and model.weights.grad is None


def test_grid_honours_start_stop_and_any_channel_count() -> None:
    stim = stimulus(3)
    objective = IncreaseObjective(ChannelSumModel(3), neuron_indices=[0])
    grid, resp, _norm, *values = get_gradient_grid(
        stim, objective, 3, start=0.0, stop=0.5, step_size=0.25, batch_size=5
    )
    assert len(values) == 3 and grid.shape == (3, 3, 3, 3) and resp.shape == (3, 3, 3)
    np.testing.assert_allclose(values[0], [0.0, 0.25, 0.5])
    expected_response, expected_gradient = analytic(stim, np.array([0.5, 0.0, 0.25]))
    assert resp[2, 0, 1] == pytest.approx(expected_response, rel=1e-5)
    np.testing.assert_allclose(grid[:, 2, 0, 1], expected_gradient, rtol=1e-4, atol=1e-7)
    with pytest.raises(DataShapeError, match="n_channels=2"):
        get_gradient_grid(stim, objective, 2)


def test_single_point_trainer_fn_agrees_with_the_grid() -> None:
    stim = stimulus(2)
    objective = IncreaseObjective(ChannelSumModel(2), neuron_indices=[0])
    gradient, response = trainer_fn(MeiAcrossContrasts(torch.tensor([0.5, -0.25]), stim), objective, lr=0.1)
    expected_response, expected_gradient = analytic(stim, np.array([0.5, -0.25]))
    assert gradient.shape == (2,) and response.shape == ()
    assert float(response) == pytest.approx(expected_response, rel=1e-5)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4)


def test_mei_across_contrasts_scales_each_channel() -> None:
    stim = stimulus(2)
    scaled = MeiAcrossContrasts(torch.tensor([2.0, -1.0]), stim)()
    torch.testing.assert_close(scaled[0, 0], 2 * stim[0, 0])
    torch.testing.assert_close(scaled[0, 1], -stim[0, 1])
    with pytest.raises(DataShapeError, match="one value per channel"):
        MeiAcrossContrasts(torch.ones(3), stim)


def test_contrast_values_are_inclusive_and_robust() -> None:
    assert len(contrast_values(-1, 1, 0.1)) == 21 and len(contrast_values(-1, 1, 0.2)) == 11
    assert contrast_values(-1, 1, 0.1)[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("channels", [2, 3])
def test_equalize_channels_gives_equal_norms_and_keeps_the_total(channels: int) -> None:
    stim = stimulus(channels)
    stim[0, 0] *= 5
    equal = equalize_channels(stim, flip_green=True)
    norms = equal[0].reshape(channels, -1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((channels,), float(stim.norm()) / channels**0.5))
    assert float(equal.norm()) == pytest.approx(float(stim.norm()), rel=1e-5)
    # Channel 0 is flipped: it is a negative multiple of the original.
    assert float((equal[0, 0] * stim[0, 0]).sum()) < 0
    with pytest.raises(ValueError, match="all zero"):
        equalize_channels(torch.zeros(1, channels, 2, 2, 2))
