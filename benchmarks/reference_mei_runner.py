"""Time the *reference package's* MEI recipe; run by ``mei_benchmark.py --reference-python`` in a separate venv.

This script is executed with the Python of a virtual environment that has the reference package
(``openretina==1.1.1`` from PyPI) installed, never with the project's own environment: it imports the package
under test as a black box and prints one JSON line ``{"seconds_per_neuron": ...}``. Model: the project's
reference fixture checkpoint (made with that package). Recipe: the one ``mei_benchmark.py`` times for us (SGD
lr 100, ``SliceMeanReducer(axis=0, start=10, length=10)``, range regulariser with max norm 30 and factor 0.1,
rescale-and-clip postprocessor with norm 30, one stimulus of 1 x 2 x 50 x 18 x 16, ``--iterations`` steps).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from functools import partial
from pathlib import Path

import torch

RANGES = [(-0.654, 6.269), (-0.913, 6.269)]
SESSION = "session_2_synthetic_20240102"
CHECKPOINT = Path(__file__).resolve().parents[1] / "tests" / "data" / "reference_fixture" / "trained_best.ckpt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from openretina.insilico.stimulus_optimization.objective import IncreaseObjective, SliceMeanReducer
    from openretina.insilico.stimulus_optimization.optimization_stopper import OptimizationStopper
    from openretina.insilico.stimulus_optimization.optimizer import optimize_stimulus
    from openretina.insilico.stimulus_optimization.regularizer import (
        ChangeNormJointlyClipRangeSeparately,
        RangeRegularizationLoss,
    )
    from openretina.models.core_readout import load_core_readout_model

    model = load_core_readout_model(str(CHECKPOINT), "cpu")

    def run(iterations: int, seed: int) -> float:
        torch.manual_seed(seed)
        postprocessor = ChangeNormJointlyClipRangeSeparately(RANGES, norm=30.0)
        stimulus = torch.randn(model.stimulus_shape(time_steps=50), requires_grad=True)
        stimulus.data = postprocessor.process(stimulus.data * 0.1)
        objective = IncreaseObjective(
            model, neuron_indices=[10], data_key=SESSION, response_reducer=SliceMeanReducer(axis=0, start=10, length=10)
        )
        start = time.perf_counter()
        optimize_stimulus(
            stimulus=stimulus,
            optimizer_init_fn=partial(torch.optim.SGD, lr=100.0),
            objective_object=objective,
            optimization_stopper=OptimizationStopper(max_iterations=iterations),
            stimulus_regularization_loss=RangeRegularizationLoss(RANGES, max_norm=30.0, factor=0.1),
            stimulus_postprocessor=postprocessor,
        )
        return time.perf_counter() - start

    run(2, args.seed)  # warm-up: first-call overheads
    print(json.dumps({"seconds_per_neuron": run(args.iterations, args.seed)}))


if __name__ == "__main__":
    main()
