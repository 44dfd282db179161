"""Stimulus optimisation on the fixture's Höfling low-res model: the reference listing's spelling and batched MEIs.

The published documentation's snippet (and the frames rule) is tested through docs/insilico.md, which carries it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
import torch

from openretina.insilico import *
from openretina.insilico.stimulus_optimization import (
    ChangeNormJointlyClipRangeSeparately,
    RangeRegularizationLoss,
    ResponseWindowWarning,
    random_stimulus,
)
from openretina.modules.layers.convolutions import conv_backend

SESSION = "session_2_synthetic_20240102"
RANGES = [(-0.654, 6.269), (-0.913, 6.269)]  # the reference's Höfling stimulus range constraints


@pytest.fixture(autouse=True)
def fixed_convolution_path() -> Iterator[None]:
    """One exact convolution path for every batch size (no autotuning, identical rounding in batch and single)."""
    with conv_backend("spatial_first"):
        yield


def test_reference_listing_spelling_warns_about_the_window_and_improves(hoefling_model) -> None:
    objective = IncreaseObjective(
        hoefling_model,
        neuron_indices=[10],
        data_key=SESSION,
        response_reducer=SliceMeanReducer(axis=0, start=10, length=10),
    )
    torch.manual_seed(1)
    stimulus = torch.randn(hoefling_model.stimulus_shape(time_steps=40), requires_grad=True)
    stimulus.data = stimulus.data * 0.1
    # 40 frames leave 10 output frames: the window [10, 20) does not fit and falls back, loudly.
    with pytest.warns(ResponseWindowWarning, match=r"\[10, 10 \+ 10\) does not fit a response of 10 frames"):
        result = optimize_stimulus(
            stimulus=stimulus,
            optimizer_init_fn=partial(torch.optim.SGD, lr=100.0),
            objective_object=objective,
            optimization_stopper=OptimizationStopper(max_iterations=3),
        )
    assert result.objective_history[-1, 0] > result.objective_history[0, 0]
    assert hoefling_model.training  # restored: the fixture model was built in train mode


def test_batched_meis_equal_single_runs_on_the_hoefling_model(hoefling_model) -> None:
    neurons, seeds = [3, 17, 40], [11, 12, 13]
    shape = hoefling_model.stimulus_shape(time_steps=32)

    def run(neuron_list: list[int], seed_list: list[int]) -> torch.Tensor:
        stimulus = random_stimulus(shape, seed_list).requires_grad_(True)
        objective = IncreaseObjective(
            hoefling_model,
            neuron_list,
            SESSION,
            SliceMeanReducer(0, -2, 2),
            one_neuron_per_stimulus=True,
        )
        optimize_stimulus(
            stimulus,
            partial(torch.optim.SGD, lr=10.0),
            objective,
            OptimizationStopper(3),
            RangeRegularizationLoss(RANGES, max_norm=30.0, factor=0.1),
            ChangeNormJointlyClipRangeSeparately(RANGES, norm=30.0),
        )
        return stimulus.detach()

    batched = run(neurons, seeds)
    for index, (neuron, seed) in enumerate(zip(neurons, seeds, strict=True)):
        torch.testing.assert_close(batched[index : index + 1], run([neuron], [seed]), atol=1e-5, rtol=0)
