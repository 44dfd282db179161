"""Evaluate a model on one split of a config's data: the per-neuron table, the summary, and the files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from openretina.data_io.base import DatasetStatistics
from openretina.errors import DataFormatError
from openretina.eval.evaluation import EvaluationSummary, evaluate_test_loaders, filter_by_var_ratio, write_table_csv
from openretina.training.checkpoints import load_trained_model
from openretina.training.data import TrainingData, load_data
from openretina.training.environment import cache_directory, prepare_run

__all__ = ["evaluate_model", "evaluate_split"]


def _species(cfg: DictConfig) -> str | None:
    data_io = cfg.get("data_io") or {}
    for source in (data_io.get("data_info") or {}, data_io.get("responses") or {}, data_io.get("stimuli") or {}):
        for key in ("animal_species", "specie", "species"):
            if source.get(key) is not None:
                return str(source.get(key))
    return None


def evaluate_split(
    model: torch.nn.Module,
    data: TrainingData,
    cfg: DictConfig,
    data_split: str,
    output_dir: str | Path,
    model_path: str = "",
) -> EvaluationSummary:
    """Score ``model`` on every session of ``data_split``; write the table (CSV) and summary (JSON); print it.

    Options come from ``cfg.evaluation`` (``var_ratio_cutoff``, ``add_responses_to_model_results``,
    ``model_results_path``, ``summary_results_path``, ``model_tag``). Default files:
    ``<output_dir>/evaluation/<split>_per_neuron.csv`` and ``<split>_summary.json``.
    """
    options: Any = cfg.get("evaluation") or OmegaConf.create({})
    if data_split not in data.dataloaders:
        raise DataFormatError(
            f"evaluation.data_split={data_split!r} is not a split of this data; available: {sorted(data.dataloaders)}."
        )
    rows, trials, lags = evaluate_test_loaders(
        model,
        data.dataloaders[data_split],
        data_split=data_split,
        sessions_kwargs=data.data_info.get("sessions_kwargs"),
        add_responses=bool(options.get("add_responses_to_model_results", False)),
    )
    cutoff = float(options.get("var_ratio_cutoff", 0.15))
    filtered, applied = filter_by_var_ratio(rows, cutoff)
    distinct_lags = {lag for session_lags in lags.values() for lag in session_lags}
    statistics = dataclasses.replace(DatasetStatistics.empty(), n_sessions=len(data.responses))
    summary = EvaluationSummary.from_dataframe(
        filtered,
        model_path=str(model_path),
        model_tag=options.get("model_tag"),
        exp_name=cfg.get("exp_name"),
        species=_species(cfg),
        data_split=data_split,
        temporal_lag=distinct_lags.pop() if len(distinct_lags) == 1 else -1,
        n_trials_per_session=trials,
        n_neurons_total=len(rows),
        var_ratio_cutoff=cutoff,
        filtering_applied=applied,
        dataset_stats=statistics,
    )
    folder = Path(output_dir) / "evaluation"
    write_table_csv(rows, options.get("model_results_path") or folder / f"{data_split}_per_neuron.csv")
    summary.save_json(options.get("summary_results_path") or folder / f"{data_split}_summary.json")
    summary.print_report()
    return summary


def evaluate_model(cfg: DictConfig) -> float:
    """``openretina eval``: load ``evaluation.model_path``, the config's data, evaluate ``evaluation.data_split``.

    Prepares the process as training does (:func:`~openretina.training.environment.prepare_run`: cache directory
    exported, seeded before data loading, matmul precision), so data and downloads resolve the same way.
    ``evaluation.model_path`` may be a ``.ckpt`` file, a ``save_pretrained`` folder, a registered model name or a
    URL (downloaded into ``paths.cache_dir``). Writes into ``paths.output_dir``, returns ``corr_to_avg_mean``.
    """
    evaluation = cfg.get("evaluation")
    if evaluation is None or OmegaConf.is_missing(evaluation, "model_path") or not evaluation.get("model_path"):
        raise DataFormatError(
            "evaluation.model_path is not set: pass the checkpoint to evaluate, e.g. "
            "`openretina eval evaluation.model_path=path/to/model.ckpt` with the config the model was trained with."
        )
    prepare_run(cfg)
    data = load_data(cfg)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_trained_model(evaluation.model_path, device, cache_directory(cfg))
    summary = evaluate_split(
        model, data, cfg, str(evaluation.get("data_split", "test")), cfg.paths.output_dir, evaluation.model_path
    )
    return summary.corr_to_avg_mean
