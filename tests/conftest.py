"""Shared fixtures. The test process uses the torch backend (fast on CPU); the tensorflow
backend is exercised in subprocesses, since a backend is fixed per process."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several workers (and the scripts they start) share the cores: one OpenMP thread each.
    # Two 2-thread trainings on 2 cores each ran 10x slower than alone (spinning threads);
    # with one thread each, 1.8x (`git show 4619a5e:benchmarks/cpu_threads.py`).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import gc  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from xval.config.params import PLAIN_TRAINING as _PLAIN  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def resolve(*args, feature=None, **kwargs):
    """`xval.config.params.resolve` with the registered architectures handed in, and the
    feature type named `feature` (a string), as the planner does."""
    import architectures
    from preprocessing import features
    from xval.config import params

    return params.resolve(*args, architectures=architectures,
                          feature=features.get(feature) if feature else None, **kwargs)
SHARED = ROOT.parent / "shared" / "datasets"


# [training] options whose shipped defaults (config.ini) are meant for real datasets: the
# tests of the engine's mechanics train a few epochs on tiny stores, so they pin the plain
# values. test_training_options.py::test_shipped_defaults_train_a_fold uses the shipped ones.
PLAIN_TRAINING = {**_PLAIN, "epochs": 30, "patience": 5}
# The instance figures (plots/, `[report] plots`) cost about 1 s of CPU per instance, as
# much as its training here: the tests of the engine's mechanics leave them out, the tests
# of the figures, the workbook's Plots sheet and each task's run end to end draw them
# (`write_config(..., report={"plots": True})`), as do runs on a shipped config.ini.
PLAIN_REPORT = {"plots": False}


def training_defaults(path=None):
    """The `[training]` defaults of a config.ini (the project's by default), with the
    generalisation options at their plain values (`PLAIN_TRAINING`)."""
    from xval.config.loader import load_config

    return {**load_config(path or ROOT / "config.ini").training, **PLAIN_TRAINING}


def write_config(folder, **sections):
    """Writes a complete config.ini (every key at its package default, `xval.config.schema`)
    into `folder`, with keys replaced (and the `[training]` options of `PLAIN_TRAINING` at
    their plain values, and `[report]` as `PLAIN_REPORT`, unless given).

    Args:
        folder: where to write `config.ini` (data and results go under it by default).
        **sections: section name -> {key: value} to replace; a value is written as given
            (a string may be invalid on purpose), `None` and booleans as config.ini spells
            them.

    Returns:
        The path of the new file.
    """
    from xval.config import schema

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values = {"paths": {"data_dir": str(folder / "data"), "results_dir": str(folder / "results")},
              "training": dict(PLAIN_TRAINING), "report": dict(PLAIN_REPORT)}
    for section, keys in sections.items():
        values.setdefault(section, {}).update(keys)
    lines = []
    for line in schema.render().splitlines():
        match = re.match(r"\[(\w+)\]", line)
        if match:
            section = match.group(1)
        key_match = re.match(r"(\w+) = ", line)
        if key_match and key_match.group(1) in values.get(section, {}):
            value = values[section][key_match.group(1)]
            text = value if isinstance(value, str) else \
                schema.SCHEMA[section][key_match.group(1)].text(value)
            line = f"{key_match.group(1)} = {text}"
        lines.append(line)
    path = folder / "config.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_store(data_dir, name="tiny", *, n_items=6, n_classes=3, clips_per_class=4,
               segments=2, shape=(8, 6), seed=0, task_type="classification", split=None,
               augmented_copies=0):
    """Writes a small, learnable synthetic store: each class shifts some frequency bins."""
    from preprocessing.store import write_store

    rng = np.random.default_rng(seed)
    feats, rows = [], []
    for i in range(n_items):
        for c in range(n_classes):
            for k in range(clips_per_class):
                for copy in range(1 + augmented_copies):
                    for s in range(segments):
                        x = rng.normal(0, 1, shape).astype(np.float32)
                        if task_type == "classification":
                            x[:, c % shape[1]] += 2.5
                            label = f"class{c}"
                        else:
                            value = float(c + rng.uniform(0, 1))
                            x[:, 0] += value
                            label = value
                        if copy:
                            x += 100.0  # augmented rows are recognisable by construction
                        feats.append(x)
                        clip = f"item{i}/c{c}_{k}" + (f"#aug{copy}" if copy else "")
                        row = {"item": f"item{i}", "label": label, "clip": clip,
                               "source": f"item{i}_c{c}_{k}.wav", "start": 0.5 * s,
                               "augmented": bool(copy)}
                        if split is not None:
                            row["split"] = split(i)
                        rows.append(row)
    return write_store(Path(data_dir) / name, np.stack(feats), pd.DataFrame(rows),
                       task_type=task_type, overwrite=True)


def write_script(folder, body, *, name="exp_test.py"):
    """Writes an experiment script into `folder` and returns its path."""
    path = Path(folder) / name
    path.write_text(textwrap.dedent(body))
    return path


def run_script(script, *args, env=None, timeout=600):
    """Runs a script in a fresh Python process (the repository on its path, for scripts that
    import `tests`); returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT),
                                                           full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=Path(script).parent)


def run_here(main, *args, cwd=None, argv0=None):
    """Runs a command line's `main(argv)` in this process, as a user's shell would run it in a
    fresh one: in `cwd`, its stdout and stderr captured, its exit code returned (a
    `SystemExit` included), `os.environ` and `sys.argv` as they were afterwards.

    For the tests of what a command does (its files, its lines, its exit code); a fresh
    Python costs ~5 s of CPU to import Keras and torch, paid once here. The tests of the
    process itself (a traceback never reaches the user, the backend a process chooses, a
    signal, a fresh install) run the real command line (`run_script`, `subprocess`), and
    every command line keeps at least one such test.

    Args:
        main: the command line's entry point (`xval.cli.main.main`,
            `xval.cli.preprocess.main`, an experiment's `main`).
        *args: its arguments (paths are turned into strings).
        cwd: the working directory of the call. Defaults to the current one.
        argv0: `sys.argv[0]` during the call (an experiment script's path: its run records
            `python <script> ...` as when the script runs). Defaults to `"python"`.

    Returns:
        A `subprocess.CompletedProcess` (`returncode`, `stdout`, `stderr`).
    """
    import contextlib
    import io

    args = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    environ, argv = dict(os.environ), sys.argv
    sys.argv = [str(argv0 or "python"), *args]
    try:
        with contextlib.chdir(cwd or os.getcwd()), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exit_:
                code = exit_.code
    finally:
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)
    if code is not None and not isinstance(code, int):  # sys.exit("message")
        err.write(f"{code}\n")
        code = 1
    return subprocess.CompletedProcess([argv0 or "python", *args], code or 0, out.getvalue(),
                                       err.getvalue())


def run_script_here(script, *args, cwd=None):
    """Runs an experiment script's command line in this process (`run_here` of its
    `experiment.main`), in the script's folder as `run_script` does: for the tests of what
    a run does (resume, conflicts, the files, the exit code), not of the process it runs in.
    The script is read as `python -m xval config` reads one (`load_experiment`), so a
    declaration that fails raises here instead of exiting 2: `run_script` tests that.

    Args:
        script: the experiment script.
        *args: its command line.
        cwd: the working directory. Defaults to the script's folder.

    Returns:
        A `subprocess.CompletedProcess` (`returncode`, `stdout`, `stderr`).
    """
    from xval.cli.scripts import load_experiment

    script = Path(script)
    experiment = load_experiment(script)
    return run_here(experiment.main, *args, cwd=cwd or script.parent, argv0=script)


# The command lines `python -m NAME` runs: their `main(argv)`.
_MAINS = {"xval": "xval.cli.main", "preprocessing": "xval.cli.preprocess",
          "augmentation": "xval.cli.augment"}


def python_here(*args, cwd=None):
    """`python ARGS` run in this process, for the tests of what a command does: `-m xval
    ...`, `-m preprocessing ...` and `-m augmentation ...` call that command line's
    `main` (`run_here`); `SCRIPT ...` an experiment script's (`run_script_here`).

    Returns:
        A `subprocess.CompletedProcess` (`returncode`, `stdout`, `stderr`).
    """
    import importlib

    args = [str(a) for a in args]
    if args[0] == "-m":
        main = importlib.import_module(_MAINS[args[1]]).main
        return run_here(main, *args[2:], cwd=cwd)
    script = Path(cwd or os.getcwd(), args[0])
    return run_script_here(script, *args[1:], cwd=cwd)


def run_script_in_terminal(script, *args, env=None, timeout=600):
    """Runs a script with its stderr on a pseudo-terminal (as in an interactive shell, where
    the progress bar is drawn) and its stdout on a pipe.

    Returns:
        `(returncode, stdout, stderr)`.
    """
    import fcntl
    import pty
    import struct
    import termios

    main_fd, terminal_fd = pty.openpty()
    # A terminal of 40 rows x 160 columns (a new pseudo-terminal has 0 columns, and a bar
    # sized to its terminal would be drawn 0 characters wide).
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    chunks = []

    def read():
        while True:
            try:
                data = os.read(main_fd, 65536)
            except OSError:  # the terminal side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc = subprocess.Popen([sys.executable, str(script), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=terminal_fd, text=True,
                            env={**os.environ, **(env or {})}, cwd=Path(script).parent)
    os.close(terminal_fd)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    finally:
        reader.join(timeout=10)
        os.close(main_fd)
    return proc.returncode, stdout, b"".join(chunks).decode(errors="replace")


class OutputWatcher:
    """Reads a running process's stdout in a thread, so that a test can act the moment a line
    appears (a fold under way) instead of sleeping a fixed time.

    Args:
        proc: a `subprocess.Popen` started with `stdout=subprocess.PIPE, text=True` (and
            `python -u`, so that its lines are not held in a buffer).
    """

    def __init__(self, proc):
        self.proc = proc
        self._lines = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._lines.append(None)  # end of output
            self._changed.notify_all()

    def wait_for(self, pattern, *, timeout=300):
        """Waits until a line matches the regular expression `pattern`.

        Raises:
            AssertionError: when the output ends or `timeout` seconds pass first (with the
                output so far).
        """
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    assert line is not None, f"{pattern!r} never appeared:\n{self.text()}"
                    if re.search(pattern, line):
                        return line
                seen = len(self._lines)
                left = deadline - time.monotonic()
                assert left > 0, f"{pattern!r} not seen in {timeout} s:\n{self.text()}"
                self._changed.wait(left)

    def text(self):
        """The output read so far."""
        return "".join(line for line in self._lines if line is not None)

    def finish(self, timeout=600):
        """Waits for the process and the reader; returns the whole output."""
        self.proc.wait(timeout=timeout)
        self._thread.join(timeout=timeout)
        return self.text()


@pytest.fixture(scope="session")
def onnx_python(tmp_path_factory):
    """The Python of a virtual environment with only onnxruntime and numpy (the versions of
    constraints.txt): the project is not importable there. Made once per test process."""
    import subprocess
    import sys

    venv = tmp_path_factory.mktemp("onnx_venv") / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-compile", "--only-binary=:all:",
         "--disable-pip-version-check", "-c", ROOT / "constraints.txt", "onnxruntime",
         "numpy"], capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    absent = subprocess.run([python, "-c", "import xval"], capture_output=True, env=env,
                            cwd=venv)
    assert absent.returncode != 0  # the project is not there
    return python


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def config_path(tmp_path):
    return write_config(tmp_path)


@pytest.fixture
def config(config_path):
    from xval.config.loader import load_config

    return load_config(config_path)


@pytest.fixture
def store(config):
    return tiny_store(config.data_dir)


@pytest.fixture
def scenes(tmp_path):
    """An annotated detection folder (`synth-scenes`): four 6 s recordings at 8 kHz, one per
    background type (each type an item, `items.csv`), 2 or 3 events each."""
    from preprocessing.synth_scenes import synth_scenes

    out = tmp_path / "scenes"
    synth_scenes(out, files_per_type=1, seconds=6.0, events_min=2, events_max=3,
                 sample_rate=8000, types=["rain", "wind", "fire", "machine"], seed=5)
    return out


# What each test costs, recorded by the last full run of `make durations`: one line per test
# that took `RECORDED_FROM` CPU-seconds or more, its CPU seconds (the test process's and those
# of the processes it waited for: a machine busy with other work moves them little) and its
# wall seconds. Two uses:
# - the order of the files: `make test` gives each file to one of three workers in
#   collection order (`--dist loadgroup`, below), so the costliest files start first and the
#   cheap ones fill in at the end, and the workers end together;
# - the inner loop: a test recorded at `FAST_CPU` CPU-seconds or `FAST_WALL` wall seconds or
#   more is `slow` (as is one marked so, and every test that starts Ray), which `make
#   test-fast` leaves out.
# A test not in the file (new, or under `RECORDED_FROM`) counts as cheap until the next record.
DURATIONS = ROOT / "tests" / "durations.txt"
RECORDED_FROM = 0.5
FAST_CPU = 1.0
FAST_WALL = 10.0


_CONFIG = []
"""The session's pytest config (`pytest_configure`)."""


def pytest_configure(config):
    _CONFIG[:] = [config]
    if not hasattr(config, "workerinput"):  # the controller, before its workers start
        _compile_librosa_kernels()


def _compile_librosa_kernels():
    """In a fresh environment (numba's cache of librosa's kernels empty), compiles them once
    here, before the workers start: each process of the suite's first minute compiled them
    otherwise (`librosa.stft`: about 12 s of CPU apiece). Nothing to do once cached (in
    librosa's folder, `NUMBA_CACHE_DIR`, or numba's folder per user where librosa's is
    read-only); a librosa that fails to import fails its tests, not this."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("librosa")
    if spec is None or spec.origin is None:
        return
    places = [Path(os.environ["NUMBA_CACHE_DIR"])] if os.environ.get("NUMBA_CACHE_DIR") \
        else [Path(spec.origin).parent, Path.home() / ".cache" / "numba"]
    if any("librosa" in str(found) for place in places if place.is_dir()
           for found in place.rglob("*.nbi")):
        return
    try:
        import librosa
        import numpy as np

        signal = np.zeros(4096, np.float32)
        librosa.feature.melspectrogram(y=signal, sr=16000, n_fft=512)
        librosa.effects.trim(signal)
    except Exception:  # noqa: BLE001  (the tests that need it say what failed)
        return


def pytest_addoption(parser):
    parser.addoption("--record-durations", metavar="FILE", default=None,
                     help="write each test's CPU and wall seconds to FILE (`make durations`)")


def recorded_durations(path=DURATIONS):
    """`{nodeid: (cpu_seconds, wall_seconds)}` from a durations file (empty without one)."""
    out = {}
    if not Path(path).is_file():
        return out
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            cpu, wall, nodeid = line.split(maxsplit=2)
            out[nodeid] = (float(cpu), float(wall))
    return out


@pytest.hookimpl(tryfirst=True)  # before xdist names the groups (`--dist loadgroup`)
def pytest_collection_modifyitems(config, items):
    import collections
    import importlib.util

    recorded = recorded_durations()
    cost = collections.Counter()
    for item in items:
        cost[item.path.name] += recorded.get(item.nodeid, (0.0, 0.0))[0]
        if "local_ray" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)  # a test on the session's Ray is in its group
    # A stable sort: the Ray tests first (one group, see `pytest_xdist_make_scheduler`), then
    # the files, costliest first, each file's tests in their order.
    items.sort(key=lambda item: ("ray" not in item.keywords, -cost[item.path.name],
                                 item.path.name))
    has_tf = importlib.util.find_spec("tensorflow") is not None
    for item in items:
        if "tensorflow" in item.keywords and not has_tf:
            item.add_marker(pytest.mark.skip(reason="tensorflow is not installed"))
        if "ray" in item.keywords:
            item.add_marker(pytest.mark.xdist_group("ray"))
        cpu, wall = recorded.get(item.nodeid, (0.0, 0.0))
        if cpu >= FAST_CPU or wall >= FAST_WALL or "ray" in item.keywords:
            item.add_marker(pytest.mark.slow)


_STARTED = {}
"""nodeid -> (wall clock, this process's CPU, its waited-for children's CPU) at its start."""


def _cpu():
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def pytest_runtest_logstart(nodeid, location):
    _STARTED[nodeid] = (time.monotonic(), *_cpu())


def _record_path(config):
    """Where this process writes its records (a part per xdist worker), or `None`."""
    target = config.getoption("--record-durations")
    if target is None:
        return None
    worker = getattr(config, "workerinput", {}).get("workerid")
    return Path(f"{target}.{worker}.part" if worker else f"{target}.main.part")


def pytest_sessionfinish(session):
    target = session.config.getoption("--record-durations")
    if target is None or hasattr(session.config, "workerinput"):
        return  # a worker: its part is written test by test
    lines = []
    for part in sorted(Path(target).parent.glob(Path(target).name + ".*.part")):
        lines += part.read_text().splitlines()
        part.unlink()
    rows = sorted((tuple(line.split(maxsplit=2)) for line in lines),
                  key=lambda row: (-float(row[0]), row[2]))
    Path(target).write_text(
        "# CPU seconds (the test process's and the processes it waited for), wall seconds,\n"
        f"# test: every test of {RECORDED_FROM} CPU-s or more in the last full run (`make "
        "durations`).\n"
        + "".join(f"{cpu:>8} {wall:>8} {nodeid}\n" for cpu, wall, nodeid in rows))


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` (`make test`): each file's tests on one worker, as `loadfile`
    (a module's fixtures built once), and every test marked `ray` on one worker, one after
    another: they share one local Ray (`local_ray`), whose start and worker processes cost
    seconds of CPU each, instead of starting several at once beside the other tests."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FilesAndGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid):
            if nodeid.rfind("@") > nodeid.rfind("]"):
                return nodeid.split("@")[-1]
            return nodeid.split("::", 1)[0]

    return FilesAndGroups(config, log)


@pytest.fixture
def local_ray():
    """One local Ray for the tests of a session that run the Ray executor in this process
    (`RayExecutor` joins a Ray already initialised and leaves it running): its start-up and
    its warm workers are paid once, by the Ray group's first test; it stops after the group's
    last (`pytest_runtest_teardown`: an idle Ray costs ~3 % of a core for the rest of the
    session). Returns its address, for experiment scripts run as processes
    (`--ray-address`)."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    return ray.get_runtime_context().gcs_address


def pytest_runtest_teardown(item, nextitem):
    """Stops the session's Ray (`local_ray`) after the last test of the Ray group: the group
    runs as one block on one worker (`pytest_collection_modifyitems`)."""
    if "ray" in item.keywords and (nextitem is None or "ray" not in nextitem.keywords):
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()


# Every fold starts with a full `gc.collect()` (`xval.training.prepare.collect_garbage`): in a
# test process that has imported Keras, torch and TensorFlow (~720,000 objects) each one cost
# ~0.4 s of CPU, several hundred times a session. The objects that importing them made live as
# long as the process, so after each test that imported many modules (one full collection
# first), they move to the collector's permanent generation (`gc.freeze()`): later
# collections skip them (0.4 s -> under 1 ms) and still collect everything made afterwards.
# A session of many tests (`make test`'s workers) imports Keras (and torch, its backend here)
# before the first test and freezes it, as a job process does before its first job
# (`xval.executors.job_process.settle`): the first
# test that trains would otherwise run its folds' collections over them (0.4-0.6 s each, in
# every worker). A session of a few tests imports it when a test first does.
_MODULES_FROZEN = [0]
_PRELOAD_FROM = 100


def pytest_collection_finish(session):
    if len(session.items) < _PRELOAD_FROM or session.config.option.collectonly:
        return
    from xval.core.backend import import_paused

    import_paused("keras")
    gc.collect()
    gc.freeze()
    _MODULES_FROZEN[0] = len(sys.modules)


def pytest_runtest_logfinish(nodeid, location):
    started = _STARTED.pop(nodeid, None)
    path = _record_path(_CONFIG[0]) if _CONFIG else None
    if started is not None and path is not None:
        wall = time.monotonic() - started[0]
        cpu = sum(_cpu()) - started[1] - started[2]
        if cpu >= RECORDED_FROM:
            with open(path, "a") as part:
                part.write(f"{cpu:.2f} {wall:.1f} {nodeid.split('@')[0]}\n")
    if len(sys.modules) - _MODULES_FROZEN[0] > 200:
        gc.collect()
        gc.freeze()
        _MODULES_FROZEN[0] = len(sys.modules)
