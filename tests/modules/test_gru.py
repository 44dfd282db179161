"""Convolutional GRU: hand-computed steps, shapes for odd/even kernels, unrolling over time."""

from __future__ import annotations

import math

import pytest
import torch

from openretina.errors import DataShapeError
from openretina.modules.layers.gru import ConvGRUCell, GRU_Module

GATES = ("reset_gate_input", "update_gate_input", "out_gate_input")
HIDDEN_GATES = ("reset_gate_hidden", "update_gate_hidden", "out_gate_hidden")


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _scalar_cell(values: dict[str, tuple[float, float]]) -> ConvGRUCell:
    """A 1-channel, 1x1-kernel cell whose gates are set to (weight, bias) pairs."""
    cell = ConvGRUCell(1, 1, input_kern=1, rec_kern=1)
    with torch.no_grad():
        for name, (weight, bias) in values.items():
            getattr(cell, name).weight.fill_(weight)
            getattr(cell, name).bias.fill_(bias)
    return cell


def test_state_dict_keys_and_init() -> None:
    cell = ConvGRUCell(3, 4, input_kern=5, rec_kern=3)
    expected = {f"{gate}.{p}" for gate in GATES + HIDDEN_GATES for p in ("weight", "bias")}
    assert set(cell.state_dict()) == expected
    assert cell.reset_gate_input.weight.shape == (4, 3, 5, 5)
    assert cell.out_gate_hidden.weight.shape == (4, 4, 3, 3)
    assert all(gate.bias.abs().sum() == 0 for gate in cell.gates())
    module = GRU_Module(3, 4, 5, 3)
    assert set(module.state_dict()) == {f"gru.{key}" for key in expected}


def test_one_step_matches_hand_computation() -> None:
    weights = {
        "update_gate_input": (0.5, 0.1),
        "update_gate_hidden": (-0.3, 0.2),
        "reset_gate_input": (1.0, -0.4),
        "reset_gate_hidden": (0.7, 0.0),
        "out_gate_input": (2.0, 0.3),
        "out_gate_hidden": (-1.5, 0.05),
    }
    cell = _scalar_cell(weights)
    x, h = 0.8, -0.6
    z = _sigmoid(0.5 * x + 0.1 + (-0.3 * h + 0.2))
    r = _sigmoid(1.0 * x - 0.4 + (0.7 * h + 0.0))
    candidate = math.tanh(2.0 * x + 0.3 + (-1.5 * (h * r) + 0.05))
    expected = h * (1 - z) + candidate * z
    out = cell(torch.full((1, 1, 1, 1), x), torch.full((1, 1, 1, 1), h))
    assert out.item() == pytest.approx(expected, rel=1e-6)
    # No previous state means a zero state: h' = z * tanh(O_in x + O_h(0)).
    z0 = _sigmoid(0.5 * x + 0.1 + 0.2)
    out0 = cell(torch.full((1, 1, 1, 1), x))
    assert out0.item() == pytest.approx(z0 * math.tanh(2.0 * x + 0.3 + 0.05), rel=1e-6)


def test_module_unrolls_the_cell_over_time() -> None:
    torch.manual_seed(0)
    module = GRU_Module(2, 3, input_kern=3, rec_kern=3)
    x = torch.randn(2, 2, 4, 6, 5)
    out = module((x, "some_session"))
    hidden = None
    for t in range(4):
        hidden = module.gru(x[:, :, t], hidden)
        torch.testing.assert_close(out[:, :, t], hidden)


@pytest.mark.parametrize("input_kern, rec_kern", [(3, 3), (4, 4), (5, 2), (1, 4)])
@pytest.mark.parametrize("pad_input", [True, False])
def test_shapes_and_backward_for_odd_and_even_kernels(input_kern: int, rec_kern: int, pad_input: bool) -> None:
    module = GRU_Module(3, 4, input_kern, rec_kern, pad_input=pad_input)
    x = torch.randn(2, 3, 5, 9, 8, requires_grad=True)
    out = module(x)
    shrink = 0 if pad_input else input_kern - 1
    assert out.shape == (2, 4, 5, 9 - shrink, 8 - shrink)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())


def test_unbatched_input_gives_unbatched_output() -> None:
    torch.manual_seed(1)
    module = GRU_Module(2, 3, 3, 3)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(module(x), module(x.unsqueeze(0)).squeeze(0))


def test_bad_rank_raises_shape_error() -> None:
    with pytest.raises(DataShapeError, match="GRU_Module"):
        GRU_Module(2, 3, 3, 3)(torch.randn(2, 4, 6))
    with pytest.raises(DataShapeError, match="ConvGRUCell"):
        ConvGRUCell(2, 3, 3, 3)(torch.randn(1, 5, 6, 6))


def test_regularizer_is_gamma_times_mean_hidden_bias() -> None:
    cell = ConvGRUCell(1, 2, 3, 3, gamma_rec=2.0)
    with torch.no_grad():
        cell.reset_gate_hidden.bias.copy_(torch.tensor([1.0, -3.0]))  # mean |b| = 2
        cell.update_gate_hidden.bias.copy_(torch.tensor([0.5, 0.5]))  # 0.5
        cell.out_gate_hidden.bias.copy_(torch.tensor([0.0, -1.0]))  # 0.5
        cell.update_gate_input.bias.fill_(100.0)  # input gates are not penalised
    assert cell.regularizer().item() == pytest.approx(2.0 * (2.0 + 0.5 + 0.5) / 3)
