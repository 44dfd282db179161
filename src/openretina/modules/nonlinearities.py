"""Output nonlinearities with learnable parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ParametrizedELU", "ParametrizedSoftplus"]


class ParametrizedELU(nn.Module):
    """ELU with learnable slope and shape: ``c·x`` for ``x > 0``, ``a·(exp(x / b) - 1)`` otherwise.

    Input/Output: any shape. Parameters ``a``, ``b``, ``c`` are scalars. Unlike the reference (which
    defaulted to ``device="cuda"`` and failed on CPU-only machines), ``device=None`` creates them on the
    default device; move the module with ``.to()`` as usual.
    """

    def __init__(
        self, a: float = 1.0, b: float = 1.0, c: float = 1.0, device: str | torch.device | None = None
    ) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a), device=device))
        self.b = nn.Parameter(torch.tensor(float(b), device=device))
        self.c = nn.Parameter(torch.tensor(float(c), device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the nonlinearity element-wise."""
        # Clamp the exponent's argument on the positive side, where the branch is discarded anyway, so that
        # large inputs cannot create inf (and NaN gradients) in the unused branch.
        negative_branch = self.a * (torch.exp(torch.clamp(x, max=0.0) / self.b) - 1)
        return torch.where(x > 0, self.c * x, negative_branch)


class ParametrizedSoftplus(nn.Module):
    """Scaled, shifted softplus: ``w · softplus(a·x + b)``.

    Input/Output: any shape. ``b`` and ``w`` are learnable scalars; ``a`` is learnable only with
    ``learn_a=True`` (otherwise a fixed, non-persistent buffer that still follows ``.to()``; state_dict keys
    are ``b``, ``w`` and, if learnt, ``a``).
    """

    a: torch.Tensor

    def __init__(self, a: float = 1.0, b: float = 0.0, w: float = 1.0, learn_a: bool = False) -> None:
        super().__init__()
        if learn_a:
            self.a = nn.Parameter(torch.tensor(float(a)))
        else:
            self.register_buffer("a", torch.tensor(float(a)), persistent=False)
        self.b = nn.Parameter(torch.tensor(float(b)))
        self.w = nn.Parameter(torch.tensor(float(w)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the nonlinearity element-wise."""
        return self.w * F.softplus(self.a * x + self.b)
