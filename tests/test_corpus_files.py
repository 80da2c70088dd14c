"""Corpus files as their tools write them, and pipes that cannot hang a build (issue 59,
items 1 and 2).

A piped `wav.scp` command runs within a time limit (`--command-timeout`), past which every
stage is killed and the build ends with one line naming the entry; a command that fails,
writes nothing or writes no audio skips its utterances with a reason naming the entry; a
killed build leaves no partial file and no command running. Kaldi tables saved with a
byte-order mark or CRLF line ends read as their plain twins; empty and malformed Lhotse
manifests and Hugging Face folders are named as such; impossible values (a rate of 0, no
duration, a start that is not a number) are refused with the recording named.

The commands are real programs (`cat`, `sleep`, `true`, `false`, `echo`, `yes`: coreutils),
run in this process; one test kills a real build process.
"""

import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from preprocessing.build import build_store, feature_params
from preprocessing.corpora import hf_source, kaldi_source, lhotse_source
from preprocessing.corpora.pipes import CommandTimeout, parse_pipeline, run_pipeline
from tests.conftest import ROOT, run_here
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError, DatasetError

SR = 8000
DEFAULTS = load_config(ROOT / "config.ini").features


@pytest.fixture(scope="module")
def params():
    return feature_params(DEFAULTS, sample_rate=SR, n_fft=256, hop_length=128, n_mels=16,
                          segment_seconds=0.25, segment_hop_seconds=0.25, fmin=50.0)


def _wavs(folder, n=4):
    """`n` 0.5 s tones, two speakers, two labels: {recording id: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k in range(n):
        path = folder / f"r{k}.wav"
        t = np.arange(SR // 2) / SR
        sf.write(path, (0.4 * np.sin(2 * np.pi * (300 + 200 * k) * t)).astype(np.float32), SR)
        out[f"r{k}"] = path
    return out


def _kaldi(folder, entries, *, bom=False, crlf=False):
    """A Kaldi data directory: `wav.scp` from `{id: entry}`, `utt2spk` (spk0, spk1 by
    turns) and `utt2lang` (en, fr by halves); written with a byte-order mark and CRLF line
    ends when asked. Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(entries)
    end = "\r\n" if crlf else "\n"
    tables = {"wav.scp": [f"{i} {entries[i]}" for i in ids],
              "utt2spk": [f"{i} spk{k % 2}" for k, i in enumerate(ids)],
              "utt2lang": [f"{i} {'en' if k < len(ids) / 2 else 'fr'}"
                           for k, i in enumerate(ids)]}
    for name, lines in tables.items():
        data = "".join(line + end for line in lines).encode()
        (folder / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return folder


def _preprocess(*args, cwd):
    from xval.cli.preprocess import main

    return run_here(main, *args, "--sample-rate", str(SR), "--n-mels", "16", "--workers", "1",
                    "--no-progress", cwd=cwd)


def _children(pid, name=None):
    """The pids of the live processes whose parent is `pid` (from /proc), those running
    the program `name` only when given."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command, fields = stat.split("(", 1)[1].rsplit(")", 1)
        state, parent = fields.split()[:2]
        if int(parent) == pid and state != "Z" and name in (None, command):
            found.append(int(entry.name))
    return found


# -- 1. commands: a time limit, a bounded output, reasons naming the entry -------------------

def test_run_pipeline_past_its_time_limit_is_stopped_and_names_the_entry(tmp_path):
    before = set(_children(os.getpid()))  # an earlier test's helpers (e.g. Ray's) may live on
    stages = parse_pipeline("sleep 100 |", "wav.scp: recording 'hang'")
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"wav\.scp: recording 'hang': its command "
                                             r"'sleep 100 \|' ran past the time limit of 1 s "
                                             r"and was stopped.*--command-timeout SECONDS"):
        run_pipeline(stages, str(tmp_path), 1.0, "wav.scp: recording 'hang'")
    assert time.monotonic() - started < 30  # not the 100 s the command wanted
    assert set(_children(os.getpid())) <= before  # every stage killed and reaped
    assert isinstance(CommandTimeout("x"), DatasetError)  # exit 2, one line


def test_run_pipeline_output_is_bounded(tmp_path):
    before = set(_children(os.getpid()))
    with pytest.raises(DatasetError, match=r"recording 'y': its command 'yes \|' wrote more "
                                           r"than .* GiB to its standard output and was "
                                           r"stopped"):
        run_pipeline(parse_pipeline("yes |", "w"), str(tmp_path), 30.0, "recording 'y'",
                     2**20)
    assert set(_children(os.getpid())) <= before


@pytest.mark.parametrize("entry,reason", [
    ("false |", r"recording 'r1': false in 'false \|' exited with status 1"),
    ("true |", r"recording 'r1': its command 'true \|' exited with status 0 but wrote no "
               r"audio \(nothing on its standard output\)"),
    ("echo hello |", r"its 6 bytes are not audio libsndfile reads \(WAV, FLAC, OGG, MP3; they "
                     r"begin b'hello\\n'\)"),
])
def test_a_command_that_fails_or_writes_no_audio_skips_naming_the_entry(tmp_path, params,
                                                                        entry, reason):
    wavs = _wavs(tmp_path / "audio")
    entries = {rec: f"cat {path.name} |" for rec, path in wavs.items()}
    entries["r1"] = entry
    data = _kaldi(tmp_path / "data", entries)
    rows, _ = kaldi_source(data, label_file="utt2lang", root=tmp_path / "audio",
                           run_commands=True)
    _, summary = build_store(rows, tmp_path / "s", params=params, workers=1, progress=False)
    [skipped] = summary["skipped"]
    assert skipped["path"].endswith("wav.scp#r1")
    assert re.search(reason, skipped["reason"]), skipped["reason"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "data", "s"]


def test_cli_kaldi_command_past_its_limit_ends_the_build_in_one_line(tmp_path):
    before = set(_children(os.getpid()))
    wavs = _wavs(tmp_path / "audio")
    entries = {rec: f"cat {path.name} |" for rec, path in wavs.items()}
    entries["r3"] = "sleep 100 |"
    data = _kaldi(tmp_path / "data", entries)
    args = ("kaldi", data, "--label-file", "utt2lang", "--root", tmp_path / "audio",
            "--run-wav-scp-commands", "--out", tmp_path / "out" / "s")
    started = time.monotonic()
    proc = _preprocess(*args, "--command-timeout", "1", cwd=ROOT)
    assert time.monotonic() - started < 60
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {data / 'wav.scp'}: recording 'r3': its command "
                                  "'sleep 100 |' ran past the time limit of 1 s"), proc.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert set(_children(os.getpid())) <= before


@pytest.mark.parametrize("value,run,match", [
    ("0", True, r"--command-timeout: '0': expected seconds > 0"),
    ("-5", True, r"--command-timeout: '-5': expected seconds > 0"),
    ("nan", True, r"--command-timeout: 'nan': expected seconds > 0"),
    ("soon", True, r"--command-timeout: 'soon': expected seconds > 0"),
    ("1e9", True, r"--command-timeout: '1e9': expected seconds > 0 and at most 86400 "),
    ("5", False, r"--command-timeout 5: no command of wav.scp runs without "
                 r"--run-wav-scp-commands"),
])
def test_cli_kaldi_command_timeout_is_checked(tmp_path, value, run, match):
    wavs = _wavs(tmp_path / "audio")
    data = _kaldi(tmp_path / "data", {rec: f"cat {p.name} |" for rec, p in wavs.items()})
    proc = _preprocess("kaldi", data, "--label-file", "utt2lang", "--root", tmp_path / "audio",
                       *(["--run-wav-scp-commands"] if run else []), "--command-timeout",
                       value, "--out", tmp_path / "s", cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert re.search(match, proc.stderr), proc.stderr
    assert not (tmp_path / "s").exists()


def test_kaldi_source_command_timeout_in_python(tmp_path):
    wavs = _wavs(tmp_path / "audio")
    data = _kaldi(tmp_path / "data", {rec: f"cat {p.name} |" for rec, p in wavs.items()})
    with pytest.raises(ConfigurationError, match="without --run-wav-scp-commands"):
        kaldi_source(data, label_file="utt2lang", command_timeout=5)
    with pytest.raises(ConfigurationError, match=r"--command-timeout inf: expected seconds"):
        kaldi_source(data, label_file="utt2lang", run_commands=True,
                     command_timeout=float("inf"))
    with pytest.raises(ConfigurationError, match=r"1000000000.0: expected .* at most 86400"):
        kaldi_source(data, label_file="utt2lang", run_commands=True, command_timeout=1e9)
    rows, _ = kaldi_source(data, label_file="utt2lang", root=tmp_path / "audio",
                           run_commands=True, command_timeout=7)
    assert rows["read"].iloc[0].args[2] == 7.0  # the limit each reader runs its command with


def test_a_killed_build_leaves_no_partial_file_and_no_command_running(tmp_path):
    """A real build process, killed with SIGKILL (which runs no clean-up) while one of its
    commands runs: its rows were in a file without a name (gone with the process), and the
    kernel kills the command with it (PR_SET_PDEATHSIG). Before: `.s.<random>.raw` stayed
    beside the store, and the command ran on."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG and /proc are Linux's")
    wavs = _wavs(tmp_path / "audio")
    entries = {rec: f"cat {path.name} |" for rec, path in wavs.items()}
    entries["r3"] = "sleep 97 |"  # sorted last: the other rows are written first
    data = _kaldi(tmp_path / "data", entries)
    (tmp_path / "out").mkdir()
    (tmp_path / "config.ini").write_text("[paths]\ndata_dir = out\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "preprocessing", "kaldi", str(data), "--label-file",
         "utt2lang", "--root", str(tmp_path / "audio"), "--run-wav-scp-commands", "--out",
         str(tmp_path / "out" / "s"), "--workers", "1", "--sample-rate", str(SR),
         "--no-progress", "-q"], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while not (sleeping := _children(proc.pid, "sleep")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        assert sleeping, "the command never started"
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{sleeping[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel's SIGKILL, then its reaping by init
    status = Path(f"/proc/{sleeping[0]}/stat")
    assert not status.exists() or status.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert list((tmp_path / "out").iterdir()) == []  # no .s.*.raw, no .s.*.npy


# -- 2. Kaldi tables as editors write them ---------------------------------------------------

def test_kaldi_tables_with_a_byte_order_mark_and_crlf_read_as_plain_ones(tmp_path, params):
    wavs = _wavs(tmp_path / "audio")
    entries = {rec: str(path) for rec, path in wavs.items()}
    plain, _ = kaldi_source(_kaldi(tmp_path / "plain", entries), label_file="utt2lang")
    for bom, crlf in ((True, False), (False, True), (True, True)):
        data = _kaldi(tmp_path / f"w{bom:d}{crlf:d}", entries, bom=bom, crlf=crlf)
        segments = "".join(f"{r}-0 {r} 0.00 0.25\r\n" if crlf else f"{r}-0 {r} 0.00 0.25\n"
                           for r in entries)
        rows, skipped = kaldi_source(data, label_file="utt2lang")
        assert skipped == [] and rows.drop(columns="path").equals(plain.drop(columns="path"))
        assert rows["clip"].tolist()[0] == "r0"  # not "\ufeffr0"
        (data / "segments").write_bytes((b"\xef\xbb\xbf" if bom else b"") + segments.encode())
        for name in ("utt2spk", "utt2lang"):  # keyed by utterance now
            text = (data / name).read_bytes().decode("utf-8-sig")
            (data / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(
                line.replace(" ", "-0 ", 1) + "\n" for line in text.splitlines()).encode())
        rows, skipped = kaldi_source(data, label_file="utt2lang")
        assert skipped == [] and rows["clip"].tolist() == [f"{r}-0" for r in entries]
        assert rows["duration"].tolist() == [0.25] * 4


@pytest.mark.parametrize("table,content,match", [
    ("wav.scp", b"", r"wav\.scp is empty: it lists no entry"),
    ("utt2spk", b"\xef\xbb\xbf\r\n\r\n", r"utt2spk is empty: it lists no entry"),
    ("utt2lang", "r0 en\n".encode("utf-16"), r"utt2lang is UTF-16 text; Kaldi tables are "
                                             r"UTF-8"),
    ("utt2lang", b"r0 \xe9t\xe9\n", r"utt2lang line 1: not UTF-8 text \(byte 0xe9\)"),
    ("segments", b"u r0 0 inf\n", r"utterance 'u' runs from 0 to inf s"),
])
def test_kaldi_tables_that_cannot_be_read_are_named(tmp_path, table, content, match):
    wavs = _wavs(tmp_path / "audio")
    data = _kaldi(tmp_path / "data", {rec: str(path) for rec, path in wavs.items()})
    (data / table).write_bytes(content)
    with pytest.raises(DatasetError, match=match):
        kaldi_source(data, label_file="utt2lang")


def test_cli_quiet_still_says_that_utterances_were_skipped(tmp_path):
    """Issue 59: with -q a skipped utterance left no trace ("23 rows from 23 utterances"
    only); one line says how many were left out and where they are listed."""
    wavs = _wavs(tmp_path / "audio", n=5)
    data = _kaldi(tmp_path / "data", {rec: str(path) for rec, path in wavs.items()})
    (data / "utt2spk").write_text("".join(line + "\n" for line in (
        data / "utt2spk").read_text().splitlines()[1:]))  # r0 has no speaker
    proc = _preprocess("kaldi", data, "--label-file", "utt2lang", "--out", tmp_path / "s",
                       "-q", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "4 rows from 4 utterances" in proc.stdout
    assert "Skipped 1 of the utterances (listed in dataset.json; without -q, here with the " \
           "reasons)." in proc.stdout


# -- 2. Lhotse manifests -----------------------------------------------------------------------

def _lhotse(folder, wavs, recording=None, supervision=None):
    """A RecordingSet and a SupervisionSet (JSONL) over `wavs`, the first entries changed
    by `recording` and `supervision` (dicts of fields). Returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    recs, sups = [], []
    for k, (rec, path) in enumerate(wavs.items()):
        recs.append({"id": rec, "sources": [{"type": "file", "channels": [0],
                                             "source": str(path)}],
                     "sampling_rate": SR, "num_samples": SR // 2, "duration": 0.5,
                     "channel_ids": [0]})
        sups.append({"id": f"s{k}", "recording_id": rec, "start": 0.0, "duration": 0.4,
                     "channel": 0, "speaker": f"spk{k % 2}", "language": "en fr".split()[k % 2]})
    recs[0].update(recording or {})
    sups[0].update(supervision or {})
    paths = (folder / "recordings.jsonl", folder / "sups.jsonl")
    for path, lines in zip(paths, (recs, sups)):
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return paths


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", gzip.compress(b"", mtime=0)])
def test_lhotse_an_empty_manifest_is_called_empty(tmp_path, content):
    pytest.importorskip("lhotse")
    recordings, _ = _lhotse(tmp_path, _wavs(tmp_path / "audio"))
    empty = tmp_path / ("e.jsonl.gz" if content.startswith(b"\x1f\x8b") else "e.jsonl")
    empty.write_bytes(content)
    for given in ([recordings, empty], [empty]):
        with pytest.raises(DatasetError, match=rf"Lhotse manifest {empty} is empty: it holds "
                                               r"no recording, supervision or cut"):
            lhotse_source(given, label_field="language")


@pytest.mark.parametrize("text,match", [
    ('{"id": "s0"}\n{garbage\n', r"line 2 is not JSON \(Expecting property name"),
    ("[1, 2]\n", r"line 1 is a JSON list, not an object"),
    ('{"speaker": "a", "wav": "x.wav"}\n', r"its entry on line 1 \(keys speaker, wav\) is "
                                           r"none of a recording"),
])
def test_lhotse_a_malformed_manifest_names_the_line(tmp_path, text, match):
    pytest.importorskip("lhotse")
    recordings, _ = _lhotse(tmp_path, _wavs(tmp_path / "audio"))
    (tmp_path / "bad.jsonl").write_text(text)
    with pytest.raises(DatasetError, match=r"bad\.jsonl is not a Lhotse manifest \(" + match):
        lhotse_source([recordings, tmp_path / "bad.jsonl"], label_field="language")


@pytest.mark.parametrize("recording,supervision,match", [
    ({"sampling_rate": 0}, None, r"Recording 'r0' of Lhotse manifest .* has sampling_rate 0; "
                                 r"a recording has a rate in Hz > 0"),
    ({"duration": -1.0}, None, r"Recording 'r0' .* has duration -1\.0"),
    ({"num_samples": 0, "duration": 0.0}, None, r"Recording 'r0' .* has num_samples 0"),
    (None, {"start": float("nan")}, r"Supervision 's0' .* has start nan and duration 0\.4, "
                                    r"which are not numbers of seconds"),
    (None, {"duration": float("inf")}, r"Supervision 's0' .* has start 0\.0 and duration inf"),
])
def test_lhotse_impossible_values_are_refused_naming_the_recording(tmp_path, recording,
                                                                  supervision, match):
    pytest.importorskip("lhotse")
    paths = _lhotse(tmp_path, _wavs(tmp_path / "audio"), recording, supervision)
    with pytest.raises(DatasetError, match=match):
        lhotse_source(paths, label_field="language")


# -- 2. Hugging Face dataset folders ----------------------------------------------------------

def _saved(folder, wavs, n=None):
    datasets = pytest.importorskip("datasets")
    files = [str(p) for p in wavs.values()][:n]
    dataset = datasets.Dataset.from_dict({
        "audio": files, "label": ["a", "b"] * (len(files) // 2) + ["a"] * (len(files) % 2),
        "speaker_id": [f"s{k}" for k in range(len(files))]})
    dataset.cast_column("audio", datasets.Audio()).save_to_disk(str(folder))
    return folder


def _arrow(folder):
    return next(folder.glob("*.arrow"))


@pytest.mark.parametrize("change,match", [
    (lambda f: (f / "dataset_info.json").write_text(""), r"dataset_info\.json is empty \(0 "
                                                         r"bytes\)"),
    (lambda f: (f / "state.json").write_text("  \n"), r"state\.json is empty \(3 bytes\)"),
    (lambda f: _arrow(f).write_bytes(b""), r"data-00000-of-00001\.arrow is empty \(0 bytes\): "
                                           r"the Arrow data of .* was not written whole"),
    (lambda f: _arrow(f).unlink(), r"data-00000-of-00001\.arrow is missing: .*state\.json "
                                   r"lists it"),
    (lambda f: _arrow(f).write_bytes(_arrow(f).read_bytes()[:200]),
     r"its Arrow data \(data-00000-of-00001\.arrow\) cannot be read \(ArrowInvalid"),
])
def test_hf_a_damaged_saved_dataset_names_the_file(tmp_path, change, match):
    folder = _saved(tmp_path / "ds", _wavs(tmp_path / "audio"))
    change(folder)
    with pytest.raises(DatasetError, match=match):
        hf_source(folder)


def test_hf_a_saved_dataset_without_examples_is_called_empty(tmp_path):
    folder = _saved(tmp_path / "ds", _wavs(tmp_path / "audio"), n=0)
    with pytest.raises(DatasetError, match=r"ds holds no example \(its state\.json lists no "
                                           r"Arrow data file\)"):
        hf_source(folder)


@pytest.mark.parametrize("name,text,match", [
    ("metadata.csv", "", r"metadata\.csv is empty: an audiofolder's metadata file"),
    ("metadata.jsonl", "\n", r"metadata\.jsonl is empty"),
    ("metadata.jsonl", "{garbage\n", r"is an audiofolder whose metadata \(.*metadata\.jsonl\) "
                                     r"cannot be read \(ArrowInvalid"),
])
def test_hf_an_audiofolder_with_a_broken_metadata_file_names_it(tmp_path, name, text, match):
    pytest.importorskip("datasets")
    wavs = _wavs(tmp_path / "folder" / "a")
    (tmp_path / "folder" / name).write_text(text)
    assert wavs
    with pytest.raises(DatasetError, match=match):
        hf_source(tmp_path / "folder")
