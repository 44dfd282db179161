"""Public names of openretina.models and the cost of importing it."""

from __future__ import annotations

import subprocess
import sys


def test_star_import_gives_the_reference_names_plus_core_readout() -> None:
    namespace: dict[str, object] = {}
    exec("from openretina.models import *", namespace)
    exported = sorted(name for name in namespace if not name.startswith("__"))
    assert exported == [
        "CoreReadout",
        "ExampleCoreReadout",
        "SingleCellSpatialContrast",
        "UnifiedCoreReadout",
        "load_core_readout_from_remote",
    ]
    from openretina.hub.loading import load_core_readout_from_remote
    from openretina.models.core_readout import UnifiedCoreReadout

    assert namespace["UnifiedCoreReadout"] is UnifiedCoreReadout
    assert namespace["load_core_readout_from_remote"] is load_core_readout_from_remote


def test_importing_the_package_does_not_import_matplotlib_or_lightning() -> None:
    code = "import sys, openretina.models; print(sorted({'matplotlib', 'lightning'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
