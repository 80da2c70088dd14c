"""Experiment scripts as the command lines meet them: load one's declaration, write one."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast

from xval import tasks
from xval.config.recipes import ENCODER_HEADS, REFIT_HEAD
from xval.core.errors import ConfigurationError, XvalError
from xval.running.declaration import ExperimentDeclaration

if TYPE_CHECKING:
    from xval.running.experiment import Experiment


def load_experiment(path: str | Path) -> Experiment:
    """The `experiment` an experiment script declares (its `main()` does not run: the script
    is imported, not run as `__main__`).

    Raises:
        ConfigurationError: when the file is missing or declares no `experiment`.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such experiment script; give the path of one "
                                 "(e.g. experiments/exp1.py).")
    name = "_xval_script_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"{path} is not a Python file; give an experiment script "
                                 "(a .py file).")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except XvalError:
        raise  # the declaration's own check (a bad setting): its message as it is
    except SyntaxError as e:
        raise ConfigurationError(f"{path}, line {e.lineno}: not valid Python ({e.msg}); fix "
                                 "the script.") from None
    except (Exception, SystemExit) as e:  # noqa: BLE001  (the user's script, run to read it)
        raise ConfigurationError(
            f"{path} failed while it was read ({type(e).__name__}: {e}); an experiment "
            "script declares `experiment` and runs only under `if __name__ == "
            "\"__main__\":`.") from e
    experiment = getattr(module, "experiment", None)
    # `xval.Experiment` is a declaration with its run: checked against the declaration, so
    # that `python -m xval config` imports the engine only through the script itself.
    if not isinstance(experiment, ExperimentDeclaration):
        raise ConfigurationError(f"{path} defines no `experiment = Experiment(...)`; an "
                                 "experiment script declares it at module level (see "
                                 "experiments/exp1.py).")
    return cast("Experiment", experiment)


def script_path(project: Path, name: str) -> Path:
    """The experiment script `init` writes for the data `name`: `experiments/<name>.py`, or
    `experiments/<name>_experiment.py` when `<name>` is a module Python finds (the
    standard library, an installed package): a script's folder comes first on `sys.path`
    when it runs, so `experiments/xval.py` would be imported for `from xval import
    Experiment`."""
    found = name in sys.stdlib_module_names or getattr(
        importlib.util.find_spec(name), "origin", None) is not None  # a namespace: no module
    return project / "experiments" / (f"{name}_experiment.py" if found else f"{name}.py")


SCRIPT_MARK = "Written by `python -m xval init`"
"""The words that mark a script `init` wrote (and may replace with --overwrite)."""

SCRIPT = '''"""Experiment {number}: {question}

{summary}

    python {script}                # every instance
    python {script} 2 2            # instance 2 only
    python {script} --dry-run      # the plan and the data checks, nothing trained
    python -m xval report {results}

{about}
"""

from xval import {imports}

experiment = Experiment(
    description={description},
    dataset={dataset},
    number={number},
    num_folds={num_folds},
    task_type={task_type},
{parameters})

{instances}
if __name__ == "__main__":
    experiment.main()
'''
"""The experiment script `init` writes (a keras-io style example: docstring, settings,
instances, one call)."""

CNN_ABOUT = ("Instance 1 uses the package defaults (`python -m xval config {script}` shows "
             "them); add instances below to compare architectures or parameters.")
CNN_INSTANCES = """experiment[1] = {"architecture": "audio_cnn", "reshaping_type": "conv",
                 "comment_1": "audio CNN", "comment_2": "package defaults"}
experiment[2] = {"architecture": "mlp", "reshaping_type": "none",
                 "comment_1": "MLP", "comment_2": "baseline: no convolutions"}
"""
ENCODER_ABOUT = ("Instance 1 reads the embeddings of a pretrained encoder (its own store, on "
                 "the same items, so the folds are the same; a row holds every block of its "
                 "clip) with a light head, retrained on training + validation items for the "
                 "epochs the validation items chose (refit_with_val): a baseline in "
                 "minutes (strong on sounds like those the encoder learned; on speech a CNN "
                 "trained on the data may beat it). {models} Instance 2 is a CNN trained "
                 "from scratch "
                 "on the log-mel store with the package defaults (`python -m xval config "
                 "{script}` shows them). Instance 3 trains nothing: it averages the clip "
                 "scores of 1 and 2 with equal weights (chosen on nothing: weights chosen on "
                 "the validation clips lean towards the member whose epoch choice made its "
                 "score there the most optimistic). Add instances below to compare "
                 "heads, architectures or parameters.")
ENCODERS_ABOUT = ("Instances 1 to {n} read the embeddings of {names}, each from its own store "
                  "(the same items, so the same folds; a row holds every block of its clip), "
                  "with the same light head, retrained on training + validation items for "
                  "the epochs the validation items chose (refit_with_val). Instance "
                  "{stacked} reads their embeddings side by side (each block of the first "
                  "encoder beside the others' nearest in time), instance {cnn} is a CNN "
                  "trained from scratch on the log-mel store with the package defaults, and "
                  "instance {fused} trains nothing: it averages the clip scores of 1 to {n} "
                  "with equal weights (late fusion). The report's encoder table and the "
                  "workbook's Encoders sheet compare them over the same folds, per class too, "
                  "against the best (the corrected resampled t-test, the Bayesian correlated "
                  "t-test). Licences of the weights: {licences}; a model trained on an "
                  "encoder's embeddings is bound by its licence. Add instances below to "
                  "compare heads, architectures or parameters.")
RANK_ABOUT = ("rank_split = {share}: in every fold, {percent} of the validation items choose no "
              "epoch and only score, and the instances (the ensemble too) are selected on "
              "them: a score the epoch was not chosen on (early stopping keeps the epoch "
              "best on the other items, so a model's score there is optimistic).")
INIT_RANK_SPLIT = 0.5
"""The `rank_split` of `init`'s script when every fold has two validation items or more
(`rank_split_line`): the instances and the ensemble are selected on items that chose no
epoch (docs/results.md, "The selected row against its best member")."""


def rank_split_line(share: float) -> str:
    """The `parameters=` line of `init`'s script for `rank_split = share` (`""` for 0)."""
    if not share:
        return ""
    return (f'    parameters={{"rank_split": {share}}},  # validation items that choose no '
            "epoch select\n")


def store_tag(encoder: str) -> str:
    """An encoder as a part of a store's name and a comment: a built-in encoder's name, or
    `hf_` and the last part of a transformers model's folder or hub id (`hf_whisper_base`)."""
    if encoder in ENCODER_HEADS:
        return encoder
    last = re.sub(r"[^A-Za-z0-9_]+", "_", encoder.rstrip("/").split("/")[-1]).strip("_")
    return f"hf_{last.lower() or 'model'}"


def _instance(k: int, spec: Mapping[str, object]) -> str:
    """`experiment[k] = {...}`, wrapped at 88 characters."""
    pairs = [f"{json.dumps(key)}: {json.dumps(v) if isinstance(v, str) else repr(v)}"
             for key, v in spec.items()]
    lines, line = [], f"experiment[{k}] = {{"
    indent = " " * len(line)
    for i, pair in enumerate(pairs):
        text = pair + ("," if i < len(pairs) - 1 else "}")
        if len(line) + len(text) + 1 > 88:
            lines.append(line.rstrip())
            line = indent
        line += text + " "
    return "\n".join([*lines, line.rstrip()])


CNN_INSTANCE = {"architecture": "audio_cnn", "reshaping_type": "conv",
                "comment_1": "audio CNN", "comment_2": "from scratch, package defaults"}
"""The CNN trained from scratch beside the encoders (on the log-mel store)."""


def encoder_head(encoder: str | None, task_type: str) -> dict[str, object]:
    """`init`'s head for an encoder's store: `ENCODER_HEADS[encoder]`, else (a transformers
    model, or `None`: the encoders' stacked store) `REFIT_HEAD` with what the task takes on
    top (`Task.encoder_head`: tagging's L2 weight)."""
    head = ENCODER_HEADS.get(encoder or "", REFIT_HEAD)
    return {**head, **tasks.get(task_type).encoder_head} if head is REFIT_HEAD else head


def encoder_instances(stores: list[tuple[str, str]], stacked: str | None, task_type: str
                      ) -> str:
    """The instances of a script whose first instances read encoder stores.

    Args:
        stores: `(store name, encoder)` of each encoder (a built-in encoder or a
            transformers model: its head, `encoder_head`).
        stacked: the store of their embeddings side by side (two encoders or more), or
            `None`.
        task_type: the experiment's task (its `encoder_head` joins `REFIT_HEAD`).

    Returns:
        The `experiment[k] = ...` lines: one instance per encoder, with two or more one on
        the stacked store, the audio CNN, and the ensemble (one encoder: it and the CNN;
        several: the encoders' instances).
    """
    heads = [{**encoder_head(encoder, task_type), "dataset": dataset,
              "comment_1": f"{store_tag(encoder)} + head", "comment_2": "pretrained embeddings"}
             for dataset, encoder in stores]
    if stacked is not None:
        heads.append({**encoder_head(None, task_type), "dataset": stacked,
                      "comment_1": "+".join(store_tag(e) for _, e in stores) + " + head",
                      "comment_2": "the encoders' embeddings side by side"})
    lines = [_instance(k, spec) for k, spec in enumerate(heads, start=1)]
    cnn = len(heads) + 1
    lines.append(_instance(cnn, CNN_INSTANCE))
    if len(stores) == 1:
        fused, what = "1, 2", "1 and 2 fused: the mean of their clip scores, equal weights"
    else:
        fused = ", ".join(str(k) for k in range(1, len(stores) + 1))
        what = "the encoders' instances fused: the mean of their clip scores, equal weights"
    lines.append(f"experiment[{cnn + 1}] = Ensemble({fused})  # {what}")
    return "\n".join(lines) + "\n"
