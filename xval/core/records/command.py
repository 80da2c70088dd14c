"""`RunCommand` and `CommandLog`: the command line of every run of an experiment
(`code/commands.json`)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from xval.core.records.base import FORMAT_VERSION, Record, RecordError


@dataclasses.dataclass
class RunCommand(Record):
    """One run of an experiment: what was typed and what it resolved.

    Attributes:
        command: the command line, shell-quoted (`python exp1.py 1 2 --set epochs=3`), or
            for a Python caller `Experiment.run from <program>`.
        overrides: the `--set` values (or `overrides=`), as parsed.
        instances: the instances the run planned.
        time_utc: when the run began, ISO 8601 in UTC.
        preference: the order of instances the experiment declared for selecting among the
            rows its ranking scores cannot tell apart (`Experiment(preference=...)`), or
            `None` when it declared none.
    """

    KIND: ClassVar[str] = "run command"

    command: str
    overrides: dict[str, Any]
    instances: list[int]
    time_utc: str
    preference: list[int] | None = None
    format: int = FORMAT_VERSION

    def overrides_text(self) -> str:
        """`epochs=3, learning_rate=0.02`, or `none`."""
        return ", ".join(f"{k}={v!r}" for k, v in sorted(self.overrides.items())) or "none"


@dataclasses.dataclass
class CommandLog(Record):
    """`code/commands.json`: every run of the experiment, oldest first."""

    KIND: ClassVar[str] = "command log"

    runs: list[RunCommand] = dataclasses.field(default_factory=list)
    format: int = FORMAT_VERSION

    @classmethod
    def _finish(cls, read: dict[str, Any]) -> dict[str, Any]:
        """The runs as `RunCommand`s."""
        runs = read.get("runs", [])
        if not all(isinstance(run, dict) for run in runs):
            raise RecordError("its runs are not all mappings")
        return {**read, "runs": [RunCommand.from_dict(run) for run in runs]}

    def appended(self, run: RunCommand) -> CommandLog:
        """A new log: these runs, then `run`."""
        return CommandLog(runs=[*self.runs, run])
