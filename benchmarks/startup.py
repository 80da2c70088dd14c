"""Start-up cost of the commands that neither train nor predict.

Each command runs in a fresh process, `--repeats` times, alternating with `python -c pass`;
the CPU time (user + system, of the child) is read from `os.wait4`, so a busy machine moves
wall time much more than CPU time. Printed: the median CPU seconds of every command, its
ratio to `python -c pass` in the same run, and whether it imported a deep-learning backend
(keras, tensorflow, torch, jax: read from `python -X importtime`). Goal (issue 44): at most
0.5 s of CPU for `--version` and `report` on an existing experiment.

    python -m benchmarks.startup                      # builds a scratch project first (~1 min)
    python -m benchmarks.startup --project DIR        # reuse (or build once into) DIR
    python -m benchmarks.startup --repeats 5 --only version,report

The scratch project holds the built-in demo store and a 2-instance, 2-fold experiment of one
epoch (`experiments/tiny.py`), so `report` and `compare` read real results.

Two more commands train: `run` runs that experiment again (`--overwrite`: 4 folds, Keras
imported), and `run-collector-on` runs it with the garbage collector's handling as it was
before (the collector not paused while Keras and the engine are imported, the job process's
heap not frozen at its first fold: `gc.disable` and `gc.freeze` made no-ops), both through
the same `runpy` driver:

    python -m benchmarks.startup --only run,run-collector-on
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._common import ROOT, median

BACKENDS = ("keras", "tensorflow", "torch", "jax")
EXPERIMENT = '''"""A tiny experiment for benchmarks/startup.py."""

from xval import Experiment

experiment = Experiment(description="tiny", dataset="demo", number=1, num_folds=2,
                        parameters={"epochs": 1, "patience": 1, "batch_size": 64})
experiment[1] = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 8}
experiment[2] = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 16}

if __name__ == "__main__":
    experiment.main()
'''
EXP_DIR = "results/demo/experiment_1"
PY = [sys.executable]
# The experiment script run as `python experiments/tiny.py -q --overwrite` runs it; BEFORE
# first makes the collector's pause and freeze no-ops (`xval.core.backend.import_paused`,
# `xval.executors.job_process.settle`).
RUN = ("import runpy, sys\n{before}sys.argv = ['experiments/tiny.py', '-q', '--overwrite']\n"
       "runpy.run_path(sys.argv[0], run_name='__main__')")
BEFORE = "import gc\ngc.disable = gc.freeze = lambda: None\n"
COMMANDS = {
    "pass": [*PY, "-c", "pass"],
    "version": [*PY, "-m", "xval", "--version"],
    "help": [*PY, "-m", "xval", "--help"],
    "config": [*PY, "-m", "xval", "config"],
    "report": [*PY, "-m", "xval", "report", EXP_DIR],
    "report-text": [*PY, "-m", "xval", "report", EXP_DIR, "--no-workbook"],
    "compare": [*PY, "-m", "xval", "compare", EXP_DIR, "--no-workbook"],
    "dry-run": [*PY, "experiments/tiny.py", "--dry-run"],
    "init-plan": [*PY, "-m", "xval", "init", "audio", "--dry-run", "--encoders", "none",
                  "--item-pattern", r"(?P<item>spk\d+)_"],
    "preprocessing-report": [*PY, "-m", "preprocessing", "report", "data/demo"],
    "run": [*PY, "-c", RUN.format(before="")],
    "run-collector-on": [*PY, "-c", RUN.format(before=BEFORE)],
}
TRAINING = ("run", "run-collector-on")
"""Not run unless `--only` names them."""


def run_once(command, project, env):
    """CPU seconds (user + system) of one run of `command` in `project`."""
    process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed in {project}: run it there to see why.")
    return usage.ru_utime + usage.ru_stime


def backends_imported(command, project, env):
    """The backends among the modules `command` imported (`-X importtime`)."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], cwd=project,
                          env=env, capture_output=True, text=True, check=False)
    names = {line.split("|")[-1].strip().split(".")[0]
             for line in done.stderr.splitlines() if line.startswith("import time:")}
    return sorted(names & set(BACKENDS))


def build_project(project, env):
    """The demo store, a few demo files as an audio folder, and one finished experiment."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "config.ini").write_text("[paths]\ndata_dir = data\nresults_dir = results\n")
    (project / "experiments").mkdir(exist_ok=True)
    (project / "experiments" / "tiny.py").write_text(EXPERIMENT)
    steps = [[*PY, "-m", "preprocessing", "demo", "--data-dir", "data", "--no-progress",
              "-q"], [*PY, "experiments/tiny.py", "-q"]]
    for step in steps:
        subprocess.run(step, cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
    _audio_folder(project)


def _audio_folder(project):
    """`audio/<label>/<speaker>_<file>.wav`: 32 demo files (one per speaker and label), for
    `init --dry-run`."""
    import pandas as pd

    meta = pd.read_csv(project / "data" / "demo" / "meta.csv")
    files = meta.drop_duplicates("source").groupby(["label", "item"]).head(1)
    for _, row in files.iterrows():
        source = project / row["source"]
        target = project / "audio" / str(row["label"]) / f"{row['item']}_{source.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(source.resolve())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", help="scratch project folder (built when missing)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", help="comma-separated command names: "
                                       + ", ".join(COMMANDS))
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND":
           os.environ.get("KERAS_BACKEND", "torch")}
    project = Path(args.project or tempfile.mkdtemp(prefix="xval-startup-"))
    if not (project / EXP_DIR / "instance_2").exists():
        print(f"Building the scratch project in {project} ...", flush=True)
        build_project(project, env)
    names = ["pass", *[n for n in (args.only.split(",") if args.only else COMMANDS)
                       if n != "pass" and (args.only or n not in TRAINING)]]
    times = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            times[name].append(run_once(COMMANDS[name], project, env))
    base = median(times["pass"])
    print(f"CPU seconds (user + system), medians of {args.repeats}; "
          f"python -c pass = {base:.3f} s")
    print(f"{'command':<22} {'CPU s':>7} {'x pass':>7}  backend imported")
    for name in names[1:]:
        cpu = median(times[name])
        found = backends_imported(COMMANDS[name], project, env)
        print(f"{name:<22} {cpu:7.3f} {cpu / base:7.1f}  {', '.join(found) or 'none'}")


if __name__ == "__main__":
    main()
