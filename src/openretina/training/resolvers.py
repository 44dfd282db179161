"""OmegaConf resolvers used by openretina's configs, registered by the package itself.

The reference registered ``len`` from a top-level ``hydra_plugins`` directory that is not installed with the
package, so ``${len:...}`` only worked from a source checkout; here importing :mod:`openretina.training` (which
the ``train``/``eval`` commands do) registers it.
"""

from __future__ import annotations

from omegaconf import OmegaConf

__all__ = ["register_resolvers"]


def register_resolvers() -> None:
    """Register ``${len:<list>}`` (number of elements). Safe to call repeatedly."""
    OmegaConf.register_new_resolver("len", len, replace=True)


register_resolvers()
