"""Shape arithmetic for cores: output sizes of stride-1 convolutions and pools, without running anything."""

from __future__ import annotations

from collections.abc import Callable, Sequence

ConvPadding = int | str | tuple[int, ...]

AXES = ("time", "height", "width")


def normalise_padding(padding: int | str | Sequence[int]) -> ConvPadding:
    """Turn list-like paddings (e.g. an OmegaConf ``ListConfig`` ``[0, 2, 2]``) into a plain tuple of ints."""
    if isinstance(padding, (int, str)):
        return padding
    values = tuple(int(p) for p in padding)
    if len(values) != 3:
        raise ValueError(f"padding must be an int, a string or 3 values (time, height, width), got {padding!r}.")
    return values


def padded_conv_length(length: int, kernel: int, padding: ConvPadding, axis: int) -> int:
    """Length along ``axis`` (0 time, 1 height, 2 width) after a stride-1 convolution with ``kernel`` taps.

    ``padding`` follows ``torch.nn.functional.conv3d``: an int for every axis, one int per axis, or
    ``"same"``/``"valid"``.
    """
    if isinstance(padding, str):
        if padding == "same":
            return length
        if padding == "valid":
            return length - kernel + 1
        raise ValueError(f"unknown padding string {padding!r}; use 'same' or 'valid'.")
    pad = padding if isinstance(padding, int) else padding[axis]
    return length + 2 * pad - kernel + 1


def smallest_sufficient_input(output_length: Callable[[int], int], limit: int = 1_000_000) -> int:
    """Smallest input length for which the (non-decreasing) ``output_length`` is at least 1."""
    high = 1
    while output_length(high) < 1:
        high *= 2
        if high > limit:
            raise ValueError(f"no input length up to {limit} gives an output frame; check the kernel sizes.")
    low = high // 2 + 1 if high > 1 else 1
    while low < high:
        middle = (low + high) // 2
        if output_length(middle) >= 1:
            high = middle
        else:
            low = middle + 1
    return high
