"""The commands of `python -m xval`, by name, and where each one's code lives.

The table names modules instead of importing them, as pip's command table does
(`pip._internal.commands.commands_dict`): `python -m xval --help` and `--version` import no
command, and `python -m xval report ...` imports only `report`'s module, so the commands
that neither train nor predict never pay for the deep-learning stack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from xval.core.backend import import_paused


class Command(NamedTuple):
    """One command of `python -m xval`.

    Args:
        parser: `"module:function"`, the function `add_parser(sub, parents)` that adds the
            command's parser.
        run: `"module:function"`, the handler `run(args) -> exit code`.
        help: the line `python -m xval --help` shows for it.
        model: whether it loads a model (the backend is chosen before it runs).
    """

    parser: str
    run: str
    help: str
    model: bool = False


def load_reference(reference: str) -> Callable[..., Any]:
    """The function a `"module:function"` reference names (its module imported now, with
    the collector paused: `xval.core.backend.import_paused`).

    Args:
        reference: e.g. `"xval.cli.report:main_report"`.

    Returns:
        The function.
    """
    module, _, name = reference.partition(":")
    return getattr(import_paused(module), name)


CHOOSE_BACKEND = "xval.cli.backend:choose_backend"
"""The function that sets the backend of a command that builds or loads a model."""

_PARSERS = "xval.cli.model_commands"
_HANDLERS = "xval.cli.inference"
COMMANDS: dict[str, Command] = {
    "report": Command("xval.cli.report:add_parser", "xval.cli.report:main_report",
                      "rebuild an experiment's workbook and print its table"),
    "compare": Command("xval.cli.compare:add_parser", "xval.cli.compare:main_compare",
                       "compare the instances of experiments on the same folds (paired "
                       "tests, Holm, Bayesian)"),
    "predict": Command(f"{_PARSERS}:add_predict_parser", f"{_HANDLERS}:main_predict",
                       "class probabilities of audio files from saved models", model=True),
    "detect": Command(f"{_PARSERS}:add_detect_parser", f"{_HANDLERS}:main_detect",
                      "events (onset, offset, label) a detection model finds in audio files",
                      model=True),
    "evaluate": Command(f"{_PARSERS}:add_evaluate_parser", f"{_HANDLERS}:main_evaluate",
                        "score saved models on new labelled audio", model=True),
    "embed": Command(f"{_PARSERS}:add_embed_parser", f"{_HANDLERS}:main_embed",
                     "write the outputs of an inner layer for audio files", model=True),
    "config": Command("xval.cli.config:add_parser", "xval.cli.config:main_config",
                      "print the effective configuration, each value with where it comes "
                      "from"),
    "init": Command("xval.cli.init:add_parser", "xval.cli.init:main_init",
                    "from a folder of audio: config.ini, feature store, experiment script, "
                    "dry run"),
    "ensemble": Command("xval.cli.ensemble:add_parser", "xval.cli.ensemble:main_ensemble",
                        "fuse instances on the same folds into a new instance (equal "
                        "weights unless --weights validation)"),
    "export": Command("xval.cli.export:add_parser", "xval.cli.export:main_export",
                      "a complete instance's fold ensemble (or a .keras model) as ONNX, "
                      "SavedModel or .keras, with its model card"),
}
"""Command name -> `Command`, in the order `--help` lists them."""
