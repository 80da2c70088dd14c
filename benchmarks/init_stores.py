"""`python -m xval init` against building its slowest store alone (issue 44, point 2).

On `--files` RAVDESS recordings (about 3.5 s each, spread over actors and emotions; linked
from ../shared/datasets into a temporary folder, never copied into the project), alternately:

(a) `python -m xval init AUDIO --pattern ravdess`: finds the files, builds the log-mel store
    and the aisfx encoder store, writes the script and runs its dry run;
(b) `python -m preprocessing regex AUDIO --pattern ravdess --encoders aisfx`: the encoder
    store alone, with the same rows and the encoder's own parameters.

Each in a fresh process; wall and CPU seconds (user + system of the process and its
children, `os.wait4`) are medians over `--repeats`; the ratio (a) / (b) is printed, and the
per-store extraction seconds that init recorded (dataset.json). Goal: init <= 1.3x (b).

    python -m benchmarks.init_stores [--files 40] [--repeats 1]
    python -m benchmarks.init_stores --before ../main   # and init of another checkout
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import ROOT, SHARED, median

RAVDESS = SHARED / "ravdess" / "audio"


def link_files(folder, count):
    """`count` RAVDESS files linked as `folder/Actor_XX/<name>.flac`: the first actors, and
    in each the files of every emotion in turn."""
    actors = sorted(RAVDESS.glob("Actor_*"))
    per_actor = max(1, count // len(actors[:8]))
    linked = 0
    for actor in actors[:8]:
        files = sorted(actor.glob("*.flac"), key=lambda p: (p.name.split("-")[3], p.name))
        spread = files[::max(1, len(files) // per_actor)][:per_actor]
        for path in spread:
            if linked == count:
                return linked
            target = folder / actor.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
            linked += 1
    return linked


def timed_process(command, cwd, env):
    """`(wall seconds, CPU seconds)` of one run of `command`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def extraction_seconds(store):
    import json

    return json.loads((store / "dataset.json").read_text())["extraction_seconds"]


def _report(count, repeats, runs, stores):
    wall = {k: median([w for w, _ in v]) for k, v in runs.items()}
    cpu = {k: median([c for _, c in v]) for k, v in runs.items()}
    print(f"{count} RAVDESS files, {os.cpu_count()} cores, medians of {repeats}:")
    print(f"  the aisfx store alone: {wall['alone']:.1f} s wall, {cpu['alone']:.1f} s CPU")
    for name in [k for k in runs if k != "alone"]:
        print(f"  {name}: {wall[name]:.1f} s wall, {cpu[name]:.1f} s CPU; / the encoder "
              f"store alone: {wall[name] / wall['alone']:.2f} (wall), "
              f"{cpu[name] / cpu['alone']:.2f} (CPU); goal <= 1.3")
        print(f"    its extraction times: log-mel {median([s[0] for s in stores[name]]):.1f} s, "
              f"aisfx {median([s[1] for s in stores[name]]):.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="also time init with the code of another checkout (e.g. ../main "
                             "before a change), alternating with this one's")
    args = parser.parse_args()
    if not RAVDESS.is_dir():
        raise SystemExit(f"{RAVDESS} is missing: this benchmark reads RAVDESS from there.")
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    codes = {"init": env}
    if args.before:
        codes[f"init ({args.before})"] = {**env, "PYTHONPATH": str(Path(args.before).resolve())}
    work = Path(tempfile.mkdtemp(prefix="xval-init-bench-"))
    audio = work / "ravdess"
    count = link_files(audio, args.files)
    init = [sys.executable, "-m", "xval", "init", str(audio), "--pattern", "ravdess",
            "--no-progress", "--overwrite", "--project", str(work / "project")]
    alone = [sys.executable, "-m", "preprocessing", "regex", str(audio), "--pattern",
             "ravdess", "--encoders", "aisfx", "--data-dir", str(work / "alone"), "--out",
             "ravdess_aisfx", "--overwrite", "--no-progress", "-q"]
    runs = {"alone": [], **{name: [] for name in codes}}
    stores = {name: [] for name in codes}
    data = work / "project" / "data"
    for _ in range(args.repeats):
        for name, code in codes.items():
            runs[name].append(timed_process(init, work, code))
            stores[name].append((extraction_seconds(data / "ravdess"),
                                 extraction_seconds(data / "ravdess_aisfx")))
        runs["alone"].append(timed_process(alone, work / "project", env))  # its config.ini
    _report(count, args.repeats, runs, stores)


if __name__ == "__main__":
    main()
