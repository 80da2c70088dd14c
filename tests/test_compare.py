"""`python -m xval compare`: real experiments (epochs=1) on a small synthetic store, compared
pair by pair; the table and compare.xlsx read back; different folds refused."""

import csv
import io

import numpy as np
import pytest
from openpyxl import load_workbook

from tests.conftest import ROOT, run_here, tiny_store, write_config
from xval import Experiment, Output
from xval.report.comparison import Target, compare, fold_grid
from xval.report.stats import holm
from xval.report.workbook import BEST_FILL, HEADER_FILL, TIED_FILL

QUICK = {"epochs": 1, "patience": 1, "batch_size": 64}
CNN = {"architecture": "example_cnn", "reshaping_type": "conv", "filters": 4,
       "comment_1": "cnn", "comment_2": ""}
MLP = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 16,
       "comment_1": "mlp", "comment_2": ""}


def _run(config, dataset, number, num_folds, instances):
    exp = Experiment(description=f"compare test {number}", dataset=dataset, number=number,
                     num_folds=num_folds, parameters=QUICK, config=str(config))
    for k, params in instances.items():
        exp[k] = params
    exp.run(config=config, output=Output(out=lambda line: None))
    return config.results_dir / dataset / f"experiment_{number}"


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """Experiments 1 and 2 on the same 4 folds of a store named "demo" (8 items of a small
    synthetic store: what compare reads is the fold files, whatever the data), experiment 3
    on 2 folds."""
    from xval.config.loader import load_config

    folder = tmp_path_factory.mktemp("compare")
    tiny_store(folder / "data", "demo", n_items=8)
    config_path = write_config(folder)
    config = load_config(config_path)
    one = _run(config, "demo", 1, 4, {1: {**CNN, "comment_1": "cnn"},
                                      2: {**MLP, "comment_1": "mlp"}})
    two = _run(config, "demo", 2, 4, {1: {**CNN, "learning_rate": 0.003,
                                          "comment_1": "cnn fast"}})
    three = _run(config, "demo", 3, 2, {1: {**CNN, "comment_1": "cnn, 2 folds"}})
    return folder, config_path, one, two, three


def _compare(*args, cwd):
    """`python -m xval compare ARGS` in this process (`run_here`); its own process is run
    in test_entry.py and test_startup.py."""
    from xval.cli.main import main

    return run_here(main, "compare", *args, cwd=cwd)


def test_compare_same_folds_prints_the_table_and_writes_the_workbook(demo_runs):
    folder, config, one, two, _ = demo_runs
    book_path = folder / "out" / "compare.xlsx"
    book_path.parent.mkdir()
    proc = _compare(one, two, "--workbook", book_path, "--config", config, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for label in ("demo/experiment_1:1", "demo/experiment_1:2", "demo/experiment_2:1"):
        assert label in out
    assert "Pairs:" in out and "p (Holm)" in out and "P(A better)" in out
    assert "ROPE of ±0.01" in out and f"Wrote {book_path}" in out
    book = load_workbook(book_path)
    assert book.sheetnames == ["Instances", "Pairs", "Notes"]  # one dataset: no ranking
    pairs = list(book["Pairs"].values)
    header, rows = pairs[0], pairs[1:]
    assert len(rows) == 3  # every pair of 3 instances
    column = {name: header.index(name) for name in header}
    p = [r[column["p"]] for r in rows]
    np.testing.assert_allclose([r[column["p (Holm)"]] for r in rows], holm(p))
    for r in rows:
        assert r[column["folds"]] == 4
        probs = [r[column[n]] for n in ("P(A better)", "P(equivalent)", "P(B better)")]
        assert sum(probs) == pytest.approx(1.0) and all(0 <= v <= 1 for v in probs)
        tied = book["Pairs"].cell(row=rows.index(r) + 2, column=len(header)).fill.fgColor.rgb
        assert (tied == "00" + TIED_FILL) == r[-1].startswith("no significant")
    assert book["Pairs"]["A1"].fill.fgColor.rgb == "00" + HEADER_FILL
    instances = list(book["Instances"].values)
    means = [r[4] for r in instances[1:]]
    best_row = means.index(max(means)) + 2
    assert book["Instances"].cell(row=best_row, column=5).fill.fgColor.rgb == "00" + BEST_FILL
    # The same numbers in-process, through the reading API.
    comparison = compare([Target(one), Target(two)])
    assert [e.label for e in comparison.entries] == [r[0] for r in instances[1:]]
    np.testing.assert_allclose([pair.p for pair in comparison.pairs], p)


def test_compare_different_folds_exits_2_with_one_line(demo_runs):
    folder, config, one, _, three = demo_runs
    proc = _compare(one, three, "--config", config, "--workbook", folder / "refused.xlsx",
                    cwd=folder)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: demo/experiment_1 and "
                                                   "demo/experiment_3 have different fold")
    assert "not on the same folds" in lines[0] and "--allow-different-folds" in lines[0]
    assert not (folder / "refused.xlsx").exists()


def test_compare_allow_different_folds_says_unpaired(demo_runs):
    folder, config, one, _, three = demo_runs
    proc = _compare(one, three, "--allow-different-folds", "--format", "csv", "--no-workbook",
                    "--config", config, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 3
    with_three = [r for r in rows if "experiment_3" in r["A"] + r["B"]]
    assert len(with_three) == 2
    for r in with_three:
        assert r["folds"].endswith("(unpaired)") and r["P(A better)"] == ""
        assert "unpaired: different folds" in r["verdict"] or "significant" in r["verdict"]
    paired = next(r for r in rows if r not in with_three)
    assert paired["folds"] == "4" and float(paired["P(A better)"]) >= 0


def test_compare_single_instances_as_markdown(demo_runs):
    folder, config, one, _, _ = demo_runs
    proc = _compare(f"{one}:1", f"{one}:2", "--format", "markdown", "--no-workbook",
                    "--rope", "0.05", "--config", config, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "## Pairs" in proc.stdout and "| A | B | folds |" in proc.stdout
    table = [line for line in proc.stdout.splitlines() if line.startswith("| demo/")]
    assert len(table) == 3  # two instances, one pair
    assert "ROPE of ±0.05" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["{one}:9"], "no instance 9 there; its instances are [1, 2]"),
    (["{folder}/missing"], "is not a folder"),
    (["{folder}/data/demo"], "is not an experiment folder"),
    (["{one}", "--rope", "0"], "--rope 0.0: expected a half-width > 0"),
    (["{one}", "--rope", "-0.1"], "--rope -0.1: expected a half-width > 0"),
    (["{one}", "--metric", "nonsense"], "--metric nonsense: no instance"),
    (["{one}:0"], "an instance id >= 1"),
])
def test_compare_bad_input_is_one_error_line(demo_runs, args, message):
    folder, config, one, _, _ = demo_runs
    args = [a.format(one=one, folder=folder) for a in args]
    proc = _compare(*args, "--config", config, "--workbook", folder / "bad.xlsx", cwd=folder)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (folder / "bad.xlsx").exists()


def test_compare_ranks_instances_over_datasets(tmp_path):
    """Three instances on two datasets: a Friedman + Nemenyi ranking, sheet included."""
    from xval.config.loader import load_config

    config = load_config(write_config(tmp_path))
    runs = []
    for seed, name in ((0, "tiny_a"), (1, "tiny_b")):
        tiny_store(config.data_dir, name, seed=seed, n_items=4)
        runs.append(_run(config, name, 1, 2, {1: {**CNN}, 2: {**MLP},
                                              3: {**CNN, "learning_rate": 0.02}}))
    proc = _compare(*runs, "--allow-different-folds", "--workbook", tmp_path / "c.xlsx",
                    "--config", config.path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Ranking over datasets:" in proc.stdout and "Nemenyi critical difference" in proc.stdout
    assert "9 pair(s) on different datasets not compared" in proc.stdout  # 15 - 2 x 3
    assert "adjusted over the 6 pair(s) compared" in proc.stdout
    ranking = list(load_workbook(tmp_path / "c.xlsx")["Ranking"].values)
    assert ranking[0] == ("rank", "instance", "mean rank")
    assert sorted(r[1] for r in ranking[1:]) == ["instance 1", "instance 2", "instance 3"]
    assert sum(r[2] for r in ranking[1:]) == pytest.approx(6.0)  # 1 + 2 + 3


def test_fold_grid_keeps_whole_repeats():
    a = {i: float(i) for i in range(6)}
    b = {i: 0.0 for i in range(6) if i != 4}  # repeat 1 lost fold 1
    first, second, used = fold_grid(a, b, repeats=2, num_folds=6)
    assert first.shape == (1, 3) and used == [0, 1, 2]
    first, _, used = fold_grid(a, a, repeats=2, num_folds=6)
    assert first.shape == (2, 3) and first[1].tolist() == [3.0, 4.0, 5.0]


def test_target_parse():
    assert Target.parse("results/demo/experiment_1") == Target(ROOT.joinpath(
        "results/demo/experiment_1").relative_to(ROOT))
    assert Target.parse("results/demo/experiment_1:3").instance == 3
    assert Target.parse("C:/results/x").instance is None  # a drive letter, not an instance
