"""The one results store (issue 34, point 1; issue 43, point 5): every result file is read
through `xval.core.storage`, each file once per version (a listener, the workbook and the final table
never read again what the recorder wrote or what did not change), and each instance's
summary computed once per version of its files."""

import collections
import json
import time
from pathlib import Path

import pytest

from tests.conftest import tiny_store, write_config
from xval import Experiment, Output
from xval.core import hashing
from xval.core.layout import ExperimentLayout
from xval.core.records import FoldResult, InstanceSummary, ParamsRecord
from xval.core.storage import RESULTS_STORE, ResultsStore
from xval.core.storage import store as store_module

INSTANCE = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 8}


class Counting:
    """Counts the result files the reader reads from disk (by file name pattern) and the
    summaries computed (by instance), while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: collections.Counter = collections.Counter()
        self.summaries: collections.Counter = collections.Counter()
        real_read = store_module.read_json
        real_summary = InstanceSummary.from_folds.__func__

        def read_json(path):
            self.reads[Path(path).name] += 1
            return real_read(path)

        def from_folds(cls, folds, num_folds, **kwargs):
            folds = list(folds)
            self.summaries[folds[0].instance if folds else None] += 1
            return real_summary(cls, folds, num_folds, **kwargs)

        monkeypatch.setattr(store_module, "read_json", read_json)
        monkeypatch.setattr(InstanceSummary, "from_folds", classmethod(from_folds))


class Told:
    """A listener that keeps what it was handed."""

    def __init__(self) -> None:
        self.instances: list = []
        self.results: list = []

    def on_instance(self, result):
        self.instances.append(result)

    def on_results(self, results):
        self.results.append(results)


@pytest.fixture
def demo(tmp_path):
    """A tiny experiment: two instances of three folds, MLPs trained two epochs."""
    from xval.config.loader import load_config

    config = load_config(write_config(tmp_path, report={"plots": True}))  # the plots read too
    tiny_store(config.data_dir)
    exp = Experiment(description="reads", dataset="tiny", number=1, num_folds=3,
                     parameters={"epochs": 2, "batch_size": 16}, config=str(config.path))
    exp[1] = {**INSTANCE, "comment_1": "one", "comment_2": ""}
    exp[2] = {**INSTANCE, "comment_1": "two", "comment_2": "", "learning_rate": 0.005}
    return exp, config


def test_reader_a_run_reads_back_nothing_it_wrote(demo, monkeypatch):
    """A fresh run: the planner, the recorder, the plots, the workbook (rebuilt after each
    instance) and the final table read no fold file, no params.json and no folds.json from
    disk, and compute each instance's summary once (instance 2's also while it was pending,
    for the workbook after instance 1)."""
    exp, config = demo
    RESULTS_STORE.forget()
    counting = Counting(monkeypatch)
    told = Told()
    outcome = exp.run(config=config, output=Output(out=lambda *a: None, listeners=[told]))
    assert outcome.exit_code == 0
    assert counting.reads == {}, counting.reads
    assert counting.summaries == {1: 1, 2: 1, None: 1}, counting.summaries
    # The listeners were handed the instance as read, and the run's results.
    assert [r.id for r in told.instances] == [1, 2]
    assert all(r.summary.status == "complete" for r in told.instances)
    assert told.results and told.results[-1] is outcome.results
    assert outcome.results[2] is told.instances[1]  # one reading, shared


def test_reader_a_resumed_run_reads_each_file_once(demo, monkeypatch):
    """A rerun in a new process (the reader's caches empty) finds every fold done: the
    planner and the recorder read folds.json, each params.json and each fold file once,
    hash each model once, and the final table reads nothing again."""
    exp, config = demo
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    RESULTS_STORE.forget()
    counting = Counting(monkeypatch)
    hashed = collections.Counter()
    real_sha = hashing._sha256

    def sha256(path):
        hashed[Path(path).name] += 1
        return real_sha(path)

    monkeypatch.setattr(hashing, "_sha256", sha256)
    # Files written less than RACY_NS ago are not cached on read; this run's are older.
    monkeypatch.setattr(store_module, "RACY_NS", 0)
    lines = []
    outcome = exp.run(config=config, output=Output(out=lines.append))
    assert outcome.exit_code == 0
    assert "instance 1: all 3 folds already done; skipped." in lines
    # commands.json: the log of the runs' command lines, read once to append this run.
    expected = {"folds.json": 1, "params.json": 2, "fold_0.json": 2, "fold_1.json": 2,
                "fold_2.json": 2, "commands.json": 1}
    assert dict(counting.reads) == expected, counting.reads
    # The store's files are hashed once, when the planner checks the store is the one
    # dataset.json describes (issue 37); the models once each by the planner and the table.
    assert dict(hashed) == {"fold_0.keras": 2, "fold_1.keras": 2, "fold_2.keras": 2,
                            "features.npy": 1, "meta.csv": 1}
    assert counting.summaries == {1: 1, 2: 1}


def test_reader_reads_a_file_again_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "RACY_NS", 0)
    store = ResultsStore()
    path = tmp_path / "params.json"
    record = ParamsRecord(instance=1, hash="a", params={"epochs": 3})
    path.write_text(json.dumps(hashing.seal(record.to_dict())))
    first, problem = store.read_record(path, ParamsRecord.from_dict)
    assert problem == "" and first.params == {"epochs": 3}
    again, _ = store.read_record(path, ParamsRecord.from_dict)
    assert again is first  # cached: the same version of the file
    time.sleep(0.01)
    path.write_text(json.dumps(hashing.seal({**record.to_dict(), "hash": "b"})))
    changed, _ = store.read_record(path, ParamsRecord.from_dict)
    assert changed.hash == "b"
    path.write_text("{not json")
    assert store.read_record(path, ParamsRecord.from_dict)[1].startswith(
        "is not valid JSON (JSONDecodeError")
    path.unlink()
    assert store.read_record(path, ParamsRecord.from_dict) == (None, "")


def test_reader_does_not_cache_a_file_that_just_changed(tmp_path, monkeypatch):
    """Within RACY_NS of its last change a file could change again without its stamp
    changing: it is read again every time."""
    store = ResultsStore()
    path = tmp_path / "params.json"
    path.write_text(json.dumps(hashing.seal(ParamsRecord(instance=1, hash="a", params={}).to_dict())))
    calls = []
    real = store_module.read_json
    monkeypatch.setattr(store_module, "read_json", lambda p: calls.append(p) or real(p))
    store.read_record(path, ParamsRecord.from_dict)
    store.read_record(path, ParamsRecord.from_dict)
    assert len(calls) == 2


def test_reader_remembers_what_the_recorder_wrote(tmp_path, monkeypatch):
    """`remember` keeps the record as a reader would read it back (NaN as None)."""
    store = ResultsStore()
    path = tmp_path / "fold_0.json"
    result = FoldResult(instance=1, fold=0, status="ok",
                        metrics={"test": {"accuracy": float("nan")}}, model_bytes=b"x")
    from xval.core.files import atomic_write_json

    atomic_write_json(path, result.to_dict())
    store.remember(path, result)
    monkeypatch.setattr(store_module, "read_json", lambda p: pytest.fail(f"read {p}"))
    record, problem = store.read_record(path, FoldResult.from_dict)
    assert problem == "" and record is not result
    assert record.metrics == {"test": {"accuracy": None}} and record.model_bytes is None


def test_reader_digest_is_computed_once_per_version(tmp_path, monkeypatch):
    store = ResultsStore()
    model = tmp_path / "fold_0.keras"
    model.write_bytes(b"one")
    calls = []
    real = hashing._sha256
    monkeypatch.setattr(hashing, "_sha256", lambda p: calls.append(p) or real(p))
    first = store.digest(model)
    assert store.digest(model) == first and len(calls) == 1
    time.sleep(0.01)
    model.write_bytes(b"two")
    assert store.digest(model) != first and len(calls) == 2


def test_reader_manifest_names_a_broken_folds_file(tmp_path):
    layout = ExperimentLayout(tmp_path / "experiment_1")
    layout.root.mkdir()
    assert RESULTS_STORE.manifest(layout) is None
    layout.folds_file.write_text("[1, 2]")
    with pytest.raises(Exception, match=r"folds\.json is not a record of its kind: it holds "
                                        r"list.*Restore it from a backup"):
        RESULTS_STORE.manifest(layout)


def test_reader_a_run_reads_and_writes_only_the_store_it_is_handed(demo, monkeypatch):
    """The results store is handed in (issue 67): a run given its own store (as a test or a
    second store would) reads and writes every result file through it, plots and workbook
    included; the process's `RESULTS_STORE` is not touched. Then an ensemble of the two instances,
    computed through the same store."""
    from xval import Ensemble
    from xval.running.environment import run_config
    from xval.running.options import Output, RunOptions
    from xval.running.runner import run_experiment

    exp, config = demo
    for name in ("read_record", "require", "write", "remember", "manifest", "params",
                 "instance", "predictions", "val_predictions", "plot_data", "model_items",
                 "begin_experiment", "begin_instance", "write_fold", "write_summary"):
        monkeypatch.setattr(RESULTS_STORE, name,
                            lambda *a, _n=name, **k: pytest.fail(f"RESULTS_STORE.{_n}"))
    mine = ResultsStore()
    exp[3] = Ensemble(1, 2)
    outcome = run_experiment(exp, None, RunOptions(output=Output(out=lambda *a: None)),
                             run_config(config, None, None), results_store=mine)
    assert outcome.exit_code == 0, outcome
    layout = ExperimentLayout(config.results_dir / "tiny" / "experiment_1")
    assert mine.manifest(layout) is not None
    assert outcome.results[3].ensemble is not None and outcome.results[3].results_store is mine
    assert (layout.root / "experiment_1.xlsx").is_file()
