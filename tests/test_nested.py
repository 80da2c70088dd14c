"""Nested search (`--search --inner-folds K`): 2 trials x 2 inner folds x 2 outer folds on the
demo data; no outer test item ever reaches an inner split; bad input refused before
anything runs."""

import pytest
from openpyxl import load_workbook

from tests.conftest import run_script, write_config, write_script
from xval import Experiment, Output, SearchOptions
from xval.config.space import Float, Search
from xval.core.errors import ConfigurationError
from xval.core.layout import ExperimentLayout
from xval.core.records import FoldResult
from xval.core.storage import RESULTS_STORE
from xval.report.results import ExperimentResults
from xval.running.splitting import outer_training_items

pytest.importorskip("optuna", reason="optuna is not installed (pip install -e '.[search]')")

BASE = {"architecture": "mlp", "reshaping_type": "none", "num_layers": 1, "hidden_units": 8,
        "epochs": 2, "patience": 2, "batch_size": 64}
SPACE = {"learning_rate": Float(1e-3, 3e-2, log=True)}

SCRIPT = """
from xval import Experiment, Float, Search
experiment = Experiment(description="nested", dataset="tiny", number=1, num_folds=2,
                        config={config!r})
experiment[1] = {base!r}
experiment.search = Search(base={base!r}, space={{"learning_rate": Float(1e-3, 3e-2)}},
                           n_trials=2)
if __name__ == "__main__":
    experiment.main()
"""


def _experiment(config_path, dataset="demo"):
    exp = Experiment(description="nested search", dataset=dataset, number=1, num_folds=2,
                     config=str(config_path))
    exp.search = Search(base=BASE, space=SPACE, n_trials=2, pruner="none")
    return exp


@pytest.fixture(scope="module")
def nested_run(tmp_path_factory):
    """A nested search of 2 trials x 2 inner folds x 2 outer folds on the demo data."""
    from preprocessing.demo import build_demo
    from xval.config.loader import load_config

    folder = tmp_path_factory.mktemp("nested")
    build_demo(folder / "data", workers=1, progress=False)
    config = load_config(write_config(folder))
    lines: list[str] = []
    outcome = _experiment(config.path).run(config=config, search=SearchOptions(inner_folds=2),
                                           output=Output(out=lines.append))
    return config, outcome, lines, config.results_dir / "demo" / "experiment_1"


@pytest.mark.slow
def test_nested_search_scores_the_chosen_trial_on_the_outer_folds(nested_run):
    _, outcome, lines, exp_dir = nested_run
    assert outcome.exit_code == 0, lines
    results = ExperimentResults(exp_dir)
    assert list(results.instances) == [1]  # the outer scores: one instance
    r = results[1]
    assert r.status == "complete" and [f.fold for f in r.folds] == [0, 1]
    assert r.nested is not None and r.nested.inner_folds == 2 and r.nested.n_trials == 2
    assert [c["fold"] for c in r.nested.choices] == [0, 1]
    for choice in r.nested.choices:
        inner = ExperimentResults(exp_dir / "nested" / f"outer_{choice['fold']}")
        trials = {t.trial.trial: t for t in inner if t.trial is not None}
        assert sorted(trials) == [0, 1]
        best = max(trials.values(), key=lambda t: t.trial.objective)  # accuracy-like: max
        assert choice["trial"] == best.trial.trial
        assert choice["objective"] == pytest.approx(best.trial.objective)
        assert choice["params"] == best.trial.params
    assert any("outer fold 1: trial" in line and "chosen" in line for line in lines)

    book = load_workbook(exp_dir / "experiment_1.xlsx")
    assert "Nested" in book.sheetnames
    rows = list(book["Nested"].iter_rows(min_row=2, max_row=3, values_only=True))
    assert [row[:5] for row in rows] == [(1, c["fold"], 2, 2, c["trial"])
                                         for c in r.nested.choices]
    metric = r.nested.metric
    level = "clip" if r.metric(metric, "test", "clip") is not None else "segment"
    for row, fold in zip(rows, r.folds):
        assert row[6] == pytest.approx(fold.level_metrics(level)["test"][metric])


@pytest.mark.slow
def test_nested_search_never_lets_an_outer_test_item_into_an_inner_split(nested_run):
    """The leak test: every inner split (the inner folds.json) and every inner fold that
    trained (its fold file's items) holds only the outer fold's training items."""
    _, _, _, exp_dir = nested_run
    outer = RESULTS_STORE.manifest(ExperimentLayout(exp_dir))
    assert outer is not None and outer.num_folds == 2
    for i, fold in enumerate(outer.folds):
        allowed = set(outer_training_items(fold))
        held_out = set(fold["test"])
        assert allowed and held_out and not allowed & held_out
        inner = RESULTS_STORE.manifest(ExperimentLayout(exp_dir / "nested" / f"outer_{i}"))
        assert inner is not None and inner.num_folds == 2
        assert "ItemKFold(n_splits=2" in inner.splitter
        tested = []
        for split in inner.folds:
            seen = {*split["train"], *split["val"], *split["test"]}
            assert seen == allowed and not seen & held_out
            tested += split["test"]
        assert sorted(tested) == sorted(allowed)  # an inner k-fold of those items
        records = [RESULTS_STORE.read_record(p, FoldResult.from_dict)[0]
                   for p in (exp_dir / "nested" / f"outer_{i}").glob("instance_*/fold_*.json")]
        assert len(records) == 4  # 2 trials x 2 inner folds
        for record in records:
            assert record is not None and record.ok
            trained = {*record.items["train"], *record.items["val"], *record.items["test"]}
            assert trained <= allowed and not trained & held_out
        scored = RESULTS_STORE.read_record(exp_dir / "instance_1" / f"fold_{i}.json",
                                    FoldResult.from_dict)[0]
        assert scored is not None and set(scored.items["test"]) == held_out


def test_nested_search_bad_input_is_refused_before_anything_runs(config_path, config, store):
    exp = _experiment(config_path, dataset="tiny")
    for inner, match in (
            (1, r"--inner-folds 1: expected an integer >= 2"),
            # 6 items in 2 outer folds: 3 training items each, too few for 2 inner folds
            # (each keeps test, validation and training items apart); 3 folds of 1 work.
            (2, r"--inner-folds 2: outer fold 0 has 3 training items \(training and "
                r"validation\), and 2 inner folds need at least 4; use --inner-folds 3\.$"),
            (4, r"need at least 4; use --inner-folds 3\.$")):
        with pytest.raises(ConfigurationError, match=match):
            exp.run(config=config, search=SearchOptions(inner_folds=inner),
                    output=Output(out=lambda line: None))
        assert not config.results_dir.exists()
    exp = Experiment(description="d", dataset="tiny", number=1, num_folds=1,
                     config=str(config_path))
    exp.search = Search(base=BASE, space=SPACE, n_trials=2)
    with pytest.raises(ConfigurationError, match=r"--inner-folds 6: outer fold 0 has 5 "
                                                 r"training items .* use --inner-folds 2 "
                                                 r"or 3 or 4 or 5\.$"):
        exp.run(config=config, search=SearchOptions(inner_folds=6), output=Output(out=lambda line: None))
    assert not config.results_dir.exists()


@pytest.mark.parametrize("args, line", [
    (["--search", "--inner-folds", "1"], "error: --inner-folds 1: expected an integer >= 2"),
    (["--inner-folds", "2"], "error: --inner-folds 2 goes with --search"),
])
def test_nested_search_command_line_errors_are_one_line(args, line, tmp_path, config_path,
                                                        store):
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path), base=BASE))
    proc = run_script(script, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line)
