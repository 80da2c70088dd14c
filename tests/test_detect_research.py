"""The detection research driver's summary: mean ± std per configuration and the corrected
t-test against the previous default on the same folds (no training here)."""

import json

import pytest

from benchmarks import detect_research


def _line(config, fold, event_f1, train_frame_f1=0.9):
    return {"config": config, "fold": fold, "epochs": 60, "best_epoch": 40, "epochs_run": 50,
            "train_event_f1": train_frame_f1 - 0.1, "train_segment_f1": 0.95,
            "train_frame_f1": train_frame_f1, "test_event_f1": event_f1,
            "test_segment_f1": 0.7, "test_frame_f1": 0.6, "test_onset_f1": event_f1 + 0.02,
            "test_fixed_event_f1": event_f1 - 0.01, "train_rows": 200, "test_rows": 100}


def test_summary_table_and_paired_test(tmp_path, capsys):
    out = tmp_path / "runs.jsonl"
    lines = [_line("previous", i, f1) for i, f1 in enumerate((0.55, 0.60, 0.50))]
    lines += [_line("default", i, f1) for i, f1 in enumerate((0.66, 0.70, 0.61))]
    lines.append(_line("conf", 0, float("nan")))  # no event detected: counts as 0
    out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert detect_research.main(["--summary", "--out", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| config | folds | train event F1 | train segment F1 | "
                               "train frame F1 | test event F1")
    assert table[0].endswith("| vs previous: Δ event F1, p |")
    rows = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[1:-1]]
            for row in table[2:]}
    assert rows["previous"][1] == "0,1,2" and rows["previous"][-1] == ""
    assert rows["default"][2] == "0.800 ± 0.000"  # train event F1
    assert rows["default"][5] == "0.657 ± 0.037"
    assert rows["default"][-1].startswith("+0.107, p=")
    assert rows["conf"][5] == "0.000" and rows["conf"][-1] == ""
    assert rows["default"][-2] == "40/50/60, 40/50/60, 40/50/60"
    # Against another configuration (--baseline): the previous default now has the test.
    assert detect_research.main(["--summary", "--out", str(out), "--baseline", "default"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith("| vs default: Δ event F1, p |")
    rows = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[1:-1]]
            for row in table[2:]}
    assert rows["default"][-1] == "" and rows["previous"][-1].startswith("-0.107, p=")
    with pytest.raises(SystemExit) as exit_info:  # a baseline the file does not hold
        detect_research.main(["--summary", "--out", str(out), "--baseline", "crnn"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: --baseline 'crnn': no such configuration in {out}" in error
    assert "previous, default, conf" in error


def test_unknown_configuration_is_refused_before_training(tmp_path):
    with pytest.raises(SystemExit):
        detect_research.main(["--out", str(tmp_path / "x.jsonl")])  # no --dataset
    assert set(detect_research.CONFIGS) >= {"default", "crnn", "previous", "res16", "conf"}
    assert detect_research.PREVIOUS["freq_pool"] == 4
