"""Per-neuron evaluation table and its summary (what ``openretina eval`` and ``openretina train`` write).

Columns of the table (the reference's, spec 9.3): ``session, neuron_relative_idx, data_split,
poisson_loss_to_average, corr_to_average, mse_to_average, feve, jackknife, var_ratio, corr_<i>, mse_<i>`` (one pair
per trial) and every per-session metadata entry (per-neuron values for arrays of length N, else repeated).

Differences from the reference: predictions of a chunked test set are aligned chunk by chunk
(:mod:`openretina.eval.chunked`); the summary's mean explainable-variance ratio is also reported under the honest
name ``explainable_var_ratio_mean`` (the reference calls it ``fev_mean``, which is kept as an alias).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from openretina.data_io.base import DatasetStatistics
from openretina.errors import DataShapeError
from openretina.eval.chunked import AlignedPrediction, predict_test_loader
from openretina.eval.metrics import MSE_numpy, correlation_numpy, explainable_vs_total_var, feve, poisson_loss_numpy
from openretina.eval.oracles import oracle_corr_jackknife

__all__ = [
    "EvaluationSummary",
    "evaluate_session",
    "evaluate_test_loaders",
    "filter_by_var_ratio",
    "neuron_metrics",
    "write_table_csv",
]

Row = dict[str, Any]


def neuron_metrics(prediction: np.ndarray, average: np.ndarray, by_trial: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-neuron scores of a prediction against trial-averaged and (optionally) single-trial responses.

    Inputs: ``prediction`` and ``average`` ``(T, N)``; ``by_trial`` ``(T, R, N)`` or None, all on the same frames.
    Returns arrays of shape ``(N,)``: ``poisson_loss_to_average``, ``corr_to_average``, ``mse_to_average``,
    ``feve``, ``jackknife``, ``var_ratio`` (NaN without at least 2 trials), and ``corr_<i>`` / ``mse_<i>`` per
    trial.
    """
    if prediction.shape != average.shape or prediction.ndim != 2:
        raise DataShapeError(
            f"prediction {prediction.shape} and trial-averaged responses {average.shape} must both be (time, neurons)."
        )
    if by_trial is not None and (by_trial.ndim != 3 or by_trial.shape[::2] != average.shape):
        raise DataShapeError(
            f"per-trial responses {by_trial.shape} must be (time, repeats, neurons) matching {average.shape}."
        )
    num_neurons = average.shape[1]
    nan = np.full(num_neurons, np.nan)
    metrics: dict[str, np.ndarray] = {
        "poisson_loss_to_average": poisson_loss_numpy(average, prediction, mean_axis=0),
        "corr_to_average": correlation_numpy(average, prediction, axis=0),
        "mse_to_average": MSE_numpy(average, prediction, axis=0),
        "feve": nan,
        "jackknife": nan,
        "var_ratio": nan,
    }
    if by_trial is not None and by_trial.shape[1] >= 2:
        metrics["feve"] = feve(by_trial, prediction)
        metrics["jackknife"] = oracle_corr_jackknife(by_trial)[0]
        metrics["var_ratio"] = explainable_vs_total_var(by_trial)[0]
    trials = by_trial if by_trial is not None else average[:, None, :]
    for trial in range(trials.shape[1]):
        metrics[f"corr_{trial}"] = correlation_numpy(trials[:, trial], prediction, axis=0)
        metrics[f"mse_{trial}"] = MSE_numpy(trials[:, trial], prediction, axis=0)
    return metrics


def _per_neuron_value(value: Any, neuron: int, num_neurons: int) -> Any:
    """Entry ``neuron`` of a length-N array/list, else the value itself (as a plain Python value)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray | list | tuple) and len(value) == num_neurons:
        value = value[neuron]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def evaluate_session(
    aligned: AlignedPrediction,
    average: np.ndarray,
    by_trial: np.ndarray | None,
    *,
    session: str,
    data_split: str,
    session_kwargs: Mapping[str, Any] | None = None,
    add_responses: bool = False,
) -> list[Row]:
    """Table rows for one session.

    Inputs: ``average`` ``(T, N)`` and ``by_trial`` ``(R, N, T)`` (the containers' layouts) over the whole test
    movie; only ``aligned.frames`` are scored.
    """
    frames = aligned.frames
    average_sel = np.asarray(average, dtype=np.float64)[frames]
    trials_sel = None if by_trial is None else np.asarray(by_trial, dtype=np.float64)[..., frames].transpose(2, 0, 1)
    prediction = aligned.predictions.astype(np.float64)
    metrics = neuron_metrics(prediction, average_sel, trials_sel)
    num_neurons = prediction.shape[1]
    rows = []
    for neuron in range(num_neurons):
        row: Row = {"session": session, "neuron_relative_idx": neuron, "data_split": data_split}
        row.update({name: float(values[neuron]) for name, values in metrics.items()})
        for key, value in (session_kwargs or {}).items():
            row.setdefault(key, _per_neuron_value(value, neuron, num_neurons))
        if add_responses:
            row["model_response"] = prediction[:, neuron].tolist()
        rows.append(row)
    return rows


def evaluate_test_loaders(
    model: torch.nn.Module,
    loaders: Mapping[str, DataLoader],
    *,
    data_split: str,
    sessions_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    add_responses: bool = False,
    progress: bool = True,
) -> tuple[list[Row], dict[str, int], dict[str, tuple[int, ...]]]:
    """Evaluate ``model`` on every session's loader of one split.

    Returns ``(rows, trials per session, chunk lags per session)``. The loaders must come from
    :func:`~openretina.data_io.base_dataloader.get_movie_dataloader` (test loaders carry the per-trial responses).
    """
    from tqdm.auto import tqdm

    rows: list[Row] = []
    trials: dict[str, int] = {}
    lags: dict[str, tuple[int, ...]] = {}
    model.eval()
    for session in tqdm(sorted(loaders), desc=f"evaluating {data_split}", disable=not progress):
        dataset: Any = loaders[session].dataset
        aligned = predict_test_loader(model, loaders[session], session)
        average = dataset[:].targets.numpy()
        by_trial = getattr(dataset, "test_responses_by_trial", None)
        by_trial_np = None if by_trial is None else np.asarray(by_trial)
        trials[session] = 1 if by_trial_np is None else by_trial_np.shape[0]
        lags[session] = aligned.lags
        rows += evaluate_session(
            aligned,
            average,
            by_trial_np,
            session=session,
            data_split=data_split,
            session_kwargs=(sessions_kwargs or {}).get(session),
            add_responses=add_responses,
        )
    return rows, trials, lags


def filter_by_var_ratio(rows: Sequence[Row], cutoff: float) -> tuple[list[Row], bool]:
    """Rows with ``var_ratio >= cutoff``; when no row has a var_ratio (single-trial data) all rows, unfiltered.

    Returns ``(rows, filtering_applied)``.
    """
    if all(math.isnan(row["var_ratio"]) for row in rows):
        return list(rows), False
    return [row for row in rows if row["var_ratio"] >= cutoff], True


def _nanmean(values: Sequence[float]) -> float:
    array = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(array)) if np.isfinite(array).any() else math.nan


@dataclass
class EvaluationSummary:
    """Aggregate scores over the (filtered) neurons of an evaluation, with the reference's field names.

    ``fev_mean`` is the mean explainable-variance *ratio* of the data (not a model score); it is also given as
    ``explainable_var_ratio_mean``. ``temporal_lag`` is -1 when chunks had different lags.
    """

    model_path: str
    model_tag: str | None
    exp_name: str | None
    species: str | None
    data_split: str
    temporal_lag: int
    n_test_repeats_min: int
    n_test_repeats_max: int
    n_test_repeats_avg: float
    n_neurons_total: int
    n_neurons_filtered: int
    var_ratio_cutoff: float
    filtering_applied: bool
    corr_to_avg_mean: float
    corr_by_trial_mean: float
    corr_by_trial_std: float
    mse_to_avg_mean: float
    mse_by_trial_mean: float
    mse_by_trial_std: float
    feve_mean: float
    fev_mean: float
    explainable_var_ratio_mean: float
    poisson_loss_mean: float
    jackknife_mean: float
    n_sessions: int = 0
    unique_train_frames: int = 0
    unique_val_frames: int = 0
    unique_train_val_frames: int = 0
    unique_test_frames: dict[str, int] = field(default_factory=dict)
    unique_train_transitions: int = 0
    unique_val_transitions: int = 0
    unique_test_transitions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dataframe(
        cls,
        df_filtered: Sequence[Row],
        *,
        model_path: str,
        model_tag: str | None,
        exp_name: str | None,
        species: str | None,
        data_split: str,
        temporal_lag: int,
        n_trials_per_session: Mapping[str, int],
        n_neurons_total: int,
        var_ratio_cutoff: float,
        filtering_applied: bool,
        dataset_stats: DatasetStatistics | None = None,
    ) -> EvaluationSummary:
        """Summarise table rows (a list of dicts: this package does not need pandas; the name is the reference's)."""
        rows = list(df_filtered)
        trial_counts = list(n_trials_per_session.values()) or [0]
        max_trials = max(trial_counts)
        per_trial = {
            metric: [_nanmean([row.get(f"{metric}_{i}", math.nan) for row in rows]) for i in range(max_trials)]
            for metric in ("corr", "mse")
        }

        def spread(values: list[float]) -> float:
            finite = np.asarray(values, dtype=np.float64)
            return float(np.nanstd(finite)) if np.isfinite(finite).any() else math.nan

        def column(name: str) -> float:
            return _nanmean([row[name] for row in rows])

        stats = asdict(dataset_stats) if dataset_stats is not None else {}
        var_ratio_mean = column("var_ratio")
        return cls(
            model_path=model_path,
            model_tag=model_tag,
            exp_name=exp_name,
            species=species,
            data_split=data_split,
            temporal_lag=temporal_lag,
            n_test_repeats_min=min(trial_counts),
            n_test_repeats_max=max_trials,
            n_test_repeats_avg=float(np.mean(trial_counts)),
            n_neurons_total=n_neurons_total,
            n_neurons_filtered=len(rows),
            var_ratio_cutoff=var_ratio_cutoff,
            filtering_applied=filtering_applied,
            corr_to_avg_mean=column("corr_to_average"),
            corr_by_trial_mean=_nanmean(per_trial["corr"]),
            corr_by_trial_std=spread(per_trial["corr"]),
            mse_to_avg_mean=column("mse_to_average"),
            mse_by_trial_mean=_nanmean(per_trial["mse"]),
            mse_by_trial_std=spread(per_trial["mse"]),
            feve_mean=column("feve"),
            fev_mean=var_ratio_mean,
            explainable_var_ratio_mean=var_ratio_mean,
            poisson_loss_mean=column("poisson_loss_to_average"),
            jackknife_mean=column("jackknife"),
            **stats,
        )

    def to_dict(self) -> dict[str, Any]:
        """All fields as a dict (test-stimulus statistics stay nested)."""
        return asdict(self)

    def to_flat_dict(self) -> dict[str, Any]:
        """All fields, with the per-test-stimulus dicts flattened to ``unique_test_frames_<name>`` etc."""
        flat = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                flat.update({f"{key}_{name}": count for name, count in value.items()})
            else:
                flat[key] = value
        return flat

    def save_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as indented JSON (NaN written as ``NaN``, which Python's json reads back)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    def report(self) -> str:
        """The 80-column text report that :meth:`print_report` prints."""
        rule = "=" * 80
        lines = [rule, "EVALUATION SUMMARY".center(80), rule]
        lines += [f"Model: {self.model_path}"] + ([f"Tag: {self.model_tag}"] if self.model_tag else [])
        lines += [f"Experiment: {self.exp_name}  Species: {self.species}  Split: {self.data_split}"]
        lines += [f"Temporal lag: {self.temporal_lag} frames  Test repeats: {self.n_test_repeats_min}-"]
        lines[-1] += f"{self.n_test_repeats_max} (mean {self.n_test_repeats_avg:.1f})"
        if self.n_sessions:
            lines += ["-" * 80, f"Sessions: {self.n_sessions}"]
            lines += [f"Unique frames: train {self.unique_train_frames}, validation {self.unique_val_frames}"]
        filtered = f"var_ratio >= {self.var_ratio_cutoff}" if self.filtering_applied else "no filtering"
        lines += ["-" * 80, f"Neurons: {self.n_neurons_filtered} of {self.n_neurons_total} ({filtered})"]
        lines += ["Trial-averaged responses:"]
        for label, value in (
            ("Correlation", self.corr_to_avg_mean),
            ("MSE", self.mse_to_avg_mean),
            ("FEVe", self.feve_mean),
            ("FEV (explainable variance ratio)", self.explainable_var_ratio_mean),
            ("Poisson loss", self.poisson_loss_mean),
            ("Jackknife oracle correlation", self.jackknife_mean),
        ):
            lines.append(f"  {label:<34} {value:.3f}")
        lines += ["Single trials (mean +- std over trials):"]
        lines.append(f"  {'Correlation':<34} {self.corr_by_trial_mean:.3f} +- {self.corr_by_trial_std:.3f}")
        lines.append(f"  {'MSE':<34} {self.mse_by_trial_mean:.3f} +- {self.mse_by_trial_std:.3f}")
        lines.append(rule)
        return "\n".join(lines)

    def print_report(self) -> None:
        """Print :meth:`report`."""
        print(self.report())


def write_table_csv(rows: Sequence[Row], path: str | Path) -> None:
    """Write the per-neuron table as CSV; columns are the union of all rows' keys in first-seen order."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns), restval="")
        writer.writeheader()
        writer.writerows(rows)
