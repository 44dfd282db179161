"""NWB import/export: synthetic round trip, hand-built files (spikes, calcium traces, external movie), bad input."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from openretina.data_io.synthetic import SyntheticRetinaConfig, make_synthetic_retina
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError

pynwb = pytest.importorskip("pynwb")

from openretina.data_io.nwb import export_nwb, load_nwb_session, load_nwb_sessions  # noqa: E402

RATE = 10.0  # Hz: frame k of a series starting at t0 is shown at t0 + k / 10


def new_file() -> Any:
    return pynwb.NWBFile(
        session_description="test", identifier="test", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc)
    )


def add_movie(nwbfile: Any, name: str, frames: np.ndarray, start: float = 0.0) -> None:
    nwbfile.add_stimulus(pynwb.image.ImageSeries(name=name, data=frames, unit="a.u.", starting_time=start, rate=RATE))


def save(nwbfile: Any, path: Path) -> Path:
    with pynwb.NWBHDF5IO(str(path), mode="w") as io:
        io.write(nwbfile)
    return path


def movie(n_frames: int, offset: float = 0.0, channels: int | None = None) -> np.ndarray:
    """Frames whose pixel values encode the frame index: (T, 3, 2) or (T, 3, 2, C)."""
    shape = (n_frames, 3, 2) if channels is None else (n_frames, 3, 2, channels)
    values = np.arange(n_frames, dtype=np.float32).reshape(-1, *([1] * (len(shape) - 1))) + offset
    return np.broadcast_to(values, shape).copy()


# ------------------------------------------------------------------ round trip of the synthetic retina


@pytest.fixture(scope="module")
def synthetic() -> Any:
    config = SyntheticRetinaConfig(
        height=6,
        width=5,
        clip_length=20,
        num_natural_clips=3,
        num_white_noise_clips=1,
        num_test_clips=1,
        num_test_repeats=3,
        cells_per_session=4,
    )
    return make_synthetic_retina(config, seed=3)


def test_synthetic_round_trip_preserves_data(synthetic: Any, tmp_path: Path) -> None:
    paths = export_nwb(synthetic.movies, synthetic.responses, tmp_path, frame_rate=synthetic.config.frame_rate)
    assert sorted(paths) == ["session_0", "session_1"]
    movies, responses = load_nwb_sessions(tmp_path)
    assert sorted(movies) == sorted(responses) == ["session_0", "session_1"]
    for session, original in synthetic.responses.items():
        loaded, original_movie, loaded_movie = responses[session], synthetic.movies[session], movies[session]
        np.testing.assert_array_equal(loaded_movie.train, original_movie.train)
        np.testing.assert_array_equal(loaded_movie.test_dict["test"], original_movie.test_dict["test"])
        assert loaded_movie.norm_mean == original_movie.norm_mean and loaded_movie.norm_std == original_movie.norm_std
        assert loaded_movie.stim_id == loaded.stim_id == "synthetic"
        np.testing.assert_allclose(loaded.train, original.train, rtol=1e-6, atol=1e-6)
        by_trial = loaded.test_by_trial_dict["test"]
        assert by_trial.shape == (3, 4, 20)
        np.testing.assert_allclose(by_trial, original.test_by_trial_dict["test"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(loaded.test_dict["test"], original.test_dict["test"], rtol=1e-6, atol=1e-6)
        for key, value in original.session_kwargs.items():
            np.testing.assert_array_equal(np.asarray(loaded.session_kwargs[key]), np.asarray(value), err_msg=key)
        np.testing.assert_array_equal(loaded.session_kwargs["roi_ids"], np.arange(4))
        assert loaded.session_kwargs["nwb_responses"] == "acquisition/responses"
        loaded.check_matching_stimulus(loaded_movie)


def test_load_nwb_sessions_accepts_a_list_and_rejects_an_empty_directory(synthetic: Any, tmp_path: Path) -> None:
    paths = export_nwb(synthetic.movies, synthetic.responses, tmp_path / "out", frame_rate=30.0)
    movies, _ = load_nwb_sessions([paths["session_1"]])
    assert list(movies) == ["session_1"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileNotFoundError, match=r"no \.nwb files"):
        load_nwb_sessions(tmp_path / "empty")


def test_export_rejects_session_kwargs_that_nwb_cannot_hold(synthetic: Any, tmp_path: Path) -> None:
    responses = synthetic.responses["session_0"]
    bad = type(responses)(
        responses.train,
        test_dict=responses.test_dict,
        stim_id=responses.stim_id,
        session_kwargs={"nested": {"a": 1}},
    )
    with pytest.raises(DataFormatError, match=r"session 'session_0': session_kwargs\['nested'\]"):
        export_nwb(synthetic.movies, {"session_0": bad}, tmp_path, frame_rate=30.0)


# ------------------------------------------------------------------ spikes from a Units table, binned on frames


def spike_file(path: Path) -> Path:
    """Train movie of 5 frames at t = 0..0.4 s, test movie of 3 frames shown at 1.0 s and 2.0 s."""
    nwbfile = new_file()
    add_movie(nwbfile, "train", movie(5, channels=2))
    add_movie(nwbfile, "test", movie(3, offset=100.0, channels=2), start=1.0)
    nwbfile.add_trial_column(name="stimulus_name", description="stimulus series")
    nwbfile.add_trial(start_time=0.0, stop_time=0.5, stimulus_name="train")
    nwbfile.add_trial(start_time=1.0, stop_time=1.3, stimulus_name="test")
    nwbfile.add_trial(start_time=2.0, stop_time=2.3, stimulus_name="test")
    # unit 0: 0.00 and 0.05 in frame 0, 0.1 (bin edge) in frame 1, 0.45 in the last train frame (bin 0.4-0.5),
    #   0.55 after the train movie (dropped), 1.25 in test frame 2 of trial 0, 2.0 in frame 0 of trial 1.
    nwbfile.add_unit(spike_times=[0.0, 0.05, 0.1, 0.45, 0.55, 1.25, 2.0])
    # unit 1: 0.31 in frame 3, 1.1 and 1.15 in test frame 1 of trial 0, 2.29 in frame 2 of trial 1.
    nwbfile.add_unit(spike_times=[0.31, 1.1, 1.15, 2.29])
    return save(nwbfile, path)


def test_units_spike_times_are_counted_per_frame(tmp_path: Path) -> None:
    movies, responses = load_nwb_session(spike_file(tmp_path / "spikes.nwb"))
    expected_train = np.array([[2, 1, 0, 0, 1], [0, 0, 0, 1, 0]], dtype=np.float32)
    np.testing.assert_array_equal(responses.train, expected_train)
    expected_trials = np.array([[[0, 0, 1], [0, 2, 0]], [[1, 0, 0], [0, 0, 1]]], dtype=np.float32)
    np.testing.assert_array_equal(responses.test_by_trial_dict["test"], expected_trials)
    np.testing.assert_array_equal(responses.test_dict["test"], expected_trials.mean(axis=0))
    # Movies become (C, T, H, W); pixel values encode the frame index.
    assert movies.train.shape == (2, 5, 3, 2) and movies.train.dtype == np.float32
    np.testing.assert_array_equal(movies.train[1, :, 2, 1], np.arange(5))
    np.testing.assert_array_equal(movies.test_dict["test"][0, :, 0, 0], [100, 101, 102])
    assert responses.session_kwargs["frame_rate"] == pytest.approx(RATE)
    assert responses.session_kwargs["nwb_responses"] == "units"
    assert movies.norm_mean is None and movies.stim_id is None


def test_test_names_override_the_repeat_rule(tmp_path: Path) -> None:
    path = spike_file(tmp_path / "spikes.nwb")
    with pytest.raises(DataFormatError, match=r"spikes.nwb.*test_names \['chirp'\] are never presented"):
        load_nwb_session(path, test_names=["chirp"])
    with pytest.raises(DataFormatError, match="no training presentations"):
        load_nwb_session(path, test_names=["train", "test"])
    with pytest.raises(DataFormatError, match=r"spikes.nwb.*no intervals table 'stimuli'"):
        load_nwb_session(path, intervals="stimuli")


# ------------------------------------------------------------------ calcium traces, one long stimulus stream


def trace_file(path: Path, trace_start: float = -0.05) -> Path:
    """One stimulus series of 12 frames (t = 0..1.1 s): frames 0-5 training, frames 6-8 and 9-11 two repeats of
    the test clip (marked with an ``is_test`` column). Traces sampled at 20 Hz, half a frame offset: value of
    ROI n at time t is ``10 t + n``, so linear interpolation at the frame onsets is exact."""
    nwbfile = new_file()
    frames = movie(12)
    frames[9:] = frames[6:9]
    add_movie(nwbfile, "stream", frames)
    nwbfile.add_trial_column(name="is_test", description="test repeat")
    nwbfile.add_trial(start_time=0.0, stop_time=0.6, is_test=False)
    nwbfile.add_trial(start_time=0.6, stop_time=0.9, is_test=True)
    nwbfile.add_trial(start_time=0.9, stop_time=1.2, is_test=True)
    device = nwbfile.create_device(name="microscope")
    plane = nwbfile.create_imaging_plane(
        name="plane",
        optical_channel=pynwb.ophys.OpticalChannel(name="green", description="green", emission_lambda=520.0),
        description="plane",
        device=device,
        excitation_lambda=930.0,
        indicator="GCaMP6f",
        location="retina",
    )
    segmentation = pynwb.ophys.ImageSegmentation()
    rois = segmentation.create_plane_segmentation(name="rois", description="rois", imaging_plane=plane)
    for index in range(3):
        mask = np.zeros((3, 2))
        mask[index % 3, 0] = 1
        rois.add_roi(image_mask=mask, id=10 + index)
    module = nwbfile.create_processing_module(name="ophys", description="ophys")
    module.add(segmentation)
    times = trace_start + np.arange(26) * 0.05
    data = 10 * times[:, None] + np.arange(3)[None, :]
    dff = pynwb.ophys.DfOverF()
    module.add(dff)
    region = rois.create_roi_table_region(region=[0, 1, 2], description="all rois")
    dff.create_roi_response_series(name="traces", data=data, rois=region, unit="dF/F", timestamps=times)
    module.add(pynwb.TimeSeries(name="running_speed", data=np.zeros(26), unit="m/s", timestamps=times))
    return save(nwbfile, path)


def test_traces_are_interpolated_at_frame_onsets(tmp_path: Path) -> None:
    movies, responses = load_nwb_session(trace_file(tmp_path / "traces.nwb"), responses="DfOverF/traces")
    frame_times = np.arange(12) / RATE
    expected = 10 * frame_times[None, :] + np.arange(3)[:, None]
    np.testing.assert_allclose(responses.train, expected[:, :6], rtol=1e-6)
    np.testing.assert_allclose(
        responses.test_by_trial_dict["stream"], np.stack([expected[:, 6:9], expected[:, 9:]]), rtol=1e-6
    )
    np.testing.assert_array_equal(movies.train[0, :, 0, 0], np.arange(6))
    np.testing.assert_array_equal(movies.test_dict["stream"][0, :, 0, 0], [6, 7, 8])
    np.testing.assert_array_equal(responses.session_kwargs["roi_ids"], [10, 11, 12])
    assert responses.session_kwargs["nwb_responses"] == "processing/ophys/DfOverF/traces"


def test_several_candidate_series_need_a_choice(tmp_path: Path) -> None:
    path = trace_file(tmp_path / "traces.nwb")
    with pytest.raises(DataFormatError, match=r"traces.nwb.*0 response objects match 'aces'.*ophys/running_speed"):
        load_nwb_session(path, responses="aces")  # a suffix of a name is not a match
    # Without a choice the only RoiResponseSeries is taken, not the running speed.
    _, responses = load_nwb_session(path)
    assert responses.session_kwargs["nwb_responses"].endswith("DfOverF/traces")


def test_traces_that_start_after_the_stimulus_are_rejected(tmp_path: Path) -> None:
    path = trace_file(tmp_path / "late.nwb", trace_start=0.02)
    with pytest.raises(DataShapeError, match=r"late.nwb.*recorded from 0.02 s.*no extrapolation"):
        load_nwb_session(path)


# ------------------------------------------------------------------ external movie, no trials table


def test_external_npy_movie_and_series_without_trials(tmp_path: Path) -> None:
    np.save(tmp_path / "train.npy", movie(4))
    nwbfile = new_file()
    nwbfile.add_stimulus(
        pynwb.image.ImageSeries(
            name="train",
            external_file=["train.npy"],
            starting_frame=[0],
            num_samples=4,
            format="external",
            rate=RATE,
            unit="a.u.",
        )
    )
    add_movie(nwbfile, "flash", movie(2, offset=50.0), start=1.0)
    nwbfile.add_acquisition(pynwb.TimeSeries(name="rates", data=np.arange(24.0).reshape(12, 2), unit="Hz", rate=RATE))
    path = save(nwbfile, tmp_path / "external.nwb")
    with pytest.raises(DataFormatError, match=r"no trials table.*test_names"):
        load_nwb_session(path)
    movies, responses = load_nwb_session(path, test_names=["flash"])
    np.testing.assert_array_equal(movies.train[0, :, 1, 1], np.arange(4))
    np.testing.assert_array_equal(responses.train, np.arange(24.0).reshape(12, 2).T[:, :4])
    np.testing.assert_allclose(responses.test_by_trial_dict["flash"], np.arange(24.0).reshape(12, 2).T[None, :, 10:12])
    (tmp_path / "train.npy").unlink()
    with pytest.raises(DataFileNotFoundError, match=r"stimulus 'train': external movie .*train.npy"):
        load_nwb_session(path, test_names=["flash"])


# ------------------------------------------------------------------ bad input


def test_missing_file_and_missing_stimulus(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"absent\.nwb"):
        load_nwb_session(tmp_path / "absent.nwb")
    nwbfile = new_file()
    nwbfile.add_unit(spike_times=[0.1])
    path = save(nwbfile, tmp_path / "no_stimulus.nwb")
    with pytest.raises(DataFormatError, match=r"no_stimulus.nwb.*no ImageSeries/OpticalSeries in nwbfile.stimulus"):
        load_nwb_session(path)
    with pytest.raises(DataFormatError, match=r"stimulus series \['trian'\] not found"):
        load_nwb_session(spike_file(tmp_path / "spikes.nwb"), stimulus=["trian"])


def test_trials_of_different_length_are_rejected(tmp_path: Path) -> None:
    nwbfile = new_file()
    add_movie(nwbfile, "stream", movie(10))
    nwbfile.add_trial_column(name="is_test", description="test repeat")
    nwbfile.add_trial(start_time=0.0, stop_time=0.4, is_test=False)
    nwbfile.add_trial(start_time=0.4, stop_time=0.7, is_test=True)
    nwbfile.add_trial(start_time=0.7, stop_time=0.9, is_test=True)
    nwbfile.add_unit(spike_times=[0.1])
    path = save(nwbfile, tmp_path / "ragged.nwb")
    with pytest.raises(DataShapeError, match=r"ragged.nwb.*test stimulus 'stream'.*\[3, 2\]"):
        load_nwb_session(path)


@pytest.mark.filterwarnings("ignore:.*Length of data does not match length of timestamps")  # pynwb's own hint
def test_transposed_traces_get_a_hint(tmp_path: Path) -> None:
    nwbfile = new_file()
    add_movie(nwbfile, "train", movie(4))
    nwbfile.add_acquisition(
        pynwb.TimeSeries(name="traces", data=np.zeros((4, 3)), unit="a.u.", timestamps=np.arange(4) / RATE)
    )
    path = save(nwbfile, tmp_path / "transposed.nwb")
    # pynwb refuses to write (neurons, time) data, so transpose it in place as another tool might have stored it.
    with h5py.File(path, "r+") as file:
        del file["acquisition/traces/data"]
        file["acquisition/traces/data"] = np.zeros((3, 4))
    with pytest.raises(DataShapeError, match=r"responses 'acquisition/traces'.*transposed"):
        load_nwb_session(path, test_names=["train"])


# ------------------------------------------------------------------ docs/nwb.md examples run and print what they say

DOC = Path(__file__).resolve().parents[2] / "docs" / "nwb.md"


def test_docs_examples_print_what_their_comments_say(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        expected = [line.split("#", 1)[1].strip() for line in block.splitlines() if line.startswith("print(")]
        exec(compile(block, str(DOC), "exec"), {})
        assert capsys.readouterr().out.splitlines() == expected
