"""Options that do not apply are refused before anything runs: the rules for GPU ids,
executor options, budgets and MLflow targets. The command-line cases run a real experiment
script with `--dry-run`: its command line in this process (`run_script_here`), and the GPU
case, whose ids become the process's environment, in a subprocess."""

import math
import os
import re
import sys

import pytest

from tests.conftest import ROOT, run_script, run_script_here, write_config, write_script
from xval.config.space import Float, Search
from xval.core.errors import ConfigurationError
from xval.report.tracking import tracking_uri
from xval.running import environment
from xval.running.environment import check_gpus_visible

BASE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "c1", "comment_2": "c2",
        "hidden_units": 8, "num_layers": 1, "epochs": 2, "batch_size": 16}
SCRIPT = """
from xval import Experiment, Float, Search
experiment = Experiment(description="cli", dataset="tiny", number=1,
                        config={config!r}, num_folds=3)
experiment[1] = {base!r}
experiment.search = Search(base={base!r}, space={{"dropout_rate": Float(0.0, 0.5)}},
                           n_trials=2)
if __name__ == "__main__":
    experiment.main()
"""

CASES = [
    (["--search", "--timeout", "nan"], "--timeout nan: expected a finite number > 0"),
    (["--search", "--timeout", "inf"], "--timeout inf: expected a finite number > 0"),
    (["--search", "--timeout", "-5"], "--timeout -5.0: expected a finite number > 0"),
    (["--gpus", "0,0", "--executor", "process"], "GPU 0 is given twice"),
    (["--gpus", "1", "--executor", "inline"], "is for --executor process or ray"),
    (["--mlflow=://bad"], "neither a folder nor a tracking URI"),
    (["--mlflow=ftp://host/x"], "unknown tracking URI scheme 'ftp'"),
    (["--mlflow", "1"], "looks like an instance number"),
]


@pytest.mark.parametrize(("args", "match"), CASES)
def test_options_that_do_not_apply_are_one_line_errors(args, match, tmp_path, config_path,
                                                       store):
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path), base=BASE))
    proc = run_script_here(script, *args, "--dry-run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:") and match in proc.stderr, proc.stderr
    assert not (tmp_path / ":").exists() and not (tmp_path / "1").exists()


# (GPUs the machine shows, ids asked for, what happens)
GPU_RULES = [
    (0, ["0"], []),  # no GPU: the CPU, one line says so
    (0, ["99"], []),
    (2, ["0", "1"], ["0", "1"]),
    (2, ["-1"], []),
    (2, ["2"], "not a visible GPU"),
    (2, ["0", "5"], "5: not a visible GPU"),
    (2, ["1", "1"], "given twice"),
    (0, ["3", "3"], "given twice"),
]


@pytest.mark.parametrize(("count", "ids", "expected"), GPU_RULES)
def test_gpu_rule(tmp_path, monkeypatch, count, ids, expected):
    driver = tmp_path / "gpus"
    driver.mkdir()
    for k in range(count):
        (driver / f"0000:0{k}:00.0").mkdir()
    monkeypatch.setattr(environment, "NVIDIA_DRIVER_GPUS", driver)
    lines = []
    if isinstance(expected, str):
        with pytest.raises(ConfigurationError, match=expected):
            check_gpus_visible(ids, "--gpus", lines.append)
        return
    assert check_gpus_visible(ids, "--gpus", lines.append) == expected
    cpu_only = count == 0 and ids != ["-1"]
    assert len(lines) == int(cpu_only)
    if cpu_only:
        assert "no GPU is visible on this machine; running on the CPU" in lines[0]


def test_gpu_count_takes_the_first_source_that_can_say(tmp_path, monkeypatch):
    """The driver's folder, NVML, `nvidia-smi -L`, then the backend's own count: each
    source faked absent in turn, the next one answers (issue 53: WSL2 has no driver
    folder, and a GPU there was taken for none)."""
    calls = []

    def source(name, value):
        def count(*args):
            calls.append(name)
            return value
        return count

    monkeypatch.setattr(environment, "NVIDIA_DRIVER_GPUS", tmp_path / "absent")
    monkeypatch.setattr(environment, "_nvml_count", source("nvml", 3))
    monkeypatch.setattr(environment, "_smi_count", source("smi", 2))
    monkeypatch.setattr(environment, "_backend_count", source("backend", 1))
    assert environment.visible_gpu_count() == 3 and calls == ["nvml"]
    monkeypatch.setattr(environment, "_nvml_count", source("nvml", None))
    calls.clear()
    assert environment.visible_gpu_count() == 2 and calls == ["nvml", "smi"]
    monkeypatch.setattr(environment, "_smi_count", source("smi", None))
    calls.clear()
    assert environment.visible_gpu_count("jax") == 1 and calls == ["nvml", "smi", "backend"]
    monkeypatch.setattr(environment, "_backend_count", source("backend", None))
    assert environment.visible_gpu_count() == 0  # nothing can say: no GPU
    (tmp_path / "gpus" / "0000:01:00.0").mkdir(parents=True)  # the driver's folder first
    monkeypatch.setattr(environment, "NVIDIA_DRIVER_GPUS", tmp_path / "gpus")
    calls.clear()
    assert environment.visible_gpu_count() == 1 and calls == []


def test_a_process_executor_without_a_named_gpu_inherits_one_where_the_machine_has_it(
        tmp_path, monkeypatch):
    """No GPU named on a machine with one: the workers inherit it, so they are told to share
    it (`inherited_gpu`), from the sources that start no process; none on a CPU machine,
    or where CUDA_VISIBLE_DEVICES hides every GPU."""
    from xval.config.loader import load_config
    from xval.executors.base import Execution
    from xval.running.runner import executor_for

    config = load_config(write_config(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(environment, "_backend_count", lambda *a: 1 / 0)  # never asked
    monkeypatch.setattr(environment, "_nvml_count", lambda: None)
    monkeypatch.setattr(environment, "_smi_count", lambda: 1)
    monkeypatch.setattr(environment, "NVIDIA_DRIVER_GPUS", tmp_path / "absent")
    assert executor_for(Execution("process"), config, None, "jax").inherited_gpu
    named = executor_for(Execution("process"), config, "0", "jax")
    assert not named.inherited_gpu  # named: its own
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not environment.gpu_present()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(environment, "_smi_count", lambda: None)
    nothing = executor_for(Execution("process"), config, None, "jax")
    assert not nothing.inherited_gpu  # nothing says


def test_gpu_count_sources_read_what_their_tools_print(monkeypatch, tmp_path):
    """`nvidia-smi -L` lines, and the backend's count in a fresh process with every GPU of
    the machine visible (here: the CPU build of torch, 0)."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)'\n"
                   "echo 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-2)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert environment._smi_count() == 2
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert environment._smi_count() is None  # fails: the next source
    environment._backend_count.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert environment._backend_count("torch") == 0
    assert environment._backend_count("theano") is None


def test_a_cpu_slot_hides_every_gpu(monkeypatch):
    """A run that asked for GPUs none of which is visible runs on CPU slots that hide every
    GPU (`CUDA_VISIBLE_DEVICES=""`), so a GPU the sources missed is never used unasked."""
    from xval.executors.base import Execution
    from xval.executors.process import ProcessExecutor
    from xval.running.runner import executor_for

    monkeypatch.setattr(environment, "visible_gpu_count", lambda backend=None, note=None: 0)
    from xval.config.loader import load_config

    config = load_config(ROOT / "config.ini")
    executor = executor_for(Execution("process", gpus=["0", "1"]), config, None, "torch")
    assert isinstance(executor, ProcessExecutor) and executor._slots == ["-1"]
    assert executor._environment("-1")["CUDA_VISIBLE_DEVICES"] == ""
    assert executor_for(Execution("process", gpus=["-1"]), config, None, "torch")._slots == ["-1"]


def test_gpu_on_a_machine_without_one_says_it_runs_on_cpu(tmp_path, config_path, store):
    if environment.visible_gpu_count():
        pytest.skip("this machine has a GPU")
    script = write_script(tmp_path, SCRIPT.format(config=str(config_path), base=BASE))
    proc = run_script(script, "1", "1", "99", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "GPU 99: no GPU is visible on this machine; running on the CPU" in proc.stderr


@pytest.mark.parametrize("target, match", [
    ("://bad", "neither a folder nor"),
    ("", "neither a folder nor"),
    (":x", "neither a folder nor"),
    ("gopher://x", "unknown tracking URI scheme"),
    ("7", "instance number"),
])
def test_mlflow_target_rule(target, match):
    with pytest.raises(ConfigurationError, match=match):
        tracking_uri(target)


def test_mlflow_target_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigurationError, match="is a file, not a folder"):
        tracking_uri(tmp_path / "f")
    assert tracking_uri("sqlite:///x.db") == ("sqlite:///x.db", None)
    assert tracking_uri(tmp_path / "runs")[1] == tmp_path / "runs" / "artifacts"


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -1.0, 0, True, "10"])
def test_search_timeout_is_finite_seconds(timeout):
    search = Search(base=dict(BASE), space={"dropout_rate": Float(0.0, 0.5)}, timeout=timeout)
    with pytest.raises(ConfigurationError, match="timeout="):
        search.check(lambda *a: {})


def _closed_port():
    """A local port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_mlflow_and_ray_addresses_are_one_clear_error_at_once():
    """Issue 25: an MLflow server or Ray cluster that does not answer is refused within
    seconds, naming the address, instead of minutes of silent retries."""
    from xval.core.network import check_reachable, host_port
    from xval.executors.ray import RayExecutor
    from xval.report.tracking import MLflowListener

    port = _closed_port()
    with pytest.raises(ConfigurationError, match=rf"MLflow tracking server at "
                                                 rf"'http://127.0.0.1:{port}' cannot be reached"):
        MLflowListener(f"http://127.0.0.1:{port}").connect()
    with pytest.raises(ConfigurationError, match=rf"Ray cluster at '127.0.0.1:{port}' cannot "
                                                 r"be reached .*ray start --head"):
        RayExecutor(address=f"127.0.0.1:{port}").start()
    assert host_port("auto") is None and host_port("ray://head:10001") == ("head", 10001)
    assert host_port("http://server", default_port=80) == ("server", 80)
    check_reachable("auto", "Ray", "")  # not a network address: nothing to check


def _only_source(monkeypatch, tmp_path, answering, count):
    """Every discovery source absent but `answering`, which counts `count` GPUs."""
    absent = {"driver": None, "nvml": None, "smi": None, "backend": None}
    monkeypatch.setattr(environment, "NVIDIA_DRIVER_GPUS", tmp_path / "absent")
    if answering == "driver":
        for k in range(count):
            (tmp_path / "gpus" / f"0000:0{k}:00.0").mkdir(parents=True)
        monkeypatch.setattr(environment, "NVIDIA_DRIVER_GPUS", tmp_path / "gpus")
    values = {**absent, answering: count}
    monkeypatch.setattr(environment, "_nvml_count", lambda: values["nvml"])
    monkeypatch.setattr(environment, "_smi_count", lambda: values["smi"])
    monkeypatch.setattr(environment, "_backend_count", lambda *a: values["backend"])


@pytest.mark.parametrize("source", ["driver", "nvml", "smi", "backend"])
def test_gpu_ids_index_the_gpus_an_inherited_cuda_visible_devices_lists(tmp_path, monkeypatch,
                                                                         source):
    """Issue 63: a scheduler's `CUDA_VISIBLE_DEVICES=2,3` on a 4-GPU machine: GPU 0 is the
    machine's 2, GPU 1 its 3, GPU 2 is refused naming the list; UUIDs and MIG ids are kept
    as they are; `CUDA_DEVICE_ORDER` goes to the workers untouched. Each discovery source
    faked as the one that answers."""
    from xval.config.loader import load_config
    from xval.core.backend import backend_environment
    from xval.executors.base import Execution
    from xval.running import cuda_build
    from xval.running.runner import executor_for

    _only_source(monkeypatch, tmp_path, source, 4)
    monkeypatch.setattr(cuda_build, "cpu_only_build", lambda backend: "")  # a CUDA build
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    assert environment.visible_gpu_count() == 2 and environment.gpu_present() == (
        source != "backend")  # the backend's count is not a cheap source
    assert check_gpus_visible(["0", "1"], "--gpus", print) == ["0", "1"]
    with pytest.raises(ConfigurationError, match=r"--gpus 2: not a visible GPU; this process "
                                                 r"may use 2 GPU\(s\) \(CUDA_VISIBLE_DEVICES="
                                                 r"'2,3' inherited: ids 0\.\.1\)"):
        check_gpus_visible(["2"], "--gpus", print)
    executor = executor_for(Execution("process", gpus=["1", "0"]),
                            load_config(ROOT / "config.ini"), None, "torch")
    worker = executor._environment(executor._slots[0])
    assert (worker["CUDA_VISIBLE_DEVICES"], worker["CUDA_DEVICE_ORDER"]) == ("3", "PCI_BUS_ID")
    assert executor._environment(executor._slots[1])["CUDA_VISIBLE_DEVICES"] == "2"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f2a, MIG-5c1e/1/0")
    assert environment.visible_gpu_count() == 2
    assert backend_environment("torch", "1")["CUDA_VISIBLE_DEVICES"] == "MIG-5c1e/1/0"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,7,0")  # CUDA stops at 7: not on the machine
    assert environment.visible_gpu_count() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    lines = []
    assert check_gpus_visible(["0"], "GPU", lines.append) == [] and not environment.gpu_present()
    assert lines == ["warning: GPU 0: no GPU is visible to this process (CUDA_VISIBLE_DEVICES="
                     "'' inherited); running on the CPU."]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert environment.visible_gpu_count() == 4  # none inherited: the machine's


def test_gpu_id_of_a_run_becomes_the_inherited_entry_it_indexes(tmp_path):
    """The real discovery and `prepare_process` in a fresh process (Keras not imported), a
    fake `nvidia-smi` showing 4 GPUs: `CUDA_VISIBLE_DEVICES=2,3` inherited, the run's GPU 1
    is the machine's 3, and asking again in the same process still indexes the inherited
    list."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + "".join(f"echo 'GPU {k}: NVIDIA H100 (UUID: GPU-{k})'\n"
                                           for k in range(4)))
    smi.chmod(0o755)
    code = ("import os\nfrom xval.running import cuda_build\n"
            "from xval.running.environment import prepare_process\n"
            "cuda_build.cpu_only_build = lambda backend: ''  # a CUDA build of torch\n"
            "print(prepare_process('torch', 1, print), os.environ['CUDA_VISIBLE_DEVICES'])\n"
            "print(prepare_process('torch', 0, print), os.environ['CUDA_VISIBLE_DEVICES'])\n")
    script = write_script(tmp_path, code)
    proc = run_script(script, env={"PATH": f"{tmp_path}:{os.environ['PATH']}",
                                   "CUDA_VISIBLE_DEVICES": "2,3", "KERAS_BACKEND": "torch"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["('1', 'torch') 3", "('0', 'torch') 2"]


def test_gpu_discovery_takes_a_source_that_answers_garbage_for_none(tmp_path, monkeypatch):
    """Issue 64: a fake or broken `nvidia-smi` printing bytes that are not UTF-8 stopped the
    dry run with "save it as UTF-8"; it is passed over (the next source answers), with one
    line under `-v` naming it."""
    smi = tmp_path / "nvidia-smi"
    smi.write_bytes(b"#!/bin/sh\nprintf 'GPU 0: \\377\\376 broken\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(environment, "NVIDIA_DRIVER_GPUS", tmp_path / "absent")
    monkeypatch.setattr(environment, "_nvml_count", lambda: None)
    monkeypatch.setattr(environment, "_backend_count", lambda *a: 1)
    assert "printed bytes that are not UTF-8" in environment._smi_count()
    lines = []
    assert environment.visible_gpu_count(note=lines.append) == 1
    assert lines == [f"GPU discovery: `nvidia-smi -L` ({smi}) printed bytes that are not "
                     "UTF-8; taken for no answer, the next source asked."]
    assert check_gpus_visible(["0"], "GPU", print) == ["0"]  # said nowhere without -v
    smi.write_text("#!/bin/sh\necho 'all fine'\n")
    assert "printed no `GPU <n>:` line ('all fine')" in environment._smi_count()


def test_gpu_asked_for_with_a_cpu_only_backend_is_refused_with_the_cuda_install(
        tmp_path, monkeypatch):
    """Issue 64: `exp.py 2 2 0` with the CPU torch of `make install` and a GPU visible trained
    on the CPU, said only in `fold_<i>.json`; it is refused before anything runs, with the
    install line of a CUDA build (read from the installed files: this machine's torch,
    TensorFlow and JAX are CPU builds). A CUDA build is accepted; -1 is the CPU."""
    import torch

    from xval.running import cuda_build
    from xval.running.environment import prepare_process

    _only_source(monkeypatch, tmp_path, "smi", 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    version = torch.__version__.split("+")[0]
    with pytest.raises(ConfigurationError, match=rf"^GPU 0: the torch installed here "
                                                 rf"\({re.escape(torch.__version__)}\) is a "
                                                 r"CPU-only build, so it would train on the "
                                                 r"CPU although 1 GPU\(s\) are visible\. For "
                                                 r"the GPU, install a CUDA build: pip install "
                                                 rf"--force-reinstall \"torch=={version}\""):
        prepare_process("torch", 0, print)
    monkeypatch.delitem(sys.modules, "torch")  # read from its files instead
    assert cuda_build._torch_cpu_only() is True
    monkeypatch.setitem(sys.modules, "torch", torch)
    for backend, words in (("tensorflow", "pip install \"tensorflow[and-cuda]\""),
                           ("jax", "pip install \"jax[cuda12]\"")):
        with pytest.raises(ConfigurationError, match=re.escape(words)):
            check_gpus_visible(["0"], "--gpus", print, backend, build=True)
    assert check_gpus_visible(["0"], "--gpus", print, "torch") == ["0"]  # a Ray cluster's own
    monkeypatch.setattr(torch.version, "cuda", "12.4")  # a CUDA build
    assert check_gpus_visible(["0"], "GPU", print, "torch", build=True) == ["0"]


@pytest.mark.slow  # two short JAX processes
def test_xla_flags_that_xla_refuses_are_named_before_anything_moves(monkeypatch):
    """An unknown flag in `XLA_FLAGS` ended the run with XLA's native line once JAX started,
    after `--overwrite` had set the previous results aside: now refused first, with XLA's
    words; a flag XLA knows passes; other backends are not checked."""
    check = environment.check_xla_flags
    monkeypatch.setenv("XLA_FLAGS", "--xla_nonsense_flag=1")
    check.cache_clear()
    with pytest.raises(ConfigurationError, match=r"XLA_FLAGS = '--xla_nonsense_flag=1': XLA "
                       r"does not start with it \(Unknown flag in XLA_FLAGS: "
                       r"--xla_nonsense_flag=1\); fix the flag or unset XLA_FLAGS\."):
        check("jax")
    check("torch")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    check.cache_clear()
    check("jax")
    check.cache_clear()


def test_jax_platforms_is_checked_before_training(monkeypatch):
    """`JAX_PLATFORMS` that would fail every fold (a name that is not a platform; `cuda`
    where no GPU is visible: a bare AssertionError from `jax.devices()`) is refused before
    anything trains, without starting JAX; other backends do not read it."""
    monkeypatch.setattr(environment, "gpu_present", lambda note=None: False)
    monkeypatch.setattr(environment.os.path, "exists",
                        lambda path, real=os.path.exists: False if path == "/dev/kfd"
                        else real(path))
    monkeypatch.setenv("JAX_PLATFORMS", "nonsense")
    with pytest.raises(ConfigurationError) as raised:
        environment.check_jax_platforms("jax")
    assert str(raised.value) == (
        "JAX_PLATFORMS = 'nonsense': 'nonsense' is not a platform; expected a comma list of "
        "cpu, cuda, gpu, rocm, tpu, metal (lower-case); unset JAX_PLATFORMS, or set it to cpu.")
    environment.check_jax_platforms("torch")  # not read on torch
    for value in ("cuda", "cpu,gpu", "rocm"):
        monkeypatch.setenv("JAX_PLATFORMS", value)
        with pytest.raises(ConfigurationError) as raised:
            environment.check_jax_platforms("jax")
        platform = value.split(",")[-1]
        assert str(raised.value) == (
            f"JAX_PLATFORMS = {value!r}: {platform} needs a GPU, and no GPU is visible here; "
            "unset JAX_PLATFORMS, or set it to cpu.")
    for value in ("cpu", "", "cpu,tpu"):
        monkeypatch.setenv("JAX_PLATFORMS", value)
        environment.check_jax_platforms("jax")
    monkeypatch.setattr(environment, "gpu_present", lambda note=None: True)
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    environment.check_jax_platforms("jax")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # every GPU hidden
    with pytest.raises(ConfigurationError, match="cuda needs a GPU, and no GPU is visible"):
        environment.check_jax_platforms("jax")


def test_a_jax_platform_that_cannot_start_is_named(monkeypatch):
    """In a fold, JAX failing to start `JAX_PLATFORMS`'s platforms (its bare AssertionError)
    is an error naming the variable and the fix."""
    import types

    from xval.training import devices

    def devices_failing():
        raise AssertionError

    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(devices=devices_failing))
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    with pytest.raises(ConfigurationError) as raised:
        devices.first_jax_device()
    assert str(raised.value) == (
        "JAX_PLATFORMS = 'cuda': JAX could not start it (AssertionError); unset JAX_PLATFORMS, "
        "or set it to platforms this machine has (cpu).")
    monkeypatch.delenv("JAX_PLATFORMS")
    with pytest.raises(AssertionError):
        devices.first_jax_device()
