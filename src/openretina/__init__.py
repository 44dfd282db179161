"""openretina: deep-learning models of the retina.

Importing the package is cheap: sub-packages (``openretina.models``, ``openretina.data_io``, ...) are
imported on demand, and nothing here touches the network, the environment or matplotlib.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("openretina")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
