"""The `pretrained` feature type and its heads: tiny randomly initialised WavLM, HuBERT and
wav2vec2 models built from their config classes and saved to a temporary folder, and the
Resemblyzer wheel's real encoder. Nothing is downloaded."""

import hashlib
import json
import os

import numpy as np
import pytest
import soundfile as sf

os.environ["HF_HUB_OFFLINE"] = "1"

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from preprocessing import build_store, feature_params, regex_source  # noqa: E402
from preprocessing.features import compute_features, feature_shape, front_end  # noqa: E402
from preprocessing.features import pretrained as pt  # noqa: E402
from tests.conftest import resolve, write_config  # noqa: E402
from xval import Experiment, Output  # noqa: E402
from xval.config.loader import load_config  # noqa: E402
from xval.core.errors import ConfigurationError, DatasetError, ParameterError  # noqa: E402

TINY = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "conv_dim": (8,) * 7, "num_conv_pos_embeddings": 8,
        "num_conv_pos_embedding_groups": 2}
KINDS = ("WavLM", "Hubert", "Wav2Vec2")


def tiny_encoder(folder, kind, seed=0):
    """Saves a tiny randomly initialised `kind` model and its feature extractor to `folder`."""
    config = getattr(transformers, f"{kind}Config")(**TINY)
    torch.manual_seed(seed)
    getattr(transformers, f"{kind}Model")(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True,
                                          return_attention_mask=False).save_pretrained(folder)
    return folder


def has_resemblyzer():
    try:
        pt.resemblyzer_weights()
    except ConfigurationError:
        return False
    return True


def write_wavs(folder, speakers=4, per_class=2):
    """Two classes of tones (low, high) by `speakers` speakers: `<label>_<speaker>_<k>.wav`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for s in range(speakers):
        for label, freq in (("low", 220), ("high", 880)):
            for k in range(per_class):
                t = np.arange(int(rng.uniform(0.6, 1.4) * 16000)) / 16000
                y = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.02 * s) * t)
                path = folder / f"{label}_s{s}_{k}.wav"
                sf.write(path, (y + 0.01 * rng.normal(size=t.size)).astype(np.float32), 16000)
                paths.append(path)
    return paths


def params_for(config, encoder, **options):
    hop = 160 if encoder == pt.RESEMBLYZER else 320
    return feature_params(config.features, feature="pretrained", encoder=str(encoder),
                          sample_rate=16000, hop_length=hop, segment_seconds=0.5,
                          segment_hop_seconds=0.5, device="cpu", **options)  # dtype auto: float16


@pytest.fixture(scope="module", params=KINDS)
def encoder_dir(request, tmp_path_factory):
    return tiny_encoder(tmp_path_factory.mktemp(request.param), request.param)


def test_select_layers():
    assert pt.select_layers("all", 3) == [0, 1, 2]
    assert pt.select_layers("last", 3) == [2]
    assert pt.select_layers([-1, 0], 3) == [2, 0]
    for bad in ([3], [0, 0], "first", []):
        with pytest.raises(ConfigurationError, match="layers="):
            pt.select_layers(bad, 3)


def test_tiny_transformers_encoders_offline(encoder_dir, config):
    params = params_for(config, encoder_dir, layers="all", batch_size=2)
    assert feature_shape(params) == (24, 48)  # 0.5 s: 24 frames of 3 layers x 16
    segments = np.random.default_rng(0).normal(size=(3, 8000)).astype(np.float32)
    rows = compute_features(segments, **params)
    assert rows.shape == (3, 24, 48)
    last = compute_features(segments[0], **{**params, "layers": [-1]})
    # float16 rows: a batch and a single segment may round to neighbouring halves.
    np.testing.assert_allclose(last, rows[0, :, 32:], rtol=2e-3, atol=1e-3)
    completed, described = front_end(params)
    weights = encoder_dir / "model.safetensors"
    assert described["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert completed["weights_sha256"] == described["weights_sha256"]
    assert described["layers"] == [0, 1, 2] and described["n_layers"] == 3


def test_rate_hop_and_weights_are_checked(config, tmp_path):
    folder = tiny_encoder(tmp_path / "wavlm", "WavLM")
    with pytest.raises(ConfigurationError, match="hop_length=320"):
        feature_shape({**params_for(config, folder), "hop_length": 160})
    with pytest.raises(DatasetError, match="not those the store was built with"):
        feature_shape({**params_for(config, folder), "weights_sha256": "0" * 64})


def test_recorded_weights_hash_is_checked_before_any_weight_file_is_opened(config, tmp_path,
                                                                         monkeypatch):
    """Issue 64: `predict` opened the folder's pickle before it compared the SHA-256 the
    store recorded; other weights (here a `pytorch_model.bin` in place of the model's
    safetensors) are refused by their hash, no weight file opened."""
    folder = tiny_encoder(tmp_path / "wavlm", "WavLM")
    recorded = pt.LocalModel(str(folder)).sha256
    (folder / "model.safetensors").unlink()  # the model's weights, now another pickle
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04\x95not tensors")
    pt.load_encoder.cache_clear()

    def opened(*args, **kwargs):
        raise AssertionError("a weight file was opened before its hash was checked")

    monkeypatch.setattr(torch, "load", opened)
    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained", opened)
    with pytest.raises(DatasetError, match=rf"its weights here \(sha256 [0-9a-f]{{64}}\) are "
                                           rf"not those the store was built with "
                                           rf"\({recorded}\)"):
        feature_shape({**params_for(config, folder), "weights_sha256": recorded})
    pt.load_encoder.cache_clear()


def test_hub_id_not_in_cache_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ConfigurationError, match="not in the local hub cache"):
        pt.load_encoder("facebook/wavlm-base-plus", None, "cpu")


def test_freq_warp_and_freq_masks_on_pretrained_stores():
    import architectures  # noqa: F401

    spec = {"architecture": "pretrained_pool", "reshaping_type": "rnn", "comment_1": "",
            "comment_2": ""}
    defaults = {**_training(), "freq_warp": 0.1, "freq_masks": 2}
    params = resolve(1, spec, training_defaults=defaults, feature="pretrained")
    assert params["freq_warp"] == 0.0 and params["freq_masks"] == 0
    with pytest.raises(ParameterError, match="freq_masks=2 acts on a frequency axis"):
        resolve(1, {**spec, "freq_masks": 2}, training_defaults=defaults,
                feature="pretrained")


def _training():
    from tests.conftest import training_defaults

    return training_defaults()


@pytest.mark.parametrize("builder", ["pretrained_pool", "pretrained_bigru"])
def test_heads_train_save_and_load(builder, tmp_path):
    import keras

    import architectures

    model = architectures.get(builder)((12, 3 * 8), 4, "classification", encoder_layers=3,
                                       projection=8, attention_units=4)
    x = np.random.default_rng(0).normal(size=(16, 12, 24)).astype(np.float32)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.arange(16) % 4, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    with pytest.raises(ParameterError, match="encoder_layers"):
        architectures.check_keywords(builder, {"encoder_layers": 65}, "instance 1")


def test_layer_weighted_sum_starts_as_the_mean_of_normalised_layers():
    import keras

    from architectures.pooling import LayerWeightedSum

    x = np.random.default_rng(0).normal(size=(2, 5, 3, 4)).astype(np.float32)
    out = keras.ops.convert_to_numpy(LayerWeightedSum(3)(x.reshape(2, 5, 12)))
    z = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, z.mean(2), atol=1e-5)


def test_detection_bigru_keeps_frames():
    import architectures

    model = architectures.get("pretrained_detector")((12, 16), 3, encoder_layers=2)
    assert model.output_shape == (None, 12, 3)


def _experiment(tmp_path, encoder, layers, n_layers):
    """Builds a store with `encoder`, runs a 2-fold experiment, predicts and evaluates."""
    from xval.inference.evaluate import evaluate_rows
    from xval.inference.predict import predict_files

    config = load_config(write_config(tmp_path))
    paths = write_wavs(tmp_path / "audio")
    rows, _ = regex_source(tmp_path / "audio", r"(?P<label>[a-z]+)_(?P<item>s\d)_\d\.wav$")
    params = params_for(config, encoder, layers=layers, batch_size=4)
    store, _ = build_store(rows, config.data_dir / "tones", params=params, workers=2,
                           progress=False)
    info = json.loads((config.data_dir / "tones" / "dataset.json").read_text())
    assert store.features.dtype == np.float16
    assert len(info["front_end"]["layers"]) == n_layers
    assert info["feature_params"]["weights_sha256"] == info["front_end"]["weights_sha256"]
    experiment = Experiment(description="pretrained", dataset="tones", number=1, num_folds=2,
                            parameters={"epochs": 2, "patience": 2, "batch_size": 8},
                            config=str(config.path))
    experiment[1] = {"architecture": "pretrained_pool", "reshaping_type": "rnn",
                     "projection": 8, "hidden_units": 8, "attention_units": 4,
                     "comment_1": "a", "comment_2": "b"}  # encoder_layers: the store's
    outcome = experiment.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0 and outcome.failed == []
    instance = config.results_dir / "tones" / "experiment_1" / "instance_1"
    recorded = json.loads((instance / "params.json").read_text())["params"]
    assert recorded["encoder_layers"] == n_layers
    results = predict_files(instance, paths[:2])
    assert [sorted(r["clip"]["scores"]) for r in results] == [["high", "low"]] * 2
    scores = evaluate_rows(instance, rows.groupby("label").head(2))
    assert scores["files"] == 4 and 0.0 <= scores["levels"]["clip"]["accuracy"] <= 1.0
    return store, info


@pytest.mark.parametrize("kind", KINDS)
def test_experiment_predict_evaluate_through_tiny_encoders(kind, tmp_path):
    encoder = tiny_encoder(tmp_path / kind, kind)
    store, info = _experiment(tmp_path, encoder, "all", 3)
    assert store.features.shape[1:] == (24, 48)
    assert info["front_end"]["model_type"] == kind.lower()
    if kind != "WavLM":
        return
    # Other weights under the same folder: predict refuses them.
    tiny_encoder(tmp_path / "other", "WavLM", seed=1)
    pt.load_encoder.cache_clear()
    (encoder / "model.safetensors").write_bytes((tmp_path / "other" /
                                                 "model.safetensors").read_bytes())
    from xval.inference.predict import predict_files

    instance = tmp_path / "results" / "tones" / "experiment_1" / "instance_1"
    with pytest.raises(DatasetError, match="not those the store was built with"):
        predict_files(instance, [tmp_path / "audio" / "low_s0_0.wav"])
    pt.load_encoder.cache_clear()


@pytest.mark.skipif(not has_resemblyzer(), reason="Resemblyzer is not installed")
def test_experiment_predict_evaluate_through_resemblyzer(tmp_path):
    store, info = _experiment(tmp_path, pt.RESEMBLYZER, [1, 2], 2)
    assert store.features.shape[1:] == (51, 512)  # 0.5 s at 100 frames/s, 2 layers x 256
    weights = pt.resemblyzer_weights()
    assert weights.stat().st_size > 10_000_000
    assert info["front_end"]["weights_sha256"] == hashlib.sha256(
        weights.read_bytes()).hexdigest()


def test_pool_frames_averages_consecutive_frames():
    x = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    out = pt.pool_frames(x, 2)
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[:, 1], x[:, 2:4].mean(1))
    assert pt.pool_frames(x, 1) is x


def test_detection_store_experiment_and_detect_through_a_tiny_wavlm(tmp_path):
    import pandas as pd

    from preprocessing.detection import build_detection_store
    from preprocessing.synth_events import synth_events
    from xval.inference.detect import detect_files

    speakers = tmp_path / "fsdd"
    speakers.mkdir()
    t = np.arange(4000) / 8000
    for speaker, base in (("alice", 400), ("bob", 900), ("carol", 650)):
        for digit in range(2):
            tone = 0.5 * np.sin(2 * np.pi * (base + 100 * digit) * t)
            sf.write(speakers / f"{digit}_{speaker}_0.wav", tone.astype(np.float32), 8000)
    raw = tmp_path / "raw"
    synth_events(speakers, raw, files_per_speaker=2, seconds=2.0, events_min=1, events_max=2,
                 min_gap=0.3, seed=1, noise="white")
    config = load_config(write_config(tmp_path))
    params = params_for(config, tiny_encoder(tmp_path / "wavlm", "WavLM"), layers=[-1])
    items = dict(pd.read_csv(raw / "items.csv").itertuples(index=False))
    store, _ = build_detection_store(raw / "annotations.csv", raw, config.data_dir / "sed",
                                     params=params, items=items)
    assert store.features.shape[1:] == (24, 16)
    assert store.info["front_end"]["layers"] == [2]
    experiment = Experiment(description="sed", dataset="sed", number=1, num_folds=3,
                            task_type="detection",
                            parameters={"epochs": 1, "patience": 1, "batch_size": 4},
                            config=str(config.path))
    experiment[1] = {"architecture": "pretrained_detector", "reshaping_type": "rnn",
                     "projection": 8, "units": 4, "comment_1": "a", "comment_2": "b"}
    outcome = experiment.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0 and outcome.failed == []
    instance = config.results_dir / "sed" / "experiment_1" / "instance_1"
    wav = sorted(raw.glob("*.wav"))[0]
    (result,) = detect_files(instance / "fold_0.keras", [wav])
    assert result["file"] == str(wav)


def test_feature_option_values_are_literals_or_strings():
    from xval.cli.preprocess_parser import _feature_option

    assert _feature_option("layers=[0, -1]") == ("layers", [0, -1])
    assert _feature_option("batch_size=4") == ("batch_size", 4)
    assert _feature_option("revision=None") == ("revision", None)
    assert _feature_option("encoder=resemblyzer") == ("encoder", "resemblyzer")
    assert _feature_option("encoder=/tmp/a=b") == ("encoder", "/tmp/a=b")
    assert _feature_option("layers=__import__('os')") == ("layers", "__import__('os')")


def test_cli_passes_feature_options(tmp_path, capsys):
    """`python -m preprocessing regex ... --feature pretrained --feature-option ...`."""
    from xval.cli.preprocess import main

    folder = tiny_encoder(tmp_path / "wavlm", "WavLM")
    write_wavs(tmp_path / "audio", speakers=2, per_class=1)
    config = write_config(tmp_path)
    argv = ["regex", str(tmp_path / "audio"), "--pattern",
            r"(?P<label>[a-z]+)_(?P<item>s\d)_\d\.wav$", "--config", str(config),
            "--out", str(tmp_path / "store"), "--feature", "pretrained", "--sample-rate",
            "16000", "--hop-length", "320", "--segment-seconds", "0.5",
            "--segment-hop-seconds", "0.5", "-q",
            "--feature-option", f"encoder={folder}", "--feature-option", "layers=[-1]",
            "--feature-option", "device=cpu", "--feature-option", "batch_size=2"]
    assert main([*argv, "--feature-option", "frame_pol=2"]) == 2
    error = capsys.readouterr().err
    assert "--feature-option frame_pol: not an option of --feature pretrained" in error
    assert "encoder, revision, layers, batch_size, device, frame_pool" in error
    assert main([*argv, "--feature-option", "n_mels=40"]) == 2
    assert "pass --n-mels" in capsys.readouterr().err
    assert main([*argv, "--feature-option", "frame_pool=two"]) == 2
    assert "frame_pool='two': expected an integer like its default, 1" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()
    assert main(argv) == 0
    info = json.loads((tmp_path / "store" / "dataset.json").read_text())
    assert info["front_end"]["layers"] == [2]
    assert info["feature_params"]["encoder"] == str(folder)
    assert info["feature_params"]["batch_size"] == 2
    features = np.load(tmp_path / "store" / "features.npy", mmap_mode="r")
    assert features.shape[1:] == (24, 16) and features.dtype == np.float16
