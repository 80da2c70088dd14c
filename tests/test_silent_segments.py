"""Silence and padding never become rows (issue 38, point 2): segments at or below the
silence threshold are dropped at build time, counted and listed in dataset.json (kept with
`keep_silent_segments`), and prediction pools real segments only. Real WAV files written
with soundfile, real extraction."""

import json

import numpy as np
import pytest
import soundfile as sf

from preprocessing import sources
from preprocessing.build import build_store, extract_file, feature_params
from preprocessing.silent_segments import silent_mask
from preprocessing.store import FeatureStore
from xval.config.loader import load_config
from xval.core.parameters import FeatureParams
from xval.inference.models import extract_features

SAMPLE_RATE = 16000


def _clip(hz, seconds=5.0, signal_seconds=None, seed=0):
    """A tone with a little noise; after `signal_seconds`, digital silence (ESC-50's
    padding)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    y = 0.3 * np.sin(2 * np.pi * hz * t) + 0.01 * np.random.default_rng(seed).standard_normal(
        len(t))
    if signal_seconds is not None:
        y[int(signal_seconds * SAMPLE_RATE):] = 0.0
    return y.astype(np.float32)


@pytest.fixture
def padded(tmp_path):
    """Two classes of 5 s clips; in each class, two of the four clips hold 2 s of sound and
    3 s of digital silence, and one short clip lasts 0.3 s."""
    root = tmp_path / "audio"
    for label, hz in (("low", 400.0), ("high", 2500.0)):
        (root / label).mkdir(parents=True)
        for k in range(4):
            sf.write(root / label / f"{label}{k}.wav",
                     _clip(hz + 20 * k, signal_seconds=2.0 if k < 2 else None, seed=k),
                     SAMPLE_RATE)
        sf.write(root / label / f"{label}short.wav", _clip(hz, seconds=0.3, seed=9),
                 SAMPLE_RATE)
    return root


def _params(**overrides):
    return feature_params(load_config(None).features, sample_rate=SAMPLE_RATE,
                          segment_seconds=1.0, segment_hop_seconds=0.5, **overrides)


def _build(root, out, **overrides):
    rows, skipped = sources.folder_source(root)
    return build_store(rows, out, params=_params(**overrides), workers=1, skipped=skipped,
                       progress=False)


def test_build_store_drops_silent_and_padding_segments(padded, tmp_path):
    store, summary = _build(padded, tmp_path / "store")
    # 5 s in 1 s segments every 0.5 s: 9 per clip. A clip with 2 s of sound loses the four
    # segments that start at 2.5 s or later (the one at 2.0 s holds the last frame of sound).
    padded_clips, full_clips, short_clips = 4, 4, 2
    assert summary["rows"] == padded_clips * 5 + full_clips * 9 + short_clips
    assert summary["silent_segments"] == padded_clips * 4 and summary["silent_dropped"]
    meta = store.meta
    late = meta[meta["clip"].str.match(r"\w+/\w+[01]\.wav") & (meta["start"] > 2.0)]
    assert late.empty, late
    # No row is all silence: every row's features vary (a silent row is the floor value).
    flat = np.asarray(store.features).reshape(len(store), -1).std(axis=1) == 0
    assert not flat.any()
    # The short clip (padded up to one segment) keeps its one row.
    assert (meta["clip"] == "low/lowshort.wav").sum() == 1
    record = json.loads((store.path / "dataset.json").read_text())["silent_segments"]
    assert record["count"] == 16 and record["dropped"] is True
    assert record["silence_threshold_db"] == -90.0
    listed = {(s["source"].split("/")[-1], s["start"]) for s in record["segments"]}
    assert listed == {(f"{label}{k}.wav", start) for label in ("low", "high") for k in (0, 1)
                      for start in (2.5, 3.0, 3.5, 4.0)}
    assert store.info.silent_segments["count"] == 16


def test_build_store_keeps_silent_segments_when_asked(padded, tmp_path):
    store, summary = _build(padded, tmp_path / "kept", keep_silent_segments=True)
    assert summary["rows"] == 8 * 9 + 2 and summary["silent_segments"] == 16
    record = store.info.silent_segments
    assert record["count"] == 16 and record["dropped"] is False
    flat = np.asarray(store.features).reshape(len(store), -1).std(axis=1) == 0
    assert flat.sum() == 16  # the silent segments, kept: rows of nothing


def test_silent_mask_measures_the_file_as_decoded():
    """Peak normalisation does not lift a quiet stretch over the threshold: the level is
    measured at the decoded scale (`scale`)."""
    params = _params()
    y = _clip(1000.0, seconds=3.0)
    y[SAMPLE_RATE:] *= 1e-6  # -130 dBFS after the first second
    starts = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert silent_mask(y, starts, params).tolist() == [False, False, False, True, True]
    peak = float(np.max(np.abs(y)))
    assert silent_mask(y / peak, starts, params, scale=peak).tolist() == \
        [False, False, False, True, True]
    every = np.zeros(SAMPLE_RATE * 2, np.float32)
    every[5] = 1e-9
    assert silent_mask(every, [0.0, 1.0], params).tolist() == [False, True]  # loudest kept


def test_extract_features_pools_real_segments_only(padded):
    """What predict, evaluate and embed average over a clip: its real segments (as the store
    was built), every window for a detector."""
    path = padded / "low" / "low0.wav"
    every = extract_file(path, _params())
    assert len(every["starts"]) == 9 and sum(every["silent"]) == 4
    real = extract_features([path], _params())[0]
    assert real["starts"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert real["features"].shape[0] == 5
    kept = extract_features([path], _params(keep_silent_segments=True))[0]
    assert kept["features"].shape[0] == 9
    assert extract_features([path], _params(), real_only=False)[0]["features"].shape[0] == 9


def test_store_of_silent_segments_reads_back(padded, tmp_path):
    """The record is part of the store's typed description and survives a reopen."""
    store, _ = _build(padded, tmp_path / "store")
    again = FeatureStore(store.path)
    assert again.info.silent_segments == store.info.silent_segments


def test_no_signal_check_sees_a_short_sound_in_a_store_that_hops_by_blocks():
    """An encoder's store hops by whole blocks (aisfx: 51,200 samples with 2,048-sample
    frames): the level is still analysed every quarter frame, so a quiet 0.2 s footstep in
    the middle of a 0.7 s file is signal, in the file and in its segment (found by a
    fresh-clone `init` on environmental sounds: 9 such files vanished from the aisfx store
    only, and init refused the two stores as holding other items)."""
    from preprocessing.level import no_signal_reason

    rate = 44100
    params = {"sample_rate": rate, "n_fft": 2048, "hop_length": 51200, "fmin": 0.0,
              "fmax": None, "feature": "pretrained", "segment_seconds": 2.5,
              "silence_threshold_db": -90.0}
    y = np.zeros(int(0.73 * rate), np.float32)
    t = np.arange(int(0.2 * rate)) / rate
    y[int(0.3 * rate):int(0.3 * rate) + len(t)] = 0.015 * np.sin(2 * np.pi * 500 * t)
    params = FeatureParams.of(params)
    assert no_signal_reason(y, params) is None
    assert silent_mask(y, [0.0], params).tolist() == [False]
