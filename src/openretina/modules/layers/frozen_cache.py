"""Values derived from parameters, remembered while those parameters are frozen and unchanged."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import torch

T = TypeVar("T")

# owner -> {key: (copies of the sources, value)}. Kept outside the owners so that copies, pickles and checkpoints
# of a module never carry (or need to trust) a cache; entries vanish with their owner.
_ENTRIES: weakref.WeakKeyDictionary[Any, dict[Hashable, tuple[tuple[torch.Tensor, ...], Any]]] = (
    weakref.WeakKeyDictionary()
)


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, device, shape and values."""
    return a.dtype == b.dtype and a.device == b.device and a.shape == b.shape and torch.equal(a, b)


def cached_while_frozen(owner: Any, key: Hashable, sources: tuple[torch.Tensor, ...], compute: Callable[[], T]) -> T:
    """``compute()`` for ``owner``'s ``sources``, reused while they are frozen and unchanged.

    While gradients can flow into a source (training) the value is computed afresh on every call, with its graph.
    Otherwise (evaluation, stimulus optimisation) it is computed once per ``key`` and reused while the sources keep
    their values: they are compared with copies on every call (small parameter tensors, far cheaper than most
    derived values), so no way of changing them, ``.data`` included, can leave a stale value.
    """
    if torch.compiler.is_compiling() or (torch.is_grad_enabled() and any(s.requires_grad for s in sources)):
        return compute()
    entries = _ENTRIES.setdefault(owner, {})
    entry = entries.get(key)
    if entry is None or not all(map(_same_tensor, entry[0], sources)):
        with torch.no_grad():
            entry = (tuple(s.detach().clone() for s in sources), compute())
        entries[key] = entry
    return entry[1]
