"""Every repository path, module, public name and command-line flag that a page of docs/
or the README names exists (issue 73), so that the docs cannot drift from the code:

- a path (`xval/core/layout.py`, `core/storage/store.py`, `docs/results.md`, a link
  `reference/parameters.md`): the file or folder is there;
- a dotted name of the four packages (`xval.core.layout`, `preprocessing.duplicates.fingerprints`,
  `xval.core.layout.InstanceLayout.parse`): the module's file is there and each name after
  it is an attribute of what precedes it (a dataclass field or annotation counts);
- a flag of a command line (`python -m xval predict ... --fold 1`, `python -m preprocessing
  folders --out`, `python experiments/exp1.py --dry-run`): an option of that command's
  parser; a flag named on its own (`--overwrite`): an option of some command of the project.

The "before" column of a measured table records what the code was, so it is not checked.
Code the project no longer holds is cited with its revision: `git show 4619a5e:benchmarks/x.py`
(a path after `REV:`), or a fenced block that starts with `git worktree add DIR REV` (its
command lines run that revision's code): each is checked against that revision's tree, not
today's, where the clone holds the revision's history.
The test that the library's own messages name real flags is `tests/test_messages_flags.py`.
"""

import ast
import contextlib
import dataclasses
import functools
import importlib
import io
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PACKAGES = ("xval", "architectures", "preprocessing", "augmentation")
TOP = ("xval", "architectures", "preprocessing", "augmentation", "experiments", "benchmarks",
       "tests", "docs")
XVAL_FOLDERS = tuple(p.name for p in (ROOT / "xval").iterdir() if p.is_dir()
                     and not p.name.startswith("_"))
FILE_SUFFIXES = ("md", "py", "ini", "toml", "json", "csv", "txt", "yml", "yaml", "keras",
                 "html", "png", "wav", "xlsx", "onnx", "skops", "lock", "journal", "log")

WRITTEN_BY_EXAMPLES = {
    "experiments/wavs.py", "experiments/sounds.py", "experiments/door_sounds.py",
    "experiments/tones.py", "experiments/fsdd600.py",  # scripts `init` writes in examples
    "experiments/tiny.py",  # the scratch project of `python -m benchmarks.startup`
    "experiments/xval_experiment.py",  # the script init names for a folder named xval
    "xval/tasks/ordinal/task.py",  # the new task `docs/tasks.md` shows how to write
    "experiments/exp_topk.py",  # the task of an experiment's own (docs/architecture.md)
    "experiments/exp_own.py",  # the builder of an experiment's own (docs/training.md)
    "benchmarks/x.py",  # a script name in a sentence about scripts (`docs/installation.md`)
}
"""Paths a page names that are not in the repository by design."""

OTHER_TOOLS_FLAGS = {
    "--dist", "--durations", "--no-loadscope-reorder",  # pytest and pytest-xdist
    "--no-deps", "--force-reinstall", "--upgrade",  # pip
    "--detach-sign",  # gpg
    "--nodes", "--ntasks", "--ntasks-per-node", "--gpus-per-node", "--cpus-per-task",  # Slurm
    "--backend-store-uri",  # mlflow server
    "--headless", "--convert-to",  # LibreOffice
}
"""Flags of other programs that the pages name on their own (beside those programs' command
lines, which are left out whole: `pip install ...`, `ray start ...`)."""

_PATH = re.compile(r"(?<![\w./<>{}-])((?:" + "|".join((*TOP, *XVAL_FOLDERS)) + r")/[\w./-]*)")
_DOTTED = re.compile(r"(?<![\w./-])((?:" + "|".join(PACKAGES) + r")(?:\.\w+)+)")
_HISTORY = re.compile(r"(?<![\w./-])([0-9a-f]{7,40}):((?:" + "|".join(TOP) + r")/[\w./-]*)")
_WORKTREE = re.compile(r"^\s*git worktree add \S+ ([0-9a-f]{7,40})\b")
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_INLINE = re.compile(r"`([^`]+)`")
_COMMAND = re.compile(r"python3? -m (xval|preprocessing|augmentation)\b(.*)"
                      r"|python3? (?:experiments/[\w./-]+\.py|<script>|exp\w*\.py)(.*)"
                      r"|python3? (?:-m benchmarks\.|benchmarks/)(\w+)(?:\.py)?(.*)")
_OTHER_PROGRAMS = re.compile(r"(?:^|[\s(;&|])(?:pip|git|ray|mkdocs|make|uv|docker|nvidia-smi|bash|"
                             r"conda|huggingface-cli|hf|ffmpeg|sox|gpg|srun|sbatch|salloc|"
                             r"mlflow|soffice|pytest|python3? -m pytest)\b.*")


# -- what a page names -----------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (a `|` inside backticks is text)."""
    cells, current, code = [], "", False
    for ch in line.strip().strip("|"):
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append(current)
            current = ""
        else:
            current += ch
    return [*cells, current]


def _without_before(text: str) -> str:
    """`text` with the cells of its tables' "before" columns blanked (line for line)."""
    out, skip = [], set()
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if line.lstrip().startswith("|"):
            cells = _cells(line)
            if n == 0 or not lines[n - 1].lstrip().startswith("|"):  # a header row
                skip = {i for i, c in enumerate(cells) if c.strip().lower().startswith("before")}
            line = "| " + " | ".join("" if i in skip else c for i, c in enumerate(cells))
        else:
            skip = set()
        out.append(line)
    return "\n".join(out)


def _code(text: str) -> list[tuple[int, str, bool, str | None]]:
    """`(line number, code, a command line, revision)`: each logical line of the fenced blocks
    (a line continued with a backslash joined to the next), and each inline code span outside
    them (a command line when it starts with `python`: the others may quote a message that
    names a command in words). `revision` is the one a block's `git worktree add DIR REV`
    line checked out, for the lines after it (`None` elsewhere: today's code)."""
    found = []
    for block in _FENCE.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        logical, at, revision = "", first, None
        for n, line in enumerate(block.group(1).split("\n"), start=first):
            logical, at = (logical + " " + line, at) if logical else (line, n)
            if not line.rstrip().endswith("\\"):
                found.append((at, logical.replace("\\", " "), True, revision))
                checkout = _WORKTREE.match(logical)
                revision = checkout.group(1) if checkout else revision
                logical = ""
    blanked = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    found += [(blanked.count("\n", 0, m.start()) + 1, m.group(1).replace("\n", " "),
               bool(re.match(r"(?:\S*/)?python", m.group(1))), None)
              for m in _INLINE.finditer(blanked)]
    return sorted(found, key=lambda f: f[0])


def _git(*args: str) -> str | None:
    """`git ARGS`'s output in the repository, or `None` where it fails (no git, no such
    object)."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


@functools.cache
def _revision_known(revision: str) -> bool:
    """Whether this clone holds `revision` (a shallow clone or an unpacked archive may not:
    the names cited at that revision are then left unchecked)."""
    return _git("cat-file", "-e", f"{revision}^{{commit}}") is not None


@functools.cache
def _at_revision(revision: str, path: str) -> str | None:
    """The text of `path` at `revision` (`None`: not there, or a folder)."""
    return _git("show", f"{revision}:{path}")


def _history_problems(line: str) -> list[str]:
    """What is wrong with the `REV:path` citations of `line`: a path its revision lacks."""
    return [f"path {path} is not in {revision}"
            for revision, path in _HISTORY.findall(line)
            if _revision_known(revision)
            and _git("cat-file", "-e", f"{revision}:{path.rstrip('.,;:/')}") is None]


def _resolves(path: str, page: Path) -> bool:
    path = path.rstrip(".,;:")
    name = Path(path).name
    if path in WRITTEN_BY_EXAMPLES or "." in name and name.rsplit(".", 1)[-1] \
            not in FILE_SUFFIXES:
        return True
    return any((base / path).exists() for base in (ROOT, ROOT / "xval", page.parent))


@functools.cache
def _module_file(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _has(obj: object, name: str) -> bool:
    if hasattr(obj, name):
        return True
    fields = {f.name for f in dataclasses.fields(obj)} \
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) else set()
    return name in fields or name in getattr(obj, "__annotations__", {})


@functools.cache
def _dotted_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[-1] in FILE_SUFFIXES:  # a file name: `preprocessing.md`
        return True
    module = next((i for i in range(len(parts), 0, -1)
                   if _module_file(".".join(parts[:i]))), 0)
    if module == 0:
        return False
    obj: object = importlib.import_module(".".join(parts[:module]))
    for name in parts[module:]:
        if not _has(obj, name):
            return False
        obj = getattr(obj, name, None)
        if obj is None:  # a field without a class default: nothing deeper to check
            return True
    return True


# -- the command lines' flags ----------------------------------------------------------------


def _help(parser, *args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args([*args, "--help"])
    return out.getvalue()


def _flags_of(text: str) -> set[str]:
    return set(_FLAG.findall(text))


def _subcommands(usage: str) -> list[str]:
    found = re.search(r"\{([\w,-]+)\}", usage)
    return found.group(1).split(",") if found else []


def _benchmark_flags(source: str) -> set[str]:
    """The flags a benchmark's `add_argument` calls declare (its source read, not
    imported)."""
    return {arg.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
            for arg in node.args if isinstance(arg, ast.Constant)
            and str(arg.value).startswith("--")}


@functools.cache
def _flags() -> dict[str, dict[str | None, set[str]]]:
    """Program -> command (`None`: the program's own) -> its flags."""
    from xval import Experiment
    from xval.cli.augment import parser as augmentation_parser
    from xval.cli.main import build_parser
    from xval.cli.preprocess import parser as preprocessing_parser
    from xval.running.command import experiment_parser

    programs = {}
    for name, parser in (("xval", build_parser()), ("preprocessing", preprocessing_parser())):
        top = _help(parser)
        programs[name] = {None: _flags_of(top),
                          **{cmd: _flags_of(_help(parser, cmd)) for cmd in _subcommands(top)}}
    programs["augmentation"] = {None: _flags_of(_help(augmentation_parser()))}
    script = experiment_parser(Experiment(description="d", dataset="demo", number=1))
    programs["script"] = {None: _flags_of(_help(script))}
    programs["benchmarks"] = {None: set(), **{path.stem: _benchmark_flags(path.read_text())
                                              for path in
                                              sorted((ROOT / "benchmarks").glob("*.py"))}}
    return programs


def _command_problems(code: str, revision: str | None = None) -> tuple[list[str], str]:
    """What is wrong with the flags of the command lines in `code`, and `code` without
    them (the rest is checked flag by flag). At a `revision` (a block that checked it out)
    only a benchmark's command is checked, against that revision's file, and nothing else
    of `code` (it runs that revision's code)."""
    problems = []
    for found in _COMMAND.finditer(code):
        if f"benchmarks/{found.group(4)}.py" in WRITTEN_BY_EXAMPLES:
            continue
        if revision is not None:
            if found.group(4) and _revision_known(revision):
                source = _at_revision(revision, f"benchmarks/{found.group(4)}.py")
                if source is None:
                    problems.append(f"`{found.group(0).strip()[:60]}`: no such command in "
                                    f"{revision}")
                    continue
                known = _benchmark_flags(source)
                problems += [f"`{found.group(0).strip()[:60]}`: {flag} is not an option of "
                             f"benchmarks {found.group(4)} in {revision}"
                             for flag in _FLAG.findall(found.group(5)) if flag not in known]
            continue
        if found.group(4):
            program, words = "benchmarks", [found.group(4), *found.group(5).split()]
        else:
            program = found.group(1) or "script"
            words = (found.group(2) or found.group(3) or "").split()
        commands = _flags()[program]
        word = words[0].rstrip(":") if words else ""
        command = word if word in commands else None
        if program in ("xval", "preprocessing", "benchmarks") and command is None \
                and re.fullmatch(r"[a-z][\w-]*", word):
            problems.append(f"`{found.group(0).strip()[:60]}`: no such command")
            continue
        known = set().union(*commands.values()) if word in ("...", "COMMAND", "CMD") \
            else commands[command] | commands[None]
        problems += [f"`{found.group(0).strip()[:60]}`: {flag} is not an option of "
                     f"{program}{' ' + command if command else ''}"
                     for flag in _FLAG.findall(" ".join(words)) if flag not in known]
    return problems, _COMMAND.sub(" ", code)


def page_problems(page: Path) -> list[str]:
    """Every name of `page` that does not exist, as `page:line: what`."""
    text = _without_before(page.read_text(encoding="utf-8"))
    everything = set().union(*(flags for program in _flags().values()
                               for flags in program.values()))
    where = page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name
    said: list[tuple[int, str]] = []
    for n, line in enumerate(text.split("\n"), start=1):
        said += [(n, problem) for problem in _history_problems(line)]
        line = _HISTORY.sub(" ", line)  # a path of another revision: not today's tree
        said += [(n, f"path {path} does not exist") for path in _PATH.findall(line)
                 if not _resolves(path, page)]
        said += [(n, f"link {link} does not exist") for link in _LINK.findall(line)
                 if "://" not in link and not link.startswith("mailto:")
                 and not (page.parent / link).exists()]
        said += [(n, f"{dotted} names nothing") for dotted in _DOTTED.findall(line)
                 if not _dotted_exists(dotted.rstrip("."))]
    for n, code, command, revision in _code(text):
        wrong, rest = _command_problems(code, revision) if command else ([], code)
        said += [(n, w) for w in wrong]
        if revision is not None:  # that revision's command lines: their flags are its own
            continue
        said += [(n, f"{flag} is no option of any command")
                 for flag in _FLAG.findall(_OTHER_PROGRAMS.sub(" ", rest))
                 if flag not in everything | OTHER_TOOLS_FLAGS]
    return [f"{where}:{n}: {what}" for n, what in sorted(said, key=lambda x: x[0])]


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_name_only_what_exists(page):
    assert page_problems(page) == []


def test_concepts_name_every_task():
    """The glossary's `task` entry lists the registered tasks (it listed 4 of 5)."""
    from xval import tasks

    text = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    entry = text.split("\ntask\n:", 1)[1].split("\n\n", 1)[0]
    assert sorted(set(re.findall(r"`(\w+)`", entry)) & set(tasks.names())) == tasks.names()


def test_docs_check_can_fail(tmp_path):
    """Each kind of name the check reads, misspelt, is caught; so is a module the project
    no longer holds named as runnable today, and, where the clone holds its revision, a
    citation of history that revision lacks."""
    page = tmp_path / "page.md"
    page.write_text(
        "See `xval/core/storage/records.py` and [the results](results.md).\n"
        "`preprocessing.duplicates.similarity_db` and `xval.core.layout.NoSuchLayout`.\n"
        "`python -m xval predict m.keras a.wav --no-such-flag`, `python -m xval frobnicate`\n"
        "`python experiments/exp1.py 1 2 --dry-runs`; on its own: `--overwrites`.\n"
        "Fine: `xval/core/layout.py`, `xval.core.layout.InstanceLayout.parse`, "
        "`pip install --upgrade x`, `python -m xval report EXP --no-workbook`.\n"
        "`python -m benchmarks.detect_research --summary` (gone since), but "
        "`git show 4619a5e:benchmarks/detect_research.py`, not "
        "`git show 4619a5e:benchmarks/no_such_study.py`.\n"
        "```\ngit worktree add ../old 4619a5e\n"
        "python -m benchmarks.detect_research --no-such-flag\n```\n")
    found = [p.split(": ", 1)[1] for p in page_problems(page)]
    known = _revision_known("4619a5e")
    cited = ["path benchmarks/no_such_study.py is not in 4619a5e"] if known else []
    checked_out = ["`python -m benchmarks.detect_research --no-such-flag`: --no-such-flag is "
                   "not an option of benchmarks detect_research in 4619a5e"
                   ] if known else []
    assert found == [
        "path xval/core/storage/records.py does not exist",
        "link results.md does not exist",
        "preprocessing.duplicates.similarity_db names nothing",
        "xval.core.layout.NoSuchLayout names nothing",
        "`python -m xval predict m.keras a.wav --no-such-flag`: --no-such-flag is not an "
        "option of xval predict",
        "`python -m xval frobnicate`: no such command",
        "`python experiments/exp1.py 1 2 --dry-runs`: --dry-runs is not an option of script",
        "--overwrites is no option of any command",
        *cited,
        "`python -m benchmarks.detect_research --summary`: no such command",
        *checked_out,
    ]
