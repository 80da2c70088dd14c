"""The default backend against the one it replaced, on `init`'s own experiment.

For each dataset (`--datasets`, default FSDD and RAVDESS from `../shared/datasets`, a subset
linked: `--files`), `python -m xval init` writes the project and its experiment; then the
experiment's instances run (`--set epochs=N`) three times, each in a fresh process:

torch    `--backend torch`: the default before, eager steps;
auto     the default now (`[backend] backend = auto`: JAX, compiled steps), the compilation
         cache empty (every program compiled);
again    the same once more, as a second run of a project is (every program in the cache).

Printed per dataset and arm: the wall time per fold (from the run's start to its end,
importing Keras and compiling included, divided by the folds trained), the programs
compiled per fold (the fold records' `compilation`), and the instances' test scores of
both backends paired over the same folds by the project's own `python -m xval compare`
(equal within noise, or the difference named). The two arms train the same items in the
same folds; their seeds are the same, their arithmetic is not (eager torch against XLA).
Then, per instance of the first compiled arm (`auto`, the cache empty): what its first fold
compiled (programs, seconds, and their share of the fold's wall time) and what its later
folds compiled (goal: nothing).

`--arms` runs some of the arms (`auto` alone: the programs and their share, without the
comparison); `--epochs 0` keeps the epochs init wrote (a user's first run).

    python -m benchmarks.default_backend [--datasets fsdd,ravdess] [--files 96] [--epochs 8]
        [--arms torch,auto,again] [--keep DIR] [--smoke]

`--smoke` runs the same steps at a size that proves only the code path (for the test suite):
`init --encoders none`, its instance 2 alone (the MLP; `SMOKE_INSTANCES`) and every arm on
torch (nothing compiled).
"""

import argparse
import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import datasets_option, number

ARMS = ("torch", "auto", "again")
SMOKE_INSTANCES = ("2", "2")
"""The instances `--smoke` runs: `init --encoders none`'s MLP (its audio CNN costs the most)."""
PATTERNS = {"fsdd": "fsdd", "ravdess": "ravdess"}


def link_subset(name, folder, count, root):
    """`count` files of dataset `name` (under `root`, the `--datasets-dir`) linked under
    `folder`, spread over its items and labels; returns how many."""
    if name == "fsdd":
        files = sorted((root / "fsdd" / "recordings").glob("*.wav"))
        # 3 digits, every speaker, files spread over the indices.
        chosen = [p for p in files if p.name.split("_")[0] in ("0", "1", "2")]
    else:
        files = sorted((root / "ravdess" / "audio").glob("Actor_*/*.flac"))
        chosen = [p for p in files if p.name.split("-")[2] in ("01", "03", "04", "05")]
    step = max(1, len(chosen) // count)
    picked = chosen[::step][:count]
    for path in picked:
        target = folder / path.relative_to(path.parents[1 if name == "ravdess" else 0])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    return len(picked)


def run(command, cwd, env=None):
    """`(wall seconds, stdout)` of `command`, stopping the benchmark when it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def fold_records(experiment):
    """Every fold record of `experiment` (a results folder) of a trained model (not an
    ensemble's)."""
    found = [json.loads(p.read_text()) for p in sorted(experiment.glob("instance_*/fold_*.json"))]
    return [r for r in found if r.get("backend")]


def per_instance(experiment):
    """`{instance: {...}}`: what each trained instance's first fold compiled (programs,
    seconds, wall seconds) and the programs its later folds compiled, from its fold records
    (a refit's included)."""
    found = {}
    for folder in sorted(experiment.glob("instance_*"), key=lambda p: int(p.name.split("_")[1])):
        records = [json.loads(p.read_text()) for p in sorted(
            folder.glob("fold_*.json"), key=lambda p: int(p.stem.split("_")[1]))]
        records = [r for r in records if r.get("backend")]
        if not records:
            continue
        first = records[0].get("compilation") or {}
        found[folder.name.split("_")[1]] = {
            "programs": first.get("programs", 0), "compile_s": first.get("seconds", 0.0),
            "wall_s": records[0]["timings"]["total_seconds"]
            + ((records[0].get("refit") or {}).get("timings") or {}).get("total_seconds", 0.0),
            "later": [(r.get("compilation") or {}).get("programs", 0) for r in records[1:]]}
    return found


def print_instances(arm, instances):
    print(f"{arm}, per instance: first fold (programs, compile s, wall s, share), later folds"
          " (programs)")
    for k, i in instances.items():
        print(f"  instance {k}: {i['programs']:3d} programs {i['compile_s']:6.1f}s of "
              f"{i['wall_s']:6.1f}s ({i['compile_s'] / max(i['wall_s'], 1e-9):4.0%}); later "
              f"{i['later']}")


def dataset_arms(name, work, args):
    """The arms on dataset `name`: `{arm: {...}}` and the compare output."""
    audio = work / name / "audio"
    files = link_subset(name, audio, args.files, args.datasets_dir)
    project = work / name / "project"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    run([sys.executable, "-m", "xval", "init", str(audio), "--pattern", PATTERNS[name],
         "--name", name, "--project", str(project), "--no-progress",
         *(["--encoders", "none"] if args.smoke else [])], work, env)
    script = project / "experiments" / f"{name}.py"
    cache = work / name / "cache"
    config = configparser.ConfigParser(interpolation=None)
    config.read(project / "config.ini")
    if not config.has_section("backend"):
        config.add_section("backend")
    config.set("backend", "compile_cache", str(cache))  # empty: the first run compiles
    with open(project / "config.ini", "w") as f:
        config.write(f)
    results = project / "results" / name
    out = {"files": files}
    for arm in args.arms:
        extra = ["--backend", "torch"] if arm == "torch" or args.smoke else []
        overwrite = ["--overwrite"] if arm != args.arms[0] else []
        epochs = ["--set", f"epochs={args.epochs}"] if args.epochs else []
        wall, _ = run([sys.executable, str(script), *extra, *overwrite, *epochs, "-q",
                       *(SMOKE_INSTANCES if args.smoke else ())],
                      project, env)
        experiment = results / "experiment_1"
        records = fold_records(experiment)
        out[arm] = {"wall": wall, "folds": len(records),
                    "programs": sum((r.get("compilation") or {}).get("programs", 0)
                                    for r in records),
                    "compile_s": sum((r.get("compilation") or {}).get("seconds", 0.0)
                                     for r in records),
                    "backends": sorted({r["backend"] for r in records}),
                    "scores": [r["metrics"]["test"] for r in records],
                    "instances": per_instance(experiment)}
        if arm == "torch":  # kept beside the next arms' results, for compare
            shutil.copytree(experiment, results / "experiment_torch")
    if not {"torch", "auto"} <= set(args.arms):
        return out, []
    out["reproduced"] = "again" in out and out["auto"]["scores"] == out["again"]["scores"]
    instances = sorted({p.parent.name.split("_")[1] for p in experiment.glob("instance_*/fold_*.json")},
                       key=int)
    pairs = []
    for k in instances:
        a, b = f"{results / 'experiment_torch'}:{k}", f"{experiment}:{k}"
        _, compared = run([sys.executable, "-m", "xval", "compare", a, b, "--no-workbook",
                           "--format", "markdown"], project, env)
        pairs += [f"| {k} |" + line.split("|", 3)[3] for line in compared.splitlines()
                  if line.startswith(f"| {name}/experiment_torch:{k} | {name}/experiment_1:{k}")]
    return out, pairs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="fsdd,ravdess")
    parser.add_argument("--files", type=number(12, int, closed=True), default=96)
    parser.add_argument("--epochs", type=number(0, int, closed=True), default=8,
                        help="epochs of every instance (0: those init wrote)")
    parser.add_argument("--arms", default=",".join(ARMS),
                        help=f"the arms to run, in order (default {','.join(ARMS)})")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it")
    parser.add_argument("--smoke", action="store_true",
                        help="the code path at a tiny size (see the module docstring)")
    datasets_option(parser)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PATTERNS))
    if unknown:
        parser.error(f"--datasets {','.join(unknown)}: choose from {', '.join(PATTERNS)}")
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not args.arms or set(args.arms) - set(ARMS) or len(set(args.arms)) < len(args.arms):
        parser.error(f"--arms {','.join(args.arms)}: choose each once from {', '.join(ARMS)}")
    if not args.datasets_dir.is_dir():
        print(f"{args.datasets_dir} is absent: no datasets to measure on.")
        return 0
    work = Path(args.keep or tempfile.mkdtemp(prefix="xval-default-backend-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for name in names:
            arms, compared = dataset_arms(name, work, args)
            print(f"\n{name}: {arms['files']} files, init's experiment, epochs {args.epochs}")
            print(f"{'arm':8}{'backend':>10}{'folds':>7}{'s / fold':>10}{'programs':>10}"
                  f"{'compile s':>11}")
            for arm in args.arms:
                a = arms[arm]
                print(f"{arm:8}{','.join(a['backends']):>10}{a['folds']:7d}"
                      f"{a['wall'] / max(a['folds'], 1):10.2f}{a['programs']:10d}"
                      f"{a['compile_s']:11.1f}")
            compiled = [arm for arm in args.arms if arm != "torch"]
            if compiled:
                print_instances(compiled[0], arms[compiled[0]]["instances"])
            if not compared:
                continue
            print(f"wall per fold, auto / torch: {arms['auto']['wall'] / arms['torch']['wall']:.2f}"
                  f" (cache empty), {arms['again']['wall'] / arms['torch']['wall']:.2f} "
                  "(second run)")
            print(f"second run's test scores identical to the first's: {arms['reproduced']}")
            print("torch (A) against auto (B), each instance over the same folds "
                  "(python -m xval compare):")
            print("| instance | folds | mean A - B | CI low | CI high | t | p | p (Holm) | "
                  "P(A better) | P(equivalent) | P(B better) | verdict |")
            print("\n".join(compared))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
