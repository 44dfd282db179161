# Paper listing (spec reference-insilico.md §5.2, listing_mei.py). The one change: `data_key` names a session of
# the test fixture served as "hoefling_2024_base_low_res" (the published model's "session_2_ventral2_20201016"
# is not one of its sessions).
# ruff: noqa: I001  (the listing's import order is kept)
from functools import partial
import torch
import matplotlib.pyplot as plt
from openretina.models import *
from openretina.insilico import *
from openretina.utils import *

model = load_core_readout_from_remote("hoefling_2024_base_low_res", "cpu")
objective = IncreaseObjective(
    model,
    neuron_indices=[10],
    data_key="session_2_synthetic_20240102",
    response_reducer=SliceMeanReducer(axis=0, start=10, length=10),
)
stimulus = torch.randn(model.stimulus_shape(time_steps=40), requires_grad=True)
stimulus.data = stimulus.data * 0.1
optimize_stimulus(
    stimulus=stimulus,
    optimizer_init_fn=partial(torch.optim.SGD, lr=100.0),
    objective_object=objective,
    optimization_stopper=OptimizationStopper(max_iterations=10),
)
save_stimulus_to_mp4_video(stimulus[0], "mei.mp4")
fig, axes = plt.subplots(2, 2, figsize=(7 * 3, 12))
plot_stimulus_composition(stimulus[0], axes[0, 0], axes[0, 1], axes[1, 0])
