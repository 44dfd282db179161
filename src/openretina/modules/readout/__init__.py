"""Readouts: map core features (batch, channels, time, height, width) to responses (batch, time, neurons)."""

from openretina.modules.readout.base import ClonedReadout, Readout
from openretina.modules.readout.factorized import FactorizedReadout, KlindtReadoutWrapper3D
from openretina.modules.readout.factorized_gaussian import GaussianMaskReadout
from openretina.modules.readout.gaussian import FullGaussian2d, PointGaussianReadout
from openretina.modules.readout.linear_nonlinear_poisson import LNPReadout
from openretina.modules.readout.multi_readout import (
    MultiFactorizedReadout,
    MultiGaussianMaskReadout,
    MultipleLNPReadout,
    MultiReadoutBase,
    MultiSampledGaussianReadout,
    UnknownSessionError,
)
from openretina.modules.readout.spatial_contrast_model_readout import (
    MultiSpatialContrastReadout,
    SpatialContrastReadout,
)

__all__ = [
    "ClonedReadout",
    "FactorizedReadout",
    "FullGaussian2d",
    "GaussianMaskReadout",
    "KlindtReadoutWrapper3D",
    "LNPReadout",
    "MultiFactorizedReadout",
    "MultiGaussianMaskReadout",
    "MultiReadoutBase",
    "MultiSampledGaussianReadout",
    "MultiSpatialContrastReadout",
    "MultipleLNPReadout",
    "PointGaussianReadout",
    "Readout",
    "SpatialContrastReadout",
    "UnknownSessionError",
]
