"""A hostile user's probe of every command line: odd, wrong and dangerous inputs, each
classified by what the command did with it.

Every case runs as a user would run it (a fresh `python -m ...` or experiment script
process) in its own copy of a small sandbox: a project with the demo store and a trained
one-epoch experiment, a folder of class sub-folders of audio, and a folder of the user's
documents. Each case says whether the input must be refused or must run; the result is
classified as

- `clear`: refused with one `error:` line (exit status other than 0), as it should be;
- `correct`: ran (exit 0) and its output checks out, as it should;
- `traceback`: a Python traceback reached the user;
- `silent`: exit 0 where the input should have been refused, or output that is wrong
  without a word;
- `damage`: a file the command did not write was changed or deleted;
- `unclear`: anything else (a hang, an exit without a message, a refusal of valid input).

    python -m benchmarks.hostile_probe                 # every case, the totals at the end
    python -m benchmarks.hostile_probe --only init-    # the cases whose name starts so
    python -m benchmarks.hostile_probe --json out.json # every result, for comparison

The cases are in `benchmarks.probe_cases`; cases named in an issue (37; 45: edited results,
counts past what the data allows, addresses out of range, garbage dataset descriptions,
unknown encoders, Lhotse stretches outside their recording or root; 54: packages missing as
on the runtime install, removed seals, culprits, long recordings, `.keras` archives; 64:
ensembles of predictions edited by hand and of members trained again; 64 and 63 in
`benchmarks.probe_cases_64`: a recording under 300 items, copies under two labels, GPUs and
their ids, Keras globals between jobs, transformers folders that are wrong; 74 in
`benchmarks.probe_cases_74`: tagging and annotation inputs, an ensemble's record edited,
a closed pipe, flags the refusals name, transformers folders whose config and weights
disagree) are marked `named` and
counted apart from the others (`--only` picks a group by name prefix). A case takes 2-15 s (one process start, Keras imported);
the whole probe takes about 15 minutes on two cores.
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import probe_cases_64, probe_cases_74
from benchmarks.probe_cases import CASES, Case, build_base

CASES = [*CASES, *probe_cases_64.CASES, *probe_cases_74.CASES]

KINDS = ("clear", "correct", "traceback", "silent", "damage", "unclear", "probe-error")


def _snapshot(root: Path) -> dict[str, str]:
    """`relative path -> SHA-256` of every regular file under `root` (links not followed)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                out[str(path.relative_to(root))] = "unreadable"
    return out


def _damage(before: dict[str, str], after: dict[str, str], allowed: Sequence[str]) -> str:
    """The files changed or deleted that the case does not allow to change, in words."""
    lost = [p for p, digest in before.items() if after.get(p) != digest
            and not any(fnmatch.fnmatch(p, pattern) for pattern in allowed)]
    if not lost:
        return ""
    return f"{len(lost)} file(s) changed or deleted, e.g. {', '.join(sorted(lost)[:3])}"


def _one_error_line(stderr: str) -> bool:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return bool(lines) and any(line.startswith(("error:", "usage:")) or ": error:" in line
                               for line in lines[-2:])


def classify(case: Case, proc: Any, damage: str, problem: str) -> tuple[str, str]:
    """`(kind, detail)` of one case's outcome (see the module docstring)."""
    if proc is None:
        return "unclear", "no answer within the time limit (a hang)"
    stderr = proc.stderr or ""
    if "Traceback (most recent call last)" in stderr:
        last = [line for line in stderr.strip().splitlines() if line.strip()][-1:]
        return "traceback", (last or [""])[0][:200]
    if damage:
        return "damage", damage
    last = next(iter(reversed([line for line in stderr.strip().splitlines()
                               if line.strip()])), "")
    if case.expect == "refuse":
        if proc.returncode == 0:
            return "silent", problem or "exit 0 where it should refuse"
        said = next((line for line in reversed(stderr.strip().splitlines()[-2:])
                     if line.startswith("error:")), last)
        missing = [words for words in case.says if words not in said]
        if _one_error_line(stderr) and missing:  # a line, but not the real cause's
            return "unclear", f"the error does not say {missing[0]!r}: {last[:200]}"
        if _one_error_line(stderr):
            return "clear", last[:200]
        return "unclear", f"exit {proc.returncode}: {last[:200]}"
    if proc.returncode != 0:
        return "unclear", f"refused valid input, exit {proc.returncode}: {last[:200]}"
    if problem:
        return "silent", problem
    return "correct", ""


def run_case(case: Case, base: Path, work: Path, python: str) -> dict[str, Any]:
    """Runs one case in a fresh copy of the sandbox; returns its result record."""
    root = work / case.name
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(base, root, symlinks=True)
    try:
        if case.prepare is not None:
            try:
                case.prepare(root)
            except Exception as e:  # noqa: BLE001  (a case that cannot be set up is said)
                return {"name": case.name, "named": case.named, "expect": case.expect,
                        "kind": "probe-error", "detail": f"prepare: {e!r}", "seconds": 0,
                        "rc": None}
        before = _snapshot(root)
        argv = case.command(root, python)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
               **{k: v.format(W=root) for k, v in case.env.items()}}
        env.setdefault("KERAS_BACKEND", "torch")
        for name in case.unset:
            env.pop(name, None)
        start = time.perf_counter()
        stdout = open(case.stdout, "w") if case.stdout else subprocess.PIPE  # noqa: SIM115
        try:
            proc = subprocess.run(argv, cwd=root / "project", env=env, stdout=stdout,
                                  stderr=subprocess.PIPE, text=True, timeout=case.timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            proc = None
        finally:
            if case.stdout:
                stdout.close()
        seconds = time.perf_counter() - start
        damage = _damage(before, _snapshot(root), case.may_change)
        problem = case.check(root, proc) if (case.check and proc is not None
                                             and proc.returncode == 0) else ""
        kind, detail = classify(case, proc, damage, problem)
        return {"name": case.name, "named": case.named, "expect": case.expect, "kind": kind,
                "detail": detail, "seconds": round(seconds, 1),
                "rc": None if proc is None else proc.returncode}
    finally:
        if case.cleanup is not None:
            case.cleanup(root)
        shutil.rmtree(root, ignore_errors=True)


def totals(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counts of each kind, for the cases named in the issue and for the others."""
    out: dict[str, dict[str, int]] = {}
    for group, named in (("beyond the issue", False), ("named in the issue", True)):
        counter = collections.Counter(r["kind"] for r in results if r["named"] == named)
        out[group] = {kind: counter.get(kind, 0) for kind in KINDS}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the cases whose name starts so")
    parser.add_argument("--json", help="write every result here")
    parser.add_argument("--work", help="sandbox folder (default: a temporary one)")
    parser.add_argument("--jsonl", help="append each result here as it comes; with "
                                        "--resume, the cases already there are not rerun")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if c.name.startswith(args.only)]
    earlier: list[dict[str, Any]] = []
    if args.resume and args.jsonl and Path(args.jsonl).exists():
        earlier = [json.loads(line) for line in Path(args.jsonl).read_text().splitlines()
                   if line.strip()]
        cases = [c for c in cases if c.name not in {r["name"] for r in earlier}]
    work = Path(args.work or tempfile.mkdtemp(prefix="xval-probe-"))
    work.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    base = work / "_base"
    if not base.exists():
        print(f"Building the sandbox in {base} ...", flush=True)
        build_base(base, python)
    results = list(earlier)
    for case in cases:
        result = run_case(case, base, work, python)
        results.append(result)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(result) + "\n")
        print(f"{result['kind']:9s} {case.name:42s} {result['seconds']:6.1f}s  "
              f"{result['detail']}", flush=True)
    for group, counts in totals(results).items():
        n = sum(counts.values())
        print(f"{group}: {n} cases: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results,
                                               "totals": totals(results)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
