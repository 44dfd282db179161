"""Building blocks of synthetic retinal ganglion cells: receptive fields, temporal filters, nonlinearities and types.

Conventions: spatial maps are ``(H, W)`` with pixel ``(row, col)`` at integer coordinates; receptive-field centres
are ``(row, col)`` floats. Temporal filters are ``(L,)`` with index 0 = lag 0 (the current frame), so a response
at frame ``t`` depends on frames ``t, t-1, ..., t-L+1`` only (causal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from openretina.errors import OpenRetinaError

__all__ = [
    "NONLINEARITIES",
    "CellType",
    "SyntheticConfigError",
    "apply_nonlinearity",
    "chromatic_weights",
    "default_cell_types",
    "difference_of_gaussians",
    "gaussian_spot",
    "mosaic_centres",
    "subunit_centres",
    "temporal_filter",
]

Nonlinearity = Literal["softplus", "exponential", "threshold_power"]
NONLINEARITIES: tuple[str, ...] = ("softplus", "exponential", "threshold_power")


class SyntheticConfigError(OpenRetinaError, ValueError):
    """A synthetic-retina parameter is out of range or inconsistent with the others."""


@dataclass(frozen=True)
class CellType:
    """One functional ganglion-cell type; cells of a type share these parameters up to small per-cell jitter.

    Attributes:
        name: human-readable label, e.g. "ON transient".
        polarity: "on" cells are excited by light increments in their centre, "off" cells by decrements.
        kinetics: "transient" cells have a strongly biphasic (band-pass) temporal filter, "sustained" cells a
            mostly monophasic (low-pass) one.
        preferred_channel: colour channel with full weight (others get ``off_channel_weight``); ``None`` for an
            achromatic cell, negative values count from the last channel (-1 = last).
        rectified_subunits: if True the centre pools half-wave-rectified subunits (nonlinear spatial
            integration, like alpha/Y-like cells) instead of summing the stimulus linearly.
        centre_sigma_px: standard deviation of the receptive-field centre Gaussian, in pixels.
        surround_strength: integral of the surround relative to the centre (0 = no surround).
        nonlinearity: static output nonlinearity, one of ``NONLINEARITIES``.
        mean_rate_hz: target mean firing rate during the naturalistic movie.
        max_rate_hz: saturation rate (refractoriness caps real ganglion cells at a few hundred Hz).
        abundance: relative number of cells of this type.
    """

    name: str
    polarity: Literal["on", "off"]
    kinetics: Literal["transient", "sustained"]
    preferred_channel: int | None = None
    rectified_subunits: bool = False
    centre_sigma_px: float = 1.3
    surround_strength: float = 0.5
    nonlinearity: Nonlinearity = "softplus"
    mean_rate_hz: float = 12.0
    max_rate_hz: float = 250.0
    abundance: float = 1.0

    def validate(self, num_channels: int) -> None:
        """Raise :class:`SyntheticConfigError` if a field is out of range for ``num_channels`` channels."""
        problems = []
        if self.polarity not in ("on", "off"):
            problems.append(f"polarity must be 'on' or 'off', got {self.polarity!r}")
        if self.kinetics not in ("transient", "sustained"):
            problems.append(f"kinetics must be 'transient' or 'sustained', got {self.kinetics!r}")
        if self.preferred_channel is not None and not -num_channels <= self.preferred_channel < num_channels:
            problems.append(f"preferred_channel {self.preferred_channel} does not exist with {num_channels} channels")
        if self.nonlinearity not in NONLINEARITIES:
            problems.append(f"nonlinearity must be one of {NONLINEARITIES}, got {self.nonlinearity!r}")
        for field_name in ("centre_sigma_px", "mean_rate_hz", "max_rate_hz", "abundance"):
            if not getattr(self, field_name) > 0:
                problems.append(f"{field_name} must be > 0, got {getattr(self, field_name)}")
        if not 0 <= self.surround_strength < 1:
            problems.append(f"surround_strength must lie in [0, 1), got {self.surround_strength}")
        if self.max_rate_hz <= self.mean_rate_hz:
            problems.append(f"max_rate_hz {self.max_rate_hz} must exceed mean_rate_hz {self.mean_rate_hz}")
        if problems:
            raise SyntheticConfigError(f"cell type {self.name!r}: " + "; ".join(problems) + ".")


def default_cell_types(channel_names: Sequence[str]) -> tuple[CellType, ...]:
    """Seven types: ON/OFF × sustained/transient, two colour-preferring types and one subunit (nonlinear) type.

    The colour-preferring types prefer the last channel (ON) and the first channel (OFF), named after
    ``channel_names`` (mouse-like: UV-preferring ON cells, green-preferring OFF cells for ``("green", "uv")``).
    """
    first, last = channel_names[0], channel_names[-1]
    return (
        CellType("OFF sustained", "off", "sustained", centre_sigma_px=1.2, nonlinearity="softplus", mean_rate_hz=14),
        CellType("OFF transient", "off", "transient", centre_sigma_px=1.5, nonlinearity="threshold_power"),
        CellType("ON sustained", "on", "sustained", centre_sigma_px=1.2, nonlinearity="softplus", mean_rate_hz=14),
        CellType("ON transient", "on", "transient", centre_sigma_px=1.5, nonlinearity="exponential"),
        CellType(f"ON {last}-preferring", "on", "transient", preferred_channel=-1, centre_sigma_px=1.4),
        CellType(f"OFF {first}-preferring", "off", "sustained", preferred_channel=0, centre_sigma_px=1.4),
        CellType(
            "ON transient subunit (nonlinear)",
            "on",
            "transient",
            rectified_subunits=True,
            centre_sigma_px=1.6,
            surround_strength=0.0,
            nonlinearity="threshold_power",
            mean_rate_hz=14,
        ),
    )


# --------------------------------------------------------------------------------------------------------------
# Spatial components
# --------------------------------------------------------------------------------------------------------------
def gaussian_spot(centres: np.ndarray, sigma: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit-integral isotropic 2-D Gaussians sampled at pixel centres.

    Input: ``centres (N, 2)`` as ``(row, col)``, ``sigma (N,)`` in pixels. Output: ``(N, H, W)`` float64.
    """
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    sigma = np.asarray(sigma, dtype=np.float64)[:, None, None]
    squared = (rows - centres[:, 0, None, None]) ** 2 + (cols - centres[:, 1, None, None]) ** 2
    return np.exp(-squared / (2 * sigma**2)) / (2 * np.pi * sigma**2)


def difference_of_gaussians(
    centres: np.ndarray,
    centre_sigma: np.ndarray,
    surround_sigma: np.ndarray,
    surround_strength: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """Centre-surround receptive fields ``G(centre_sigma) - strength · G(surround_sigma)`` (unit-integral Gaussians).

    Input: ``centres (N, 2)`` ``(row, col)`` and per-cell ``(N,)`` parameters. Output: ``(N, H, W)`` float64.
    """
    centre = gaussian_spot(centres, centre_sigma, height, width)
    surround = gaussian_spot(centres, surround_sigma, height, width)
    return centre - np.asarray(surround_strength, dtype=np.float64)[:, None, None] * surround


def mosaic_centres(num_cells: int, height: int, width: int, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Receptive-field centres of one type tiling the field of view: a jittered regular grid.

    The grid has about the aspect ratio of the field; ``jitter`` is the standard deviation of the displacement
    in units of the grid spacing. If the grid has more points than cells, a random subset is kept.
    Output: ``(num_cells, 2)`` ``(row, col)`` floats inside the field.
    """
    cols = max(1, math.ceil(math.sqrt(num_cells * width / height)))
    rows = math.ceil(num_cells / cols)
    spacing = np.array([height / rows, width / cols])
    grid = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), axis=-1).reshape(-1, 2)
    chosen = grid[np.sort(rng.permutation(len(grid))[:num_cells])]
    centres = (chosen + 0.5) * spacing - 0.5 + rng.normal(0.0, jitter, (num_cells, 2)) * spacing
    return np.clip(centres, 0.0, [height - 1.0, width - 1.0])


def subunit_centres(centre: np.ndarray, radius: float, spacing: float) -> np.ndarray:
    """Positions ``(K, 2)`` ``(row, col)`` of a square lattice of subunits within ``radius`` of ``centre``."""
    steps = np.arange(-math.floor(radius / spacing), math.floor(radius / spacing) + 1) * spacing
    offsets = np.stack(np.meshgrid(steps, steps, indexing="ij"), axis=-1).reshape(-1, 2)
    return centre[None] + offsets[np.hypot(offsets[:, 0], offsets[:, 1]) <= radius]


def chromatic_weights(preferred_channel: int | None, num_channels: int, off_channel_weight: float) -> np.ndarray:
    """Per-channel weights ``(C,)`` with unit Euclidean norm: equal for achromatic cells, else one dominant."""
    weights = np.ones(num_channels)
    if preferred_channel is not None:
        weights[:] = off_channel_weight
        weights[preferred_channel] = 1.0
    return weights / np.linalg.norm(weights)


# --------------------------------------------------------------------------------------------------------------
# Temporal filters and nonlinearities
# --------------------------------------------------------------------------------------------------------------
def _gamma_kernel(times: np.ndarray, order: int, tau: float) -> np.ndarray:
    """Unit-area gamma-shaped kernel ``t^n exp(-t/τ)`` (peak at ``n·τ``)."""
    kernel = (times / tau) ** order * np.exp(-times / tau)
    return kernel / kernel.sum()


def temporal_filter(
    kinetics: Literal["transient", "sustained"],
    length: int,
    frame_rate: float,
    time_scale: float = 1.0,
) -> np.ndarray:
    """Biphasic causal temporal filter ``(length,)``: a fast positive gamma lobe minus a slower negative one.

    Transient filters have a negative lobe of nearly the same area (band-pass, ~0 net integral); sustained
    filters a small one (low-pass). ``time_scale`` stretches the filter (per-cell jitter). Sampled at bin
    centres ``(k + 0.5) / frame_rate``; unit Euclidean norm; index 0 is lag 0; the first lobe is positive.
    """
    fast_tau, slow_tau, lobe_ratio = (0.022, 0.045, 0.9) if kinetics == "transient" else (0.03, 0.07, 0.35)
    times = (np.arange(length) + 0.5) / frame_rate
    kernel = _gamma_kernel(times, 3, fast_tau * time_scale) - lobe_ratio * _gamma_kernel(
        times, 3, slow_tau * time_scale
    )
    return kernel / np.linalg.norm(kernel)


def apply_nonlinearity(kind: str, x: np.ndarray) -> np.ndarray:
    """Static output nonlinearity: softplus ``log(1 + e^x)``, ``exp(x)``, or threshold-power ``max(x, 0)^2``."""
    if kind == "softplus":
        return np.logaddexp(0.0, x)
    if kind == "exponential":
        return np.exp(np.minimum(x, 30.0))  # the cap only guards against overflow on extreme stimuli
    if kind == "threshold_power":
        return np.maximum(x, 0.0) ** 2
    raise SyntheticConfigError(f"unknown nonlinearity {kind!r}; expected one of {NONLINEARITIES}.")
