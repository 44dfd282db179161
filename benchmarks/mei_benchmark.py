"""MEI benchmark: time per neuron to optimise a most exciting input on the Höfling low-res architecture.

Model: ``UnifiedCoreReadout`` with the hyper-parameters and trained weights of the project's reference fixture
(``tests/data/reference_fixture/trained_final``: 2 -> 16 -> 16 channels, temporal kernels 21/11, spatial 11/5,
Gaussian-mask readout). Stimulus ``1 x 2 x 50 x 18 x 16``. Recipe (the reference's canonical MEI recipe):
SGD lr 100, ``SliceMeanReducer(axis=0, start=10, length=10)``, ``RangeRegularizationLoss`` (Höfling ranges,
max norm 30, factor 0.1), norm-and-range postprocessor (norm 30), 100 iterations.

Modes:

* ``reference_style``: what the reference does, rebuilt here (the reference package is not installed): one
  stimulus per run, the dense ``conv3d`` computation (``conv_backend("dense")``), the model left in train mode
  with parameters requiring gradients (which accumulate), loss ``reg - objective`` on a ``squeeze(0)``-ed response,
  the "rescale to norm 30, then clip" postprocessor.
* ``ours_single``: :func:`optimize_stimulus` on one stimulus, library defaults (``"auto"`` convolution backend).
* ``ours_batched``: one :func:`optimize_stimulus` call for ``--neurons`` stimuli, one neuron each
  (``IncreaseObjective(..., one_neuron_per_stimulus=True)``); time divided by the number of neurons.
* ``reference_package`` (with ``--reference-python``): the reference package itself (``openretina==1.1.1``,
  installed in a separate virtual environment whose Python is given), timed by ``reference_mei_runner.py`` on the
  fixture's reference checkpoint, one neuron per run.

Runs are interleaved (one repetition of every mode, then the next) so that machine load hits all modes alike;
the median over repetitions is reported, with the load average, in ``benchmarks/results/mei.{json,md}``.

Run: ``.venv/bin/python benchmarks/mei_benchmark.py`` (``--iterations``, ``--neurons``, ``--repeats``,
``--reference-python /path/to/reference-venv/bin/python``). The reference venv is made with
``python -m venv ref && ref/bin/pip install torch==2.13.0 openretina==1.1.1``; the library never imports it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import load_file

from openretina.insilico.stimulus_optimization import (
    ChangeNormJointlyClipRangeSeparately,
    IncreaseObjective,
    OptimizationStopper,
    RangeRegularizationLoss,
    SliceMeanReducer,
    optimize_stimulus,
    random_stimulus,
)
from openretina.models import UnifiedCoreReadout
from openretina.modules.layers.convolutions import conv_backend

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "reference_fixture"
RESULTS = ROOT / "benchmarks" / "results"
SESSION = "session_2_synthetic_20240102"  # 56 neurons
RANGES = [(-0.654, 6.269), (-0.913, 6.269)]
NORM = 30.0
TIME_STEPS = 50


def load_model() -> UnifiedCoreReadout:
    """The fixture's trained Höfling low-res model, in train mode (as a model comes out of training)."""
    hparams = json.loads((FIXTURE / "trained_final.hparams.json").read_text())
    hparams.pop("__dropped__")
    model = UnifiedCoreReadout(**hparams)
    model.load_state_dict(load_file(str(FIXTURE / "trained_final.safetensors")))
    return model.train()


def reducer() -> SliceMeanReducer:
    return SliceMeanReducer(axis=0, start=10, length=10)


def reference_style(model: UnifiedCoreReadout, neuron: int, seed: int, iterations: int) -> torch.Tensor:
    """The reference's loop semantics on one stimulus (train mode, parameter gradients on, dense conv)."""
    model = copy.deepcopy(model)  # train-mode BatchNorm updates running statistics: keep the shared model clean
    stimulus = random_stimulus(model.stimulus_shape(TIME_STEPS), [seed]).requires_grad_(True)
    range_loss = RangeRegularizationLoss(RANGES, max_norm=NORM, factor=0.1)
    rescale_and_clip = ChangeNormJointlyClipRangeSeparately(RANGES, norm=NORM, exact_norm=True)
    stimulus.data = rescale_and_clip.process(stimulus.data)
    optimizer = torch.optim.SGD([stimulus], lr=100.0)
    window = reducer()
    with conv_backend("dense"):
        for _ in range(iterations):
            response = model(stimulus, data_key=SESSION).squeeze(0)[:, [neuron]].mean(dim=-1)
            loss = -window.forward(response) + range_loss.forward(stimulus)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            stimulus.data = rescale_and_clip.process(stimulus.data)
    return stimulus.detach()


def ours(model: UnifiedCoreReadout, neurons: list[int], seed: int, iterations: int, backend: str) -> torch.Tensor:
    """One :func:`optimize_stimulus` call optimising one stimulus per neuron."""
    stimulus = random_stimulus(model.stimulus_shape(TIME_STEPS), [seed + n for n in range(len(neurons))])
    postprocessor = ChangeNormJointlyClipRangeSeparately(RANGES, norm=NORM)
    stimulus = postprocessor.process(stimulus).requires_grad_(True)
    objective = IncreaseObjective(model, neurons, SESSION, reducer(), one_neuron_per_stimulus=True)
    optimize_stimulus(
        stimulus=stimulus,
        optimizer_init_fn=partial(torch.optim.SGD, lr=100.0),
        objective_object=objective,
        optimization_stopper=OptimizationStopper(max_iterations=iterations),
        stimulus_regularization_loss=RangeRegularizationLoss(RANGES, max_norm=NORM, factor=0.1),
        stimulus_postprocessor=postprocessor,
        convolution_backend=backend,
    )
    return stimulus.detach()


def reference_package(python: Path, iterations: int, seed: int) -> float:
    """Seconds per neuron of the reference package's own run (timed inside the subprocess, imports excluded)."""
    runner = Path(__file__).with_name("reference_mei_runner.py")
    command = [str(python), str(runner), "--iterations", str(iterations), "--seed", str(seed)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(json.loads(output.strip().splitlines()[-1])["seconds_per_neuron"])


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--neurons", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "mei")
    parser.add_argument("--reference-python", type=Path, default=None, help="Python of a venv with openretina==1.1.1")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the reference recipe's window warning and the train-mode probe are expected
    model = load_model()
    neurons = list(range(args.neurons))
    modes: dict[str, tuple[int, Callable[[int], object]]] = {
        "reference_style": (1, lambda seed: reference_style(model, 10, seed, args.iterations)),
        "ours_single": (1, lambda seed: ours(model, [10], seed, args.iterations, "auto")),
        "ours_batched": (len(neurons), lambda seed: ours(model, neurons, seed, args.iterations, "auto")),
    }
    # Warm-up: convolution autotuning for both batch sizes, allocator, first-call overheads.
    ours(model, neurons[:1], 0, 2, "auto")
    ours(model, neurons, 0, 2, "auto")
    reference_style(model, 10, 0, 2)
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    if args.reference_python is not None:
        seconds["reference_package"] = []
    loads: list[float] = []
    for repeat in range(args.repeats):
        for name, (count, run) in modes.items():
            seconds[name].append(timed(lambda run=run, repeat=repeat: run(repeat)) / count)  # type: ignore[misc]
            loads.append(os.getloadavg()[0])
            print(f"repeat {repeat}: {name} {seconds[name][-1]:.3f} s per neuron", flush=True)
        if args.reference_python is not None:
            seconds["reference_package"].append(reference_package(args.reference_python, args.iterations, repeat))
            loads.append(os.getloadavg()[0])
            print(f"repeat {repeat}: reference_package {seconds['reference_package'][-1]:.3f} s per neuron", flush=True)
    per_neuron = {name: statistics.median(values) for name, values in seconds.items()}
    baseline = per_neuron["reference_style"]
    result = {
        "model": "UnifiedCoreReadout, reference fixture trained_final (Hoefling low-res architecture)",
        "stimulus_shape": [1, 2, TIME_STEPS, 18, 16],
        "iterations": args.iterations,
        "batched_neurons": len(neurons),
        "repeats": args.repeats,
        "seconds_per_neuron": per_neuron,
        "all_seconds_per_neuron": seconds,
        "speedup_vs_reference_style": {name: baseline / value for name, value in per_neuron.items()},
        "speedup_vs_reference_package": (
            {name: per_neuron["reference_package"] / value for name, value in per_neuron.items()}
            if "reference_package" in per_neuron
            else None
        ),
        "load_average_1min": {"min": min(loads), "max": max(loads)},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    """A short Markdown table of the results."""
    lines = [
        "# MEI optimisation benchmark",
        "",
        f"Stimulus {' x '.join(map(str, result['stimulus_shape']))}, {result['iterations']} SGD iterations (lr 100), "
        f"batched over {result['batched_neurons']} neurons; median of {result['repeats']} interleaved repeats; "
        f"{result['threads']} torch threads; 1-min load average {result['load_average_1min']['min']:.1f}-"
        f"{result['load_average_1min']['max']:.1f} during the run.",
        "",
        "| mode | s per neuron | speed-up vs reference_style | speed-up vs reference_package |",
        "|---|---|---|---|",
    ]
    package = result["speedup_vs_reference_package"]
    for name, value in result["seconds_per_neuron"].items():
        versus_package = f"{package[name]:.1f}x" if package else "not measured"
        lines.append(f"| {name} | {value:.3f} | {result['speedup_vs_reference_style'][name]:.1f}x | {versus_package} |")
    lines += [
        "",
        "Reproduce: `.venv/bin/python benchmarks/mei_benchmark.py --reference-python REF/bin/python` (REF: a venv with "
        "`pip install torch==2.13.0 openretina==1.1.1`; without the option the reference package is not measured).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
