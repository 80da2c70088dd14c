"""Run options as one object (issue 55): `RunOptions`, grouped as `Execution`,
`SearchOptions` and `Output`, is what the command line, `Experiment.run` and the runner
share; each option is declared once (its flag and help with it), and an option of a group
given flat is refused with its group's spelling. Issue 67: every run flag
is a field, and every rule between flags is the objects' own, so a Python caller meets the
command line's refusals in the same words."""

import dataclasses
import warnings

import pytest

from xval.core.errors import ConfigurationError
from xval.running.options import Execution, Output, RunOptions, SearchOptions, from_args


def _parser():
    from xval import Experiment
    from xval.running.command import experiment_parser

    experiment = Experiment(description="d", dataset="tiny", number=1)
    experiment[1] = {"architecture": "mlp"}
    return experiment_parser(experiment)


def test_run_options_the_command_line_makes_the_object_a_python_caller_makes():
    args = _parser().parse_args(["1", "2", "0", "--executor", "process", "--gpus", "0,1",
                                 "--search", "--trials", "5", "--timeout", "60", "-v",
                                 "--overwrite", "--dry-run"])
    made = from_args(args, out=print, progress=False, listeners=[])
    assert made == RunOptions(overwrite=True, dry_run=True,
                              executor=Execution("process", gpu="0", gpus=["0", "1"]),
                              search=SearchOptions(trials=5, timeout=60.0),
                              output=Output(verbose=True, listeners=[]))
    plain = from_args(_parser().parse_args([]), out=print)
    assert plain == RunOptions() and plain.overwrite is None and plain.debug is None


def test_run_options_every_declared_flag_is_on_the_command_line_once():
    """The parser's run flags are the fields' declarations, each with its help (a flag
    added twice would stop argparse: a conflicting option string)."""
    from xval.core.arguments import option_of as _declared

    help_text = " ".join(_parser().format_help().split())
    groups = [RunOptions, Execution, SearchOptions, Output]
    declared = [(flags, d["help"]) for cls in groups for f in dataclasses.fields(cls)
                if (flags := (d := _declared(f)).get("flags"))]
    assert len(declared) == 16  # with --set, --backend, -q and --mlflow (issue 67)
    for flags, text in declared:
        assert all(flag in help_text for flag in flags) and text in help_text, flags


def test_run_options_an_option_of_a_group_given_flat_names_its_group():
    with pytest.raises(TypeError, match=r"^run\(\) got gpus=\[0, 1\], an option of executor: "
                                        r"pass executor=Execution\(gpus=\[0, 1\]\)\.$"):
        RunOptions.of(executor="process", gpus=[0, 1])
    with pytest.raises(TypeError, match=r"pass output=Output\(out=<built-in function len>"):
        RunOptions.of(out=len)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RunOptions.of(search=SearchOptions(trials=3), output=Output(out=len)) == \
            RunOptions(search=SearchOptions(trials=3), output=Output(out=len))


@pytest.mark.parametrize("changes, error, match", [
    ({"trails": 3}, TypeError, r"unexpected keyword argument 'trails'\. Did you mean trials"),
    ({"trials": 3}, TypeError, r"^run\(\) got trials=3, an option of search: pass "
     r"search=SearchOptions\(trials=3\)\.$"),
    ({"executor": 3}, TypeError, "executor=3: expected an Execution or its name"),
    # a switch that is not a bool: `dry_run="no"` made the run a dry run, without a word
    ({"dry_run": "no"}, ConfigurationError, r"--dry-run 'no': expected True or False; got "
                                            r"str"),
    ({"overwrite": "false"}, ConfigurationError, r"--overwrite 'false': expected True, "
                                                 r"False, or None"),
    ({"debug": 1}, ConfigurationError, r"--debug 1: expected True, False, or None"),
])
def test_run_options_refuse_what_no_run_can_do(changes, error, match):
    with pytest.raises(error, match=match):
        RunOptions.of(**changes)


def test_run_options_an_inner_k_fold_needs_two_folds():
    with pytest.raises(ConfigurationError, match=r"--inner-folds 1: expected .*two folds at "
                                                 r"least"):
        SearchOptions(inner_folds=1)


@pytest.mark.parametrize("make", [lambda: RunOptions(dry_run="no"),
                                  lambda: Output(quiet="no"), lambda: Output(progress="no"),
                                  lambda: Output(verbose="no")])
def test_run_options_made_directly_check_their_switches(make):
    with pytest.raises(ConfigurationError, match=r"'no': expected True or False"):
        make()


def test_run_options_settle_from_the_declaration():
    from xval import Experiment

    experiment = Experiment(description="d", dataset="tiny", number=1, gpu_ID=1,
                            overwrite_results=True)
    experiment[1] = {"architecture": "mlp"}
    settled, options = RunOptions(overrides={"num_repeats": 2, "epochs": 3}).settled(
        experiment)
    assert (options.overwrite, options.debug, options.executor.gpu) == (True, False, 1)
    assert options.overrides == {"epochs": 3} and settled.num_repeats == 2
    _, given = RunOptions(overwrite=False, executor=Execution(gpu=-1)).settled(experiment)
    assert (given.overwrite, given.executor.gpu) == (False, -1)


# (the script's arguments, the Python call that asks the same; `experiment` is passed)
REFUSALS = {
    "ray address without ray": (
        ["--executor", "process", "--ray-address", "auto"],
        lambda experiment: Execution("process", ray_address="auto")),
    "ray port out of range": (
        ["--ray-address", "h:99999"], lambda experiment: Execution(ray_address="h:99999")),
    "quiet and verbose": (["-q", "-v"], lambda experiment: Output(quiet=True, verbose=True)),
    "mlflow instance number": (["--mlflow", "1"], lambda experiment: Output(mlflow="1")),
    "mlflow bad uri": (["--mlflow=ftp://x/y"], lambda experiment: Output(mlflow="ftp://x/y")),
    "trials not positive": (["--search", "--trials", "0"],
                            lambda experiment: SearchOptions(trials=0)),
    "refit dry run": (["--refit", "1", "--dry-run"],
                      lambda experiment: experiment.refit(1, dry_run=True)),
    "refit search": (["--refit", "1", "--search"],
                     lambda experiment: experiment.refit(1, search=True)),
    "refit overwrite": (["--refit", "1", "--overwrite"],
                        lambda experiment: experiment.refit(1, overwrite=True)),
    "refit mlflow": (["--refit", "1", "--mlflow"],
                     lambda experiment: experiment.refit(1, output=Output(mlflow="mlruns"))),
}


@pytest.mark.parametrize("rule", list(REFUSALS))
def test_run_options_a_python_caller_gets_the_command_lines_refusals(rule, config_path,
                                                                     tmp_path, monkeypatch,
                                                                     capsys):
    """Each rule between run options refused both ways in the same words: the experiment
    script's command line (exit 2, one `error:` line, nothing written) and the Python call
    that asks the same (`Execution`, `Output`, `SearchOptions`, `Experiment.refit`)."""
    from xval import Experiment
    from xval.running.command import run_experiment_cli

    monkeypatch.chdir(tmp_path)
    argv, call = REFUSALS[rule]
    experiment = Experiment(description="d", dataset="tiny", number=1,
                            config=str(config_path))
    experiment[1] = {"architecture": "mlp"}
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ConfigurationError) as raised:
        call(experiment)
    code = run_experiment_cli(experiment, argv, run=experiment.run, refit=experiment.refit)
    assert code == 2
    assert capsys.readouterr().err == f"error: {raised.value}\n"
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_run_options_search_options_without_a_search_are_refused_in_the_callers_words():
    """The one rule said in each caller's own words (issue 64): a flag the command line
    gives without `--search`, and a keyword `run()` takes without a search."""
    with pytest.raises(ConfigurationError, match=r"^--trials and --timeout go with --search"):
        from_args(_parser().parse_args(["--trials", "3"]))
    with pytest.raises(TypeError, match=r"^run\(\) got trials=3, an option of search"):
        RunOptions.of(trials=3)


def test_run_options_quiet_mlflow_set_and_backend_are_fields():
    """`-q`, `--mlflow`, `--set` and `--backend` read into the objects: quiet prints
    nothing and shows no progress; the MLflow target becomes a listener when the run
    settles; `--set` values are parsed; the backend rides on `Execution`."""
    from xval import Experiment
    from xval.report.tracking import MLflowListener

    args = _parser().parse_args(["-q", "--mlflow=sqlite:///m.db", "--set", "epochs=3",
                                 "--set", "dropout_rate=0.5", "--backend", "jax",
                                 "--ray-address", "auto"])
    made = from_args(args, out=print, progress=True)
    assert made.output.quiet and not made.output.progress and made.output.out is not print
    assert made.output.mlflow == "sqlite:///m.db"
    assert made.overrides == {"epochs": 3, "dropout_rate": 0.5}
    assert made.executor == Execution("ray", ray_address="auto", backend="jax")
    experiment = Experiment(description="d", dataset="tiny", number=1)
    experiment[1] = {"architecture": "mlp"}
    _, settled = made.settled(experiment)
    [listener] = settled.output.listeners
    assert isinstance(listener, MLflowListener) and listener.uri == "sqlite:///m.db"
    assert settled.output.mlflow is None and settled.settled(experiment)[1] == settled
    assert RunOptions(executor="inline").for_refit() == RunOptions(executor="inline")


def test_run_options_execution_is_the_one_executor_options_type():
    """`Execution` is what a user gives and what `Executor.create` gets (issue 67); the
    earlier name `ExecutorOptions` is retired (issue 73, CHANGELOG.md)."""
    import xval
    import xval.executors
    from xval.executors.base import Execution as ExecutorsExecution

    assert xval.Execution is Execution is ExecutorsExecution
    assert not hasattr(xval.executors, "ExecutorOptions")


@pytest.mark.parametrize("overrides", ["epochs=2", ["epochs=2"], 3])
def test_run_options_overrides_must_be_a_mapping(overrides):
    """`run(overrides="epochs=2")` names the argument, what it takes and the fix (it was a
    bare ValueError from dict(), issue 74); a ParameterError, so a ValueError as before."""
    from xval.core.errors import ParameterError

    with pytest.raises(ParameterError, match=r"^overrides=.*: expected a dict of parameter "
                                             r"names to values, got (str|list|int); pass e\.g\. "
                                             r"overrides=\{'epochs': 2\}"):
        RunOptions.of(overrides=overrides)
    assert RunOptions.of(overrides={"epochs": 2}).overrides == {"epochs": 2}
