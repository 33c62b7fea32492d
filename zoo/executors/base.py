"""What every executor is: something that runs a comparison's jobs and yields an ``Outcome``
per job. The rules that keep the results (a failure fails alone, Ctrl-C keeps what
finished, compare.json after every job) are ``zoo.comparing``'s, not an executor's.

This module knows no implementation: ``zoo.executors`` maps names to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Protocol

from zoo.errors import OptionError
from zoo.types import Event, Job, Outcome, shown


class Executor(Protocol):
    """Runs jobs somewhere and yields what became of each.

    ``run`` yields one ``Outcome`` per job (in any order). On Ctrl-C it yields the
    outcomes it still has (the interrupted job's saved run, jobs that finished meanwhile)
    and then raises ``KeyboardInterrupt``. ``prepared`` is one ``zoo.jobs.Prepared`` split
    for every job, or a function giving each job its own (``vary_split``).
    """

    name: str

    def run(self, jobs: list[Job], prepared, compare_dir: Path, on_event: Callable[[Event], object],
            registry=None, names: dict[Job, str] | None = None) -> Iterator[Outcome]: ...


def run_dir_names(jobs: list[Job]) -> list[str]:
    """A folder name per job: the model's name, plus recipe, knobs and seed where a model runs more than once."""
    recipes = {m: {j.recipe for j in jobs if j.model == m} for m in {j.model for j in jobs}}
    seeds = {m: {j.seed for j in jobs if j.model == m} for m in recipes}
    names = []
    for job in jobs:
        name = job.model
        if len(recipes[job.model]) > 1 and "recipe" not in job.settings:
            name += f"-{job.recipe}"
        for knob, value in job.knobs:  # a variant: baseline-cnn-dropout-0.5
            name += f"-{knob.replace('_', '-')}-{shown(value)}"
        if len(seeds[job.model]) > 1:
            name += f"-seed{job.seed}"
        names.append(name)
    return names


def check_counts(workers: int | None, threads: int | None) -> None:
    for parameter, value in (("workers", workers), ("threads", threads)):
        if value is not None and value < 1:
            raise OptionError("must be at least 1", parameter=parameter, value=value)
