"""The Ray executor: every (instance, fold) job is a Ray task, on one machine or a cluster.

Each job is a `ray.remote` task with `num_cpus` CPUs and, on a cluster with GPUs,
`1 / jobs_per_gpu` of a GPU (fractional GPUs let several small jobs share one). Jobs on CPU
reuse warm worker processes (Keras, the backend and the store already imported; the Keras
session is cleared after every job, and a worker is replaced after `WORKER_JOBS` jobs so
that what a framework keeps stays bounded); a job with a GPU runs in a fresh worker
(`max_calls=1`, Ray's own default for GPU tasks): Ray may hand a warm worker a task on
another GPU of its node, while a process's CUDA device is fixed once the framework has
started (the process executor, whose slots keep their GPU, keeps its GPU workers warm).
Jobs that share a GPU are told to share it (`sharing_environment`). Tasks whose worker or
node dies are retried elsewhere (`max_retries`); results come back to the driver, which
alone writes files; a task that ends frees its slot for the next before the driver
records its result (`refill_first`).

The cluster must see the same feature store (a shared filesystem, at the same path) and the
same project version on every node: `preflight` runs a small task on every node and refuses
the run otherwise.

Ray is optional: the `[ray]` extra (`xval.core.optional.EXTRAS`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from preprocessing.store import FeatureStore
from xval.core.backend import sharing_environment, use_backend
from xval.core.dataset_info import DatasetInfo
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.logs import quiet_framework_logs
from xval.core.network import RAY_PORT, check_reachable
from xval.core.optional import EXTRAS
from xval.core.records import FoldResult, Job
from xval.executors.base import (
    Execution,
    Executor,
    JobQueue,
    Results,
    refill_first,
    run_job,
    worker_jobs,
)
from xval.executors.registry import register

PACKAGES = ("xval", "architectures", "preprocessing", "augmentation")
# How long the preflight check waits for each node's answer (a Ray worker process must start
# there and import the project: seconds on an idle node, minutes on a saturated one).
PREFLIGHT_TIMEOUT_S = 300


def project_fingerprint() -> dict[str, str]:
    """The project's version and a hash of its source files (same code on every node)."""
    digest = hashlib.sha256()
    for name in PACKAGES:
        folder = Path(str(importlib.import_module(name).__file__)).parent
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(folder.parent)).encode())
            digest.update(path.read_bytes())
    try:
        version = importlib.metadata.version("audio-xval")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"version": version, "code_sha256": digest.hexdigest()}


def node_check(store_path: str) -> dict[str, Any]:
    """What one node sees: its host, the store's content hash, the project fingerprint."""
    info: dict[str, Any] = {"host": socket.gethostname(), **project_fingerprint(),
                            "store_hash": None, "store_error": None}
    path = Path(store_path) / "dataset.json"
    try:
        recorded = DatasetInfo.from_dict(json.loads(path.read_text()), where=str(path))
        info["store_hash"] = recorded.content_hash or None
        if not recorded.content_hash:
            info["store_error"] = f"cannot read {path}: it records no content_hash"
        elif not (Path(store_path) / "features.npy").is_file():
            info["store_error"] = f"{Path(store_path) / 'features.npy'} is missing"
    except (OSError, ValueError, DatasetError) as e:
        info["store_error"] = f"cannot read {path}: {type(e).__name__}: {e}"
    return info


def max_calls(num_gpus: float) -> int:
    """Ray's `max_calls` for a job: 1 (a fresh worker) with a GPU (see the module's
    docstring), else `worker_jobs` (`WORKER_JOBS`)."""
    return 1 if num_gpus else worker_jobs(False)


def run_job_remote(job_dict: Mapping[str, Any], backend: str | None,
                   progress: Any = None, jobs_per_gpu: int = 1
                   ) -> tuple[dict[str, Any], bytes | None]:
    """The body of a Ray task: runs one job in this worker process (fresh for a GPU job,
    warm on CPU; the job clears the Keras session when it ends).

    Args:
        job_dict: the `Job` as a dict.
        backend: the Keras backend.
        progress: a `ray.util.queue.Queue` that receives `(instance, fold, epoch, epochs,
            logs)` after every epoch, or `None`.
        jobs_per_gpu: the jobs sharing a GPU (`sharing_environment`). Defaults to `1`.

    Returns:
        `(result_dict, model_bytes)`: the `FoldResult` as a dict (`to_transport()`) and
        the best model's `.keras` bytes.
    """
    for key, value in sharing_environment(backend or os.environ.get("KERAS_BACKEND"),
                                          jobs_per_gpu).items():
        os.environ.setdefault(key, value)  # before the framework starts; the user's win
    if backend:
        use_backend(backend, source="the Ray driver", override=True)
    else:
        quiet_framework_logs(backend=backend)
    from xval.executors.job_process import mark_job_process  # noqa: PLC0415  (in the task)

    mark_job_process()  # a Ray worker runs tasks alone
    job = Job.from_dict(job_dict)
    hook = None
    if progress is not None:
        def hook(epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
            with contextlib.suppress(Exception):  # progress is best effort: never fail a fold
                progress.put_nowait((job.instance, job.fold, epoch, epochs, dict(logs)))

    result = run_job(job, hook)
    return result.to_transport(), result.model_bytes


def import_ray() -> Any:
    """Ray, or a clear error when it is not installed.

    Raises:
        ConfigurationError: when Ray is not installed.
    """
    try:
        import ray  # noqa: PLC0415  (optional: only --executor ray needs it)
    except ImportError as e:
        raise ConfigurationError(
            f"--executor ray needs Ray, which is not installed: `{EXTRAS['ray'].install}` "
            "(or `pip install 'ray[default]'`)."
        ) from e
    return ray


def node_problems(node: str, info: Mapping[str, Any], expected: Mapping[str, Any],
                  store: str) -> list[str]:
    """What is wrong with what one node sees (`node_check`), in words."""
    where = f"node {node} ({info['host']})"
    problems = []
    if info["store_error"]:
        problems.append(f"{where}: {info['store_error']}")
    elif info["store_hash"] != expected["store_hash"]:
        problems.append(f"{where}: the store at {store} has content hash "
                        f"{str(info['store_hash'])[:12]}, not {expected['store_hash'][:12]}")
    if (info["version"], info["code_sha256"]) != (expected["version"],
                                                  expected["code_sha256"]):
        problems.append(f"{where}: runs another version of the project "
                        f"({info['version']}, code {info['code_sha256'][:12]}; here "
                        f"{expected['version']}, code {expected['code_sha256'][:12]})")
    return problems


@register
class RayExecutor(Executor):
    """Runs jobs as Ray tasks.

    Args:
        address: the cluster to join: `"auto"` (a cluster started with `ray start` on this
            machine), `"HOST:PORT"`, or `None` to start a local Ray instance for this run.
            `create` takes `--ray-address`, else the `RAY_ADDRESS` environment variable.
        num_cpus: CPUs reserved by each job. Defaults to `1`.
        jobs_per_gpu: jobs sharing one GPU on clusters with GPUs (each asks for
            `1 / jobs_per_gpu` GPU). Defaults to `1`.
        max_retries: times a job is rerun when its worker or node dies. Defaults to `3`.
        backend: Keras backend of the workers.
    """

    name = "ray"
    summary = "each job a Ray task, on this machine or a cluster: see docs/scaling-out.md"

    def __init__(self, address: str | None = None, *, num_cpus: int = 1,
                 jobs_per_gpu: int = 1, max_retries: int = 3,
                 backend: str | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.jobs_per_gpu = jobs_per_gpu
        self.max_retries = max_retries
        self.backend = backend
        self._ray: Any = None
        self._started_here = False
        self._slots = 1
        self._num_gpus = 0.0

    @classmethod
    def create(cls, options: Execution) -> RayExecutor:
        # --ray-address, else RAY_ADDRESS (as `ray.init()` reads it), else a local Ray.
        return cls(address=options.ray_address or os.environ.get("RAY_ADDRESS") or None,
                   jobs_per_gpu=options.jobs_per_gpu or 1,
                   backend=options.backend)

    @property
    def slots(self) -> int:
        return self._slots

    def start(self) -> None:
        if self._ray is not None:
            return
        if self.address not in (None, "auto", "local"):
            check_reachable(self.address, "The Ray cluster",
                            "start it with `ray start --head`, check --ray-address, or leave "
                            "it out to start a local Ray.", default_port=RAY_PORT, grpc=True)
        ray = import_ray()
        if not ray.is_initialized():
            try:
                # "local" starts a new Ray for this run even when a cluster started with
                # `ray start` runs on this machine (ray.init() alone would join it).
                ray.init(address=self.address or "local", include_dashboard=False,
                         log_to_driver=False, logging_level="ERROR",
                         configure_logging=True)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise ConfigurationError(
                    f"Cannot connect to the Ray cluster at {self.address!r}: {e}. Start it "
                    "with `ray start --head` (see docs/scaling-out.md), or leave out --ray-address to "
                    "start a local Ray."
                ) from e
            self._started_here = True
        self._ray = ray
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        if gpus:
            self._num_gpus = 1 / self.jobs_per_gpu
            self._slots = max(1, int(gpus * self.jobs_per_gpu))
        else:
            self._slots = max(1, int(resources.get("CPU", 1) // self.num_cpus))

    def preflight(self, store: FeatureStore) -> None:
        """Runs `node_check` on every alive node; refuses the run on any mismatch.

        Raises:
            ConfigurationError: when a node does not see the store, sees another content
                hash, runs another version of the project, or does not answer within
                `PREFLIGHT_TIMEOUT_S`.
        """
        path = str(Path(store.path).resolve())
        expected = {**project_fingerprint(), "store_hash": store.content_hash}
        answers = self._ask_every_node(path)
        problems = [problem for node, info in answers.items()
                    for problem in node_problems(node, info, expected, path)]
        if problems:
            raise ConfigurationError(
                "The Ray cluster cannot run this experiment: " + "; ".join(problems)
                + ". Every node must see the feature store at the same path (a shared "
                "filesystem) and have the same project installed."
            )

    def _ask_every_node(self, store: str) -> dict[str, dict[str, Any]]:
        """`node_check` of every alive node, by node name.

        Raises:
            ConfigurationError: naming the nodes that did not answer in time.
        """
        from ray.util.scheduling_strategies import (  # noqa: PLC0415  (optional: Ray)
            NodeAffinitySchedulingStrategy,
        )

        ray = self._ray
        check = ray.remote(node_check)
        refs = {n["NodeManagerAddress"] + " " + n["NodeID"][:8]: check.options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"],
                                                                            soft=False)
        ).remote(store) for n in ray.nodes() if n.get("Alive")}
        # One deadline for all nodes: the checks run at the same time.
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs),
                            timeout=PREFLIGHT_TIMEOUT_S)
        silent = [node for node, ref in refs.items() if ref not in ready]
        if silent:
            for node in silent:
                ray.cancel(refs[node], force=True)
            raise ConfigurationError(
                f"The Ray cluster's node(s) {', '.join(silent)} did not answer the preflight "
                f"check within {PREFLIGHT_TIMEOUT_S} s (no worker process started there: a "
                "node may be saturated by other work, out of memory, or unable to import "
                "this project). Nothing was trained. Check `ray status` and the nodes' logs "
                "(/tmp/ray/session_latest/logs), then rerun."
            )
        return {node: ray.get(ref) for node, ref in refs.items()}

    def _progress_queue(self) -> Any:
        """A Ray queue workers stream their epochs through, on the driver's node (a queue on
        a node that dies would take progress with it), or `None` when nobody listens."""
        if self.on_epoch is None:
            return None
        from ray.util.queue import Queue  # noqa: PLC0415  (optional: Ray)
        from ray.util.scheduling_strategies import (  # noqa: PLC0415  (optional: Ray)
            NodeAffinitySchedulingStrategy,
        )

        here = NodeAffinitySchedulingStrategy(self._ray.get_runtime_context().get_node_id(),
                                              soft=True)
        return Queue(maxsize=1000, actor_options={"num_cpus": 0, "scheduling_strategy": here})

    def run(self, queue: JobQueue) -> Results:
        ray = self._ray
        task = ray.remote(max_calls=max_calls(self._num_gpus))(run_job_remote).options(
            num_cpus=self.num_cpus, num_gpus=self._num_gpus, max_retries=self.max_retries)
        running: dict[Any, Job] = {}
        progress = self._progress_queue()
        sharing = self.jobs_per_gpu if self._num_gpus else 1

        def refill() -> None:
            while len(running) < self._slots and (job := queue.pop()) is not None:
                running[task.remote(job.to_dict(), self.backend, progress, sharing)] = job

        try:
            while True:
                refill()
                if not running:
                    return
                done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                if not self._drain(progress, running):
                    progress = None
                ended = [self._collect(ref, running.pop(ref)) for ref in done]
                yield from refill_first(ended, refill, queue)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
            if progress is not None:
                try:
                    progress.shutdown(force=True)
                except ray.exceptions.RayError:
                    pass

    def _drain(self, progress: Any, running: Mapping[Any, Job]) -> bool:
        """Passes the epochs workers reported to `on_epoch`. Progress is best effort: when
        the queue is lost (its node died), returns False and the run goes on without it."""
        if progress is None or self.on_epoch is None:
            return True
        jobs = {job.key: job for job in running.values()}
        try:
            reported = progress.get_nowait_batch(progress.qsize())
        except self._ray.exceptions.RayError:
            return False
        for instance, fold, epoch, epochs, logs in reported:
            job = jobs.get((instance, fold))
            if job is not None:
                self.on_epoch(job, epoch, epochs, logs)
        return True

    def _collect(self, ref: Any, job: Job) -> FoldResult:
        ray = self._ray
        try:
            data, model_bytes = ray.get(ref)
        except ray.exceptions.RayError as e:  # the task died past its retries
            return FoldResult.failure(job, e, message=f"Ray task failed: {type(e).__name__}: "
                                                      f"{str(e).splitlines()[0]}")
        return FoldResult.from_transport(data, model_bytes)

    def close(self) -> None:
        if self._ray is not None and self._started_here:
            self._ray.shutdown()
            time.sleep(0.1)
        self._ray = None
        self._started_here = False
