"""The parameters of embedding classifiers (`embedding_classifier`, `embedding_models`,
`embedding_layer`, `embedding_c`): their names, checks and the metrics they record. The
classifiers themselves are fit in `xval.training.embeddings`."""

from pathlib import Path

from xval import tasks
from xval.core.errors import ParameterError
from xval.core.parameters import InstanceParams, TrainingParams
from xval.tasks.base import Task

CLASSIFIERS = ("none", "svm", "logreg")


def task() -> Task:
    """The task whose metrics, clip pooling and predictions the classifier's outputs take:
    they are class scores of one label per row, as the default task's (`tasks.DEFAULT`)."""
    return tasks.get(tasks.DEFAULT)


C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


SELF = "self"


PREFIX = "embedding_"


def embedding_metric_names() -> list[str]:
    """The metrics an embedding classifier records beside the network's that can select an
    instance (`[report] selection_metric`), e.g. `embedding_accuracy`. `embedding_loss` is
    recorded too but left out: it is the cross-entropy of the classifier's scores taken as
    logits (an SVM's decision values), not comparable between classifiers."""
    return [f"{PREFIX}{name}" for name in task().metric_names if name != "loss"]


def check_params(params: InstanceParams, task: Task, where: str) -> InstanceParams:
    """Checks the embedding-classifier parameters of an instance (before any training).

    Args:
        params: resolved instance parameters.
        task: the experiment's `xval.tasks.Task`.
        where: what to name in errors (e.g. `"instance 3"`).

    Returns:
        `params`, with `embedding_models` as a list of `"self"` and absolute path templates
        (or `None`).

    Raises:
        ParameterError: a bad value, a missing model or a task without class labels.
    """
    models = params.embedding_models
    if not params.embeds:
        if models is not None:
            raise ParameterError(
                f"{where}: embedding_models={models!r} needs embedding_classifier 'svm' or "
                "'logreg' (it is 'none')."
            )
        return params
    _check_classifier(params, task, where)
    if models is None:
        return params
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, (list, tuple)) or not models or \
            not all(isinstance(m, str) for m in models):
        raise ParameterError(
            f"{where}: embedding_models={params.embedding_models!r}: expected None (the "
            "fold's own model), a path or a list of paths of .keras files and 'self'."
        )
    return params.replace(embedding_models=[_model_template(m, where) for m in models])


def _check_classifier(params: TrainingParams, task: Task, where: str) -> None:
    if not task.labelled_rows:
        fitting = [n for n in tasks.names() if tasks.get(n).labelled_rows]
        raise ParameterError(
            f"{where}: embedding_classifier={params.embedding_classifier!r} needs a class "
            f"label per row; task_type {task.name!r} has none. Use task_type "
            f"{' or '.join(repr(n) for n in fitting)} (a representation store keeps its "
            "labels)."
        )
    # embedding_c (> 0 or None) and the type of embedding_layer are the schema's checks.
    if not params.embedding_layer:
        raise ParameterError(f"{where}: embedding_layer='': expected a layer name or "
                             "'auto'.")


def _model_template(value: str, where: str) -> str:
    """`"self"`, or an `embedding_models` entry as an absolute path template whose fold-0
    model exists."""
    if value == SELF:
        return SELF
    path = Path(value).expanduser()
    absolute = path if path.is_absolute() else Path.cwd() / path
    if absolute.suffix != ".keras":
        raise ParameterError(f"{where}: embedding_models entry {value!r}: expected a "
                             ".keras file (or 'self').")
    try:
        probe = Path(str(absolute).format(fold=0))
    except (KeyError, IndexError, ValueError) as e:
        raise ParameterError(
            f"{where}: embedding_models entry {value!r}: the only placeholder allowed is "
            "{fold}."
        ) from e
    if not probe.is_file():
        said = "" if path.is_absolute() else \
            " (relative paths are resolved against the current directory)"
        raise ParameterError(f"{where}: embedding_models entry {value!r}: {probe} does "
                             f"not exist{said}.")
    return str(absolute)


def sources(params: TrainingParams, fold: int) -> list[str | Path]:
    """The embedding sources of one fold: `"self"` or a `Path` per entry."""
    models = params.embedding_models or [SELF]
    if isinstance(models, str):
        models = [models]
    return [SELF if m == SELF else Path(m.format(fold=fold)) for m in models]
