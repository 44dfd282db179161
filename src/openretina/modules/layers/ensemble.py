"""Averaging several models of the same inputs and outputs into one."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from openretina.errors import DataShapeError

__all__ = ["EnsembleModel"]


class EnsembleModel(nn.Module):
    """Mean prediction of several models (e.g. the same architecture trained with different seeds).

    Every member is called with the same arguments; their outputs must have identical shapes, which is
    also the output shape (e.g. (batch, time, neurons) for core-readout models). State_dict keys are
    ``members.<i>.<member key>``.
    """

    def __init__(self, *members: nn.Module) -> None:
        super().__init__()
        if not members:
            raise ValueError("EnsembleModel: give at least one member model.")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Return the element-wise mean of ``member(x, *args, **kwargs)`` over all members."""
        outputs = [member(x, *args, **kwargs) for member in self.members]
        shapes = {tuple(out.shape) for out in outputs}
        if len(shapes) != 1:
            raise DataShapeError(
                f"EnsembleModel: members returned outputs of different shapes {sorted(shapes)}; all members "
                "must predict the same neurons and time steps."
            )
        return torch.stack(outputs, dim=0).mean(dim=0)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} of {len(self.members)} members:"]
        lines += [f"  [{i}] {member!r}".replace("\n", "\n  ") for i, member in enumerate(self.members)]
        return "\n".join(lines)
