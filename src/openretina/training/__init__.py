"""Training: config-driven runs (``train_model``), data loading and Lightning helpers.

Importing this package registers the ``${len:...}`` config resolver.
"""

from openretina.training import resolvers as _resolvers
from openretina.training.loaders import CycledLoaders, cycle_session_loaders

__all__ = ["CycledLoaders", "cycle_session_loaders"]
