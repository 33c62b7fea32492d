"""The value types every layer shares: what a user asked for (``Options``), one unit of
work (``Job``, made by ``zoo.jobs.make_jobs``), what happened to it (``Event``) and what
became of it (``Outcome``).

This module imports nothing of the zoo but its exceptions, so that the job runner, the
executors, the displays and the API can all use these types without importing each other.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import OptionError

if TYPE_CHECKING:  # only for annotations: runs imports pydantic
    from zoo.runs import RunRecord

DEFAULT_SEED = 42  # the seed of a run, and of the train/validation split, when none is given
MAX_SEED = 2**32 - 1  # what NumPy and the backends accept
MIN_LIMIT = 20  # the fewest training images a run may use (--limit)
VALIDATE_ON = ("val", "test")
# "float32" (what the articles ran), or Keras's mixed policies: faster where the hardware
# has the units, and the numbers change, so only on request.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
TENSORBOARD_INSTALL = "pip install 'mnist-zoo[tensorboard]'"


def has_tensorboard() -> bool:
    """Keras's TensorBoard callback writes through the tensorboard package, which TensorFlow no longer brings."""
    return importlib.util.find_spec("tensorboard") is not None


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise OptionError(f"must be a whole number from 0 to {MAX_SEED}, not {seed!r}", parameter="seed")
    return seed


MAX_SEEDS = 1000  # runs per model and recipe in one comparison


def parse_seeds(text: str | int | list | tuple | None, first: int = DEFAULT_SEED) -> list[int]:
    """``--seeds N`` (N seeds counting up from ``first``) or ``--seeds 1,7,42``; without it, ``[first]``.

    The Python API also takes an int (a count) or a list of seeds."""
    if text is None:
        return [check_seed(first)]
    if isinstance(text, bool):
        raise OptionError(f"seeds takes a count or a list of seeds, not {text!r}")
    if isinstance(text, int):
        text = str(text)
    elif isinstance(text, (list, tuple)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in text):
            raise OptionError(f"seeds: give whole numbers, not {list(text)!r}")
        text = ",".join(map(str, text)) + "," * (len(text) == 1)
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise OptionError(f"takes a count or a comma-separated list of seeds, not {text!r}", parameter="seeds") from None
    if len(values) == 1 and "," not in text:
        if not 1 <= values[0] <= MAX_SEEDS:
            raise OptionError(f": give between 1 and {MAX_SEEDS} seeds", parameter="seeds", value=values[0])
        values = [first + i for i in range(values[0])]
    if not values or len(set(values)) != len(values):
        raise OptionError(": give each seed once", parameter="seeds", value=text[:60])
    if len(values) > MAX_SEEDS:  # a list, from a command line or a plan.json, not only a count
        raise OptionError(f": {len(values):,} seeds; give at most {MAX_SEEDS}", parameter="seeds")
    return [check_seed(v) for v in values]


@dataclass(frozen=True)
class Options:
    """What the user asked for, shared by every job of a comparison; None means "as the recipe says".

    Checked once, when made: every command and executor can trust it afterwards.
    """

    epochs: int | None = None
    batch_size: int | None = None
    limit: int | None = None
    validate_on: str = "val"
    dataset: str = "mnist"
    data_dir: str | None = None
    precision: str = "float32"
    # Each seed draws its own train/validation split too (Bouthillier et al. 2021); by
    # default the split stays fixed and only weights and shuffling change with the seed.
    vary_split: bool = False
    # Also write TensorBoard logs into each run directory (the tensorboard extra).
    tensorboard: bool = False
    # Train the seeds of one small model together, as one computation (zoo.seed_batches):
    # the same recipe, seeds and batches, faster (the same weights to rounding, bit for bit where
    # the kernels round alike). False trains them one after another.
    # How, not what: a comparison resumed the other way is the same comparison.
    seed_batching: bool = field(default=True, compare=False)
    # Record the test set's accuracy after every epoch, as the articles watched it (the
    # validate-on-test experiment measures what choosing an epoch on it costs).
    test_each_epoch: bool = False

    def __post_init__(self):
        if self.validate_on not in VALIDATE_ON:
            raise OptionError(f"must be 'val' or 'test', not {self.validate_on!r}", parameter="validate_on")
        if self.precision not in PRECISIONS:
            raise OptionError(f"must be one of {', '.join(PRECISIONS)}, not {self.precision!r}", parameter="precision")
        for key in ("epochs", "batch_size", "limit"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise OptionError(f"must be a whole number, not {value!r}", parameter=key)
            if value is not None and value < 1:
                raise OptionError("must be at least 1", parameter=key, value=value)
        if self.limit is not None and self.limit < MIN_LIMIT:
            raise OptionError(f"is too small: use at least {MIN_LIMIT} images", parameter="limit", value=self.limit)
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            object.__setattr__(self, "data_dir", str(self.data_dir))  # a Path from the API
        if self.tensorboard and not has_tensorboard():
            raise OptionError(f"needs TensorBoard: {TENSORBOARD_INSTALL}", parameter="tensorboard", value=True)


@dataclass(frozen=True)
class Job:
    """One training run to do: a model, one of its recipes, a seed, and the shared options."""

    model: str
    recipe: str
    seed: int
    options: Options
    epochs: int        # resolved: the recipe's, unless the options (or a knob) override it
    batch_size: int
    # A variant's knob settings (zoo.knobs), in the order given: () is the model as registered.
    knobs: tuple = ()
    # What the knobs change (a ``zoo.knobs.Applied``: build()'s arguments, the recipe), worked out
    # once by ``zoo.jobs.make_jobs``; not part of the job's identity
    applied: Any = field(default=None, compare=False, hash=False, repr=False)

    @property
    def settings(self) -> dict:
        return dict(self.knobs)

    @property
    def name(self) -> str:
        """The model, or the variant: ``baseline-cnn[dropout=0.5]``."""
        return label(self.model, self.settings)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.recipe} seed {self.seed}"


def shown(value) -> str:
    """A knob's value as typed: 0 not 0.0, 0.5, true, adam."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value == 0:
        return "0"
    return str(value)


def name_of(row: dict) -> str:
    """What a comparison row is called in tables, figures and pages: its model, or its variant."""
    return str(row.get("label") or row.get("model"))


def label(model: str, settings: dict | None) -> str:
    """``baseline-cnn[dropout=0.5]``: how a variant is named in tables, figures and reports."""
    return f"{model}[{','.join(f'{k}={shown(v)}' for k, v in settings.items())}]" if settings else model


@dataclass(frozen=True)
class Event:
    """Something that happened to a job. ``kind`` is one of:

    ``queued`` (an executor that runs several jobs at once has it waiting), ``started``
    (epochs, steps per epoch known), ``epoch_started``, ``step`` (steps done in this epoch;
    ``metrics`` a few times a second), ``epoch_ended`` (``metrics``: the epoch's logs,
    ``seconds``), ``finished`` (``record``), ``failed`` (``error``). ``worker`` names the
    Dask worker running it, if any.
    """

    kind: str
    job: Job
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    metrics: dict[str, float] | None = None
    seconds: float | None = None
    record: Any = None  # a RunRecord, on "finished"
    error: str | None = None
    worker: str | None = None


def ignore_event(event: Event) -> None:
    pass


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
