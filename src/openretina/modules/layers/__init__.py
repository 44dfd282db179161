"""Reusable layers: convolutions, regularisers, scaling, channel reduction, ensembles and the conv GRU."""

from openretina.modules.layers.ensemble import EnsembleModel
from openretina.modules.layers.reducers import WeightedChannelSumLayer
from openretina.modules.layers.regularizers import FlatLaplaceL23dnorm, Laplace
from openretina.modules.layers.scaling import Bias3DLayer, Scale2DLayer, Scale3DLayer

__all__ = [
    "Bias3DLayer",
    "EnsembleModel",
    "FlatLaplaceL23dnorm",
    "Laplace",
    "Scale2DLayer",
    "Scale3DLayer",
    "WeightedChannelSumLayer",
]
