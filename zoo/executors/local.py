"""The local executor: a comparison's jobs in this process, one after another (the default).

``threads`` sizes TensorFlow's thread pools (default: its own, one per core).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from zoo import seed_batches, stopping
from zoo.errors import OptionError, ZooError
from zoo.executors.base import run_dir_names
from zoo.jobs import run_group
from zoo.keras_glue import use_threads
from zoo.runs import new_run_dir
from zoo.types import Event, Job, Outcome


def check(workers: int | None, threads: int | None, scheduler: str | None) -> None:
    """This executor's one-line errors: it starts no workers and reaches no scheduler."""
    if workers is not None or scheduler:
        raise OptionError("needs the dask executor", parameter="workers" if workers is not None else "scheduler")


def create(jobs: int, workers=None, threads=None, scheduler=None, plugins_dir=None, on_start=None) -> "LocalExecutor":
    return LocalExecutor(threads)


class LocalExecutor:
    """Runs jobs in this process, one after another (the default); ``threads`` sizes
    TensorFlow's thread pools (default: its own, one per core)."""

    name = "local"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def run(self, jobs: list[Job], prepared, compare_dir: Path,
            on_event: Callable[[Event], object], registry=None, names: dict[Job, str] | None = None):
        """Yield an ``Outcome`` per job; stops (raising ``KeyboardInterrupt`` after yielding
        the interrupted job's outcome, if any) on Ctrl-C. ``prepared`` is one ``Prepared``
        split for every job, or a function giving each job its own (``--vary-split``)."""
        if self.threads is not None:
            if not use_threads(self.threads):
                raise ZooError(f"cannot run on {self.threads} thread(s): TensorFlow already runs with others "
                               f"in this process")
        names = names or dict(zip(jobs, run_dir_names(jobs)))
        for group in seed_batches.groups(jobs, prepared):
            stopping.check()
            data = prepared(group.jobs[0]) if callable(prepared) else prepared
            for job, run_dir, result in run_group(group, data, lambda job: new_run_dir(compare_dir, names[job]),
                                                  on_event, registry):
                yield Outcome(job, run_dir, None, str(result)) if isinstance(result, ZooError) \
                    else Outcome(job, run_dir, result)
