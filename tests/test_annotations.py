"""Annotation CSVs of long recordings: both layouts, units, context flags, every bad input."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from xval.core.errors import DatasetError
from xval.tasks.detection import annotation_source, read_annotations

WIDE = (
    "File name,Voice start sample (1),Voice end sample (1),Voice start sample (2),"
    "Voice end sample (2)\n"
    "a.wav,8000,16000,24000,32000\n"
    "b.wav,4000,12000,,\n"
    "c.wav,,,,\n"
)


def write(tmp_path, text, name="ann.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(frame):
    return [(f, round(a, 6), round(b, 6), label) for f, a, b, label in
            frame[["file", "onset_s", "offset_s", "label"]].itertuples(index=False)]


def test_read_annotations_wide_samples_at_annotation_rate(tmp_path):
    events = read_annotations(write(tmp_path, WIDE), annotation_sample_rate=8000)
    assert list(events.columns) == ["file", "onset_s", "offset_s", "label"]
    assert rows(events) == [("a.wav", 1.0, 2.0, "event"), ("a.wav", 3.0, 4.0, "event"),
                            ("b.wav", 0.5, 1.5, "event")]


def test_read_annotations_samples_use_each_files_own_rate(tmp_path):
    events = read_annotations(write(tmp_path, WIDE),
                              sample_rate_of={"a.wav": 16000, "b.wav": 8000, "c.wav": 8000})
    assert rows(events)[:2] == [("a.wav", 0.5, 1.0, "event"), ("a.wav", 1.5, 2.0, "event")]
    assert rows(events)[2] == ("b.wav", 0.5, 1.5, "event")
    events = read_annotations(write(tmp_path, WIDE), sample_rate_of=lambda f: 4000)
    assert rows(events)[0] == ("a.wav", 2.0, 4.0, "event")


def test_read_annotations_long_seconds_with_labels(tmp_path):
    path = write(tmp_path, "file,start,end,label\nx,0.5,1.25,bird\nx,0.0,0.4,frog\n"
                           "y,2,3,bird\nz,,,\n")
    events = read_annotations(path, units="seconds")
    assert rows(events) == [("x", 0.0, 0.4, "frog"), ("x", 0.5, 1.25, "bird"),
                            ("y", 2.0, 3.0, "bird")]


def test_read_annotations_long_named_columns_and_no_label(tmp_path):
    path = write(tmp_path, "rec,from,to,note\nx,100,200,hello\n")
    events = read_annotations(path, layout="long", file_column="rec", onset_column="from",
                              offset_column="to", annotation_sample_rate=100)
    assert rows(events) == [("x", 1.0, 2.0, "event")]


@pytest.mark.parametrize("mode,expected", [
    ("keep", [("x", 0.0, 1.0, "event"), ("x", 2.0, 3.0, "event")]),
    ("drop", [("x", 0.0, 1.0, "event")]),
    ("class", [("x", 0.0, 1.0, "event"), ("x", 2.0, 3.0, "context")]),
])
def test_read_annotations_context_flag(tmp_path, mode, expected):
    path = write(tmp_path, "file,start,end,context\nx,0,1,0\nx,2,3,1\n")
    assert rows(read_annotations(path, units="seconds", context=mode)) == expected


def test_read_annotations_wide_labels_and_context_columns(tmp_path):
    path = write(tmp_path, "File,Start (1),End (1),Label (1),Context (1),Start (2),End (2),"
                           "Label (2),Context (2)\nx,0,10,seven,,20,30,two,yes\n")
    events = read_annotations(path, annotation_sample_rate=10, context="class")
    assert rows(events) == [("x", 0.0, 1.0, "seven"), ("x", 2.0, 3.0, "context")]


def test_read_annotations_merges_overlaps_when_asked(tmp_path):
    path = write(tmp_path, "file,start,end,label\nx,0,2,a\nx,1,3,a\nx,1,3,b\nx,3,4,a\n")
    with pytest.raises(DatasetError, match=r"'a' event on line 3 .*overlaps the one on line 2"
                                           r".*merge_overlaps=True"):
        read_annotations(path, units="seconds")
    events = read_annotations(path, units="seconds", merge_overlaps=True)
    # Touching events (3-4 after 1-3) are not overlaps; other classes may overlap.
    assert rows(events) == [("x", 0.0, 3.0, "a"), ("x", 1.0, 3.0, "b"), ("x", 3.0, 4.0, "a")]


@pytest.mark.parametrize("text,kwargs,match", [
    ("file,start,end\nx,5,3\n", {}, r"line 2 \(file 'x'\): end '3' is before start '5'"),
    ("file,start,end\nx,-1,3\n", {}, r"line 2 \(file 'x'\): start '-1' is negative"),
    ("file,start,end\nx,1,abc\n", {}, r"end='abc' is not a number"),
    ("file,start,end\nx,1,\n", {}, r"'end' is blank but the other is not"),
    ("file,start,end,context\nx,1,2,maybe\n", {}, r"context='maybe' is not a context flag"),
    ("file,start\nx,1\n", {}, r"no column for offsets.*--offset-column"),
    ("file,start,end\nx,1,2\n", {"label_column": "kind"}, r"label_column='kind' is not a col"),
    ("file,start,end\nx,1,2\n", {"layout": "wide"}, r"unknown layout.*layout='long'"),
    ("f,Voice start sample (1)\nx,1\n", {}, r"no matching end column \(1\)"),
    ("file,start,end\n,1,2\n", {}, r"line 2: the file name \(file\) is blank"),
    ("file,start,end\nx,1,2\n", {"layout": "diagonal"}, r"layout='diagonal': expected one of"),
    ("file,start,end\nx,1,2\n", {"context": "maybe"}, r"context='maybe': expected one of"),
    ("file,start,end\n", {}, r"has a header but no rows"),
    ("file;start;end\nx;1;2\n", {}, r"one column, 'file;start;end': .* separated by "
                                    r"semicolons, not commas. Save it as a comma-separated"),
    ("file\tstart\tend\nx\t1\t2\n", {}, r"separated by tabs, not commas"),
    ("", {}, r"is empty"),
])
def test_read_annotations_bad_input(tmp_path, text, kwargs, match):
    kwargs = {"units": "seconds", **kwargs}
    with pytest.raises(DatasetError, match=match):
        read_annotations(write(tmp_path, text), **kwargs)


def test_read_annotations_samples_need_a_rate(tmp_path):
    with pytest.raises(DatasetError, match=r"sample rate of 'x' is unknown.*"
                                           r"--annotation-sample-rate"):
        read_annotations(write(tmp_path, "file,start,end\nx,1,2\n"))
    with pytest.raises(DatasetError, match=r"annotation_sample_rate=0: expected"):
        read_annotations(write(tmp_path, "file,start,end\nx,1,2\n"), annotation_sample_rate=0)


def test_read_annotations_refuses_a_sample_rate_for_times_in_seconds(tmp_path, capsys):
    """`--annotation-sample-rate` counts sample positions: with times in seconds it was
    taken and did nothing. Refused, by `read_annotations` and by `init` before anything is
    written."""
    from xval.cli.main import main

    path = write(tmp_path, "file,start,end\nx,0.1,0.2\n")
    with pytest.raises(DatasetError, match=r"annotation_sample_rate=8000 "
                                           r"\(--annotation-sample-rate\) with units='seconds' "
                                           r"\(--annotation-units seconds\): .* would do "
                                           r"nothing; leave it out"):
        read_annotations(path, units="seconds", annotation_sample_rate=8000)
    (tmp_path / "audio").mkdir()
    assert main(["init", str(tmp_path / "audio"), "--annotations", str(path),
                 "--annotation-units", "seconds", "--annotation-sample-rate", "8000",
                 "--project", str(tmp_path / "project"), "--dry-run"]) == 2
    assert "would do nothing" in capsys.readouterr().err
    assert not (tmp_path / "project").exists()


def test_read_annotations_past_the_end_of_the_file(tmp_path):
    path = write(tmp_path, "file,start,end\nx,0,8000\nx,8000,8001\n")
    with pytest.raises(DatasetError, match=r"line 3 \(file 'x'\): end '8001' \(1.0001 s\) is "
                                           r"past the end of the file \(1.0000 s\)"):
        read_annotations(path, annotation_sample_rate=8000, durations={"x": 1.0})
    # One sample past the end at 48 kHz is caught too; times in seconds may round up 1 ms.
    with pytest.raises(DatasetError, match="past the end"):
        read_annotations(write(tmp_path, "file,start,end\nx,0,48001\n"),
                         annotation_sample_rate=48000, durations={"x": 1.0})
    ok = read_annotations(write(tmp_path, "file,start,end\nx,0,1.0004\n"), units="seconds",
                          durations={"x": 1.0})
    assert rows(ok) == [("x", 0.0, 1.0004, "event")]
    # Ending on the last sample boundary is fine.
    ok = read_annotations(write(tmp_path, "file,start,end\nx,0,8000\n"),
                          annotation_sample_rate=8000, durations={"x": 1.0})
    assert rows(ok) == [("x", 0.0, 1.0, "event")]


def test_read_annotations_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_annotations(tmp_path / "nope.csv")


# -- matched to an audio folder -----------------------------------------------------------

@pytest.fixture
def audio_dir(tmp_path):
    root = tmp_path / "audio"
    (root / "night1").mkdir(parents=True)
    silence = np.zeros(16000, dtype=np.float32)
    sf.write(root / "night1" / "a.wav", silence, 8000)   # 2 s at 8 kHz
    sf.write(root / "b.wav", silence, 16000)             # 1 s at 16 kHz
    sf.write(root / "c.wav", silence, 8000)
    sf.write(root / "extra.wav", silence, 8000)
    return root


def test_annotation_source_uses_file_rates_and_lists_skipped(tmp_path, audio_dir):
    csv = write(tmp_path, "File name,Voice start sample (1),Voice end sample (1)\n"
                          "night1/a,8000,16000\nb.wav,4000,16000\nc,,\n")
    recordings, events, skipped = annotation_source(csv, audio_dir)
    assert rows(events) == [("night1/a", 1.0, 2.0, "event"), ("b.wav", 0.25, 1.0, "event")]
    assert recordings[["file", "sample_rate", "duration_s", "n_events"]].values.tolist() == [
        ["night1/a", 8000, 2.0, 1], ["b.wav", 16000, 1.0, 1], ["c", 8000, 2.0, 0]]
    assert recordings["path"].tolist()[0] == str(audio_dir / "night1" / "a.wav")
    assert skipped == [{"path": str(audio_dir / "extra.wav"),
                        "reason": f"not in the annotations {csv}"}]
    with pytest.raises(DatasetError, match=r"extra.wav has no annotation .*strict mode"):
        annotation_source(csv, audio_dir, strict=True)


def test_annotation_source_annotated_file_must_exist(tmp_path, audio_dir):
    csv = write(tmp_path, "file,start,end\na,0,1\nmissing.wav,0,1\n")
    with pytest.raises(DatasetError, match=r"line 3: file 'missing.wav' does not exist under"):
        annotation_source(csv, audio_dir, units="seconds")


def test_annotation_source_checks_durations_from_headers(tmp_path, audio_dir):
    csv = write(tmp_path, "file,start,end\nb,0,16001\n")
    with pytest.raises(DatasetError, match=r"past the end of the file \(1.0000 s\)"):
        annotation_source(csv, audio_dir)


def test_annotation_source_ambiguous_name(tmp_path, audio_dir):
    sf.write(audio_dir / "night1" / "b.wav", np.zeros(10, np.float32), 8000)
    csv = write(tmp_path, "file,start,end\nb,0,0.001\n")
    with pytest.raises(DatasetError, match=r"'b' matches several files"):
        annotation_source(csv, audio_dir, units="seconds")


def test_annotation_source_reads_long_layout_it_wrote(tmp_path, audio_dir):
    table = pd.DataFrame({"file": ["a", "c"], "start": [0.5, 0.1], "end": [1.5, 0.2],
                          "label": ["x", "y"]})
    table.to_csv(tmp_path / "long.csv", index=False)
    _, events, _ = annotation_source(tmp_path / "long.csv", audio_dir, units="seconds")
    assert rows(events) == [("a", 0.5, 1.5, "x"), ("c", 0.1, 0.2, "y")]


@pytest.mark.parametrize("text", [
    "file,start,end,label\nx,0,1,\nx,2,3,bird\n",                       # long layout
    "File,Start (1),End (1),Label (1),Start (2),End (2),Label (2)\nx,0,1,bird,2,3, \n",
])
def test_read_annotations_blank_label_is_refused(tmp_path, text):
    """A blank label where the CSV has a label column would become a class `event` of its
    own: refused, naming the line, as stores refuse a blank label (issue 74)."""
    with pytest.raises(DatasetError, match=r"line 2 \(file 'x'\): the label .* is blank"):
        read_annotations(write(tmp_path, text), units="seconds")


def test_read_annotations_fifo_is_named(tmp_path):
    """A FIFO given as the annotation CSV is named for what it is (it exists), never
    opened (issue 74)."""
    import os

    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(DatasetError, match=r"pipe.csv' is not a regular file \(FIFO"):
        read_annotations(tmp_path / "pipe.csv")


def test_labels_that_differ_only_in_case_get_a_note(tmp_path, capsys):
    """`digit` and `DIGIT` are two classes (kept: labels are read as written), and a note
    says so; labels of distinct spelling get none."""
    events = read_annotations(write(tmp_path, "file,start,end,label\nx,0.1,0.2,digit\n"
                                              "x,0.3,0.4,DIGIT\nx,0.5,0.6,dog\n"),
                              units="seconds")
    assert sorted(set(events["label"])) == ["DIGIT", "digit", "dog"]
    assert "the labels 'DIGIT' and 'digit' differ only in case" in capsys.readouterr().out
    read_annotations(write(tmp_path, "file,start,end,label\nx,0.1,0.2,digit\n"),
                     units="seconds")
    assert "note:" not in capsys.readouterr().out
