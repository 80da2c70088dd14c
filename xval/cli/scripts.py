"""Experiment scripts as the command lines meet them: load one's declaration, write one."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import math
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
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


def add_script_argument(p: argparse.ArgumentParser) -> None:
    """`--script SCRIPT` (repeatable): experiment scripts read first, for what they define
    (a task of their own, its sheets), as `python -m xval config SCRIPT` reads one."""
    p.add_argument("--script", action="append", default=[], metavar="SCRIPT",
                   help="an experiment script to read first, for the task it defines "
                        "(results of a task of its own); repeatable")


def read_scripts(scripts: list[str]) -> None:
    """Reads each `--script` (`load_experiment`: its `main()` does not run)."""
    for script in scripts:
        load_experiment(script)


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

SCRIPT = '''"""{docstring}"""

from xval import {imports}

{data}
experiment = Experiment(
{settings}
{parameters})

{instances}
if __name__ == "__main__":
    experiment.main()
'''
"""The experiment script `init` writes (a keras-io style example: docstring, settings,
instances, one call). Its docstring is `DOCSTRING`; every other field is code made by
`literal` or by `init` itself."""

DOCSTRING = """Experiment {number}: {question}

{summary}

    python {script}                # every instance
    python {script} 2 2            # instance 2 only
    python {script} --dry-run      # the plan and the data checks, nothing trained
    python -m xval report {results}

{about}
"""
"""The docstring of `init`'s script: prose made of `init`'s own words and numbers only.
What comes from the data (the audio folder, the classes, the data's name, the encoders)
is never written here but as a literal below it (`literal`), so that a name holding
three double quotes stays a string."""

_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./-]+")
"""A path the docstring may show as it is (the script's, the results folder's)."""


def literal(value: object) -> str:
    """`value` as Python source that reads back equal: a string as `repr` writes it (in
    double quotes where it holds none), numbers, `None`, and lists, tuples and dicts of
    them.

    Args:
        value: a `str`, `bool`, `int`, finite `float`, `None`, or a list, tuple or dict of
            them.

    Returns:
        The literal; every character that is not printable is escaped (a newline, a NUL,
        a lone surrogate, a right-to-left mark), so it is one line of ASCII-safe source.

    Raises:
        TypeError: for any other value (a non-finite float has no literal).
    """
    if isinstance(value, str):
        text = repr(value)
        return f'"{text[1:-1]}"' if text[0] == "'" and '"' not in value else text
    if value is None or isinstance(value, (bool, int)) or (
            isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(literal(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else \
            f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"literal: {value!r} ({type(value).__name__}) has no literal here.")


def wrapped(opening: str, parts: Sequence[str], closing: str, width: int = 88) -> str:
    """`opening` + `parts` separated by commas + `closing`, wrapped at `width` with the
    continuation lines under the first part (a part longer than a line has one of its
    own)."""
    lines, line = [], opening
    indent = " " * len(opening)
    for i, part in enumerate(parts):
        text = part + ("," if i < len(parts) - 1 else closing)
        if line.strip() and line != opening and len(line) + len(text) + 1 > width:
            lines.append(line.rstrip())
            line = indent
        line += text + " "
    if not parts:
        line += closing
    return "\n".join([*lines, line.rstrip()])


def plain_path(path: str, otherwise: str) -> str:
    """`path` where the docstring may show it (`_PLAIN_PATH`), else `otherwise`."""
    return path if _PLAIN_PATH.fullmatch(path) else otherwise


def experiment_script(*, question: str, summary: str, about: str, script: Path,
                      results: str, data: Mapping[str, object],
                      settings: Mapping[str, object], instances: str, parameters: str = "",
                      imports: str = "Experiment", number: int = 1) -> str:
    """The text of an experiment script `init` writes.

    Args:
        question: what the experiment asks (the docstring's first line, after
            `Experiment N:`).
        summary: the docstring's paragraph on the data (`init`'s words and counts),
            wrapped at 88 characters here.
        about: the docstring's paragraph on the instances, wrapped so too.
        script: the script's path from the project folder (`experiments/<name>.py`).
        results: the results folder, as the report command names it.
        data: module-level constants of values taken from the data (`AUDIO`, `CLASSES`),
            written as literals (`literal`).
        settings: the `Experiment(...)` keywords, written as literals.
        instances: the `experiment[k] = ...` lines.
        parameters: the `parameters=` line (`rank_split_line`) and the `preference=` line
            (`preference_line`), or `""`.
        imports: the names imported from `xval`. Defaults to `"Experiment"`.
        number: the experiment's number. Defaults to `1`.

    Returns:
        The text.

    Raises:
        XvalError: when the docstring would not read back as written (a value of the data
            in its prose): nothing is written then.
    """
    def fill(text: str) -> str:
        return textwrap.fill(text, width=88, break_on_hyphens=False, break_long_words=False)

    docstring = DOCSTRING.format(
        number=number, question=question, summary=fill(summary), about=fill(about),
        script=plain_path(script.as_posix(), "SCRIPT"),
        results=plain_path(results, "RESULTS_FOLDER"))
    text = SCRIPT.format(
        docstring=docstring, imports=imports,
        data="".join(_constant(name, value) + "\n" for name, value in data.items()),
        settings="\n".join(f"    {key}={literal(value)}," for key, value in settings.items()),
        parameters=parameters, instances=instances)
    try:
        read = ast.get_docstring(ast.parse(text), clean=False)
    except (SyntaxError, ValueError):
        read = None
    if read != docstring:
        raise XvalError("init's experiment script would not read back as written (a value "
                        "of the data in its docstring); nothing was written. This is a bug "
                        "of init: please report it.")
    return text


def _constant(name: str, value: object) -> str:
    """`NAME = value` (`literal`), a list or a dict wrapped at 88 characters."""
    if isinstance(value, list):
        return wrapped(f"{name} = [", [literal(v) for v in value], "]")
    if isinstance(value, dict):
        return wrapped(f"{name} = {{", [f"{literal(k)}: {literal(v)}"
                                        for k, v in value.items()], "}")
    return f"{name} = {literal(value)}"


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
                 "trained on the data may beat it; `ENCODERS` below names it and the "
                 "licence of its weights, which binds a model trained on its embeddings). "
                 "{models} Instance 2 is a CNN trained "
                 "from scratch "
                 "on the log-mel store with the package defaults (`python -m xval config "
                 "{script}` shows them). Instance 3 trains nothing: it averages the clip "
                 "scores of 1 and 2 with equal weights (chosen on nothing: weights chosen on "
                 "the validation clips lean towards the member whose epoch choice made its "
                 "score there the most optimistic). Add instances below to compare "
                 "heads, architectures or parameters.")
ENCODERS_ABOUT = ("Instances 1 to {n} read the embeddings of the encoders of `ENCODERS` "
                  "below (in that order), each from its own store "
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
                  "t-test). `ENCODERS` gives the licence of each one's weights: a model "
                  "trained on an "
                  "encoder's embeddings is bound by it. Add instances below to "
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


def encoder_preference(stores: int) -> list[int]:
    """The preference of `init`'s script over the instances `encoder_instances` writes:
    the late fusion, the encoders side by side, each encoder, then the CNN from scratch
    (what the report selects by among the rows its ranking items cannot tell apart:
    docs/results.md measured the fusion and the stacked encoders the best rows).

    Args:
        stores: the stores the script reads embeddings from: one encoder's, or two
            encoders' or more and their stacked store (last); `0` for none.

    Returns:
        Instance ids, the most preferred first (`[]` without an encoder store).
    """
    if stores <= 0:
        return []
    encoders = stores - 1 if stores > 1 else 1
    stacked = [encoders + 1] if stores > 1 else []
    cnn = encoders + len(stacked) + 1
    return [cnn + 1, *stacked, *range(1, encoders + 1), cnn]


def preference_line(stores: int) -> str:
    """The `preference=` line of `init`'s script (`encoder_preference`; `""` without an
    encoder store): ids only, written as a literal (`literal`)."""
    order = encoder_preference(stores)
    if not order:
        return ""
    return (f"    preference={literal(order)},  # picks among rows the ranking items "
            "cannot tell apart\n")


def store_tag(encoder: str) -> str:
    """An encoder as a part of a store's name and a comment: a built-in encoder's name, or
    `hf_` and the last part of a transformers model's folder or hub id (`hf_whisper_base`)."""
    if encoder in ENCODER_HEADS:
        return encoder
    last = re.sub(r"[^A-Za-z0-9_]+", "_", encoder.rstrip("/").split("/")[-1]).strip("_")
    return f"hf_{last.lower() or 'model'}"


def _instance(k: int, spec: Mapping[str, object]) -> str:
    """`experiment[k] = {...}`, its values literals (`literal`), wrapped at 88 characters."""
    return wrapped(f"experiment[{k}] = {{",
                   [f"{literal(key)}: {literal(v)}" for key, v in spec.items()], "}")


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
