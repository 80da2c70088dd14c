"""The command lines' help: one meaning and one spelling per flag across every command,
`-q`/`-v` on every command, each default the help states equal to the one the command uses,
and `init --help` grouped and short."""

import argparse
import re

import pytest

from tests.conftest import ROOT

# -- every command's parser ------------------------------------------------------------------


def _commands():
    """`{command: parser}` of every command line of the project (each sub-command apart)."""
    from xval.cli.augment import parser as augment_parser
    from xval.cli.main import build_parser
    from xval.cli.preprocess import parser as preprocess_parser
    from xval.running.command import experiment_parser
    from xval.running.declaration import ExperimentDeclaration

    def sub(parser, prefix):
        found = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {f"{prefix} {name}": p for name, p in found.choices.items()}

    declaration = ExperimentDeclaration(description="d", dataset="tiny", number=1)
    return {**sub(build_parser(), "python -m xval"),
            **sub(preprocess_parser(), "python -m preprocessing"),
            "python -m augmentation": augment_parser(),
            "python experiments/SCRIPT.py": experiment_parser(declaration)}


COMMANDS = _commands()


def _options(parser):
    """The options `--help` shows (hidden spellings left out)."""
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction | argparse._VersionAction)]


def _help(parser, action):
    """The action's help as `--help` prints it (`%(default)s` filled in)."""
    formatter = parser._get_formatter()
    return " ".join(formatter._expand_help(action).split()) \
        if formatter._get_help_string(action) else ""


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_quiet_and_verbose(command):
    flags = COMMANDS[command]._option_string_actions
    assert {"-q", "--quiet", "-v", "--verbose"} <= set(flags), command


def test_one_meaning_per_flag():
    """A flag is a switch on every command that has it, or takes a value on every one; where
    it has choices, the same choices (`--format`: what the command writes, a table or a
    model, is the one flag whose values differ by command)."""
    kinds: dict[str, set] = {}
    for parser in COMMANDS.values():
        for action in _options(parser):
            switch = action.nargs == 0
            choices = None if action.option_strings[-1] == "--format" or not action.choices \
                else tuple(sorted(map(str, action.choices)))
            if action.option_strings[-1] == "--task-type":  # the registered tasks, bound late
                choices = None
            for flag in action.option_strings:
                kinds.setdefault(flag, set()).add((switch, choices))
    assert {flag: k for flag, k in kinds.items() if len(k) > 1} == {}


@pytest.mark.parametrize("command,flag,instead", [
    ("python -m xval init", "--source", "--corpus NAME"),
    ("python -m xval init", "--encoder", "--encoders NAMES"),
    ("python -m xval evaluate", "--manifest", "--source manifest (SOURCE a CSV manifest)"),
    ("python -m preprocessing folders", "--encoder", "--encoders NAME")])
def test_other_spellings_are_refused_naming_the_flag(command, flag, instead):
    """One spelling per flag: `init --source` (now `--corpus`: `--source` is how `evaluate`
    reads its SOURCE), `--encoder` (`--encoders` on every command), `evaluate --manifest` (a
    CSV file in `init`) are refused in one line naming what to give, before anything runs;
    `--help` does not show them."""
    from xval.core.errors import ConfigurationError

    parser = COMMANDS[command]
    with pytest.raises(ConfigurationError) as refused:
        parser.parse_args(["somewhere", "x", flag, "kaldi"])
    assert str(refused.value) == f"{flag} kaldi: {parser.prog} takes {instead}."
    assert not re.search(rf"{flag}(?![\w-])", parser.format_help())


def test_the_encoders_of_a_store_are_one():
    from tests.conftest import run_here
    from xval.cli.preprocess import main

    proc = run_here(main, "folders", "audio", "--out", "x", "--encoders", "aisfx,birdnet")
    assert proc.returncode == 2
    assert "a store holds one encoder's embeddings; give one name" in proc.stderr


# -- the defaults the help states ------------------------------------------------------------

STATED = re.compile(r"(?:^|\()default:? ([^;)]*)")
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _stated_elsewhere():
    """`{(command, flag): value}`: options that default to `None` on the command line (the
    value is settled later: from config.ini, a module's constant, a source's declaration)
    and whose help states the number used."""
    from preprocessing.corpora.kaldi import COMMAND_TIMEOUT
    from preprocessing.duplicates.fingerprints import THRESHOLD
    from xval.cli.init_data import MAX_FOLDS
    from xval.config.schema import SCHEMA

    return {("python -m xval init", "--folds"): MAX_FOLDS,
            ("python -m xval init", "--command-timeout"): COMMAND_TIMEOUT,
            ("python -m preprocessing kaldi", "--command-timeout"): COMMAND_TIMEOUT,
            ("python -m preprocessing check", "--threshold"): THRESHOLD,
            ("python -m xval compare", "--rope"): SCHEMA["report"]["rope"].default,
            ("python -m xval compare", "--alpha"): SCHEMA["report"]["alpha"].default}


def help_default_problems(commands):
    """What the help of `commands` says of defaults that is not what they use."""
    elsewhere, problems = _stated_elsewhere(), []
    from xval.core.arguments import shown_default

    for command, parser in commands.items():
        for action in _options(parser):
            text, flag = _help(parser, action), action.option_strings[-1]
            stated = STATED.findall(text)
            if shown_default(action):
                value = str(action.default)
                if not any(s == value or s.startswith(value + ",") or
                           s.startswith(value + " ") for s in stated):
                    problems.append(f"{command} {flag}: default {value!r}, help says "
                                    f"{stated or 'none'}")
                continue
            if action.nargs == 0:  # a switch: off unless given
                continue
            numbers = [float(n) for s in stated for n in NUMBER.findall(s)]
            if numbers and (command, flag) not in elsewhere:
                problems.append(f"{command} {flag}: help states {numbers}, the parser's "
                                "default is None: name where the value comes from")
            elif numbers and elsewhere[(command, flag)] not in numbers:
                problems.append(f"{command} {flag}: help states {numbers}, the value used is "
                                f"{elsewhere[(command, flag)]}")
    return problems


def test_help_states_the_defaults_the_commands_use():
    assert help_default_problems(COMMANDS) == []


def test_a_help_that_states_another_default_is_caught():
    from xval.core.arguments import ArgumentParser

    parser = ArgumentParser(prog="tool")
    parser.add_argument("--seconds", type=float, default=10.0, help="length (default: 5)")
    parser.add_argument("--folds", type=int, help="folds (default: 4)")
    parser.add_argument("--seed", type=int, default=0)
    assert help_default_problems({"tool": parser}) == [
        "tool --seconds: default '10.0', help says ['5']",
        "tool --folds: help states [4.0], the parser's default is None: name where the "
        "value comes from"]
    assert "--seed SEED default: 0" in " ".join(parser.format_help().split())  # by the parser


# -- init --help and xval --help -------------------------------------------------------------


def test_init_help_is_grouped_and_short():
    import xval.cli.init as init

    parser = COMMANDS["python -m xval init"]
    text = parser.format_help()
    assert init.__doc__.strip().splitlines()[0] not in text  # a description of its own
    groups = {g.title: {a.option_strings[0] for a in g._group_actions if a.option_strings}
              for g in parser._action_groups}
    assert {"--corpus", "--label-file", "--item-field", "--audio-column"} <= \
        groups["a corpus instead of a folder of audio"]
    assert {"--annotations", "--items", "--annotation-units", "--onset-column"} <= \
        groups["events in recordings: a detection experiment"]
    assert {"--pattern", "--manifest", "--item-per-file"} <= \
        groups["labels and items of a folder of audio"]
    assert {"--name", "--encoders", "--dry-run"} <= groups["the experiment"]
    longest = max(len(_help(parser, a)) for a in _options(parser))
    assert longest <= 220, longest
    assert text.startswith("usage: python -m xval init AUDIO_DIR [options]\n")


def test_xval_help_says_ensembles_weigh_equally_by_default():
    from xval.cli.main import build_parser
    from xval.core.records.ensemble import DEFAULT_WEIGHTING

    text = " ".join(build_parser(lazy=True).format_help().split())
    line = text[text.index("ensemble fuse"):text.index("export ")]
    assert DEFAULT_WEIGHTING == "equal" and "equal weights unless --weights validation" in line
    assert "chosen on validation" not in line


def test_docs_spell_each_renamed_flag_once():
    """The pages name the flags as the commands spell them (`tests/test_docs_names.py`
    checks each exists; the refused spellings exist too, hidden, so they are read here)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    old = re.compile(r"--encoder(?![\w-])|init[^`\n]*--source|evaluate[^`\n]*--manifest\b")
    found = [f"{p.relative_to(ROOT)}:{n}" for p in pages
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if old.search(line)]
    assert found == []

