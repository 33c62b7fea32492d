"""The local executor: a comparison's jobs in this process, one after another (the default).

``threads`` sizes TensorFlow's thread pools (default: its own, one per core).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from zoo import seed_batches, stopping
from zoo.errors import ZooError
from zoo.executors.base import run_dir_names
from zoo.jobs import Interrupted, NotBatched, run_job, run_seed_batch
from zoo.runs import RunRecord, new_run_dir, read_record, remove_if_empty
from zoo.types import Event, Job, Outcome


def check(workers: int | None, threads: int | None, scheduler: str | None) -> None:
    """This executor's one-line errors: it starts no workers and reaches no scheduler."""
    from zoo.errors import OptionError

    if workers is not None or scheduler:
        raise OptionError(f"{'--workers' if workers is not None else '--scheduler'} needs --executor dask")


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
            from zoo.keras_glue import use_threads

            if not use_threads(self.threads):
                raise ZooError(f"cannot run on {self.threads} thread(s): TensorFlow already runs with others "
                               f"in this process")
        names = names or dict(zip(jobs, run_dir_names(jobs)))
        for group in seed_batches.groups(jobs, prepared):
            stopping.check()
            data = prepared(group.jobs[0]) if callable(prepared) else prepared
            batching = group.alone
            if len(group.jobs) > 1:
                run_dirs = [new_run_dir(compare_dir, names[job]) for job in group.jobs]
                try:
                    results = run_seed_batch(list(group.jobs), data, run_dirs, on_event, registry)
                except NotBatched as why:  # nothing saved: the seeds train one after another
                    batching = seed_batches.not_batched(why)
                except Interrupted as stop:
                    yield from _outcomes(group.jobs, run_dirs, stop.records)
                    raise KeyboardInterrupt from None
                else:
                    yield from _outcomes(group.jobs, run_dirs, results)
                    continue
                finally:
                    for run_dir in run_dirs:  # a seed batch that did not train leaves no folders
                        remove_if_empty(run_dir)
            for job in group.jobs:
                yield from self._alone(job, data, compare_dir, names[job], on_event, registry, batching)

    @staticmethod
    def _alone(job: Job, data, compare_dir: Path, name: str, on_event, registry, batching):
        stopping.check()
        run_dir = new_run_dir(compare_dir, name)
        try:
            record = run_job(job, data, run_dir, on_event, registry, batching=batching)
        except Interrupted as stop:
            yield Outcome(job, run_dir, stop.record)
            raise KeyboardInterrupt from None
        except KeyboardInterrupt:
            saved = _saved_record(run_dir)  # Ctrl-C after the run was saved keeps it
            if saved is not None:
                yield Outcome(job, run_dir, saved)
            else:
                remove_if_empty(run_dir)
            raise
        except ZooError as exc:
            remove_if_empty(run_dir)
            yield Outcome(job, None, None, str(exc))
            return
        yield Outcome(job, run_dir, record)


def _outcomes(jobs, run_dirs, results):
    """A seed batch's outcomes: each job's record, or the error that failed it alone."""
    for job, run_dir, result in zip(jobs, run_dirs, results):
        if isinstance(result, ZooError):
            remove_if_empty(run_dir)
            yield Outcome(job, None, None, str(result))
        else:
            yield Outcome(job, run_dir, result)


def _saved_record(run_dir: Path) -> RunRecord | None:
    try:
        return read_record(run_dir)
    except ZooError:
        return None
