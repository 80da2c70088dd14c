"""Which encoder for my data (issue 75): the stacked store aligns encoders of different
block lengths clip by clip, `init` compares every installed encoder (each alone, side by
side, fused), and the encoder table's statistics are `xval compare`'s."""

import os

import numpy as np
import pandas as pd
import pytest

from preprocessing.features.stacked import EncoderPart, align
from preprocessing.stacked import stack_stores
from preprocessing.store import FeatureStore, write_store
from xval import Output
from xval.core.errors import DatasetError

AISFX = {"encoder": "aisfx", "sample_rate": 44100, "hop": 51200, "block": 101376, "dim": 3}
BIRDNET = {"encoder": "birdnet", "sample_rate": 48000, "hop": 72000, "block": 144000, "dim": 2}


def _encoder_store(path, spec, clips, *, frames, segment, seed, complete=False):
    """A store as an encoder's: each clip cut into rows of `segment` seconds (starts 0,
    segment, ...), each frame's values naming its clip, row and frame (so alignment can be
    read back), `dataset.json` naming the encoder and its block (with `complete`, every
    feature parameter, as a built store records them); clip `c<k>` is item `k % 3` and
    class `k % 2`."""
    rng = np.random.default_rng(seed)
    rows, feats = [], []
    for c, (clip, seconds) in enumerate(clips.items()):
        for r, start in enumerate(np.arange(0.0, seconds, segment)):
            x = rng.normal(size=(frames, spec["dim"])).astype(np.float32)
            x[:, 0] = 1000 * c + 10 * r + np.arange(frames)  # clip, row, frame
            feats.append(x)
            k = int(clip[1:])  # the clip's item and label: the same in every store
            rows.append({"item": f"item{k % 3}", "label": f"class{k % 2}", "clip": clip,
                         "source": f"{clip}.wav", "start": float(start)})
    params = {"feature": "pretrained", "encoder": spec["encoder"],
              "sample_rate": spec["sample_rate"], "hop_length": spec["hop"],
              "segment_seconds": segment}
    if complete:
        from preprocessing.parameters import feature_params
        from tests.conftest import ROOT
        from xval.config.loader import load_config

        params = dict(feature_params(load_config(ROOT / "config.ini").features, **params))
    return write_store(path, np.stack(feats), pd.DataFrame(rows), overwrite=True, info={
        "feature_params": params, "sample_rate": spec["sample_rate"],
        "front_end": {"encoder": spec["encoder"], "block_length": spec["block"],
                      "licence": f"{spec['encoder']} licence"}})


def test_align_takes_each_encoder_block_nearest_in_time():
    """Blocks of 2.3 s every 1.16 s against blocks of 3 s every 1.5 s, in rows cut at
    other starts: each frame of the first gets the other's frame whose centre is nearest."""
    a = EncoderPart({}, bins=1, frames=3, frame_seconds=1.16, centre_seconds=1.15, name="a")
    b = EncoderPart({}, bins=1, frames=2, frame_seconds=1.5, centre_seconds=1.5, name="b")
    xa = np.zeros((2, 3, 1))
    xb = np.arange(6, dtype=float).reshape(3, 2, 1)  # 3 rows starting at 0, 3, 6 s
    out = align((xa, np.array([0.0, 4.0]), a), (xb, np.array([0.0, 3.0, 6.0]), b))
    centres_a = np.array([[1.15, 2.31, 3.47], [5.15, 6.31, 7.47]])
    centres_b = np.array([1.5, 3.0, 4.5, 6.0, 7.5, 9.0])
    nearest = np.abs(centres_a[..., None] - centres_b).argmin(axis=-1)
    assert out.shape == (2, 3, 2)
    np.testing.assert_array_equal(out[..., 1], nearest)
    assert nearest.tolist() == [[0, 1, 1], [2, 3, 4]]


def test_stack_stores_aligns_clip_by_clip_and_drops_what_one_encoder_lacks(tmp_path):
    clips = {"c0": 4.0, "c1": 9.0, "c2": 2.0, "c3": 6.0}
    aisfx = _encoder_store(tmp_path / "a", AISFX, clips, frames=3, segment=3.5, seed=0)
    fewer = {k: v for k, v in clips.items() if k != "c2"}  # a file birdnet skipped
    birdnet = _encoder_store(tmp_path / "b", BIRDNET, fewer, frames=2, segment=5.0, seed=1)
    stacked = stack_stores([aisfx, birdnet], tmp_path / "ab")
    assert stacked.features.shape[1:] == (3, AISFX["dim"] + BIRDNET["dim"])
    assert stacked.info.get("stacked_dropped") == 1 and "c2" not in set(stacked.clips)
    assert stacked.info.feature_params.feature == "stacked"
    assert stacked.info.frame_seconds == pytest.approx(51200 / 44100)
    assert "birdnet: birdnet licence" in stacked.info.front_end["licence"]
    # Every row is the first store's, and each frame's other half is the nearest block of
    # the same clip: the marks say which clip it came from.
    first = np.asarray(aisfx.features, np.float32)[np.asarray(aisfx.clips) != "c2"]
    np.testing.assert_array_equal(np.asarray(stacked.features[..., :3], np.float32), first)
    mine = np.asarray(stacked.features[..., 0], np.float32) // 1000  # clip index, aisfx
    theirs = np.asarray(stacked.features[..., 3], np.float32) // 1000  # birdnet's (no c2)
    np.testing.assert_array_equal(theirs, np.vectorize({0: 0, 1: 1, 3: 2}.get)(mine))
    with pytest.raises(DatasetError, match="two encoder stores or more"):
        stack_stores([aisfx], tmp_path / "one")
    plain = write_store(tmp_path / "plain", np.zeros((2, 3, 3), np.float32),
                        pd.DataFrame({"item": ["a", "b"], "label": ["x", "y"]}))
    with pytest.raises(DatasetError, match="not an encoder's store"):
        stack_stores([aisfx, plain], tmp_path / "mixed")


def test_stack_stores_refuses_stores_that_are_not_of_the_same_files(tmp_path):
    """One store twice (or its copy), stores of other files, and a clip of another item or
    label in the second store are refused, naming the store, the clip and the values (the
    stacked rows would silently keep the first store's)."""
    clips = {"c0": 4.0, "c1": 6.0, "c2": 3.0}
    aisfx = _encoder_store(tmp_path / "a", AISFX, clips, frames=3, segment=3.5, seed=0)
    with pytest.raises(DatasetError, match="holds the same features as .*one store given"):
        stack_stores([aisfx, aisfx], tmp_path / "aa")
    with pytest.raises(DatasetError, match="is one of the stores stacked"):
        stack_stores([aisfx, aisfx], tmp_path / "a", overwrite=True)
    other = _encoder_store(tmp_path / "b", BIRDNET, {"d0": 4.0, "d1": 2.0}, frames=2,
                           segment=5.0, seed=1)
    with pytest.raises(DatasetError, match="shares no clip with .*'d0' there, 'c0' here"):
        stack_stores([aisfx, other], tmp_path / "ab")
    birdnet = _encoder_store(tmp_path / "b", BIRDNET, clips, frames=2, segment=5.0, seed=1)
    for column, value in (("item", "someone"), ("label", "class1"), ("label", "bird")):
        meta = birdnet.meta.drop(columns=["row"])
        meta.loc[meta["clip"] == "c0", column] = value
        changed = write_store(tmp_path / column, np.asarray(birdnet.features), meta,
                              overwrite=True, info={k: birdnet.info.get(k) for k in (
                                  "feature_params", "sample_rate", "front_end")})
        said = "classes .*'bird'.* but" if value == "bird" else \
            f"clip 'c0' is {column} .* but '{value}' in"
        with pytest.raises(DatasetError, match=said):
            stack_stores([aisfx, changed], tmp_path / "ab")
    assert not (tmp_path / "ab").exists()


def test_models_of_a_stacked_store_refuse_the_encoders_in_another_order(tmp_path):
    """`predict --dataset-info` of the same encoders side by side in another order: the
    shapes agree, the features do not."""
    import shutil

    from xval.core.errors import ConfigurationError
    from xval.inference.models import ModelSet, info_for

    clips = {"c0": 4.0, "c1": 6.0, "c2": 3.0}
    aisfx = _encoder_store(tmp_path / "a", AISFX, clips, frames=1, segment=5.0, seed=0,
                           complete=True)
    birdnet = _encoder_store(tmp_path / "b", BIRDNET, clips, frames=1, segment=5.0, seed=1,
                             complete=True)
    trained = stack_stores([aisfx, birdnet], tmp_path / "ab")
    swapped = stack_stores([birdnet, aisfx], tmp_path / "ba")
    assert trained.features.shape == swapped.features.shape
    instance = tmp_path / "instance_1"
    instance.mkdir()
    shutil.copy(trained.path / "dataset.json", instance / "dataset.json")
    models = ModelSet([instance / "fold_0.keras"], "one model")  # not loaded
    assert info_for(models, trained.path / "dataset.json").encoded_by == "aisfx+birdnet"
    with pytest.raises(ConfigurationError, match="'birdnet\\+aisfx' features, but the "
                                                 "models were trained on 'aisfx\\+birdnet'"):
        info_for(models, swapped.path / "dataset.json")


def _require(*names):
    from preprocessing.features import encoders

    missing = [n for n in names if not encoders.installed(n)]
    if missing:
        if os.environ.get("XVAL_REQUIRE_ENCODERS"):
            pytest.fail(f"{missing} not installed but XVAL_REQUIRE_ENCODERS is set")
        pytest.skip(f"{missing} not installed")


def test_tagging_heads_carry_an_l2_weight_and_class_heads_do_not():
    from xval.cli.scripts import encoder_head, encoder_instances
    from xval.config.recipes import ENCODER_HEADS, REFIT_HEAD

    stores = [("s_aisfx", "aisfx"), ("s_birdnet", "birdnet"), ("s_hf", "/models/wavlm")]
    tagging = encoder_instances(stores, "s_stacked", "tagging")
    assert tagging.count('"regularization_lambda": 0.01') == 4  # 3 encoders, the stacked
    assert "regularization_lambda" not in encoder_instances(stores, "s_stacked",
                                                            "classification")
    assert encoder_head("aisfx", "classification") == REFIT_HEAD
    assert encoder_head(None, "tagging") == {**REFIT_HEAD, "regularization_lambda": 0.01}
    assert encoder_head("resemblyzer", "tagging") is ENCODER_HEADS["resemblyzer"]


def test_init_refuses_a_list_of_encoders_it_cannot_read(tmp_path):
    from tests.conftest import python_here
    from tests.test_quickstart import _fsdd_like

    audio = tmp_path / "recordings"
    audio.mkdir()
    _fsdd_like(audio)
    for given, said in (("aisfx,aisfx", "each once"), ("none,aisfx", "none alone"),
                        ("aisfx,", "each once"), ("aisfx,birdnett", "did you mean birdnet")):
        bad = python_here("-m", "xval", "init", audio, "--encoders", given, cwd=tmp_path)
        assert bad.returncode == 2 and said in bad.stderr, (given, bad.stderr)
    assert not (tmp_path / "experiments").exists() and not (tmp_path / "data").exists()


def test_init_encoders_given_once_each_name_once_and_in_lower_case(capsys):
    """`--encoders` given twice: the second would replace the first without a word, so it
    is refused; its other spelling `--encoder` is refused naming it. A refused list says
    which name is wrong, in any case."""
    from xval.cli.init import _encoders
    from xval.cli.main import build_parser
    from xval.core.errors import ConfigurationError

    parser = build_parser("init", lazy=True)
    with pytest.raises(SystemExit):
        parser.parse_args(["init", "audio", "--encoders", "aisfx", "--encoders", "birdnet"])
    assert "--encoders birdnet given after aisfx" in capsys.readouterr().err
    assert parser.parse_args(["init", "audio", "--encoders", "aisfx"]).encoder == "aisfx"
    with pytest.raises(ConfigurationError, match="^--encoder aisfx: python -m xval init takes "
                                                 "--encoders NAMES.$"):
        parser.parse_args(["init", "audio", "--encoder", "aisfx"])
    for given, said in (("aisfx,aisfx", "aisfx named twice"), ("aisfx,,birdnet", "an empty "
                        "name"), ("none,aisfx", "none with other"), ("AISFX", "did you mean "
                                                                      "aisfx?"),
                        ("aisfx;birdnet", "with commas: --encoders aisfx,birdnet"),
                        ("aisfx birdnet", "with commas: --encoders aisfx,birdnet")):
        with pytest.raises(ConfigurationError, match=said):
            _encoders(given)


def test_init_encoders_one_store_each_and_one_model_once(tmp_path, monkeypatch):
    """Two models whose folders share a name get a store each (`hf_wavlm`, `hf_wavlm_2`:
    one wrote over the other); one folder named twice (`hf:` and a trailing `/`) is
    refused before any store is built."""
    from xval.cli import init
    from xval.core.errors import ConfigurationError

    assert init._store_tags(["aisfx", "/a/wavlm", "hf:/b/wavlm", "c/wavlm"]) == [
        "aisfx", "hf_wavlm", "hf_wavlm_2", "hf_wavlm_3"]
    monkeypatch.setattr(init, "_encoder", lambda name: name)  # no model is loaded
    (tmp_path / "wavlm").mkdir()
    given = f"hf:{tmp_path}/wavlm,{tmp_path}/wavlm/"
    with pytest.raises(ConfigurationError, match="wavlm/ are one model named twice"):
        init._encoders(given)
    assert init._encoders(f"aisfx,{tmp_path}/wavlm") == ["aisfx", f"{tmp_path}/wavlm"]


def test_check_encoder_refuses_an_empty_hf_and_a_built_in_name_in_capitals():
    from preprocessing.features.pretrained import check_encoder
    from xval.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="hf: names no model; expected hf:FOLDER"):
        check_encoder("hf:")
    with pytest.raises(ConfigurationError, match="lower case: give aisfx_frames"):
        check_encoder("AISFX_FRAMES")


@pytest.mark.slow
def test_init_compares_every_installed_encoder(tmp_path):
    """With aisfx and BirdNET installed, `init` writes one store per encoder, their stacked
    store, and a script of one instance per encoder, one on the stacked embeddings, the CNN
    and their late fusion; the run's table and the workbook say which encoder wins, with
    the statistics `xval compare` gives; the stacked instance predicts from audio with the
    features its store holds."""
    from openpyxl import load_workbook

    from tests.conftest import python_here
    from tests.test_quickstart import _fsdd_like
    from xval.inference.models import read_features
    from xval.report.comparison import Target, compare
    from xval.report.encoders import encoder_table
    from xval.report.results import ExperimentResults

    _require("aisfx", "birdnet")
    audio = tmp_path / "recordings"
    audio.mkdir()
    _fsdd_like(audio)
    project = tmp_path / "project"
    project.mkdir()
    init = python_here("-m", "xval", "init", audio, "--name", "wavs", "--no-progress",
                       cwd=project)
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
    assert "birdnet embeddings, CC BY-NC-SA 4.0" in init.stdout
    assert "the encoders' embeddings side by side" in init.stdout
    script = (project / "experiments" / "wavs.py").read_text()
    assert '"dataset": "wavs_aisfx"' in script and '"dataset": "wavs_birdnet"' in script
    assert '"dataset": "wavs_aisfx_birdnet"' in script
    assert "experiment[5] = Ensemble(1, 2)" in script and "non-commercial" in script
    stacked = FeatureStore(project / "data" / "wavs_aisfx_birdnet")
    assert stacked.features.shape[-1] == 512 + 1024
    short = ("--set", "epochs=2", "--set", "patience=2")
    run = python_here("experiments/wavs.py", "1", "3", *short, cwd=project)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    run = python_here("experiments/wavs.py", "5", "5", *short, cwd=project)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Encoders (test clip accuracy" in run.stdout
    exp = project / "results" / "wavs" / "experiment_1"
    results = ExperimentResults(exp)
    table = encoder_table(results)
    assert {row.id for row in table.rows} == {1, 2, 3, 5}
    assert {row.encoder for row in table.rows} == {"aisfx", "birdnet", "aisfx+birdnet",
                                                  "fusion of 1, 2"}
    other = next(row for row in table.rows if row.versus is not None)
    compared = compare([Target(exp, table.best), Target(exp, other.id)])
    pair = compared.pairs[0]  # best - other: the table's row is other - best
    assert pair.difference == pytest.approx(-other.versus[0], abs=1e-12)
    assert pair.p == pytest.approx(other.versus[4], rel=1e-9)
    assert (pair.better, pair.equivalent, pair.worse) == pytest.approx(
        (other.versus[8], other.versus[7], other.versus[6]), rel=1e-9)
    sheet = load_workbook(exp / "experiment_1.xlsx")["Encoders"]
    ids = [row[0] for row in sheet.iter_rows(min_row=2, max_row=5, values_only=True)]
    assert sorted(ids) == [1, 2, 3, 5] and ids[0] == table.best
    # New audio gets the features the stacked store holds for it (each encoder's, aligned).
    clip = stacked.meta.iloc[0]
    new = list(read_features(clip["source"], stacked.info.feature_params))[0]["features"]
    np.testing.assert_allclose(new[0], np.asarray(stacked.features[0], np.float32),
                               atol=2e-2, rtol=2e-2)


def _check_against(exp, config):
    """`benchmarks.encoders against`: each encoder instance against the linear probe on its
    own store; the MLP on the mel store (4) and the ensemble (3) have no probe and are
    refused by name before any is scored (the mel one was scored as "head - probe")."""
    import argparse
    import contextlib
    import io

    from benchmarks.encoders import against

    def probe(*instances):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            against(argparse.Namespace(experiment=str(exp), config=str(config),
                                       instances=list(instances)))
        return out.getvalue()

    for other, said in ((4, "reads the store mel, which holds no encoder's embeddings"),
                        (3, "is an ensemble of instances")):
        with pytest.raises(SystemExit, match=rf"--instances {other}: instance {other} {said}"):
            probe(1, other)
    lines = probe(1, 2).splitlines()
    assert [line.split(":")[0] for line in lines] == ["instance 1 (sounds_aisfx)",
                                                     "instance 2 (sounds_birdnet)"]
    assert all("head accuracy" in line and ", probe " in line for line in lines)


def test_encoder_table_rows_each_encoder_instance_and_their_fusion(tmp_path):
    """The table's rows: an instance reading the experiment's own encoder store (no
    `dataset` of its own), one reading another encoder's store, their ensemble; not an
    instance of another feature. The best first, each other row against it as the
    Statistics sheet computes it; each class's F1."""
    from tests.conftest import tiny_store, write_config
    from xval import Ensemble, Experiment
    from xval.config.loader import load_config
    from xval.config.recipes import MLP_HEAD
    from xval.report.encoders import encoder_lines, encoder_table
    from xval.report.results import ExperimentResults
    from xval.report.stats import fold_scores, versus

    config = load_config(write_config(tmp_path))
    clips = {f"c{k}": 4.0 for k in range(18)}
    _encoder_store(config.data_dir / "sounds_aisfx", AISFX, clips, frames=3, segment=5.0,
                   seed=0)
    _encoder_store(config.data_dir / "sounds_birdnet", BIRDNET, clips, frames=2,
                   segment=5.0, seed=1)
    tiny_store(config.data_dir, "mel", n_items=3, n_classes=2)
    exp = Experiment(description="encoders", dataset="sounds_aisfx", number=1, num_folds=3,
                     parameters={"epochs": 2, "batch_size": 8}, config=str(config.path))
    head = {**MLP_HEAD, "comment_1": "head", "comment_2": ""}
    exp[1] = head
    exp[2] = {**head, "dataset": "sounds_birdnet"}
    exp[3] = Ensemble(1, 2)
    exp[4] = {"architecture": "mlp", "reshaping_type": "none", "dataset": "mel",
              "comment_1": "not an encoder", "comment_2": ""}
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    results = ExperimentResults(config.results_dir / "sounds_aisfx" / "experiment_1")
    table = encoder_table(results)
    assert {(row.id, row.encoder) for row in table.rows} == {
        (1, "aisfx"), (2, "birdnet"), (3, "fusion of 1, 2")}
    assert table.rows[0].id == table.best and table.rows[0].versus is None
    assert table.class_score == "F1" and table.classes == ["class0", "class1"]
    for row in table.rows[1:]:
        expected = versus(results[row.id], results[table.best], row.scores, table.metric,
                          table.level, 0.05, 0.01, (1, 3))
        assert row.versus[:5] == pytest.approx(expected[:5], nan_ok=True)
        assert row.scores == fold_scores(results[row.id], table.metric, "test", table.level)
        assert len(row.per_class) == 2
    lines = encoder_lines(results)
    assert lines[0].startswith("Encoders (test") and "per class (test F1" in "\n".join(lines)
    _check_against(results.path, config.path)
    # The best instance, its worst fold's file gone: partial, its mean over fewer folds at
    # least as high. The reference stays a complete instance, and the row says partial.
    best = table.best
    worst = min(table.rows[0].scores, key=lambda f: (table.rows[0].scores[f], -f))
    for path in (results.path / f"instance_{best}").glob(f"*fold_{worst}.*"):
        path.unlink()
    results = ExperimentResults(results.path)
    assert results[best].status == "partial"
    table = encoder_table(results)
    assert table.best != best and results[table.best].status == "complete"
    assert f"{best}  " in next(line for line in encoder_lines(results)
                               if "(partial: 2 folds)" in line)
