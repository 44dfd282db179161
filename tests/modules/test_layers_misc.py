"""Scaling/bias layers, FiLM, the channel reducer, the ensemble and the parametrised nonlinearities."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import openretina.modules.layers as layers
from openretina.errors import DataShapeError
from openretina.modules.layers import (
    Bias3DLayer,
    EnsembleModel,
    Scale2DLayer,
    Scale3DLayer,
    WeightedChannelSumLayer,
)
from openretina.modules.layers.scaling import FiLM
from openretina.modules.nonlinearities import ParametrizedELU, ParametrizedSoftplus


def test_layers_package_exports_the_reference_names() -> None:
    assert set(layers.__all__) == {
        "FlatLaplaceL23dnorm",
        "Laplace",
        "Bias3DLayer",
        "Scale2DLayer",
        "Scale3DLayer",
        "EnsembleModel",
        "WeightedChannelSumLayer",
    }


def test_bias3d_adds_per_channel_offset() -> None:
    layer = Bias3DLayer(2, initial=0.5)
    assert layer.bias.shape == (1, 2, 1, 1, 1) and list(layer.state_dict()) == ["bias"]
    with torch.no_grad():
        layer.bias[0, 1] = -1.0
    x = torch.ones(1, 2, 3, 4, 4)
    out = layer(x)
    assert torch.all(out[:, 0] == 1.5) and torch.all(out[:, 1] == 0.0)


def test_scale_layers_multiply_per_channel() -> None:
    s2 = Scale2DLayer(3, initial=2.0)
    assert s2.scale.shape == (1, 3, 1, 1)
    torch.testing.assert_close(s2(torch.ones(2, 3, 4, 4)), torch.full((2, 3, 4, 4), 2.0))
    s3 = Scale3DLayer(2)
    assert s3.scale.shape == (1, 2, 1, 1, 1) and torch.all(s3.scale == 1)
    with torch.no_grad():
        s3.scale[0, 0] = 3.0
    out = s3(torch.ones(1, 2, 2, 2, 2))
    assert torch.all(out[:, 0] == 3.0) and torch.all(out[:, 1] == 1.0)


def test_scaling_layers_reject_wrong_channel_count() -> None:
    with pytest.raises(DataShapeError, match=r"Bias3DLayer.*2 channels"):
        Bias3DLayer(2)(torch.ones(1, 3, 2, 2, 2))
    with pytest.raises(DataShapeError, match="Scale2DLayer"):
        Scale2DLayer(2)(torch.ones(1, 2, 2, 2, 2))


def test_film_starts_near_identity_and_matches_formula() -> None:
    torch.manual_seed(0)
    film = FiLM(num_features=3, cond_dim=2)
    assert set(film.state_dict()) == {"fc_gamma.weight", "fc_gamma.bias", "fc_beta.weight", "fc_beta.bias"}
    assert torch.all(film.fc_gamma.bias == 1) and torch.all(film.fc_beta.bias == 0)
    x = torch.randn(2, 3, 4, 5, 5)
    cond = torch.randn(2, 2)
    gamma = cond @ film.fc_gamma.weight.T + film.fc_gamma.bias
    beta = cond @ film.fc_beta.weight.T + film.fc_beta.bias
    expected = gamma[:, :, None, None, None] * x + beta[:, :, None, None, None]
    torch.testing.assert_close(film(x, cond), expected)
    with pytest.raises(DataShapeError, match="cond"):
        film(x, torch.randn(3, 2))


def test_weighted_channel_sum() -> None:
    layer = WeightedChannelSumLayer((0.25, 0.75))
    assert not layer.channel_weights.requires_grad and list(layer.state_dict()) == ["channel_weights"]
    assert WeightedChannelSumLayer((1.0, 1.0), trainable=True).channel_weights.requires_grad
    x = torch.stack([torch.full((2, 3, 4), 4.0), torch.full((2, 3, 4), 8.0)]).unsqueeze(0)  # (1, 2, 2, 3, 4)
    out = layer(x)
    assert out.shape == (1, 1, 2, 3, 4)
    assert torch.all(out == 0.25 * 4 + 0.75 * 8)
    single = torch.randn(1, 1, 2, 3, 4)
    assert layer(single) is single
    with pytest.raises(DataShapeError, match="3 channels but 2"):
        layer(torch.randn(1, 3, 2, 3, 4))


class _Constant(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        offset = 10.0 if data_key == "b" else 0.0
        return x * self.value + offset


def test_ensemble_averages_members_and_forwards_arguments() -> None:
    ensemble = EnsembleModel(_Constant(1.0), _Constant(2.0), _Constant(6.0))
    assert set(ensemble.state_dict()) == {"members.0.value", "members.1.value", "members.2.value"}
    x = torch.ones(2, 3)
    torch.testing.assert_close(ensemble(x), torch.full((2, 3), 3.0))
    torch.testing.assert_close(ensemble(x, data_key="b"), torch.full((2, 3), 13.0))
    assert "3 members" in repr(ensemble)
    with pytest.raises(ValueError, match="at least one"):
        EnsembleModel()


def test_parametrized_elu_branches_and_cpu_default() -> None:
    elu = ParametrizedELU(a=2.0, b=0.5, c=3.0)  # must work without CUDA
    assert set(elu.state_dict()) == {"a", "b", "c"}
    x = torch.tensor([-1.0, 0.0, 2.0, 100.0], requires_grad=True)
    out = elu(x)
    expected = torch.tensor([2.0 * (torch.exp(torch.tensor(-2.0)).item() - 1), 0.0, 6.0, 300.0])
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_parametrized_softplus() -> None:
    fixed = ParametrizedSoftplus(a=2.0, b=0.5, w=3.0)
    assert set(fixed.state_dict()) == {"b", "w"}
    assert {name for name, _ in fixed.named_parameters()} == {"b", "w"}
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(fixed(x), 3.0 * F.softplus(2.0 * x + 0.5))
    learnt = ParametrizedSoftplus(learn_a=True)
    assert set(learnt.state_dict()) == {"a", "b", "w"}
