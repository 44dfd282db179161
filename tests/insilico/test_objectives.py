"""Objectives against hand-computed values; both accepted spellings; hooks that do not outlive a call."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from openretina.errors import DataShapeError
from openretina.insilico.stimulus_optimization import (
    ContrastiveNeuronObjective,
    IncreaseObjective,
    InnerNeuronVisualizationObjective,
    JitteredObjective,
    MeanReducer,
    SliceMeanReducer,
)


class ScaledResponseModel(nn.Module):
    """Returns ``pattern * stimulus[b].mean()`` for stimulus ``b``: (batch, 4, 3) responses, known by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.pattern = torch.tensor([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0], [20.0, 21.0, 22.0], [30.0, 31.0, 32.0]])
        self.data_keys: list[str | None] = []

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        self.data_keys.append(data_key)
        return self.pattern * x.flatten(start_dim=1).mean(dim=1).reshape(-1, 1, 1)


def stimuli(*levels: float) -> torch.Tensor:
    """Constant stimuli (batch, 1, 2, 2, 2) with the given values: the model scales its pattern by them."""
    return torch.stack([torch.full((1, 2, 2, 2), level) for level in levels])


def test_increase_objective_reference_spelling() -> None:
    model = ScaledResponseModel()
    objective = IncreaseObjective(
        model, neuron_indices=[0, 1], data_key="s1", response_reducer=SliceMeanReducer(0, 2, 2)
    )
    # Neurons 0, 1 averaged per frame: 0.5, 10.5, 20.5, 30.5; frames 2-3: 25.5; scaled by 1 and by 2.
    torch.testing.assert_close(objective.per_stimulus(stimuli(1.0, 2.0)), torch.tensor([25.5, 51.0]))
    assert objective(stimuli(1.0, 2.0)).item() == pytest.approx(76.5)
    assert model.data_keys[-1] == "s1"
    assert IncreaseObjective(model, 2, None, MeanReducer(axis=0))(stimuli(1.0)).item() == pytest.approx(17.0)
    assert model.data_keys[-1] is None


def test_increase_objective_documentation_spelling() -> None:
    model = ScaledResponseModel()
    objective = IncreaseObjective(model=model, reducer=MeanReducer(neuron_dim=1, indices=2))
    # Neuron 2 over time: (2 + 12 + 22 + 32) / 4 = 17 per unit of stimulus.
    torch.testing.assert_close(objective.per_stimulus(stimuli(1.0, 3.0)), torch.tensor([17.0, 51.0]))
    assert objective.neuron_indices is None


def test_increase_objective_rejects_ambiguous_or_non_scalar_reductions() -> None:
    model = ScaledResponseModel()
    with pytest.raises(ValueError, match="not both"):
        IncreaseObjective(model, [0], None, MeanReducer(), reducer=MeanReducer())
    with pytest.raises(DataShapeError, match=r"shape \(2,\).*\(2, 3\).*neuron_indices"):
        IncreaseObjective(model=model, reducer=MeanReducer(axis=0))(stimuli(1.0, 1.0))
    with pytest.raises(DataShapeError, match=r"\[7\].*3 neurons"):
        IncreaseObjective(model, [7])(stimuli(1.0))


def test_contrastive_objective_matches_the_log_softmax_formula() -> None:
    model = ScaledResponseModel()
    objective = ContrastiveNeuronObjective(
        model,
        on_cluster_idc=[2],
        off_cluster_idc_list=[[0], [1]],
        response_reducer=MeanReducer(axis=0),
        temperature=2.0,
    )
    # Time means per neuron for stimulus level 1: 15, 16, 17. on = 17, clusters = (17, 15, 16), t = 2.
    expected = 17 / 2 - math.log(math.exp(17 / 2) + math.exp(15 / 2) + math.exp(16 / 2)) + math.log(3)
    assert objective(stimuli(1.0)).item() == pytest.approx(expected, abs=1e-5)
    # Level 0: every cluster responds 0, so the score is log-softmax 1/3 + log 3 = 0.
    torch.testing.assert_close(
        objective.per_stimulus(stimuli(1.0, 0.0)), torch.tensor([expected, 0.0]), atol=1e-5, rtol=0
    )
    static = ContrastiveNeuronObjective.contrastive_objective(torch.tensor(1.0), torch.tensor([1.0, 1.0]), 1.6)
    assert static.item() == pytest.approx(0.0, abs=1e-6)


def test_contrastive_objective_averages_clusters() -> None:
    objective = ContrastiveNeuronObjective(
        ScaledResponseModel(), [0, 2], [[1]], reducer=SliceMeanReducer(axis=0, start=0, length=1), temperature=1.0
    )
    # Frame 0: neurons 0, 1, 2 respond 0, 1, 2; on = mean(0, 2) = 1, off = 1: equal clusters score 0.
    assert objective(stimuli(5.0)).item() == pytest.approx(0.0, abs=1e-6)


class TwoLayerModel(nn.Module):
    """conv (1 -> 3 channels, 1x1x1) then a readout summing everything: (batch, time, 1)."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv3d(1, 3, kernel_size=1, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1, 1, 1, 1))
        self.core = nn.Sequential(conv)

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        return self.core(x).sum(dim=(1, 3, 4)).unsqueeze(-1)


def test_inner_neuron_objective_reads_one_unit_and_leaves_no_hooks() -> None:
    model = TwoLayerModel()
    objective = InnerNeuronVisualizationObjective(model, reducer=MeanReducer(axis=0))
    assert objective.layer_names() == ["core", "core_0"]
    with pytest.raises(ValueError, match="set_layer_channel"):
        objective(torch.zeros(1, 1, 2, 3, 3))
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        objective.set_layer_channel("nope", 0)
    objective.set_layer_channel("core_0", channel=2)
    x = torch.arange(2 * 2 * 9, dtype=torch.float32).reshape(2, 1, 2, 3, 3)
    # Channel 2 = 3 * input; centre pixel (1, 1) of frames 0 and 1 of stimulus 0: 4 and 13 -> mean 8.5 * 3.
    torch.testing.assert_close(objective.per_stimulus(x), torch.tensor([25.5, 79.5]))
    objective.set_layer_channel("core_0", channel=0, position=(0, 0))
    torch.testing.assert_close(objective.per_stimulus(x), torch.tensor([4.5, 22.5]))  # (0 + 9) / 2, (18 + 27) / 2
    assert objective.get_output_shape_for_layer("core_0", (1, 1, 4, 3, 3)) == (1, 3, 4, 3, 3)
    assert objective.get_output_shape_for_layer("missing", (1, 1, 4, 3, 3)) is None
    assert all(not module._forward_hooks for module in model.modules())


def test_inner_neuron_objective_with_one_channel_per_stimulus() -> None:
    objective = InnerNeuronVisualizationObjective(TwoLayerModel(), reducer=MeanReducer(axis=0))
    objective.set_layer_channel("core_0", channel=[2, 0])
    x = torch.arange(2 * 2 * 9, dtype=torch.float32).reshape(2, 1, 2, 3, 3)
    # Stimulus 0 on channel 2 (3 x input, centre 4 and 13 -> 25.5); stimulus 1 on channel 0 (centre 22 and 31).
    torch.testing.assert_close(objective.per_stimulus(x), torch.tensor([25.5, 26.5]))
    with pytest.raises(DataShapeError, match="3 stimuli for 2 channels"):
        objective.per_stimulus(torch.zeros(3, 1, 2, 3, 3))


def test_jittered_objective_shifts_each_stimulus_and_is_seedable() -> None:
    class FirstPixel(nn.Module):
        def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
            return x[:, 0, :, 0, :1]  # (batch, time, 1): the pixel at row 0, column 0

    x = torch.arange(25, dtype=torch.float32).reshape(1, 1, 1, 5, 5).repeat(3, 1, 1, 1, 1)
    jittered = JitteredObjective(IncreaseObjective(FirstPixel(), [0]), max_shift=2)
    torch.manual_seed(3)
    scores = jittered.per_stimulus(x)
    torch.manual_seed(3)
    shifts = [jittered.draw_shift() for _ in range(3)]
    # Rolling by (r, c) brings pixel (-r mod 5, -c mod 5), value 5 * row + column, to (0, 0).
    expected = torch.tensor([5.0 * (-r % 5) + (-c % 5) for r, c in shifts])
    torch.testing.assert_close(scores, expected)
    assert all(abs(r) <= 2 and abs(c) <= 2 for r, c in shifts)


def test_one_neuron_per_stimulus() -> None:
    model = ScaledResponseModel()
    objective = IncreaseObjective(model, [2, 0], None, MeanReducer(axis=0), one_neuron_per_stimulus=True)
    # Stimulus 0 drives neuron 2 (time mean 17), stimulus 1 neuron 0 (time mean 15), scaled by 1 and 2.
    torch.testing.assert_close(objective.per_stimulus(stimuli(1.0, 2.0)), torch.tensor([17.0, 30.0]))
    with pytest.raises(DataShapeError, match="2 neuron indices were given for a batch of 3 stimuli"):
        objective(stimuli(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="needs neuron_indices"):
        IncreaseObjective(model, None, one_neuron_per_stimulus=True)
