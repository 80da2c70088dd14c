"""The task registry (`xval.tasks`): look-up, errors, a task added by a test, and the
results and report reading the recorded task."""

import json

import numpy as np
import pytest

from tests.conftest import tiny_store
from tests.manifests import manifest_text, params_text, record_text
from xval import Experiment, ExperimentResults, Output, tasks
from xval.config import schema
from xval.config.selection import metric_direction
from xval.core.errors import ConfigurationError, DatasetError, ParameterError
from xval.core.parameters import TrainingParams
from xval.tasks import NO_CONTEXT
from xval.tasks import registry as task_registry
from xval.tasks.regression.task import LinearHead, NumberTargets, Regression, RegressionScoring

BASE = ['architecture="mlp"', 'reshaping_type="none"', 'comment_1="c1"', 'comment_2="c2"',
        "hidden_units=8"]


class ToyHead(LinearHead):
    """The head of `ToyMAE`: trained on the mean absolute error."""

    def loss(self, params, train_targets=None):
        return "mae"

    def metrics(self, params):
        import keras

        return [keras.metrics.MeanAbsoluteError(name="mae")]


class ToyScoring(RegressionScoring):
    """The scoring of `ToyMAE`: the MAE, and a score of its own."""

    def evaluate(self, y_true, outputs, num_outputs, context=NO_CONTEXT):
        error = np.abs(np.asarray(y_true, float).ravel() - np.asarray(outputs).ravel())
        return {"loss": float(error.mean()), "mae": float(error.mean()),
                "toy_score": float(1 / (1 + error.mean()))}


class ToyMAE(Regression):
    """A task a newcomer adds: regression trained on the mean absolute error, selected on
    the validation MAE, and with one metric of its own that is better when higher."""

    name = "toy_mae"
    parts = (NumberTargets, ToyHead, ToyScoring)
    head_name = "toy_value"
    history_metrics = ("loss", "mae")
    metric_names = ("loss", "mae", "toy_score")
    maximize = ("toy_score",)
    selection_metric = "mae"
    headline = (("segment", "mae", "MAE"), ("segment", "toy_score", "toy score"))


@pytest.fixture
def toy(monkeypatch):
    """`ToyMAE` registered for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(task_registry, "TASKS", task_registry.TASKS.copy())
    tasks.register(ToyMAE)
    return tasks.get("toy_mae")


def test_registry_holds_the_builtin_tasks():
    assert set(tasks.names()) >= {"classification", "regression", "detection"}
    assert tasks.get("detection").selection_metric == "event_f1"
    assert tasks.get("classification").selection_metric == "accuracy"
    assert tasks.get("regression").selection_metric == "rmse"
    assert tasks.get("classification").head_name == "logits"
    assert tasks.get("regression").head_name == "prediction"
    assert tasks.DEFAULT in tasks.names()
    assert schema.task_types() == tuple(tasks.names())


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ConfigurationError,
                       match=r"task_type='clustering': expected one of classification, "
                             r"detection, regression, representation, tagging \(the tasks "
                             r"registered in xval.tasks"):
        tasks.get("clustering")
    with pytest.raises(ConfigurationError, match="task_type='clustering': expected one of"):
        Experiment(description="d", dataset="x", number=1, task_type="clustering")


def test_unknown_task_store_is_refused_before_writing(tmp_path):
    with pytest.raises(DatasetError, match="task_type='clustering': expected one of"):
        tiny_store(tmp_path, task_type="clustering")
    assert not (tmp_path / "tiny").exists()


def test_register_rejects_duplicates_and_non_tasks(monkeypatch):
    monkeypatch.setattr(task_registry, "TASKS", task_registry.TASKS.copy())
    with pytest.raises(ValueError, match="'regression' is already registered"):
        tasks.register(Regression)
    with pytest.raises(TypeError, match="register takes a Task subclass"):
        tasks.register(object)

    class Nameless(Regression):
        name = None

    with pytest.raises(ValueError, match="needs a `name`"):
        tasks.register(Nameless)


def test_toy_task_shows_up_in_schema_and_validation(toy, tmp_path):
    assert "toy_mae" in schema.task_types()
    assert "toy_score" in schema.selection_metrics()
    assert schema.check("report", "selection_metric", "toy_score") == "toy_score"
    assert metric_direction("val_toy_score") == "max"
    assert Experiment(description="d", dataset="x", number=1, task_type="toy_mae").task_type \
        == "toy_mae"
    from xval.cli.preprocess import parser

    args = parser().parse_args(["folders", str(tmp_path), "--out", str(tmp_path / "s"),
                                "--task-type", "toy_mae"])
    assert args.task_type == "toy_mae"


def test_schema_choices_follow_the_registry(monkeypatch):
    with pytest.raises(ConfigurationError, match="selection_metric = 'toy_score'.*expected one "
                                                 "of auto, loss, accuracy"):
        schema.check("report", "selection_metric", "toy_score")
    assert metric_direction("val_toy_score") == "min"


def test_task_params_checked_against_the_task(toy, tmp_path):
    from tests.conftest import resolve, write_config
    from xval.config.loader import load_config

    config = load_config(write_config(tmp_path))
    spec = BASE + ['save_model_metric="val_mae"']
    assert resolve(1, spec, training_defaults=config.training,
                   task_type="toy_mae")["save_model_metric"] == "val_mae"
    with pytest.raises(ParameterError, match="save_model_metric='val_accuracy' is not recorded "
                                             "for a toy_mae task; expected one of val_loss, "
                                             "val_mae, loss, mae"):
        resolve(1, BASE + ['save_model_metric="val_accuracy"'],
                training_defaults=config.training, task_type="toy_mae")
    with pytest.raises(ParameterError, match="class_weights=True needs "
                                             "task_type='classification'"):
        resolve(1, spec + ["class_weights=True"], training_defaults=config.training,
                task_type="toy_mae")


def test_toy_task_trains_records_and_is_reported(toy, tmp_path):
    """One module's worth of task runs end to end: its store, head, loss, metrics,
    recorded task_type and the report's selection metric."""
    from tests.conftest import write_config
    from xval.config.loader import load_config
    from xval.report.tables import report_note
    from xval.report.workbook import summary_table

    config = load_config(write_config(tmp_path))
    store = tiny_store(config.data_dir, "toy", task_type="toy_mae", n_items=4,
                       clips_per_class=2)
    assert store.task_type == "toy_mae" and store.targets.dtype == np.float32
    exp = Experiment(description="toy", dataset="toy", number=1, num_folds=2,
                     task_type="toy_mae", config=str(config.path),
                     parameters={"epochs": 2, "patience": 2, "batch_size": 16,
                                 "save_model_metric": "val_mae"})
    exp[1] = BASE
    assert exp.run(config=config, output=Output(out=lambda *a: None)).exit_code == 0
    inst = config.results_dir / "toy" / "experiment_1" / "instance_1"
    assert json.loads((inst / "params.json").read_text())["task_type"] == "toy_mae"
    fold = json.loads((inst / "fold_0.json").read_text())
    assert fold["task_type"] == "toy_mae"
    assert set(fold["metrics"]["test"]) == {"loss", "mae", "toy_score"}
    assert "val_mae" in fold["history"] and "val_rmse" not in fold["history"]
    from xval.training.loading import load

    assert load(inst / "fold_0.keras").layers[-1].layers[-1].name == "toy_value"
    results = ExperimentResults(inst.parent)
    assert results.task_type == "toy_mae"
    assert report_note(results).startswith("Selected: instance 1, best validation mae")
    columns, *_ = summary_table(results)
    assert {c["metric"] for c in columns if "metric" in c} == {"mae", "toy_score"}


def _fold(i, metrics):
    return {"instance": 1, "fold": i, "status": "ok",
            "items": {"train": ["a"], "val": ["c"], "test": ["e"]},
            "metrics": {s: dict(metrics) for s in ("train", "val", "test")}}


def test_report_reads_task_type_from_params_json(tmp_path):
    """Fold files with both accuracy and rmse: the recorded task decides, not the names."""
    from xval.report.tables import report_note

    exp_dir = tmp_path / "experiment_1"
    folder = exp_dir / "instance_1"
    folder.mkdir(parents=True)
    for i, value in enumerate((0.4, 0.6)):
        (folder / f"fold_{i}.json").write_text(
            record_text(_fold(i, {"accuracy": 0.9, "rmse": value})))
    (exp_dir / "folds.json").write_text(
        manifest_text([{"train": ["a"], "val": ["c"], "test": ["e"]}] * 2))
    (folder / "params.json").write_text(params_text(1, {}, task_type="regression"))
    results = ExperimentResults(exp_dir)
    assert results[1].task_type == results.task_type == "regression"
    assert report_note(results).startswith("Selected: instance 1, best validation rmse")
    # Results written before the task was recorded: the task of the selection metric.
    (folder / "params.json").unlink()
    assert ExperimentResults(exp_dir).task_type == "classification"


def test_classification_loss_follows_label_smoothing_and_mixup(rng):
    import keras

    task = tasks.get("classification")
    y = np.array([0, 2, 1])
    plain = TrainingParams(label_smoothing=0.0, mixup_alpha=0.0)
    assert isinstance(task.head.loss(plain), keras.losses.SparseCategoricalCrossentropy)
    assert task.targets.for_keras(y, plain, 3) is y
    assert [m.name for m in task.head.metrics(plain)] == ["accuracy"]
    for params in (TrainingParams(label_smoothing=0.1, mixup_alpha=0.0),
                   TrainingParams(label_smoothing=0.0, mixup_alpha=0.2)):
        loss = task.head.loss(params)
        assert isinstance(loss, keras.losses.CategoricalCrossentropy)
        one_hot = task.targets.for_keras(y, params, 3)
        np.testing.assert_array_equal(one_hot, np.eye(3, dtype=np.float32)[y])
        assert isinstance(task.head.metrics(params)[0], keras.metrics.CategoricalAccuracy)
    logits = rng.normal(size=(3, 3)).astype(np.float32)
    smoothed = np.eye(3)[y] * 0.9 + 0.1 / 3
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = float(-(smoothed * log_probs).sum(axis=1).mean())
    got = float(keras.ops.convert_to_numpy(
        task.head.loss(TrainingParams(label_smoothing=0.1))(
            task.targets.for_keras(y, TrainingParams(mixup_alpha=0.2), 3), logits)))
    assert got == pytest.approx(expected, rel=1e-5)


def test_metric_direction_is_each_tasks_own(monkeypatch):
    """A task registered later (an experiment's own) that records `accuracy` as better when
    lower changes no built-in task's direction; asked with it, its own; a task not
    registered in this process leaves the others'."""

    class LowAccuracy(Regression):
        name = "low_accuracy"
        metric_names = ("loss", "accuracy")
        maximize = ()

    monkeypatch.setattr(task_registry, "TASKS", task_registry.TASKS.copy())
    tasks.register(LowAccuracy)
    assert metric_direction("val_accuracy") == "max"
    assert metric_direction("val_accuracy", task="classification") == "max"
    assert metric_direction("val_accuracy", task="low_accuracy") == "min"
    assert metric_direction("val_accuracy", task=tasks.get("low_accuracy")) == "min"
    assert metric_direction("val_accuracy", task="not_registered_here") == "max"
    assert metric_direction("val_accuracy", "min", task="classification") == "min"
