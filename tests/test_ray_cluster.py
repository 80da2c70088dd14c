"""A real two-node Ray cluster on this machine: a node lost mid-run, and the preflight check
that refuses a node without the store."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import run_script, write_script
from tests.test_executors import BASE_SPEC, HAS_RAY
from xval import Experiment, Output

pytestmark = pytest.mark.ray  # one worker runs the Ray tests (tests/conftest.py)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raylets(temp_dir):
    """PIDs of the raylets (one per node) of the cluster whose temporary folder is given."""
    out = subprocess.run(["pgrep", "-f", f"raylet/raylet --raylet_socket_name={temp_dir}"],
                         capture_output=True, text=True)
    return {int(pid) for pid in out.stdout.split()}


@pytest.fixture
def ray_cluster(monkeypatch):
    """Starts `ray start --head` (1 CPU) and yields `(address, add_node)`; `add_node(prefix)`
    runs `ray start --address` (1 CPU) behind an optional command prefix and returns the new
    node's raylet PID. Afterwards every process of this cluster, and only of this cluster
    (found by its own temporary folder), is killed: other Ray instances on the machine are
    left alone, so `ray stop` is never used."""
    import shutil
    import tempfile

    if not HAS_RAY:
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    ray_bin = str(__import__("pathlib").Path(sys.executable).parent / "ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="xr", dir="/tmp")  # short: Ray's socket paths
    common = ["--num-cpus=1", "--disable-usage-stats"]
    # Ray >= 2.59 authenticates local clusters with a token (~/.ray/auth_token) that every
    # node and the driver must use.
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    env = {**os.environ, "RAY_health_check_period_ms": "1000",
           "RAY_health_check_failure_threshold": "3"}
    subprocess.run([ray_bin, "get-auth-token", "--generate"], capture_output=True, env=env)

    def ours():
        found = subprocess.run(["pgrep", "-f", temp_dir], capture_output=True, text=True)
        return {int(pid) for pid in found.stdout.split()}

    head = subprocess.run([ray_bin, "start", "--head", f"--port={port}",
                           f"--temp-dir={temp_dir}", "--include-dashboard=false", *common],
                          capture_output=True, text=True, env=env)
    assert head.returncode == 0, head.stdout + head.stderr

    def add_node(prefix=()):
        before = _raylets(temp_dir)
        node = subprocess.run([*prefix, ray_bin, "start", f"--address={address}", *common],
                              capture_output=True, text=True, env=env)
        assert node.returncode == 0, node.stdout + node.stderr
        new = _raylets(temp_dir) - before
        assert len(new) == 1, new
        return new.pop()

    try:
        yield address, add_node
    finally:
        for _ in range(3):
            for pid in ours():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        shutil.rmtree(temp_dir, ignore_errors=True)


RAY_SCRIPT = """
from xval import Experiment
experiment = Experiment(description="ray cluster", dataset="tiny", number=1, num_folds=2,
                        config={config!r})
experiment[1] = {base!r}
experiment[2] = {base2!r}
if __name__ == "__main__":
    experiment.main()
"""


@pytest.mark.slow
def test_ray_cluster_loses_a_node_and_finishes_with_inline_metrics(
        ray_cluster, tmp_path, config_path, config, store):
    address, add_node = ray_cluster
    worker_raylet = add_node()
    spec = {**BASE_SPEC, "epochs": 4}
    path = write_script(tmp_path, RAY_SCRIPT.format(config=str(config_path), base=spec,
                                                    base2={**spec, "hidden_units": 12}))
    proc = subprocess.Popen([sys.executable, str(path), "--executor", "ray", "--ray-address",
                             address], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    exp = config.results_dir / "tiny" / "experiment_1"
    deadline = time.monotonic() + 300
    while not list(exp.glob("instance_*/fold_*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.kill(worker_raylet, signal.SIGKILL)  # the second node dies mid-run
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout + stderr
    # Every fold is there, and equal to an inline run of the same experiment (run in this
    # process: a third Python start-up would prove nothing more).
    from tests.conftest import write_config
    from xval.config.loader import load_config

    inline_config = load_config(write_config(tmp_path / "inline", paths={
        "data_dir": str(config.data_dir), "results_dir": str(tmp_path / "inline" / "results")}))
    same = Experiment(description="ray cluster", dataset="tiny", number=1, num_folds=2,
                      config=str(inline_config.path))
    same[1], same[2] = spec, {**spec, "hidden_units": 12}
    inline = same.run(config=inline_config, executor="inline", output=Output(out=lambda *a: None))
    assert inline.exit_code == 0, inline
    inline_exp = inline_config.results_dir / "tiny" / "experiment_1"
    for k in (1, 2):
        for i in range(2):
            ray_fold = json.loads((exp / f"instance_{k}" / f"fold_{i}.json").read_text())
            ref = json.loads((inline_exp / f"instance_{k}" / f"fold_{i}.json").read_text())
            assert ray_fold["status"] == "ok" and ray_fold["best_epoch"] == ref["best_epoch"]
            for split in ("train", "val", "test"):
                for name in ("loss", "accuracy", "f1"):
                    assert ray_fold["metrics"][split][name] == pytest.approx(
                        ref["metrics"][split][name], abs=1e-5), (k, i, split, name)


@pytest.mark.slow
def test_ray_preflight_refuses_a_node_without_the_store(ray_cluster, tmp_path, config_path,
                                                        config, store):
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs unshare (a mount namespace) to hide the store from one node")
    address, add_node = ray_cluster
    hidden = str(config.data_dir)
    add_node(prefix=["unshare", "-m", "--propagation", "private", "sh", "-c",
                     f'mount -t tmpfs none "{hidden}" && exec "$0" "$@"'])
    path = write_script(tmp_path, RAY_SCRIPT.format(config=str(config_path), base=BASE_SPEC,
                                                    base2=BASE_SPEC))
    proc = run_script(path, "--executor", "ray", "--ray-address", address)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "The Ray cluster cannot run this experiment" in proc.stderr
    assert "dataset.json" in proc.stderr and "shared filesystem" in proc.stderr
    assert not list((config.results_dir / "tiny" / "experiment_1").glob("instance_*/fold_*"))
