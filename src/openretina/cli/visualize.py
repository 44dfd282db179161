"""`openretina visualize`: MEIs of every readout neuron and every core channel, weight plots, and an index page.

Output folder layout (``FMT`` = ``--image-file-format``, videos as ``--video-format``)::

    index.html                                   links every image below
    output_neurons/<session>/<neuron>.FMT        MEI of each readout neuron (+ <neuron>.gif)
    <layer>/<channel>.FMT                        MEI of each channel of each core layer, e.g. core_features_layer0/
    weights_core/weights_layer_<i>/..., weights_readout/<session>/...   the model's own weight plots

Differences from the reference command:

* One batched :func:`~openretina.insilico.optimize_stimulus` call per session (stimulus ``b`` drives neuron ``b``)
  and per core layer (stimulus ``b`` drives channel ``b``), instead of one run per neuron; the best iterate of each
  stimulus is kept, and the number of iterations and the learning rate are options.
* Constraints do not assume the Höfling data: each stimulus is projected onto a norm ball whose radius gives a
  root-mean-square value of ``--stimulus-rms`` per pixel (0.2 gives a norm of 34 for the 50-frame Höfling
  stimulus, where the reference used 30), for any number of channels.
* The response window is the last 10 output frames (the highlighted stimulus frames follow from it) instead of a
  fixed window and a hard-coded highlight; readouts are never re-centred, so MEIs and weight plots show the same
  model; time axes use the frame rate in the model's ``data_info``.
* A progress bar, an ``index.html`` page, GIF videos that need no optional package, and figures at ``--dpi``.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from openretina.errors import DataFormatError
from openretina.insilico.stimulus_optimization import (
    ChangeNormJointlyClipRangeSeparately,
    IncreaseObjective,
    InnerNeuronVisualizationObjective,
    OptimizationStopper,
    ResponseReducer,
    SliceMeanReducer,
    optimize_stimulus,
    random_stimulus,
)
from openretina.insilico.tuning_analyses.model_runs import check_enough_frames, frame_rate_of, model_responses
from openretina.insilico.vector_field_analysis.stimuli import get_model_temporal_padding

__all__ = [
    "ChannelPerStimulusObjective",
    "add_parser_arguments",
    "load_model",
    "main",
    "visualize_model_neurons",
    "write_index_page",
]

RESPONSE_WINDOW_FRAMES = 10  # the objective averages the last 10 output frames, as the reference's window did
LAYER_NAME = re.compile(r"layer.*\d$")  # e.g. core_features_layer0: whole layers, not their conv/norm parts


def add_parser_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``openretina visualize`` (the reference's names, plus optimisation and output options)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model-path", help="registered model name (see `openretina models`), URL, checkpoint file or model folder"
    )
    source.add_argument(
        "--is-hoefling-ensemble-model", action="store_true", help="use a member of the legacy Höfling 2024 ensemble"
    )
    parser.add_argument("--save-folder", required=True, help="folder for the images and index.html (created)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--model-id", type=int, default=-1, help="ensemble member to use with --is-hoefling-ensemble-model (-1: last)"
    )
    parser.add_argument("--time-steps-stimulus", type=int, default=50, help="frames of each optimised stimulus")
    parser.add_argument("--image-file-format", default="jpg", help="image format, e.g. jpg, png, pdf")
    parser.add_argument("--iterations", type=int, default=50, help="gradient steps per batch of stimuli")
    parser.add_argument("--learning-rate", type=float, default=10.0, help="SGD learning rate")
    parser.add_argument(
        "--stimulus-rms", type=float, default=0.2, help="root-mean-square stimulus value allowed (norm constraint)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random starting stimuli")
    parser.add_argument("--dpi", type=int, default=100, help="resolution of the MEI figures")
    parser.add_argument("--video-format", choices=["gif", "mp4", "none"], default="gif", help="MEI videos")
    parser.add_argument("--skip-weight-plots", action="store_true", help="do not write the model's weight plots")


def load_model(
    path: str | None,
    device: str = "cuda",
    model_id: int = 0,
    do_center_readout: bool = False,
    is_hoefling_ensemble_model: bool = False,
) -> nn.Module:
    """A model by registered name, URL or local path, or member ``model_id`` of the legacy Höfling ensemble.

    ``do_center_readout`` moves every Gaussian readout mask of the ensemble member to the centre.
    """
    if path is not None:
        from openretina.hub.loading import load_core_readout_model

        return load_core_readout_model(path, device)
    if is_hoefling_ensemble_model:
        from openretina.hub.ensemble import Center, load_ensemble_model_from_remote

        center = Center([0.0, 0.0]) if do_center_readout else None
        _, ensemble = load_ensemble_model_from_remote(device=device, center_readout=center)
        return ensemble.members[model_id]
    raise ValueError("load_model: give a model path or name, or set is_hoefling_ensemble_model.")


class ChannelPerStimulusObjective(InnerNeuronVisualizationObjective):
    """Many inner-unit MEIs at once: stimulus ``b`` drives channel ``channels[b]`` of ``layer`` at its centre.

    Input: (batch, channels, time, height, width) with ``batch == len(channels)``. ``per_stimulus`` output: (batch,).
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        channels: Sequence[int],
        data_key: str | None,
        response_reducer: ResponseReducer,
    ) -> None:
        super().__init__(model, data_key, response_reducer)
        self.set_layer_channel(layer, channels)


@dataclass
class _Section:
    """One heading of the index page and the images (and videos) under it, relative to the save folder."""

    title: str
    images: list[Path] = field(default_factory=list)
    videos: list[Path | None] = field(default_factory=list)

    def add(self, root: Path, image: Path, video: Path | None = None) -> None:
        """Record ``image`` (and its ``video``), both stored relative to ``root``."""
        self.images.append(image.relative_to(root))
        self.videos.append(None if video is None else video.relative_to(root))


def write_index_page(save_folder: Path, sections: Sequence[_Section], model_name: str) -> Path:
    """Write ``save_folder/index.html``: one section per group, each image shown as a thumbnail that links to it."""
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>openretina visualize</title>',
        "<style>figure{display:inline-block;margin:4px;text-align:center}img{width:320px}</style></head><body>",
        f"<h1>Model visualisation: {html.escape(model_name)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for image, video in zip(section.images, section.videos):
            link = html.escape(image.as_posix(), quote=True)
            caption = html.escape(image.stem)
            if video is not None:
                caption += f' (<a href="{html.escape(video.as_posix(), quote=True)}">video</a>)'
            parts.append(
                f'<figure><a href="{link}"><img src="{link}" alt="{html.escape(image.as_posix())}"></a>'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    parts.append("</body></html>")
    index = save_folder / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def _frame_rate(model: nn.Module) -> float | None:
    """Stimulus frame rate in Hz from ``data_info`` (see :func:`frame_rate_of`), else None."""
    try:
        return frame_rate_of(model)
    except DataFormatError:
        return None


@dataclass(frozen=True)
class _Run:
    """Settings shared by every batch of MEIs."""

    model: nn.Module
    shape: tuple[int, ...]  # one stimulus, (1, C, T, H, W)
    optimizer: Any
    stopper: OptimizationStopper
    postprocessor: ChangeNormJointlyClipRangeSeparately
    seed: int
    frame_rate: float | None
    image_format: str
    video_format: str
    dpi: int

    def optimise(self, objective: Any, count: int) -> torch.Tensor:
        """Best stimuli ``(count, C, T, H, W)`` of one batched optimisation."""
        device = next(self.model.parameters()).device
        start = random_stimulus(self.shape, seeds=range(self.seed, self.seed + count)).to(device)
        result = optimize_stimulus(
            start.requires_grad_(True),
            self.optimizer,
            objective,
            self.stopper,
            stimulus_postprocessor=self.postprocessor,
            seed=self.seed,
        )
        return result.best_stimulus.detach().cpu()

    def save(
        self, stimulus: torch.Tensor, window: int, folder: Path, name: str, title: str, **plot: Any
    ) -> tuple[Path, Path | None]:
        """Write the MEI figure (and video) of one stimulus ``(C, T, H, W)``; return their paths.

        The last ``window`` stimulus frames, which end the optimised output frames, are highlighted.
        """
        import matplotlib.pyplot as plt

        from openretina.plotting import plot_mei, save_stimulus_to_gif, save_stimulus_to_mp4_video

        folder.mkdir(parents=True, exist_ok=True)
        time_steps = stimulus.shape[1]
        highlight = (time_steps - window, time_steps - 1)
        figure = plot_mei(stimulus, frame_rate=self.frame_rate, highlight_x_list=[highlight], title=title, **plot)
        image = folder / f"{name}.{self.image_format}"
        figure.savefig(image, dpi=self.dpi)
        plt.close(figure)
        video: Path | None = None
        if self.video_format != "none":
            writer = save_stimulus_to_gif if self.video_format == "gif" else save_stimulus_to_mp4_video
            video = writer(stimulus, folder / f"{name}.{self.video_format}", fps=self.frame_rate)
        return image, video


def _response_reducer(time_out: int) -> SliceMeanReducer:
    """Mean of the last (up to) 10 of ``time_out`` output frames."""
    length = min(RESPONSE_WINDOW_FRAMES, time_out)
    return SliceMeanReducer(axis=0, start=-length, length=length)


def _inner_layers(model: nn.Module, data_key: str, shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """Core layers whose output is (batch, channels, time, height, width), with that shape for one stimulus."""
    probe = InnerNeuronVisualizationObjective(model, data_key)
    layers: list[tuple[str, tuple[int, ...]]] = []
    for name in probe.layer_names():
        if not name.startswith("core") or not LAYER_NAME.search(name):
            continue
        output_shape = probe.get_output_shape_for_layer(name, shape)
        if output_shape is not None and len(output_shape) == 5:
            layers.append((name, output_shape))
    return layers


def _number_of_neurons(model: nn.Module, session: str, shape: tuple[int, ...]) -> int:
    return int(model_responses(model, torch.zeros(shape), session).shape[2])


def visualize_model_neurons(
    model_path: str | None,
    save_folder: str | Path,
    device: str = "cpu",
    model_id: int = -1,
    is_hoefling_ensemble_model: bool = False,
    image_file_format: str = "jpg",
    time_steps_stimulus: int = 50,
    *,
    iterations: int = 50,
    learning_rate: float = 10.0,
    stimulus_rms: float = 0.2,
    seed: int = 0,
    dpi: int = 100,
    video_format: str = "gif",
    skip_weight_plots: bool = False,
) -> Path:
    """Write MEIs of every readout neuron and core channel, the weight plots and ``index.html``; return its path.

    The model is a registered name, URL or path (``model_path``), or ensemble member ``model_id``. Each MEI is a
    ``(C, time_steps_stimulus, H, W)`` stimulus maximising the mean of the last 10 output frames (of the neuron, or
    of a channel's centre unit), found by SGD with the stimulus kept inside a norm ball (``stimulus_rms``).
    """
    from tqdm import tqdm

    model = load_model(model_path, device, model_id, False, is_hoefling_ensemble_model).eval()
    folder = Path(save_folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(model.stimulus_shape(time_steps_stimulus, num_batches=1))  # type: ignore[operator]
    channels, height, width = shape[1], shape[3], shape[4]
    check_enough_frames(model, time_steps_stimulus, "openretina visualize")
    time_out = time_steps_stimulus - get_model_temporal_padding(model, channels, height, width)
    run = _Run(
        model=model,
        shape=shape,
        optimizer=partial(torch.optim.SGD, lr=learning_rate),
        stopper=OptimizationStopper(max_iterations=iterations),
        postprocessor=ChangeNormJointlyClipRangeSeparately(
            [(None, None)], norm=stimulus_rms * math.sqrt(math.prod(shape))
        ),
        seed=seed,
        frame_rate=_frame_rate(model),
        image_format=image_file_format,
        video_format=video_format,
        dpi=dpi,
    )
    sessions: list[str] = list(model.readout_keys())  # type: ignore[operator]
    neurons = {session: _number_of_neurons(model, session, shape) for session in sessions}
    layers = _inner_layers(model, sessions[0], shape)
    total = sum(neurons.values()) + sum(layer_shape[1] for _, layer_shape in layers) + int(not skip_weight_plots)
    sections: list[_Section] = []
    with tqdm(total=total, desc="openretina visualize", unit="plot") as progress:
        for session, count in neurons.items():
            progress.set_postfix_str(f"optimising {count} MEIs of {session}")
            reducer = _response_reducer(time_out)
            objective = IncreaseObjective(model, list(range(count)), session, reducer, one_neuron_per_stimulus=True)
            section = _Section(f"Output neurons: {session}")
            for neuron, stimulus in enumerate(run.optimise(objective, count)):
                image, video = run.save(
                    stimulus, reducer.length, folder / "output_neurons" / session, str(neuron),
                    f"{session}, neuron {neuron}", model=model, neuron=neuron, data_key=session,
                )  # fmt: skip
                section.add(folder, image, video)
                progress.update()
            sections.append(section)
        for layer, layer_shape in layers:
            progress.set_postfix_str(f"optimising {layer_shape[1]} MEIs of {layer}")
            reducer = _response_reducer(layer_shape[2])
            inner = ChannelPerStimulusObjective(model, layer, range(layer_shape[1]), sessions[0], reducer)
            section = _Section(f"Core channels: {layer}")
            for channel, stimulus in enumerate(run.optimise(inner, layer_shape[1])):
                image, video = run.save(
                    stimulus, reducer.length, folder / layer, str(channel), f"{layer}, channel {channel}"
                )
                section.add(folder, image, video)
                progress.update()
            sections.append(section)
        if not skip_weight_plots:
            progress.set_postfix_str("weight plots")
            sections += _weight_plots(model, folder, image_file_format)
            progress.update()
    model_name = model_path if model_path is not None else f"Höfling 2024 ensemble member {model_id}"
    return write_index_page(folder, sections, model_name)


def _weight_plots(model: nn.Module, folder: Path, image_file_format: str) -> list[_Section]:
    """The model's own weight plots (``save_weight_visualizations``), one index section per written folder."""
    import matplotlib.pyplot as plt

    save = getattr(model, "save_weight_visualizations", None)
    if save is None:
        warnings.warn(f"{type(model).__name__} has no save_weight_visualizations; no weight plots.", stacklevel=3)
        return []
    save(str(folder), image_file_format)
    plt.close("all")
    sections: dict[Path, _Section] = {}
    for root in ("weights_core", "weights_readout"):
        for image in sorted((folder / root).rglob(f"*.{image_file_format}")):
            relative = image.parent.relative_to(folder)
            sections.setdefault(relative, _Section(f"Weights: {relative.as_posix()}")).add(folder, image)
    return list(sections.values())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``openretina visualize``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="openretina visualize",
        description="Optimise and plot the most exciting input of every neuron and core channel of a model.",
    )
    add_parser_arguments(parser)
    args, unknown = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if unknown:
        warnings.warn(f"openretina visualize: ignoring unknown arguments {unknown}", stacklevel=2)
    index = visualize_model_neurons(**vars(args))
    print(f"Wrote {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
