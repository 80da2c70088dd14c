"""Writes the PSDS fixtures of tests/test_psds.py and their expected values, with psds_eval.

psds_eval 0.5.3 (the DCASE reference) needs pandas < 3 and numpy < 2, which this project
does not install; run this once in a scratch environment outside the repository:

    python3 -m venv /tmp/psds_ref
    /tmp/psds_ref/bin/pip install "numpy<2" "pandas<3" psds_eval==0.5.3
    /tmp/psds_ref/bin/python tests/data/psds/make_expected.py

It writes, next to itself:

- `scores.npz`: frame probabilities of 5 recordings (4.25 minutes) x 3 classes (`file<i>` arrays,
  `frame_seconds`), built from the annotation with hits, weak hits, misses, false alarms
  and cross-triggers (a class's score rising on another class's event);
- `reference.csv` (filename, onset, offset, event_label) and `durations.csv` (filename,
  duration): overlapping events of different classes, a recording without events;
- `expected.json`: per scenario, psds_eval's PSDS and its per-operating-point TPR and FPR,
  and the number of events detected at each of the 50 thresholds 0.01 ... 0.99 (runs of
  frames with a probability >= threshold, as `xval.events.activity_to_events` finds them
  without post-processing; the operating points psds_eval scored);
- `psds_eval_cases.json`: psds_eval's own example cases (the annotations and detections of
  its repository's `tests/data`: `test_1` to `test_4`, three of them from the ICASSP 2020
  paper, and one DCASE clip; MIT licence, Audio Analytic), each with the PSDS its own tests
  expect (DTC 0.5, GTC 0.5, CTTC 0.3, alpha_CT 0, alpha_ST 0) and the PSDS1 and PSDS2 and
  the counts psds_eval 0.5.3 gives (`OWN_CASES`).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from psds_eval import PSDSEval

HERE = Path(__file__).resolve().parent
FRAME_SECONDS = 0.1
CLASSES = ["bird", "dog", "speech"]
DURATIONS = {"file0": 60.0, "file1": 60.0, "file2": 45.0, "file3": 60.0, "file4": 30.0}
REFERENCE = [  # overlapping events of different classes, short and long ones
    ("file0", 0.5, 2.0, "bird"), ("file0", 1.5, 4.0, "speech"), ("file0", 6.0, 6.5, "dog"),
    ("file0", 7.0, 9.5, "speech"),
    ("file1", 0.0, 1.0, "dog"), ("file1", 2.0, 2.4, "bird"), ("file1", 3.0, 3.3, "bird"),
    ("file1", 5.0, 9.0, "speech"), ("file1", 5.5, 6.0, "dog"),
    ("file2", 1.0, 3.0, "dog"), ("file2", 4.0, 7.5, "bird"),
    ("file4", 0.2, 5.8, "speech"), ("file4", 2.0, 2.5, "bird"),
    ("file0", 20.0, 21.5, "bird"), ("file0", 30.0, 42.0, "speech"), ("file0", 35.0, 36.0, "dog"),
    ("file1", 40.0, 40.8, "dog"), ("file1", 50.0, 59.9, "bird"), ("file2", 20.0, 30.0, "speech"),
    ("file2", 25.0, 25.6, "bird"), ("file4", 20.0, 29.5, "dog"), ("file4", 22.0, 23.0, "speech"),
]
SCENARIOS = {
    "psds1": dict(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=0.3, alpha_ct=0.0,
                  alpha_st=1.0, max_efpr=100.0),
    "psds2": dict(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3, alpha_ct=0.5,
                  alpha_st=1.0, max_efpr=100.0),
    "loose": dict(dtc_threshold=0.5, gtc_threshold=0.5, cttc_threshold=0.2, alpha_ct=1.0,
                  alpha_st=0.0, max_efpr=400.0),
}
THRESHOLDS = np.arange(1 / 100, 1, 1 / 50).round(6)


def _bump(n: int, onset: float, offset: float, height: float, ramp: float) -> np.ndarray:
    """A score of `height` over [onset, offset), ramping over `ramp` seconds each side."""
    t = np.arange(n) * FRAME_SECONDS
    rise = np.clip((t - onset + ramp) / ramp, 0, 1)
    fall = np.clip((offset + ramp - t) / ramp, 0, 1)
    return height * np.minimum(rise, fall)


def scores(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for file, duration in DURATIONS.items():
        n = int(round(duration / FRAME_SECONDS))
        p = 0.05 + 0.1 * rng.random((n, len(CLASSES)))
        for f, onset, offset, label in REFERENCE:
            if f != file:
                continue
            c = CLASSES.index(label)
            height = rng.uniform(0.35, 0.95)  # some events are found only at low thresholds
            shift = rng.uniform(-0.3, 0.3)  # onsets and offsets off by up to 300 ms
            p[:, c] = np.maximum(p[:, c], _bump(n, onset + shift, offset + shift, height, 0.2))
            other = (c + 1) % len(CLASSES)  # a cross-trigger on the next class
            p[:, other] = np.maximum(p[:, other], _bump(n, onset, offset, 0.45 * height, 0.1))
        for _ in range(2):  # false alarms
            start = rng.uniform(0, duration - 1)
            c = int(rng.integers(len(CLASSES)))
            p[:, c] = np.maximum(p[:, c], _bump(n, start, start + rng.uniform(0.2, 1.0),
                                                rng.uniform(0.3, 0.8), 0.1))
        out[file] = np.clip(p, 0, 1).round(4)
    return out


def events(prob: np.ndarray, file: str, threshold: float) -> list[tuple]:
    """Runs of frames with `prob >= threshold` per class, offsets cut at the duration."""
    found = []
    for c, label in enumerate(CLASSES):
        active = np.concatenate([[0], (prob[:, c] >= threshold).astype(int), [0]])
        changes = np.flatnonzero(np.diff(active))
        for i, j in zip(changes[::2], changes[1::2]):
            onset, offset = 0.0 + i * FRAME_SECONDS, 0.0 + j * FRAME_SECONDS
            offset = min(offset, DURATIONS[file])
            if offset > onset:
                found.append((file, float(onset), float(offset), label))
    return found


META = {"test.wav": 50.0, "test2.wav": 50.0, "test3.wav": 50.0, "test4.wav": 120.0,
        "Y23R6_ppquxs_247.000_257.000.wav": 10.0}
_Y = "Y23R6_ppquxs_247.000_257.000.wav"
OWN_CASES = {  # name: (annotations, detections, the PSDS psds_eval's own tests expect)
    "example_1": ([("test.wav", 2, 20, "c1"), ("test.wav", 12, 35, "c2"),
                   ("test.wav", 42, 47, "c3")],
                  [("test.wav", 0, 19, "c1"), ("test.wav", 40, 45, "c1"),
                   ("test.wav", 11, 25, "c2"), ("test.wav", 27, 30, "c2"),
                   ("test.wav", 32, 41.5, "c2"), ("test.wav", 38, 48, "c3")],
                  0.9142857142857143),
    "example_2": ([("test2.wav", 5, 20, "c1"), ("test2.wav", 5, 30, "c2"),
                   ("test2.wav", 42, 47, "c3")],
                  [("test2.wav", 2, 43, "c1"), ("test2.wav", 15, 20, "c2"),
                   ("test2.wav", 10, 30, "c3"), ("test2.wav", 40, 49, "c3")],
                  0.29047619047619044),
    "example_3": ([("test3.wav", 5, 18, "c1"), ("test3.wav", 10, 30, "c2"),
                   ("test3.wav", 42, 48, "c3")],
                  [("test3.wav", 2, 18.5, "c1"), ("test3.wav", 29, 48, "c1"),
                   ("test3.wav", 10, 30, "c2"), ("test3.wav", 32, 38, "c3")],
                  0.6238095238095237),
    "example_4": ([("test4.wav", 2, 22, "c1"), ("test4.wav", 43, 64, "c1"),
                   ("test4.wav", 18, 20, "c2"), ("test4.wav", 21, 23, "c2"),
                   ("test4.wav", 25, 27, "c2"), ("test4.wav", 29, 32, "c2"),
                   ("test4.wav", 85, 88, "c2"), ("test4.wav", 35, 58, "c3"),
                   ("test4.wav", 47, 66, "c4"), ("test4.wav", 97, 100, "c4")],
                  [("test4.wav", 9, 25, "c1"), ("test4.wav", 41, 66, "c1"),
                   ("test4.wav", 25, 49, "c2"), ("test4.wav", 74, 82, "c2"),
                   ("test4.wav", 86, 105, "c2"), ("test4.wav", 33, 45, "c3"),
                   ("test4.wav", 46.5, 59, "c3"), ("test4.wav", 4, 11, "c4"),
                   ("test4.wav", 30, 36, "c4"), ("test4.wav", 62, 67, "c4")],
                  0.5),
    "dcase_clip": ([(_Y, 0.066, 1.046, "Dishes"), (_Y, 0.463, 1.721, "Speech"),
                    (_Y, 1.886, 4.295, "Dishes"), (_Y, 2.879, 3.739, "Speech"),
                    (_Y, 4.778, 5.028, "Dishes"), (_Y, 5.056, 6.499, "Speech"),
                    (_Y, 7.062, 9.497, "Speech"), (_Y, 8.127, 8.974, "Dishes")],
                   [(_Y, 0.0, 1.0196825396825395, "Dishes"),
                    (_Y, 1.8539682539682538, 2.8736507936507936, "Dishes"),
                    (_Y, 3.7079365079365076, 5.747301587301587, "Dishes"),
                    (_Y, 0.46349206349206346, 0.9269841269841269, "Speech"),
                    (_Y, 1.2977777777777777, 1.761269841269841, "Speech"),
                    (_Y, 2.8736507936507936, 3.986031746031746, "Speech"),
                    (_Y, 5.654603174603174, 10.01142857142857, "Speech")],
                   0.6089285714285714),
}
OWN_SETTINGS = {"own": dict(dtc_threshold=0.5, gtc_threshold=0.5, cttc_threshold=0.3,
                            alpha_ct=0.0, alpha_st=0.0, max_efpr=100.0),
                "psds1": SCENARIOS["psds1"], "psds2": SCENARIOS["psds2"]}


def own_cases() -> dict:
    """psds_eval's own cases, each scored by psds_eval under `OWN_SETTINGS`."""
    columns = ["filename", "onset", "offset", "event_label"]
    metadata = pd.DataFrame(list(META.items()), columns=["filename", "duration"])
    out: dict = {"durations": META, "settings": OWN_SETTINGS, "cases": {}}
    for name, (reference, detections, expected) in OWN_CASES.items():
        case: dict = {"reference": reference, "detections": detections, "psds_eval": {}}
        for setting, v in OWN_SETTINGS.items():
            evaluator = PSDSEval(dtc_threshold=v["dtc_threshold"],
                                 gtc_threshold=v["gtc_threshold"],
                                 cttc_threshold=v["cttc_threshold"],
                                 ground_truth=pd.DataFrame(reference, columns=columns),
                                 metadata=metadata)
            evaluator.add_operating_point(pd.DataFrame(detections, columns=columns))
            value = float(evaluator.psds(v["alpha_ct"], v["alpha_st"], v["max_efpr"]).value)
            case["psds_eval"][setting] = {
                "psds": value,
                "counts": evaluator.operating_points.counts[0].astype(int).tolist()}
        assert abs(case["psds_eval"]["own"]["psds"] - expected) < 1e-12, name
        out["cases"][name] = case
    return out


def main() -> None:
    rng = np.random.default_rng(35)
    probs = scores(rng)
    np.savez(HERE / "scores.npz", frame_seconds=FRAME_SECONDS, **probs)
    columns = ["filename", "onset", "offset", "event_label"]
    reference = pd.DataFrame(REFERENCE, columns=columns)
    reference.to_csv(HERE / "reference.csv", index=False)
    metadata = pd.DataFrame(list(DURATIONS.items()), columns=["filename", "duration"])
    metadata.to_csv(HERE / "durations.csv", index=False)
    tables = []
    for t in THRESHOLDS:
        rows = [e for file, prob in probs.items() for e in events(prob, file, t)]
        tables.append(pd.DataFrame(rows, columns=columns))
    expected: dict = {"thresholds": [float(t) for t in THRESHOLDS],
                      "events": [len(table) for table in tables], "scenarios": {}}
    for name, settings in SCENARIOS.items():
        evaluator = PSDSEval(dtc_threshold=settings["dtc_threshold"],
                             gtc_threshold=settings["gtc_threshold"],
                             cttc_threshold=settings["cttc_threshold"],
                             ground_truth=reference, metadata=metadata)
        for t, table in zip(THRESHOLDS, tables):
            evaluator.add_operating_point(table, info={"threshold": float(t)})
        score = evaluator.psds(alpha_ct=settings["alpha_ct"], alpha_st=settings["alpha_st"],
                               max_efpr=settings["max_efpr"])
        points = evaluator.operating_points
        expected["scenarios"][name] = {
            "settings": settings, "psds": float(score.value),
            "operating_points": [{"threshold": float(row["threshold"]),
                                  "tpr": [float(v) for v in row["tpr"]],
                                  "fpr": [float(v) for v in row["fpr"]]}
                                 for _, row in points.iterrows()],
            "classes": [c for c in evaluator.class_names if c in CLASSES],
        }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print({name: round(v["psds"], 6) for name, v in expected["scenarios"].items()})
    (HERE / "psds_eval_cases.json").write_text(json.dumps(own_cases(), indent=1) + "\n")


if __name__ == "__main__":
    main()
