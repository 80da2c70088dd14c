"""transformers audio encoders beyond the speech models (issue 57): Whisper's encoder, the
Audio Spectrogram Transformer and CLAP's audio tower as store encoders (`architectures.hf`,
`preprocessing.features.encoders.hf`), and any of them inside a model, frozen or fine-tuned
(`architectures.encoders.hf`, `front_end = "hf:..."`). Every model is tiny (hidden size 32,
2 layers), randomly initialised from its config class and written with `save_pretrained`
into a temporary folder with its feature extractor: nothing is downloaded."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ["HF_HUB_OFFLINE"] = "1"

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from architectures.hf import LocalModel  # noqa: E402
from preprocessing import feature_params  # noqa: E402
from preprocessing.features import compute_features  # noqa: E402
from tests.conftest import write_config  # noqa: E402
from xval import Output  # noqa: E402
from xval.config.loader import load_config  # noqa: E402
from xval.core.errors import ConfigurationError  # noqa: E402

FAMILIES = ("whisper", "ast", "clap")
SPEECH = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 64, "conv_dim": (8,) * 7, "num_conv_pos_embeddings": 8,
          "num_conv_pos_embedding_groups": 2}
CLAP_AUDIO = {"hidden_size": 32, "patch_embeds_hidden_size": 16, "depths": [1, 1],
              "num_attention_heads": [2, 2], "projection_dim": 24, "window_size": 4,
              "spec_size": 64, "num_mel_bins": 16, "patch_size": 4, "enable_fusion": False}
CLAP_TEXT = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 1,
             "num_attention_heads": 2, "intermediate_size": 64, "projection_dim": 24,
             "max_position_embeddings": 64}


def tiny_model(folder, family, seed=0):
    """Saves a tiny randomly initialised model of `family` and its feature extractor to
    `folder`: Whisper with a 2 s window (100 positions, 16 mel bands), AST with a 1 s window
    (100 fbank frames of 16 bands), CLAP with a 1 s window at 48 kHz (16 bands), WavLM."""
    torch.manual_seed(seed)
    if family == "whisper":
        config = transformers.WhisperConfig(
            d_model=32, encoder_layers=2, encoder_attention_heads=2, decoder_layers=1,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
            num_mel_bins=16, max_source_positions=100, vocab_size=100, pad_token_id=0,
            bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
        transformers.WhisperModel(config).save_pretrained(folder)
        extractor = transformers.WhisperFeatureExtractor(feature_size=16, chunk_length=2)
    elif family == "ast":
        config = transformers.ASTConfig(hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=64,
                                        num_mel_bins=16, max_length=100)
        transformers.ASTModel(config).save_pretrained(folder)
        extractor = transformers.ASTFeatureExtractor(num_mel_bins=16, max_length=100)
    elif family == "clap":
        config = transformers.ClapConfig(audio_config=CLAP_AUDIO, text_config=CLAP_TEXT,
                                         projection_dim=24)
        transformers.ClapModel(config).save_pretrained(folder)
        extractor = transformers.ClapFeatureExtractor(
            feature_size=16, sampling_rate=48000, hop_length=480, max_length_s=1,
            truncation="rand_trunc")
    else:
        transformers.WavLMModel(transformers.WavLMConfig(**SPEECH)).save_pretrained(folder)
        extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000,
                                                          do_normalize=True)
    extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_models")
    return {family: tiny_model(root / family, family)
            for family in (*FAMILIES, "speech")}


def _segments(rate, seconds, n=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tones = [0.3 * np.sin(2 * np.pi * (200 + 300 * k) * t) for k in range(n)]
    return (np.stack(tones) + 0.05 * rng.normal(size=(n, t.size))).astype(np.float32)


def _params(config, folder, seconds, **options):
    family = LocalModel(str(folder)).family
    return feature_params(config.features, feature="pretrained", encoder=str(folder),
                          sample_rate=family.sample_rate, hop_length=family.hop_length,
                          segment_seconds=seconds, segment_hop_seconds=seconds,
                          dtype="float32", device="cpu", **options)


def _reference(folder, family, x):
    """Every layer's states by transformers' own classes and feature extractor, as
    `(batch, frames, layers, dim)` (AST: every patch column, also those over its padding;
    CLAP: `(batch, 1, sum of the sizes)`)."""
    extractor = transformers.AutoFeatureExtractor.from_pretrained(folder)
    rate = extractor.sampling_rate
    with torch.inference_mode():
        if family == "whisper":
            # The encoder of a model whose positions stop at the segment's frames (the 2 s
            # window: the model itself), run by transformers' own `forward`.
            inputs = extractor(list(x), sampling_rate=rate, padding="max_length",
                               max_length=x.shape[1], return_tensors="pt").input_features
            full = transformers.WhisperModel.from_pretrained(folder).encoder
            config = full.config
            config.max_source_positions = inputs.shape[-1] // 2
            encoder = type(full)(config).eval()
            state = full.state_dict()
            state["embed_positions.weight"] = state["embed_positions.weight"][:inputs.shape[-1] // 2]
            encoder.load_state_dict(state)
            return torch.stack(encoder(inputs, output_hidden_states=True).hidden_states, 2)
        if family == "speech":
            inputs = extractor(list(x), sampling_rate=rate, return_tensors="pt").input_values
            model = transformers.AutoModel.from_pretrained(folder).eval()
            return torch.stack(model(inputs, output_hidden_states=True).hidden_states, 2)
        if family == "ast":
            inputs = extractor(list(x), sampling_rate=rate, return_tensors="pt").input_values
            model = transformers.ASTModel.from_pretrained(folder).eval()
            hidden = model(inputs, output_hidden_states=True).hidden_states
            f_dim, t_dim = model.embeddings.get_shape(model.config)
            return torch.stack([h[:, 2:].reshape(len(x), f_dim, t_dim, -1).mean(1)
                                for h in hidden], 2)
        inputs = extractor(list(x), sampling_rate=rate, truncation="rand_trunc",
                           return_tensors="pt").input_features
        model = transformers.ClapModel.from_pretrained(folder).eval()
        audio = model.audio_model(inputs, output_hidden_states=True)
        projected = model.get_audio_features(inputs).pooler_output
        return torch.cat([*(h.mean((2, 3)) for h in audio.hidden_states),
                          audio.pooler_output, projected], -1)[:, None]


@pytest.mark.parametrize("family, seconds, frames", [
    ("whisper", 2.0, 100), ("whisper", 0.72, 36), ("ast", 1.0, 9), ("ast", 0.5, 4),
    ("clap", 1.0, 1), ("clap", 0.3, 1), ("speech", 0.5, 24)])
def test_store_equals_transformers_own_forward(models, config, family, seconds, frames):
    """The states of every layer equal transformers' own to 1e-5: for a segment as long as
    the window and a shorter one (Whisper: its frames only; AST: padded by its extractor,
    the columns that hold audio; CLAP: repeated to fill its window); the speech models
    (WavLM here) as before."""
    params = _params(config, models[family], seconds, layers="all", batch_size=2)
    x = _segments(params["sample_rate"], seconds)
    rows = compute_features(x, **params)
    expected = _reference(models[family], family, x).numpy()[:, :frames]
    assert rows.shape[:2] == (3, frames)
    np.testing.assert_allclose(rows, expected.reshape(3, frames, -1), atol=1e-5)
    chosen = compute_features(x, **{**params, "layers": [-1, 0]})
    dims = LocalModel(str(models[family])).family.dims
    if family == "clap":  # stages of 16, 32, 32 values, the pooled 32, the projection 24
        assert dims == (16, 32, 32, 32, 24) and chosen.shape == (3, 1, 24 + 16)
        np.testing.assert_allclose(chosen[..., :24], rows[..., -24:], atol=1e-6)
    else:
        np.testing.assert_allclose(chosen, np.concatenate(
            [rows[..., -dims[0]:], rows[..., :dims[0]]], -1), atol=1e-6)


def test_clap_projection_has_unit_norm_and_short_segments_are_repeated(models, config):
    params = _params(config, models["clap"], 0.3, layers="last")
    x = _segments(48000, 0.3, n=1)
    row = compute_features(x, **params)
    assert row.shape == (1, 1, 24)
    np.testing.assert_allclose(np.linalg.norm(row[0, 0]), 1.0, atol=1e-5)
    # 0.3 s repeated three times, then 0.1 s of zeros: the 1 s segment it stands for.
    filled = np.concatenate([np.tile(x, (1, 3)), np.zeros((1, 4800), np.float32)], 1)
    same = compute_features(filled, **{**params, "segment_seconds": 1.0})
    np.testing.assert_allclose(row, same, atol=1e-5)


@pytest.mark.parametrize("family, seconds", [("whisper", 2.5), ("ast", 1.1), ("clap", 1.2)])
def test_segments_longer_than_the_window_are_refused(models, config, family, seconds):
    params = _params(config, models[family], seconds)
    x = _segments(params["sample_rate"], seconds, n=1)
    with pytest.raises(ConfigurationError, match=r"longer than the window of the "
                                                 rf"{family} encoder .* pass segment_seconds"):
        compute_features(x, **params)


def test_files_longer_than_the_window_become_several_segments(models, tmp_path):
    """A 3.3 s file through Whisper's 2 s window: segments of 2 s every 1 s (the last one
    ending at the file's end), each within the window; a 0.6 s file: one segment."""
    from preprocessing import build_store, regex_source

    config = load_config(write_config(tmp_path))
    audio = tmp_path / "audio"
    audio.mkdir()
    for name, seconds in (("long_a_0", 3.3), ("short_b_0", 0.6)):
        sf.write(audio / f"{name}.wav", _segments(16000, seconds, n=1)[0], 16000)
    rows, _ = regex_source(audio, r"(?P<label>[a-z]+)_(?P<item>[a-z])_\d\.wav$")
    params = {**_params(config, models["whisper"], 2.0, layers="last"),
              "segment_hop_seconds": 1.0}
    store, _ = build_store(rows, tmp_path / "store", params=params, progress=False)
    assert store.features.shape[1:] == (100, 32)
    counts = store.meta.groupby("label").size().to_dict()
    assert counts == {"long": 3, "short": 1}


def test_in_model_features_equal_the_extractors(models):
    """`TransformersFeatures` (Keras operations) computes what each feature extractor does
    (the network's input): to 1e-5 (CLAP's decibels, up to 120 dB: 1e-5 relative)."""
    import keras

    from architectures.encoders.hf import TransformersFeatures

    for family in (*FAMILIES, "speech"):
        model = LocalModel(str(models[family]))
        spec = model.family
        x = _segments(spec.sample_rate, 0.5)
        ours = keras.ops.convert_to_numpy(TransformersFeatures(spec.to_dict(), x.shape[1])(x))
        theirs = spec.extract(spec.extractor(), x).numpy()
        ours = spec.network_input(torch.as_tensor(ours)).numpy()
        assert ours.shape == theirs.shape, family
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5, err_msg=family)


def _classifier(model, samples, blocks):
    """The encoder (its last layer), a mean over frames and a dense layer of 2 logits."""
    import keras

    from architectures.encoders.hf import transformers_encoder

    encoder = transformers_encoder(model, samples, trainable_blocks=blocks, name="front_end")
    inputs = keras.Input((samples, 1), name="audio")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(pooled)), encoder


@pytest.mark.parametrize("family", [*FAMILIES, "speech"])
def test_a_fine_tuning_step_changes_only_the_last_blocks(models, family, tmp_path):
    """One step with `trainable_blocks=1`: every weight that moves is in the network's last
    block (Whisper, AST and the speech models: the last transformer layer, with the final
    layer norm above it; CLAP: its projection), and some do; the model saved then loads with safe mode on and predicts
    the same, and its ONNX export (waveform to logits) matches to 1e-4."""
    import keras
    import onnxruntime

    model = LocalModel(str(models[family]))
    samples = int(0.5 * model.family.sample_rate)
    classifier, encoder = _classifier(model, samples, blocks=1)
    network = encoder.get_layer("hf_network")
    before = {k: v.clone() for k, v in network.module.state_dict().items()}
    last = {"whisper": ("layers.1.", "layer_norm."), "ast": ("layers.1.", "layernorm."),
            "speech": ("encoder.layers.1.",), "clap": ("audio_projection.",)}[family]
    x = _segments(model.family.sample_rate, 0.5, n=4)[..., None]
    classifier.compile(keras.optimizers.Adam(0.01),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    classifier.fit(x, np.array([0, 1, 0, 1]), epochs=1, batch_size=4, verbose=0)
    after = network.module.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved and all(k.startswith(last) for k in moved), (family, moved)
    assert all(v.trainable == v.value.requires_grad for v in network.weights)
    expected = classifier.predict(x, verbose=0)
    classifier.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    classifier.export(str(tmp_path / "model.onnx"), format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


PATTERN = r"(?P<label>[a-z]+)_(?P<item>s\d)_\d\.wav$"
HEAD = {"architecture": "pretrained_pool", "reshaping_type": "rnn", "projection": 0,
        "pooling": "meanmax", "hidden_units": 0, "comment_1": "hf", "comment_2": "linear"}
PLAIN = {"epochs": 2, "patience": 2, "batch_size": 8, "mixup_alpha": 0.0, "time_masks": 0,
         "freq_masks": 0, "freq_warp": 0.0, "time_warp": 0.0, "label_smoothing": 0.0}


@pytest.fixture(scope="module")
def wave(tmp_path_factory):
    """A 16 kHz waveform store of 16 files (4 speakers, 2 classes, 0.5 s each)."""
    from tests.test_encoders import write_audio
    from xval.cli.preprocess import main as preprocess_main

    root = tmp_path_factory.mktemp("hf_engine")
    config = load_config(write_config(root))
    paths = write_audio(root / "audio", sample_rate=16000, seconds=(0.5, 0.5))
    assert preprocess_main(["regex", str(root / "audio"), "--pattern", PATTERN, "--config",
                            str(config.path), "--no-progress", "-q", "--out", "wave",
                            "--feature", "waveform", "--sample-rate", "16000",
                            "--segment-seconds", "0.5", "--dtype", "float32"]) == 0
    return config, paths


def _run(config, number, instances, dataset="wave", **params):
    from xval import Experiment

    experiment = Experiment(description="hf", dataset=dataset, number=number, num_folds=2,
                            parameters={**PLAIN, **params}, config=str(config.path))
    for k, instance in instances.items():
        experiment[k] = instance
    return experiment.run(config=config, output=Output(out=lambda *a: None))


@pytest.fixture(scope="module")
def tuned(models, wave):
    """Experiment 1: Whisper's last layer fine-tuned (instance 1, SpecAugment on its
    log-mel), AST frozen (instance 2, named by its bare path: `hf:` is optional for a
    path), through the engine."""
    config, _ = wave
    whisper = {**HEAD, "front_end": f"hf:{models['whisper']}", "encoder_trainable_blocks": 1,
               "encoder_lr_scale": 0.5, "learning_rate": 0.01, "time_masks": 1,
               "freq_masks": 1}
    outcome = _run(config, 1, {1: whisper, 2: {**HEAD, "front_end": str(models["ast"])}})
    assert outcome.exit_code == 0 and outcome.failed == []
    return config.results_dir / "wave" / "experiment_1"


def test_fine_tuned_through_the_engine_moves_only_its_last_block(models, tuned):
    import keras

    model = keras.saving.load_model(tuned / "instance_1" / "fold_0.keras", safe_mode=True)
    front = model.get_layer("front_end")
    assert model.inputs[0].name == "audio" and model.inputs[0].shape[1:] == (8000, 1)
    assert "spec_augment" in [layer.name for layer in front.layers]
    trained = front.get_layer("hf_network").module.state_dict()
    fresh = LocalModel(str(models["whisper"])).load().state_dict()
    moved = {k for k in fresh if not torch.equal(fresh[k], trained[k])}
    assert moved and all(k.startswith(("layers.1.", "layer_norm.")) for k in moved), moved
    frozen = keras.saving.load_model(tuned / "instance_2" / "fold_0.keras", safe_mode=True)
    network = frozen.get_layer("front_end").get_layer("hf_network")
    assert network.trainable_weights == []
    fresh = LocalModel(str(models["ast"])).load().state_dict()
    assert all(torch.equal(fresh[k], v) for k, v in network.module.state_dict().items())


def test_fine_tuned_model_predicts_the_same_in_a_fresh_process(tuned, wave, tmp_path):
    """The one real process: `keras.saving.load_model(safe_mode=True)` with only Keras and
    `architectures` imported, and `predict_files` here, give the same scores."""
    import subprocess
    import sys

    from xval.inference.models import extract_features, feature_params_of, info_for, resolve_models
    from xval.inference.predict import predict_files

    _, paths = wave
    instance = tuned / "instance_1"
    models = resolve_models(instance)
    feature = feature_params_of(info_for(models, None), models)
    x = np.concatenate([f["features"] for f in extract_features(paths[:4], feature)])
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    script = ("import sys, numpy as np, keras, architectures\n"
              "m = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
              "np.save(sys.argv[3], keras.ops.convert_to_numpy(m(np.load(sys.argv[2]))))\n")
    done = subprocess.run([sys.executable, "-c", script, str(instance / "fold_0.keras"),
                           str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "torch"})
    assert done.returncode == 0, done.stderr[-2000:]
    logits = np.load(tmp_path / "y.npy")
    predicted = predict_files(instance / "fold_0.keras", paths[:4])
    scores = np.array([[s["scores"][c] for c in ("noise", "tone")]
                       for r in predicted for s in r["segments"]])
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert scores.shape == softmax.shape == (4, 2)
    np.testing.assert_allclose(softmax, scores, atol=1e-5)


def test_export_onnx_from_waveform_matches_predict(tuned, wave, tmp_path):
    import onnxruntime

    from xval.cli.main import main
    from xval.inference.models import extract_features, feature_params_of, info_for, resolve_models
    from xval.inference.predict import predict_files

    _, paths = wave
    instance = tuned / "instance_1"
    out = tmp_path / "onnx"
    assert main(["export", str(instance), "--format", "onnx", "--out", str(out)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert "hf:" in card and "at 16000 Hz" in card
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    models = resolve_models(instance)
    feature = feature_params_of(info_for(models, None), models)
    x = np.concatenate([f["features"][..., 0] for f in extract_features(paths[:3], feature)])
    got = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    predicted = predict_files(instance, paths[:3])
    expected = np.array([[r["segments"][0]["scores"][c] for c in ("noise", "tone")]
                         for r in predicted])
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_store_records_a_model_folder_given_relative_as_an_absolute_path(tmp_path,
                                                                         monkeypatch):
    """`init --encoders models/wavlm` from one folder, `predict` from the project: the store
    names the folder absolute (relative, predict looked for it where it ran)."""
    from preprocessing.features.pretrained import encoder_defaults

    tiny_model(tmp_path / "models" / "wavlm", "speech")
    monkeypatch.chdir(tmp_path)
    for given in ("models/wavlm", "hf:./models/wavlm"):
        assert encoder_defaults(given)["encoder"] == str(tmp_path / "models" / "wavlm")


def test_features_of_a_model_folder_that_moved_say_it_is_gone(tmp_path, config):
    """`predict` after the model folder a store was built with moved: it suggested
    `huggingface-cli download` of the local path. The features' recorded folder is named
    as gone, with the fix; a path is never taken for a hub id."""
    from architectures.hf import model_folder
    from preprocessing.features import compute_features
    from xval.core.errors import DatasetError

    folder = tiny_model(tmp_path / "models" / "wavlm", "speech")
    params = _params(config, folder, 0.5)
    folder.rename(tmp_path / "moved")
    y = _segments(16000, 0.5, n=1)[0]
    with pytest.raises(DatasetError) as raised:
        compute_features(y, **params)
    said = str(raised.value)
    assert f"the transformers model in the folder {folder}, as recorded" in said
    assert "no longer there (moved or deleted); put the model back at that path" in said
    assert "huggingface-cli" not in said
    with pytest.raises(ConfigurationError, match=rf"there is no folder {folder} \(a path, "
                                                 r"not a hub id"):
        model_folder(str(folder), None)


def test_names_that_are_no_model_here_and_other_families_are_refused(wave, tmp_path,
                                                                      monkeypatch, capsys):
    """Each a one-line error with the fix, before anything is written: a hub id not in the
    local cache (nothing is downloaded), a model of a family the project does not run,
    and more trained blocks than the model has; the same from the store command (exit 2)."""
    from xval.cli.preprocess import main as preprocess_main

    config, _ = wave
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hub"))
    bert = tmp_path / "bert"
    transformers.BertModel(transformers.BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64)).save_pretrained(bert)
    whisper = tiny_model(tmp_path / "whisper", "whisper")
    cases = [
        ({"front_end": "hf:acme/no-such-model"},
         r"instance 1: front_end='hf:acme/no-such-model': not a built-in encoder, not a "
         r"folder, and not in the local hub cache \(nothing is downloaded here: fetch it once "
         r"with `huggingface-cli download acme/no-such-model`"),
        *(({"front_end": name},
           rf"front_end='{name}': the model '{bert}' is of type 'bert', not an audio encoder "
           r"this project runs; use a model of one of these types \(ast: "
           r"audio-spectrogram-transformer; clap: clap; speech: wav2vec2")
          for name in (f"hf:{bert}", str(bert))),
        ({"front_end": f"hf:{whisper}", "encoder_trainable_blocks": 3},
         r"encoder_trainable_blocks=3, but hf:.* has 2 blocks; use 0 to 2"),
    ]
    for instance, match in cases:
        with pytest.raises(ConfigurationError, match=match) as raised:
            _run(config, 5, {1: {**HEAD, **instance}})
        assert "\n" not in str(raised.value)
    assert not (config.results_dir / "wave" / "experiment_5").exists()
    capsys.readouterr()
    for name, match in (("hf:acme/no-such-model", "not in the local hub cache"),
                        (f"hf:{bert}", "is of type 'bert', not an audio encoder"),
                        (str(bert), "is of type 'bert', not an audio encoder")):
        assert preprocess_main(["regex", str(tmp_path), "--pattern", PATTERN, "--config",
                                str(config.path), "-q", "--out", "never",
                                "--encoders", name]) == 2
        error = capsys.readouterr().err.strip()
        assert match in error and "\n" not in error
    assert not (config.data_dir / "never").exists()


class _RunsCode:
    """Pickled, it runs `touch PATH` when unpickled by an unsafe loader."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def _broken_folders(root):
    """Speech models whose folder is wrong one way each (issue 64): weights that are a
    pickle holding more than tensors (no safetensors), a `model_type` transformers does not
    know, and `model.safetensors` that is a link to /dev/zero or a FIFO."""
    import pickle

    folders = {k: tiny_model(root / k, "speech") for k in ("pickle", "type", "zero", "fifo")}
    (folders["pickle"] / "model.safetensors").unlink()
    with open(folders["pickle"] / "pytorch_model.bin", "wb") as f:
        pickle.dump({"weight": _RunsCode(root / "ran")}, f)
    config = json.loads((folders["type"] / "config.json").read_text())
    (folders["type"] / "config.json").write_text(json.dumps({**config,
                                                             "model_type": "nosuchmodel"}))
    (folders["zero"] / "model.safetensors").unlink()
    (folders["zero"] / "model.safetensors").symlink_to("/dev/zero")
    (folders["fifo"] / "model.safetensors").unlink()
    os.mkfifo(folders["fifo"] / "model.safetensors")
    return folders


def test_model_folders_that_are_wrong_are_refused_naming_the_file(wave, tmp_path, capsys):
    """Issue 64: a crafted `pytorch_model.bin` was "unexpected UnpicklingError (a bug)" after
    the run started, an unknown `model_type` "unexpected KeyError (a bug)", and weights that
    are a link to /dev/zero or a FIFO "no file named model.safetensors". Each is refused
    before the run starts (front_end) or anything is written (the store command), naming
    the file; nothing in the pickle runs."""
    from xval.cli.preprocess import main as preprocess_main

    config, _ = wave
    folders = _broken_folders(tmp_path)
    said = {
        "pickle": rf"{folders['pickle'] / 'pytorch_model.bin'}: torch's safe loader "
                  r"\(weights_only=True, the only way weights are loaded here\) refuses it: "
                  r"the pickle holds more than tensors \(torch: .+\); nothing in it ran\. Use "
                  r"the model's model.safetensors instead, or, only if you trust the file, "
                  r"convert it once: `python -c .*safetensors",
        "type": rf"{folders['type'] / 'config.json'}: model_type 'nosuchmodel' is not a model "
                r"type of the transformers installed here",
        "zero": rf"{folders['zero'] / 'model.safetensors'} \(a link to /dev/zero\) is a "
                r"character device, not a file",
        "fifo": rf"{folders['fifo'] / 'model.safetensors'} is a named pipe \(FIFO\), not a "
                r"file",
    }
    for name, match in said.items():
        with pytest.raises(ConfigurationError, match=rf"instance 1: front_end='hf:.*{name}': "
                                                     + match) as raised:
            _run(config, 6, {1: {**HEAD, "front_end": f"hf:{folders[name]}"}})
        assert "\n" not in str(raised.value)
    assert not (config.results_dir / "wave" / "experiment_6").exists()
    capsys.readouterr()
    for name, match in said.items():
        assert preprocess_main(["regex", str(config.path.parent / "audio"), "--pattern",
                                PATTERN, "--config",
                                str(config.path), "-q", "--out", "never", "--no-progress",
                                "--encoders", f"hf:{folders[name]}"]) == 2
        error = capsys.readouterr().err.strip()
        assert re.search(match, error) and "\n" not in error, error
    assert not (config.data_dir / "never").exists() and not (tmp_path / "ran").exists()


def _crafted_folders(root):
    """Speech models whose config and weights disagree one way each (issue 74): 4,096 layers
    over the weights of 2, `conv_dim: []`, a `model.safetensors` of random bytes, and sizes
    (hidden_size 48) other than the weights' (32)."""
    folders = {k: tiny_model(root / k, "speech") for k in ("layers", "conv", "garbage",
                                                          "shapes")}
    for name, change in (("layers", {"num_hidden_layers": 4096}), ("conv", {"conv_dim": []}),
                         ("shapes", {"hidden_size": 48, "intermediate_size": 96})):
        config = json.loads((folders[name] / "config.json").read_text())
        (folders[name] / "config.json").write_text(json.dumps({**config, **change}))
    (folders["garbage"] / "model.safetensors").write_bytes(os.urandom(4096))
    return folders


def test_crafted_model_folders_are_refused_naming_the_file_and_the_field(wave, tmp_path,
                                                                         capsys):
    """Issue 74: each of these was "unexpected ... (a bug)" naming no file (4,096 layers ran
    for minutes on mostly random weights). Each is refused naming the file and the field,
    before the store command writes anything."""
    from xval.cli.preprocess import main as preprocess_main

    config, _ = wave
    folders = _crafted_folders(tmp_path)
    said = {
        "layers": rf"{folders['layers'] / 'config.json'}: num_hidden_layers=4096, but the "
                  r"weights \(model.safetensors\) hold 2 layers",
        "conv": rf"{folders['conv'] / 'config.json'}: transformers refuses it as a wavlm "
                r"configuration: .*conv_dim",
        "garbage": rf"{folders['garbage'] / 'model.safetensors'} is no safetensors file",
        "shapes": rf"{folders['shapes'] / 'model.safetensors'} holds .* of shape \(32,?.*\), "
                  rf"but {folders['shapes'] / 'config.json'} describes \(48.*hidden_size=48",
    }
    for name, match in said.items():
        assert preprocess_main(["regex", str(config.path.parent / "audio"), "--pattern",
                                PATTERN, "--config", str(config.path), "-q", "--out", "never",
                                "--no-progress", "--encoders", f"hf:{folders[name]}"]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' report
        assert re.search(match, error), (name, error)
    assert not (config.data_dir / "never").exists()


def test_init_dry_run_refuses_crafted_model_folders_as_the_build_would(wave, tmp_path,
                                                                       capsys):
    """`init --encoders FOLDER --dry-run` passed a folder whose `model.safetensors` is
    garbage or whose config names 4,096 layers over the weights of 2; the real init refused
    them only after building the other stores. The dry run refuses each now, naming the
    file, as the store's build does."""
    from xval.cli.main import main

    config, _ = wave
    folders = _crafted_folders(tmp_path)
    said = {"layers": rf"{folders['layers'] / 'config.json'}: num_hidden_layers=4096, but "
                      r"the weights \(model.safetensors\) hold 2 layers",
            "garbage": rf"{folders['garbage'] / 'model.safetensors'} is no safetensors file"}
    capsys.readouterr()
    for name, match in said.items():
        assert main(["init", str(config.path.parent / "audio"), "--pattern", PATTERN,
                     "--encoders", f"hf:{folders[name]}", "--dry-run",
                     "--project", str(tmp_path / "project")]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert re.search(rf"--encoders hf:.*{name}: .*{match}", error), (name, error)
    assert not (tmp_path / "project").exists()


def test_tensorflow_refuses_a_transformers_front_end_before_training(models, wave, tmp_path):
    """The backend is the process's: an experiment script's dry run with
    KERAS_BACKEND=tensorflow stops on one line naming the fix (no Keras imported)."""
    import subprocess
    import sys

    config, _ = wave
    script = tmp_path / "exp.py"
    script.write_text(
        "from xval import Experiment\n"
        f"experiment = Experiment(description='hf', dataset='wave', number=6, num_folds=2,\n"
        f"                        config={str(config.path)!r})\n"
        f"experiment[1] = {{**{HEAD!r}, 'front_end': 'hf:{models['whisper']}',\n"
        "                 'encoder_trainable_blocks': 1}\n"
        "if __name__ == '__main__':\n"
        "    experiment.main()\n")
    done = subprocess.run([sys.executable, str(script), "1", "1", "--dry-run"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 2, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and "runs the transformers network in torch, but this run's " \
        "Keras backend is tensorflow; set [backend] backend = torch" in error[0]
    assert not (config.results_dir / "wave" / "experiment_6").exists()


def test_init_with_a_transformers_encoder_writes_its_store_and_instance_1(models, tmp_path,
                                                                          capsys):
    """`xval init AUDIO --encoders hf:FOLDER`: the model's store (every layer, frames pooled
    to 100 ms, segments as long as 3 clips in 4: 0.6 s), instance 1 the default head on it
    (frozen), instance 2 the CNN on the log-mel store; the script's dry run passes."""
    from xval.cli.main import main
    from xval.cli.scripts import literal

    audio = tmp_path / "sounds"
    for c, label in enumerate(("low", "high")):
        (audio / label).mkdir(parents=True)
        for k in range(6):
            tone = _segments(16000, 0.6, n=1, seed=k)[0] * (1 + c)
            sf.write(audio / label / f"{k % 3 + 1}-{10 * c + k}-A.wav", tone, 16000)
    project = tmp_path / "project"
    # The model's folder under a folder whose name holds code after three quotes: its
    # path is a literal in the script (`ENCODERS`), never prose (tests/test_scripts.py).
    # (No comma: --encoders is a comma-separated list.)
    hostile = tmp_path / 'models"""+str(__import__("os").mkdir("PWNED_hf"))+"""' / "whisper"
    shutil.copytree(models["whisper"], hostile)
    code = main(["init", str(audio), "--encoders", f"hf:{hostile}", "--project",
                 str(project), "--no-progress"])
    said = capsys.readouterr()
    out = " ".join(said.out.split())
    assert code == 0, out + said.err
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    store = project / "data" / "sounds_hf_whisper"
    info = json.loads((store / "dataset.json").read_text())
    assert info["front_end"]["family"] == "whisper" and info["front_end"]["layers"] == [0, 1, 2]
    params = info["feature_params"]
    assert (params["frame_pool"], params["hop_length"], params["segment_seconds"]) == \
        (5, 1600, 0.6)
    assert np.load(store / "features.npy", mmap_mode="r").shape[1:] == (6, 96)
    assert "licence" in info["front_end"] and "Wrote the store" in out
    script = (project / "experiments" / "sounds.py").read_text()
    assert '"dataset": "sounds_hf_whisper"' in script and '"refit_with_val": True' in script
    assert '"hf_whisper + head"' in script and '"architecture": "audio_cnn"' in script
    assert "predict computes them from audio with the same encoder" in " ".join(script.split())
    assert f"ENCODERS = {{{literal(str(hostile))}: " in script


def test_preprocessing_encoder_hf_takes_the_models_rate_hop_and_window(models, tmp_path):
    """`python -m preprocessing ... --encoders hf:FOLDER` builds a store at the model's rate
    and frame hop with a segment of its window (CLAP: 1 s at 48 kHz, one frame a row)."""
    from xval.cli.preprocess import main as preprocess_main

    audio = tmp_path / "audio"
    audio.mkdir()
    for k in range(4):
        sf.write(audio / f"{'ab'[k % 2]}_s{k}_0.wav", _segments(48000, 0.7, n=1, seed=k)[0],
                 48000)
    config = write_config(tmp_path)
    for out, name in (("s", f"hf:{models['clap']}"), ("bare", str(models["clap"]))):
        assert preprocess_main(["regex", str(audio), "--pattern", PATTERN, "--config",
                                str(config), "-q", "--no-progress", "--out",
                                str(tmp_path / out), "--encoders", name]) == 0
    # The bare folder is the same encoder as hf:FOLDER (it was refused: "pass the hop").
    bare = json.loads((tmp_path / "bare" / "dataset.json").read_text())
    info = json.loads((tmp_path / "s" / "dataset.json").read_text())
    assert bare["feature_params"] == info["feature_params"]
    np.testing.assert_array_equal(np.load(tmp_path / "bare" / "features.npy"),
                                  np.load(tmp_path / "s" / "features.npy"))
    params = info["feature_params"]
    assert (params["sample_rate"], params["hop_length"], params["segment_seconds"]) == \
        (48000, 48000, 1.0)
    assert info["front_end"]["encoder"] == str(models["clap"])
    assert info["front_end"]["layer_dims"] == [16, 32, 32, 32, 24]
    assert np.load(tmp_path / "s" / "features.npy", mmap_mode="r").shape == (4, 1, 136)


def test_a_hub_id_in_the_local_cache_records_its_revision_and_licence(models, config,
                                                                      tmp_path, monkeypatch):
    """A hub id resolved in the local cache only (huggingface_hub reads `HF_HOME` when
    imported: its cache folder is set as `HF_HOME` would have set it): the store records
    the snapshot's commit as the revision and the `license:` of its card."""
    import shutil

    import huggingface_hub

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "hub" / "models--acme--tiny-ast"
    shutil.copytree(models["ast"], repo / "snapshots" / commit)
    (repo / "snapshots" / commit / "README.md").write_text(
        "---\nlicense: bsd-3-clause\ntags:\n- audio\n---\n# tiny AST\n")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub" / "hub"))
    params = {**_params(config, models["ast"], 0.5, layers="last"), "encoder": "acme/tiny-ast"}
    from preprocessing.features import front_end

    _, described = front_end(params)
    assert described["revision"] == commit and described["licence"] == "bsd-3-clause"
    assert described["family"] == "ast" and described["layers"] == [2]
    x = _segments(16000, 0.5, n=1)
    np.testing.assert_allclose(compute_features(x, **params), compute_features(
        x, **{**params, "encoder": str(models["ast"])}), atol=1e-6)


def test_hf_encoder_bare_path_and_prefix_give_the_same_store(models):
    """Issue 67: `--encoders FOLDER` takes the model's rate, frame hop and segment as
    `--encoders hf:FOLDER` does (each family), and a `front_end` with a `/` is the same
    transformers front end as with `hf:` (its features, an encoder inside the model)."""
    from preprocessing.features import front_end_features
    from preprocessing.features.pretrained import encoder_overrides
    from xval.core.parameters import InstanceParams
    from xval.training.encoder import uses_encoder

    for family in (*FAMILIES, "speech"):
        folder = str(models[family])
        assert encoder_overrides(folder, {}) == encoder_overrides(f"hf:{folder}", {})
        assert encoder_overrides(folder, {"hop_length": 640})["hop_length"] == 640
        assert front_end_features(folder) is front_end_features(f"hf:{folder}")
        assert uses_encoder(InstanceParams(front_end=folder))
    assert front_end_features(str(models["speech"])).name == "waveform"
    assert not uses_encoder(InstanceParams(front_end="mel"))


def test_hf_families_are_a_registry(models):
    """The families are one `Registry` (each added where it is defined); a model's family is
    the one that accepts its configuration, and a model of none is refused with the
    registry's error, naming every family and its model types."""
    from architectures.hf import FAMILIES as REGISTERED
    from architectures.hf import family_class, family_of
    from xval.core.registry import Registry, UnknownNameError

    assert type(REGISTERED) is Registry
    assert REGISTERED.names() == ["ast", "clap", "speech", "whisper"]
    for family in (*FAMILIES, "speech"):
        config = json.loads((models[family] / "config.json").read_text())
        assert family_class(config).name == family
    assert family_class({"model_type": "new-speech", "conv_stride": [5, 2]}).name == "speech"
    with pytest.raises(UnknownNameError, match=r"of type 'bert', not an audio encoder this "
                       r"project runs; use a model of one of these types \(ast: .*; clap: "
                       r"clap; speech: wav2vec2, hubert, wavlm, data2vec-audio; whisper: "
                       r"whisper\)\.$"):
        family_class({"model_type": "bert"}, "m")
    clap = LocalModel(str(models["clap"])).family
    assert clap.store_defaults() == {"layers": "last", "frame_pool": 1}
    speech = LocalModel(str(models["speech"])).family
    assert speech.store_defaults() == {"layers": "all", "frame_pool": 5, "hop_length": 1600}
    fused = {**clap.config, "audio_config": {**clap.audio, "enable_fusion": True}}
    with pytest.raises(ConfigurationError, match="is a fused CLAP checkpoint"):
        family_of(fused, clap.preprocessor, "fused")
