"""Where a comparison's jobs run: a name → implementation table.

* ``local`` (the default): in this process, one job after another (``zoo.executors.local``);
* ``dask``: on Dask workers, a LocalCluster of this machine or a running cluster
  (``zoo.executors.dask``; the ``dask`` extra).

Each implementation module has ``check(workers, threads, scheduler)`` (its one-line
errors, before anything slow loads: ``zoo.plan.Execution`` calls it when made) and
``create(jobs, workers, threads, scheduler, plugins_dir, on_start)``. An executor is anything with ``zoo.executors.base.Executor``'s shape.
"""

from __future__ import annotations

import importlib

from zoo.errors import OptionError
from zoo.executors.base import check_counts

IMPLEMENTATIONS = {"local": "zoo.executors.local", "dask": "zoo.executors.dask"}
EXECUTORS = tuple(IMPLEMENTATIONS)


def _implementation(name: str):
    if name not in IMPLEMENTATIONS:
        raise OptionError(f"must be one of {', '.join(EXECUTORS)}, not {name!r}", parameter="executor")
    return importlib.import_module(IMPLEMENTATIONS[name])


def check_executor(name: str, workers: int | None = None, threads: int | None = None,
                   scheduler: str | None = None) -> None:
    """The executor options' one-line errors, before anything slow is loaded."""
    module = _implementation(name)
    check_counts(workers, threads)
    module.check(workers, threads, scheduler)


def make_executor(execution, jobs: int, plugins_dir: str | None = None, on_start=None):
    """The executor a ``zoo.plan.Execution`` names (checked when it was made), sized for ``jobs`` jobs."""
    return _implementation(execution.executor).create(jobs, execution.workers, execution.threads,
                                                      execution.scheduler, plugins_dir, on_start)
