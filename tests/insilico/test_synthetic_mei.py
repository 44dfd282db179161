"""MEIs of the bundled synthetic-retina model against the ground-truth receptive fields it was trained on."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from openretina.data_io.synthetic import make_synthetic_retina
from openretina.insilico import IncreaseObjective, OptimizationStopper, SliceMeanReducer, optimize_stimulus
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
