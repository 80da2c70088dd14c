"""Training options for generalisation (issue 13, item 2): SpecAugment masks, mixup, label
smoothing, learning-rate warm-up, min_epochs, frequency warping and per-row normalisation."""

import json

import keras
import numpy as np
import pytest

from architectures import FrequencyWarp, RowNormalization, SpecAugment, TimeWarp
from tests.conftest import ROOT, resolve, run_script, training_defaults, write_script
from tests.test_training import job, run_fold
from xval import Output
from xval.core.errors import ParameterError
from xval.training.batches import make_batches
from xval.training.model import build_model, make_optimizer

DEFAULTS = training_defaults()
SHAPE = (20, 10)
SPEC_SMALL = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
              "comment_2": "", "filters": 4, "batch_size": 16}


def _params(**extra):
    spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
            "comment_2": "", "filters": 4, **extra}
    return resolve(1, spec, training_defaults=DEFAULTS)


def test_spec_augment_masks_bands_in_training_only():
    layer = SpecAugment(time_masks=2, time_mask_fraction=0.25, freq_masks=1,
                        freq_mask_fraction=0.3, seed=3)
    x = np.ones((64, *SHAPE), dtype="float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)  # default: off
    masked = keras.ops.convert_to_numpy(layer(x, training=True))
    assert set(np.unique(masked)) <= {0.0, 1.0}
    frames_masked = (masked == 0).all(axis=2).sum(axis=1)  # whole frames set to zero
    bins_masked = (masked == 0).all(axis=1).sum(axis=1)  # whole bins set to zero
    assert frames_masked.max() <= 2 * 5  # at most 2 masks of at most 25% of 20 frames
    assert bins_masked.max() <= 3  # one mask of at most 30% of 10 bins
    assert frames_masked.sum() > 0 and bins_masked.sum() > 0
    # Every zero lies in a masked frame or a masked bin: bands, not scattered values.
    zero = masked == 0
    explained = (zero.all(axis=2)[:, :, None]) | (zero.all(axis=1)[:, None, :])
    assert (zero == explained).all()
    # Different rows get different masks.
    assert len({tuple(r) for r in (masked == 0).all(axis=2).astype(int)}) > 1


def test_spec_augment_rejects_bad_arguments():
    with pytest.raises(ValueError, match="time_masks=-1: expected an integer >= 0"):
        SpecAugment(time_masks=-1)
    with pytest.raises(ValueError, match="freq_mask_fraction=1.5: expected a fraction"):
        SpecAugment(freq_mask_fraction=1.5)


def test_spec_augment_is_saved_with_the_model_and_inactive_at_inference(tmp_path, rng):
    params = _params(time_masks=2, freq_masks=2, time_mask_fraction=0.3)
    model = build_model(params, SHAPE, 3, "classification", np.zeros(10, "float32"),
                        np.ones(10, "float32"))
    assert "spec_augment" in [layer.name for layer in model.layers]
    x = rng.normal(size=(8, *SHAPE)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    layer = loaded.get_layer("spec_augment")
    assert (layer.time_masks, layer.time_mask_fraction) == (2, 0.3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    # Without masks, no layer is added.
    plain = build_model(_params(), SHAPE, 3, "classification", np.zeros(10, "float32"),
                        np.ones(10, "float32"))
    assert "spec_augment" not in [layer.name for layer in plain.layers]


def test_frequency_warp_moves_each_row_by_a_vtlp_factor_in_training_only():
    layer = FrequencyWarp(max_warp=0.2, steps=5, seed=5)
    np.testing.assert_allclose(layer.factors(), [0.8, 0.9, 1.0, 1.1, 1.2])
    bins = np.arange(SHAPE[1], dtype="float32")
    x = np.broadcast_to(bins, (64, *SHAPE)).copy()  # every frame: value = bin index
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)  # default: off
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    warped = keras.ops.convert_to_numpy(layer(x, training=True))
    # One factor per row, the same for every frame of the row.
    np.testing.assert_allclose(warped, warped[:, :1, :].repeat(SHAPE[0], axis=1), atol=1e-5)
    # Evenly spaced bins: below the boundary (0.8 * top / a for a > 1), bin j reads the input
    # at j / a; the top bin stays where it is. a = 1.2: boundary 6, bins 0..7 read j / 1.2.
    rows = {round(float(r[0, 1]), 3): r[0] for r in warped}
    assert set(rows) == {round(1 / a, 3) for a in (0.8, 0.9, 1.0, 1.1, 1.2)}
    np.testing.assert_allclose(rows[round(1 / 1.2, 3)][:8], bins[:8] / 1.2, atol=1e-5)
    np.testing.assert_allclose(rows[round(1 / 1.2, 3)][9], 9.0, atol=1e-5)
    np.testing.assert_allclose(rows[1.0], bins, atol=1e-5)  # a = 1: unchanged
    assert all((np.diff(r) > 0).all() for r in rows.values())  # monotone, no flat copies
    # A bump moves up for a > 1 and down for a < 1.
    bump = np.zeros((64, *SHAPE), "float32")
    bump[:, :, 4] = 1
    moved = keras.ops.convert_to_numpy(layer(bump, training=True))[:, 0, :]
    centre = (moved * bins).sum(axis=1) / moved.sum(axis=1)
    assert ((centre > 4.2) | (centre < 3.8)).mean() > 0.5
    with pytest.raises(ValueError, match=r"max_warp=0.6: expected a fraction in \[0, 0.5\]"):
        FrequencyWarp(max_warp=0.6)
    with pytest.raises(ValueError, match="frequencies: expected at least 2 increasing"):
        FrequencyWarp(frequencies=[100.0, 50.0])
    with pytest.raises(ValueError, match="has 3 frequencies but its input has 10 bins"):
        FrequencyWarp(frequencies=[1.0, 2.0, 3.0])(x, training=True)


def test_frequency_warp_on_mel_bins_scales_frequency_not_bin_index():
    """On mel bins the warp is a scaling of frequency: a tone's energy lands on the bin of
    a times its frequency, not at a times its bin index."""
    from preprocessing.features import bin_frequencies

    params = {"feature": "mel", "sample_rate": 8000, "n_mels": 40, "fmin": 32.7, "fmax": None}
    freqs = bin_frequencies(params)
    assert len(freqs) == 40 and freqs[0] > 32.7 and freqs[-1] < 4000
    layer = FrequencyWarp(max_warp=0.2, frequencies=freqs, steps=3, seed=0)  # 0.8, 1, 1.2
    np.testing.assert_allclose(layer.positions(40)[1], np.arange(40), atol=1e-9)
    tone = np.zeros((64, 2, 40), "float32")
    tone[:, :, 20] = 1.0  # the bin of ~1.1 kHz, well below the boundary
    out = keras.ops.convert_to_numpy(layer(tone, training=True))[:, 0, :]
    bins = (out * np.arange(40)).sum(axis=1) / out.sum(axis=1)
    up = bins[bins > 20.5]
    assert len(up) and len(bins[bins < 19.5]) and len(bins[np.abs(bins - 20) < 1e-4])
    # The tone moved to 1.2 times its frequency, which on the mel scale is not bin 24.
    assert np.interp(up, np.arange(40), freqs) == pytest.approx(1.2 * freqs[20], rel=0.03)
    assert (np.abs(up - 24.0) > 0.5).all()
    stft = bin_frequencies({"feature": "stft", "sample_rate": 8000, "n_fft": 256})
    assert len(stft) == 129 and stft[0] == 0
    cqt = bin_frequencies({"feature": "cqt", "sample_rate": 16000, "n_bins": 24, "fmin": 55.0,
                           "bins_per_octave": 12})
    assert cqt[12] == pytest.approx(110.0)
    assert bin_frequencies({"feature": "mfcc", "sample_rate": 8000}) is None


def _store_of(folder, feature):
    """A 6-item store of 6-bin rows recorded as made of `feature` (mel or mfcc)."""
    import pandas as pd

    from preprocessing.store import write_store

    rng = np.random.default_rng(0)
    meta = pd.DataFrame([{"item": f"item{i}", "label": f"c{c}", "clip": f"i{i}c{c}k{k}"}
                         for i in range(6) for c in range(2) for k in range(3)])
    params = {"feature": feature, "sample_rate": 8000, "n_mels": 6, "n_mfcc": 6,
              "fmin": 32.7, "fmax": None}
    features = rng.normal(size=(len(meta), 8, 6)).astype("float32")
    return write_store(folder / "tiny", features, meta, info={"feature_params": params},
                       overwrite=True)


def test_frequency_warp_uses_the_stores_bin_frequencies_and_refuses_mfccs(tmp_path):
    from tests.conftest import write_config
    from xval import Experiment
    from xval.config.loader import load_config
    from xval.training.model import store_frequencies

    config = load_config(write_config(tmp_path))
    store = _store_of(config.data_dir, "mel")
    warped = _params(freq_warp=0.1)
    freqs = store_frequencies(store, warped)
    assert len(freqs) == 6 and (np.diff(freqs) > 0).all()
    assert store_frequencies(store, _params()) is None  # no warp: nothing to look up
    model = build_model(warped, (8, 6), 2, "classification", np.zeros(6, "float32"),
                        np.ones(6, "float32"), frequencies=freqs)
    np.testing.assert_allclose(model.get_layer("freq_warp").frequencies, freqs)
    _store_of(config.data_dir, "mfcc")
    exp = Experiment(description="t", dataset="tiny", number=1, num_folds=3,
                     config=str(tmp_path / "config.ini"))
    # A [training] default is dropped for an MFCC store; one the instance names is refused.
    warped = load_config(write_config(tmp_path / "warped", training={"freq_warp": 0.1}))
    warped_store = _store_of(warped.data_dir, "mfcc")
    exp[2] = dict(SPEC_SMALL)
    lines = []
    assert exp.run(config=warped, instances=[2], dry_run=True,
                   output=Output(out=lines.append)).exit_code == 0
    assert "freq_warp = 0.0" in "\n".join(lines) and warped_store.path.is_dir()
    exp[1] = {**SPEC_SMALL, "freq_warp": 0.1}
    with pytest.raises(ParameterError, match=r"instance 1: freq_warp=0.1 warps the frequency "
                       r"axis, but the dataset's features \('mfcc'\) have no frequency "
                       r"axis.*use freq_warp=0"):
        exp.run(config=config, instances=[1], output=Output(out=lambda *a: None))
    assert not (config.results_dir / "tiny").exists()


def test_time_warp_changes_the_rate_of_each_row_in_training_only():
    layer = TimeWarp(max_warp=0.2, steps=5, seed=2)
    np.testing.assert_allclose(layer.factors(), [0.8, 0.9, 1.0, 1.1, 1.2])
    frames = np.arange(SHAPE[0], dtype="float32")
    x = np.broadcast_to(frames[:, None], (64, *SHAPE)).copy()  # value = frame index
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    warped = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(warped, warped[:, :, :1].repeat(SHAPE[1], axis=2), atol=1e-5)
    # Frame t reads the input at r * t (past the end: the last frame), for one r per row.
    rates = {round(float(r[1, 0]), 3) for r in warped}
    assert rates == {0.8, 0.9, 1.0, 1.1, 1.2}
    for row in warped[:, :, 0]:
        expected = np.minimum(row[1] * frames, SHAPE[0] - 1)
        np.testing.assert_allclose(row, expected, atol=1e-4)
    with pytest.raises(ValueError, match=r"max_warp=-0.1: expected a fraction"):
        TimeWarp(max_warp=-0.1)
    with pytest.raises(ValueError, match="TimeWarp needs a known length of axis 1"):
        keras.Sequential([keras.Input((None, 4)), TimeWarp(0.1)])


def test_time_warp_is_refused_where_targets_follow_the_frames():
    spec = {"architecture": "gru_detector", "reshaping_type": "rnn", "comment_1": "",
            "comment_2": "", "time_warp": 0.1}
    with pytest.raises(ParameterError, match=r"time_warp=0.1 moves the frames of a row, so "
                       r"the per-frame or reconstruction targets of a detection task"):
        resolve(1, spec, training_defaults=DEFAULTS, task_type="detection")
    auto = {**spec, "architecture": "conv_autoencoder", "reshaping_type": "conv"}
    with pytest.raises(ParameterError, match="representation task"):
        resolve(1, auto, training_defaults=DEFAULTS, task_type="representation")
    # A [training] default is dropped for them instead.
    shipped = {**DEFAULTS, "time_warp": 0.1}
    del spec["time_warp"]
    assert resolve(1, {**spec, "epochs": 30}, training_defaults=shipped,
                   task_type="detection")["time_warp"] == 0.0


def test_frequency_warp_is_saved_with_the_model_and_inactive_at_inference(tmp_path, rng):
    params = _params(freq_warp=0.15, time_warp=0.1)
    model = build_model(params, SHAPE, 3, "classification", np.zeros(10, "float32"),
                        np.ones(10, "float32"))
    names = [layer.name for layer in model.layers]
    assert names.index("freq_warp") < names.index("normalization")  # on the raw features
    assert names.index("time_warp") < names.index("normalization")
    x = rng.normal(size=(8, *SHAPE)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert loaded.get_layer("freq_warp").max_warp == 0.15
    assert loaded.get_layer("time_warp").max_warp == 0.1
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    plain = build_model(_params(), SHAPE, 3, "classification", np.zeros(10, "float32"),
                        np.ones(10, "float32"))
    assert not {"freq_warp", "time_warp"} & {layer.name for layer in plain.layers}


def test_frequency_warp_trains_a_fold(store, tmp_path):
    spec = job(store, tmp_path, epochs=2, patience=2)
    spec["params"] = resolve(1, {**SPEC_SMALL, "epochs": 2, "patience": 2, "freq_warp": 0.1,
                                 "time_warp": 0.1}, training_defaults=DEFAULTS)
    result = run_fold(spec)
    assert result["status"] == "ok", result["message"]
    assert 0 <= result["metrics"]["test"]["accuracy"] <= 1


def test_row_normalization_removes_what_is_constant_over_a_row(rng):
    x = rng.normal(size=(6, *SHAPE)).astype("float32")
    offset = rng.normal(size=(6, 1, SHAPE[1])).astype("float32") * 5
    scale = rng.uniform(0.5, 3, size=(6, 1, SHAPE[1])).astype("float32")
    standard, mean = RowNormalization(), RowNormalization(mode="mean")
    out = keras.ops.convert_to_numpy(standard(x))
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=1), 1, atol=1e-2)
    # CMVN ignores a per-row gain and offset per bin; CMN ignores the offset only.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(standard(x * scale + offset)), out,
                               atol=1e-2)  # up to the variance floor epsilon
    centred = keras.ops.convert_to_numpy(mean(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mean(x + offset)), centred,
                               atol=1e-4)
    np.testing.assert_allclose(centred, x - x.mean(axis=1, keepdims=True), atol=1e-5)
    with pytest.raises(ValueError, match="mode='cmvn': expected 'mean' or 'standard'"):
        RowNormalization(mode="cmvn")


def test_row_normalization_ignores_the_padding_of_short_files(rng):
    """The same word padded to the segment twice as long: with the floor frames left out, its
    sounding frames are normalised the same way whatever the padding."""
    word = rng.normal(size=(1, 20, SHAPE[1])).astype("float32")
    floor = np.full((1, 20, SHAPE[1]), -5.0, dtype="float32")  # the padding, every bin low
    short, long = (np.concatenate([word, floor[:, :n]], axis=1) for n in (2, 20))
    for mode in ("mean", "standard"):
        aware = RowNormalization(mode=mode, ignore_floor_frames=True)
        a = keras.ops.convert_to_numpy(aware(short))[:, :20]
        b = keras.ops.convert_to_numpy(aware(long))[:, :20]
        np.testing.assert_allclose(a, b, atol=1e-4)
        np.testing.assert_allclose(a.mean(axis=1), 0, atol=1e-5)
        plain = RowNormalization(mode=mode)  # the padding sets the statistics
        assert np.abs(keras.ops.convert_to_numpy(plain(short))[:, :20]
                      - keras.ops.convert_to_numpy(plain(long))[:, :20]).max() > 0.5
    # Without padding, one (quietest) frame is left out; a row of floor frames keeps all.
    x = rng.normal(size=(4, *SHAPE)).astype("float32")
    out = keras.ops.convert_to_numpy(RowNormalization("mean", ignore_floor_frames=True)(x))
    quietest = x.mean(axis=2).argmin(axis=1)
    for i in range(4):
        keep = np.arange(SHAPE[0]) != quietest[i]
        np.testing.assert_allclose(out[i], x[i] - x[i][keep].mean(axis=0), atol=1e-5)
    with pytest.raises(ValueError, match="ignore_floor_frames='yes': expected True or False"):
        RowNormalization("mean", ignore_floor_frames="yes")
    flat = np.full((1, *SHAPE), 3.0, dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(
        RowNormalization("mean", ignore_floor_frames=True)(flat)), 0, atol=1e-6)


def test_row_normalization_is_part_of_the_saved_model(tmp_path, rng):
    params = _params(row_normalization="standard")
    model = build_model(params, SHAPE, 3, "classification", rng.normal(size=10),
                        rng.uniform(1, 2, size=10))
    assert "row_normalization" in [layer.name for layer in model.layers]
    x = rng.normal(size=(8, *SHAPE)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert loaded.get_layer("row_normalization").mode == "standard"
    shifted = x + rng.normal(size=(8, 1, 10)).astype("float32") * 3  # another "microphone"
    np.testing.assert_allclose(loaded.predict(shifted, verbose=0), model.predict(x, verbose=0),
                               atol=1e-3)
    plain = build_model(_params(), SHAPE, 3, "classification", np.zeros(10, "float32"),
                        np.ones(10, "float32"))
    assert "row_normalization" not in [layer.name for layer in plain.layers]


def test_row_normalization_is_refused_for_autoencoders():
    spec = {"architecture": "conv_autoencoder", "reshaping_type": "conv", "comment_1": "",
            "comment_2": "", "row_normalization": "mean"}
    with pytest.raises(ParameterError, match="row_normalization='mean' with "
                       "task_type='representation'"):
        resolve(1, spec, training_defaults=DEFAULTS, task_type="representation")
    with pytest.raises(ParameterError, match="freq_warp=0.1 with task_type='representation'"):
        resolve(1, {**spec, "row_normalization": "none", "freq_warp": 0.1},
                training_defaults=DEFAULTS, task_type="representation")


def test_mixup_batches_are_convex_mixtures(rng):
    x = rng.normal(size=(40, *SHAPE)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, 40)]
    w = rng.uniform(1, 2, 40).astype("float32")
    batches = make_batches(x, np.arange(40), y, batch_size=16, shuffle=True, seed=1,
                           weights=w, mixup_alpha=0.4)
    bx, by, bw = batches[0]
    np.testing.assert_allclose(by.sum(axis=1), 1.0, atol=1e-6)
    assert ((by > 0) & (by < 1)).any()  # soft targets: some rows are mixed
    assert bw.min() >= 1 and bw.max() <= 2
    # Each mixed row is the same convex combination of two rows for features and targets.
    plain = make_batches(x, np.arange(40), y, batch_size=16, shuffle=True, seed=1,
                         weights=w)
    px, py, _ = plain[0]
    assert not np.allclose(bx, px)
    np.testing.assert_array_equal(bx, batches[0][0])  # the same batch twice: same mixture
    # Row i mixes rows a and b of the plain batch with the weight its targets show.
    for i in np.flatnonzero(((by > 0) & (by < 1)).any(axis=1))[:5]:
        a, b = np.flatnonzero(by[i] > 0)
        lam = by[i, a]
        candidates = [lam * px[j] + (1 - lam) * px[k] for j in range(len(px))
                      for k in range(len(px)) if py[j, a] == 1 and py[k, b] == 1]
        assert any(np.allclose(bx[i], c, atol=1e-5) for c in candidates)


def test_mixup_and_label_smoothing_train_a_fold(store, tmp_path):
    result = run_fold(job(store, tmp_path, mixup_alpha=0.3, label_smoothing=0.1,
                          time_masks=1, freq_masks=1, epochs=3))
    assert result["status"] == "ok"
    assert 0 <= result["metrics"]["test"]["accuracy"] <= 1
    assert np.isfinite(result["history"]["val_loss"]).all()
    assert "accuracy" in result["history"]


def test_warmup_schedule():
    params = _params(warmup_epochs=2, epochs=10, learning_rate=0.01)
    schedule = make_optimizer(params, steps_per_epoch=5)._learning_rate
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(0.005)
    assert float(schedule(10)) == pytest.approx(0.01)
    assert float(schedule(40)) == pytest.approx(0.01)  # constant after the warm-up
    cosine = make_optimizer(_params(warmup_epochs=2, epochs=10, learning_rate=0.01,
                                lr_schedule="cosine"), steps_per_epoch=5)._learning_rate
    assert float(cosine(10)) == pytest.approx(0.01)
    assert float(cosine(30)) < 0.01  # decays after the warm-up
    assert float(cosine(50)) == pytest.approx(0.0, abs=1e-6)


def test_min_epochs_delays_early_stopping_and_the_best_epoch(store, tmp_path):
    result = run_fold(job(store, tmp_path, epochs=6, patience=0, min_epochs=3))
    assert result["epochs_run"] >= 4
    assert result["best_epoch"] >= 4
    curve = result["history"]["val_loss"]
    assert curve[result["best_epoch"] - 1] == min(curve[3:])
    assert result["metrics"]["val"]["loss"] == pytest.approx(curve[result["best_epoch"] - 1],
                                                             rel=1e-3)


@pytest.mark.parametrize("spec,message", [
    ({"min_epochs": 5, "epochs": 5}, r"min_epochs=5 but epochs=5; min_epochs must be smaller"),
    ({"warmup_epochs": 7, "epochs": 3}, r"warmup_epochs=7 but epochs=3"),
    ({"warmup_epochs": 1, "lr_schedule": "plateau"}, r"warmup_epochs=1 needs lr_schedule"),
    ({"time_mask_fraction": 1.5}, r"time_mask_fraction=1.5"),
    ({"freq_masks": -1}, r"freq_masks=-1: expected an integer in \[0, 100\]"),
    ({"mixup_alpha": -0.2}, r"mixup_alpha=-0.2"),
    ({"label_smoothing": 1.0}, r"label_smoothing=1.0"),
    ({"row_normalization": "cmvn"}, r"row_normalization='cmvn'.*none, mean, standard"),
    ({"freq_warp": 0.7}, r"freq_warp=0.7"),
    ({"freq_warp": -0.1}, r"freq_warp=-0.1"),
    ({"time_warp": 0.51}, r"time_warp=0.51"),
])
def test_bad_training_options(spec, message):
    with pytest.raises(ParameterError, match=message):
        _params(**spec)


def test_defaults_that_do_not_fit_an_instance_are_adapted_not_refused():
    shipped = {**DEFAULTS, "min_epochs": 10, "warmup_epochs": 2, "label_smoothing": 0.1,
               "lr_schedule": "cosine"}
    spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
            "comment_2": "", "epochs": 2}
    params = resolve(1, spec, training_defaults=shipped)
    assert (params["min_epochs"], params["warmup_epochs"]) == (1, 0)  # epochs // 2, // 5
    assert params["label_smoothing"] == 0.1
    long = resolve(1, {**spec, "epochs": 30}, training_defaults=shipped)
    assert (long["min_epochs"], long["warmup_epochs"]) == (10, 2)  # they fit: kept
    middle = resolve(1, {**spec, "epochs": 16}, training_defaults=shipped)
    assert (middle["min_epochs"], middle["warmup_epochs"]) == (8, 2)  # no cliff at epochs 11
    detection = resolve(1, {**spec, "architecture": "gru_detector", "reshaping_type": "rnn",
                            "epochs": 30}, training_defaults={**shipped, "time_masks": 2,
                                                               "mixup_alpha": 0.2,
                                                               "freq_warp": 0.1},
                        task_type="detection")
    # SpecAugment and mixup off for detection; its frequency warp kept (it moves no event in
    # time), its time warp dropped.
    assert (detection["time_masks"], detection["mixup_alpha"], detection["freq_warp"],
            detection["time_warp"]) == (0, 0.0, 0.1, 0.0)
    plateau = resolve(1, {**spec, "epochs": 30, "lr_schedule": "plateau"},
                      training_defaults=shipped)
    assert plateau["warmup_epochs"] == 0
    regression = resolve(1, spec, training_defaults={**shipped, "freq_warp": 0.1,
                                                      "time_warp": 0.1},
                         task_type="regression")
    assert (regression["label_smoothing"], regression["freq_warp"], regression["time_warp"]) \
        == (0.0, 0.0, 0.0)
    named = resolve(1, {**spec, "time_warp": 0.1}, training_defaults=shipped,
                    task_type="regression")
    assert named["time_warp"] == 0.1  # named by the instance: kept
    # Named by the instance, the same values are refused with the fix.
    with pytest.raises(ParameterError, match="min_epochs=10 but epochs=2"):
        resolve(1, {**spec, "min_epochs": 10}, training_defaults=shipped)
    with pytest.raises(ParameterError, match="label_smoothing=0.1 needs a task with classes"):
        resolve(1, {**spec, "label_smoothing": 0.1}, training_defaults=shipped,
                task_type="regression")


def test_shipped_defaults_train_a_fold(store, tmp_path):
    """config.ini as shipped: warm-up + cosine, min_epochs, SpecAugment, mixup, label
    smoothing and both warps on, adapted to a 4-epoch instance; the fold trains and scores."""
    from xval.config.loader import load_config

    shipped = load_config(ROOT / "config.ini").training
    assert (shipped["lr_schedule"], shipped["time_masks"], shipped["mixup_alpha"],
            shipped["label_smoothing"], shipped["min_epochs"], shipped["freq_warp"],
            shipped["time_warp"]) == ("cosine", 2, 0.2, 0.1, 15, 0.1, 0.1)
    spec = job(store, tmp_path, epochs=4, patience=2)
    spec["params"] = resolve(1, {**SPEC_SMALL, "epochs": 4, "patience": 2},
                             training_defaults=shipped)
    assert (spec["params"]["min_epochs"], spec["params"]["warmup_epochs"]) == (2, 0)
    result = run_fold(spec)
    assert result["status"] == "ok" and result["epochs_run"] >= 3  # min_epochs 2 + 1
    assert result["best_epoch"] >= 3
    assert 0 <= result["metrics"]["test"]["accuracy"] <= 1


def test_label_smoothing_needs_classification():
    spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
            "comment_2": "", "label_smoothing": 0.1}
    with pytest.raises(ParameterError, match="label_smoothing=0.1 needs a task with classes "
                       r"\(task_type is .regression.\)"):
        resolve(1, spec, training_defaults=DEFAULTS, task_type="regression")


_TRAIN = """
import json
import sys

from xval.config.loader import load_config
from xval.core.records import Job
import architectures
from xval.config import params as _params
from xval.training.fold import run_fold


def resolve(*args, **kwargs):
    return _params.resolve(*args, architectures=architectures, **kwargs)

spec = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "",
        "comment_2": "", "filters": 4, "epochs": 3, "patience": 3, "batch_size": 16,
        "time_masks": 2, "freq_masks": 1, "mixup_alpha": 0.3, "label_smoothing": 0.1,
        "warmup_epochs": 1, "min_epochs": 1, "lr_schedule": "cosine",
        "row_normalization": "standard", "freq_warp": 0.1, "time_warp": 0.1}
params = resolve(1, spec, training_defaults=load_config(f"{sys.argv[2]}/config.ini").training)
items = {"train": ["item0", "item1", "item2", "item3"], "val": ["item4"], "test": ["item5"]}
r = run_fold(Job(instance=1, fold=0, params=params, items=items,
                 task_type="classification", generator=False, store=sys.argv[1]))
print(json.dumps({"backend": r.backend, "status": r.status,
                  "accuracy": r.metrics["test"]["accuracy"], "epochs": r.epochs_run}))
"""


@pytest.mark.tensorflow
def test_every_option_together_on_tensorflow(store, tmp_path):
    script = write_script(tmp_path, _TRAIN, name="train_options.py")
    proc = run_script(script, store.path, ROOT, env={"KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "tensorflow" and out["status"] == "ok"
    assert 0 <= out["accuracy"] <= 1 and out["epochs"] >= 2


def test_refit_with_val_is_recorded_in_the_fold_files(tmp_path):
    from tests.conftest import tiny_store, write_config
    from xval import Experiment
    from xval.config.loader import load_config
    from xval.core.records import FoldResult

    config = load_config(write_config(tmp_path))
    tiny_store(config.data_dir)
    exp = Experiment(description="t", dataset="tiny", number=1, num_folds=3,
                     config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "", "comment_2": "",
              "hidden_units": 8, "epochs": 4, "min_epochs": 1, "refit_with_val": True}
    outcome = exp.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0, outcome
    inst = config.results_dir / "tiny" / "experiment_1" / "instance_1"
    for i in range(3):
        fold = json.loads((inst / f"fold_{i}.json").read_text())
        refit = fold["refit"]
        assert refit["epochs"] == fold["best_epoch"] == len(refit["history"]["loss"])
        n_items = len(fold["items"]["train"]) + len(fold["items"]["val"])
        assert refit["n_items"] == n_items and refit["rows"] > fold["n_rows"]["train"]
        # What a worker process or Ray task sends back keeps it.
        result = FoldResult.from_dict(fold)
        assert FoldResult.from_transport(result.to_transport()).refit == refit
    assert (inst.parent / "experiment_1.xlsx").is_file()
