"""The corpus sources (issue 36): Kaldi data directories, Lhotse manifests and Hugging Face
dataset folders, on tiny corpora written here (real WAV and FLAC files), built into stores
by the same `build_store` as every source. The same stretches of audio give the same rows
whichever way they are described: cut into files of their own (a CSV manifest), as Kaldi
`segments`, as Lhotse supervisions or cuts, as files or bytes of a saved dataset."""

import io
import json
import shutil
import tempfile

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing import sources
from preprocessing.audio import Region, load_audio
from preprocessing.build import build_store, check_rows, feature_params
from preprocessing.corpora import hf_source, kaldi_source, lhotse_source
from preprocessing.segment_length import choose_segment, clip_durations
from tests.conftest import ROOT, run_here
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, DatasetError

SR = 8000
SPEAKERS = ("anna", "bob", "carl")
LANGUAGES = ("en", "fr")
DEFAULTS = load_config(ROOT / "config.ini").features


@pytest.fixture(scope="module")
def params():
    return feature_params(DEFAULTS, sample_rate=SR, n_fft=256, hop_length=128, n_mels=24,
                          segment_seconds=0.5, segment_hop_seconds=0.25, fmin=50.0)


def recordings(folder):
    """One 2 s recording per speaker: 1 s of "en" (a low tone), then 1 s of "fr" (a high
    tone); two FLAC files, one WAV. Returns {recording id: (path, signal)}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for s, speaker in enumerate(SPEAKERS):
        y = np.concatenate([0.5 * librosa.tone(300 + 40 * s, sr=SR, duration=1.0),
                            0.3 * librosa.tone(1500 + 40 * s, sr=SR, duration=1.0)])
        path = folder / f"{speaker}_rec.{'wav' if s == 0 else 'flac'}"
        sf.write(path, y.astype(np.float32), SR)
        out[f"{speaker}_rec"] = (path, y.astype(np.float32))
    return out


def utterances(recs):
    """(utterance id, recording id, start, end, speaker, language) of every stretch."""
    return [(f"{rec}-{k}", rec, float(k), float(k + 1), rec.split("_")[0], LANGUAGES[k])
            for rec in recs for k in range(2)]


def write_kaldi(folder, recs, *, segments=True, label_file="utt2lang"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wav.scp").write_text("".join(f"{r} {p}\n" for r, (p, _) in recs.items()))
    utts = utterances(recs)
    if segments:
        (folder / "segments").write_text(
            "".join(f"{u} {r} {a:.2f} {b:.2f}\n" for u, r, a, b, _, _ in utts))
        (folder / "utt2spk").write_text("".join(f"{u} {s}\n" for u, _, _, _, s, _ in utts))
        (folder / label_file).write_text("".join(f"{u} {g}\n" for u, *_, g in utts))
    else:
        (folder / "utt2spk").write_text("".join(f"{r} {r.split('_')[0]}\n" for r in recs))
        (folder / label_file).write_text("".join(f"{r} {LANGUAGES[i % 2]}\n"
                                                 for i, r in enumerate(recs)))
    return folder


def cut_files(folder, recs):
    """Every stretch written as a file of its own (the decoded samples, as float), listed in
    a CSV manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for utt, rec, start, end, speaker, language in utterances(recs):
        y = sf.read(recs[rec][0], dtype="float32")[0][int(start * SR):int(end * SR)]
        sf.write(folder / f"{utt}.wav", y, SR, subtype="FLOAT")
        rows.append({"path": f"{utt}.wav", "label": language, "item": speaker, "clip": utt})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def store_of(rows, out, params, **kwargs):
    return build_store(rows, out, params=params, workers=1, progress=False, **kwargs)[0]


# -- regions --------------------------------------------------------------------------


def test_load_audio_region_reads_the_stretch_and_refuses_one_past_the_end(tmp_path):
    path = tmp_path / "x.flac"
    y = np.linspace(-0.5, 0.5, 2 * SR, dtype=np.float32)
    sf.write(path, y, SR)
    part, _ = load_audio(path, sample_rate=SR, region=Region(offset=0.5, duration=0.25))
    np.testing.assert_allclose(part, y[SR // 2:SR // 2 + SR // 4], atol=1e-4)
    tail, _ = load_audio(path, sample_rate=SR, region=Region(offset=1.5))
    assert len(tail) == SR // 2
    edge, _ = load_audio(path, sample_rate=SR, region=Region(offset=1.5, duration=0.51))
    assert len(edge) == SR // 2  # 10 ms past the end: within Lhotse's tolerance, cut
    with pytest.raises(DatasetError, match="ends at 2.5 s, after the end of the file"):
        load_audio(path, sample_rate=SR, region=Region(offset=1.5, duration=1.0))
    with pytest.raises(DatasetError, match="starts at 3 s, at or after the end"):
        load_audio(path, sample_rate=SR, region=Region(offset=3.0))
    with pytest.raises(DatasetError, match="duration=0.0: expected seconds > 0"):
        Region(offset=1.0, duration=0.0)


def test_check_rows_refuses_overlapping_regions_of_a_file():
    rows = pd.DataFrame({"path": ["/a.wav"] * 3, "label": ["x"] * 3, "item": ["s1", "s2", "s3"],
                         "clip": ["u1", "u2", "u3"], "offset": [0.0, 1.0, 2.0],
                         "duration": [1.0, 1.0, 1.0]})
    check_rows(rows)  # regions that touch do not overlap
    rows.loc[2, "offset"] = 1.5
    with pytest.raises(DatasetError,
                       match=r"same audio file more than once .*: /a.wav \[1-2 s\]"):
        check_rows(rows)
    whole = pd.DataFrame({"path": ["/a.wav", "/a.wav"], "label": ["x", "x"],
                          "item": ["s1", "s2"], "clip": ["a", "u1"], "offset": [np.nan, 0.5],
                          "duration": [np.nan, 0.5]})
    with pytest.raises(DatasetError, match="leaks between training and test"):
        check_rows(whole)


# -- Kaldi ----------------------------------------------------------------------------


def test_kaldi_source_segments_give_the_rows_of_the_cut_files(tmp_path, params):
    recs = recordings(tmp_path / "audio")
    rows, skipped = kaldi_source(write_kaldi(tmp_path / "data", recs), label_file="utt2lang")
    assert skipped == [] and len(rows) == 6
    assert set(rows["item"]) == set(SPEAKERS) and set(rows["label"]) == set(LANGUAGES)
    assert rows.set_index("clip").loc["bob_rec-1", ["offset", "duration"]].tolist() == [1, 1]
    kaldi = store_of(rows, tmp_path / "kaldi", params)
    cut, _ = sources.manifest_source(cut_files(tmp_path / "cut", recs), item_column="item",
                                     clip_column="clip")
    reference = store_of(cut, tmp_path / "cut_store", params)
    np.testing.assert_array_equal(kaldi.features, reference.features)
    for column in ("item", "label", "clip"):
        assert kaldi.meta[column].tolist() == reference.meta[column].tolist()
    # Segment starts are places in the recording: the second utterance's start at 1 s.
    second = kaldi.meta[kaldi.meta["clip"] == "anna_rec-1"]
    assert second["start"].tolist() == pytest.approx(1.0 + reference.meta[
        reference.meta["clip"] == "anna_rec-1"]["start"].to_numpy())
    assert second["source"].iloc[0] == str(recs["anna_rec"][0])


def test_kaldi_source_without_segments_reads_whole_files_from_root(tmp_path, params):
    recs = recordings(tmp_path / "audio")
    data = write_kaldi(tmp_path / "data", recs, segments=False, label_file="text")
    (data / "wav.scp").write_text("".join(f"{r} audio/{p.name}\n" for r, (p, _) in recs.items()))
    rows, _ = kaldi_source(data, label_file="text", root=tmp_path)
    assert rows["clip"].tolist() == sorted(recs) and "offset" not in rows
    assert rows["path"].tolist() == [str(tmp_path / "audio" / recs[r][0].name)
                                     for r in sorted(recs)]
    store = store_of(rows, tmp_path / "s", params)
    assert store.meta["start"].min() == 0.0 and store.meta["start"].max() > 1.0


def test_kaldi_source_skips_what_it_cannot_use_and_lists_why(tmp_path, params):
    recs = recordings(tmp_path / "audio")
    data = write_kaldi(tmp_path / "data", recs)
    (data / "utt2lang").write_text((data / "utt2lang").read_text().replace("bob_rec-0 en\n",
                                                                           ""))
    with open(data / "wav.scp", "a") as f:
        f.write(f"gone_rec {tmp_path / 'gone.wav'}\n")
    with open(data / "segments", "a") as f:
        f.write("gone_rec-0 gone_rec 0.0 1.0\nghost-0 ghost 0 1\n")
    with open(data / "utt2spk", "a") as f:
        f.write("gone_rec-0 dora\nghost-0 dora\n")
    rows, skipped = kaldi_source(data, label_file="utt2lang")
    reasons = {s["reason"] for s in skipped}
    assert "utterance bob_rec-0: not in utt2lang" in reasons
    assert "utterance gone_rec-0: file not found" in reasons
    assert "utterance ghost-0: its recording 'ghost' is not in wav.scp" in reasons
    assert len(rows) == 5
    store = store_of(rows, tmp_path / "s", params, skipped=skipped)
    assert len(store.info["skipped"]) == 3


@pytest.mark.parametrize("entry", ["sox in.sph -t wav - |", "-", "ark:feats.ark",
                                   "/data/raw.ark:1234"])
def test_kaldi_source_refuses_commands_and_archives_in_wav_scp(tmp_path, entry):
    data = write_kaldi(tmp_path / "data", recordings(tmp_path / "audio"))
    (data / "wav.scp").write_text(f"anna_rec {entry}\n")
    with pytest.raises(DatasetError, match="not an audio file .*not run by default. Write the"):
        kaldi_source(data, label_file="utt2lang")


@pytest.mark.parametrize("change,match", [
    (lambda d: (d / "wav.scp").unlink(), "has no wav.scp.*give the data directory itself"),
    (lambda d: (d / "utt2lang").unlink(), r"--label-file 'utt2lang': .* does not exist; the "
                                          "files of"),
    (lambda d: (d / "segments").write_text("u1 anna_rec 0.5\n"), "expected a key and 3 fields"),
    (lambda d: (d / "segments").write_text("u1 anna_rec 1.0 0.5\n"), "expected 0 <= start < end"),
    (lambda d: (d / "utt2spk").write_text("u1 a\nu1 b\n"), "key 'u1' is given twice"),
])
def test_kaldi_source_bad_directory_names_the_fix(tmp_path, change, match):
    data = write_kaldi(tmp_path / "data", recordings(tmp_path / "audio"))
    change(data)
    with pytest.raises(DatasetError, match=match):
        kaldi_source(data, label_file="utt2lang")


def _preprocess(*args, cwd, progress=False):
    """`python -m preprocessing ARGS`, run in this process (`run_here`: its files, lines and
    exit code; the command's process is tested in test_cli_flags.py)."""
    from xval.cli.preprocess import main

    return run_here(main, *args, "--sample-rate", "8000", "--n-mels", "16", "--workers", "1",
                    *([] if progress else ["--no-progress"]), cwd=cwd)


def test_cli_kaldi_builds_a_store_and_refuses_a_directory_without_wav_scp(tmp_path):
    data = write_kaldi(tmp_path / "data", recordings(tmp_path / "audio"))
    ok = _preprocess("kaldi", data, "--label-file", "utt2lang", "--out", tmp_path / "s",
                     cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "from 6 utterances of 3 recordings, 3 items, 2 classes" in ok.stdout
    info = json.loads((tmp_path / "s" / "dataset.json").read_text())
    assert info["source"].startswith("kaldi ")
    (data / "wav.scp").unlink()
    bad = _preprocess("kaldi", data, "--label-file", "utt2lang", "--out", tmp_path / "t",
                      cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert bad.stderr.startswith("error: ") and "has no wav.scp" in bad.stderr
    assert not (tmp_path / "t").exists()


def _programs_or_skip(*programs):
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: the piped wav.scp tests run real "
                    "Debian programs (apt-get install -y sox flac)")


def _piped_scp(data, recs, root):
    """wav.scp as recipes write it: FLAC decoded by `flac`, WAV copied through `sox`."""
    (data / "wav.scp").write_text("".join(
        f"{r} flac -c -d -s {p.relative_to(root)} |\n" if p.suffix == ".flac"
        else f"{r} sox {p.relative_to(root)} -t wav - |\n" for r, (p, _) in recs.items()))


def test_kaldi_source_runs_piped_wav_scp_only_when_asked(tmp_path, params):
    _programs_or_skip("flac", "sox")
    recs = recordings(tmp_path / "audio")
    data = write_kaldi(tmp_path / "data", recs)
    plain = store_of(kaldi_source(data, label_file="utt2lang")[0], tmp_path / "plain", params)
    _piped_scp(data, recs, tmp_path)
    with pytest.raises(DatasetError, match="not run by default.*pass --run-wav-scp-commands "
                                           "to run the commands of a wav.scp you trust"):
        kaldi_source(data, label_file="utt2lang", root=tmp_path)
    rows, skipped = kaldi_source(data, label_file="utt2lang", root=tmp_path,
                                 run_commands=True)
    assert skipped == [] and rows["read"].map(callable).all()
    piped, _ = build_store(rows, tmp_path / "piped", params=params, workers=2,
                           progress=False)  # the readers cross to the worker processes
    np.testing.assert_array_equal(piped.features, plain.features)
    assert piped.meta["clip"].tolist() == plain.meta["clip"].tolist()
    (tmp_path / "audio" / "bob_rec.flac").unlink()
    rows, skipped = kaldi_source(data, label_file="utt2lang", root=tmp_path,
                                 run_commands=True)
    broken = build_store(rows, tmp_path / "broken", params=params, workers=1,
                         progress=False)[1]["skipped"]
    assert len(broken) == 2 and "flac in 'flac -c -d -s audio/bob_rec.flac |' exited with " \
        "status 1" in broken[0]["reason"]


@pytest.mark.parametrize("entry,match", [
    ("sox a.wav -t wav - 2>/dev/null |", r"shell syntax \('>'\)"),
    ("flac -c -d $HOME/a.flac |", r"shell syntax \('\$'\)"),
    ("cat a.wav; rm -f b |", r"shell syntax \(';'\)"),
    ("sox a.wav -t wav - || cat b.wav |", r"shell syntax \('\|\|'\)"),
    ("cat audio/*.wav |", r"shell syntax \('\*'\)"),
    ("sox a.wav -t wav - | | cat |", "has an empty stage"),
    ("no-such-decoder a.sph |", "the program 'no-such-decoder' .* is not installed"),
    ("sox 'a.wav -t wav - |", "cannot be split into arguments"),
])
def test_kaldi_source_run_commands_refuses_what_is_not_a_plain_pipeline(tmp_path, entry,
                                                                         match):
    data = write_kaldi(tmp_path / "data", recordings(tmp_path / "audio"))
    (data / "wav.scp").write_text(f"anna_rec {entry}\n")
    with pytest.raises(DatasetError, match=f"recording 'anna_rec'.*{match}"):
        kaldi_source(data, label_file="utt2lang", run_commands=True)


def test_cli_kaldi_run_wav_scp_commands_builds_the_store(tmp_path):
    _programs_or_skip("flac", "sox")
    recs = recordings(tmp_path / "audio")
    data = write_kaldi(tmp_path / "data", recs)
    _piped_scp(data, recs, tmp_path)
    args = ("kaldi", data, "--label-file", "utt2lang", "--root", tmp_path)
    refused = _preprocess(*args, "--out", tmp_path / "s", cwd=ROOT)
    assert refused.returncode == 2 and "--run-wav-scp-commands" in refused.stderr
    ok = _preprocess(*args, "--run-wav-scp-commands", "--out", tmp_path / "s", cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "from 6 utterances of 3 recordings" in ok.stdout


# -- Lhotse ---------------------------------------------------------------------------


def lhotse_manifests(folder, recs, *, speakers=True, command=False):
    lhotse = pytest.importorskip("lhotse")
    folder.mkdir(parents=True, exist_ok=True)
    recordings_ = [lhotse.Recording.from_file(path, recording_id=rec)  # as given: relative
                   for rec, (path, _) in recs.items()]                   # paths stay relative
    if command:
        source = recordings_[0].sources[0]
        recordings_[0].sources[0] = type(source)(type="command", channels=[0],
                                                 source=f"cat {source.source}")
    supervisions = [lhotse.SupervisionSegment(
        id=utt, recording_id=rec, start=start, duration=end - start,
        speaker=speaker if speakers else None, language=language,
        custom={"emotion": "calm" if start == 0 else "angry"})
        for utt, rec, start, end, speaker, language in utterances(recs)]
    recording_set = lhotse.RecordingSet.from_recordings(recordings_)
    supervision_set = lhotse.SupervisionSet.from_segments(supervisions)
    recording_set.to_file(folder / "recordings.jsonl.gz")
    supervision_set.to_file(folder / "supervisions.jsonl")
    cuts = lhotse.CutSet.from_manifests(recordings=recording_set,
                                        supervisions=supervision_set).trim_to_supervisions()
    cuts.to_file(folder / "cuts.jsonl.gz")
    return folder


def test_lhotse_source_supervisions_and_cuts_give_the_kaldi_rows(tmp_path, params):
    recs = recordings(tmp_path / "audio")
    manifests = lhotse_manifests(tmp_path / "lhotse", recs)
    rows, skipped = lhotse_source([manifests / "supervisions.jsonl",
                                   manifests / "recordings.jsonl.gz"], label_field="language")
    assert skipped == [] and sorted(rows["clip"]) == sorted(u[0] for u in utterances(recs))
    lhotse_store = store_of(rows, tmp_path / "l", params)
    kaldi_rows, _ = kaldi_source(write_kaldi(tmp_path / "data", recs), label_file="utt2lang")
    kaldi_store = store_of(kaldi_rows, tmp_path / "k", params)
    assert lhotse_store.content_hash == kaldi_store.content_hash  # the same rows, bit for bit
    cut_rows, _ = lhotse_source([manifests / "cuts.jsonl.gz"], label_field="emotion")
    cut_store = store_of(cut_rows, tmp_path / "c", params)
    np.testing.assert_array_equal(cut_store.features, kaldi_store.features)
    assert set(cut_store.meta["label"]) == {"calm", "angry"}  # a custom field


def test_lhotse_source_without_speakers_names_the_fix(tmp_path):
    manifests = lhotse_manifests(tmp_path / "lhotse", recordings(tmp_path / "audio"),
                                 speakers=False)
    with pytest.raises(DatasetError, match="--item-field speaker: no supervision .* has it; "
                                           "give every supervision a speaker"):
        lhotse_source([manifests / "cuts.jsonl.gz"], label_field="language")
    rows, _ = lhotse_source([manifests / "cuts.jsonl.gz"], label_field="language",
                            item_field="recording_id")
    assert set(rows["item"]) == {f"{s}_rec" for s in SPEAKERS}
    with pytest.raises(DatasetError, match="--label-field mood: .* Their fields: language, "
                                           "text|--label-field mood: .*emotion"):
        lhotse_source([manifests / "cuts.jsonl.gz"], label_field="mood",
                      item_field="recording_id")


def test_lhotse_source_refuses_commands_and_odd_manifests(tmp_path):
    recs = recordings(tmp_path / "audio")
    manifests = lhotse_manifests(tmp_path / "lhotse", recs, command=True)
    with pytest.raises(DatasetError, match="reads its audio through a command .*never run"):
        lhotse_source([manifests / "cuts.jsonl.gz"], label_field="language")
    with pytest.raises(DatasetError, match="is RecordingSet; give a CutSet manifest, or"):
        lhotse_source([manifests / "recordings.jsonl.gz"], label_field="language")
    (tmp_path / "x.jsonl").write_text('{"a": 1}\n')
    with pytest.raises(DatasetError, match="is not a Lhotse manifest"):
        lhotse_source([tmp_path / "x.jsonl"], label_field="language")


def test_cli_lhotse_without_speakers_exits_2_and_writes_nothing(tmp_path):
    manifests = lhotse_manifests(tmp_path / "lhotse", recordings(tmp_path / "audio"),
                                 speakers=False)
    bad = _preprocess("lhotse", manifests / "cuts.jsonl.gz", "--label-field", "language",
                      "--out", tmp_path / "s", cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "give every supervision a speaker" in bad.stderr and not (tmp_path / "s").exists()
    ok = _preprocess("lhotse", manifests / "recordings.jsonl.gz",
                     manifests / "supervisions.jsonl", "--label-field", "language",
                     "--item-field", "recording_id", "--out", tmp_path / "s", cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "from 6 supervisions of 3 recordings, 3 items, 2 classes" in ok.stdout


def test_lhotse_source_relative_paths_name_the_path_tried_and_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Recording.from_file("audio/x.wav") keeps the relative path
    recs = {rec: (path.relative_to(tmp_path), y)
            for rec, (path, y) in recordings(tmp_path / "audio").items()}
    manifests = lhotse_manifests(tmp_path / "lhotse", recs)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(DatasetError, match=r"none of its audio files was found \(e.g. "
                       r".*elsewhere/audio/anna_rec.wav\)\. Their paths are relative.*pass "
                       r"--root FOLDER, the folder they are relative to"):
        lhotse_source([manifests / "cuts.jsonl.gz"], label_field="language")
    (tmp_path / "elsewhere" / "audio").mkdir()  # one file found: the others are skipped
    (tmp_path / "audio" / "anna_rec.wav").rename(tmp_path / "elsewhere" / "audio" /
                                                 "anna_rec.wav")
    rows, skipped = lhotse_source([manifests / "cuts.jsonl.gz"], label_field="language")
    assert len(rows) == 2 and skipped[0]["path"] == str(tmp_path / "elsewhere" / "audio" /
                                                        "bob_rec.flac")
    assert skipped[0]["reason"].endswith(
        f"file not found (the relative path 'audio/bob_rec.flac', read from "
        f"{tmp_path / 'elsewhere'}: pass --root FOLDER, the folder it is relative to)")
    (tmp_path / "elsewhere" / "audio" / "anna_rec.wav").rename(tmp_path / "audio" /
                                                               "anna_rec.wav")
    rows, skipped = lhotse_source([manifests / "cuts.jsonl.gz"], label_field="language",
                                  root=tmp_path)
    assert skipped == [] and len(rows) == 6 and rows.attrs["unit"] == "cuts"


def test_cli_lhotse_root_refuses_only_a_store_inside_the_audio_folder(tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    recs = {rec: (path.relative_to(tmp_path), y)
            for rec, (path, y) in recordings(tmp_path / "audio").items()}
    manifests = lhotse_manifests(tmp_path / "lhotse", recs)
    args = ("lhotse", manifests / "recordings.jsonl.gz", manifests / "supervisions.jsonl",
            "--label-field", "language", "--root", tmp_path)
    # A project inside --root, beside the audio: nothing read is written over.
    ok = _preprocess(*args, "--out", tmp_path / "project" / "data" / "s", cwd=ROOT,
                     progress=True)
    assert ok.returncode == 0, ok.stderr
    assert "6 rows from 6 supervisions of 3 recordings, 3 items" in ok.stdout
    assert "Extracting features of 6 supervisions of 3 recordings into" in ok.stdout
    inside = _preprocess(*args, "--out", tmp_path / "audio" / "s", cwd=ROOT)
    assert inside.returncode == 2, inside.stdout
    assert "is inside the audio folder" in inside.stderr and "audio" in inside.stderr


# -- Hugging Face datasets -------------------------------------------------------------


def _wav_bytes(y):
    buffer = io.BytesIO()
    sf.write(buffer, y, SR, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def saved_dataset(folder, recs, *, held, splits=False, audio=True):
    """The stretches as a dataset saved with `save_to_disk`: their files' paths, or their
    WAV bytes held in the table (`held`); labels a `ClassLabel`, items `speaker_id`."""
    datasets = pytest.importorskip("datasets")
    cut_manifest = cut_files(folder.parent / f"{folder.name}_files", recs)
    table = pd.read_csv(cut_manifest)
    paths = [str(cut_manifest.parent / p) for p in table["path"]]
    column = [_wav_bytes(sf.read(p, dtype="float32")[0]) for p in paths] if held else paths
    dataset = datasets.Dataset.from_dict({"audio": column, "speaker_id": table["item"].tolist(),
                                          "label": table["label"].tolist()})
    if audio:
        dataset = dataset.cast_column("audio", datasets.Audio())
    dataset = dataset.class_encode_column("label")
    if splits:
        half = dataset.train_test_split(test_size=0.5, seed=0)
        dataset = datasets.DatasetDict({"train": half["train"], "test": half["test"]})
    dataset.save_to_disk(str(folder))
    return folder


@pytest.mark.parametrize("held,splits", [(False, False), (True, True)])
def test_hf_source_saved_dataset_gives_the_kaldi_rows(tmp_path, params, held, splits):
    recs = recordings(tmp_path / "audio")
    folder = saved_dataset(tmp_path / "ds", recs, held=held, splits=splits)
    rows, skipped = hf_source(folder)
    assert skipped == [] and len(rows) == 6 and set(rows["label"]) == set(LANGUAGES)
    if held:  # audio kept in the Arrow table: read by the extraction workers
        assert rows["path"].str.contains("#").all() and rows["read"].map(callable).all()
        assert sorted(rows["clip"].str.split("/").str[0].unique()) == ["test", "train"]
    hf_store = store_of(rows, tmp_path / "h", params)
    in_workers, _ = build_store(rows, tmp_path / "w", params=params, workers=2,
                                progress=False)
    np.testing.assert_array_equal(in_workers.features, hf_store.features)
    kaldi_rows, _ = kaldi_source(write_kaldi(tmp_path / "data", recs), label_file="utt2lang")
    kaldi = store_of(kaldi_rows, tmp_path / "k", params)
    order = lambda store: np.lexsort((store.meta["start"] % 1, store.meta["item"],  # noqa: E731
                                      store.meta["label"]))
    np.testing.assert_array_equal(hf_store.features[order(hf_store)],
                                  kaldi.features[order(kaldi)])


def test_hf_source_audiofolder_with_metadata(tmp_path, params, monkeypatch):
    pytest.importorskip("datasets")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    recs = recordings(tmp_path / "audio")
    manifest = cut_files(tmp_path / "folder", recs)
    table = pd.read_csv(manifest).rename(columns={"path": "file_name", "item": "speaker",
                                                  "label": "language"})
    manifest.unlink()
    table.drop(columns="clip").to_csv(manifest.parent / "metadata.csv", index=False)
    (manifest.parent / "notes.txt").write_text("not audio")
    rows, _ = hf_source(manifest.parent, label_column="language")
    assert sorted(rows["clip"]) == sorted(table["file_name"])
    assert set(rows["item"]) == set(SPEAKERS)
    store = store_of(rows, tmp_path / "s", params)
    assert store.info["n_items"] == 3 and store.classes == sorted(LANGUAGES)
    assert not list((tmp_path / "tmp").iterdir())  # datasets' cache: a folder removed after


@pytest.mark.parametrize("kwargs,audio,match", [
    ({}, False, "has no audio column.*cast the column of audio with"),
    ({"label_column": "emotion"}, True, "--label-column emotion: not a column of .*; its "
                                        "columns: audio, speaker_id, label"),
    ({"item_column": "client"}, True, "--item-column client: not a column"),
    ({"audio_column": "speaker_id"}, True, "--audio-column speaker_id: not an audio column"),
])
def test_hf_source_bad_columns_name_the_fix(tmp_path, kwargs, audio, match):
    folder = saved_dataset(tmp_path / "ds", recordings(tmp_path / "audio"), held=False,
                           audio=audio)
    with pytest.raises(DatasetError, match=match):
        hf_source(folder, **kwargs)


def test_cli_hf_label_column_that_does_not_exist_exits_2(tmp_path):
    folder = saved_dataset(tmp_path / "ds", recordings(tmp_path / "audio"), held=True)
    bad = _preprocess("hf", folder, "--label-column", "emotion", "--out", tmp_path / "s",
                      cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "--label-column emotion: not a column" in bad.stderr
    assert not (tmp_path / "s").exists()
    ok = _preprocess("hf", folder, "--out", tmp_path / "s", cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "from 6 files, 3 items, 2 classes" in ok.stdout


def test_corpus_options_of_another_source_are_refused():
    from argparse import Namespace

    from xval.cli.sources import options_given, rows

    kaldi = sources.get("kaldi")
    with pytest.raises(ConfigurationError, match="kaldi needs --label-file"):
        rows(kaldi, ["x"], Namespace())
    with pytest.raises(ConfigurationError, match="--label-field is an option of --corpus "
                                                 "lhotse, not of --corpus kaldi"):
        options_given(Namespace(label_field="language"), kaldi, sources.corpora())
    with pytest.raises(ConfigurationError, match="--root is an option of --corpus kaldi, "
                                                 "lhotse or hf, not of a folder of audio"):
        options_given(Namespace(root="."), None, sources.corpora())


# -- python -m xval init --------------------------------------------------------------


def _init(*args, cwd):
    """`python -m xval init ARGS`, run in this process (`run_here`; the command's process is
    tested in test_quickstart.py and test_init.py)."""
    from xval.cli.main import main

    return run_here(main, "init", *args, "--no-progress", cwd=cwd)


@pytest.mark.slow
def test_init_takes_a_kaldi_directory_and_refuses_bad_input_writing_nothing(tmp_path):
    data = write_kaldi(tmp_path / "data", recordings(tmp_path / "audio"))
    project = tmp_path / "project"
    project.mkdir()
    missing = _init(data, "--corpus", "kaldi", cwd=project)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "kaldi needs --label-file" in missing.stderr
    mixed = _init(data, "--corpus", "kaldi", "--label-file", "utt2lang", "--label-field",
                  "language", cwd=project)
    assert mixed.returncode == 2 and "--label-field is an option of --corpus lhotse" in \
        mixed.stderr
    assert list(project.iterdir()) == []  # no config.ini, no store, no script
    init = _init(data, "--corpus", "kaldi", "--label-file", "utt2lang", cwd=project)
    assert init.returncode == 0, init.stdout + init.stderr
    assert "Found 6 files" in init.stdout and "2 classes, 3 items (kaldi " in init.stdout
    assert (project / "experiments" / "data.py").is_file()
    assert json.loads((project / "data" / "data" / "dataset.json").read_text())["n_items"] == 3
    assert "Run the experiment with:" in init.stdout


# -- Hugging Face as its users expect it (issue 46) -------------------------------------


def _class_label_dataset(folder, recs, names, *, speakers=True):
    """The stretches as bytes in a saved dataset whose labels are a `ClassLabel` of `names`
    (ids in that order, not sorted), with or without a speaker column."""
    datasets = pytest.importorskip("datasets")
    table = pd.read_csv(cut_files(folder.parent / f"{folder.name}_files", recs))
    audio = [_wav_bytes(sf.read(folder.parent / f"{folder.name}_files" / p,
                                dtype="float32")[0]) for p in table["path"]]
    columns = {"audio": audio, "label": [names.index(x) for x in table["label"]]}
    if speakers:
        columns["speaker_id"] = table["item"].tolist()
    dataset = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio())
    dataset.cast_column("label", datasets.ClassLabel(names=names)).save_to_disk(str(folder))
    return folder


def test_hf_source_classes_follow_the_class_label_ids(tmp_path, params):
    recs = recordings(tmp_path / "audio")
    folder = _class_label_dataset(tmp_path / "ds", recs, ["fr", "en", "de"])
    rows, _ = hf_source(folder)
    assert rows.attrs["classes"] == ["fr", "en"]  # id order; "de" has no example
    store = store_of(rows, tmp_path / "s", params)
    assert store.classes == ["fr", "en"]
    assert (store.meta["target"] == store.meta["label"].map({"fr": 0, "en": 1})).all()


def test_hf_source_held_bytes_give_the_kaldi_clip_durations(tmp_path):
    recs = recordings(tmp_path / "audio")
    rows, _ = hf_source(_class_label_dataset(tmp_path / "ds", recs, ["en", "fr"]))
    kaldi_rows, _ = kaldi_source(write_kaldi(tmp_path / "data", recs), label_file="utt2lang")
    np.testing.assert_allclose(clip_durations(rows), clip_durations(kaldi_rows))
    assert choose_segment(clip_durations(rows)) == choose_segment(clip_durations(kaldi_rows))


def test_hf_source_without_speaker_column_takes_items_as_a_folder_does(tmp_path,
                                                                        monkeypatch):
    pytest.importorskip("datasets")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    manifest = cut_files(tmp_path / "folder", recordings(tmp_path / "audio"))
    table = pd.read_csv(manifest).rename(columns={"path": "file_name"})
    manifest.unlink()
    table[["file_name", "label"]].to_csv(manifest.parent / "metadata.csv", index=False)
    rows, _ = hf_source(manifest.parent)  # anna_rec-0.wav, anna_rec-1.wav: one recording
    assert dict(zip(rows["clip"], rows["item"]))["anna_rec-1.wav"] == "anna_rec"
    assert rows["item"].nunique() == 3
    assert "has no speaker column" in rows.attrs["recordings"]
    held, _ = hf_source(_class_label_dataset(tmp_path / "ds", recordings(tmp_path / "a2"),
                                             ["en", "fr"], speakers=False))
    assert held["item"].tolist() == held["clip"].tolist()  # no names: one item per example
    assert held.attrs["recordings"].startswith("every example is its own item; ")


@pytest.mark.slow
def test_init_takes_an_audiofolder_without_speakers_as_a_folder(tmp_path):
    pytest.importorskip("datasets")
    manifest = cut_files(tmp_path / "folder", recordings(tmp_path / "audio"))
    table = pd.read_csv(manifest).rename(columns={"path": "file_name"})
    manifest.unlink()
    table[["file_name", "label"]].to_csv(manifest.parent / "metadata.csv", index=False)
    project = tmp_path / "project"
    project.mkdir()
    init = _init(manifest.parent, "--corpus", "hf", "--encoders", "none", cwd=project)
    assert init.returncode == 0, init.stdout + init.stderr
    out = " ".join(init.stdout.split())
    assert "2 classes, 3 items (hf " in out and "Items: the recording ids in the file " \
        "names" in out and "has no speaker column" in out
    assert "Segments: 1 s every 0.5 s (the clips last 1.00-1.00 s" in out
