"""Running a comparison's jobs on Dask: a ``LocalCluster`` on this machine, or a cluster.

``DaskExecutor`` is a drop-in for ``zoo.executors.local.LocalExecutor``: ``zoo.comparing.run_jobs``
keeps the rules (failures fail alone, Ctrl-C keeps finished runs, compare.json after
every job); this module only decides where the jobs run.

* Nothing is shared but the scheduler: the prepared split is scattered to the workers
  once; each job trains into a temporary folder on its worker and sends the run's files
  back; the driver writes the run directories, exactly where the local executor would.
* Progress comes back through Dask's structured events (``Worker.log_event`` on the
  worker, ``Client.subscribe_topic`` here), drawn by the same display.
* A worker that dies mid-job has that job retried once elsewhere (the scheduler's
  ``allowed-failures``, set to 1 on the clusters we start); a second death fails the job.
* Workers are spawned processes (TensorFlow hangs after ``fork``), each running one job
  at a time with TensorFlow's own thread pools set to ``threads``: TensorFlow ignores
  ``OMP_NUM_THREADS`` for those, and a worker running two jobs would oversubscribe.

Dask is an optional extra: ``pip install 'mnist-zoo[dask]'``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from zoo import seed_batches, stopping
from zoo.errors import OptionError, ZooError
from zoo.executors.base import check_counts, run_dir_names
from zoo.files import atomic_write_bytes
from zoo.jobs import command_line, run_group
from zoo.keras_glue import import_backend_quietly, use_threads
from zoo.machine import usable_cores
from zoo.plugins import SESSION_PLUGIN, get_zoo
from zoo.runs import new_run_dir, read_record, remove_if_empty, write_record
from zoo.types import Event, Job, Outcome

INSTALL = "pip install 'mnist-zoo[dask]'"
# How often the driver looks at its futures and the events that came in (both local: no network).
POLL_SECONDS = 0.1
# How long to keep trying a scheduler that does not answer.
CONNECT_TIMEOUT = "10s"


def require_dask() -> None:
    """A one-line error naming the install command when Dask is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise OptionError(f"needs Dask distributed: {INSTALL}", parameter="executor", value="dask") from None


def check(workers: int | None, threads: int | None, scheduler: str | None) -> None:
    """This executor's one-line errors, before anything slow is loaded."""
    if scheduler and workers is not None:
        raise OptionError("sizes the cluster zoo starts; a cluster given by its scheduler has its own workers", parameter="workers")
    require_dask()


def create(jobs: int, workers=None, threads=None, scheduler=None, plugins_dir=None, on_start=None) -> "DaskExecutor":
    """A LocalCluster sized to the machine, or the cluster at ``scheduler``."""
    plan = None if scheduler else plan_workers(jobs, workers, threads)
    return DaskExecutor(plan, scheduler, threads, plugins_dir, on_start)


@dataclass(frozen=True)
class WorkerPlan:
    """How many worker processes, and how many threads each, on how many usable cores."""

    workers: int
    threads: int
    cores: int

    def describe(self) -> str:
        used = self.workers * self.threads
        text = (f"{self.workers} worker process{'es' * (self.workers != 1)} × {self.threads} "
                f"thread{'s' * (self.threads != 1)} on {self.cores} usable core{'s' * (self.cores != 1)}")
        return text + (f" (oversubscribed: {used} threads)" if used > self.cores else "")


def plan_workers(jobs: int, workers: int | None = None, threads: int | None = None,
                 cores: int | None = None) -> WorkerPlan:
    """Size a LocalCluster to the machine: workers × threads ≤ cores unless both are given.

    By default, one worker per job up to the cores, and the cores shared out among them.
    """
    cores = cores or usable_cores()
    check_counts(workers, threads)
    if workers is None and threads is None:
        workers = max(1, min(jobs, cores))
    if workers is None:
        workers = max(1, min(jobs, cores // threads))
    if threads is None:
        threads = max(1, cores // workers)
    return WorkerPlan(workers, threads, cores)


# -- on the worker -----------------------------------------------------------------------------
def _message(event: Event, index: int, worker: str) -> dict:
    """An event as plain data (Dask's event stream carries msgpack, not objects)."""
    return {"index": index, "kind": event.kind, "epoch": event.epoch, "epochs": event.epochs, "step": event.step,
            "steps": event.steps, "metrics": event.metrics, "seconds": event.seconds, "error": event.error,
            "worker": worker}


def train_on_worker(jobs: list[Job], prepared, indices: list[int], plugin: str, plugins_dir: str | None,
                    threads: int, topic: str, alone: dict | None = None) -> dict:
    """The task: train ``jobs`` (one job, or the seeds of one batch, ``zoo.seed_batches``) into
    temporary folders here and send their files back.

    Returns ``{"runs": [{"files": {name: bytes}} or {"error": text}, …], "worker": address}``,
    one answer per job: a job's own failure is an answer, not an exception, so Dask retries
    only dead workers. ``alone``: what a job trained alone records about seed batching.
    """
    from distributed import get_worker

    worker = get_worker()
    address = worker.address
    where = {job: index for job, index in zip(jobs, indices)}

    def emit(event: Event) -> None:
        if event.kind == "finished" or (event.kind == "step" and not event.metrics):
            return  # the driver says "finished" once the files are written; steps a few times a second
        worker.log_event(topic, _message(event, where[event.job], address))

    import_backend_quietly()  # first: importing TensorFlow any other way prints its C++ notices
    use_threads(threads)  # before TensorFlow's first op, not its import

    registry = get_zoo(plugins_dir)
    if jobs[0].model not in registry.architectures:
        error = (f"{jobs[0].model}: its plugin {plugin!r} is not installed on worker {address} "
                 f"(install it there as on this machine)")
        for job in jobs:
            emit(Event("failed", job, error=error))
        return {"runs": [{"error": error}] * len(jobs), "worker": address}
    folders = [Path(tempfile.mkdtemp(prefix="zoo-job-")) for _ in jobs]

    def files(folder: Path) -> dict:
        return {"files": {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}}

    try:
        where_to = dict(zip(jobs, folders))
        group = seed_batches.Group(tuple(jobs), alone)
        runs = [{"error": str(result)} if isinstance(result, ZooError) else files(where_to[job])
                for job, _, result in run_group(group, prepared, where_to.__getitem__, emit, registry)]
        return {"runs": runs, "worker": address}
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


# -- on the driver ----------------------------------------------------------------------------
class DaskExecutor:
    """Runs a comparison's jobs on Dask workers: a LocalCluster sized by ``plan``, or the
    cluster whose scheduler is at ``scheduler``."""

    name = "dask"

    def __init__(self, plan: WorkerPlan | None = None, scheduler: str | None = None, threads: int | None = None,
                 plugins_dir: str | None = None, on_start=None):
        require_dask()

        self.plan, self.scheduler, self.threads, self.plugins_dir = plan, scheduler, threads, plugins_dir
        self.command = command_line()  # the driver's; a worker's would be Dask's
        self.on_start = on_start or (lambda text: None)

    @contextlib.contextmanager
    def client(self, jobs: int):
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise ZooError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
            with client:
                workers = client.scheduler_info().get("workers", {})
                if not workers:
                    raise ZooError(f"the Dask scheduler at {self.scheduler} has no workers")
                self.on_start(f"Dask: the cluster at {self.scheduler}, {len(workers)} worker(s)")
                yield client
            return
        plan = self.plan or plan_workers(jobs, threads=self.threads)
        threads = str(plan.threads)
        with dask.config.set({"distributed.worker.multiprocessing-method": "spawn",
                              "distributed.scheduler.allowed-failures": 1,
                              # the split is broadcast so that a retried job finds it on any worker;
                              # Dask's active memory manager would drop the copies no task waits for
                              # (every 2 s), and a kill of the last holder lost it (seen in CI under load)
                              "distributed.scheduler.active-memory-manager.start": False,
                              # Dask's default MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap
                              # threshold: every big TensorFlow buffer is then mapped and unmapped
                              # afresh. Measured, baseline-cnn trained 25% slower with it.
                              "distributed.nanny.pre-spawn-environ": {}}):
            cluster = LocalCluster(
                n_workers=plan.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR, preload=["zoo.dask_worker"],
                env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
                     "TF_CPP_MIN_LOG_LEVEL": "2"})
            try:
                with Client(cluster) as client:
                    # every worker up before the split is broadcast: one that joined later would not
                    # hold it, and a kill of the only holder lost it (seen in CI under load)
                    client.wait_for_workers(plan.workers, timeout=60)
                    self.on_start(f"Dask: a LocalCluster of {plan.describe()}")
                    yield client
            finally:
                cluster.close()

    def run(self, jobs: list[Job], prepared, compare_dir: Path, on_event, registry=None,
            names: dict[Job, str] | None = None):
        """Yield an ``Outcome`` per job as it finishes (any order); on Ctrl-C, cancel the
        jobs not finished, yield the finished ones not yet yielded, close the cluster and
        raise ``KeyboardInterrupt``."""
        names = names or dict(zip(jobs, run_dir_names(jobs)))
        if registry is not None:
            in_session = sorted({j.model for j in jobs if registry.architecture(j.model).plugin == SESSION_PLUGIN})
            if in_session:
                raise OptionError(f"{', '.join(in_session)}: registered in this Python session with zoo.register, "
                                  f"which Dask's worker processes cannot see; use executor='local', or make it an "
                                  f"installed plugin (zoo new)")
        groups = seed_batches.groups(jobs, prepared)  # the seeds of one batch are one task
        with self.client(len(groups)) as client:
            threads = self._threads()
            topic = f"zoo-{uuid.uuid4().hex}"
            events: queue.SimpleQueue = queue.SimpleQueue()
            client.subscribe_topic(topic, lambda item: events.put(item[1]))
            splits = self._scatter(client, jobs, prepared)
            plugins = {a.name: a.plugin for a in registry.architectures.values()} if registry is not None else {}
            index = {job: i for i, job in enumerate(jobs)}
            pending = {}
            for group in groups:
                first = group.jobs[0]
                future = client.submit(train_on_worker, list(group.jobs), splits[id(self._data(prepared, first))],
                                       [index[j] for j in group.jobs], plugins.get(first.model, first.model),
                                       self.plugins_dir, threads, topic, group.alone,
                                       key=f"{names[first]}-{topic}", pure=False)
                pending[future] = group.jobs
                for job in group.jobs:
                    on_event(Event("queued", job))
            try:
                while pending:
                    stopping.check()  # a Ctrl-C swallowed by a gc callback (JAX has one) still stops us
                    self._drain(events, jobs, on_event)
                    done = [f for f in pending if f.done()]
                    if not done:
                        time.sleep(POLL_SECONDS)
                        continue
                    for future in done:
                        group = pending.pop(future)
                        self._drain(events, jobs, on_event)
                        yield from self._outcomes(future, group, names, compare_dir, on_event)
            except KeyboardInterrupt:
                # Look before cancelling: a cancelled future no longer says it had finished.
                finished = {f: job for f, job in pending.items() if f.status == "finished"}
                client.cancel([f for f in pending if f not in finished])
                for future, group in finished.items():  # came back while we were stopping: keep it
                    yield from self._outcomes(future, group, names, compare_dir, on_event)
                raise
            finally:
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(topic)

    def _threads(self) -> int:
        """TensorFlow threads per job. On a cluster someone else started, each Dask thread
        slot runs a job, so one each unless asked (``dask worker --nthreads 1`` and
        ``--threads-per-worker T`` give T per job instead)."""
        return self.threads or (self.plan.threads if self.plan else 1)

    @staticmethod
    def _data(prepared, job):
        return prepared(job) if callable(prepared) else prepared

    def _scatter(self, client, jobs, prepared) -> dict:
        """Each distinct split goes to every worker once (``broadcast``), not once per job."""
        splits, started, size = {}, time.perf_counter(), 0
        for job in jobs:
            data = self._data(prepared, job)
            if id(data) not in splits:
                data.test_sha256  # noqa: B018  computed here, travels with the arrays
                splits[id(data)] = client.scatter(data, broadcast=True, hash=False)
                a = data.arrays
                size += sum(x.nbytes for x in (a.x_train, a.y_train, a.x_test, a.y_test))
        workers = len(client.scheduler_info().get("workers", {}))
        self.on_start(f"Data: {size / 1e6:.0f} MB to each of {workers} worker(s) "
                      f"in {time.perf_counter() - started:.1f} s")
        return splits

    @staticmethod
    def _drain(events: queue.SimpleQueue, jobs: list[Job], on_event) -> None:
        while True:
            try:
                message = events.get_nowait()
            except queue.Empty:
                return
            job = jobs[message.pop("index")]
            on_event(Event(job=job, **message))

    def _outcomes(self, future, group, names: dict, compare_dir: Path, on_event):
        """An ``Outcome`` per job of a finished task."""
        try:
            answer = future.result()
        except Exception as exc:  # noqa: BLE001  (KilledWorker, a cancelled or lost task)
            for job in group:
                error = f"{job.label}: {_why(exc)}"
                on_event(Event("failed", job, error=error))
                yield Outcome(job, None, None, error)
            return
        finally:
            future.release()  # fetched: a worker lost later must not be made to run it again
        for job, run in zip(group, answer["runs"]):
            yield self._outcome({**run, "worker": answer["worker"]}, job, names[job], compare_dir, on_event)

    def _outcome(self, answer: dict, job: Job, name: str, compare_dir: Path, on_event) -> Outcome:
        if "error" in answer:
            return Outcome(job, None, None, answer["error"])
        run_dir = new_run_dir(compare_dir, name)
        try:
            for relative, data in answer["files"].items():
                target = (run_dir / relative).resolve()
                if run_dir.resolve() not in target.parents:
                    raise ZooError(f"{job.label}: the worker sent a file outside its run: {relative!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, data)
            record = read_record(run_dir)
        except ZooError as exc:
            remove_if_empty(run_dir)
            on_event(Event("failed", job, error=str(exc)))
            return Outcome(job, None, None, str(exc))
        # What the worker could not know: the command, and where it ran.
        record.command = self.command
        record.execution = {**record.execution, "executor": "dask", "worker": answer["worker"]}
        write_record(run_dir, record)
        on_event(Event("finished", job, record=record, worker=answer["worker"]))
        return Outcome(job, run_dir, record)


def _why(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return "its worker died, and again on the retry (out of memory, or killed)"
    if name == "CancelledError":
        return "cancelled"
    return f"{name}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else 'no message'}"
