"""`openretina demo`: the main job on the embedded synthetic retina, end to end, offline.

1. generate a synthetic retina with known ground truth (stimuli, cells, noisy responses, repeated test trials);
2. check the data against the truth (spike-triggered averages on the white-noise part, noise ceiling);
3. train a core-readout model (Höfling et al. 2024 low-res architecture) with the packaged
   ``synthetic_core_readout`` config: the same code path as ``openretina train``;
4. train the LN-Poisson baseline (``synthetic_lnp``) on the same data with the same budget (epochs, time limit);
5. evaluate both on the held-out test movie against the noise ceiling, compare the models' linearised
   receptive fields with the true ones, the core model's most exciting inputs (MEIs) of one cell per type with
   them, and check the acceptance criteria (:func:`acceptance_checks`);
6. write ``report.json``, ``report.md``, a receptive-field figure and the trained model (``model/``, reload it
   with ``openretina.hub.load_pretrained``) to the output directory.

Extra positional arguments are Hydra overrides applied to both models' configs, e.g.
``openretina demo data_io.retina.cells_per_session=20 dataloader.batch_size=16``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from openretina.cli.hydra_app import CONFIG_DIR
from openretina.data_io.synthetic import SyntheticRetinaDataset, rank_one_receptive_field, spike_triggered_average
from openretina.data_io.synthetic.retina import TEST_NAME
from openretina.eval.chunked import predict_chunks
from openretina.eval.evaluation import neuron_metrics
from openretina.eval.metrics import correlation_numpy
from openretina.hub.pretrained import save_pretrained
from openretina.insilico.receptive_fields import linearised_receptive_fields, spatial_profile_correlation
from openretina.training.synthetic_data import synthetic_retina
from openretina.training.train import fit_model

CONFIG_NAME = "synthetic_core_readout"
BASELINE_CONFIG_NAME = "synthetic_lnp"
ORACLE_THRESHOLD = 0.5
# Acceptance criteria of the demo (issue 6): core-readout mean test correlation >= 0.9 x mean jackknife oracle,
# at least 0.05 above the LN baseline, and median linearised-RF correlation >= 0.8 over the cells whose oracle
# correlation is >= ORACLE_THRESHOLD.
MIN_FRACTION_OF_ORACLE = 0.9
MIN_MARGIN_OVER_BASELINE = 0.05
MIN_RF_CORRELATION = 0.8


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="openretina demo",
        description="Generate a synthetic retina, train a core-readout model on it and compare with the truth.",
    )
    parser.add_argument("--output-dir", type=Path, default=Path("demo_output"), help="where reports are written")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic retina and of training")
    parser.add_argument("--max-epochs", type=int, default=40, help="training epochs (each ~600 clips of 50 frames)")
    parser.add_argument(
        "--max-minutes", type=float, default=8.0, help="stop training after this wall-clock time (minutes)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny dataset and 2 epochs: a smoke run in well under a minute"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the LN baseline (and the checks that compare with it)"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides for both models' configs, e.g. data_io.retina.cells_per_session=20",
    )
    return parser.parse_args(list(argv))


def _lightning_duration(minutes: float) -> str:
    """Lightning's ``DD:HH:MM:SS`` form of a duration."""
    seconds = round(minutes * 60)
    return f"{seconds // 86400:02d}:{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _overrides(args: argparse.Namespace, output_dir: Path) -> list[str]:
    """Overrides of the packaged configs (the same runs as ``openretina train``); both models get the same budget."""
    overrides = [
        f"paths.output_dir={output_dir.resolve()}",
        f"seed={args.seed}",
        f"data_io.retina.seed={args.seed}",
        f"trainer.max_epochs={2 if args.quick else args.max_epochs}",
        f"+trainer.max_time={_lightning_duration(args.max_minutes)}",
        "+trainer.enable_model_summary=false",
        "+trainer.log_every_n_steps=1",
    ]
    if args.quick:
        overrides += [
            "data_io.retina.num_natural_clips=12",
            "data_io.retina.num_white_noise_clips=4",
            "data_io.retina.cells_per_session=12",
            "dataloader.num_val_clips=2",
        ]
    return [*overrides, *args.overrides]


def _config(args: argparse.Namespace, config_name: str, output_dir: Path) -> DictConfig:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=_overrides(args, output_dir))


def _truth_checks(dataset: SyntheticRetinaDataset) -> dict[str, float]:
    """How well classical analyses recover the truth from the data alone (a check of the data, not the model)."""
    white_noise = dataset.train_segments["white_noise"]
    correlations = []
    for session, truth in dataset.ground_truth.items():
        movie = np.asarray(dataset.movies[session].train[:, white_noise])
        responses = np.asarray(dataset.responses[session].train[:, white_noise])
        sta = spike_triggered_average(movie, responses, num_lags=truth.temporal_filters.shape[1])
        correlations.append(spatial_profile_correlation(rank_one_receptive_field(sta)[0], truth.spatial_rfs))
    return {"sta_rf_correlation_median": float(np.nanmedian(np.concatenate(correlations)))}


def _evaluate(model: Any, dataset: SyntheticRetinaDataset) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    per_cell: dict[str, list[np.ndarray]] = {"correlation": [], "oracle": [], "truth": [], "rf_correlation": []}
    model_rfs: dict[str, np.ndarray] = {}
    for session, truth in dataset.ground_truth.items():
        movie = dataset.movies[session].test_dict[TEST_NAME]
        responses = dataset.responses[session]
        aligned = predict_chunks(model, movie, session, starts=[0], chunk_size=movie.shape[1])
        trials = responses.test_by_trial_dict[TEST_NAME][..., aligned.frames].transpose(2, 0, 1)
        scores = neuron_metrics(aligned.predictions, responses.test_dict[TEST_NAME][:, aligned.frames].T, trials)
        per_cell["correlation"].append(scores["corr_to_average"])
        per_cell["oracle"].append(scores["jackknife"])
        # The synthetic retina knows the noise-free response: the correlation a perfect model would approach 1.
        expected = truth.test_expected[TEST_NAME][:, aligned.frames]
        per_cell["truth"].append(correlation_numpy(expected.T, aligned.predictions, axis=0))
        model_rfs[session] = rank_one_receptive_field(linearised_receptive_fields(model, session))[0]
        per_cell["rf_correlation"].append(spatial_profile_correlation(model_rfs[session], truth.spatial_rfs))
    correlation, oracle, to_truth, rf_correlation = (np.concatenate(per_cell[key]) for key in per_cell)
    reliable = oracle >= ORACLE_THRESHOLD
    metrics = {
        "test_correlation_mean": float(np.nanmean(correlation)),
        "oracle_correlation_mean": float(np.nanmean(oracle)),
        "fraction_of_oracle": float(np.nanmean(correlation) / np.nanmean(oracle)),
        "correlation_to_noise_free_truth_mean": float(np.nanmean(to_truth)),
        "reliable_cells_fraction": float(reliable.mean()),
        "rf_correlation_median_reliable": float(np.nanmedian(rf_correlation[reliable])) if reliable.any() else None,
        "rf_correlation_mean_reliable": float(np.nanmean(rf_correlation[reliable])) if reliable.any() else None,
    }
    return metrics, model_rfs


def acceptance_checks(core: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, Any]:
    """The demo's acceptance criteria on the metrics of :func:`_evaluate` for the core model and the LN baseline.

    Returns the measured quantities, whether each criterion holds, and ``all_met``. Without a baseline the
    comparison with it is left out (and not counted in ``all_met``).
    """
    rf_median = core["rf_correlation_median_reliable"]
    checks: dict[str, Any] = {
        "core_fraction_of_oracle": core["fraction_of_oracle"],
        f"core_reaches_{MIN_FRACTION_OF_ORACLE:g}_of_oracle": core["fraction_of_oracle"] >= MIN_FRACTION_OF_ORACLE,
        "reliable_cells_fraction": core["reliable_cells_fraction"],
        "rf_correlation_median_reliable": rf_median,
        f"rf_correlation_at_least_{MIN_RF_CORRELATION:g}": rf_median is not None and rf_median >= MIN_RF_CORRELATION,
    }
    if baseline is not None:
        margin = core["test_correlation_mean"] - baseline["test_correlation_mean"]
        checks["margin_over_ln_baseline"] = margin
        checks[f"beats_ln_baseline_by_{MIN_MARGIN_OVER_BASELINE:g}"] = margin >= MIN_MARGIN_OVER_BASELINE
    checks["all_met"] = all(value for value in checks.values() if isinstance(value, bool))
    return checks


def _mei_check(model: Any, dataset: SyntheticRetinaDataset) -> dict[str, Any]:
    """MEIs of one cell per type (one batched optimisation), compared with the true receptive fields."""
    from openretina.insilico import IncreaseObjective, OptimizationStopper, SliceMeanReducer, optimize_stimulus
    from openretina.insilico.stimulus_optimization import ChangeNormJointlyClipRangeSeparately, random_stimulus

    session = sorted(dataset.ground_truth)[0]
    truth = dataset.ground_truth[session]
    _, first_of_type = np.unique(truth.cell_type_ids, return_index=True)
    cells = sorted(first_of_type.tolist())
    channels = dataset.config.num_channels
    start = random_stimulus(model.stimulus_shape(time_steps=40), seeds=list(range(len(cells))), std=0.1)
    result = optimize_stimulus(
        start.requires_grad_(True),
        partial(torch.optim.SGD, lr=10.0),
        IncreaseObjective(model, cells, session, SliceMeanReducer(0, -1, 1), one_neuron_per_stimulus=True),
        OptimizationStopper(max_iterations=100),
        stimulus_postprocessor=ChangeNormJointlyClipRangeSeparately([(-3.0, 3.0)] * channels, norm=10.0),
    )
    meis = result.best_stimulus.detach().numpy()
    peak_frames = (meis**2).sum(axis=(1, 3, 4)).argmax(axis=1)
    spatial = np.stack([mei[:, frame] for mei, frame in zip(meis, peak_frames)])
    correlation = spatial_profile_correlation(spatial, truth.spatial_rfs[cells])
    per_type = {truth.cell_type_names[c]: round(float(r), 3) for c, r in zip(cells, correlation)}
    return {"mei_rf_correlation_median": float(np.median(correlation)), "per_type": str(per_type)}


def _save_figure(dataset: SyntheticRetinaDataset, model_rfs: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    session = sorted(model_rfs)[0]
    truth = dataset.ground_truth[session].spatial_rfs
    estimate = model_rfs[session]
    # One example cell of each functional type.
    _, first_of_type = np.unique(dataset.ground_truth[session].cell_type_ids, return_index=True)
    cells = sorted(first_of_type.tolist())
    num_cells = len(cells)
    figure, axes = plt.subplots(2, num_cells, figsize=(1.6 * num_cells, 3.6), squeeze=False)
    for column, cell in enumerate(cells):
        for row, (rfs, label) in enumerate(((truth, "true RF"), (estimate, "model RF"))):
            channel = int(np.abs(truth[cell]).reshape(truth.shape[1], -1).max(axis=1).argmax())
            image = rfs[cell, channel]
            limit = float(np.abs(image).max()) or 1.0
            axes[row, column].imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if column == 0:
                axes[row, column].set_ylabel(label)
        axes[0, column].set_title(dataset.ground_truth[session].cell_type_names[cell], fontsize=7)
    figure.suptitle(f"{session}: true vs linearised model receptive fields (strongest channel)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _side_by_side(core: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Markdown table of the test metrics of both models, one row per quantity."""
    lines = ["## core-readout vs LN baseline (test movie)", "", "| quantity | core-readout | LN baseline |"]
    lines.append("| --- | --- | --- |")
    for key, value in core.items():
        other = baseline.get(key)
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in (value, other)]
        lines.append(f"| {key} | {cells[0]} | {cells[1]} |")
    return [*lines, ""]


def _markdown(report: dict[str, Any]) -> str:
    lines = ["# openretina demo report", ""]
    if "ln_baseline" in report:
        lines += _side_by_side(report["test"], report["ln_baseline"])
    for section, values in report.items():
        if not isinstance(values, dict) or section == "ln_baseline":
            continue
        lines += [f"## {section}", "", "| quantity | value |", "| --- | --- |"]
        lines += [
            f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |"
            for key, value in values.items()
        ]
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] = ()) -> int:
    args = _parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    print("[1/5] generating the synthetic retina ...", flush=True)
    cfg = _config(args, CONFIG_NAME, args.output_dir)
    # The data_io config reads this same (cached) dataset, so training sees exactly these arrays.
    dataset = synthetic_retina(cfg.data_io.retina)
    config = dataset.config
    dataset_summary = {
        "sessions": config.num_sessions,
        "cells": sum(r.n_neurons for r in dataset.responses.values()),
        "stimulus": f"{config.num_channels} x {config.height} x {config.width} px at {config.frame_rate:g} Hz",
        "train_frames": int(dataset.movies[sorted(dataset.movies)[0]].train.shape[1]),
        "test_repeats": config.num_test_repeats,
        "noise": config.population.noise_model,
    }
    print(f"      {dataset_summary}", flush=True)

    print("[2/5] checking the data against the ground truth ...", flush=True)
    truth = _truth_checks(dataset)
    print(f"      spike-triggered average vs true RF (median correlation): {truth['sta_rf_correlation_median']:.3f}")

    print("[3/5] training the core-readout model (config synthetic_core_readout) ...", flush=True)
    run = fit_model(cfg)
    model = run.model.eval()
    training = {
        "epochs": int(run.model.current_epoch),
        "best_val_evaluation_loss": run.metrics.get("best_val_evaluation_loss"),
        "best_checkpoint": run.best_model_path,
    }

    baseline_metrics: dict[str, Any] | None = None
    if not args.no_baseline:
        print("[4/5] training the LN baseline (config synthetic_lnp, same data and budget) ...", flush=True)
        baseline_run = fit_model(_config(args, BASELINE_CONFIG_NAME, args.output_dir / "ln_baseline"))
        baseline_metrics, _ = _evaluate(baseline_run.model.eval(), dataset)
        training["ln_baseline_epochs"] = int(baseline_run.model.current_epoch)

    print("[5/5] evaluating on the held-out test movie, and MEIs of one cell per type ...", flush=True)
    metrics, model_rfs = _evaluate(model, dataset)
    meis = _mei_check(model, dataset)
    report: dict[str, Any] = {
        "dataset": dataset_summary,
        "data_vs_truth": truth,
        "training": training,
        "test": metrics,
    }
    if baseline_metrics is not None:
        report["ln_baseline"] = baseline_metrics
    report["acceptance"] = acceptance_checks(metrics, baseline_metrics)
    report["mei_vs_truth"] = meis
    report["runtime"] = {"seconds": round(time.perf_counter() - started, 1)}
    save_pretrained(
        model,
        args.output_dir / "model",
        provenance={
            "name": "synthetic_retina_core_readout",
            "dataset": f"openretina synthetic retina (seed {args.seed}, {dataset_summary['cells']} cells)",
            "metrics": {key: value for key, value in metrics.items() if isinstance(value, float)},
        },
    )
    (args.output_dir / "report.json").write_text(json.dumps(report, indent=2))
    (args.output_dir / "report.md").write_text(_markdown(report))
    _save_figure(dataset, model_rfs, args.output_dir / "receptive_fields.png")
    print(_markdown(report))
    print(f"Reports and figure written to {args.output_dir.resolve()}")
    return 0
