"""Pearson correlation between predicted and observed responses, and the losses built on it.

:func:`pearson_correlation` is the one correlation implementation of the package: the losses here, the training
metrics and the evaluation tables all use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from openretina.errors import DataShapeError
from openretina.modules.losses.common import align_target, group_weights, reduce_loss, resolve_reduction, to_loss_dtype

__all__ = [
    "CelltypeCorrelationLoss3d",
    "CorrelationLoss3d",
    "L1CorrelationLoss3d",
    "ScaledCorrelationLoss3d",
    "pearson_correlation",
]

_L1_PRE_CALCIUM_WEIGHT = 0.0002


def pearson_correlation(
    prediction: torch.Tensor,
    target: torch.Tensor,
    dim: int | Sequence[int] = 1,
    eps: float = 1e-16,
    keepdim: bool = False,
) -> torch.Tensor:
    """Pearson correlation along ``dim``: ``E[δŷ·δy] / sqrt((E[δŷ²] + eps)(E[δy²] + eps))``.

    ``δ`` are deviations from the mean along ``dim`` and ``E`` the mean along ``dim``. ``eps`` makes a constant
    trace give 0 instead of NaN. Half-precision inputs are evaluated in float32.

    Input: two tensors of equal shape, e.g. (batch, time, neurons) with ``dim=1`` (correlation over time).
    Output: the input shape without ``dim`` (kept as size 1 with ``keepdim``).
    """
    if prediction.shape != target.shape:
        raise DataShapeError(
            f"pearson_correlation: prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must have "
            "the same shape."
        )
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    prediction = to_loss_dtype(prediction)
    target = to_loss_dtype(target)
    delta_prediction = prediction - prediction.mean(dim=dims, keepdim=True)
    delta_target = target - target.mean(dim=dims, keepdim=True)
    covariance = (delta_prediction * delta_target).mean(dim=dims, keepdim=keepdim)
    variance_prediction = delta_prediction.pow(2).mean(dim=dims, keepdim=keepdim)
    variance_target = delta_target.pow(2).mean(dim=dims, keepdim=keepdim)
    return covariance / torch.sqrt((variance_prediction + eps) * (variance_target + eps))


class CorrelationLoss3d(nn.Module):
    """Negative (by default) Pearson correlation over time, per sample and neuron.

    Input: output (batch, time_out, neurons), target (batch, time_target, neurons), time_target ≥ time_out; the
    first ``time_target - time_out`` target frames are dropped.
    Output: scalar — sum (default, reference ``avg=False``) or mean (``avg=True`` / ``reduction="mean"``) of the
    (batch, neurons) correlations — or (neurons,) with ``per_neuron=True``.

    With ``negate=False, avg=True`` this is the mean correlation used as evaluation metric (higher is better).
    After each call, the batch-averaged, non-negated per-neuron correlations are available in the non-persistent
    buffer ``_per_neuron_correlations`` (neurons,).
    """

    _per_neuron_correlations: torch.Tensor | None

    def __init__(
        self,
        bias: float = 1e-16,
        per_neuron: bool = False,
        avg: bool = False,
        negate: bool = True,
        reduction: str | None = None,
    ) -> None:
        super().__init__()
        self.bias = bias
        self.per_neuron = per_neuron
        self.negate = negate
        self.reduction = resolve_reduction(avg, reduction, type(self).__name__)
        self.avg = self.reduction == "mean"
        self.register_buffer("_per_neuron_correlations", None, persistent=False)

    def correlations(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Correlation over time of each sample and neuron. Output: (batch, 1, neurons), not negated."""
        aligned = align_target(output, target, type(self).__name__)
        return pearson_correlation(output, aligned, dim=1, eps=self.bias, keepdim=True)

    def _finish(self, correlations: torch.Tensor) -> torch.Tensor:
        signed = -correlations if self.negate else correlations
        return reduce_loss(signed, self.reduction, self.per_neuron)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Reduced (negated) correlation of ``output`` with the aligned ``target``."""
        correlations = self.correlations(output, target)
        self._per_neuron_correlations = correlations.detach().reshape(-1, correlations.shape[-1]).mean(dim=0)
        return self._finish(correlations)

    def __str__(self) -> str:
        return f"{type(self).__name__}(bias={self.bias} per_neuron={self.per_neuron} avg={self.avg})"


class CelltypeCorrelationLoss3d(CorrelationLoss3d):
    """Correlation loss with per-sample weights that balance cell-type groups.

    ``forward(output, target, group_assignment, group_counts)``; the weight of sample ``b`` is
    ``mean(group_counts) / group_counts[group_assignment[b] - 1]``. Unlike :class:`CorrelationLoss3d` the stored
    ``_per_neuron_correlations`` are the weighted and (with ``negate``) negated values, as in the reference.
    """

    def forward(  # type: ignore[override]
        self, output: torch.Tensor, target: torch.Tensor, group_assignment: torch.Tensor, group_counts: torch.Tensor
    ) -> torch.Tensor:
        """Weighted, reduced (negated) correlation."""
        weights = group_weights(group_assignment, group_counts, type(self).__name__, output)
        weighted = self.correlations(output, target) * weights
        signed = -weighted if self.negate else weighted
        self._per_neuron_correlations = signed.detach().reshape(-1, signed.shape[-1]).mean(dim=0)
        return reduce_loss(signed, self.reduction, self.per_neuron)


class L1CorrelationLoss3d(CorrelationLoss3d):
    """Correlation loss plus ``0.0002 · |pre_ca|`` on the model's pre-calcium activity.

    ``output`` is a pair ``(prediction, pre_ca)``: prediction (batch, time_out, neurons) is correlated with the
    target; pre_ca (..., neurons) is L1-penalised with the same reduction (per-neuron: mean over all other axes).
    The group arguments of the older signature are accepted and ignored.
    """

    def forward(  # type: ignore[override]
        self,
        output: tuple[torch.Tensor, torch.Tensor],
        target: torch.Tensor,
        group_assignment: torch.Tensor | None = None,
        group_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Correlation term plus the L1 penalty on ``pre_ca``."""
        prediction, pre_calcium = output
        correlation_term = super().forward(prediction, target)
        activity = reduce_loss(to_loss_dtype(pre_calcium).abs(), self.reduction, self.per_neuron)
        return correlation_term + _L1_PRE_CALCIUM_WEIGHT * activity


class ScaledCorrelationLoss3d(CorrelationLoss3d):
    """Correlation averaged over consecutive windows of ``scale`` frames (the last window may be shorter).

    Measures how well fast fluctuations are predicted, ignoring slow drifts longer than a window.
    Input/Output: as :class:`CorrelationLoss3d`. ``scale`` must be a positive whole number; the reference's float
    default ``30.0`` (which crashed) is accepted as 30. The group arguments of the older signature are ignored.
    """

    def __init__(
        self,
        bias: float = 1e-16,
        scale: int | float = 30,
        per_neuron: bool = False,
        avg: bool = False,
        negate: bool = True,
        reduction: str | None = None,
    ) -> None:
        super().__init__(bias=bias, per_neuron=per_neuron, avg=avg, negate=negate, reduction=reduction)
        if float(scale) != int(scale) or int(scale) < 1:
            raise ValueError(f"ScaledCorrelationLoss3d: scale must be a positive whole number of frames, got {scale}.")
        self.scale = int(scale)

    def correlations(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Window-averaged correlation of each sample and neuron. Output: (batch, 1, neurons), not negated."""
        aligned = align_target(output, target, type(self).__name__)
        per_window = [
            pearson_correlation(
                output[:, start : start + self.scale],
                aligned[:, start : start + self.scale],
                1,
                self.bias,
                keepdim=True,
            )
            for start in range(0, output.shape[1], self.scale)
        ]
        return torch.stack(per_window).mean(dim=0)

    def forward(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        group_assignment: torch.Tensor | None = None,
        group_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Reduced (negated) window-averaged correlation."""
        return super().forward(output, target)
