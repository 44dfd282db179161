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
* ``spatial_matrix``: the spatial step as one matrix product per input channel with the matrix that maps a
  frame to all ``out`` spatial outputs, then the temporal step as banded matrix products summed over inputs.
  More multiply-adds than ``spatial_first`` but only large, transpose-free matrix products; only offered for
  small images (the matrix grows with pixels²).
* ``temporal_basis``: for Fourier-parametrised kernels every temporal kernel is a combination of the same
  few basis functions, so the input is filtered once per basis function (a banded matrix product) and a
  dense spatial convolution over ``in · n_basis`` channels mixes them. Needs the basis (only
  :class:`~openretina.modules.layers.convolutions.STSeparableBatchConv3d` has one).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F

from openretina.errors import OpenRetinaError

ConvBackend = Literal["auto", "dense", "spatial_first", "spatial_matrix", "temporal_basis"]
PathName = Literal["dense", "spatial_first", "spatial_matrix", "temporal_basis"]
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


# "dense" by default, like cuDNN's benchmark mode being off: "auto" times every path for each new input shape
# (batch size, clip length), which costs seconds per shape on a CPU and makes results depend on timing.
# Opt in for long fixed-shape workloads (training, batched stimulus optimisation).
DEFAULT_BACKEND: ConvBackend = "dense"
_backend: ConvBackend = _validated_backend(os.environ.get(BACKEND_ENV_VAR, DEFAULT_BACKEND))


def set_conv_backend(name: str) -> None:
    """Choose how separable convolutions are computed from now on: "dense" (default, the reference's way),
    "auto" (time every path once per input shape and keep the fastest), "spatial_first", "spatial_matrix" or
    "temporal_basis". All give the same outputs up to float rounding (~1e-6 relative)."""
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


@functools.lru_cache(maxsize=64)
def _band_index(length: int, kernel: int, padding: int, stride: int, device: torch.device) -> torch.Tensor:
    """Flat (out_len · length,) indices into a kernel with an extra zero slot at position ``kernel``.

    Entry ``(u, t)`` is the tap ``t - u·stride + padding`` when that is a valid tap, so gathering a kernel with
    it gives the banded matrix of a 1-D cross-correlation (padding and stride included).
    """
    out_len = (length + 2 * padding - kernel) // stride + 1
    taps = torch.arange(length, device=device)[None, :] - torch.arange(out_len, device=device)[:, None] * stride
    taps = taps + padding
    valid = (taps >= 0) & (taps < kernel)
    return torch.where(valid, taps, torch.full_like(taps, kernel)).flatten()


def _banded(kernels: torch.Tensor, length: int, padding: int, stride: int) -> torch.Tensor:
    """Banded matrices (..., out_len, length) of the 1-D cross-correlations with ``kernels`` (..., k)."""
    out_len = (length + 2 * padding - kernels.shape[-1]) // stride + 1
    index = _band_index(length, kernels.shape[-1], padding, stride, kernels.device)
    padded = torch.cat([kernels, kernels.new_zeros((*kernels.shape[:-1], 1))], dim=-1)
    return padded.index_select(-1, index).view(*kernels.shape[:-1], out_len, length)


@functools.lru_cache(maxsize=64)
def _spatial_index(
    height: int,
    width: int,
    kernel: tuple[int, int],
    padding: tuple[int, int],
    stride: tuple[int, int],
    device: torch.device,
) -> tuple[torch.Tensor, int, int]:
    """Flat (out_pixels · in_pixels,) indices into a flattened 2-D kernel with a zero slot at ``k_h · k_w``.

    Gathering a kernel with it gives the matrix that maps an image to its cross-correlation output.
    """
    (k_h, k_w), (pad_h, pad_w), (stride_h, stride_w) = kernel, padding, stride
    out_h = (height + 2 * pad_h - k_h) // stride_h + 1
    out_w = (width + 2 * pad_w - k_w) // stride_w + 1
    dh = torch.arange(height, device=device)[None, :] - torch.arange(out_h, device=device)[:, None] * stride_h + pad_h
    dw = torch.arange(width, device=device)[None, :] - torch.arange(out_w, device=device)[:, None] * stride_w + pad_w
    dh, dw = dh[:, None, :, None], dw[None, :, None, :]  # (out_h, out_w, height, width) after broadcasting
    valid = (dh >= 0) & (dh < k_h) & (dw >= 0) & (dw < k_w)
    index = torch.where(valid, dh * k_w + dw, torch.full_like(dh * dw, k_h * k_w))
    return index.flatten(), out_h, out_w


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


def spatial_matrix_path(
    x: torch.Tensor, kernel: SeparableKernel, bias: torch.Tensor | None, geo: _Geometry
) -> torch.Tensor:
    """Spatial step as one GEMM per input channel with the (out · out_pixels, in_pixels) matrix of the spatial
    kernels, then the temporal step as banded matrix products per (in, out) pair, summed over inputs.

    Every step is a large matrix product laid out so that no big intermediate is transposed. Spends more
    multiply-adds than a convolution in the spatial step (in_pixels / k_h·k_w times), so it only pays for
    small images (Höfling low-res layer 0). Input: (batch, in, time, height, width). Output: (batch, out, t', h', w').
    """
    batch, n_in, length, height, width = x.shape
    n_out, _, k_h, k_w = kernel.spatial.shape
    pad_t, pad_h, pad_w = geo.padding
    index, out_h, out_w = _spatial_index(
        height, width, (k_h, k_w), (pad_h, pad_w), geo.stride[1:], kernel.spatial.device
    )
    n_pix = out_h * out_w
    flat = torch.cat([kernel.spatial.flatten(2), kernel.spatial.new_zeros(n_out, n_in, 1)], dim=-1)
    spatial = flat.index_select(-1, index).view(n_out, n_in, n_pix, height * width).transpose(0, 1)
    spatial = spatial.reshape(n_in, n_out * n_pix, height * width)
    frames = x.permute(1, 3, 4, 0, 2).reshape(n_in, height * width, batch * length)
    maps = torch.bmm(spatial, frames)  # (in, out · pixel, batch · time): layout i, o, p, b, t
    band = _banded(kernel.temporal.transpose(0, 1), length, pad_t, geo.stride[0])  # (in, out, time', time)
    out_len = band.shape[2]
    summed = torch.bmm(
        maps.view(n_in * n_out, n_pix * batch, length), band.reshape(n_in * n_out, out_len, length).transpose(1, 2)
    )
    out = summed.view(n_in, n_out, n_pix, batch, out_len).sum(0)  # (out, pixel, batch, time')
    out = out.permute(2, 0, 3, 1).reshape(batch, n_out, out_len, out_h, out_w)
    return out if bias is None else out + bias.to(out.dtype).view(1, -1, 1, 1, 1)


def _spatial_matrix_fits(x: torch.Tensor, kernel: SeparableKernel) -> bool:
    """Whether the spatial matrix stays small (<= 2^22 entries): it grows with in_pixels × out_pixels."""
    n_out, n_in = kernel.spatial.shape[:2]
    pixels = x.shape[-1] * x.shape[-2]
    return n_out * n_in * pixels * pixels <= 2**22


_PATHS: dict[str, Callable[[torch.Tensor, SeparableKernel, torch.Tensor | None, _Geometry], torch.Tensor]] = {
    "spatial_first": spatial_first_path,
    "spatial_matrix": spatial_matrix_path,
    "temporal_basis": temporal_basis_path,
}

_AUTOTUNE_ROUNDS = 3

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


def _timer(
    name: PathName,
    x: torch.Tensor,
    kernel: SeparableKernel,
    bias: torch.Tensor | None,
    stride: Stride,
    padding: Padding,
    geo: _Geometry,
    with_grad: bool,
) -> Callable[[], float]:
    """A function that runs forward (and backward when training) once on detached copies and returns seconds."""

    def leaf(t: torch.Tensor | None, grad: bool) -> torch.Tensor | None:
        return None if t is None else t.detach().requires_grad_(grad and t.is_floating_point())

    x_copy = cast(torch.Tensor, leaf(x, with_grad and x.requires_grad))
    parts = [leaf(t, with_grad) for t in (kernel.temporal, kernel.spatial, kernel.coefficients, kernel.basis)]
    kernel_copy = SeparableKernel(*parts)  # type: ignore[arg-type]
    bias_copy = leaf(bias, with_grad)
    inputs = [t for t in (x_copy, *parts, bias_copy) if t is not None and t.requires_grad]

    def run() -> float:
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        with torch.set_grad_enabled(with_grad):
            out = _run(name, x_copy, kernel_copy, bias_copy, stride, padding, geo)
            if with_grad and inputs:
                torch.autograd.grad(out.float().sum(), inputs, allow_unused=True)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        return time.perf_counter() - start

    return run


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
        if _spatial_matrix_fits(x, kernel):
            candidates.append("spatial_matrix")
        if kernel.basis is not None:
            candidates.append("temporal_basis")
        try:
            timers = {name: _timer(name, x, kernel, bias, stride, padding, geo, with_grad) for name in candidates}
            for run in timers.values():
                run()  # warm-up: allocations, oneDNN kernel selection
        except RuntimeError:
            # Inside torch.func transforms (vmap, jacrev, ...) the timing's own autograd calls are not allowed;
            # use the reference path there without caching the decision.
            return "dense"
        # Round-robin and keep each path's best time, so a burst of load from elsewhere hits all paths alike.
        best = {name: float("inf") for name in candidates}
        for _ in range(_AUTOTUNE_ROUNDS):
            for name, run in timers.items():
                best[name] = min(best[name], run())
        _autotune_cache[key] = min(best, key=best.__getitem__)
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
    ``torch.compile`` tracing use the dense path; so does ``"auto"`` inside ``torch.func`` transforms.
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
    elif name == "spatial_matrix" and not _spatial_matrix_fits(x, kernel):
        name = "spatial_first"  # the matrix would be too large for this image size
    return _run(name, x, kernel, bias, stride, padding, geo)
