"""Older import path of the losses (reference compatibility); everything lives in :mod:`openretina.modules.losses`.

Differences from the reference's separate copies: ``CorrelationLoss3d`` here also takes ``negate`` (default True,
i.e. the negative correlation, as before) and ``L1CorrelationLoss3d`` no longer prints its terms.
"""

from openretina.modules.losses import (
    CelltypeCorrelationLoss3d,
    CelltypePoissonLoss3d,
    CorrelationLoss3d,
    L1CorrelationLoss3d,
    MSE3d,
    PoissonLoss3d,
    ScaledCorrelationLoss3d,
    StandardPoissonLoss3d,
)

__all__ = [
    "CelltypeCorrelationLoss3d",
    "CelltypePoissonLoss3d",
    "CorrelationLoss3d",
    "L1CorrelationLoss3d",
    "MSE3d",
    "PoissonLoss3d",
    "ScaledCorrelationLoss3d",
    "StandardPoissonLoss3d",
]
