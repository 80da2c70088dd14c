"""The project's segment- and event-based detection metrics against sed_eval, the DCASE
reference implementation they reproduce (`xval.tasks.detection.metrics`).

    python -m benchmarks.sed_eval_reference             # compare on every case, and time both
    python -m benchmarks.sed_eval_reference --record    # rewrite tests/data/sed_eval_reference.json

sed_eval is not a dependency of the project (its dependency dcase_util imports
`pkg_resources`, which setuptools 81 and later no longer ship): run this where it is
installed, `pip install sed_eval==0.2.1 'setuptools<81'`. `--record` writes every case
(its events, files, classes and options) with sed_eval's numbers and the versions that
gave them; `tests/test_sound_event_metrics.py` checks the project against that file on any
install, and against sed_eval itself where sed_eval can be imported. Where it cannot, the
comparison reads that file's recorded numbers instead (and times the project alone).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from xval.tasks.detection.events import detection_metrics, event_metrics

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "sed_eval_reference.json"
KEYS = ("segment_f1", "segment_error_rate", "event_f1", "event_precision", "event_recall")


def _case(name: str, reference: list, estimated: list, files: list[str], classes: list[str],
          **options: Any) -> dict[str, Any]:
    return {"name": name, "reference": reference, "estimated": estimated, "files": files,
            "classes": classes, "options": options}


def hand_made() -> list[dict[str, Any]]:
    """Cases at the definitions' edges: collars met exactly, offsets off, empty lists,
    overlapping events, segments crossed, evaluated lengths given."""
    f, e = ["f1"], ["e"]
    ab = ["a", "b"]
    return [
        _case("perfect", [["f1", 1.0, 2.0, "e"], ["f1", 4.0, 4.5, "e"]],
              [["f1", 1.0, 2.0, "e"], ["f1", 4.0, 4.5, "e"]], f, e),
        _case("onset-inside-collar", [["f1", 1.0, 2.0, "e"]], [["f1", 1.15, 2.0, "e"]], f, e),
        _case("onset-on-collar", [["f1", 1.0, 2.0, "e"]], [["f1", 1.2, 2.0, "e"]], f, e),
        _case("onset-outside-collar", [["f1", 1.0, 2.0, "e"]], [["f1", 1.3, 2.0, "e"]], f, e),
        _case("offset-collar-by-length", [["f1", 1.0, 2.0, "e"]], [["f1", 1.0, 2.5, "e"]], f, e),
        _case("offset-outside", [["f1", 1.0, 2.0, "e"]], [["f1", 1.0, 3.0, "e"]], f, e),
        _case("onset-only", [["f1", 1.0, 2.0, "e"]], [["f1", 1.0, 3.0, "e"]], f, e,
              evaluate_offset=False),
        _case("nothing-estimated", [["f1", 1.0, 2.0, "e"]], [], f, e),
        _case("nothing-annotated", [], [["f1", 1.0, 2.0, "e"]], f, e),
        _case("nothing-at-all", [], [], f, e),
        _case("insertion-in-another-file", [["f1", 1.0, 2.0, "e"]],
              [["f1", 1.0, 2.0, "e"], ["f2", 0.5, 1.0, "e"]], ["f1", "f2"], e),
        _case("wrong-class", [["f1", 1.0, 2.0, "a"]], [["f1", 1.0, 2.0, "b"]], f, ab),
        _case("two-estimates-one-reference", [["f1", 1.0, 2.0, "e"]],
              [["f1", 1.05, 2.0, "e"], ["f1", 0.95, 1.9, "e"]], f, e),
        _case("matching-order-matters-greedily",
              [["f1", 1.0, 1.4, "e"], ["f1", 1.3, 1.7, "e"]],
              [["f1", 1.15, 1.55, "e"], ["f1", 1.45, 1.85, "e"]], f, e),
        _case("overlapping-classes", [["f1", 0.0, 3.2, "a"], ["f1", 1.5, 2.5, "b"]],
              [["f1", 0.1, 3.0, "a"], ["f1", 2.4, 4.0, "b"]], f, ab),
        _case("segment-grid-half-second", [["f1", 0.26, 1.74, "e"]],
              [["f1", 0.5, 1.5, "e"]], f, e, time_resolution=0.5),
        _case("evaluated-length-longer", [["f1", 1.0, 2.0, "e"]], [["f1", 7.2, 8.0, "e"]],
              f, e, durations={"f1": 10.0}),
        _case("evaluated-length-shorter", [["f1", 1.0, 2.0, "e"]], [["f1", 4.2, 8.0, "e"]],
              f, e, durations={"f1": 5.0}),
        _case("zero-length-event", [["f1", 1.0, 1.0, "e"]], [["f1", 1.0, 1.1, "e"]], f, e),
        _case("wide-collar", [["f1", 1.0, 2.0, "e"]], [["f1", 1.4, 2.2, "e"]], f, e,
              t_collar=0.5, percentage_of_length=0.2),
    ]


def random_cases(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` random cases: 1-3 files, 1-3 classes, 0-8 events per list and file, times on a
    50 ms grid (so that collars are met exactly), estimates often near a reference."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        files = [f"file{i}" for i in range(int(rng.integers(1, 4)))]
        classes = ["dog", "speech", "alarm"][:int(rng.integers(1, 4))]
        reference, estimated = [], []
        for file in files:
            for _ in range(int(rng.integers(0, 9))):
                onset = round(float(rng.integers(0, 200)) * 0.05, 2)
                offset = round(onset + float(rng.integers(1, 60)) * 0.05, 2)
                reference.append([file, onset, offset, str(rng.choice(classes))])
            for _ in range(int(rng.integers(0, 9))):
                if reference and rng.random() < 0.7:
                    _, on, off, label = reference[int(rng.integers(len(reference)))]
                    onset = round(max(0.0, on + float(rng.integers(-6, 7)) * 0.05), 2)
                    offset = round(max(onset, off + float(rng.integers(-10, 11)) * 0.05), 2)
                    if rng.random() < 0.2:
                        label = str(rng.choice(classes))
                else:
                    onset = round(float(rng.integers(0, 200)) * 0.05, 2)
                    offset = round(onset + float(rng.integers(1, 60)) * 0.05, 2)
                    label = str(rng.choice(classes))
                estimated.append([file, onset, offset, label])
        options: dict[str, Any] = {}
        if rng.random() < 0.3:
            options["time_resolution"] = float(rng.choice([0.1, 0.25, 0.5, 2.0]))
        if rng.random() < 0.2:
            options["evaluate_offset"] = False
        if rng.random() < 0.2:
            options["t_collar"] = float(rng.choice([0.05, 0.1, 0.25]))
            options["percentage_of_length"] = float(rng.choice([0.0, 0.2, 1.0]))
        if rng.random() < 0.3:
            options["durations"] = {f: float(rng.integers(1, 15)) for f in files}
        out.append(_case(f"random-{seed}-{k}", reference, estimated, files, classes,
                         **options))
    return out


def project_metrics(case: dict[str, Any]) -> dict[str, Any]:
    """The project's numbers for a case: the five overall metrics and `class_f1`."""
    options = dict(case["options"])
    out: dict[str, Any] = dict(detection_metrics(
        _rows(case["reference"]), _rows(case["estimated"]), files=case["files"],
        classes=case["classes"], **options))
    options.pop("time_resolution", None)
    options.pop("durations", None)
    out["class_f1"] = event_metrics(_rows(case["reference"]), _rows(case["estimated"]),
                                    files=case["files"], classes=case["classes"],
                                    **options)["class_f1"]
    return out


def _rows(events: list) -> list[tuple[str, float, float, str]]:
    return [(str(f), float(a), float(b), str(label)) for f, a, b, label in events]


def import_sed_eval() -> tuple[Any, Any]:
    """`(sed_eval, dcase_util.containers)`; ImportError where they cannot be imported."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dcase_util: pkg_resources is deprecated
        import dcase_util.containers as containers
        import sed_eval
    return sed_eval, containers


def sed_eval_metrics(case: dict[str, Any]) -> dict[str, Any]:
    """sed_eval's numbers for a case, called as the project called it before it computed
    them itself (one `evaluate` per file, then the overall and class-wise results)."""
    sed_eval, containers = import_sed_eval()
    options = case["options"]
    collar = {"t_collar": float(options.get("t_collar", 0.2)),
              "percentage_of_length": float(options.get("percentage_of_length", 0.5))}
    segment = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=list(case["classes"]),
        time_resolution=float(options.get("time_resolution", 1.0)))
    event = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(case["classes"]), evaluate_onset=True,
        evaluate_offset=bool(options.get("evaluate_offset", True)), **collar)
    for file in case["files"]:
        lists = [containers.MetaDataContainer(
            [{"filename": f, "event_label": label, "onset": float(a), "offset": float(b)}
             for f, a, b, label in events if f == file])
            for events in (case["reference"], case["estimated"])]
        segment.evaluate(reference_event_list=lists[0], estimated_event_list=lists[1],
                         evaluated_length_seconds=(options.get("durations") or {}).get(file))
        event.evaluate(reference_event_list=lists[0], estimated_event_list=lists[1])
    seg, ev = segment.results_overall_metrics(), event.results_overall_metrics()
    by_class = event.results_class_wise_metrics()
    return {"segment_f1": float(seg["f_measure"]["f_measure"]),
            "segment_error_rate": float(seg["error_rate"]["error_rate"]),
            "event_f1": float(ev["f_measure"]["f_measure"]),
            "event_precision": float(ev["f_measure"]["precision"]),
            "event_recall": float(ev["f_measure"]["recall"]),
            "class_f1": {c: float(by_class[c]["f_measure"]["f_measure"])
                         for c in case["classes"]}}


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """What differs between two results by more than 1e-9 (`nan` equals `nan`)."""
    pairs = [(k, got[k], want[k]) for k in KEYS]
    pairs += [(f"class_f1[{c}]", got["class_f1"][c], v) for c, v in want["class_f1"].items()]
    return [f"{k}: {a!r} != {b!r}" for k, a, b in pairs
            if not (_nan(a) and _nan(b)) and not (abs(a - b) <= 1e-9)]


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_value(value: Any) -> Any:
    """NaN as `null` (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return None if _nan(value) else value


def record(path: Path) -> None:
    """Writes every case with sed_eval's numbers (and the versions that gave them)."""
    cases = hand_made() + random_cases(40)
    for case in cases:
        case["expected"] = _json_value(sed_eval_metrics(case))
    versions = {name: metadata.version(name) for name in ("sed_eval", "dcase_util", "numpy")}
    head = json.dumps({"recorded_with": versions,
                       "command": "python -m benchmarks.sed_eval_reference --record"})
    lines = ",\n".join(json.dumps(case) for case in cases)  # one case a line
    path.write_text(f'{head[:-1]}, "cases": [\n{lines}\n]}}\n')
    print(f"{len(cases)} cases written to {path} ({versions})")


def _median_seconds(fn: Any, cases: list[dict[str, Any]], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for case in cases:
            fn(case)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def recorded() -> None:
    """The project against the numbers recorded from sed_eval (where it cannot be
    imported)."""
    cases = json.loads(REFERENCE.read_text())["cases"]
    wrong = [(c["name"], d) for c in cases if (d := differences(project_metrics(c),
                                                                 c["expected"]))]
    print(f"{len(cases)} recorded cases: {len(cases) - len(wrong)} equal to sed_eval's "
          f"recorded numbers to 1e-9")
    for name, diff in wrong[:10]:
        print(f"  {name}: {'; '.join(diff)}")
    print(f"scoring {len(cases)} cases (median of 5): project "
          f"{_median_seconds(project_metrics, cases):.3f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true",
                        help=f"rewrite {REFERENCE.relative_to(REFERENCE.parents[2])}")
    args = parser.parse_args(argv)
    try:
        import_sed_eval()
    except ImportError as e:
        if args.record:
            parser.error(f"--record needs sed_eval, which cannot be imported here ({e}); "
                         "pip install sed_eval==0.2.1 'setuptools<81'")
        print(f"sed_eval cannot be imported here ({e}): comparing with its recorded numbers "
              f"({REFERENCE.name}).")
        recorded()
        return 0
    if args.record:
        record(REFERENCE)
        return 0
    cases = hand_made() + random_cases(300, seed=1)
    wrong = [(c["name"], d) for c in cases
             if (d := differences(project_metrics(c), sed_eval_metrics(c)))]
    print(f"{len(cases)} cases: {len(cases) - len(wrong)} equal to sed_eval to 1e-9")
    for name, diff in wrong[:10]:
        print(f"  {name}: {'; '.join(diff)}")
    ours, theirs = _median_seconds(project_metrics, cases), _median_seconds(sed_eval_metrics,
                                                                            cases)
    print(f"scoring {len(cases)} cases (median of 5): project {ours:.3f} s, sed_eval "
          f"{theirs:.3f} s ({theirs / ours:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
