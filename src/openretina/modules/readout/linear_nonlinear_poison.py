"""Reference import path (misspelt there); the code lives in ``linear_nonlinear_poisson``."""

from openretina.modules.readout.linear_nonlinear_poisson import LNPReadout

__all__ = ["LNPReadout"]
