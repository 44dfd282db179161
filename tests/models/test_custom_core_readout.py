"""The Models page's custom-model example builds, runs and trains with Lightning.

The example code below is the documentation snippet verbatim, except ``Flatten(start_dim=1)`` (the page's
``start_dim=2`` flattens only height and width and cannot feed the linear layer).
"""

from __future__ import annotations

import warnings

import lightning
import pytest

# ----------------------------------------------------------------------------- documentation snippet (start)
import torch
from torch.utils.data import DataLoader

from openretina.data_io.base_dataloader import DataPoint
from openretina.models.core_readout import (
    CoreReadout,
    SingleSessionReadout,
)
from openretina.modules.core.base_core import Core
from openretina.modules.readout.base import Readout


# Define a custom core module
class MyCustomCore(Core):
    def __init__(self, input_channels=2, hidden_channels=32):
        super().__init__()
        self.conv1 = torch.nn.Conv3d(input_channels, hidden_channels, kernel_size=(5, 3, 3), padding=(2, 1, 1))
        self.conv2 = torch.nn.Conv3d(hidden_channels, hidden_channels, kernel_size=(5, 3, 3), padding=(2, 1, 1))
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return x

    def stimulus_shape(self, time_steps, num_batches=1):
        return (num_batches, 2, time_steps, 16, 18)


# Define a custom readout module
class MyCustomReadout(Readout):
    def __init__(self, input_shape, num_neurons=150):
        super().__init__()
        self.num_neurons = num_neurons
        _, channels, _, height, width = input_shape
        self.flatten = torch.nn.Flatten(start_dim=1)
        flattened_size = channels * height * width
        self.linear = torch.nn.Linear(flattened_size, num_neurons)

    def forward(self, x):
        # x has shape (batch, channels, time, height, width)
        batch, _, time = x.shape[:3]
        x = x.permute(0, 2, 1, 3, 4)  # (batch, time, channels, height, width)
        x = x.reshape(batch * time, x.shape[2], x.shape[3], x.shape[4])
        x = self.flatten(x)
        x = self.linear(x)
        x = x.reshape(batch, time, self.num_neurons)
        return x


# Create the core and readout modules
core = MyCustomCore(input_channels=2, hidden_channels=32)
readout = MyCustomReadout(input_shape=(1, 32, 1, 16, 18), num_neurons=150)

# Combine them into a CoreReadout model
custom_model = CoreReadout(core=core, readout=readout)
# ----------------------------------------------------------------------------- documentation snippet (end)

N_NEURONS = 150


def _batches(n_batches: int, seed: int) -> list[tuple[str, DataPoint]]:
    """Tiny (session, DataPoint) batches: random movies, every neuron firing at a constant rate of 0.5."""
    generator = torch.Generator().manual_seed(seed)
    return [
        ("session_a", DataPoint(torch.randn(2, 2, 6, 16, 18, generator=generator), torch.full((2, 6, N_NEURONS), 0.5)))
        for _ in range(n_batches)
    ]


def _trainer(max_steps: int) -> lightning.Trainer:
    return lightning.Trainer(
        max_steps=max_steps,
        max_epochs=100,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def test_example_model_forward_shape_and_key_handling() -> None:
    assert isinstance(custom_model.readout, SingleSessionReadout)
    stimulus = torch.randn(custom_model.stimulus_shape(time_steps=12, num_batches=3))
    assert stimulus.shape == (3, 2, 12, 16, 18)  # from the core's own stimulus_shape
    with torch.no_grad():
        output = custom_model(stimulus)
        with_key = custom_model(stimulus, data_key="any_session")
    assert output.shape == (3, 12, N_NEURONS)
    assert torch.equal(output, with_key)  # the readout has no data_key argument: the key is not passed on
    assert custom_model.readout_keys() == ["default"]
    assert custom_model.number_of_cut_frames() == 0  # padded convolutions keep every frame


def test_example_model_state_dict_layout() -> None:
    keys = set(custom_model.state_dict())
    assert "core.conv1.weight" in keys
    assert "readout.default.linear.weight" in keys


def test_data_key_reaches_readouts_that_accept_it() -> None:
    class KeyedReadout(Readout):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str | None] = []

        def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
            self.seen.append(data_key)
            return x.mean(dim=(1, 3, 4)).unsqueeze(-1)

    keyed = KeyedReadout()
    model = CoreReadout(core=MyCustomCore(), readout=keyed, session_name="s1")
    model(torch.randn(1, 2, 6, 16, 18), data_key="s1")
    assert keyed.seen == ["s1"]
    assert model.readout_keys() == ["s1"]


def test_example_model_trains_and_loss_decreases() -> None:
    torch.manual_seed(0)
    model = CoreReadout(core=MyCustomCore(), readout=MyCustomReadout(input_shape=(1, 32, 1, 16, 18)))
    train = _batches(4, seed=1)
    validation = _batches(1, seed=2)
    inputs, targets = train[0][1]
    with torch.no_grad():
        loss_before = model.loss(model(inputs), targets).item()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        _trainer(max_steps=6).fit(
            model,
            DataLoader(train, batch_size=None, shuffle=False),
            DataLoader(validation, batch_size=None, shuffle=False),
        )
    with torch.no_grad():
        loss_after = model.loss(model(inputs), targets).item()
    assert loss_after < 0.5 * loss_before


@pytest.mark.parametrize("time_steps", [1, 7])
def test_example_model_keeps_time_axis(time_steps: int) -> None:
    with torch.no_grad():
        output = custom_model(torch.zeros(2, 2, time_steps, 16, 18))
    assert output.shape == (2, time_steps, N_NEURONS)
