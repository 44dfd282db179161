"""Objectives run the model only on the input frames that reach the frames their reducer reads."""

from __future__ import annotations

import torch
from torch import nn

from openretina.insilico.stimulus_optimization import (
    ContrastiveNeuronObjective,
    IncreaseObjective,
    MeanReducer,
    SliceMeanReducer,
)


class LaggedModel(nn.Module):
    """(batch, 1, time, 2, 2) -> (batch, time - 3, 3): output frame t sees input frames [t, t + 3].

    ``recurrent=True`` adds a running sum over time, so every output also depends on all earlier frames.
    """

    def __init__(self, recurrent: bool = False) -> None:
        super().__init__()
        self.filters = nn.Parameter(torch.randn(3, 1, 2, 2, 4, generator=torch.Generator().manual_seed(0)))
        self.recurrent = recurrent
        self.seen_lengths: list[int] = []

    def number_of_cut_frames(self) -> int:
        return 3

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        self.seen_lengths.append(x.shape[2])
        drive = torch.einsum("bcthwk,nchwk->btn", x.unfold(2, 4, 1), self.filters)
        return nn.functional.softplus(drive.cumsum(dim=1) if self.recurrent else drive)


def value_and_gradient(objective, stimulus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    stimulus = stimulus.clone().requires_grad_(True)
    value = objective(stimulus)
    (gradient,) = torch.autograd.grad(value, stimulus)
    return value.detach(), gradient


def full_window_score(model: LaggedModel, stimulus: torch.Tensor, neuron: int, start: int, stop: int) -> torch.Tensor:
    return model(stimulus)[:, start:stop, neuron].mean(dim=1).sum()


def test_time_local_model_runs_on_the_window_frames_only_and_gives_the_full_result() -> None:
    model = LaggedModel().eval()
    stimulus = torch.randn(4, 1, 12, 2, 2, generator=torch.Generator().manual_seed(1))
    objective = IncreaseObjective(model, [1], response_reducer=SliceMeanReducer(axis=0, start=4, length=3))
    value, gradient = value_and_gradient(objective, stimulus)
    assert model.seen_lengths == [12, 6, 6]  # one full run for the check, then frames [4, 4 + 3 + 3) only
    expected_value, expected_gradient = value_and_gradient(lambda x: full_window_score(model, x, 1, 4, 7), stimulus)
    torch.testing.assert_close(value, expected_value)
    torch.testing.assert_close(gradient, expected_gradient)
    assert gradient[:, :, :4].abs().max() == 0 and gradient[:, :, 10:].abs().max() == 0  # frames out of reach
    model.seen_lengths.clear()
    objective(stimulus)
    assert model.seen_lengths == [6]  # the check is done once per stimulus shape


def test_recurrent_model_fails_the_check_and_always_runs_in_full() -> None:
    model = LaggedModel(recurrent=True).eval()
    stimulus = torch.randn(2, 1, 12, 2, 2, generator=torch.Generator().manual_seed(2))
    objective = IncreaseObjective(model, [0], response_reducer=SliceMeanReducer(axis=0, start=5, length=2))
    value, gradient = value_and_gradient(objective, stimulus)
    objective(stimulus)
    assert model.seen_lengths[2:] == [12, 12]  # after the failed check (12 and 7 frames), always all 12 frames
    expected_value, expected_gradient = value_and_gradient(lambda x: full_window_score(model, x, 0, 5, 7), stimulus)
    torch.testing.assert_close(value, expected_value)
    torch.testing.assert_close(gradient, expected_gradient)
    assert gradient[:, :, :5].abs().max() > 0  # the running sum reaches back to the first frames


def test_training_mode_and_whole_response_reducers_run_in_full() -> None:
    stimulus = torch.randn(1, 1, 10, 2, 2)
    model = LaggedModel().train()
    IncreaseObjective(model, [0], response_reducer=SliceMeanReducer(axis=0, start=2, length=2))(stimulus)
    model.eval()
    IncreaseObjective(model, [0], response_reducer=MeanReducer(axis=0))(stimulus)
    IncreaseObjective(model, [0], response_reducer=SliceMeanReducer(axis=0, start=0, length=7))(stimulus)
    assert model.seen_lengths == [10, 10, 10]


def test_contrastive_objective_uses_the_window_too() -> None:
    model = LaggedModel().eval()
    stimulus = torch.randn(3, 1, 11, 2, 2, generator=torch.Generator().manual_seed(3))
    reducer = SliceMeanReducer(axis=0, start=-2, length=2)  # the last two of 8 output frames
    objective = ContrastiveNeuronObjective(model, [0], [[1], [2]], response_reducer=reducer)
    value = objective(stimulus)
    assert model.seen_lengths == [11, 5, 5]  # check (full, window), then the window only
    per_neuron = model(stimulus)[:, 6:8].mean(dim=1)
    expected = ContrastiveNeuronObjective.contrastive_objective(per_neuron[:, 0], per_neuron, 1.6).sum()
    torch.testing.assert_close(value, expected)


def test_hoefling_model_reference_recipe_window_is_exact(hoefling_model) -> None:
    model = hoefling_model.eval()
    session = "session_2_synthetic_20240102"
    lengths: list[int] = []
    hook = model.register_forward_pre_hook(lambda module, args: lengths.append(args[0].shape[2]))
    try:
        stimulus = torch.randn(2, 2, 50, 18, 16, generator=torch.Generator().manual_seed(4))
        objective = IncreaseObjective(model, [3, 7], session, SliceMeanReducer(axis=0, start=10, length=10))
        value, gradient = value_and_gradient(objective, stimulus)
        assert lengths == [50, 40, 40]  # 20 output frames; the window [10, 20) needs input frames [10, 50)
        expected_value, expected_gradient = value_and_gradient(
            lambda x: model(x, data_key=session)[:, 10:20][:, :, [3, 7]].mean(dim=(1, 2)).sum(), stimulus
        )
    finally:
        hook.remove()
    torch.testing.assert_close(value, expected_value, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gradient, expected_gradient, rtol=1e-4, atol=1e-6)
