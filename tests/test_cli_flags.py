"""-q/--quiet and -v/--verbose on every command; every `--flag` a message names is one the
command printing it has (issue 74)."""

import argparse
import ast
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_preprocessing_quiet_prints_one_line(tmp_path):
    proc = run("preprocessing", "demo", "--data-dir", str(tmp_path / "data"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("Wrote ") and len(proc.stdout.splitlines()) == 1
    assert proc.stderr == ""  # no progress bar


def test_preprocessing_says_before_the_slow_first_extraction(tmp_path):
    import numpy as np
    import soundfile as sf

    audio = tmp_path / "audio"
    for label in ("a", "b"):
        for item in ("x", "y", "z"):
            (audio / label).mkdir(parents=True, exist_ok=True)
            sf.write(audio / label / f"{item}_0.wav",
                     0.3 * np.sin(np.linspace(0, 200, 8000)).astype("float32"), 8000)
    proc = run("preprocessing", "folders", str(audio), "--out", str(tmp_path / "store"),
               "--item-pattern", r"(?P<item>[a-z])_\d+\.wav$", "--sample-rate", "8000",
               "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Extracting features of 6 files into")
    assert "numba" in proc.stdout.splitlines()[0]


@pytest.mark.parametrize("command", [
    ["preprocessing", "demo"], ["augmentation", "in", "out", "1"],
    ["xval", "report", "somewhere"], ["xval", "predict", "m.keras", "a.wav"]])
def test_quiet_and_verbose_together_are_an_error(command, tmp_path):
    proc = run(*command, "-q", "-v", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: Give -q/--quiet or -v/--verbose, not both."


# -- every --flag a message names exists on the command that prints it (issue 74) ----------

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
LIBRARY = ("xval", "preprocessing", "augmentation", "architectures")
DECLARING = {"add_argument", "add_argument_group", "add_parser", "Option", "option",
             "setting", "Reads"}
"""Calls whose strings declare options (their flags and help), not messages."""
OTHER_PROGRAMS = {"--force-reinstall", "--no-deps", "--porcelain", "--show-toplevel",
                  "--head", "--index-url", "--extra-index-url", "--rate"}
"""Flags of pip, git, ray and sox that messages tell users to pass to those programs."""
READ_ANNOTATIONS = ["preprocessing detection", "xval init", "xval evaluate"]
PRINTED_BY = {
    "xval/cli/init.py": ["xval init"], "xval/cli/init_data.py": ["xval init"],
    "xval/cli/init_detection.py": ["xval init"], "xval/cli/init_outputs.py": ["xval init"],
    "xval/cli/export.py": ["xval export"], "xval/cli/report.py": ["xval report"],
    "xval/cli/compare.py": ["xval compare"], "xval/cli/ensemble.py": ["xval ensemble"],
    "xval/cli/config.py": ["xval config"], "xval/cli/augment.py": ["augmentation"],
    "xval/tasks/detection/annotations.py": READ_ANNOTATIONS,
    "xval/tasks/detection/tables.py": READ_ANNOTATIONS,
    "preprocessing/detection.py": ["preprocessing detection", "xval init"],
    "preprocessing/sources/manifest.py": ["preprocessing manifest", "xval init"],
    "preprocessing/sources/labels.py": ["preprocessing manifest", "xval init"],
    "preprocessing/corpora/lhotse_manifests.py": ["preprocessing lhotse", "xval init"],
    "preprocessing/corpora/kaldi.py": ["preprocessing kaldi", "xval init"],
    "preprocessing/corpora/pipes.py": ["preprocessing kaldi", "xval init"],
    "preprocessing/corpora/hf_datasets.py": ["preprocessing hf", "xval init"],
    "xval/running/options.py": ["experiment"], "xval/running/command.py": ["experiment"],
}
"""The commands that print a module's messages (each must have every flag they name)."""
ONLY_WITH = {("xval/tasks/detection/annotations.py", "--strict"): "preprocessing detection",
             ("xval/cli/init_data.py", "--task-type"): "preprocessing manifest"}
"""A flag a module's message names only when the command that has it asked for it."""


COMMAND = re.compile(r"python -m (xval|preprocessing|augmentation)(?: ([a-z][a-z-]*))?"
                     r"|python \S+\.py")
"""A command a message tells the user to run: the flags after it are that command's."""


def _declared(tree):
    """The ids of the string nodes that are documentation (docstrings, a constant's string
    below it) or parts of option declarations."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(id(node.value))
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in DECLARING:
                skip.update(id(n) for n in ast.walk(node)
                            if isinstance(n, (ast.Constant, ast.JoinedStr)))
    return skip


def _addressed(text, commands):
    """`(flag, command)` of each flag in a string: `command` is the one the string tells the
    user to run before it (`python -m preprocessing check STORE --csv`), else `None`."""
    out = []
    for match in FLAG.finditer(text):
        told = [m for m in COMMAND.finditer(text, 0, match.start())
                if not re.search(r"[`;)]|\. ", text[m.end():match.start()])]  # same phrase
        command = None
        if told:
            package, sub = told[-1].groups()
            command = "experiment" if package is None else \
                f"{package} {sub}" if f"{package} {sub}" in commands else package
        out.append((match.group(), command))
    return out


def message_flags(commands):
    """`{module: {(flag, command), ...}}`: the flags named in the message strings of the
    library (its string constants and the literal parts of its f-strings, less
    documentation and option declarations), each with the command the string names before
    it (`None`: the command printing it)."""
    found = {}
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            skip, texts = _declared(tree), []
            for node in ast.walk(tree):
                if isinstance(node, ast.JoinedStr) and id(node) not in skip:  # its parts as one
                    skip.update(id(v) for v in node.values)
                    texts.append("".join(v.value if isinstance(v, ast.Constant) else "{}"
                                         for v in node.values))
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and id(node) not in skip:
                    texts.append(node.value)
            flags = {pair for text in texts for pair in _addressed(text, commands)}
            if flags:
                found[path.relative_to(ROOT).as_posix()] = flags
    return found


def command_flags():
    """`{command: {flag, ...}}` of every command line of the project, from its parser."""
    from xval.cli.augment import parser as augment_parser
    from xval.cli.main import build_parser
    from xval.cli.preprocess import parser as preprocess_parser
    from xval.running.command import experiment_parser
    from xval.running.declaration import ExperimentDeclaration

    def commands(parser, prefix):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {f"{prefix} {name}": set(p._option_string_actions)
                for name, p in sub.choices.items()}

    declaration = ExperimentDeclaration(description="d", dataset="tiny", number=1)
    return {**commands(build_parser(), "xval"), **commands(preprocess_parser(), "preprocessing"),
            "augmentation": set(augment_parser()._option_string_actions),
            "experiment": set(experiment_parser(declaration)._option_string_actions)}


def test_every_flag_a_message_names_is_a_flag_of_the_project():
    """A message may only name a flag some command has (or another program's, for the
    commands it tells users to run)."""
    commands = command_flags()
    known = set().union(*commands.values()) | OTHER_PROGRAMS
    unknown = {module: sorted(flag for flag, told in pairs
                              if flag not in commands.get(told, known))
               for module, pairs in message_flags(commands).items()}
    assert not {m: flags for m, flags in unknown.items() if flags}, unknown


def test_every_flag_a_message_names_is_on_the_command_that_prints_it():
    """Issue 74: `init --annotations` said "pass --annotation-units seconds", which init did
    not have. Each module whose messages a known set of commands prints: every flag it names
    is on each of them."""
    commands = command_flags()
    found = message_flags(commands)
    assert all((ROOT / module).is_file() for module in PRINTED_BY)
    missing = []
    for module, printers in PRINTED_BY.items():
        for flag, told in sorted(found.get(module, ()), key=str):
            for command in [told] if told else printers:
                if flag not in commands[command] and ONLY_WITH.get((module, flag)) is None:
                    missing.append(f"{module}: {flag} is not an option of {command}")
    assert not missing, "\n".join(missing)
