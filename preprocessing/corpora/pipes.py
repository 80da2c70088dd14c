"""Piped `wav.scp` entries (`flac -c -d -s a.flac |`, `sph2pipe -f wav a.sph |`), run only
when asked (`kaldi_source(..., run_commands=True)`, `--run-wav-scp-commands`).

Most Kaldi recipes write their recordings as commands whose output is the audio. Running them
runs whatever the file says with the user's rights, so it is never the default, and even then
only a plain pipeline of programs is run: the entry is split with `shlex` (no shell), each
stage is a program and its arguments, the stages are joined by pipes with `subprocess`, and
anything a shell would interpret (redirections, `;`, `&&`, variables, command substitution,
globs, `~`) is refused. The last stage must write a WAV or FLAC stream to its standard output.
"""

from __future__ import annotations

import contextlib
import functools
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from xval.core.errors import DatasetError

__all__ = ["PIPE_TIMEOUT", "Pipeline", "parse_pipeline", "run_pipeline"]

PIPE_TIMEOUT = 600.0
"""Seconds one entry's pipeline may run before it is stopped (its recording is then skipped)."""

Pipeline = tuple[tuple[str, ...], ...]
"""The stages of a pipeline: each the argument list of one program."""

# `shutil.which` once per program, not once per entry of a long wav.scp.
_which = functools.lru_cache(maxsize=256)(shutil.which)
# What a shell would interpret and a plain pipeline of programs never needs.
_SHELL = re.compile(r"[;&<>$`(){}*?~\n]|\|\|")


def parse_pipeline(entry: str, where: str) -> Pipeline:
    """The programs of a piped `wav.scp` entry, checked to be a plain pipeline.

    Args:
        entry: the entry's value, ending in `|` (e.g. `"flac -c -d -s a.flac |"`).
        where: the file and recording, for the errors.

    Returns:
        The stages, each a program (found on `PATH`) and its arguments.

    Raises:
        DatasetError: for shell syntax, an empty stage, unbalanced quotes, or a program
            that is not installed, naming the entry and the fix.
    """
    body = entry.rstrip()
    if not body.endswith("|"):
        raise DatasetError(f"{where}: {entry!r} does not end in `|`; a piped wav.scp entry is "
                           "a command whose output is the audio, ending in `|`.")
    body = body[:-1]
    shell = sorted(set(_SHELL.findall(body)))
    if shell:
        raise DatasetError(
            f"{where}: {entry!r} holds shell syntax ({' '.join(map(repr, shell))}); wav.scp "
            "commands are run without a shell, as a plain pipeline of programs "
            "(`prog ARGS | prog ARGS |`). Remove redirections, variables and globs, or write "
            "the audio to files and list their paths.")
    lexer = shlex.shlex(body, posix=True, punctuation_chars="|")
    lexer.whitespace_split, lexer.commenters = True, ""
    try:
        tokens = list(lexer)
    except ValueError as e:
        raise DatasetError(f"{where}: {entry!r} cannot be split into arguments ({e}).") from None
    stages: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            stages.append([])
        else:
            stages[-1].append(token)
    if any(not stage for stage in stages):
        raise DatasetError(f"{where}: {entry!r} has an empty stage; expected "
                           "`prog ARGS | prog ARGS |`.")
    for stage in stages:
        if _which(stage[0]) is None:
            raise DatasetError(
                f"{where}: the program {stage[0]!r} of {entry!r} is not installed (not on "
                f"PATH); install it (e.g. apt-get install {Path(stage[0]).name}) or write "
                "the audio to files.")
    return tuple(tuple(stage) for stage in stages)


def run_pipeline(stages: Pipeline, cwd: str, timeout: float = PIPE_TIMEOUT) -> bytes:
    """Runs a pipeline without a shell and returns what its last stage writes.

    Args:
        stages: from `parse_pipeline`.
        cwd: the folder it runs in (`--root`: relative paths in the command start there).
        timeout: seconds before every stage is stopped. Defaults to `PIPE_TIMEOUT`.

    Returns:
        The standard output of the last stage (the encoded audio).

    Raises:
        DatasetError: when a stage cannot start, exits with a non-zero status (its last
            line of standard error is quoted), or runs past `timeout`.
    """
    shown = " | ".join(shlex.join(stage) for stage in stages) + " |"
    with contextlib.ExitStack() as stack:
        errors = [stack.enter_context(tempfile.TemporaryFile()) for _ in stages]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for stage, err in zip(stages, errors):
                previous = procs[-1].stdout if procs else subprocess.DEVNULL
                procs.append(subprocess.Popen(stage, stdin=previous, stdout=subprocess.PIPE,
                                              stderr=err, cwd=cwd))
                if len(procs) > 1 and procs[-2].stdout is not None:
                    procs[-2].stdout.close()  # the next stage holds it now
            output, _ = procs[-1].communicate(timeout=timeout)
            for proc in procs[:-1]:
                proc.wait(timeout=timeout)
        except OSError as e:
            raise DatasetError(f"Cannot run {shown!r}: {type(e).__name__}: {e}.") from None
        except subprocess.TimeoutExpired:
            raise DatasetError(f"{shown!r} ran past {timeout:g} s and was stopped.") from None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for stage, proc, err in zip(stages, procs, errors):
            if proc.returncode != 0:
                err.seek(0)
                said = err.read().decode(errors="replace").strip().splitlines()
                raise DatasetError(
                    f"{stage[0]} in {shown!r} exited with status {proc.returncode}"
                    f"{': ' + said[-1] if said else ''}.")
    return output
