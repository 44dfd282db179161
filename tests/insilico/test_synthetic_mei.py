"""MEIs of the bundled synthetic-retina model against the ground-truth receptive fields it was trained on."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from openretina.data_io.synthetic import make_synthetic_retina
from openretina.insilico import (
    ContrastiveNeuronObjective,
    IncreaseObjective,
    OptimizationStopper,
    SliceMeanReducer,
    optimize_stimulus,
)
from openretina.insilico.receptive_fields import spatial_profile_correlation
from openretina.insilico.stimulus_optimization import ChangeNormJointlyClipRangeSeparately, random_stimulus
from openretina.models import load_core_readout_from_remote

SESSION = "session_0"


def test_meis_match_the_true_receptive_fields_of_each_cell_type() -> None:
    model = load_core_readout_from_remote("synthetic_retina_core_readout", "cpu")
    truth = make_synthetic_retina(seed=0).ground_truth[SESSION]
    _, first_of_type = np.unique(truth.cell_type_ids, return_index=True)
    neurons = sorted(first_of_type.tolist())  # one cell of each of the 7 types
    start = random_stimulus(model.stimulus_shape(time_steps=40), seeds=list(range(len(neurons))), std=0.1)
    before = model(start, data_key=SESSION)[:, -1, neurons].diagonal().detach()

    result = optimize_stimulus(
        start.clone().requires_grad_(True),
        partial(torch.optim.SGD, lr=10.0),
        IncreaseObjective(model, neurons, SESSION, SliceMeanReducer(0, -1, 1), one_neuron_per_stimulus=True),
        OptimizationStopper(max_iterations=100),
        stimulus_postprocessor=ChangeNormJointlyClipRangeSeparately([(-3.0, 3.0), (-3.0, 3.0)], norm=10.0),
    )
    meis = result.best_stimulus.detach()
    after = model(meis, data_key=SESSION)[:, -1, neurons].diagonal().detach()
    assert (after > before).all()

    # Spatial profile of each MEI at its frame of largest energy, against the cell's true (linear) RF.
    mei = meis.numpy()
    peak_frames = (mei**2).sum(axis=(1, 3, 4)).argmax(axis=1)
    spatial = np.stack([m[:, frame] for m, frame in zip(mei, peak_frames)])
    correlation = spatial_profile_correlation(spatial, truth.spatial_rfs[neurons])
    names = [truth.cell_type_names[n] for n in neurons]
    on_transient = names.index("ON transient")
    assert correlation[on_transient] >= 0.8, dict(zip(names, correlation.round(3)))
    assert np.median(correlation) >= 0.8, dict(zip(names, correlation.round(3)))


def test_mds_drives_the_target_type_more_than_the_other_type() -> None:
    """Most discriminative stimulus between the ON transient and OFF transient cells of a session."""
    model = load_core_readout_from_remote("synthetic_retina_core_readout", "cpu")
    truth = make_synthetic_retina(seed=0).ground_truth[SESSION]
    names = np.asarray(truth.cell_type_names)
    on_cells = np.flatnonzero(names == "ON transient").tolist()
    off_cells = np.flatnonzero(names == "OFF transient").tolist()
    assert on_cells and off_cells
    reducer = SliceMeanReducer(0, -1, 1)
    objective = ContrastiveNeuronObjective(model, on_cells, [off_cells], SESSION, reducer, temperature=0.5)
    stimulus = random_stimulus(model.stimulus_shape(time_steps=40), seeds=[0], std=0.1).requires_grad_(True)
    optimize_stimulus(
        stimulus,
        partial(torch.optim.SGD, lr=10.0),
        objective,
        OptimizationStopper(max_iterations=60),
        stimulus_postprocessor=ChangeNormJointlyClipRangeSeparately([(-3.0, 3.0), (-3.0, 3.0)], norm=10.0),
    )
    with torch.no_grad():
        responses = model(stimulus.detach(), data_key=SESSION)[0, -1]
    # Relative to each type's response to a grey stimulus, the MDS raises the target type and not the other.
    with torch.no_grad():
        grey = model(torch.zeros_like(stimulus), data_key=SESSION)[0, -1]
    gain = responses / grey
    assert gain[on_cells].mean() > 1.5 * gain[off_cells].mean()
