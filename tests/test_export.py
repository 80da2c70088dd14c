"""`python -m xval export` (issue 36, points 2 and 3): a complete instance's fold ensemble as
one model (ONNX, SavedModel, .keras) that takes audio when it was trained so, its model card,
and the refusals that leave nothing written. The ONNX file is run by onnxruntime in a clean
virtual environment without this project."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import write_config
from xval import Experiment, Output
from xval.cli.main import main
from xval.config.loader import load_config

CNN = {"architecture": "audio_cnn", "reshaping_type": "conv", "filters": 4, "blocks": 2,
       "dense_units": 8, "comment_1": "in-model mel", "comment_2": "export test"}
RUNNER = '''
import sys
import numpy as np
import onnxruntime

session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])
(name,) = [i.name for i in session.get_inputs()]
np.save(sys.argv[3], session.run(["scores"], {name: x})[0])
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A complete instance on a waveform store (front_end mel, int16 rows), 3 folds of one
    epoch on 4 speakers of the demo recordings, and a mel-store instance beside it."""
    from preprocessing import build_store, regex_source
    from preprocessing.demo import CLASSES, PATTERN, _demo_params, write_demo_audio

    base = tmp_path_factory.mktemp("export")
    config = load_config(write_config(base))
    write_demo_audio(base / "audio")
    rows, _ = regex_source(base / "audio", PATTERN)
    rows = rows[rows["item"].isin(["spk0", "spk1", "spk2", "spk3"])
                & rows["path"].str.contains("_[01].wav")].reset_index(drop=True)
    for name, extra in (("mel", {}), ("wave", {"feature": "waveform", "dtype": "int16"})):
        build_store(rows, config.data_dir / name, params={**_demo_params(), **extra},
                    workers=1, classes=list(CLASSES), progress=False,
                    info={"source": "demo recordings, 4 speakers"})
    exp = Experiment(description="export", dataset="mel", number=1, num_folds=3,
                     parameters={"epochs": 1, "batch_size": 16}, config=str(config.path))
    exp[1] = {**CNN, "dataset": "wave", "front_end": "mel", "time_masks": 1, "freq_masks": 1,
              "time_warp": 0.1}
    exp[2] = {**CNN, "comment_1": "librosa mel"}
    outcome = exp.run(config=config, output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0
    return config, config.results_dir / "mel" / "experiment_1"


def _keras_scores(instance, x):
    """What `predict` computes for rows `x`: the fold models' logits averaged, softmaxed."""
    from xval.inference.models import resolve_models
    from xval.tasks.metrics import softmax

    return softmax(resolve_models(instance, ensemble=True).outputs(x))


def _audio_rows(instance):
    from xval.inference.models import dataset_info_for, extract_features

    info = dataset_info_for(instance / "fold_0.keras")
    wavs = sorted(instance.parents[3].glob("audio/spk1/*_0.wav"))
    return np.concatenate([f["features"] for f in extract_features(wavs, info[
        "feature_params"])])


def test_export_onnx_runs_in_a_clean_venv_and_matches_keras(trained, tmp_path, capsys,
                                                           onnx_python):
    _, root = trained
    out = tmp_path / "onnx"
    assert main(["export", str(root / "instance_1"), "--format", "onnx", "--out",
                 str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "model.onnx"]
    said = capsys.readouterr().out
    assert "ensemble of 3 fold models of instance_1" in said and "audio (4000,)" in said
    rows = _audio_rows(root / "instance_1")  # int16 rows: (segments, 4000, 1)
    audio = (rows[:, :, 0] / 32768.0).astype(np.float32)  # what a user feeds: [-1, 1)
    expected = _keras_scores(root / "instance_1", rows)
    np.save(tmp_path / "x.npy", audio)
    (tmp_path / "run_onnx.py").write_text(RUNNER)
    run = subprocess.run([onnx_python, tmp_path / "run_onnx.py", out / "model.onnx",
                          tmp_path / "x.npy", tmp_path / "y.npy"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    got = np.load(tmp_path / "y.npy")
    assert got.shape == expected.shape == (len(rows), 4)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # The card's program, run as written with numpy and onnxruntime alone, gives predict's
    # clip scores: a long file (windows and the tail window) and a short one (padded).
    _check_card_program(root / "instance_1", out, onnx_python, tmp_path,
                        _demo_wavs(root / "instance_1"))


def _card_program(folder):
    """The Python block of the card's "Running it" section, written to run.py beside it."""
    card = (folder / "MODEL_CARD.md").read_text()
    code = card.split("## Running it", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    (folder / "run.py").write_text(code + "\n")
    return folder / "run.py"


def _demo_wavs(model):
    instance = model if model.is_dir() else model.parent
    return sorted(instance.parents[3].glob("audio/spk1/*.wav"))


# Runs a program as `python PROGRAM FILE` runs it, once per FILE, in one process (a fresh
# interpreter per file cost ~7 s of CPU for a Keras program): each run's last line follows a
# `--- FILE` line.
_EACH_FILE = """
import runpy
import sys

program, files = sys.argv[1], sys.argv[2:]
for path in files:
    sys.argv = [program, path]
    print("--- " + path, flush=True)
    runpy.run_path(program, run_name="__main__")
"""


def _check_card_program(model, folder, python, tmp_path, wavs, atol=1e-5):
    """Runs the card's program as written (`python run.py FILE`, in the export folder, in a
    fresh process) on a long file cut from `wavs` and a short one, and compares with
    `predict_files` (within `atol`)."""
    import ast

    import soundfile as sf

    from xval.inference.predict import predict_files

    y = np.concatenate([sf.read(w, dtype="float32")[0] for w in wavs[:2]])
    files = [tmp_path / "long.wav", tmp_path / "short.wav"]
    rate = sf.info(wavs[0]).samplerate
    sf.write(files[0], y[: len(y) - 301], rate, subtype="PCM_16")  # the hops miss the end
    sf.write(files[1], y[: rate // 4], rate, subtype="PCM_16")
    expected = predict_files(model, files, ensemble=model.is_dir())
    assert len(expected[0]["segments"]) > 2 and len(expected[1]["segments"]) == 1
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    (tmp_path / "each_file.py").write_text(_EACH_FILE)
    run = subprocess.run([python, tmp_path / "each_file.py", _card_program(folder), *files],
                         capture_output=True, text=True, cwd=folder, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    outputs = run.stdout.split("--- ")[1:]
    assert [out.splitlines()[0] for out in outputs] == [str(path) for path in files]
    for path, out, want in zip(files, outputs, expected):
        got = ast.literal_eval(out.strip().splitlines()[-1])
        assert got.keys() == want["clip"]["scores"].keys()
        for name, p in want["clip"]["scores"].items():
            assert abs(got[name] - p) <= atol, (path.name, got, want["clip"]["scores"])


def test_export_keras_writes_the_ensemble_and_its_model_card(trained, tmp_path):
    from xval.training.loading import load

    _, root = trained
    out = tmp_path / "keras"
    assert main(["export", str(root / "instance_1"), "--format", "keras", "--out", str(out),
                 "-q"]) == 0
    model = load(out / "model.keras")
    # No training-only layer is exported (SpecAugment, the warps), at any depth.
    names = []
    stack = [model]
    while stack:
        for layer in stack.pop().layers:
            names.append(type(layer).__name__)
            stack += [layer] if hasattr(layer, "layers") else []
    assert not {"SpecAugment", "FrequencyWarp", "TimeWarp"} & set(names)
    assert "SpectralFrontEnd" in names
    # Plain Keras loads it in a fresh process after `import architectures` alone.
    probe = subprocess.run(
        [sys.executable, "-c", "import architectures, keras, sys; m = keras.saving."
         "load_model(sys.argv[1], compile=False); print(m.output.shape[-1])",
         str(out / "model.keras")], capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert probe.returncode == 0 and probe.stdout.split()[-1] == "4", probe.stderr[-2000:]
    rows = _audio_rows(root / "instance_1")
    np.testing.assert_allclose(model.predict(rows[:, :, 0] / 32768.0, verbose=0),
                               _keras_scores(root / "instance_1", rows), atol=1e-5)
    card = (out / "MODEL_CARD.md").read_text()
    summary = json.loads((root / "instance_1" / "summary.json").read_text())
    accuracy = summary["metrics"]["segment"]["test"]["accuracy"]
    for text in ("# Model card: mel/experiment_1/instance_1", "- Task: classification.",
                 "`fall`, `flat`, `rise`, `vibrato`", "front end `mel`",
                 "`audio` `(batch, 4000)`", "resampled to 8000 Hz", "peak of 1",
                 "segments of 0.5 s every 0.25 s", "Front end: inside the model (`mel`",
                 "Store `wave`: 96 rows from 32 files (0 skipped)",
                 "source: demo recordings, 4 speakers", "3 folds over items",
                 "| fold | train items | val items | test items |", "| 4/4 |",
                 "## Cross-validated scores",
                 "| segment | accuracy | ", f"{accuracy['mean']:.4f} ± {accuracy['std']:.4f} "
                 f"[{accuracy['mean'] - accuracy['ci95']:.4f}",
                 "Exported with: audio-xval", "Keras 3.", "## Intended use and limits"):
        assert text in card, text
    assert "## Pretrained encoder" not in card


def test_export_of_a_librosa_model_documents_its_front_end(trained, tmp_path):
    _, root = trained
    out = tmp_path / "fold"
    assert main(["export", str(root / "instance_2" / "fold_1.keras"), "--format", "keras",
                 "--out", str(out), "-q"]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert "`features` `(batch, 32, 32)`" in card
    assert "librosa.feature.melspectrogram(y=y, sr=8000, n_fft=512, hop_length=128, " \
           "n_mels=32, fmin=60.0, fmax=None, power=2.0)" in card
    assert "librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)" in card
    assert "the mean of the outputs of one model" in card
    # Only Keras, librosa and numpy: the card's program gives predict's clip scores.
    model = root / "instance_2" / "fold_1.keras"
    _check_card_program(model, out, sys.executable, tmp_path, _demo_wavs(model))


def test_model_card_names_the_encoder_and_its_licence(trained):
    from xval.cli.export import _encoder
    from xval.core.dataset_info import DatasetInfo
    from xval.report.card import CardFacts, model_card
    from xval.report.results import InstanceResult

    _, root = trained
    info = DatasetInfo({**json.loads((root / "dataset.json").read_text()),
                        "front_end": {"encoder": "birdnet", "revision": "2.4",
                                      "weights_sha256": "ab12"}})
    facts = CardFacts(source="x", fmt="onnx", files=["model.onnx"], input_name="features",
                      input_shape=(4, 1024), members=3, check=None, front_end="none",
                      info=info, encoder=_encoder(info), code={}, class_counts=None,
                      date="today")
    card = model_card(facts, InstanceResult(root / "instance_2"), None)
    assert "`birdnet`, revision 2.4, weights sha256 ab12" in card
    assert "**CC BY-NC-SA 4.0 (non-commercial)**" in card
    assert "- Non-commercial use only (the encoder's licence)." in card
    assert "embeddings of the encoder `birdnet`" in card


def _refused(capsys, *argv):
    assert main(["export", *map(str, argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_export_refuses_bad_requests_and_writes_nothing(trained, tmp_path, capsys):
    _, root = trained
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    err = _refused(capsys, root / "instance_1", "--format", "keras", "--out", out,
                   "--overwrite")  # a folder of the user's is never replaced
    assert "--out" in err and "keep.txt" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    err = _refused(capsys, root / "instance_1", "--format", "keras", "--out",
                   root / "instance_1" / "export")
    assert "is inside the exported model" in err
    partial = tmp_path / "results" / "mel" / "experiment_1"
    shutil.copytree(root, partial, ignore=shutil.ignore_patterns("*.xlsx"))
    (partial / "instance_1" / "fold_2.json").unlink()  # its model kept: named
    err = _refused(capsys, partial / "instance_1", "--format", "onnx", "--out",
                   tmp_path / "new")
    assert "fold 2: fold_2.keras has no fold record beside it" in err
    (partial / "instance_1" / "fold_2.keras").unlink()
    err = _refused(capsys, partial / "instance_1", "--format", "onnx", "--out",
                   tmp_path / "new")
    assert "instance_1 is partial (2 of 3 folds done)" in err and "fold_<i>.keras" in err
    err = _refused(capsys, root, "--format", "onnx", "--out", tmp_path / "new")
    assert "is not an instance_<k> folder" in err
    err = _refused(capsys, root / "dataset.json", "--format", "keras", "--out",
                   tmp_path / "new")
    assert "neither an instance_<k> folder nor a .keras file" in err
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".new")]


def test_export_overwrite_replaces_an_earlier_export(trained, tmp_path, capsys):
    _, root = trained
    out = tmp_path / "again"
    argv = ["export", str(root / "instance_2"), "--format", "keras", "--out", str(out), "-q"]
    assert main(argv) == 0
    first = (out / "MODEL_CARD.md").read_text()
    err = _refused(capsys, *argv[1:])
    assert "already exists (an export written earlier); pass --overwrite" in err
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "model.keras"]
    assert (out / "MODEL_CARD.md").read_text().splitlines()[4:] == first.splitlines()[4:]


@pytest.mark.tensorflow
def test_export_savedmodel_on_the_tensorflow_backend(trained, tmp_path):
    pytest.importorskip("tensorflow")
    _, root = trained
    out = tmp_path / "savedmodel"
    env = {**os.environ, "KERAS_BACKEND": "torch"}  # the format chooses tensorflow
    proc = subprocess.run([sys.executable, "-m", "xval", "export", str(root / "instance_1"),
                           "--format", "savedmodel", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "savedmodel" / "saved_model.pb").is_file()
    # Its output is named as documented (the export's own check reads `scores`).
    assert "SavedModel vs Keras: max difference" in proc.stdout and "ONNX" not in proc.stdout
    card = (out / "MODEL_CARD.md").read_text()
    assert "differ from the Keras model's by at most" in card  # reloaded and compared


def test_card_snippet_quotes_a_feature_type_it_has_no_recipe_for():
    """A store's feature type with no librosa recipe is named in the snippet's error as a
    literal: a name holding quotes ended the string and put its code in the snippet."""
    import ast

    from xval.core.parameters import FeatureParams
    from xval.report.card_snippet import _feature_lines

    name = 'x\'"""+str(open("PWNED","w"))#\n'
    line = _feature_lines(FeatureParams.of({"feature": name})).strip()
    raised = ast.parse(line).body[0]
    assert isinstance(raised, ast.Raise)
    assert ast.literal_eval(raised.exc.args[0]) == \
        f"feature {name!r}: see preprocessing.features"


@pytest.mark.parametrize("feature", ["mel", "stft", "mfcc"])
def test_card_recipes_hold_a_stores_parameters_only_as_literals(feature):
    """The store's numbers in the card's program and recipe are literals: an edited
    `dataset.json` whose `n_fft` or `fmax` holds code put that code into the program a user
    runs. Each value is a constant of the code, equal to the store's, and no name of the
    payloads is in it."""
    import ast
    import textwrap

    from preprocessing.features.recipes import librosa_recipe
    from xval.core.parameters import FeatureParams
    from xval.report.card_snippet import _feature_lines

    hostile = {"n_fft": '__import__("os").system("touch PWNED")', "fmax": "1);import os#",
               "n_mels": "64\nopen('PWNED', 'w')", "power_exponent": "0.5;open('PWNED')"}
    fp = FeatureParams.of({"feature": feature, "compression": "power", **hostile})
    for text in (textwrap.dedent(_feature_lines(fp)), "\n".join(librosa_recipe(fp))):
        tree = ast.parse(text)
        constants = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
        assert hostile["n_fft"] in constants
        assert feature == "stft" or hostile["n_mels"] in constants
        assert not {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} & \
            {"open", "__import__", "os"}
        imported = {alias.name for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        assert imported <= {"librosa", "numpy"}  # the recipe's own import line only


def test_onnx_tracing_warnings_are_silenced_unless_verbose(monkeypatch, recwarn):
    """torch's TracerWarnings and the ONNX exporter's deprecation warnings, printed on every
    export, are dropped unless the command is verbose (`-v`)."""
    import warnings

    torch = pytest.importorskip("torch")
    from xval.inference.export import _quiet_export_warnings

    def warn_all():
        warnings.warn_explicit("Converting a tensor to a Python boolean",
                               torch.jit.TracerWarning, "nn.py", 1,
                               module="keras.src.backend.torch.nn")
        warnings.warn_explicit("legacy TorchScript-based ONNX export", DeprecationWarning,
                               "__init__.py", 1, module="torch.onnx")
        warnings.warn_explicit("the project's own", UserWarning, "x.py", 1, module="xval.x")

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # a command without -v
    with _quiet_export_warnings():
        warn_all()
    assert [str(w.message) for w in recwarn] == ["the project's own"]
    recwarn.clear()
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # -v
    with _quiet_export_warnings():
        warn_all()
    assert len(recwarn) == 3
