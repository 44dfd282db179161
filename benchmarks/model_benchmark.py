"""Model benchmark: the Höfling low-res core + a Gaussian-mask readout, reference computation vs ours.

Measures, in one process and interleaved (so machine load hits every mode alike):

* training steps (batch 128 x 50 frames: forward, Poisson loss, regularisers, backward, AdamW),
* inference (batch 32 x 50 frames, eval mode, no grad),
* the stimulus gradient (forward + backward w.r.t. the input for 50 stimuli, weights frozen),

for the modes ``reference`` (full outer-product kernel rebuilt every step, one dense conv3d: the reference's
way, kept in the code as ``set_conv_backend("dense")``), ``ours`` (default ``"auto"`` backend, exact fp32) and
``ours_bf16`` (same under ``torch.autocast("cpu", bfloat16)``); ``--compile`` adds ``ours_compiled``.
It checks that the modes agree (fp32 to 1e-5, bf16 to 1e-2 relative), reports samples/s, FLOPs per sample,
achieved GFLOP/s against this machine's peak, and a torch.profiler breakdown of one training step per mode.

Run: ``.venv/bin/python benchmarks/model_benchmark.py`` (writes benchmarks/results/model.{json,md}).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from openretina.modules.layers.convolutions import STSeparableBatchConv3d, autotune_choices, conv_backend

IN_SHAPE = (2, 18, 16)  # Höfling low-res: UV/green, 18 x 16 pixels
CHANNELS = (2, 16, 16)
TEMPORAL = (21, 11)
SPATIAL = (11, 5)
HIDDEN_PADDING = (0, 2, 2)


@dataclass(frozen=True)
class Mode:
    name: str
    backend: str
    bf16: bool = False
    compiled: bool = False

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Set this mode's conv backend (and bf16 autocast) inside a ``with`` block."""
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with conv_backend(self.backend), autocast:
            yield


class StandInCore(nn.Module):
    """conv -> BatchNorm3d -> per-channel bias -> ELU per layer; used only if SimpleCoreWrapper is unavailable."""

    def __init__(self) -> None:
        super().__init__()
        layers = []
        for layer, (c_in, c_out) in enumerate(itertools.pairwise(CHANNELS)):
            padding = 0 if layer == 0 else HIDDEN_PADDING
            conv = STSeparableBatchConv3d(c_in, c_out, {}, TEMPORAL[layer], SPATIAL[layer], padding=padding, bias=False)
            layers += [conv, nn.BatchNorm3d(c_out), _ChannelBias(c_out), nn.ELU()]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input: (batch, 2, time, 18, 16). Output: (batch, 16, time - 30, 8, 6)."""
        return self.features(x)

    def regularizer(self) -> torch.Tensor:
        """Temporal smoothness of all layers, weighted 40 as in the zoo configs."""
        from openretina.modules.layers.convolutions import temporal_smoothing

        convs = [m for m in self.modules() if isinstance(m, STSeparableBatchConv3d)]
        return 40.0 * sum((temporal_smoothing(c.sin_weights, c.cos_weights) for c in convs), torch.tensor(0.0))


class _ChannelBias(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input and output: (batch, channels, time, height, width)."""
        return x + self.bias


class StandInReadout(nn.Module):
    """Per-neuron spatial weights and channel weights, softplus; used only if GaussianMaskReadout is missing."""

    def __init__(self, channels: int, height: int, width: int, neurons: int) -> None:
        super().__init__()
        self.masks = nn.Parameter(torch.rand(height, width, neurons) / (height * width))
        self.features = nn.Parameter(torch.rand(channels, neurons) / channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input: (batch, channels, time, height, width). Output: (batch, time, neurons)."""
        return nn.functional.softplus(torch.einsum("bctyx,yxn,cn->btn", x, self.masks, self.features))

    def regularizer(self) -> torch.Tensor:
        """L1 of masks and feature weights."""
        return self.masks.abs().sum() + self.features.abs().sum()


class Model(nn.Module):
    """Core + readout. Input: (batch, 2, time, 18, 16). Output: (batch, time - 30, neurons)."""

    def __init__(self, neurons: int) -> None:
        super().__init__()
        self.core: Any
        self.readout: Any
        self.core, self.core_name = _build_core()
        self.readout, self.readout_name = _build_readout(neurons)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input: (batch, 2, time, 18, 16). Output: (batch, time - 30, neurons)."""
        return self.readout(self.core(x))

    def regularizer(self) -> torch.Tensor:
        """Core plus readout regularisation, as added to the training loss."""
        return self.core.regularizer() + self.readout.regularizer()


def _build_core() -> tuple[nn.Module, str]:
    try:
        from openretina.modules.core.base_core import SimpleCoreWrapper

        core = SimpleCoreWrapper(
            channels=CHANNELS, temporal_kernel_sizes=TEMPORAL, spatial_kernel_sizes=SPATIAL, gamma_input=0.0,
            gamma_temporal=40.0, gamma_in_sparse=0.0, gamma_hidden=0.0, cut_first_n_frames=0, input_padding=0,
            hidden_padding=list(HIDDEN_PADDING),
        )  # fmt: skip
        return core, "SimpleCoreWrapper"
    except ImportError:
        return StandInCore(), "StandInCore"


def _build_readout(neurons: int) -> tuple[nn.Module, str]:
    core_out = (CHANNELS[-1], 20, IN_SHAPE[1] - SPATIAL[0] + 1, IN_SHAPE[2] - SPATIAL[0] + 1)
    try:
        from openretina.modules.readout.factorized_gaussian import GaussianMaskReadout

        readout = GaussianMaskReadout(
            core_out, neurons, torch.ones(neurons), gaussian_mean_scale=6.0, gaussian_var_scale=4.0, positive=True,
            scale=True,
        )  # fmt: skip
        return readout, "GaussianMaskReadout"
    except ImportError:
        return StandInReadout(*core_out[:1], *core_out[2:], neurons), "StandInReadout"


def poisson_loss(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Summed Poisson negative log-likelihood (up to a constant), as the zoo models train with."""
    return (prediction - target * torch.log(prediction + eps)).sum()


# ----------------------------------------------------------------------------------------------------- FLOPs


def conv_flops_per_sample(frames: int) -> dict[str, float]:
    """Multiply-adds x 2 of the two convolutions, per sample, for the dense and the factorised formulation."""
    dense, factorised = [], []
    length, height, width = frames, *IN_SHAPE[1:]
    for layer, (c_in, c_out) in enumerate(itertools.pairwise(CHANNELS)):
        k_t, k_s = TEMPORAL[layer], SPATIAL[layer]
        pad = 0 if layer == 0 else HIDDEN_PADDING[1]
        out_t, out_h, out_w = length - k_t + 1, height + 2 * pad - k_s + 1, width + 2 * pad - k_s + 1
        outputs = out_t * out_h * out_w
        dense.append(2.0 * c_out * c_in * k_t * k_s * k_s * outputs)
        # spatial maps for every (out, in) pair on every input frame, then the k_t-tap temporal sum
        factorised.append(2.0 * c_out * c_in * (k_s * k_s * length * out_h * out_w + k_t * outputs))
        length, height, width = out_t, out_h, out_w
    return {
        "dense_forward": sum(dense),
        "factorised_forward": sum(factorised),
        # training: forward + weight gradients of both layers + input gradient of layer 1 only
        "dense_training": 2 * dense[0] + 3 * dense[1],
        # stimulus gradient: forward + input gradients, weights frozen
        "dense_stimulus_gradient": 2 * sum(dense),
    }


def machine_peak_gflops(threads: int) -> dict[str, object]:
    """Theoretical peak = threads x nominal clock x FLOP/cycle of the widest FMA unit, plus a measured one."""
    mhz = 0.0
    flags = ""
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text()
        mhz = max(float(line.split(":")[1]) for line in cpuinfo.splitlines() if line.startswith("cpu MHz"))
        flags = next(line for line in cpuinfo.splitlines() if line.startswith("flags"))
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fp32_per_cycle = 2 * lanes * 2  # two FMA pipes x lanes x (multiply + add)
    bf16_per_cycle = 2 * fp32_per_cycle if "avx512_bf16" in flags else fp32_per_cycle
    x = torch.randn(64, 16, 30, 8, 6)
    w = torch.randn(16, 16, 11, 5, 5)
    flops = 2.0 * 64 * 16 * 20 * 8 * 6 * 16 * 11 * 25
    measured = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        xs, ws = x.to(dtype), w.to(dtype)

        def conv(xs: torch.Tensor = xs, ws: torch.Tensor = ws) -> torch.Tensor:
            return torch.conv3d(xs, ws, padding=(0, 2, 2))

        best = min(_timed(conv) for _ in range(5))
        measured[name] = flops / best / 1e9
    return {
        "how": f"{threads} threads x {mhz:.0f} MHz (nominal, /proc/cpuinfo) x {fp32_per_cycle} fp32 FLOP/cycle "
        f"(2 FMA pipes x {lanes} lanes x 2); bf16 x{bf16_per_cycle // fp32_per_cycle} with avx512_bf16. "
        "Boost clocks and half-width execution units change the real figure; 'measured' is the best dense "
        "conv3d (64x16x30x8x6, kernel 11x5x5) on this machine.",
        "theoretical_fp32": threads * mhz * 1e6 * fp32_per_cycle / 1e9,
        "theoretical_bf16": threads * mhz * 1e6 * bf16_per_cycle / 1e9,
        "measured_conv3d_fp32": measured["fp32"],
        "measured_conv3d_bf16": measured["bf16"],
    }


# -------------------------------------------------------------------------------------------------- timing


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(tasks: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Run each task once per round, round-robin, after one warm-up round; wall seconds per run."""
    for fn in tasks.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(repeats):
        for name, fn in tasks.items():
            times[name].append(_timed(fn))
    return times


def make_train_step(model: Model, mode: Mode, x: torch.Tensor, y: torch.Tensor) -> Callable[[], float]:
    """One optimiser step per call. x: (batch, 2, time, 18, 16); y: (batch, time, neurons)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    forward = torch.compile(model) if mode.compiled else model

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with mode.active():
            prediction = forward(x)
            loss = poisson_loss(prediction.float(), y[:, -prediction.shape[1] :]) + model.regularizer()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def make_inference(model: Model, mode: Mode, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Forward pass without gradients. x: (batch, 2, time, 18, 16) -> (batch, time - 30, neurons)."""
    forward = torch.compile(model) if mode.compiled else model

    def run() -> torch.Tensor:
        with torch.no_grad(), mode.active():
            return forward(x)

    return run


def make_stimulus_gradient(model: Model, mode: Mode, stimuli: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Gradient of one neuron's mean response w.r.t. the stimuli (batch, 2, time, 18, 16), same layout out."""
    forward = torch.compile(model) if mode.compiled else model

    def run() -> torch.Tensor:
        x = stimuli.clone().requires_grad_()
        with mode.active():
            objective = forward(x)[..., 0].float().mean()  # e.g. one neuron's mean response, as for an MEI
        (grad,) = torch.autograd.grad(objective, [x])
        return grad

    return run


def profile_step(step: Callable[[], object], rows: int = 12) -> list[dict[str, object]]:
    """Top operators by self CPU time in one training step (after a warm-up step)."""
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    conv_ops = ("conv", "mkldnn", "bmm", "mm", "matmul", "einsum")
    conv_total = sum(e.self_cpu_time_total for e in events if any(op in e.key for op in conv_ops))
    table: list[dict[str, object]] = [
        {"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total, "calls": e.count}
        for e in events[:rows]
    ]
    table.append({"op": "(convolution-related: conv*/mkldnn*/bmm/mm/matmul)", "self_ms": conv_total / 1e3,
                  "share": conv_total / total, "calls": 0})  # fmt: skip
    table.append({"op": "(total)", "self_ms": total / 1e3, "share": 1.0, "calls": 0})
    return table


# ---------------------------------------------------------------------------------------------- equality


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest absolute difference divided by the largest absolute reference value."""
    return float((got.float() - want.float()).abs().max() / want.float().abs().max())


def check_equality(model: Model, modes: list[Mode], x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, float]]:
    """Core features and parameter gradients of every mode against the reference computation.

    Compared in training mode, where BatchNorm normalises the conv outputs, so the comparison is not swamped by
    the readout bias as the model output of a freshly initialised model would be.
    """
    results: dict[str, dict[str, float]] = {}

    def features_and_grads(mode: Mode) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        clone = copy.deepcopy(model)
        with mode.active():
            core = torch.compile(clone.core) if mode.compiled else clone.core
            features = core(x)
            prediction = clone.readout(features)
            loss = poisson_loss(prediction.float(), y[:, -prediction.shape[1] :])
        grads = torch.autograd.grad(loss, list(clone.parameters()), allow_unused=True)
        grads_or_zero = [g.float() if g is not None else torch.zeros(()) for g in grads]
        return prediction.detach().float(), features.detach().float(), grads_or_zero

    ref_output, ref_features, ref_grads = features_and_grads(modes[0])
    for mode in modes[1:]:
        output, features, grads = features_and_grads(mode)
        pairs = [(g, r) for g, r in zip(grads, ref_grads) if r.norm() > 0]
        results[mode.name] = {
            "output_norm_rel_error": float((output - ref_output).norm() / ref_output.norm()),
            "features_max_rel_error": relative_error(features, ref_features),
            "features_norm_rel_error": float((features - ref_features).norm() / ref_features.norm()),
            "grad_norm_rel_error": max(float((g - r).norm() / r.norm()) for g, r in pairs),
        }
    return results


# ----------------------------------------------------------------------------------------------------- main


def main() -> None:
    """Parse arguments, run every measurement, write model.json and model.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--infer-batch", type=int, default=32)
    parser.add_argument("--stimuli", type=int, default=50)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to start)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_before = os.getloadavg()
    model = Model(args.neurons)
    modes = [Mode("reference", "dense"), Mode("ours", "auto"), Mode("ours_bf16", "auto", bf16=True)]
    if args.compile:
        modes.append(Mode("ours_compiled", "auto", compiled=True))

    x_train = torch.rand(args.train_batch, IN_SHAPE[0], args.frames, *IN_SHAPE[1:])
    y_train = torch.poisson(torch.ones(args.train_batch, args.frames, args.neurons))
    x_infer = torch.rand(args.infer_batch, IN_SHAPE[0], args.frames, *IN_SHAPE[1:])
    stimuli = torch.rand(args.stimuli, IN_SHAPE[0], args.frames, *IN_SHAPE[1:])

    equality = check_equality(model, modes, x_train[:32], y_train[:32])

    def copy_for(mode: Mode, train: bool, frozen: bool = False) -> Model:
        clone = copy.deepcopy(model)
        clone.train(train)
        clone.requires_grad_(not frozen)
        return clone

    train_steps = {m.name: make_train_step(copy_for(m, True), m, x_train, y_train) for m in modes}
    inference = {m.name: make_inference(copy_for(m, False), m, x_infer) for m in modes}
    stim_grad = {m.name: make_stimulus_gradient(copy_for(m, False, frozen=True), m, stimuli) for m in modes}

    timings = {
        "training_step": interleaved(train_steps, args.repeats),
        "inference": interleaved(inference, args.repeats),
        "stimulus_gradient": interleaved(stim_grad, args.repeats),
    }
    batch = {"training_step": args.train_batch, "inference": args.infer_batch, "stimulus_gradient": args.stimuli}
    flops = conv_flops_per_sample(args.frames)
    flops_key = {"training_step": "dense_training", "inference": "dense_forward",
                 "stimulus_gradient": "dense_stimulus_gradient"}  # fmt: skip
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for task, per_mode in timings.items():
        summary[task] = {}
        for name, runs in per_mode.items():
            # On a shared machine the best run is the least disturbed one; the median is kept for reference.
            best, median = min(runs), statistics.median(runs)
            samples_per_s = batch[task] / best
            summary[task][name] = {
                "best_s": best,
                "median_s": median,
                "samples_per_s": samples_per_s,
                "speedup_vs_reference": min(per_mode["reference"]) / best,
                "speedup_vs_reference_median": statistics.median(per_mode["reference"]) / median,
                "conv_gflops_per_s_reference_equivalent": samples_per_s * flops[flops_key[task]] / 1e9,
            }

    profiles = {m.name: profile_step(train_steps[m.name]) for m in modes if not m.compiled}
    choices = {
        f"input {key[0]}, kernel {key[1]} x {key[2]}, grad={key[7]}, input_grad={key[8]}, autocast={key[9]}": v
        for key, v in autotune_choices().items()
    }
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            # Other jobs on the machine slow every mode; interleaving keeps the ratios comparable.
            "load_average_1min_before_after": (load_before[0], os.getloadavg()[0]),
        },
        "model": {
            "core": model.core_name,
            "readout": model.readout_name,
            "channels": CHANNELS,
            "temporal_kernels": TEMPORAL,
            "spatial_kernels": SPATIAL,
            "neurons": args.neurons,
            "frames": args.frames,
        },
        "batches": batch,
        "flops_per_sample": flops,
        "peak": machine_peak_gflops(args.threads),
        "equality_vs_reference": equality,
        "results": summary,
        "autotune_choices": choices,
        "profile_training_step": profiles,
        "repeats": args.repeats,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / "model.md").write_text(render_markdown(result))
    print((args.out / "model.md").read_text())


def render_markdown(result: dict) -> str:
    """The human-readable report of a result dictionary (as stored in model.json)."""
    lines = ["# Model benchmark (Höfling low-res core + Gaussian-mask readout)", ""]
    machine, peak, flops = result["machine"], result["peak"], result["flops_per_sample"]
    load_before, load_after = machine["load_average_1min_before_after"]
    lines += [
        f"Machine: {machine['platform']}, {machine['cpu_count']} CPUs, {machine['threads']} threads, "
        f"torch {machine['torch']}, 1-min load average before/after {load_before:.1f}/{load_after:.1f}. "
        f"Core: {result['model']['core']}, readout: {result['model']['readout']}. "
        f"{result['repeats']} interleaved runs per mode after a warm-up; speed-ups from the best and the median run.",
        "",
        f"Peak: theoretical fp32 {peak['theoretical_fp32']:.0f} GFLOP/s, bf16 {peak['theoretical_bf16']:.0f} GFLOP/s; "
        f"best measured dense conv3d fp32 {peak['measured_conv3d_fp32']:.0f}, bf16 {peak['measured_conv3d_bf16']:.0f}"
        f" GFLOP/s. {peak['how']}",
        "",
        f"Convolution FLOPs per sample (dense formulation): forward {flops['dense_forward'] / 1e6:.0f} M, "
        f"training {flops['dense_training'] / 1e6:.0f} M, stimulus gradient "
        f"{flops['dense_stimulus_gradient'] / 1e6:.0f} M; the exact factorised forward needs "
        f"{flops['factorised_forward'] / 1e6:.0f} M.",
        "",
        "| task | mode | best s | median s | samples/s (best) | speed-up (best) | speed-up (median) | "
        "conv GFLOP/s (reference-equivalent, best) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, per_mode in result["results"].items():
        for name, r in per_mode.items():
            lines.append(
                f"| {task} | {name} | {r['best_s']:.3f} | {r['median_s']:.3f} | {r['samples_per_s']:.0f} | "
                f"{r['speedup_vs_reference']:.2f}x | {r['speedup_vs_reference_median']:.2f}x | "
                f"{r['conv_gflops_per_s_reference_equivalent']:.0f} |"
            )
    lines += ["", "Agreement with the reference computation (same weights and inputs, training mode):", ""]
    lines += [
        "| mode | model output: norm rel. error | core features: max abs error / max abs | "
        "core features: norm rel. error | parameter gradients: worst norm rel. error |",
        "|---|---|---|---|---|",
    ]
    for name, e in result["equality_vs_reference"].items():
        lines.append(
            f"| {name} | {e['output_norm_rel_error']:.1e} | {e['features_max_rel_error']:.1e} | "
            f"{e['features_norm_rel_error']:.1e} | {e['grad_norm_rel_error']:.1e} |"
        )
    lines += ["", "Paths chosen by the `auto` backend:", ""]
    lines += [f"- {key}: **{value}**" for key, value in result["autotune_choices"].items()]
    for name, rows in result["profile_training_step"].items():
        lines += ["", f"Profile of one training step, mode `{name}` (self CPU time):", ""]
        lines += ["| operator | self ms | share | calls |", "|---|---|---|---|"]
        lines += [f"| {r['op']} | {r['self_ms']:.1f} | {r['share']:.0%} | {r['calls']} |" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
