"""Exact ways of computing a space-time separable 3-D convolution, and a per-shape chooser between them.

A separable kernel has ``w[o, i, t, h, w] = temporal[o, i, t] · spatial[o, i, h, w]``. The reference builds
that full kernel every step and runs one dense ``conv3d``. The same numbers (up to float rounding) come out of
cheaper orderings, but on CPUs fewer multiply-adds only pay off when the work still lands in large, well laid
out kernels, and which ordering wins depends on the layer shape. So every path is kept, and ``"auto"`` times
them once per shape (like cuDNN's benchmark mode) and caches the winner. All paths are plain differentiable
torch ops, so gradients with respect to the input and every weight come from autograd.

Paths (``x``: (batch, in, time, height, width)):

* ``dense``: the reference computation; the baseline and the equality check.
* ``spatial_first``: one grouped 2-D convolution over all frames (each input channel to ``out`` maps), then
  the temporal sum as a batched matrix product with a banded (Toeplitz) matrix. Wins for few input channels
  and large spatial kernels (Höfling layer 0: ~12x fewer multiply-adds; its input gradient avoids the very
  slow dense backward-data).
* ``temporal_basis``: for Fourier-parametrised kernels every temporal kernel is a combination of the same
  few basis functions, so the input is filtered once per basis function (a banded matrix product) and a
  dense spatial convolution over ``in · n_basis`` channels mixes them. Needs the basis (only
  :class:`~openretina.modules.layers.convolutions.STSeparableBatchConv3d` has one).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F

from openretina.errors import OpenRetinaError

ConvBackend = Literal["auto", "dense", "spatial_first", "temporal_basis"]
PathName = Literal["dense", "spatial_first", "temporal_basis"]
Padding = int | str | Sequence[int]
Stride = int | Sequence[int]

BACKEND_ENV_VAR = "OPENRETINA_CONV_BACKEND"
_BACKENDS: tuple[str, ...] = get_args(ConvBackend)


class ConvolutionConfigError(OpenRetinaError, ValueError):
    """An unknown convolution type or convolution backend was requested."""


def _validated_backend(name: str) -> ConvBackend:
    if name not in _BACKENDS:
        raise ConvolutionConfigError(
            f"Unknown convolution backend {name!r}; expected one of {list(_BACKENDS)}. "
            f"(Set it with set_conv_backend(...) or the {BACKEND_ENV_VAR} environment variable.)"
        )
    return cast(ConvBackend, name)


_backend: ConvBackend = _validated_backend(os.environ.get(BACKEND_ENV_VAR, "auto"))


def set_conv_backend(name: str) -> None:
    """Choose how separable convolutions are computed from now on: "auto" (default), "dense",
    "spatial_first" or "temporal_basis". All give the same outputs up to float rounding (~1e-6 relative)."""
    global _backend
    _backend = _validated_backend(name)


def get_conv_backend() -> ConvBackend:
    """The backend currently used by separable convolutions."""
    return _backend


@contextmanager
def conv_backend(name: str) -> Iterator[None]:
    """Use backend ``name`` inside a ``with`` block, then restore the previous one."""
    previous = get_conv_backend()
    set_conv_backend(name)
    try:
        yield
    finally:
        set_conv_backend(previous)


@dataclass(frozen=True)
class SeparableKernel:
    """A separable space-time kernel, optionally with its temporal basis.

    ``temporal``: (out, in, k_t); ``spatial``: (out, in, k_h, k_w). When given, ``coefficients`` (out, in, n)
    and ``basis`` (n, k_t) satisfy ``temporal == coefficients @ basis``.
    """

    temporal: torch.Tensor
    spatial: torch.Tensor
    coefficients: torch.Tensor | None = None
    basis: torch.Tensor | None = None

    def dense(self) -> torch.Tensor:
        """The full kernel (out, in, k_t, k_h, k_w) as the reference builds it."""
        return self.temporal[..., None, None] * self.spatial[:, :, None]


@dataclass(frozen=True)
class _Geometry:
    """Explicit symmetric padding and strides per axis (time, height, width)."""

    padding: tuple[int, int, int]
    stride: tuple[int, int, int]


def _triple(value: int | Sequence[int], what: str) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    values = tuple(int(v) for v in value)
    if len(values) != 3:
        raise ConvolutionConfigError(f"Convolution {what} must be an int or 3 ints (time, height, width), got {value}.")
    return values


def _geometry(kernel_size: tuple[int, int, int], stride: Stride, padding: Padding) -> _Geometry | None:
    """Symmetric integer padding equivalent to ``padding``, or None when only the dense path can express it."""
    strides = _triple(stride, "stride")
    if padding == "valid":
        return _Geometry((0, 0, 0), strides)
    if padding == "same":
        if strides != (1, 1, 1) or any(k % 2 == 0 for k in kernel_size):
            return None  # torch pads even kernels asymmetrically; leave that to conv3d itself
        return _Geometry(cast(tuple[int, int, int], tuple((k - 1) // 2 for k in kernel_size)), strides)
    if isinstance(padding, str):
        return None  # conv3d raises its own clear error for unknown strings
    return _Geometry(_triple(padding, "padding"), strides)


def _band_index(length: int, kernel: int, padding: int, stride: int, device: torch.device) -> torch.Tensor:
    """(out_len, length) indices into a kernel with an extra zero slot at position ``kernel``.

    Row ``u`` holds, for every input frame ``t``, the tap ``t - u·stride + padding`` when that is a valid tap,
    so gathering a kernel with it gives the banded matrix of a 1-D cross-correlation.
    """
    out_len = (length + 2 * padding - kernel) // stride + 1
    taps = torch.arange(length, device=device)[None, :] - torch.arange(out_len, device=device)[:, None] * stride
    taps = taps + padding
    valid = (taps >= 0) & (taps < kernel)
    return torch.where(valid, taps, torch.full_like(taps, kernel))


def _banded(kernels: torch.Tensor, length: int, padding: int, stride: int) -> torch.Tensor:
    """Banded matrices (..., out_len, length) of the 1-D cross-correlations with ``kernels`` (..., k)."""
    index = _band_index(length, kernels.shape[-1], padding, stride, kernels.device)
    padded = torch.cat([kernels, kernels.new_zeros((*kernels.shape[:-1], 1))], dim=-1)
    return padded[..., index]


def dense_path(
    x: torch.Tensor, kernel: SeparableKernel, bias: torch.Tensor | None, stride: Stride, padding: Padding
) -> torch.Tensor:
    """Reference computation: full outer-product kernel, one dense ``conv3d``.

    Input: (batch, in, time, height, width). Output: (batch, out, time', height', width').
    """
    return F.conv3d(x, kernel.dense(), bias, stride, padding)


def spatial_first_path(
    x: torch.Tensor, kernel: SeparableKernel, bias: torch.Tensor | None, geo: _Geometry
) -> torch.Tensor:
    """Grouped spatial conv2d over all frames, then the temporal sum as one batched banded matrix product.

    Input: (batch, in, time, height, width). Output: (batch, out, time', height', width').
    """
    batch, n_in, length, height, width = x.shape
    n_out, _, k_h, k_w = kernel.spatial.shape
    pad_t, pad_h, pad_w = geo.padding
    stride_t, stride_h, stride_w = geo.stride
    frames = x.transpose(1, 2).reshape(batch * length, n_in, height, width)
    # groups=in: input channel i produces maps (i, o) for every o.
    spatial = kernel.spatial.transpose(0, 1).reshape(n_in * n_out, 1, k_h, k_w)
    maps = F.conv2d(frames, spatial, stride=(stride_h, stride_w), padding=(pad_h, pad_w), groups=n_in)
    out_h, out_w = maps.shape[-2:]
    band = _banded(kernel.temporal, length, pad_t, stride_t)  # (out, in, time', time)
    maps = maps.view(batch, length, n_in, n_out, out_h * out_w)
    out = torch.einsum("oiut,btiop->boup", band.to(maps.dtype), maps)
    out = out.reshape(batch, n_out, band.shape[2], out_h, out_w)
    return out if bias is None else out + bias.to(out.dtype).view(1, -1, 1, 1, 1)


def temporal_basis_path(
    x: torch.Tensor, kernel: SeparableKernel, bias: torch.Tensor | None, geo: _Geometry
) -> torch.Tensor:
    """Filter the input once per temporal basis function, then one dense spatial conv over in·n_basis channels.

    Input: (batch, in, time, height, width). Output: (batch, out, time', height', width').
    """
    if kernel.basis is None or kernel.coefficients is None:
        raise ConvolutionConfigError("The temporal_basis path needs a kernel with a temporal basis.")
    batch, n_in, length, height, width = x.shape
    n_out, _, k_h, k_w = kernel.spatial.shape
    n_basis = kernel.basis.shape[0]
    pad_t, pad_h, pad_w = geo.padding
    _, stride_h, stride_w = geo.stride
    band = _banded(kernel.basis, length, pad_t, geo.stride[0])  # (n_basis, time', time)
    out_len = band.shape[1]
    filtered = torch.matmul(band.reshape(n_basis * out_len, length), x.reshape(batch * n_in, length, height * width))
    filtered = filtered.view(batch, n_in * n_basis, out_len, height, width)  # channel = i · n_basis + k
    mixing = kernel.coefficients[..., None, None] * kernel.spatial[:, :, None]  # (out, in, n_basis, k_h, k_w)
    mixing = mixing.reshape(n_out, n_in * n_basis, 1, k_h, k_w)
    return F.conv3d(filtered, mixing, bias, (1, stride_h, stride_w), (0, pad_h, pad_w))


_PATHS: dict[str, Callable[[torch.Tensor, SeparableKernel, torch.Tensor | None, _Geometry], torch.Tensor]] = {
    "spatial_first": spatial_first_path,
    "temporal_basis": temporal_basis_path,
}

# Winner per (shapes, strides, padding, dtype, device, gradient mode, autocast): timed once per process.
_autotune_cache: dict[tuple[object, ...], PathName] = {}


def autotune_choices() -> dict[tuple[object, ...], PathName]:
    """The paths picked so far by "auto", keyed by layer shape and mode (a copy, for logging/benchmarks)."""
    return dict(_autotune_cache)


def clear_autotune_cache() -> None:
    """Forget the timed choices (e.g. after changing the number of threads)."""
    _autotune_cache.clear()


def _run(
    name: PathName,
    x: torch.Tensor,
    kernel: SeparableKernel,
    bias: torch.Tensor | None,
    stride: Stride,
    padding: Padding,
    geo: _Geometry | None,
) -> torch.Tensor:
    if name == "dense" or geo is None:
        return dense_path(x, kernel, bias, stride, padding)
    return _PATHS[name](x, kernel, bias, geo)


def _time_path(
    name: PathName,
    x: torch.Tensor,
    kernel: SeparableKernel,
    bias: torch.Tensor | None,
    stride: Stride,
    padding: Padding,
    geo: _Geometry,
    with_grad: bool,
    repeats: int = 2,
) -> float:
    """Best wall time of forward (and backward when training) on detached copies: no side effects."""

    def leaf(t: torch.Tensor | None, grad: bool) -> torch.Tensor | None:
        return None if t is None else t.detach().requires_grad_(grad and t.is_floating_point())

    x_copy = cast(torch.Tensor, leaf(x, with_grad and x.requires_grad))
    parts = [leaf(t, with_grad) for t in (kernel.temporal, kernel.spatial, kernel.coefficients, kernel.basis)]
    kernel_copy = SeparableKernel(*parts)  # type: ignore[arg-type]
    bias_copy = leaf(bias, with_grad)
    inputs = [t for t in (x_copy, *parts, bias_copy) if t is not None and t.requires_grad]
    best = float("inf")
    for attempt in range(repeats + 1):  # the first run is a warm-up (allocations, kernel selection)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        with torch.set_grad_enabled(with_grad):
            out = _run(name, x_copy, kernel_copy, bias_copy, stride, padding, geo)
            if with_grad and inputs:
                torch.autograd.grad(out.float().sum(), inputs, allow_unused=True)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        if attempt > 0:
            best = min(best, time.perf_counter() - start)
    return best


def _choose_path(
    x: torch.Tensor,
    kernel: SeparableKernel,
    bias: torch.Tensor | None,
    stride: Stride,
    padding: Padding,
    geo: _Geometry,
) -> PathName:
    with_grad = torch.is_grad_enabled() and (
        x.requires_grad or kernel.temporal.requires_grad or kernel.spatial.requires_grad
    )
    autocast = torch.is_autocast_enabled(x.device.type)
    key = (
        tuple(x.shape), tuple(kernel.temporal.shape), tuple(kernel.spatial.shape),
        None if kernel.basis is None else tuple(kernel.basis.shape), geo, x.dtype, x.device, with_grad,
        x.requires_grad, autocast, torch.get_autocast_dtype(x.device.type) if autocast else None,
        torch.get_num_threads(),
    )  # fmt: skip
    if key not in _autotune_cache:
        candidates: list[PathName] = ["dense", "spatial_first"]
        if kernel.basis is not None:
            candidates.append("temporal_basis")
        timings = {name: _time_path(name, x, kernel, bias, stride, padding, geo, with_grad) for name in candidates}
        _autotune_cache[key] = min(timings, key=timings.__getitem__)
    return _autotune_cache[key]


def separable_conv3d(
    x: torch.Tensor,
    kernel: SeparableKernel,
    bias: torch.Tensor | None = None,
    stride: Stride = 1,
    padding: Padding = 0,
    backend: str | None = None,
) -> torch.Tensor:
    """Cross-correlate ``x`` with a separable kernel using the chosen (or globally set) backend.

    Input: (batch, in, time, height, width). Output: (batch, out, time', height', width'), equal to
    ``conv3d(x, kernel.dense(), bias, stride, padding)`` up to float rounding for every backend.
    Paddings a factorised path cannot express (``"same"`` with even kernels or strides) and
    ``torch.compile`` tracing use the dense path.
    """
    name = _validated_backend(backend) if backend is not None else _backend
    if name == "dense" or torch.compiler.is_compiling():
        return dense_path(x, kernel, bias, stride, padding)
    k_t = kernel.temporal.shape[-1]
    k_h, k_w = kernel.spatial.shape[-2:]
    geo = _geometry((k_t, int(k_h), int(k_w)), stride, padding)
    if geo is None:
        return dense_path(x, kernel, bias, stride, padding)
    if name == "auto":
        name = _choose_path(x, kernel, bias, stride, padding, geo)
    elif name == "temporal_basis" and kernel.basis is None:
        name = "spatial_first"  # the kernel is not Fourier-parametrised; the closest factorised path
    return _run(name, x, kernel, bias, stride, padding, geo)
