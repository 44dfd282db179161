"""A restricted unpickler: reads reference checkpoints without ever running code named by the file.

Unpickling can call any importable function the file names (``os.system``, ``builtins.exec``, ...), which is
why the reference's ``torch.load(weights_only=False)`` on downloaded checkpoints is unsafe. This unpickler
resolves a global only if it is on an allow-list, and separates two kinds of allowed globals:

* *callables* may be called with arguments from the file: builtin containers and scalars, the tensor, numpy
  array and dtype rebuild functions, ``_codecs.encode`` (how protocol 2 stores bytes);
* *values* are only referenced, never called while unpickling: dtypes, ``typing.Any`` and pure tensor
  operations (``torch.nn.functional.*``, ATen operators) that modules keep as attributes;
* *classes* may only be created empty (``cls.__new__``) and then receive their pickled state
  (``__setstate__`` or ``__dict__``), never called: OmegaConf containers and nodes, ``torch.nn`` modules and
  openretina modules. ``openretina.*`` class paths (e.g. pickled ``core``/``readout`` objects of the reference's
  ``ExampleCoreReadout`` checkpoints) resolve to this package's classes at the same path, limited to
  ``openretina.modules`` and ``openretina.models`` and to ``nn.Module`` subclasses.

Anything else (any other global, ``INST``/``OBJ`` opcodes, setting attributes on non-instances) raises
:class:`UnsafeCheckpointError` before it can run.

Use :func:`safe_torch_load` (``torch.load`` with this unpickler) rather than the class itself.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import importlib
import io
import os
import pickle
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
import torch
from torch import nn

from openretina.errors import DataFormatError

__all__ = ["RestrictedUnpickler", "UnsafeCheckpointError", "safe_torch_load"]


class UnsafeCheckpointError(DataFormatError):
    """A pickled file refers to a global (function or class) that is not on the allow-list."""


def _numpy_core_attribute(submodule: str, name: str) -> Any:
    core = getattr(np, "_core", None) or np.core  # numpy >= 2 renamed numpy.core to numpy._core
    return getattr(getattr(core, submodule), name)


def _builtin_callables() -> dict[str, Any]:
    builtin_types = (dict, list, tuple, set, frozenset, int, float, complex, bool, str, bytes, bytearray, slice)
    table: dict[str, Any] = {f"builtins.{t.__name__}": t for t in builtin_types}
    table.update(
        {
            "collections.OrderedDict": collections.OrderedDict,
            "collections.defaultdict": collections.defaultdict,
            "_codecs.encode": codecs.encode,
            "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
            "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": torch._utils._rebuild_parameter_with_state,
            "torch.Size": torch.Size,
            "torch.device": torch.device,
            "numpy.dtype": np.dtype,
            "numpy.ndarray": np.ndarray,
        }
    )
    # Array and scalar constructors as numpy 1 and 2 name them in pickles (protocol 5 uses _frombuffer).
    for core in ("numpy.core", "numpy._core"):
        table[f"{core}.multiarray._reconstruct"] = _numpy_core_attribute("multiarray", "_reconstruct")
        table[f"{core}.multiarray.scalar"] = _numpy_core_attribute("multiarray", "scalar")
        table[f"{core}.numeric._frombuffer"] = _numpy_core_attribute("numeric", "_frombuffer")
    return table


def _value_globals() -> dict[str, Any]:
    """Globals that may appear as plain values (never called): dtypes and typing markers."""
    table: dict[str, Any] = {"typing.Any": typing.Any}
    table.update(
        {f"torch.{name}": getattr(torch, name) for name in dir(torch) if isinstance(getattr(torch, name), torch.dtype)}
    )
    table.update(
        {f"numpy.dtypes.{name}": getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")}
    )
    return table


def _omegaconf_classes() -> dict[str, type]:
    from omegaconf import base, dictconfig, listconfig, nodes

    classes: dict[str, type] = {
        "omegaconf.dictconfig.DictConfig": dictconfig.DictConfig,
        "omegaconf.listconfig.ListConfig": listconfig.ListConfig,
        "omegaconf.base.ContainerMetadata": base.ContainerMetadata,
        "omegaconf.base.Metadata": base.Metadata,
    }
    for name in dir(nodes):
        candidate = getattr(nodes, name)
        if isinstance(candidate, type) and issubclass(candidate, nodes.ValueNode):
            classes[f"omegaconf.nodes.{name}"] = candidate
    return classes


_CALLABLES: dict[str, Any] = _builtin_callables()
_VALUES: dict[str, Any] = _value_globals()
_CLASSES: dict[str, type] = _omegaconf_classes()
# Module namespaces whose nn.Module subclasses may be rebuilt from pickled state (not called).
_MODULE_PREFIXES = ("torch.nn.modules.", "openretina.modules.", "openretina.models.")


def _allowed_module_class(module: str, name: str) -> type | None:
    """The ``nn.Module`` subclass ``module.name`` if the path is in an allowed namespace, else None."""
    if not module.startswith(_MODULE_PREFIXES) or not name.isidentifier():
        return None
    try:
        candidate = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    if isinstance(candidate, type) and issubclass(candidate, nn.Module):
        return candidate
    return None


def _tensor_function(module: str, name: str) -> Any:
    """A pure tensor operation (e.g. ``torch.nn.functional.softplus`` stored as a module attribute), else None.

    Returned as a value only: the unpickler never calls it (it is not in the callables table).
    """
    if module in {"torch.nn.functional", "torch._C._nn", "torch._C._VariableFunctions"}:
        return getattr(importlib.import_module(module), name, None) if name.isidentifier() else None
    if module == "torch":  # ATen operators re-exported at the top level (torch.exp, torch.sigmoid, ...)
        candidate = getattr(torch._C._VariableFunctions, name, None)
        return candidate if candidate is not None and getattr(torch, name, None) is candidate else None
    return None


class RestrictedUnpickler(pickle._Unpickler):
    """Pickle reader that resolves only allow-listed globals and never calls a class (see module docstring)."""

    # Set by pickle's pure-Python unpickler; declared for type checkers.
    stack: list[Any]
    proto: int
    fix_imports: bool
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name`` from the allow-lists, or raise :class:`UnsafeCheckpointError`."""
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as the standard unpickler maps them
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        qualified = f"{module}.{name}"
        for table in (_CALLABLES, _VALUES, _CLASSES):
            if qualified in table:
                return table[qualified]
        allowed = _allowed_module_class(module, name) or _tensor_function(module, name)
        if allowed is not None:
            return allowed
        raise UnsafeCheckpointError(
            f"refusing to load the global {qualified!r}: only tensors, numpy arrays, OmegaConf configs, builtin "
            "containers and torch.nn / openretina modules may appear in a checkpoint."
        )

    def _is_restorable_class(self, candidate: Any) -> bool:
        return isinstance(candidate, type) and (
            candidate in _CLASSES.values()
            or candidate in _CALLABLES.values()
            or issubclass(candidate, (np.dtype, np.ndarray))  # their C __setstate__ only reads raw data
            or (issubclass(candidate, nn.Module) and candidate.__module__.startswith(_MODULE_PREFIXES))
        )

    def load_reduce(self) -> None:
        """REDUCE: call ``func(*args)`` only for allow-listed callables (classes are never called)."""
        func = self.stack[-2]
        if not any(func is allowed for allowed in _CALLABLES.values()):
            raise UnsafeCheckpointError(f"refusing to call {func!r} while unpickling.")
        super().load_reduce()  # type: ignore[misc]

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self) -> None:
        """NEWOBJ: ``cls.__new__(cls, *args)`` for allowed classes only."""
        if not self._is_restorable_class(self.stack[-2]):
            raise UnsafeCheckpointError(f"refusing to create an instance of {self.stack[-2]!r} while unpickling.")
        super().load_newobj()  # type: ignore[misc]

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        """NEWOBJ_EX: as NEWOBJ, with keyword arguments."""
        if not self._is_restorable_class(self.stack[-3]):
            raise UnsafeCheckpointError(f"refusing to create an instance of {self.stack[-3]!r} while unpickling.")
        super().load_newobj_ex()  # type: ignore[misc]

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_build(self) -> None:
        """BUILD: restore state only on instances of allowed classes (never on classes or functions)."""
        instance = self.stack[-2]
        if not self._is_restorable_class(type(instance)):
            raise UnsafeCheckpointError(f"refusing to set the state of {instance!r} while unpickling.")
        super().load_build()  # type: ignore[misc]

    dispatch[pickle.BUILD[0]] = load_build

    def _refuse_protocol_0_instance(self) -> None:
        raise UnsafeCheckpointError("refusing the protocol-0/1 INST/OBJ opcodes, which call classes directly.")

    dispatch[pickle.INST[0]] = _refuse_protocol_0_instance
    dispatch[pickle.OBJ[0]] = _refuse_protocol_0_instance


class _RestrictedPickleModule:
    """The ``pickle_module`` handed to ``torch.load``: its ``Unpickler`` and ``load`` are the restricted ones."""

    Unpickler = RestrictedUnpickler
    __name__ = "openretina.hub.safe_unpickle"

    @staticmethod
    def load(file: BinaryIO, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()


def safe_torch_load(source: str | os.PathLike[str] | bytes, map_location: str | torch.device | None = "cpu") -> Any:
    """``torch.load`` of a file (path) or its bytes with the restricted unpickler.

    Raises:
        UnsafeCheckpointError: the file names a global outside the allow-list (the message names the file).
    """
    name = "<bytes>" if isinstance(source, bytes) else str(Path(source))
    stream: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return torch.load(stream, map_location=map_location, pickle_module=_RestrictedPickleModule, weights_only=False)
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(
            f"checkpoint {name}: {error} The file was not loaded and nothing in it was executed. If it comes from a "
            "source you trust completely, convert it once with torch.load(path, weights_only=False) and "
            "openretina.hub.save_pretrained."
        ) from None
