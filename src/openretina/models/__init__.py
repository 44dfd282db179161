"""Complete, trainable models (Lightning modules) built from cores and readouts.

``from openretina.models import *`` gives the reference's public names that exist in this package plus
:class:`CoreReadout` for composing your own core and readout, and ``load_core_readout_from_remote`` (the model hub).

The classes are imported on first access: Lightning (through torchmetrics) imports matplotlib, and
``import openretina.models`` should stay cheap for code that only needs a submodule or a name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openretina.hub.loading import load_core_readout_from_remote
    from openretina.models.core_readout import CoreReadout, ExampleCoreReadout, UnifiedCoreReadout
    from openretina.models.spatial_contrast import SingleCellSpatialContrast

_MODULE_OF = {
    "CoreReadout": "openretina.models.core_readout",
    "ExampleCoreReadout": "openretina.models.core_readout",
    "UnifiedCoreReadout": "openretina.models.core_readout",
    "SingleCellSpatialContrast": "openretina.models.spatial_contrast",
    # The loader lives with the rest of the model hub; the reference exports it from here.
    "load_core_readout_from_remote": "openretina.hub.loading",
}

__all__ = [
    "CoreReadout",
    "ExampleCoreReadout",
    "SingleCellSpatialContrast",
    "UnifiedCoreReadout",
    "load_core_readout_from_remote",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'openretina.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
