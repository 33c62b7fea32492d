"""Running a comparison's jobs, and the rules that keep its results.

``run_comparison`` runs a list of jobs (``zoo.jobs.make_jobs``) on one prepared split
with an executor, one run directory per job inside the compare folder, and keeps the
rules in one place:

* a job that fails (a plugin's model that cannot build or train) fails alone: it is
  recorded as failed and the others run;
* Ctrl-C stops the comparison: finished runs are kept, the interrupted one is saved
  and marked, the jobs not started are listed as not run;
* ``compare.json`` (one row per job) is rewritten after every job, so even a killed
  comparison leaves the finished rows behind.

Executors: ``LocalExecutor`` (in this process, one job after another; the default) and
``zoo.dask_executor.DaskExecutor`` (Dask workers, on this machine or a cluster).
``make_executor`` picks one from the command line's words.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from zoo import stopping
from zoo.errors import ZooError
from zoo.files import atomic_write_json
from zoo.jobs import Event, Interrupted, Job, Prepared, ignore_event, run_job
from zoo.runs import RunRecord, new_run_dir, read_record, remove_if_empty

COMPARE_FILE = "compare.json"
PLAN_FILE = "plan.json"  # what the comparison was asked to do: `zoo compare --resume DIR` alone goes on with it


@dataclass
class Outcome:
    """What became of one job: a record (completed or interrupted), or an error."""

    job: Job
    run_dir: Path | None = None
    record: RunRecord | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        return self.record.status if self.record else "failed"


@dataclass
class Comparison:
    compare_dir: Path
    jobs: list[Job]
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    def ordered(self) -> list[Outcome]:
        """The outcomes in the jobs' order (an executor running several at once finishes them in any)."""
        position = {job: i for i, job in enumerate(self.jobs)}
        return sorted(self.outcomes, key=lambda o: position.get(o.job, len(position)))

    @property
    def records(self) -> list[RunRecord]:
        return [o.record for o in self.ordered() if o.record is not None]

    @property
    def completed(self) -> list[RunRecord]:
        return [r for r in self.records if r.status == "completed"]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.ordered() if o.record is None]

    def rows(self) -> list[dict]:
        """compare.json's rows: one per job run, failed ones with their error."""
        from zoo.compare import row_from_record

        rows = []
        for outcome in self.ordered():
            if outcome.record is not None:
                rows.append(row_from_record(outcome.record))
            else:
                rows.append({"model": outcome.job.model, "recipe": outcome.job.recipe, "seed": outcome.job.seed,
                             "status": "failed", "error": outcome.error})
        return rows


def run_dir_names(jobs: list[Job]) -> list[str]:
    """A folder name per job: the model's name, plus recipe and seed where a model runs more than once."""
    recipes = {m: {j.recipe for j in jobs if j.model == m} for m in {j.model for j in jobs}}
    seeds = {m: {j.seed for j in jobs if j.model == m} for m in recipes}
    names = []
    for job in jobs:
        name = job.model
        if len(recipes[job.model]) > 1:
            name += f"-{job.recipe}"
        if len(seeds[job.model]) > 1:
            name += f"-seed{job.seed}"
        names.append(name)
    return names


# -- continuing a stopped comparison (zoo compare --resume) ---------------------------------
@dataclass
class Resume:
    """What an earlier comparison's folder already holds for this comparison's jobs."""

    done: list[Outcome]      # jobs with a finished run there: kept, not trained again
    todo: list[Job]          # jobs still to train
    restarted: list[Path]    # runs of jobs in ``todo`` that were stopped mid-way: they start again


def find_finished(compare_dir: Path, jobs: list[Job], prepared, backend: str, warn=None) -> Resume:
    """Match ``jobs`` to the runs in ``compare_dir``: a run is a job's when model, recipe, seed
    and every option that changes results (``statistics.options_key``) agree. A job whose
    model, recipe and seed ran there with other options is an error: one comparison's folder
    holds one set of options, and every finished run there must be a job of this one (else
    compare.json would lose its row). ``prepared`` is one split or a function giving each job its own."""
    from zoo.statistics import OPTION_NAMES, job_options_key, options_key

    compare_dir = check_resumable(compare_dir)
    saved: dict[tuple, list[RunRecord]] = {}
    for run_file in sorted(compare_dir.glob("*/run.json")):
        try:
            record = read_record(run_file.parent)
        except ZooError as exc:
            if warn:
                warn(f"skipped: {exc}")
            continue
        saved.setdefault((record.model, record.recipe, record.seed), []).append(record)
    done, todo, restarted, claimed = [], [], [], set()
    for job in jobs:
        wanted = job_options_key(job, prepared(job) if callable(prepared) else prepared, backend)
        runs = saved.get((job.model, job.recipe, job.seed), [])
        mine = [r for r in runs if options_key(r) == wanted]
        finished = [r for r in mine if r.status == "completed"]
        if finished:
            done.append(Outcome(job, Path(finished[0].run_dir), finished[0]))
            claimed.add(finished[0].run_dir)
            continue
        todo.append(job)
        restarted += [Path(r.run_dir) for r in mine]
        claimed.update(r.run_dir for r in mine)
        other = next((r for r in runs if r.status == "completed"), None)
        if other is not None:
            theirs = options_key(other)
            differ = [f"{name} {_shown(theirs[i])} there, {_shown(wanted[i])} here" for i, name in enumerate(OPTION_NAMES)
                      if theirs[i] != wanted[i] and name != "test set"]
            raise ZooError(f"{compare_dir}: {job.label} ran there with other options "
                           f"({'; '.join(differ) or 'another test set'}): give the options of that comparison")
    others = sorted(Path(r.run_dir).name for runs in saved.values() for r in runs
                    if r.status == "completed" and r.run_dir not in claimed)
    if others:  # continuing with fewer jobs would drop their rows from compare.json
        shown = ", ".join(others[:4]) + (", …" if len(others) > 4 else "")
        raise ZooError(f"{compare_dir} holds {len(others)} finished run(s) that are no job of this command ({shown}): "
                       f"give the whole command of that comparison, its models and seeds")
    # A run killed outright (kill -9, a power cut) leaves its folder without a run.json: it starts again too.
    names = dict(zip(jobs, run_dir_names(jobs)))
    for job in todo:
        folder = compare_dir / names[job]
        if folder.is_dir() and not (folder / "run.json").exists() and folder not in restarted:
            restarted.append(folder)
    return Resume(done, todo, restarted)


def _shown(option_value) -> str:
    return "none" if option_value is None else str(option_value)


def check_resumable(compare_dir) -> Path:
    """--resume's folder must be one an earlier ``zoo compare`` wrote (checked before any data loads)."""
    compare_dir = Path(compare_dir)
    if not compare_dir.is_dir():
        raise ZooError(f"--resume {compare_dir}: no such folder")
    if not (compare_dir / COMPARE_FILE).is_file():
        raise ZooError(f"{compare_dir}: not a comparison's folder (no {COMPARE_FILE}); --resume takes the folder "
                       f"an earlier zoo compare wrote")
    return compare_dir


def write_plan(compare_dir: Path, plan: dict) -> None:
    atomic_write_json(Path(compare_dir) / PLAN_FILE, plan)


def read_plan(compare_dir: Path) -> dict | None:
    """The plan an earlier ``zoo compare`` saved in its folder; None for a folder from before plans."""
    import json

    path = Path(compare_dir) / PLAN_FILE
    if not path.is_file():
        return None
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ZooError(f"{path}: unreadable ({exc}); give the comparison's command again with --resume") from None
    if not isinstance(plan, dict):
        raise ZooError(f"{path}: not a comparison's plan; give the comparison's command again with --resume")
    return plan


EXECUTORS = ("local", "dask")


def make_executor(name: str, jobs: int, workers: int | None = None, threads: int | None = None,
                  scheduler: str | None = None, plugins_dir: str | None = None, on_start=None):
    """``local`` or ``dask`` (a LocalCluster sized to the machine, or the cluster at ``scheduler``)."""
    check_executor(name, workers, threads, scheduler)
    if name == "local":
        return LocalExecutor(threads)
    from zoo.dask_executor import DaskExecutor, plan_workers

    plan = None if scheduler else plan_workers(jobs, workers, threads)
    return DaskExecutor(plan, scheduler, threads, plugins_dir, on_start)


def check_executor(name: str, workers: int | None = None, threads: int | None = None,
                   scheduler: str | None = None) -> None:
    """The executor options' one-line errors, before anything slow is loaded."""
    if name not in EXECUTORS:
        raise ZooError(f"--executor must be one of {', '.join(EXECUTORS)}, not {name!r}")
    check_counts(workers, threads)
    if name == "local" and (workers is not None or scheduler):
        raise ZooError(f"{'--workers' if workers is not None else '--scheduler'} needs --executor dask")
    if scheduler and workers is not None:
        raise ZooError("--workers sizes the cluster zoo starts; with --scheduler the cluster has its own workers")
    if name == "dask":
        from zoo.dask_executor import require_dask

        require_dask()


def check_counts(workers: int | None, threads: int | None) -> None:
    for flag, value in (("--workers", workers), ("--threads-per-worker", threads)):
        if value is not None and value < 1:
            raise ZooError(f"{flag} must be at least 1")


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
        for job in jobs:
            stopping.check()
            run_dir = new_run_dir(compare_dir, names[job])
            try:
                data = prepared(job) if callable(prepared) else prepared
                record = run_job(job, data, run_dir, on_event, registry)
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
                continue
            yield Outcome(job, run_dir, record)


def _saved_record(run_dir: Path) -> RunRecord | None:
    try:
        return read_record(run_dir)
    except ZooError:
        return None


def run_comparison(jobs: list[Job], prepared: Prepared | Callable[[Job], Prepared], compare_dir, on_event=None,
                   on_outcome: Callable[[Outcome], object] | None = None, executor=None,
                   registry=None, done: list[Outcome] = ()) -> Comparison:
    """Run ``jobs`` into ``compare_dir`` and return what became of each; never raises on a job's failure.
    ``done``: outcomes of jobs already finished there (``find_finished``), kept and not run again."""
    compare_dir = Path(compare_dir)
    comparison = Comparison(compare_dir, list(jobs), outcomes=list(done))
    finished = {o.job for o in done}
    names = dict(zip(comparison.jobs, run_dir_names(comparison.jobs)))  # the same names as the first time
    executor = executor or LocalExecutor()
    outcomes = executor.run([j for j in comparison.jobs if j not in finished], prepared, compare_dir,
                            on_event or ignore_event, registry, names=names)
    try:
        with contextlib.closing(outcomes):  # a Ctrl-C between two outcomes still closes the executor
            for outcome in outcomes:
                comparison.outcomes.append(outcome)
                _write(comparison)
                if on_outcome is not None:
                    on_outcome(outcome)
    except KeyboardInterrupt:
        comparison.interrupted = True
    _write(comparison)
    return comparison


def _write(comparison: Comparison) -> None:
    atomic_write_json(comparison.compare_dir / COMPARE_FILE, comparison.rows())

