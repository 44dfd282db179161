"""Poisson negative log-likelihood losses (without the constant log-factorial term)."""

from __future__ import annotations

import torch
from torch import nn

from openretina.modules.losses.common import align_target, group_weights, reduce_loss, resolve_reduction, to_loss_dtype

__all__ = ["CelltypePoissonLoss3d", "L1PoissonLoss3d", "PoissonLoss3d", "StandardPoissonLoss3d"]


class PoissonLoss3d(nn.Module):
    """Poisson loss ``ŷ - y·log(ŷ + bias)`` between predicted rates and observed responses.

    Input: output (batch, time_out, neurons) non-negative rates, target (batch, time_target, neurons) with
    time_target ≥ time_out; the first ``time_target - time_out`` target frames are dropped.
    Output: scalar, or (neurons,) with ``per_neuron=True`` (mean over batch and time).

    Reduction: ``reduction="sum"`` (default, as the reference with ``avg=False``) sums over batch, time and neurons,
    so its scale grows with all three; ``reduction="mean"`` (same as ``avg=True``) averages and is invariant to
    them. See ``docs/losses.md`` for converting regularisation weights. ``bias`` keeps the log finite for zero
    predictions; half-precision inputs are evaluated in float32.
    """

    def __init__(
        self, bias: float = 1e-16, per_neuron: bool = False, avg: bool = False, reduction: str | None = None
    ) -> None:
        super().__init__()
        self.bias = bias
        self.per_neuron = per_neuron
        self.reduction = resolve_reduction(avg, reduction, type(self).__name__)
        self.avg = self.reduction == "mean"

    def elementwise(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Unreduced loss. Output: (batch, time_out, neurons)."""
        aligned = to_loss_dtype(align_target(output, target, type(self).__name__))
        prediction = to_loss_dtype(output)
        return prediction - aligned * torch.log(prediction + self.bias)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Reduced Poisson loss of ``output`` (batch, time_out, neurons) against ``target``."""
        return reduce_loss(self.elementwise(output, target), self.reduction, self.per_neuron)

    def __str__(self) -> str:
        return f"{type(self).__name__}(bias={self.bias} per_neuron={self.per_neuron} avg={self.avg})"


class StandardPoissonLoss3d(PoissonLoss3d):
    """:class:`PoissonLoss3d` with the cell-type call signature; the group arguments are ignored."""

    def forward(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        group_assignment: torch.Tensor | None = None,
        group_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Same as :meth:`PoissonLoss3d.forward`."""
        return super().forward(output, target)


class L1PoissonLoss3d(PoissonLoss3d):
    """Poisson loss plus an L1 activity penalty ``gamma_l1 · |ŷ|`` (same reduction as the Poisson term).

    Input/Output: as :class:`PoissonLoss3d`.
    """

    def __init__(
        self,
        bias: float = 1e-16,
        per_neuron: bool = False,
        avg: bool = False,
        gamma_l1: float = 0.001,
        reduction: str | None = None,
    ) -> None:
        super().__init__(bias=bias, per_neuron=per_neuron, avg=avg, reduction=reduction)
        self.gamma_l1 = gamma_l1

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Poisson term plus ``gamma_l1`` times the reduced absolute prediction."""
        poisson = super().forward(output, target)
        activity = reduce_loss(to_loss_dtype(output).abs(), self.reduction, self.per_neuron)
        return poisson + self.gamma_l1 * activity


class CelltypePoissonLoss3d(PoissonLoss3d):
    """Poisson loss with per-sample weights that balance cell-type groups.

    ``forward(output, target, group_assignment, group_counts)``: sample ``b`` of group ``g = group_assignment[b]``
    (1-based) is weighted by ``mean(group_counts) / group_counts[g - 1]``.
    Input: output (batch, time_out, neurons), target (batch, time_target, neurons), group_assignment (batch,),
    group_counts (groups,). Output: as :class:`PoissonLoss3d`.
    """

    def forward(  # type: ignore[override]
        self, output: torch.Tensor, target: torch.Tensor, group_assignment: torch.Tensor, group_counts: torch.Tensor
    ) -> torch.Tensor:
        """Weighted, reduced Poisson loss."""
        weights = group_weights(group_assignment, group_counts, type(self).__name__, output)
        weighted = self.elementwise(output, target) * weights
        return reduce_loss(weighted, self.reduction, self.per_neuron)
