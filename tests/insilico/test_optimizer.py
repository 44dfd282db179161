"""optimize_stimulus: reference behaviour, result object, frozen model, batching equal to single runs."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from openretina.insilico.stimulus_optimization import (
    AbstractObjective,
    ChangeNormJointlyClipRangeSeparately,
    EarlyStopper,
    IncreaseObjective,
    JitteredObjective,
    MeanReducer,
    OptimizationStopper,
    RangeRegularizationLoss,
    SliceMeanReducer,
    StimulusOptimizationError,
    TemporalGaussianLowPassFilterProcessor,
    TotalVariationRegularizer,
    optimize_stimulus,
    random_stimulus,
)


class SumObjective(AbstractObjective):
    """The reference unit test's objective: the sum of all stimulus values, no model."""

    def __init__(self) -> None:
        super().__init__(None, None)

    def forward(self, stimulus: torch.Tensor) -> torch.Tensor:
        return stimulus.sum()


@pytest.mark.parametrize("lr", [0.1, 10.0])
def test_reference_unit_test_still_passes(lr: float) -> None:
    stimulus = torch.randn((1, 2, 3, 5, 7), requires_grad=True)
    objective = SumObjective()
    before = objective.forward(stimulus).item()
    optimize_stimulus(
        stimulus,
        optimizer_init_fn=partial(torch.optim.SGD, lr=lr),
        objective_object=objective,
        optimization_stopper=OptimizationStopper(max_iterations=10),
    )
    assert stimulus.shape == (1, 2, 3, 5, 7)
    assert objective.forward(stimulus).item() > before
    # d(sum)/dx = 1 everywhere: 10 SGD steps add exactly 10 * lr to every value.
    assert objective.forward(stimulus).item() == pytest.approx(before + 10 * lr * stimulus.numel(), rel=1e-5)


def test_result_object_and_in_place_update() -> None:
    stimulus = torch.zeros((2, 1, 2, 2, 2), requires_grad=True)
    result = optimize_stimulus(
        stimulus, partial(torch.optim.SGD, lr=0.5), SumObjective(), OptimizationStopper(max_iterations=3)
    )
    torch.testing.assert_close(stimulus.detach(), torch.full_like(stimulus, 1.5))
    torch.testing.assert_close(result.stimulus, stimulus.detach())
    assert result.iterations == 3
    # A joint (0-d) objective: the batch is one unit; objective values 0, 8, 16 before the three steps.
    torch.testing.assert_close(result.objective_history, torch.tensor([[0.0, 0.0], [8.0, 8.0], [16.0, 16.0]]))
    torch.testing.assert_close(result.loss_history, -result.objective_history)
    torch.testing.assert_close(result.best_stimulus, torch.full_like(stimulus, 1.0).detach())  # last evaluated
    assert result.stopped_at.tolist() == [3, 3]


def test_stimulus_keeps_requires_grad_and_a_second_call_keeps_improving(tiny_model) -> None:
    stimulus = random_stimulus(tiny_model.stimulus_shape(8), seeds=[0])
    stimulus.requires_grad_(True)
    objective = IncreaseObjective(tiny_model, [3], None, MeanReducer(axis=0))
    scores = []
    for _ in range(2):
        result = optimize_stimulus(stimulus, partial(torch.optim.SGD, lr=1.0), objective, OptimizationStopper(5))
        assert stimulus.requires_grad and stimulus.grad is None
        scores.append(result.objective_history)
    tiny_model.eval()  # no dropout for the check
    with torch.no_grad():
        final = objective(stimulus).item()
    assert scores[0][-1, 0] > scores[0][0, 0]
    assert scores[1][0, 0] > scores[0][-1, 0]  # the second call starts where the first ended
    assert final > scores[1][-1, 0] > scores[1][0, 0]


def test_model_is_frozen_in_eval_mode_and_restored(tiny_model) -> None:
    tiny_model.scale.requires_grad_(False)  # a mixed state must come back exactly
    stimulus = random_stimulus(tiny_model.stimulus_shape(6), seeds=[1, 2]).requires_grad_(True)
    objective = IncreaseObjective(tiny_model, [0, 1], None, MeanReducer(axis=0))
    result = optimize_stimulus(stimulus, partial(torch.optim.SGD, lr=1.0), objective, OptimizationStopper(4))
    assert tiny_model.training and tiny_model.dropout.training
    assert tiny_model.filters.requires_grad and not tiny_model.scale.requires_grad
    assert all(parameter.grad is None for parameter in tiny_model.parameters())
    # Eval mode during the run: the recorded objective equals a dropout-free evaluation of the same stimulus.
    replay = random_stimulus(tiny_model.stimulus_shape(6), seeds=[1, 2])
    tiny_model.eval()
    with torch.no_grad():
        expected = objective.per_stimulus(replay)
    torch.testing.assert_close(result.objective_history[0], expected)


def _mei_recipe(model, stimulus: torch.Tensor, neurons: list[int], stopper: OptimizationStopper):
    """The reference's canonical MEI recipe, one neuron per stimulus, as one batched objective."""
    objective = IncreaseObjective(
        model, neurons, None, SliceMeanReducer(axis=0, start=-2, length=2), one_neuron_per_stimulus=True
    )
    ranges = [(-0.654, 6.269), (-0.913, 6.269)]
    return optimize_stimulus(
        stimulus,
        partial(torch.optim.SGD, lr=10.0),
        objective,
        stopper,
        stimulus_regularization_loss=(RangeRegularizationLoss(ranges, max_norm=3.0, factor=0.1),),
        stimulus_postprocessor=(ChangeNormJointlyClipRangeSeparately(ranges, norm=3.0),),
    )


def test_batched_meis_of_50_neurons_equal_50_single_runs(tiny_model) -> None:
    neurons, seeds = list(range(50)), list(range(100, 150))
    shape = tiny_model.stimulus_shape(6)
    batched = random_stimulus(shape, seeds).requires_grad_(True)
    batch_result = _mei_recipe(tiny_model, batched, neurons, OptimizationStopper(8))
    for neuron, seed in zip(neurons, seeds, strict=True):
        single = random_stimulus(shape, [seed]).requires_grad_(True)
        single_result = _mei_recipe(tiny_model, single, [neuron], OptimizationStopper(8))
        torch.testing.assert_close(batched[neuron : neuron + 1].detach(), single.detach(), atol=1e-5, rtol=0)
        torch.testing.assert_close(batch_result.loss_history[:, neuron], single_result.loss_history[:, 0])
    assert (batch_result.objective_history[-1] > batch_result.objective_history[0]).all()


def test_each_stimulus_stops_on_its_own_and_keeps_its_value() -> None:
    class Bowl(AbstractObjective):
        """Per-stimulus score -(x - target_b)²: SGD overshoots for large lr, so patience fires per stimulus."""

        def __init__(self, targets: list[float]) -> None:
            super().__init__(None)
            self.targets = torch.tensor(targets).reshape(-1, 1, 1, 1, 1)

        def per_stimulus(self, x: torch.Tensor) -> torch.Tensor:
            return -((x - self.targets[: len(x)]) ** 2).flatten(1).sum(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.per_stimulus(x).sum()

    def run(start: list[float], targets: list[float], lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor(start).reshape(-1, 1, 1, 1, 1).requires_grad_(True)
        result = optimize_stimulus(x, partial(torch.optim.SGD, lr=lr), Bowl(targets), EarlyStopper(50, patience=2))
        return x.detach().flatten(), result.stopped_at

    batch_x, batch_steps = run([0.0, 5.0], [1.0, -3.0], lr=1.05)  # |1 - 2 lr| > 1: diverges, stops after patience
    for b, (start, target) in enumerate([(0.0, 1.0), (5.0, -3.0)]):
        single_x, single_steps = run([start], [target], lr=1.05)
        assert batch_x[b].item() == pytest.approx(single_x.item(), rel=1e-6)
        assert batch_steps[b] == single_steps[0] < 50


def test_seeded_jitter_is_reproducible(tiny_model) -> None:
    objective = JitteredObjective(IncreaseObjective(tiny_model, [2]), max_shift=2)
    runs = []
    for _ in range(2):
        x = random_stimulus(tiny_model.stimulus_shape(6), [0, 1]).requires_grad_(True)
        optimize_stimulus(x, partial(torch.optim.SGD, lr=1.0), objective, OptimizationStopper(3), seed=7)
        runs.append(x.detach())
    torch.testing.assert_close(runs[0], runs[1], atol=0, rtol=0)


def test_postprocessors_apply_before_the_first_step_and_in_order() -> None:
    x = torch.full((1, 1, 5, 1, 1), 4.0, requires_grad=True)
    result = optimize_stimulus(
        x,
        partial(torch.optim.SGD, lr=0.0),
        SumObjective(),
        OptimizationStopper(1),
        stimulus_regularization_loss=[TotalVariationRegularizer(1.0)],
        stimulus_postprocessor=(
            ChangeNormJointlyClipRangeSeparately([(None, 1.0)], norm=None),
            TemporalGaussianLowPassFilterProcessor(1.0, 3),
        ),
    )
    assert result.objective_history[0, 0].item() == pytest.approx(5.0)  # clipped to 1 before being evaluated
    torch.testing.assert_close(x.detach(), torch.ones_like(x))


def test_custom_stopper_with_the_reference_signature() -> None:
    class StopAtThird(OptimizationStopper):
        def __init__(self) -> None:
            super().__init__(max_iterations=10)
            self.calls = 0

        def early_stop(self, loss: float) -> bool:  # type: ignore[override]
            self.calls += 1
            return self.calls >= 3

    x = torch.zeros((1, 1, 1, 1, 1), requires_grad=True)
    assert optimize_stimulus(x, partial(torch.optim.SGD, lr=1.0), SumObjective(), StopAtThird()).iterations == 3


def test_bad_stimuli_are_rejected_with_clear_errors() -> None:
    leaf = torch.zeros((1, 1, 1, 1, 1), requires_grad=True)
    with pytest.raises(StimulusOptimizationError, match="leaf tensor"):
        optimize_stimulus(leaf * 2, partial(torch.optim.SGD, lr=1.0), SumObjective(), OptimizationStopper(1))
    with pytest.raises(ValueError, match=r"\(batch, channels, time, height, width\)"):
        optimize_stimulus(torch.zeros(2, 3), partial(torch.optim.SGD, lr=1.0), SumObjective(), OptimizationStopper(1))


def test_a_joint_regulariser_is_counted_once_for_the_batch(tiny_model) -> None:
    class ThreeTimesSum:
        """A reference-style regulariser: only ``forward``, one value for the whole batch."""

        def forward(self, stimulus: torch.Tensor) -> torch.Tensor:
            return 3.0 * stimulus.sum()

    class PerStimulusSum(AbstractObjective):
        def __init__(self) -> None:
            super().__init__(None)

        def per_stimulus(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).sum(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum()

    x = torch.zeros((2, 1, 1, 1, 3), requires_grad=True)
    result = optimize_stimulus(
        x, partial(torch.optim.SGD, lr=1.0), PerStimulusSum(), OptimizationStopper(1), [ThreeTimesSum()]
    )
    # d(3 sum - sum)/dx = 2 everywhere: one step of lr 1 gives -2 (not -(2 * 3 - 1) from a broadcast penalty).
    torch.testing.assert_close(x.detach(), torch.full_like(x, -2.0))
    assert result.loss_history.shape == (1, 2)


class _BackendRecorder(IncreaseObjective):
    """An IncreaseObjective that records the convolution backend active during each evaluation."""

    seen: list[str]

    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        from openretina.modules.layers.convolutions import get_conv_backend

        self.seen.append(get_conv_backend())
        return super().per_stimulus(stimulus)


@pytest.mark.parametrize(
    ("requested", "expected"), [("auto", "auto"), ("spatial_first", "spatial_first"), (None, "dense")]
)
def test_convolution_backend_applies_during_the_call_and_is_restored(tiny_model, requested, expected) -> None:
    from openretina.modules.layers.convolutions import conv_backend, get_conv_backend

    objective = _BackendRecorder(tiny_model, [0])
    objective.seen = []
    stimulus = random_stimulus(tiny_model.stimulus_shape(6), [0]).requires_grad_(True)
    with conv_backend("dense"):
        optimize_stimulus(
            stimulus, partial(torch.optim.SGD, lr=1.0), objective, OptimizationStopper(2), convolution_backend=requested
        )
        assert get_conv_backend() == "dense"
    assert objective.seen and set(objective.seen) == {expected}
