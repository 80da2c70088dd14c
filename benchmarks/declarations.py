"""Things said more than once (issue 55): four figures read from the source and from a dry
run, by the same command before and after the change.

    PYTHONPATH=$PWD python -m benchmarks.declarations            # all four
    PYTHONPATH=$PWD python -m benchmarks.declarations --only 1,2,4   # no dry run (no init)

1. Places that declare a training parameter's name: in the library packages (`xval`,
   `architectures`, `preprocessing`, `augmentation`), a class body with annotated fields or a
   dict literal with string keys that names at least half of the `[training]` keys (the
   schema's table, the typed record, the table of keys added since the first release); the
   same count for `[features]` and `[augmentation]` (a dict of values, as the demo store's
   feature parameters, counts too: read the listed places).
2. Places that spell the run options: the modules of `xval/running` whose `argparse`
   parsers (`add_argument` dests), function signatures and class bodies (fields) name,
   together, at least half of the run options (the 17 fields `RunRequest` had in 5060c43).
   Calls that pass that many by keyword are counted apart (they spell them again too).
3. Dry-run parameter lines of the two-instance script `python -m xval init` writes, on a
   folder of class sub-folders of generated tones (2 classes, 4 items, 3 takes each), with
   the script's own `--dry-run`: the lines indented under an `Instance k:` header.
4. Imports of an underscore-private name from another module: `from M import _x`,
   `from M._m import x` and `import M._x` in the library packages, and attribute reads of a private name of
   another object (`model._run_through_graph`, `argparse._SubParsersAction`): any
   `X._name` where `X` is not `self`, `cls` or `super()` and `_name` is not defined in the
   same module; the documented names `os._exit`, `sys._getframe` and the named tuple's
   `_replace`, `_asdict`, `_fields`, `_make` are public API and not counted.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._common import ROOT

PACKAGES = ("xval", "architectures", "preprocessing", "augmentation")
# The fields of `xval.running.runner.RunRequest` in 5060c43: the run options of issue 55.
RUN_OPTIONS = {"instances", "overrides", "overwrite", "dry_run", "gpu", "executor", "gpus",
               "debug", "out", "ray_address", "progress", "verbose", "search", "trials",
               "timeout", "listeners", "inner_folds"}
PUBLIC = {"_exit", "_getframe", "_replace", "_asdict", "_fields", "_make"}


def _modules(packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _training_names() -> set[str]:
    from xval.config import schema

    return set(schema.SCHEMA["training"])


def declaring_places(names: set[str]) -> list[str]:
    """Classes with annotated fields and dict literals that name half of `names` or more."""
    places = []
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                fields = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)
                          and isinstance(s.target, ast.Name)}
                kind = f"class {node.name}"
            elif isinstance(node, ast.Dict):
                fields = {k.value for k in node.keys if isinstance(k, ast.Constant)
                          and isinstance(k.value, str)}
                kind = "dict literal"
            else:
                continue
            hit = fields & names
            if 2 * len(hit) >= len(names):
                places.append(f"{path.relative_to(ROOT)}:{node.lineno} {kind} ({len(hit)})")
    return places


def _dest(call: ast.Call) -> str | None:
    """The `dest` of an `add_argument` call (`--dry-run` -> `dry_run`)."""
    for kw in call.keywords:
        if kw.arg == "dest" and isinstance(kw.value, ast.Constant):
            return str(kw.value.value)
    flags = [a.value for a in call.args if isinstance(a, ast.Constant)
             and isinstance(a.value, str)]
    long = [f for f in flags if f.startswith("--")] or flags
    return long[0].lstrip("-").replace("-", "_") if long else None


def option_places() -> tuple[list[str], list[str]]:
    """(modules, calls) in `xval/running`: the modules whose declarations (class fields,
    function signatures, `add_argument` dests) name half of the run options or more,
    together; and the calls that pass that many by keyword."""
    declared, calls = [], []
    least = (len(RUN_OPTIONS) + 1) // 2
    for path in sorted((ROOT / "xval" / "running").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT)
        named: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
                dests = {_dest(c) for c in ast.walk(node) if isinstance(c, ast.Call)
                         and isinstance(c.func, ast.Attribute)
                         and c.func.attr == "add_argument"}
                for kind, got in ((f"signature of {node.name}", params),
                                  (f"argparse of {node.name}", dests)):
                    if got & RUN_OPTIONS:
                        named[kind] = got & RUN_OPTIONS
            elif isinstance(node, ast.ClassDef):
                fields = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)
                          and isinstance(s.target, ast.Name)}
                if fields & RUN_OPTIONS:
                    named[f"fields of {node.name}"] = fields & RUN_OPTIONS
            elif isinstance(node, ast.Call):
                hit = {kw.arg for kw in node.keywords if kw.arg} & RUN_OPTIONS
                if len(hit) >= least:
                    calls.append(f"{where}:{node.lineno} call ({len(hit)})")
        together = set().union(*named.values()) if named else set()
        if len(together) >= least:
            parts = ", ".join(f"{k} ({len(v)})" for k, v in named.items() if len(v) >= 3)
            declared.append(f"{where} ({len(together)} of {len(RUN_OPTIONS)}: {parts})")
    return declared, calls


def private_imports() -> list[str]:
    """`from M import _x`, `import M._x` and `X._x` reads (X not self/cls/super())."""
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT)
        own = _defined_here(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private_module = any(_private(p) for p in (node.module or "").split("."))
                for alias in node.names:
                    if _private(alias.name) or private_module:
                        found.append(f"{where}:{node.lineno} from {node.module} import "
                                     f"{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"{where}:{node.lineno} import {alias.name}")
            elif isinstance(node, ast.Attribute) and _private(node.attr) \
                    and node.attr not in own | PUBLIC:
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) \
                        and owner.func.id == "super":
                    continue
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return found


def _defined_here(tree: ast.Module) -> set[str]:
    """The private names a module defines: functions, classes, assignments and
    `self._x = ...` attributes (another instance's `other._x` of its own class is its own)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if _private(n)}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _tones(folder: Path) -> None:
    """Two classes (class sub-folders) of 0.5 s tones, 4 items x 3 takes each, at 16 kHz:
    `<class>/<item>_<take>.wav`."""
    import numpy as np
    import soundfile as sf

    rate = 16000
    t = np.arange(rate // 2) / rate
    rng = np.random.default_rng(0)
    for label, hz in (("low", 300.0), ("high", 2000.0)):
        (folder / label).mkdir(parents=True)
        for item in ("ann", "bob", "cid", "dan"):
            for take in range(3):
                y = 0.4 * np.sin(2 * np.pi * hz * (1 + 0.03 * take) * t)
                y += 0.01 * rng.standard_normal(len(t))
                sf.write(folder / label / f"{item}_{take}.wav", y.astype(np.float32), rate)


def dry_run_lines(keep: Path | None = None) -> tuple[int, int, str]:
    """(parameter lines, all lines, the output) of the dry run of the script `init` writes."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        base = keep or Path(tmp)
        audio, project = base / "tones", base / "project"
        if not (project / "experiments" / "tones.py").exists():
            _tones(audio)
            project.mkdir(parents=True)
            init = subprocess.run([sys.executable, "-m", "xval", "init", str(audio)],
                                  cwd=project, env=env, capture_output=True, text=True)
            if init.returncode != 0:
                raise SystemExit(f"init failed:\n{init.stdout}\n{init.stderr}")
        dry = subprocess.run([sys.executable, "experiments/tones.py", "--dry-run"],
                             cwd=project, env=env, capture_output=True, text=True)
        if dry.returncode != 0:
            raise SystemExit(f"dry run failed:\n{dry.stdout}\n{dry.stderr}")
    lines = dry.stdout.splitlines()
    params, inside = 0, False
    for line in lines:
        if re.match(r"Instance \d+", line):
            inside = True
        elif not line.startswith(" "):
            inside = False
        elif inside:
            params += 1
    return params, len(lines), dry.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="1,2,3,4", help="figures to compute, e.g. 1,2,4")
    parser.add_argument("--keep", type=Path, help="a folder for the tones and the project "
                        "(reused when it holds them)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every place")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if "1" in only:
        places = declaring_places(_training_names())
        print(f"1. places declaring the [training] parameters' names: {len(places)}")
        for p in places:
            print(f"     {p}")
        from xval.config import schema

        for section in ("features", "augmentation"):
            places = declaring_places(set(schema.SCHEMA[section]))
            print(f"   the same for [{section}]: {len(places)}")
            for p in places:
                print(f"     {p}")
    if "2" in only:
        declared, calls = option_places()
        print(f"2. places spelling the run options: {len(declared)} "
              f"(and {len(calls)} calls passing them one by one)")
        for p in declared + calls:
            print(f"     {p}")
    if "3" in only:
        params, total, text = dry_run_lines(args.keep)
        print(f"3. dry-run parameter lines of the script init writes: {params} "
              f"(of {total} lines)")
        if args.verbose:
            print(text)
    if "4" in only:
        found = private_imports()
        print(f"4. private names of other modules used: {len(found)}")
        for p in found if args.verbose else found[:40]:
            print(f"     {p}")


if __name__ == "__main__":
    main()
