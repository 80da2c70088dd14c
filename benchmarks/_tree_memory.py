"""The peak memory of a process and the processes it starts (a pool's workers), sampled by
a separate watcher process (Linux `/proc`).

A forked worker's resident set counts the pages it shares with its parent, so the sum of
the resident sets counts them once per process; the proportional set size (`Pss` of
`/proc/PID/smaps_rollup`) shares each page among the processes holding it, so its sum is
the memory the tree holds. The watcher samples both sums every `INTERVAL` seconds (a
sample reads each process's page tables: about 5 ms per GB held, so a peak shorter than
the interval may be missed; the watched process's own peak is exact in its `VmHWM`); it
is a process, not a thread, so that the watched process stays single-threaded and its
pools still fork (`preprocessing.parallel.fork_is_safe`).

    with TreeMemory() as memory:
        work()
    memory.peak  # {"pss_gb": ..., "rss_gb": ..., "processes": ...}

Run as `python -m benchmarks._tree_memory PID` it is the watcher: it samples until its
standard input closes, then prints the peaks as JSON.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT

INTERVAL = 1.0
"""Seconds between two samples (beside a 1 GB process and its two workers, on 2 busy cores,
the watcher took a fifth of a core at 0.05 s, 7 % at 0.5 s)."""


def _field_kb(path: Path, field: str) -> int:
    """A `NAME:  VALUE kB` line's value of a `/proc` file (0 when the process is gone)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree(root: int, skip: int) -> list[int]:
    """`root` and its descendants (but `skip`), from each process's parent in `/proc`."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(parent, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid != skip:
            out.append(pid)
            todo += parents.get(pid, [])
    return out


def watch(root: int) -> dict[str, Any]:
    """Samples the tree of `root` until standard input closes; the peaks in GB."""
    peak = {"pss_gb": 0.0, "rss_gb": 0.0, "processes": 0}
    while True:
        pids = _tree(root, os.getpid())
        pss = sum(_field_kb(Path(f"/proc/{p}/smaps_rollup"), "Pss") for p in pids)
        rss = sum(_field_kb(Path(f"/proc/{p}/status"), "VmRSS") for p in pids)
        peak = {"pss_gb": max(peak["pss_gb"], round(pss * 1024 / 1e9, 2)),
                "rss_gb": max(peak["rss_gb"], round(rss * 1024 / 1e9, 2)),
                "processes": max(peak["processes"], len(pids))}
        if select.select([sys.stdin], [], [], INTERVAL)[0] and not sys.stdin.read(1):
            return peak


class TreeMemory:
    """The peak memory of this process and its descendants while the context is open
    (`peak`: `pss_gb`, `rss_gb`, `processes`; empty before the context closes)."""

    def __init__(self) -> None:
        self.peak: dict[str, Any] = {}
        self._watcher: subprocess.Popen[str] | None = None

    def __enter__(self) -> TreeMemory:
        self._watcher = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._tree_memory", str(os.getpid())], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._watcher is not None
        out, _ = self._watcher.communicate("")
        self.peak = json.loads(out) if out.strip() else {}


if __name__ == "__main__":
    print(json.dumps(watch(int(sys.argv[1]))))
