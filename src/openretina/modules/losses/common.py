"""Shared plumbing of the 3-D losses: target alignment, dtype and reduction handling.

All losses compare ``output`` (batch, time_out, neurons) with ``target`` (batch, time_target, neurons) and drop
the first ``lag = time_target - time_out`` target frames, so output frame ``t`` is compared with target frame
``t + lag`` (the response at the end of the stimulus window that produced it).
"""

from __future__ import annotations

from typing import Literal

import torch

from openretina.errors import DataShapeError

__all__ = ["LossReduction", "align_target", "group_weights", "reduce_loss", "resolve_reduction", "to_loss_dtype"]

LossReduction = Literal["sum", "mean"]


def align_target(output: torch.Tensor, target: torch.Tensor, loss_name: str) -> torch.Tensor:
    """Target frames that correspond to the output frames.

    Input: output (batch, time_out, neurons), target (batch, time_target, neurons) with time_target ≥ time_out.
    Output: ``target[:, time_target - time_out:, :]`` (batch, time_out, neurons).
    """
    if output.dim() != 3 or target.dim() != 3:
        raise DataShapeError(
            f"{loss_name}: expected output and target of shape (batch, time, neurons), got output "
            f"{tuple(output.shape)} and target {tuple(target.shape)}."
        )
    if output.shape[0] != target.shape[0] or output.shape[2] != target.shape[2]:
        raise DataShapeError(
            f"{loss_name}: output {tuple(output.shape)} and target {tuple(target.shape)} must agree in batch size "
            "and number of neurons. Check that the model was called with the target's session (data_key)."
        )
    lag = target.shape[1] - output.shape[1]
    if lag < 0:
        raise DataShapeError(
            f"{loss_name}: output has {output.shape[1]} time bins but target only {target.shape[1]}; the target "
            "must be at least as long as the output (its first frames are dropped to align them)."
        )
    return target[:, lag:, :]


def to_loss_dtype(x: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors are upcast to float32: log terms and sums are not safe in 16 bits."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def resolve_reduction(avg: bool, reduction: str | None, loss_name: str) -> LossReduction:
    """Combine the reference flag ``avg`` with the explicit ``reduction`` argument (which wins if given)."""
    if reduction is None:
        return "mean" if avg else "sum"
    if reduction not in ("sum", "mean"):
        raise ValueError(f"{loss_name}: reduction must be 'sum' or 'mean', got {reduction!r}.")
    if avg and reduction == "sum":
        raise ValueError(f"{loss_name}: avg=True contradicts reduction='sum'; pass only one of them.")
    return "mean" if reduction == "mean" else "sum"


def reduce_loss(values: torch.Tensor, reduction: LossReduction, per_neuron: bool) -> torch.Tensor:
    """Sum or mean over all elements, or (``per_neuron``) the mean over everything but the neuron axis.

    Input: (..., neurons). Output: scalar, or (neurons,) when ``per_neuron``.
    """
    if per_neuron:
        return values.reshape(-1, values.shape[-1]).mean(dim=0)
    return values.mean() if reduction == "mean" else values.sum()


def group_weights(
    group_assignment: torch.Tensor, group_counts: torch.Tensor, loss_name: str, output: torch.Tensor
) -> torch.Tensor:
    """Per-sample weights that balance cell-type groups: ``mean(group_counts) / group_counts[group - 1]``.

    Input: group_assignment (batch,) 1-based group ids, group_counts (groups,), the loss's ``output`` (batch, ...)
    whose batch size, device and dtype the weights get. Output: (batch, 1, 1), ready to scale (batch, time, neurons).
    """
    assignment = torch.as_tensor(group_assignment).long().reshape(-1)
    if assignment.numel() != output.shape[0]:
        raise DataShapeError(
            f"{loss_name}: group_assignment has {assignment.numel()} entries, expected one per batch sample "
            f"({output.shape[0]})."
        )
    counts = torch.as_tensor(group_counts, dtype=torch.float64).reshape(-1)
    if assignment.numel() and (assignment.min() < 1 or assignment.max() > counts.numel()):
        raise DataShapeError(
            f"{loss_name}: group_assignment must hold 1-based group ids in [1, {counts.numel()}] "
            f"(len(group_counts)), got values in [{int(assignment.min())}, {int(assignment.max())}]."
        )
    weights = counts.mean() / counts[assignment - 1]
    return weights.to(output.device, output.dtype)[:, None, None]
