"""Response reducers against hand-computed values, including the loud window fallback."""

from __future__ import annotations

import pytest
import torch

from openretina.errors import DataShapeError, InsufficientFramesError
from openretina.insilico.stimulus_optimization import MeanReducer, ResponseWindowWarning, SliceMeanReducer

# One stimulus' response: 4 output frames x 3 neurons, value = 10 * frame + neuron.
RESPONSE = torch.tensor([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0], [20.0, 21.0, 22.0], [30.0, 31.0, 32.0]])


def test_mean_reducer_over_time() -> None:
    assert torch.equal(MeanReducer(axis=0).forward(RESPONSE), torch.tensor([15.0, 16.0, 17.0]))
    assert MeanReducer()(torch.tensor([1.0, 2.0, 6.0])).item() == pytest.approx(3.0)


def test_mean_reducer_with_neuron_indices_averages_the_selected_neurons_over_time() -> None:
    # Neurons 0 and 2: (0 + 2 + 10 + 12 + 20 + 22 + 30 + 32) / 8 = 16.
    assert MeanReducer(neuron_dim=1, indices=[0, 2]).forward(RESPONSE).item() == pytest.approx(16.0)
    assert MeanReducer(neuron_dim=1, indices=1).forward(RESPONSE).item() == pytest.approx(16.0)
    assert MeanReducer(neuron_dim=1, indices=2).forward(RESPONSE).item() == pytest.approx(17.0)
    assert MeanReducer(neuron_dim=1, indices=-1).forward(RESPONSE).item() == pytest.approx(17.0)  # last neuron


def test_forward_batch_reduces_each_stimulus_separately() -> None:
    batch = torch.stack([RESPONSE, RESPONSE * 2, RESPONSE - 1])
    for reducer in (MeanReducer(axis=0), MeanReducer(neuron_dim=1, indices=[2]), SliceMeanReducer(0, 1, 2)):
        expected = torch.stack([reducer.forward(r) for r in batch])
        torch.testing.assert_close(reducer.forward_batch(batch), expected)


def test_slice_mean_reducer_window() -> None:
    # Frames 1 and 2: ((10 + 20) / 2, ...).
    assert torch.equal(SliceMeanReducer(axis=0, start=1, length=2).forward(RESPONSE), torch.tensor([15.0, 16.0, 17.0]))
    assert SliceMeanReducer(axis=1, start=1, length=2).forward(RESPONSE)[0].item() == pytest.approx(1.5)


def test_negative_start_counts_from_the_end() -> None:
    reducer = SliceMeanReducer(axis=0, start=-2, length=2)
    assert torch.equal(reducer.forward(RESPONSE), torch.tensor([25.0, 26.0, 27.0]))  # last two frames
    assert reducer.window(10) == (8, 2)


def test_window_past_the_end_warns_and_falls_back_to_the_first_frames() -> None:
    reducer = SliceMeanReducer(axis=0, start=10, length=10)
    with pytest.warns(ResponseWindowWarning, match=r"\[10, 10 \+ 10\).*response of 4 frames.*first 4 frames"):
        result = reducer.forward(RESPONSE)
    assert torch.equal(result, RESPONSE.mean(dim=0))
    assert (reducer.start, reducer.length) == (10, 10)  # the reducer itself is not changed


def test_window_running_past_the_end_warns_and_is_shortened() -> None:
    with pytest.warns(ResponseWindowWarning, match="shortened to 1 frames"):
        result = SliceMeanReducer(axis=0, start=3, length=5).forward(RESPONSE)
    assert torch.equal(result, RESPONSE[3])


def test_empty_response_raises_the_frames_error_instead_of_nan() -> None:
    empty = torch.zeros(0, 3)
    for reducer in (MeanReducer(axis=0), SliceMeanReducer(0, 0, 5), MeanReducer(neuron_dim=1, indices=[0])):
        with pytest.raises(InsufficientFramesError, match="too short"):
            reducer.forward(empty)


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(DataShapeError, match=r"indices \[3\].*3 neurons"):
        MeanReducer(neuron_dim=1, indices=3).forward(RESPONSE)
    with pytest.raises(DataShapeError, match="axis 2"):
        MeanReducer(axis=2).forward(RESPONSE)
    with pytest.raises(ValueError, match="length must be positive"):
        SliceMeanReducer(axis=0, start=0, length=0)
    with pytest.raises(ValueError, match="without indices"):
        MeanReducer(neuron_dim=1)
    assert repr(SliceMeanReducer(0, 10, 5)) == "SliceMeanReducer(axis=0, start=10, length=5)"
