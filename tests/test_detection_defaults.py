"""The detection defaults (issue 44): the windows and frames `python -m preprocessing
detection` gives a store when nothing names them, and the default detector training a fold
of such a store end to end (real Keras, a few synthetic seconds)."""

import json

import pandas as pd
import pytest

from preprocessing.store import FeatureStore
from tests.test_synth_events import fsdd, make  # noqa: F401  (the fake FSDD fixture)
from xval import Output, tasks
from xval.cli.preprocess import main as preprocessing_main


@pytest.fixture
def recordings(fsdd, tmp_path):  # noqa: F811
    """Six 12 s recordings of digit tones in noise, 3 items (alice, bob and carol)."""
    raw = tmp_path / "raw"
    make(fsdd, raw, files_per_speaker=3, seconds=12.0, events_min=3, events_max=5,
         snr_min=10, snr_max=20)
    items = pd.read_csv(raw / "items.csv")
    items.loc[items["file"].str.endswith("_002.wav"), "item"] = "carol"
    items.to_csv(raw / "items.csv", index=False)
    return raw


def _build(raw, out, *flags, config=None):
    extra = ["--config", str(config)] if config else []
    code = preprocessing_main(["detection", str(raw), "--annotations",
                               str(raw / "annotations.csv"), "--items", str(raw / "items.csv"),
                               "--out", str(out), "--no-progress", "-q", "--workers", "1",
                               *extra, *flags])
    assert code == 0
    return FeatureStore(out)


def _features(store):
    params = json.loads((store.path / "dataset.json").read_text())["feature_params"]
    return {k: params[k] for k in ("sample_rate", "hop_length", "n_fft", "segment_seconds",
                                   "segment_hop_seconds")}


def test_detection_store_defaults_are_5_s_windows_of_20_ms_frames(recordings, tmp_path):
    store = _build(recordings, tmp_path / "data" / "sed")
    assert _features(store) == {"sample_rate": 16000, "hop_length": 320, "n_fft": 1024,
                                "segment_seconds": 5.0, "segment_hop_seconds": 5.0}
    assert store.features.shape[1:] == (251, 64)  # 5 s of 20 ms frames, 64 mel bands
    # 12 s in three 5 s windows: two apart, the last one ending with the recording.
    assert store.meta.groupby("clip")["start"].apply(list).tolist() == [[0.0, 5.0, 7.0]] * 6
    assert store.info.frame_seconds == pytest.approx(0.02)
    # At another rate the same time grid: 20 ms frames, FFTs of 64 ms.
    eight = _build(recordings, tmp_path / "data" / "sed8k", "--sample-rate", "8000")
    assert _features(eight) == {"sample_rate": 8000, "hop_length": 160, "n_fft": 512,
                                "segment_seconds": 5.0, "segment_hop_seconds": 5.0}
    assert tasks.get("detection").feature_defaults(44100)["hop_length"] == 882


def test_named_windows_and_frames_win_over_the_detection_defaults(recordings, tmp_path):
    """A flag wins, and so does a value config.ini names; what neither names keeps the
    detection default (the hop of a named window length: that length, no overlap)."""
    config = tmp_path / "config.ini"  # only what differs, as `init` writes it
    config.write_text(f"[paths]\ndata_dir = {tmp_path / 'data'}\n"
                      "[features]\nsegment_seconds = 2\n")
    store = _build(recordings, tmp_path / "data" / "sed", "--hop-length", "160",
                   config=config)
    assert _features(store) == {"sample_rate": 16000, "hop_length": 160, "n_fft": 1024,
                                "segment_seconds": 2.0, "segment_hop_seconds": 2.0}
    flags = _build(recordings, tmp_path / "data" / "sed4", "--segment-seconds", "4",
                   "--segment-hop-seconds", "2", "--n-fft", "512")
    assert _features(flags) == {"sample_rate": 16000, "hop_length": 320, "n_fft": 512,
                                "segment_seconds": 4.0, "segment_hop_seconds": 2.0}
    # The shared defaults of every other store are not touched.
    assert tasks.get("classification").feature_defaults(16000) == {}


@pytest.mark.slow
def test_the_default_detector_trains_a_default_store_end_to_end(recordings, tmp_path):
    """The detection defaults as a user gets them: a store built with nothing named, an
    instance naming only `fast_detector` (epochs cut to 3 here), every fold trained by Keras,
    scored per recording, saved; the saved model takes a window's frames and gives a logit
    per frame and class, constant over each block of `time_pool` frames."""
    import keras
    import numpy as np

    from xval import Experiment
    from xval.config.loader import load_config

    store = _build(recordings, tmp_path / "data" / "sed")
    config_path = tmp_path / "config.ini"
    config_path.write_text(f"[paths]\ndata_dir = {tmp_path / 'data'}\n"
                           f"results_dir = {tmp_path / 'results'}\n[backend]\nbackend = torch\n")
    config = load_config(config_path)
    exp = Experiment(description="default detector", dataset="sed", number=1, num_folds=3,
                     task_type="detection")
    exp[1] = {"architecture": "fast_detector", "epochs": 3}
    exp.run(config=config, output=Output(out=lambda *a: None))
    folder = tmp_path / "results" / "sed" / "experiment_1" / "instance_1"
    params = json.loads((folder / "params.json").read_text())["params"]
    assert {k: params[k] for k in ("time_pool", "rnn_layers", "filters", "learning_rate")} \
        == {"time_pool": 4, "rnn_layers": 2, "filters": 16, "learning_rate": 0.003}
    for i in range(3):
        fold = json.loads((folder / f"fold_{i}.json").read_text())
        assert fold["status"] == "ok" and fold["epochs_run"] == 3
        assert fold["postprocessing"]["split"] == "val"
        assert fold["history"]["loss"][-1] < fold["history"]["loss"][0]  # it learns
        # Scored per recording (None: no event found after 3 epochs, F1 undefined).
        assert {"event_f1", "psds1", "frame_f1"} <= set(fold["clip_metrics"]["test"])
    model = keras.saving.load_model(folder / "fold_0.keras", compile=False)
    out = np.asarray(model.predict(np.asarray(store.features[:2]), verbose=0))
    assert out.shape == (2, 251, 1) and np.isfinite(out).all()
    blocks = out[:, :248].reshape(2, 62, 4, 1)
    np.testing.assert_allclose(blocks, np.repeat(blocks[:, :, :1], 4, axis=2), rtol=1e-6)
