"""The selected row: a clear winner, a tie shown as a tie and decided by the declared
preference, never by a test score; the declaration's checks; `init`'s preference."""

import ast
import json

import numpy as np
import pytest
from openpyxl import load_workbook

from tests.manifests import manifest_text, params_text, record_text
from xval import Ensemble, Experiment, ExperimentResults, Output
from xval.core.errors import ConfigurationError
from xval.report.tables import Selection, report_note, selection_lines
from xval.report.terminal import terminal_table
from xval.report.workbook import build_workbook

FOLDS = 5


def _results(root, ranks, tests=None, ensembles=(), runs=(), rank_split=True):
    """An experiment folder whose instances have `rank` clip accuracies `ranks[k]` (one per
    fold), validation ones 0.05 above (they chose the epoch) and test ones `tests[k]`
    (default: 0.2 below the ranking ones); `ensembles` are ids written as ensembles of
    instances; `runs` are the `code/commands.json` runs as `(instances, preference)`;
    `rank_split=False`: no ranking items, the scores are validation ones."""
    exp = root / "experiment_1"
    folds = [{"train": [f"t{i}", f"u{i}"], "val": [f"v{i}", f"w{i}"], "test": [f"s{i}"]}
             for i in range(len(next(iter(ranks.values()))))]
    exp.mkdir(parents=True)
    (exp / "folds.json").write_text(manifest_text(folds))
    for k, scores in ranks.items():
        folder = exp / f"instance_{k}"
        folder.mkdir()
        params = {"comment_1": f"row {k}"}
        (folder / "params.json").write_text(params_text(k, params, task_type="classification"))
        if k in ensembles:
            (folder / "ensemble.json").write_text(record_text({
                "members": [{"instance": 1, "experiment": "."},
                            {"instance": 2, "experiment": "."}], "weighting": "equal", "objective": "", "step": 0.1,
                "folds": [], "notes": []}))
        test = tests[k] if tests else [s - 0.2 for s in scores]
        for i, (rank, score) in enumerate(zip(scores, test)):
            values = {"train": 1.0, "val": min(1.0, rank + 0.05), "rank": rank, "test": score}
            if not rank_split:
                values["val"] = values.pop("rank")
            (folder / f"fold_{i}.json").write_text(record_text({
                "instance": k, "fold": i, "status": "ok", "task_type": "classification",
                "params_hash": json.loads(params_text(k, params))["hash"],
                "items": {"train": [f"t{i}", f"u{i}"], "val": [f"v{i}"], "test": [f"s{i}"],
                          **({"rank": [f"w{i}"]} if rank_split else {})},
                "n_rows": {"train": 200, "val": 25, "rank": 25, "test": 50},
                "clip_metrics": {s: {"accuracy": v, "loss": 1 - v} for s, v in values.items()},
                "metrics": {s: {"accuracy": v - 0.05, "loss": 1.05 - v}
                            for s, v in values.items()}}))
    if runs:
        (exp / "code").mkdir()
        (exp / "code" / "commands.json").write_text(record_text({"runs": [
            {"command": "python exp.py", "overrides": {}, "instances": list(instances),
             "time_utc": f"2026-12-0{n + 1}T10:00:00Z", "preference": preference, "format": 2}
            for n, (instances, preference) in enumerate(runs)]}))
    return ExperimentResults(exp)


NOISY = {1: [0.70, 0.55, 0.80, 0.62, 0.71],  # mean 0.676: the leader, by noise
         2: [0.60, 0.66, 0.72, 0.58, 0.70],  # 0.652
         3: [0.66, 0.70, 0.59, 0.64, 0.69]}  # 0.656
"""Three rows whose ranking scores differ by far less than their fold-to-fold noise."""


def test_selection_clear_winner_is_the_best_ranked_row(tmp_path):
    ranks = {1: [0.60, 0.62, 0.58, 0.61, 0.59], 2: [0.90, 0.91, 0.93, 0.92, 0.90],
             3: [0.62, 0.60, 0.61, 0.63, 0.57]}
    results = _results(tmp_path, ranks, runs=[([1, 2, 3], [3, 1, 2])])
    selection = Selection.of(results)
    assert selection.id == 2 and selection.tied == () and selection.split == "rank"
    assert selection.ranking.clear and selection.ranking.leader == 2
    lines = selection_lines(results, selection)
    assert lines[0] == ("Selection: instance 2 is ahead on ranking validation clip accuracy: "
                        "every other row is behind, beaten by some row by more than the ROPE "
                        "with probability 0.8 or more (Bayesian correlated t-test over 5 "
                        "folds, 5 ranking validation item(s) in all, ROPE 0.01).")
    assert lines[1] == "  instance 2: 0.9120: selected."
    assert all("behind instance 2 (P 1.00)" in line for line in lines[2:])
    note = report_note(results)
    assert note.startswith("Selected: instance 2, best ranking validation accuracy (0.9120, "
                           "clip level). Report its test accuracy at clip level: 0.7120")
    assert "Tied" not in note


def test_selection_tie_is_shown_and_decided_by_the_default_order(tmp_path):
    """The ranking scores cannot tell 1, 2 and 3 apart: the note and the lines say so, and
    the default order (the ensemble 3 first) selects, not the noise that puts 1 ahead."""
    results = _results(tmp_path, NOISY, ensembles=(3,))
    selection = Selection.of(results)
    assert selection.ranking.leader == 1 and not selection.ranking.clear
    assert selection.id == 3 and [r.id for r in selection.tied] == [1, 2]
    lines = selection_lines(results, selection)
    assert lines[0].startswith("Selection: ranking validation clip accuracy cannot tell "
                               "instances 1, 2, 3 apart (none is beaten with probability 0.8;")
    assert lines[0].endswith("best mean: instance 1); instance 3 is the first of them in the "
                             "preference (the default: ensembles of instances first, then "
                             "the other instances by id): 3, 1, 2.")
    assert [line.split(":")[0] for line in lines[1:]] == ["  instance 1", "  instance 3",
                                                          "  instance 2"]
    assert lines[1].endswith(": tied.") and lines[2].endswith(": selected.")
    note = report_note(results)
    assert note.startswith("Selected: instance 3, ranking validation accuracy 0.6560 (clip "
                           "level), by the preference among the rows that ranking validation "
                           "accuracy cannot tell apart (best mean: instance 1, 0.6760).")
    assert "Tied on ranking validation accuracy with instance(s) 1, 2: the ranking scores " \
        "cannot tell them apart" in note
    table = terminal_table(results)
    row = next(line for line in table.splitlines() if line.split()[:2] == ["*", "3"])
    assert "complete" in row
    assert lines[0] in table
    # The workbook: the row marked, the tie and the probabilities under the note.
    ws = load_workbook(build_workbook(results, path=tmp_path / "w.xlsx"))["Summary"]
    marked = {r[0]: r[2] for r in ws.iter_rows(min_row=3, max_row=5, values_only=True)}
    assert marked == {1: "tied", 2: "tied", 3: "★ selected"}
    texts = [c.value for r in ws.iter_rows() for c in r if isinstance(c.value, str)]
    assert lines[0] in texts and lines[1] in texts


def test_selection_without_an_ensemble_takes_the_lowest_id_of_a_tie(tmp_path):
    assert Selection.of(_results(tmp_path, {2: NOISY[1], 5: NOISY[2], 7: NOISY[3]})).id == 2


def test_selection_follows_the_declared_preference(tmp_path):
    """The latest run's declared order chooses among the rows that tie; a row it leaves out
    follows in the default order; a row behind another is never chosen, whatever its
    place in the order."""
    ranks = {**NOISY, 4: [0.30, 0.32, 0.28, 0.31, 0.29]}
    results = _results(tmp_path / "a", ranks, runs=[([1, 2, 3, 4], [4, 2, 3])])
    selection = Selection.of(results)
    assert selection.id == 2 and {r.id for r in selection.tied} == {1, 3}
    assert selection.ranking.preference.order == (4, 2, 3, 1)
    lines = selection_lines(results, selection)
    assert "instance 2 is the first of them in the preference (declared by the " \
        "experiment): 4, 2, 3, 1." in lines[0]
    assert lines[-1].startswith("  instance 4: 0.3000;") and "behind instance" in lines[-1]
    assert not any(line.startswith("Warning") for line in lines)
    # Declared by a run that followed runs with instances: said, since it may have been
    # chosen on their scores.
    late = _results(tmp_path / "b", ranks, runs=[([1, 2, 3, 4], None), ([1], [3, 2])])
    selection = Selection.of(late)
    assert selection.id == 3
    assert selection_lines(late, selection)[-1] == (
        "Warning: the preference was declared by the run of 2026-12-02T10:00:00Z, after runs "
        "that trained instances: it may have been chosen on their scores. Declare it before "
        "any score is seen.")


def test_selection_never_reads_a_test_score(tmp_path):
    """Test scores that would reverse every order leave the selection and its lines as
    they are."""
    ranks = {**NOISY, 4: [0.95, 0.93, 0.96, 0.94, 0.97]}
    first = _results(tmp_path / "a", ranks)
    upside = _results(tmp_path / "b", ranks,
                      tests={k: [1.05 - s for s in v] for k, v in ranks.items()})
    a, b = Selection.of(first), Selection.of(upside)
    assert a.id == b.id == 4 and a.ranking == b.ranking
    assert selection_lines(first, a) == selection_lines(upside, b)


def test_selection_on_the_validation_split_and_single_folds(tmp_path):
    """Without ranking items the validation scores rank (the same rule); with one fold
    nothing can tell rows apart, so the order decides."""
    ranks = {1: [0.60, 0.62, 0.58, 0.61, 0.59], 2: [0.90, 0.91, 0.93, 0.92, 0.90]}
    results = _results(tmp_path / "a", ranks, rank_split=False)
    selection = Selection.of(results)
    assert selection.split == "val" and selection.id == 2 and selection.ranking.clear
    assert selection_lines(results, selection)[0].startswith(
        "Selection: instance 2 is ahead on validation clip accuracy")
    results = _results(tmp_path / "b", {1: [0.5], 2: [0.9]}, rank_split=False)
    selection = Selection.of(results)
    assert selection.id == 1 and selection.ranking.leader == 2
    assert "cannot tell instances 1, 2 apart" in selection_lines(results, selection)[0]


def test_preference_declaration_is_checked():
    def declare(preference):
        return Experiment(description="d", dataset="tiny", number=1, preference=preference)

    assert declare([3, 1, 2]).preference == (3, 1, 2)
    assert declare(None).preference is None
    with pytest.raises(ConfigurationError, match=r"preference='3, 1': expected a list of "
                                                 "instance ids, the most preferred first"):
        declare("3, 1")
    with pytest.raises(ConfigurationError, match=r"preference=\[3, 1, 3\]: expected each "
                                                 r"instance id once.*; 3 named twice"):
        declare([3, 1, 3])
    with pytest.raises(ConfigurationError, match=r"preference entry -1"):
        declare([2, -1])
    with pytest.raises(ConfigurationError, match=r"preference entry 'a'"):
        declare([2, "a"])
    with pytest.raises(ConfigurationError, match=r"preference=\[\]: expected each"):
        declare([])
    exp = declare([3, 9, 1])
    exp[1] = {"comment_1": "a"}
    exp[2] = {"comment_1": "b"}
    exp[3] = Ensemble(1, 2)
    with pytest.raises(ConfigurationError, match=r"preference=\[3, 9, 1\] names instance\(s\) "
                                                 r"9, which the experiment does not declare "
                                                 r"\(it declares 1, 2, 3\)"):
        exp.check_preference()


def test_preference_undeclared_is_refused_before_training_and_recorded(tmp_path):
    """A run refuses an order naming undeclared instances before anything trains (the dry
    run too), and records the declared order with its command line, where the report
    reads it."""
    from tests.conftest import tiny_store, write_config
    from xval.config.loader import load_config
    from xval.running.options import RunOptions

    config = load_config(write_config(tmp_path))
    tiny_store(config.data_dir)
    exp = Experiment(description="d", dataset="tiny", number=2, num_folds=2,
                     parameters={"epochs": 1, "batch_size": 16}, config=str(config.path),
                     preference=[2, 7])
    exp[1] = ['architecture="mlp"', 'reshaping_type="none"']
    exp[2] = ['architecture="mlp"', 'reshaping_type="none"', "learning_rate=0.01"]
    with pytest.raises(ConfigurationError, match="names instance"):
        exp.run(config=config, options=RunOptions(dry_run=True), output=Output(out=lambda *a: None))
    assert not (config.results_dir / "tiny" / "experiment_2").exists()
    exp.preference = (2, 1)
    exp.run(config=config, output=Output(out=lambda *a: None))
    results = ExperimentResults(config.results_dir / "tiny" / "experiment_2")
    assert results.runs()[-1].preference == [2, 1]
    assert Selection.of(results).ranking.preference.order == (2, 1)
    assert "preference: [2, 1]" in (results.path / "experiment_2_description.txt").read_text()
    ws = load_workbook(results.path / "experiment_2.xlsx")["Summary"]
    runs = [c.value for r in ws.iter_rows() for c in r
            if isinstance(c.value, str) and "--set values" in c.value]
    assert runs and runs[0].endswith("(instances 1, 2; --set values: none; preference: 2, 1)")


@pytest.mark.parametrize(("stores", "order"), [(0, []), (1, [3, 1, 2]),
                                               (3, [5, 3, 1, 2, 4]),
                                               (4, [6, 4, 1, 2, 3, 5])])
def test_init_preference_puts_fusion_and_stacked_first_and_the_cnn_last(stores, order):
    """`init`'s order over the instances it writes (`encoder_instances`): the fusion, the
    encoders side by side, each encoder, the CNN from scratch."""
    from xval.cli.scripts import encoder_instances, encoder_preference, preference_line

    assert encoder_preference(stores) == order
    if not stores:
        assert preference_line(stores) == ""
        return
    names = [(f"s{k}", "aisfx") for k in range(max(1, stores - 1))]
    written = encoder_instances(names, "stacked" if stores > 1 else None, "classification")
    blocks = {int(b.split("]")[0]): b for b in written.split("experiment[") if b.strip()}
    assert "Ensemble(" in blocks[order[0]] and '"audio_cnn"' in blocks[order[-1]]
    if stores > 1:
        assert '"dataset": "stacked"' in blocks[order[1]]
    line = preference_line(stores)
    assert line.startswith(f"    preference={json.dumps(order)},  # ")
    call = ast.parse(f"Experiment(\n{line})").body[0].value  # valid Python, ids only
    assert ast.literal_eval(call.keywords[0].value) == order
    assert np.all(np.diff(sorted(order)) == 1)


def test_ranking_ratio_counts_the_first_models_training_rows():
    """A `refit_with_val` fold's test scores come from a model trained on training +
    validation rows; its ranking scores from the first model, trained on the training rows:
    the corrected variance of each uses its own `n_test / n_train`."""
    from xval.core.records import FoldResult, Status
    from xval.report.stats import fold_test_train_ratio

    fold = FoldResult(instance=1, fold=0, status=Status.OK,
                      n_rows={"train": 200, "train_original": 100, "val": 20, "rank": 10,
                              "test": 50},
                      refit={"train_original": 125})
    assert fold_test_train_ratio([fold]) == pytest.approx(50 / 125)
    assert fold_test_train_ratio([fold], "rank") == pytest.approx(10 / 100)
    assert fold_test_train_ratio([fold], "val") == pytest.approx(20 / 100)


def test_behind_probability_sets_how_sure_a_row_must_be_beaten(tmp_path):
    """Instance 2 beats 1 by more than the ROPE with probability 0.92: behind at the default
    0.8 (2 is a clear winner), tied at 0.95 (the order, 1 first, picks)."""
    from tests.conftest import write_config
    from xval.config.loader import load_config

    results = _results(tmp_path / "r", {1: [0.66, 0.66, 0.62, 0.71, 0.65],
                                        2: [0.72, 0.64, 0.70, 0.76, 0.73]})
    ranking = Selection.of(results).ranking
    assert ranking.selected == 2 and ranking.clear
    assert ranking.comparisons[0].ahead == pytest.approx(0.918, abs=1e-3)
    strict = load_config(write_config(tmp_path / "c", report={"behind_probability": 0.95}))
    selection = Selection.of(results, strict)
    assert selection.id == 1 and [r.id for r in selection.tied] == [2]
    with pytest.raises(ConfigurationError, match="behind_probability"):
        load_config(write_config(tmp_path / "bad", report={"behind_probability": 0.4}))
