"""Piped `wav.scp` entries (`flac -c -d -s a.flac |`, `sph2pipe -f wav a.sph |`), run only
when asked (`kaldi_source(..., run_commands=True)`, `--run-wav-scp-commands`).

Most Kaldi recipes write their recordings as commands whose output is the audio. Running them
runs whatever the file says with the user's rights, so it is never the default, and even then
only a plain pipeline of programs is run: the entry is split with `shlex` (no shell), each
stage is a program and its arguments, the stages are joined by pipes with `subprocess`, and
anything a shell would interpret (redirections, `;`, `&&`, variables, command substitution,
globs, `~`) is refused. The last stage must write a WAV or FLAC stream to its standard output.

A command never hangs a build and never outlives it: each has a time limit
(`COMMAND_TIMEOUT`, `--command-timeout`) past which every stage is killed and the build ends
with one error naming the entry; what it writes is capped (`MAX_OUTPUT_BYTES`); on Linux
each stage is killed by the kernel when the process that started it dies, however it dies
(`PR_SET_PDEATHSIG`). A command that fails, is killed or writes no audio skips its
utterances with a reason naming the entry.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, cast

from preprocessing.audio import FatalReadError
from xval.core.errors import DatasetError

__all__ = ["COMMAND_TIMEOUT", "MAX_COMMAND_TIMEOUT", "MAX_OUTPUT_BYTES", "TIMEOUT_FLAG",
           "CommandTimeout", "Pipeline", "parse_pipeline", "run_pipeline"]

COMMAND_TIMEOUT = 60.0
"""Seconds one entry's pipeline may run (`--command-timeout`): past it, every stage is
stopped and the build ends with an error naming the entry. Decoding one recording takes
seconds; a command that runs longer waits for something (input, a network, a lock)."""
MAX_COMMAND_TIMEOUT = 86400.0
"""The longest limit `--command-timeout` takes (a day): a command that decodes one recording
needs seconds, and the waits of the pipeline take no more than about 24 days (`poll` counts
milliseconds in 32 bits: a limit of `1e9` s failed every recording with `OverflowError`)."""
TIMEOUT_FLAG = "--command-timeout"
"""The option that sets `COMMAND_TIMEOUT`."""
MAX_OUTPUT_BYTES = 2 * 2**30
"""The most one entry's pipeline may write (2 GiB, hours of audio): a command that writes
more is stopped (`yes |` would fill the memory before its time limit)."""

Pipeline = tuple[tuple[str, ...], ...]
"""The stages of a pipeline: each the argument list of one program."""

# `shutil.which` once per program, not once per entry of a long wav.scp.
_which = functools.lru_cache(maxsize=256)(shutil.which)
# What a shell would interpret and a plain pipeline of programs never needs.
_SHELL = re.compile(r"[;&<>$`(){}*?~\n]|\|\|")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class CommandTimeout(FatalReadError):
    """A `wav.scp` command that ran past its time limit: it stops the build (every other
    entry could wait as long), where a command that fails only skips its utterances."""


@functools.lru_cache(maxsize=1)
def _prctl() -> Callable[..., int] | None:
    """Linux's `prctl`, or `None` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        found: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """What each stage runs before its program starts: on Linux, ask the kernel to kill it
    when the process that started it dies (SIGKILL included, which runs no clean-up), so
    that a command never outlives the build; elsewhere nothing (`None`)."""
    prctl, parent = _prctl(), os.getpid()
    if prctl is None:
        return None

    def request() -> None:  # runs in the child, between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request was made
            os._exit(1)

    return request


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


class _Late(Exception):
    """The pipeline ran past its deadline (raised and caught inside `run_pipeline`)."""


def _read_output(stream: IO[bytes], deadline: float, max_bytes: int) -> bytes:
    """Everything `stream` gives until it ends, read before `deadline` (`time.monotonic`).

    Raises:
        _Late: at the deadline.
        DatasetError: past `max_bytes` (without the entry: the caller adds it).
    """
    chunks: list[bytes] = []
    size = 0
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise _Late
            chunk = os.read(stream.fileno(), 1 << 20)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > max_bytes:
                raise DatasetError(f"wrote more than {max_bytes / 2**30:g} GiB to its standard "
                                   "output and was stopped; a wav.scp command writes one "
                                   "recording: write long audio to files and list them")
            chunks.append(chunk)


def _exit_status(code: int) -> str:
    """`exited with status 1`, or `was killed by SIGPIPE` for a negative code."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def run_pipeline(stages: Pipeline, cwd: str, timeout: float = COMMAND_TIMEOUT,
                 where: str = "", max_bytes: int = MAX_OUTPUT_BYTES) -> bytes:
    """Runs a pipeline without a shell and returns what its last stage writes.

    Every stage is stopped when the pipeline ends, fails or runs late, and (on Linux) when
    this process dies, however it dies.

    Args:
        stages: from `parse_pipeline`.
        cwd: the folder it runs in (`--root`: relative paths in the command start there).
        timeout: seconds before every stage is stopped. Defaults to `COMMAND_TIMEOUT`.
        where: the file and recording, for the errors (`"data/wav.scp: recording 'a'"`).
        max_bytes: the most the last stage may write. Defaults to `MAX_OUTPUT_BYTES`.

    Returns:
        The standard output of the last stage (the encoded audio).

    Raises:
        CommandTimeout: when it runs past `timeout` (the build stops).
        DatasetError: when a stage cannot start, exits with a non-zero status (its last
            line of standard error is quoted) or is killed, or the pipeline writes nothing
            or more than `max_bytes`.
    """
    shown = " | ".join(shlex.join(stage) for stage in stages) + " |"
    head = f"{where}: " if where else ""
    deadline = time.monotonic() + timeout
    with contextlib.ExitStack() as stack:
        errors = [stack.enter_context(tempfile.TemporaryFile()) for _ in stages]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            _start(stages, errors, cwd, procs)
            output = _read_output(cast(IO[bytes], procs[-1].stdout), deadline, max_bytes)
            for proc in procs:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except OSError as e:
            raise DatasetError(f"{head}cannot run {shown!r}: {type(e).__name__}: "
                               f"{e}.") from None
        except DatasetError as e:
            raise DatasetError(f"{head}its command {shown!r} {e}.") from None
        except (_Late, subprocess.TimeoutExpired):
            raise CommandTimeout(
                f"{head}its command {shown!r} ran past the time limit of {timeout:g} s and "
                "was stopped (decoding one recording takes seconds: it may wait for input "
                f"or a network); check the command, or raise the limit with {TIMEOUT_FLAG} "
                "SECONDS.") from None
        finally:
            _stop(procs)
        _check_statuses(stages, procs, errors, head, shown)
    if not output:
        raise DatasetError(
            f"{head}its command {shown!r} exited with status 0 but wrote no audio (nothing "
            "on its standard output); its last stage must write a WAV or FLAC stream there "
            "(`sox IN -t wav - |`, `flac -c -d -s IN |`).")
    return output


def _start(stages: Pipeline, errors: Sequence[IO[bytes]], cwd: str,
           procs: list[subprocess.Popen[bytes]]) -> None:
    """Starts the stages, each reading the one before, appended to `procs` as they start
    (so that the caller stops those started when a later one cannot start)."""
    for stage, err in zip(stages, errors):
        previous = procs[-1].stdout if procs else subprocess.DEVNULL
        procs.append(subprocess.Popen(stage, stdin=previous, stdout=subprocess.PIPE,
                                      stderr=err, cwd=cwd, preexec_fn=_die_with_parent()))
        if len(procs) > 1 and procs[-2].stdout is not None:
            procs[-2].stdout.close()  # the next stage holds it now


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Closes the pipes and kills every stage still running."""
    for proc in procs:
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _check_statuses(stages: Pipeline, procs: list[subprocess.Popen[bytes]],
                    errors: Sequence[IO[bytes]], head: str, shown: str) -> None:
    """Raises `DatasetError` for the first stage that did not exit with status 0, quoting
    the last line of its standard error (`head`: the entry, `shown`: its command)."""
    for stage, proc, err in zip(stages, procs, errors):
        if proc.returncode != 0:
            err.seek(0)
            said = err.read().decode(errors="replace").strip().splitlines()
            raise DatasetError(
                f"{head}{stage[0]} in {shown!r} {_exit_status(proc.returncode)}"
                f"{': ' + said[-1] if said else ''}.")
