"""Convolutional gated recurrent unit (GRU) applied frame by frame to a feature movie."""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError

__all__ = ["ConvGRUCell", "GRU_Module"]


def _same_padding(kernel_size: int) -> tuple[int, int, int, int]:
    """``F.pad`` widths (left, right, top, bottom) that keep the size under a stride-1 ``kernel_size`` conv."""
    before, after = (kernel_size - 1) // 2, kernel_size // 2
    return (before, after, before, after)


def _bias_of(gate: nn.Conv2d) -> torch.Tensor:
    # Every gate is built with bias=True; the cast only informs the type checker.
    return cast(torch.Tensor, gate.bias)


class ConvGRUCell(nn.Module):
    """One step of a convolutional GRU.

    Gates (all ``Conv2d`` with bias; state_dict keys ``<gate>.weight``/``<gate>.bias``):
    ``reset_gate_input``, ``update_gate_input``, ``out_gate_input`` (input → hidden, kernel ``input_kern``) and
    ``reset_gate_hidden``, ``update_gate_hidden``, ``out_gate_hidden`` (hidden → hidden, kernel ``rec_kern``).

    Update rule: ``z = σ(U_in x + U_h h)``, ``r = σ(R_in x + R_h h)``, ``ĥ = tanh(O_in x + O_h (h·r))``,
    ``h' = (1 - z)·h + z·ĥ``.

    Unlike the reference, which padded every gate by ``k // 2`` and therefore broke the recurrence for even
    kernels (the hidden state grew by one pixel per step), the gates use size-preserving padding
    (``(k - 1) // 2`` before, ``k // 2`` after, as ``padding="same"`` would), so any kernel size works. The
    padded input is shared by the three input gates. With ``pad_input=False`` the input gates are unpadded
    and the hidden state is ``input_kern - 1`` pixels smaller than the input.

    Input: ``input_`` (batch, input_channels, height, width) and ``prev_state`` (batch, rec_channels,
    height', width') or ``None`` (zeros). Output: new hidden state (batch, rec_channels, height', width').
    """

    def __init__(
        self,
        input_channels: int,
        rec_channels: int,
        input_kern: int,
        rec_kern: int,
        groups: int = 1,
        gamma_rec: float = 0.0,
        pad_input: bool = True,
        **kwargs: Any,  # accepted for config compatibility with the reference; unused
    ) -> None:
        super().__init__()
        self.input_channels = input_channels
        self.rec_channels = rec_channels
        self.input_kern = input_kern
        self.rec_kern = rec_kern
        self.gamma_rec = gamma_rec
        self.pad_input = pad_input
        self._shrinkage = 0 if pad_input else input_kern - 1

        self._input_pad = _same_padding(input_kern) if pad_input else (0, 0, 0, 0)
        self._hidden_pad = _same_padding(rec_kern)

        def input_gate() -> nn.Conv2d:
            return nn.Conv2d(input_channels, rec_channels, input_kern, groups=groups)

        def hidden_gate() -> nn.Conv2d:
            return nn.Conv2d(rec_channels, rec_channels, rec_kern, groups=groups)

        self.reset_gate_input = input_gate()
        self.reset_gate_hidden = hidden_gate()
        self.update_gate_input = input_gate()
        self.update_gate_hidden = hidden_gate()
        self.out_gate_input = input_gate()
        self.out_gate_hidden = hidden_gate()

        for gate in self.gates():
            nn.init.xavier_normal_(gate.weight)
            nn.init.zeros_(_bias_of(gate))

    def gates(self) -> tuple[nn.Conv2d, ...]:
        """The six gate convolutions (input gates first)."""
        return (
            self.reset_gate_input,
            self.update_gate_input,
            self.out_gate_input,
            self.reset_gate_hidden,
            self.update_gate_hidden,
            self.out_gate_hidden,
        )

    def initial_state(self, input_: torch.Tensor) -> torch.Tensor:
        """Zero hidden state matching a frame ``input_`` (B, C, H, W) in batch size, device and dtype."""
        batch, _, height, width = input_.shape
        return input_.new_zeros(batch, self.rec_channels, height - self._shrinkage, width - self._shrinkage)

    def forward(self, input_: torch.Tensor, prev_state: torch.Tensor | None = None) -> torch.Tensor:
        """One recurrent step; see the class docstring for shapes."""
        if input_.dim() != 4 or input_.shape[1] != self.input_channels:
            raise DataShapeError(
                f"ConvGRUCell: expected a frame (batch, {self.input_channels}, height, width), "
                f"got shape {tuple(input_.shape)}."
            )
        hidden = self.initial_state(input_) if prev_state is None else prev_state
        x = F.pad(input_, self._input_pad)
        h = F.pad(hidden, self._hidden_pad)
        update = torch.sigmoid(self.update_gate_input(x) + self.update_gate_hidden(h))
        reset = torch.sigmoid(self.reset_gate_input(x) + self.reset_gate_hidden(h))
        candidate = torch.tanh(self.out_gate_input(x) + self.out_gate_hidden(F.pad(hidden * reset, self._hidden_pad)))
        return hidden * (1 - update) + candidate * update

    def bias_l1(self) -> torch.Tensor:
        """Mean absolute bias of the three hidden-to-hidden gates, averaged over the gates.

        The reference used the update gate's *weight* instead of its bias here (a typo); this uses the bias.
        """
        hidden_gates = (self.reset_gate_hidden, self.update_gate_hidden, self.out_gate_hidden)
        return torch.stack([_bias_of(gate).abs().mean() for gate in hidden_gates]).mean()

    def regularizer(self) -> torch.Tensor:
        """``gamma_rec · bias_l1()``."""
        return self.gamma_rec * self.bias_l1()


class GRU_Module(nn.Module):
    """Runs a :class:`ConvGRUCell` over the time axis of a feature movie.

    Input: ``(x, data_key)`` or ``x`` alone, with ``x`` (batch, channels, time, height, width) or unbatched
    (channels, time, height, width); ``data_key`` is ignored (accepted so the module can sit in a core's
    ``features`` Sequential). Output: hidden states (batch, rec_channels, time, height', width') (unbatched
    input gives an unbatched output). State_dict keys: ``gru.<gate>.weight``/``gru.<gate>.bias``.
    """

    def __init__(
        self,
        input_channels: int,
        rec_channels: int,
        input_kern: int,
        rec_kern: int,
        groups: int = 1,
        gamma_rec: float = 0.0,
        pad_input: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.gru = ConvGRUCell(
            input_channels, rec_channels, input_kern, rec_kern, groups=groups, gamma_rec=gamma_rec, pad_input=pad_input
        )

    def forward(self, input_: torch.Tensor | tuple[torch.Tensor, str | None]) -> torch.Tensor:
        """Unroll the GRU over dim 2 (time) of ``x``; see the class docstring for shapes."""
        x = input_[0] if isinstance(input_, tuple) else input_
        if x.dim() not in (4, 5):
            raise DataShapeError(
                f"GRU_Module: expected x of shape (batch, channels, time, height, width) or "
                f"(channels, time, height, width), got {tuple(x.shape)}."
            )
        unbatched = x.dim() == 4
        if unbatched:
            x = x.unsqueeze(0)
        hidden: torch.Tensor | None = None
        states = []
        for frame in x.unbind(dim=2):
            hidden = self.gru(frame, hidden)
            states.append(hidden)
        out = torch.stack(states, dim=2)
        return out.squeeze(0) if unbatched else out

    def regularizer(self) -> torch.Tensor:
        """The cell's recurrent-bias penalty."""
        return self.gru.regularizer()
