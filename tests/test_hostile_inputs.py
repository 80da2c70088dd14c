"""Bounds before work and no "a bug" for bad input (issue 45, points 2 and 3).

Every count a user gives is checked against what the data allows before anything is built;
an address is checked for range at once; a garbage dataset description, a skops file that
is no classifier of this fold, an unknown encoder are each one error naming the file or the
value and the fix."""

import contextlib
import http.server
import io
import json
import re
import socket
import sys
import threading
import zipfile

import numpy as np
import pytest

from preprocessing.features.pretrained import load_encoder
from tests.manifests import record_text
from xval import Experiment, Output, SearchOptions
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.network import check_reachable, host_port
from xval.folds.splitters import MAX_FOLDS, ItemKFold, distinct_splits
from xval.inference.classifiers import check_classes, check_width
from xval.training import embeddings

BASE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1", "comment_2": "c2",
        "hidden_units": 8, "num_layers": 1, "epochs": 1, "batch_size": 32}


# -- 2. bounds before work -------------------------------------------------------------------

def test_distinct_splits_counts_the_ways_items_fall_into_folds():
    assert distinct_splits(6, 3, 1000) == 90  # S(6, 3)
    assert distinct_splits(4, 2, 100) == 7
    assert distinct_splits(5, 5, 3) == 1  # leave one item out: one way
    assert distinct_splits(6, 3, 90) is None  # not below the repeats asked for
    assert distinct_splits(1000, 5, 10**9) is None  # far more than any count


def test_item_kfold_refuses_more_folds_than_allowed_at_once():
    with pytest.raises(ConfigurationError,
                       match=rf"num_repeats=1000000000: 5 folds x 1000000000 repeats is "
                             rf"5000000000 folds .* above the {MAX_FOLDS} allowed .* use "
                             rf"num_repeats <= 2000\."):
        ItemKFold(5, n_repeats=10**9)


def test_item_kfold_refuses_repeats_the_items_cannot_split_differently():
    groups = np.repeat([f"s{i}" for i in range(6)], 2)
    with pytest.raises(ConfigurationError,
                       match=r"num_repeats=91: 6 items fall into 3 folds in only 90 different "
                             r"ways.*use num_repeats <= 90"):
        ItemKFold(3, n_repeats=91).split_items(groups)
    assert len(ItemKFold(3, n_repeats=2).split_items(groups)) == 6


def test_experiment_dry_run_refuses_a_billion_repeats(config_path, config, store):
    exp = Experiment(description="bounds", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    exp[1] = dict(BASE)
    with pytest.raises(ConfigurationError, match=r"num_repeats=1000000000: .*folds to train"):
        exp.run(config=config, overrides={"num_repeats": 1_000_000_000}, dry_run=True,
                output=Output(out=lambda *a: None))
    assert not (config.results_dir / "tiny").exists()


def test_search_trials_are_bounded_and_the_dry_run_says_how_many_run(config_path, config,
                                                                      store):
    from xval.config.space import Float, Search

    exp = Experiment(description="bounds", dataset="tiny", number=1, num_folds=3,
                     config=str(config_path))
    exp.search = Search(base=dict(BASE), space={"learning_rate": Float(1e-4, 1e-2, log=True)},
                        n_trials=3)
    lines = []
    exp.run(config=config, search=SearchOptions(trials=40), dry_run=True, output=Output(out=lines.append))
    assert any(str(line).startswith("Search: 40 trial(s)") for line in lines), lines
    with pytest.raises(ConfigurationError, match=r"--trials 1000000000: 1000000000 trials x 3 "
                                                 r"folds each .* use at most 3333 trials"):
        exp.run(config=config, search=SearchOptions(trials=1_000_000_000), dry_run=True,
                output=Output(out=lambda *a: None))
    with pytest.raises(ConfigurationError, match=r"--trials 2000: 2000 trials x 6 folds each"):
        exp.run(config=config, search=SearchOptions(trials=2000, inner_folds=2), dry_run=True,
                output=Output(out=lambda *a: None))
    assert not (config.results_dir / "tiny").exists()


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:70000", r"'127.0.0.1:70000': its port '70000' is not a port number"),
    ("head:http", r"'head:http': its port 'http' is not a port number"),
    ("ray://head:0", r"port 0 is no port to connect to"),
])
def test_host_port_refuses_a_port_out_of_range(address, message):
    with pytest.raises(ConfigurationError, match=message + ".*from 1 to 65535"):
        host_port(address, 10001)


def test_host_port_reads_good_addresses():
    assert host_port("127.0.0.1:6379") == ("127.0.0.1", 6379)
    assert host_port("ray://head", 10001) == ("head", 10001)


def test_experiment_cli_refuses_ray_address_out_of_range_before_running(config_path, capsys):
    exp = Experiment(description="bounds", dataset="tiny", number=1, config=str(config_path))
    exp[1] = dict(BASE)
    with pytest.raises(SystemExit) as done:
        exp.main(["--executor", "ray", "--ray-address", "127.0.0.1:70000", "--dry-run"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'127.0.0.1:70000': its port '70000'" in err[0]


@pytest.fixture
def web_server():
    """A real HTTP/1 server on a local port (what a Ray dashboard address is)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(60)
def test_ray_address_of_a_web_server_or_a_silent_port_is_refused_within_seconds(web_server):
    """Ray retries an address where something else listens for about 13 minutes
    (20 tries of 40 s); the executor asks it for HTTP/2 once, within the stated 5 s."""
    from xval.executors.ray import RayExecutor

    with pytest.raises(ConfigurationError, match=rf"Ray cluster at '{web_server}' does not "
                                                 r"answer as one \(.*web server.*within 5 s\); "
                                                 r"start it with `ray start --head`"):
        RayExecutor(address=web_server).start()
    with socket.socket() as silent:  # listens, accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ConfigurationError, match=r"said nothing back, within 1 s"):
            check_reachable(address, "The Ray cluster", "", grpc=True, timeout=1)


# -- 3. no "a bug" for bad input -------------------------------------------------------------

def _saved_dataset(folder, wav):
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"audio": [str(wav)] * 2, "label": ["a", "b"],
                                          "speaker_id": ["s1", "s2"]})
    dataset.cast_column("audio", datasets.Audio()).save_to_disk(str(folder))
    return folder


@pytest.mark.parametrize("text, message", [
    ("garbage{", r"dataset_info\.json is not valid JSON \(JSONDecodeError"),
    ("[1, 2]", r"dataset_info\.json holds a JSON list, not the object save_to_disk writes"),
    ('{"features": 5}', r"cannot be opened as a saved dataset: datasets says TypeError"),
    ('{"features": {"audio": {"_type": "Nope"}}}', r"datasets says ValueError: Feature type"),
])
def test_hf_source_names_a_garbage_dataset_info(tmp_path, text, message):
    import soundfile as sf

    from preprocessing.corpora.hf_datasets import hf_source

    sf.write(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    folder = _saved_dataset(tmp_path / "ds", tmp_path / "a.wav")
    (folder / "dataset_info.json").write_text(text)
    with pytest.raises(DatasetError, match=message + r".*save_to_disk"):
        hf_source(folder)


def _fitted(width=4, classes=3):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, width)), np.arange(30) % classes
    return embeddings.make_classifier("logreg", 1.0).fit(x, y)


def _with_a_pickled_array(data):
    """The skops bytes with their first array replaced by a pickled object array."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        arrays = [n for n in source.namelist() if n.endswith(".npy")]
        for name in source.namelist():
            body = source.read(name)
            if name == arrays[0]:
                buffer = io.BytesIO()
                np.save(buffer, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
                body = buffer.getvalue()
            target.writestr(name, body)
    return out.getvalue()


def test_embeddings_load_refuses_a_pickled_object_array(tmp_path):
    path = tmp_path / "fold_0.skops"
    path.write_bytes(_with_a_pickled_array(embeddings.dumps(_fitted())))
    with pytest.raises(ConfigurationError,
                       match=r"fold_0\.skops is not a classifier this project wrote "
                             r"\(ValueError: Object arrays cannot be loaded.*Restore the file"):
        embeddings.load_classifier(path)


def test_check_classes_and_width_name_a_classifier_of_another_shape(tmp_path):
    path = tmp_path / "fold_1.skops"
    path.write_bytes(embeddings.dumps(_fitted(width=4, classes=3)))
    pipeline = embeddings.load_classifier(path)
    check_classes(path, pipeline, {"classes": ["a", "b", "c"]})
    check_width(path, pipeline, 4)
    with pytest.raises(ConfigurationError,
                       match=r"fold_1\.skops is a classifier of 3 classes, but its fold record "
                             r"describes 2.*Restore the file"):
        check_classes(path, pipeline, {"classes": ["a", "b"]})
    with pytest.raises(ConfigurationError,
                       match=r"fold_1\.skops was fitted on embeddings of 4 values, but its "
                             r"fold model gives 8.*rerun the fold"):
        check_width(path, pipeline, 8)


def test_load_encoder_unknown_name_lists_the_encoders_and_install_lines(tmp_path,
                                                                        monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hub"))
    listed = r"The built-in encoders: aisfx \(`pip install.*resemblyzer.*\[pretrained\]"
    with pytest.raises(ConfigurationError, match=r"encoder='nosuch': not a built-in encoder.*"
                                                 r"huggingface-cli download nosuch.*" + listed):
        load_encoder("nosuch")
    folder = tmp_path / "etc"
    folder.mkdir()
    with pytest.raises(ConfigurationError, match=r"holds no config\.json.*" + listed):
        load_encoder(str(folder))
    (folder / "config.json").write_text(json.dumps({}))
    with pytest.raises(ConfigurationError,
                       match=r"config\.json is not a transformers model configuration.*"
                             + listed):
        load_encoder(str(folder))


def _fsdd_folder(folder):
    import soundfile as sf

    folder.mkdir()
    t = np.arange(4000) / 8000
    for speaker in ("ann", "bob", "cat"):
        for digit in range(2):
            sf.write(folder / f"{digit}_{speaker}_0.wav",
                     0.5 * np.sin(2 * np.pi * (300 + 200 * digit) * t), 8000)
    return folder


@pytest.mark.parametrize(("encoder", "why"), [
    ("nosuch", r"not a built-in encoder; as a transformers model it needs transformers, not "
               r"installed: pip install -e '.*\[pretrained\]'"),
    ("{tmp}/plain", r"the folder .*plain holds no config\.json"),
    ("{tmp}/garbled", r".*garbled/config\.json is not a transformers model configuration"),
    ("./nothere", r"there is no folder \./nothere"),
])
def test_encoder_names_are_checked_before_extraction_on_the_default_install(
        encoder, why, tmp_path, monkeypatch):
    # The runtime install has no transformers: an unknown name was "a bug" after
    # "Extracting features...". It is refused first, with the encoders and install lines.
    from tests.conftest import python_here, write_config

    for name in ("transformers", "huggingface_hub"):
        monkeypatch.setitem(sys.modules, name, None)
    write_config(tmp_path)
    audio = _fsdd_folder(tmp_path / "recordings")
    (tmp_path / "plain").mkdir()
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "config.json").write_text("{not json")
    proc = python_here("-m", "preprocessing", "regex", audio, "--pattern", "fsdd", "--out",
                       tmp_path / "X", "--encoders", encoder.format(tmp=tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Extracting" not in proc.stdout and not (tmp_path / "X").exists()
    [line] = proc.stderr.splitlines()
    assert re.match(r"error: encoder='.*': " + why, line), line
    # From a checkout run elsewhere: its path, with the extra that runs each.
    assert re.search(r"The built-in encoders: aisfx \(`pip install -e '.*\[torch\]' && pip "
                     r"install --no-deps aisfx==0\.1\.2`\).*resemblyzer.*Any other name "
                     r"\(hf:NAME\) is a transformers audio model \(`pip install -e "
                     r"'.*\[pretrained\]'`\)", line)


# -- 5. nothing silent, nothing unclear ------------------------------------------------------

def _one_instance_experiment(tmp_path):
    from tests.test_report import write_manifest

    folder = tmp_path / "experiment_1" / "instance_1"
    folder.mkdir(parents=True)
    for i, value in enumerate((0.6, 0.7)):
        fold = {"instance": 1, "fold": i, "status": "ok",
                "items": {"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]},
                "metrics": {s: {"accuracy": value} for s in ("train", "val", "test")}}
        (folder / f"fold_{i}.json").write_text(record_text(fold))
    write_manifest(tmp_path / "experiment_1", 2)
    return tmp_path / "experiment_1"


def test_compare_refuses_a_single_instance(tmp_path):
    from xval.report.comparison import Target, compare

    experiment = _one_instance_experiment(tmp_path)
    for targets in ([Target(experiment, 1)], [Target(experiment)],
                    [Target(experiment, 1), Target(experiment, 1)]):
        with pytest.raises(ConfigurationError,
                           match=r"names 1 instance\(s\); compare needs two or more: name "
                                 r"another instance \(EXP_DIR:K\)"):
            compare(targets)


def _lhotse_manifests(tmp_path, source, start=0.0):
    lhotse = pytest.importorskip("lhotse")
    import soundfile as sf

    (tmp_path / "corpus").mkdir()
    (tmp_path / "pool").mkdir(exist_ok=True)
    recordings, supervisions = [], []
    for i in range(4):
        path = tmp_path / "pool" / f"r{i}.wav"
        sf.write(path, (0.3 * np.sin(np.arange(16000) * 0.1 * (i + 1))).astype(np.float32),
                 16000)
        recording = lhotse.Recording.from_file(path, recording_id=f"r{i}")
        recordings.append(lhotse.Recording(
            id=f"r{i}", sources=[lhotse.audio.AudioSource(
                type="file", channels=[0], source=source.format(i=i))],
            sampling_rate=recording.sampling_rate, num_samples=recording.num_samples,
            duration=recording.duration))
        supervisions.append(lhotse.SupervisionSegment(
            id=f"s{i}", recording_id=f"r{i}", start=start if i == 0 else 0.0, duration=0.5,
            speaker=f"spk{i % 2}", language=("en", "fr")[i // 2]))
    paths = [tmp_path / "corpus" / "recordings.jsonl", tmp_path / "corpus" / "sups.jsonl"]
    lhotse.RecordingSet.from_recordings(recordings).to_file(paths[0])
    lhotse.SupervisionSet.from_segments(supervisions).to_file(paths[1])
    return paths


def test_lhotse_source_refuses_a_recording_outside_the_root(tmp_path):
    from preprocessing.corpora import lhotse_source

    paths = _lhotse_manifests(tmp_path, "../pool/r{i}.wav")
    root = tmp_path / "corpus"
    with pytest.raises(DatasetError,
                       match=r"Recording 'r0': its source '\.\./pool/r0\.wav' leads outside "
                             r"the root folder .*corpus.*--allow-outside-root"):
        lhotse_source(paths, label_field="language", root=root)
    rows, skipped = lhotse_source(paths, label_field="language", root=root,
                                  allow_outside_root=True)
    assert len(rows) == 4 and skipped == []


def test_lhotse_source_names_a_supervision_with_a_negative_start(tmp_path):
    from preprocessing.corpora import lhotse_source

    paths = _lhotse_manifests(tmp_path, str(tmp_path / "pool" / "r{i}.wav"), start=-0.5)
    with pytest.raises(DatasetError,
                       match=r"Supervision 's0' of Lhotse manifest .*sups\.jsonl starts at "
                             r"-0\.5 s, before its recording 'r0' begins.*Fix the manifest"):
        lhotse_source(paths, label_field="language")


def test_search_check_refuses_a_condition_that_can_never_hold():
    from xval.config.space import Categorical, Int, Search

    space = {"architecture": Categorical(("mlp", "vgg_mini")),
             "hidden_units": Int(8, 64, when={"architecture": "mlpp"})}
    search = Search(base={"reshaping_type": "none"}, space=space)
    with pytest.raises(ConfigurationError,
                       match=r"search space hidden_units: when=\{'architecture': 'mlpp'\} can "
                             r"never hold \(the space gives architecture one of 'mlp', "
                             r"'vgg_mini'\)"):
        search.check(lambda instance, spec: {})
    base_only = Search(base={"architecture": "mlp"},
                       space={"hidden_units": Int(8, 64, when={"num_layers": 3})})
    with pytest.raises(ConfigurationError, match=r"num_layers is not searched and the base "
                                                 r"gives it None"):
        base_only.check(lambda instance, spec: {})


def test_resolve_takes_numpy_scalars_as_their_python_values():
    from tests.conftest import resolve, training_defaults

    base = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "a",
            "comment_2": "b"}
    params = resolve(1, {**base, "class_weights": np.True_,
                         "learning_rate": np.float64(0.01)},
                     training_defaults=training_defaults())
    assert params["class_weights"] is True and type(params["learning_rate"]) is float
    with pytest.raises(Exception, match=r"class_weights=array\(\[1\]\) is a numpy\.ndarray; "
                                        r"expected a bool"):
        resolve(1, {**base, "class_weights": np.array([1])},
                training_defaults=training_defaults())


def test_load_audio_says_a_file_without_audio_is_no_audio_file(tmp_path):
    from preprocessing.audio import load_audio

    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(DatasetError, match=r"passwd: it is no audio file \(its name has no "
                                           r"extension.*give an audio file"):
        load_audio(text, sample_rate=16000)


def test_refusal_of_a_foreign_folder_reads_give_another_store(tmp_path):
    from preprocessing.store_output import store_output
    from xval.core.outputs import check_replace

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match=r"Give another store\.$"):
        check_replace(folder, store_output(), overwrite=True, what="the store")


def test_init_items_message_says_why_files_that_share_an_id_stay_apart():
    from xval.cli.init_data import NO_SHARED_ID

    assert "no two file names share" not in NO_SHARED_ID
    assert "bark_01 ... bark_06" in NO_SHARED_ID


# -- 4. resume means resume ------------------------------------------------------------------

def _tones(folder):
    import soundfile as sf

    for k, hz in enumerate((220, 330, 440)):
        (folder / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        y = 0.3 * np.sin(2 * np.pi * hz * np.arange(8000) / 16000)
        sf.write(folder / f"c{k % 2}" / f"tone{hz}.wav", y.astype(np.float32), 16000)
    return folder


def test_augment_folder_resumes_the_same_command_and_refuses_another(tmp_path):
    pytest.importorskip("audiomentations")
    from augmentation import augment_folder
    from augmentation.command import RUN_RECORD
    from tests.conftest import ROOT
    from xval.config.loader import load_config

    params = dict(load_config(ROOT / "config.ini").augmentation)
    source, out = _tones(tmp_path / "in"), tmp_path / "out"
    kwargs = {"params": params, "seed": 3, "workers": 1, "progress": False}
    first = augment_folder(source, out, 2, **kwargs)
    assert first["files"] == 3 and first["resumed"] == 0 and (out / RUN_RECORD).is_file()
    whole = {p: p.read_bytes() for p in out.rglob("*.wav")}
    # A kill or a full disk part-way: one recording's versions lost, another's half written.
    (out / "c0" / "tone220_aug02.wav").unlink()
    for p in (out / "c1").glob("tone330_*.wav"):
        p.unlink()
    again = augment_folder(source, out, 2, **kwargs)
    assert again["resumed"] == 1 and again["files"] == 2
    assert {p: p.read_bytes() for p in out.rglob("*.wav")} == whole
    with pytest.raises(ConfigurationError, match=r"holds the outputs of another augmentation "
                                                 r"run \(its augmentation\.json differs in "
                                                 r"seed\); pass --overwrite"):
        augment_folder(source, out, 2, **{**kwargs, "seed": 4})
    assert augment_folder(source, out, 2, **{**kwargs, "seed": 4}, overwrite=True)["files"] == 3


def test_sigkilled_augmentation_takes_its_workers_and_the_same_command_resumes(tmp_path):
    """Issue 45: a SIGKILLed `python -m augmentation` left two workers writing with parent
    PID 1, and the rerun refused. The workers end within seconds of their parent; the same
    command then resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import soundfile as sf

    pytest.importorskip("audiomentations")
    from tests.conftest import ROOT, write_config

    source, out = tmp_path / "in", tmp_path / "out"
    for k in range(8):
        (source / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        y = 0.3 * np.sin(2 * np.pi * (200 + 40 * k) * np.arange(16000) / 16000)
        sf.write(source / f"c{k % 2}" / f"tone{k}.wav", y.astype(np.float32), 16000)
    command = [sys.executable, "-m", "augmentation", str(source), str(out), "40", "--workers",
               "2", "--no-progress", "--config", str(write_config(tmp_path))]
    proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(list(out.rglob("*.wav"))) < 20 and time.monotonic() < deadline:
            assert proc.poll() is None, "finished before it could be killed"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)  # the parent alone: no clean-up runs
        proc.wait()
        gone = time.monotonic() + 15
        while time.monotonic() < gone:
            try:
                os.killpg(proc.pid, 0)  # a worker of the session still alive
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the workers outlived their killed parent")
        written = len(list(out.rglob("*.wav")))  # what the workers wrote before they ended
        assert 20 <= written < 8 * 41
        time.sleep(1)
        assert len(list(out.rglob("*.wav"))) == written  # nothing writes any more
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Resumed:" in again.stdout and len(list(out.rglob("*.wav"))) == 8 * 41


def test_a_segment_far_longer_than_every_clip_is_refused_before_extraction(tmp_path):
    """Issue 45, point 2: `--segment-seconds 3600` on clips of half a second extracted for
    minutes towards gigabytes of zero padding; it is refused from the file headers."""
    import pandas as pd
    import soundfile as sf

    from preprocessing import build_store
    from preprocessing.build import feature_params
    from preprocessing.segment_length import check_segment_length
    from tests.conftest import ROOT
    from xval.config.loader import load_config

    defaults = load_config(ROOT / "config.ini").features

    paths = []
    for k in range(4):
        (tmp_path / "in").mkdir(exist_ok=True)
        paths.append(tmp_path / "in" / f"c{k % 2}_{k}.wav")
        y = 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)
        sf.write(paths[-1], y.astype(np.float32), 16000)
    rows = pd.DataFrame({"path": [str(p) for p in paths], "label": ["a", "b"] * 2,
                         "item": ["i0", "i1", "i2", "i3"], "clip": [p.stem for p in paths]})
    for seconds in (1.0, 4.0):  # the default; 8 times the clips: kept
        check_segment_length(rows, feature_params(defaults, segment_seconds=seconds))
    with pytest.raises(ConfigurationError,
                       match=r"segment_seconds=3600: the longest of the 4 clips lasts 0\.50 s, "
                             r"so every row would be at least 99\.99% zero padding \(4 rows of "
                             r"360001 x 64 features, about 0\.3 GiB\); use a segment_seconds "
                             r"of at most 1"):
        build_store(rows, tmp_path / "store", workers=1, progress=False,
                    params=feature_params(defaults, segment_seconds=3600,
                                          segment_hop_seconds=3600))
    assert not (tmp_path / "store").exists()


def test_store_naming_code_as_its_feature_type_is_refused_by_the_dry_run(tmp_path):
    """A store whose `dataset.json` names code as its feature type passed the dry run, and
    each fold then failed: the plan refuses it naming the store, the type, and the fix;
    nothing in the name runs."""
    from tests.conftest import run_script_here, tiny_store, write_config, write_script

    write_config(tmp_path)
    store = tiny_store(tmp_path / "data", "tiny")
    described = json.loads((store.path / "dataset.json").read_text())
    code = "__import__('os').system('touch PWNED')"
    described["feature_params"] = {"feature": code}
    (store.path / "dataset.json").write_text(json.dumps(described))
    script = write_script(tmp_path, f"""
        from xval import Experiment
        experiment = Experiment(description="d", dataset="tiny", number=1, num_folds=3)
        experiment[1] = {BASE!r}
        if __name__ == "__main__":
            experiment.main()
    """)
    dry = run_script_here(script, "--dry-run")
    assert dry.returncode == 2, dry.stdout[-2000:]
    assert f"its dataset.json names the feature type {code!r}, which is none registered " \
        "here (stft, mel" in dry.stderr and "rebuild it" in dry.stderr
    assert not list(tmp_path.rglob("PWNED"))
