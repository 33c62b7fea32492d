"""What a comparison was asked to do, as one value: ``Plan``.

A plan is made once, from ``zoo.compare``'s keywords (the CLI's flags map onto them) or from
an experiment, and checked when made: the models, variants and seeds (what to train), the
``Options`` (the data and the training), the ``Execution`` (how the jobs run) and the margin
(how a reproduction is judged). Its first part is written to the comparison's folder as
plan.json when the comparison starts; ``zoo.resume`` reads it back through the same
definition, so a stopped comparison goes on with what it was asked, and anything given
again must agree with the runs there. How it runs (executor, workers, seed batching) and the
margin are not saved: a comparison resumed another way is the same comparison.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from zoo.errors import OptionError, RunFileError
from zoo.executors import check_executor
from zoo.files import atomic_write_json, read_json
from zoo.knobs import knob_texts
from zoo.types import DEFAULT_SEED, Options, check_seed, parse_seeds

PLAN_FILE = "plan.json"
DEFAULT_MARGIN_POINTS = 0.2  # docs/tutorial.md says why


def flag(value, name: str) -> bool:
    """A True/False argument, checked (``quick=1`` is not silently True)."""
    if not isinstance(value, bool):
        raise OptionError(f"is True or False, not {value!r}", parameter=name)
    return value


def margin_fraction(points) -> float:
    """The equivalence margin, given in accuracy points, as a fraction."""
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not 0 < points < 100:
        raise OptionError(f"is in accuracy points, more than 0 and less than 100, not {points!r}", parameter="margin")
    return points / 100


@dataclass(frozen=True)
class Execution:
    """How a comparison's jobs run: not what they compute. Checked when made, before anything
    slow loads (one line for ``workers`` without Dask, an unknown executor, …)."""

    executor: str = "local"
    workers: int | None = None
    threads: int | None = None      # TensorFlow's threads per job (--threads-per-worker)
    scheduler: str | None = None    # a running Dask scheduler's address
    seed_batching: bool = True      # the seeds of a small model train together (zoo.seed_batches)

    def __post_init__(self):
        check_executor(self.executor, self.workers, self.threads, self.scheduler)
        flag(self.seed_batching, "seed_batching")


@dataclass(frozen=True)
class Plan:
    """What a comparison was asked: which models and variants, which seeds, on what data and
    with what training (``options``), how it runs (``execution``), how it is judged (``margin``,
    a fraction). Checked when made; ``to_json``/``read`` are plan.json."""

    # what to train
    models: tuple[str, ...] = ()      # names or fnmatch patterns; none: every model (or those tagged)
    tag: str | None = None
    vary: tuple[str, ...] = ()        # --vary as typed, "dropout=0,0.5": one row per value
    set: tuple[str, ...] = ()         # --set, "dropout=0.3": fixed for every variant
    experiment: str | None = None     # the registered experiment this comparison is, if any
    # which seeds
    seed: int = DEFAULT_SEED          # the first seed, and the seed of the train/validation split
    seeds: str | None = None          # as typed: a count ("5") or a list ("1,7,42"); None: [seed]
    # the data and the training
    options: Options = field(default_factory=Options)
    # how it runs, and how it is judged: not part of plan.json
    execution: Execution = field(default_factory=Execution, compare=False)
    margin: float = field(default=DEFAULT_MARGIN_POINTS / 100, compare=False)

    def __post_init__(self):
        models = [self.models] if isinstance(self.models, str) else self.models
        if not isinstance(models, (list, tuple)) or not all(isinstance(m, str) for m in models):
            raise OptionError(f"takes a model's name, a pattern or a list of them, not {self.models!r}",
                              parameter="models")
        object.__setattr__(self, "models", tuple(models))
        if self.tag is not None and not isinstance(self.tag, str):
            raise OptionError(f"is a tag's name, not {self.tag!r}", parameter="tag")
        object.__setattr__(self, "vary", tuple(knob_texts(self.vary, "vary")))
        object.__setattr__(self, "set", tuple(knob_texts(self.set, "set")))
        check_seed(self.seed)
        chosen = parse_seeds(self.seeds, self.seed)
        # kept as the seeds themselves ("42,43,44"; one seed keeps its comma), not a count that
        # would count from another --seed given on resuming; None: just ``seed``
        object.__setattr__(self, "seeds", None if chosen == [self.seed] else
                           ",".join(map(str, chosen)) + "," * (len(chosen) == 1))
        if not isinstance(self.options, Options) or not isinstance(self.execution, Execution):
            raise TypeError("Plan(options=) takes an Options, execution= an Execution")

    @classmethod
    def of(cls, models=None, *, seeds=None, seed: int = DEFAULT_SEED, tag: str | None = None, vary=None, set=None,
           epochs: int | None = None, batch_size: int | None = None, limit: int | None = None, quick: bool = False,
           validate_on: str = "val", dataset: str = "mnist", data_dir=None, precision: str = "float32",
           vary_split: bool = False, tensorboard: bool = False, test_each_epoch: bool = False,
           experiment: str | None = None, executor: str = "local", workers: int | None = None,
           threads: int | None = None, scheduler: str | None = None, seed_batching: bool = True,
           margin: float = DEFAULT_MARGIN_POINTS) -> Plan:
        """A plan from ``zoo.compare``'s keywords (``margin`` in accuracy points; ``quick``: one
        epoch unless ``epochs`` says otherwise)."""
        if flag(quick, "quick") and epochs is None:
            epochs = 1
        options = Options(epochs=epochs, batch_size=batch_size, limit=limit, validate_on=validate_on,
                          dataset=dataset, data_dir=data_dir, precision=precision,
                          vary_split=flag(vary_split, "vary_split"), tensorboard=flag(tensorboard, "tensorboard"),
                          seed_batching=flag(seed_batching, "seed_batching"),
                          test_each_epoch=flag(test_each_epoch, "test_each_epoch"))
        return cls(() if models is None else models, tag, vary or (), set or (), experiment, seed, seeds, options,
                   Execution(executor, workers, threads, scheduler, seed_batching), margin_fraction(margin))

    @property
    def seed_list(self) -> list[int]:
        return parse_seeds(self.seeds, self.seed)

    # -- plan.json ----------------------------------------------------------------------------
    def to_json(self) -> dict:
        """What plan.json holds: every choice that says what the comparison computes, by the
        names ``zoo.compare`` takes (``patterns`` for the models, as plan.json always spelled it)."""
        o = self.options
        return {"patterns": list(self.models), "tag": self.tag, "seed": self.seed, "seeds": self.seeds,
                "epochs": o.epochs, "batch_size": o.batch_size, "limit": o.limit, "validate_on": o.validate_on,
                "dataset": o.dataset, "data_dir": o.data_dir, "precision": o.precision, "vary_split": o.vary_split,
                "tensorboard": o.tensorboard, "test_each_epoch": o.test_each_epoch, "vary": list(self.vary),
                "set": list(self.set), "experiment": self.experiment}

    def arguments(self) -> dict:
        """The plan as ``Plan.of``'s (and ``zoo.compare``'s) keywords, without the execution."""
        saved = self.to_json()
        return {"models": saved.pop("patterns"), **saved}

    def write(self, folder) -> None:
        atomic_write_json(Path(folder) / PLAN_FILE, self.to_json())

    @classmethod
    def read(cls, folder) -> Plan | None:
        """The plan saved in a comparison's folder, checked (a hand-edited plan.json is not
        trusted); None for a folder an older zoo made without one."""
        path = Path(folder) / PLAN_FILE
        if not path.is_file():
            return None
        again = "give the comparison's command again with --resume"
        try:
            saved = read_json(path, "plan", limit=1_000_000)
        except RunFileError as exc:
            raise RunFileError(f"{exc}; {again}") from None
        if not isinstance(saved, dict):
            raise RunFileError(f"{path}: not a comparison's plan; {again}")
        known = _plan_json_types()
        chosen = {}
        for key, kind in known.items():
            value = saved.get(key)
            if value is None:
                continue
            if key == "seeds" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
            if kind is list and not wrong:
                wrong = not all(isinstance(p, str) for p in value)
            if wrong:
                raise RunFileError(f"{path}: {key!r} should be {'a list of names' if kind is list else kind.__name__}"
                                   f", not {json.dumps(value)[:60]}; {again}")
            chosen["models" if key == "patterns" else key] = value
        try:
            return cls.of(**chosen)
        except OptionError as exc:
            raise RunFileError(f"{path}: {exc}; {again}") from None

    def resumed(self, given: dict, execution: Execution, margin: float) -> tuple[Plan, dict]:
        """This (saved) plan with ``given`` (``zoo.compare``'s keywords) over it; returns the
        plan to use and the choices taken from this one that differ from ``zoo.compare``'s defaults."""
        saved = self.arguments()
        unknown = sorted(set(given) - set(saved) - {"quick"})
        if unknown:
            raise OptionError(f"resume takes {', '.join([*saved, 'quick'])}, not {', '.join(unknown)}")
        if given.get("quick") and given.get("epochs") is None:
            given = {**given, "epochs": 1}
        given = {k: v for k, v in given.items() if k != "quick"}
        plan = Plan.of(**{**saved, **given}, margin=margin * 100, **_execution_arguments(execution))
        defaults = Plan.of().arguments()
        taken = {k: v for k, v in saved.items()
                 if k not in given and v not in (None, False, [], ()) and defaults.get(k) != v}
        return plan, taken

    def flags(self, chosen: dict | None = None) -> str:
        """Choices (``arguments()``-style; default: all of them) as the command-line options one would type."""
        chosen = self.arguments() if chosen is None else chosen
        words = list(chosen.get("models") or [])
        for key, value in chosen.items():
            if key in ("vary", "set"):
                words += [part for text in value or [] for part in (f"--{key}", text)]
            elif key in ("experiment", "test_each_epoch", "models"):  # an experiment's own settings: no flags
                continue
            elif value not in (None, False, [], ()):
                words += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
        return " ".join(words)


def _execution_arguments(execution: Execution) -> dict:
    return {f.name: getattr(execution, f.name) for f in fields(execution)}


def _plan_json_types() -> dict:
    """plan.json's keys and the JSON type each must have, from ``Plan.of``'s own signature."""
    kinds = {"models": list, "seeds": str, "vary": list, "set": list, "data_dir": str, "tag": str,
             "experiment": str}
    names = [n for n in inspect.signature(Plan.of).parameters
             if n not in ("cls", "quick", "executor", "workers", "threads", "scheduler", "seed_batching", "margin")]
    defaults = {n: p.default for n, p in inspect.signature(Plan.of).parameters.items()}
    found = {}
    for name in names:
        kind = kinds.get(name) or (type(defaults[name]) if defaults[name] is not None else int)
        found["patterns" if name == "models" else name] = kind
    return found
