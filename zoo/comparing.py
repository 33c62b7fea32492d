"""A comparison, from the models asked for to its saved folder: the one place that runs one.

``zoo.compare``, ``zoo.resume``, ``zoo compare`` and a notebook all come down to
``run_comparison``, which

* picks the models (names, patterns, a tag) and makes one job per model and seed;
* splits the data once (or once per seed, with ``vary_split``) so every model sees the same;
* makes the comparison's folder and saves what was asked in ``plan.json``, or, resuming,
  keeps the runs that finished there and restarts the ones stopped mid-way;
* runs the jobs on an executor (``zoo.executors``) and keeps the rules: a job that fails
  fails alone, Ctrl-C keeps the finished runs, ``compare.json`` is rewritten after every job;
* draws each run's figures and the comparison's (``compare.png``, ``pareto.png``, ``curves.png``).

It prints nothing itself: messages go to a ``feedback`` object (``zoo.feedback``), which
a terminal, a notebook or a test chooses.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from zoo import data as datamod
from zoo.cache import cached_stats
from zoo.errors import OptionError, RunFileError, ZooError
from zoo.executors import make_executor
from zoo.executors.base import run_dir_names
from zoo.executors.local import LocalExecutor
from zoo.files import atomic_write_json, link_outside
from zoo.jobs import make_jobs, prepare
from zoo.plan import PLAN_FILE, Execution, Plan
from zoo.plugins import output_problem
from zoo.registry import select
from zoo.rows import learning_curves, row_from_record
from zoo.runs import RunRecord, new_run_dir, read_record, timestamp
from zoo.statistics import OPTION_NAMES, job_options_key, options_key
from zoo.types import Job, Options, Outcome, ignore_event

COMPARE_FILE = "compare.json"
@dataclass
class Outcomes:
    """What became of each job of a comparison, in the jobs' order."""

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
        rows = []
        for outcome in self.ordered():
            if outcome.record is not None:
                rows.append(row_from_record(outcome.record))
            else:
                rows.append({"model": outcome.job.model, "label": outcome.job.name, "knobs": outcome.job.settings,
                             "recipe": outcome.job.recipe, "seed": outcome.job.seed,
                             "status": "failed", "error": outcome.error})
        return rows


def run_jobs(jobs: list[Job], prepared, compare_dir, on_event=None,
             on_outcome: Callable[[Outcome], object] | None = None, executor=None,
             registry=None, done: list[Outcome] = ()) -> Outcomes:
    """Run ``jobs`` into ``compare_dir`` and return what became of each; never raises on a job's failure.
    ``prepared``: one split for every job, or a function giving each job its own.
    ``done``: outcomes of jobs already finished there (``find_finished``), kept and not run again."""
    compare_dir = Path(compare_dir)
    result = Outcomes(compare_dir, list(jobs), outcomes=list(done))
    finished = {o.job for o in done}
    names = dict(zip(result.jobs, run_dir_names(result.jobs)))  # the same names as the first time
    executor = executor or LocalExecutor()
    outcomes = executor.run([j for j in result.jobs if j not in finished], prepared, compare_dir,
                            on_event or ignore_event, registry, names=names)
    try:
        with contextlib.closing(outcomes):  # a Ctrl-C between two outcomes still closes the executor
            for outcome in outcomes:
                result.outcomes.append(outcome)
                _write(result)
                if on_outcome is not None:
                    on_outcome(outcome)
    except KeyboardInterrupt:
        result.interrupted = True
    _write(result)
    return result


def _write(result: Outcomes) -> None:
    atomic_write_json(result.compare_dir / COMPARE_FILE, result.rows())


# -- continuing a stopped comparison ---------------------------------------------------------------
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
    compare_dir = check_resumable(compare_dir)
    saved: dict[tuple, list[RunRecord]] = {}
    for run_file in sorted(compare_dir.glob("*/run.json")):
        elsewhere = link_outside(run_file.parent, compare_dir)
        if elsewhere is not None and warn:
            warn(f"{run_file.parent.name} links to {elsewhere}, outside this comparison: read, and if it must "
                 f"start again only the link is removed")
        try:
            record = read_record(run_file.parent)
        except ZooError as exc:
            if warn:
                warn(f"skipped: {exc}")
            continue
        saved.setdefault((record.model, record.recipe, record.seed, tuple(record.knobs.items())), []).append(record)
    done, todo, restarted, claimed = [], [], [], set()
    for job in jobs:
        wanted = job_options_key(job, prepared(job) if callable(prepared) else prepared, backend)
        runs = saved.get((job.model, job.recipe, job.seed, job.knobs), [])
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
            differ = [f"{name} {_shown(theirs[i])} there, {_shown(wanted[i])} here"
                      for i, name in enumerate(OPTION_NAMES) if theirs[i] != wanted[i] and name != "test set"]
            raise OptionError(f"{compare_dir}: {job.label} ran there with other options "
                              f"({'; '.join(differ) or 'another test set'}): give the options of that comparison")
    others = sorted(Path(r.run_dir).name for runs in saved.values() for r in runs
                    if r.status == "completed" and r.run_dir not in claimed)
    if others:  # continuing with fewer jobs would drop their rows from compare.json
        shown = ", ".join(others[:4]) + (", …" if len(others) > 4 else "")
        raise OptionError(f"{compare_dir} holds {len(others)} finished run(s) that are no job of this command "
                          f"({shown}): give the whole command of that comparison, its models and seeds")
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
    """The folder to resume must be one an earlier comparison wrote (checked before any data loads)."""
    compare_dir = Path(compare_dir)
    if not compare_dir.is_dir():
        raise RunFileError(": no such folder", parameter="resume", value=str(compare_dir))
    if not (compare_dir / COMPARE_FILE).is_file() and not (compare_dir / PLAN_FILE).is_file():
        raise RunFileError(f"{compare_dir}: not a comparison's folder (no {COMPARE_FILE} or {PLAN_FILE}); --resume "
                           f"takes the folder an earlier zoo compare wrote")
    return compare_dir


# -- the whole comparison -------------------------------------------------------------------------
@dataclass
class Ran:
    """A comparison that ran (or stopped): its folder, what became of each job, and the data."""

    compare_dir: Path
    outcomes: Outcomes
    jobs: list[Job]
    seeds: list[int]
    options: Options
    title: str
    class_names: tuple


def run_comparison(plan: Plan, *, runs_dir, resume: Path | None = None, plugins_dir: str | None = None,
                   registry, feedback) -> Ran:
    """Train what ``plan`` asks, once per seed, on one split, into a new folder under
    ``runs_dir`` (or the folder being resumed). Never raises for one job's failure or a
    Ctrl-C: both are in the returned ``Ran``."""
    with contextlib.ExitStack() as held:
        if resume is not None:  # before anything is read there: a second --resume of it stops here
            held.enter_context(folder_lock(check_resumable(resume)))
        return _run_comparison(plan, runs_dir, plugins_dir, resume, registry, feedback, held)


LOCK_FILE = ".zoo-compare.lock"


@contextlib.contextmanager
def folder_lock(compare_dir: Path):
    """Hold a comparison's folder while training into it: a second ``zoo compare --resume`` of
    it is refused in one line, instead of deleting the first one's live run folder and both
    training into it. An OS lock (filelock): released when the process ends, kill -9 included."""
    lock = FileLock(str(Path(compare_dir) / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunFileError(f"{compare_dir}: another zoo compare is training into this folder; let it finish "
                           f"(or stop it), then resume") from None
    except OSError as exc:  # a read-only folder: nothing can be trained into it anyway
        raise RunFileError(f"{compare_dir}: cannot lock it for training ({exc.strerror or exc})") from None
    try:
        yield
    finally:
        lock.release()


def _run_comparison(plan: Plan, runs_dir, plugins_dir, resume, registry, feedback,
                    held: contextlib.ExitStack) -> Ran:
    options, seed, seed_list = plan.options, plan.seed, plan.seed_list
    patterns, vary, settings = plan.models, list(plan.vary) or None, list(plan.set) or None
    chosen = select(registry.architectures, patterns, plan.tag)
    if not chosen:
        raise OptionError(f"no model matches {' '.join(patterns or [])}".rstrip())
    chosen = fitting(chosen, registry, registry.dataset(options.dataset), feedback.warn)
    jobs = make_jobs(chosen, options, seeds=seed_list, vary=vary, settings=settings)  # no vary: one each
    if vary:
        variants = len({job.knobs for job in jobs})
        feedback.info("Variants", f"{variants} of {', '.join(dict.fromkeys(j.model for j in jobs))} × "
                                  f"{len(seed_list)} seed(s): {len(jobs)} runs, each variant on the same seeds and split")
    prepared = prepare(registry, options, split_seed=seed)
    data_for = prepared
    if options.vary_split:
        splits = {s: prepare(registry, options, split_seed=s) for s in seed_list}
        data_for = lambda job: splits[job.seed]  # noqa: E731
    announce_data(prepared, options, seed if not options.vary_split else f"{seed} (split redrawn per seed)",
                  feedback)
    if len(seed_list) > 1:
        feedback.info("Seeds", f"{', '.join(map(str, seed_list))}: {len(jobs)} runs")
    if resume is not None:
        compare_dir, found = Path(resume), _resume(Path(resume), jobs, data_for, feedback)
        todo, done = found.todo, found.done
    else:
        compare_dir, todo, done = new_run_dir(runs_dir, f"compare-{timestamp()}"), jobs, []
        held.enter_context(folder_lock(compare_dir))
        plan.write(compare_dir)
        # a comparison's folder from its first moment: kill -9 before the first run finishes still
        # leaves a folder that --resume continues
        atomic_write_json(compare_dir / COMPARE_FILE, [])
    chosen_executor = make_executor(plan.execution if todo else Execution(), len(todo), plugins_dir,
                                    on_start=lambda text: feedback.info(None, text))
    with feedback.display(todo, chosen_executor.name) as on_event:
        outcomes = run_jobs(jobs, data_for, compare_dir, on_event, executor=chosen_executor, registry=registry,
                            done=done, on_outcome=lambda o: o.record and draw_run_figures(
                                o.run_dir, o.record, prepared.arrays, feedback.warn))
    title = (f"{options.dataset}: {prepared.describe()}, seed{'s' * (len(seed_list) > 1)} "
             f"{', '.join(map(str, seed_list))}" + (", validated on TEST" if options.validate_on == "test" else ""))
    return Ran(compare_dir, outcomes, jobs, seed_list, options, title, prepared.arrays.dataset.class_names)


def fitting(architectures, registry, dataset, warn) -> list:
    """The architectures that can be built for ``dataset``'s images and classes; each that cannot
    (too many poolings for 8×8, an output fixed at ten classes) is skipped with its reason. A model
    that cannot be built for MNIST either is broken, not unfit: it stays, to fail in its own run."""
    def problem(image_shape, classes) -> str | None:
        try:
            return output_problem(arch.name, cached_stats(registry, arch, image_shape, classes), classes)
        except ZooError as exc:
            return str(exc).splitlines()[0]

    if tuple(dataset.image_shape) == MNIST_SHAPE and dataset.num_classes == 10:
        return list(architectures)  # what every model is written for
    shape = "×".join(map(str, dataset.image_shape))
    kept = []
    for arch in architectures:
        reason = problem(dataset.image_shape, dataset.num_classes)
        if reason and not problem(MNIST_SHAPE, 10):
            warn(f"{arch.name} skipped: it does not fit {dataset.name}'s {shape} images in "
                 f"{dataset.num_classes} classes ({reason.removeprefix(f'{arch.name}: ')[:200]})")
        else:
            kept.append(arch)
    if not kept:
        raise OptionError(f"no chosen model fits {dataset.name}'s {shape} images in {dataset.num_classes} classes")
    return kept


MNIST_SHAPE = (28, 28, 1)


def announce_data(prepared, options: Options, seed, feedback) -> None:
    """Say which data every run of this command trains on, and warn where it leaks or falls short."""
    feedback.info("Data", f"{options.dataset} from {prepared.arrays.source}; {prepared.describe()}; seed {seed}")
    if options.validate_on == "test":
        feedback.warn(datamod.test_set_warning())
    available = len(prepared.arrays.y_train)
    if options.limit and options.limit > available:
        feedback.warn(f"--limit {options.limit:,} is more than the {available:,} training images: all of them are used")


def _resume(compare_dir: Path, jobs, data_for, feedback) -> Resume:
    """Which of ``jobs`` already finished in ``compare_dir``; says so, and clears the runs that start again."""
    import keras

    found = find_finished(compare_dir, jobs, data_for, keras.backend.backend(), warn=feedback.warn)
    feedback.info(f"Resuming {compare_dir}", f"{len(found.done)} of {len(jobs)} runs finished there "
                                             f"and are kept; {len(found.todo)} to train")
    for run_dir in found.restarted:
        feedback.info(None, f"{run_dir.name} was stopped mid-way: it starts again")
        if run_dir.is_symlink():  # never delete through a link: only the link goes
            run_dir.unlink()
        else:
            shutil.rmtree(run_dir)
    return found


# -- figures ---------------------------------------------------------------------------------------
def draw_run_figures(run_dir, record, arrays, warn: Callable[[str], object]) -> list[str]:
    """A run's figures are a bonus: a plotting problem must not lose a trained run."""
    from zoo import figures

    try:
        return figures.draw_run(run_dir, record, arrays)
    except Exception as exc:  # noqa: BLE001
        warn(f"could not draw figures for {record.model}: {exc}")
        return []


def draw_comparison_figures(rows: list[dict], compare_dir: Path, warn: Callable[[str], object]) -> None:
    """compare.png (accuracy per model: seeds, mean, interval), pareto.png, and curves.png
    (every model's learning, within epochs too); a figure never loses the results."""
    from zoo import figures

    done = [r for r in rows if r.get("mean") is not None]
    if not done:
        return
    try:
        figures.accuracy_chart(done, compare_dir / "compare.png", "Test accuracy, same data and split")
        figures.pareto(done, compare_dir / "pareto.png")
        curves = learning_curves(done)
        if curves:
            figures.overlaid_curves(curves, compare_dir / "curves.png")
    except Exception as exc:  # noqa: BLE001
        warn(f"could not draw the comparison's figures: {exc}")
