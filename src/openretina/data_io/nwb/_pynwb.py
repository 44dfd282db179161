"""Lazy import of pynwb, with an install hint when the optional ``nwb`` extra is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

# Scratch entries written by :mod:`.writer` and restored by :mod:`.reader`.
METADATA_SCRATCH = "openretina_metadata"
KWARG_SCRATCH_PREFIX = "session_kwargs."


def import_pynwb() -> ModuleType:
    """Return the ``pynwb`` module, or raise ImportError saying how to install it."""
    try:
        return importlib.import_module("pynwb")
    except ImportError as error:  # pragma: no cover - pynwb is part of the dev extra
        raise ImportError(
            "reading or writing NWB files needs pynwb; install it with `pip install openretina[nwb]`."
        ) from error
