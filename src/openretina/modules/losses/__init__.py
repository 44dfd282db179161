"""Losses between predicted (batch, time_out, neurons) and observed (batch, time_target, neurons) responses."""

from openretina.modules.losses.correlation import (
    CelltypeCorrelationLoss3d,
    CorrelationLoss3d,
    L1CorrelationLoss3d,
    ScaledCorrelationLoss3d,
    pearson_correlation,
)
from openretina.modules.losses.mse import MSE3d
from openretina.modules.losses.poisson import (
    CelltypePoissonLoss3d,
    L1PoissonLoss3d,
    PoissonLoss3d,
    StandardPoissonLoss3d,
)

__all__ = [
    "CelltypeCorrelationLoss3d",
    "CelltypePoissonLoss3d",
    "CorrelationLoss3d",
    "L1CorrelationLoss3d",
    "L1PoissonLoss3d",
    "MSE3d",
    "PoissonLoss3d",
    "ScaledCorrelationLoss3d",
    "StandardPoissonLoss3d",
    "pearson_correlation",
]
