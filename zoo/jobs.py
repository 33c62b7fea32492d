"""The job API: one (model, recipe, seed, options) trained into one run directory.

A comparison, ``zoo train``, the benchmarks and any executor all come down to::

    options = Options(epochs=1, limit=3000)            # checked once, here
    jobs = make_jobs([zoo.architecture("mlp")], options, seeds=[42])
    prepared = prepare(zoo, options, split_seed=42)    # the same split for every job
    record = run_job(jobs[0], prepared, run_dir, on_event=print)

``run_job`` seeds, builds, compiles, fits, saves and evaluates; it reports progress as
``Event`` objects to ``on_event`` and returns the typed ``RunRecord``. It imports no
display, console or figures: whoever listens to the events draws them.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zoo import data as datamod
from zoo.errors import ZooError
from zoo.keras_glue import PRECISIONS
from zoo.runs import (DatasetInfo, PublishedInfo, RunRecord, SourceInfo, SplitInfo, write_history,
                      write_predictions, write_record)

DEFAULT_SEED = 42
MAX_SEED = 2**32 - 1  # what NumPy and the backends accept
VALIDATE_ON = ("val", "test")
TENSORBOARD_INSTALL = "pip install 'mnist-zoo[tensorboard]'"
TENSORBOARD_DIR = "tensorboard"


def has_tensorboard() -> bool:
    """Keras's TensorBoard callback writes through the tensorboard package, which TensorFlow no longer brings."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def check_seed(seed: int) -> int:
    if not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ZooError(f"--seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}")
    return seed


def parse_seeds(text: str | None, first: int = DEFAULT_SEED) -> list[int]:
    """``--seeds N`` (N seeds counting up from ``first``) or ``--seeds 1,7,42``; without it, ``[first]``."""
    if text is None:
        return [check_seed(first)]
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ZooError(f"--seeds takes a count or a comma-separated list of seeds, not {text!r}") from None
    if len(values) == 1 and "," not in text:
        if not 1 <= values[0] <= 1000:
            raise ZooError(f"--seeds {values[0]}: give between 1 and 1000 seeds")
        values = [first + i for i in range(values[0])]
    if not values or len(set(values)) != len(values):
        raise ZooError(f"--seeds {text}: give each seed once")
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
    # "float32" (what the articles ran), or Keras's "mixed_bfloat16" / "mixed_float16":
    # faster where the hardware has the units, and the numbers change, so only on request.
    precision: str = "float32"
    # Each seed draws its own train/validation split too (Bouthillier et al. 2021); by
    # default the split stays fixed and only weights and shuffling change with the seed.
    vary_split: bool = False
    # Also write TensorBoard logs into each run directory (the tensorboard extra).
    tensorboard: bool = False

    def __post_init__(self):
        if self.validate_on not in VALIDATE_ON:
            raise ZooError(f"--validate-on must be 'val' or 'test', not {self.validate_on!r}")
        if self.precision not in PRECISIONS:
            raise ZooError(f"--precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        for key in ("epochs", "batch_size", "limit"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ZooError(f"--{key.replace('_', '-')} must be at least 1")
        if self.limit is not None and self.limit < datamod.MIN_LIMIT:
            raise ZooError(f"--limit {self.limit} is too small: use at least {datamod.MIN_LIMIT} images")
        if self.tensorboard and not has_tensorboard():
            raise ZooError(f"--tensorboard needs TensorBoard: {TENSORBOARD_INSTALL}")


@dataclass(frozen=True)
class Job:
    """One training run to do: a model, one of its recipes, a seed, and the shared options."""

    model: str
    recipe: str
    seed: int
    options: Options
    epochs: int        # resolved: the recipe's, unless the options override it
    batch_size: int

    @property
    def label(self) -> str:
        return f"{self.model}/{self.recipe} seed {self.seed}"


def make_jobs(architectures, options: Options, seeds=(DEFAULT_SEED,), recipe: str | None = None) -> list[Job]:
    """One job per architecture and seed, with the recipe resolved once (default: each one's first)."""
    jobs = []
    for arch in architectures:
        chosen = arch.recipe(recipe)
        for seed in seeds:
            jobs.append(Job(arch.name, chosen.name, check_seed(seed), options,
                            options.epochs if options.epochs is not None else chosen.epochs,
                            options.batch_size if options.batch_size is not None else chosen.batch_size))
    return jobs


# -- events ----------------------------------------------------------------------------
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
    record: RunRecord | None = None
    error: str | None = None
    worker: str | None = None


def ignore_event(event: Event) -> None:
    pass


# -- data --------------------------------------------------------------------------------
@dataclass
class Prepared:
    """One dataset split once, shared by every job of a comparison."""

    arrays: datamod.Arrays
    split: datamod.Split

    def parts(self, input_kind: str, labels: str):
        a, s, k = self.arrays, self.split, self.arrays.dataset.num_classes
        x_train = datamod.prepare_x(a.x_train[s.train], input_kind)
        y_train = datamod.prepare_y(a.y_train[s.train], labels, k)
        x_test = datamod.prepare_x(a.x_test, input_kind)
        y_test = datamod.prepare_y(a.y_test, labels, k)
        if s.validate_on == "test":
            x_val, y_val = x_test, y_test
        else:
            x_val = datamod.prepare_x(a.x_train[s.val], input_kind)
            y_val = datamod.prepare_y(a.y_train[s.val], labels, k)
        return (x_train, y_train), (x_val, y_val), (x_test, y_test)

    @functools.cached_property
    def test_sha256(self) -> str:
        """The test set's identity (images and labels): per-image results pair only within one."""
        return test_set_sha256(self.arrays.x_test, self.arrays.y_test)

    def describe(self) -> str:
        return self.split.describe(len(self.arrays.x_test))


def test_set_sha256(x_test: np.ndarray, y_test: np.ndarray) -> str:
    """A test set's identity (images and labels), as run.json and test_predictions.npz record it."""
    digest = hashlib.sha256(np.ascontiguousarray(x_test).tobytes())
    digest.update(np.ascontiguousarray(y_test).astype(np.int64).tobytes())
    return digest.hexdigest()


def prepare(registry, options: Options, split_seed: int = DEFAULT_SEED) -> Prepared:
    """Load the options' dataset and split it (stratified, seeded by ``split_seed``)."""
    arrays = datamod.load(registry.dataset(options.dataset), options.data_dir)
    split = datamod.make_split(arrays.y_train, options.validate_on, check_seed(split_seed), options.limit)
    return Prepared(arrays, split)


# -- evaluation -------------------------------------------------------------------------------
def evaluate_predictions(probabilities: np.ndarray, y_true: np.ndarray, num_classes: int) -> dict:
    """Accuracy, cross-entropy, per-class accuracy, confusion matrix and per-image results."""
    predicted = probabilities.argmax(axis=1)
    p_true = probabilities[np.arange(len(y_true)), y_true]
    clipped = np.clip(p_true, 1e-7, 1 - 1e-7)
    confusion = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(confusion, (y_true, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float((predicted == y_true).mean()),
        "test_loss": float(-np.log(clipped).mean()),
        "per_class_accuracy": [round(float(v), 4) for v in per_class],
        "confusion_matrix": confusion.tolist(),
        "predicted": predicted,
        "p_true": p_true,
    }


def predict_probabilities(model, x, output: str = "probabilities", batch_size: int = 1024) -> np.ndarray:
    """Class probabilities for ``x`` (softmax applied here when the model gives logits)."""
    from zoo.keras_glue import input_pipeline_without_autotuning

    with input_pipeline_without_autotuning():
        out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float64")
    if output == "logits":
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out


def evaluate_model(model, arrays: datamod.Arrays, input_kind: str, output: str) -> dict:
    """The test-set evaluation ``run_job``, ``zoo evaluate`` and the report all use."""
    x = datamod.prepare_x(arrays.x_test, input_kind)
    return evaluate_predictions(predict_probabilities(model, x, output), arrays.y_test.astype("int64"),
                                arrays.dataset.num_classes)


# -- running one job ------------------------------------------------------------------------------
class Interrupted(Exception):
    """Training was stopped by Ctrl-C; ``record`` is the saved, interrupted run."""

    def __init__(self, record: RunRecord):
        super().__init__("interrupted")
        self.record = record


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def command_line() -> str | None:
    return " ".join(["zoo", *sys.argv[1:]]) if Path(sys.argv[0]).name in ("zoo", "__main__.py") else None


def run_job(job: Job, prepared: Prepared, run_dir, on_event: Callable[[Event], Any] | None = None,
            registry=None, extra_callbacks=()) -> RunRecord:
    """Train ``job`` on ``prepared`` data into ``run_dir``; return its record.

    Raises ``Interrupted`` (with the saved run) on Ctrl-C and ``ZooError`` for anything
    else that goes wrong, a plugin's broken model included: one job fails alone.
    """
    import keras

    from zoo.keras_glue import seeded

    emit = on_event or ignore_event
    keras.backend.clear_session()  # a fresh graph per model: nothing left over from the last one
    try:
        with seeded(job.seed):  # the seeds, the weights, the shuffling: this job's alone
            return _run(job, prepared, Path(run_dir), emit, registry, extra_callbacks)
    except (Interrupted, KeyboardInterrupt):
        raise
    except ZooError as exc:
        emit(Event("failed", job, error=str(exc)))
        raise
    except Exception as exc:  # a plugin's model that cannot train fails alone
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        error = f"{job.model}: training failed ({type(exc).__name__}: {message})"
        emit(Event("failed", job, error=error))
        raise ZooError(error) from None


def _run(job, prepared, run_dir, emit, registry, extra_callbacks) -> RunRecord:
    from zoo import backend, keras_glue
    from zoo.callbacks import RunCallback
    from zoo.plugins import get_zoo
    from zoo.stats import build_model, model_stats, training_cost

    arch = (registry or get_zoo()).architecture(job.model)
    recipe = arch.recipe(job.recipe)
    dataset = prepared.arrays.dataset
    options = job.options

    with keras_glue.dtype_policy(options.precision):
        model = build_model(arch, dataset.image_shape, dataset.num_classes)
    stats = model_stats(model, name=arch.name)
    if stats.output_shape != (None, dataset.num_classes):
        raise ZooError(f"{arch.name}: output shape {stats.output_shape}, expected (None, {dataset.num_classes})")
    (x_train, y_train), (x_val, y_val), (x_test, _) = prepared.parts(arch.input_kind, recipe.labels)
    steps_per_epoch = -(-len(x_train) // job.batch_size)
    execution = keras_glue.execution_settings(stats.macs, job.batch_size)
    model.compile(optimizer=recipe.build_optimizer(total_steps=job.epochs * steps_per_epoch),
                  loss=keras_glue.build_loss(recipe.loss, from_logits=arch.output == "logits"),
                  metrics=["accuracy"], **execution)
    execution = {**execution, "jit_compile": bool(model.jit_compile), "precision": options.precision,
                 "threads": keras_glue.threads_in_use(), "fast_paths": []}
    if keras_glue.fast_path_enabled("quiet-import"):
        execution["fast_paths"].append("quiet-import")

    overrides = {k: {"recipe": r, "used": u} for k, r, u in
                 (("epochs", recipe.epochs, job.epochs), ("batch_size", recipe.batch_size, job.batch_size))
                 if r != u}
    record = RunRecord(
        model=arch.name, title=arch.title, recipe=recipe.name, status="running", seed=job.seed,
        started_at=_now(), command=command_line(), execution=execution,
        hyperparameters={"optimizer": recipe.optimizer, "schedule": recipe.schedule,
                         "weight_average": recipe.weight_average, "loss": recipe.loss, "labels": recipe.labels,
                         "batch_size": job.batch_size, "epochs": job.epochs},
        overrides=overrides,
        dataset=DatasetInfo(name=dataset.name, source=prepared.arrays.source,
                            class_names=[str(c) for c in dataset.class_names],
                            image_shape=list(dataset.image_shape), test_sha256=prepared.test_sha256),
        input_kind=arch.input_kind, output=arch.output,
        data_preparation=datamod.describe_preparation(arch, recipe),
        split=SplitInfo(validate_on=prepared.split.validate_on, train=int(len(prepared.split.train)),
                        validation=int(len(x_val)), test=int(len(x_test)), limit=options.limit,
                        seed=prepared.split.seed, article_validated_on=recipe.validation,
                        varies_with_seed=options.vary_split),
        params=stats.params, trainable_params=stats.trainable, macs=stats.macs,
        published=None if recipe.published is None else PublishedInfo(recipe.published.test_accuracy,
                                                                       recipe.published.test_loss),
        source=SourceInfo(recipe.source.title, recipe.source.article_file, recipe.source.url),
        environment=backend.describe(),
        run_dir=str(run_dir),
    )

    emit(Event("started", job, epochs=job.epochs, steps=steps_per_epoch))
    tracker = RunCallback(job, emit, steps_per_epoch)
    if options.tensorboard:  # `tensorboard --logdir runs/` then shows every run
        import keras

        extra_callbacks = [*extra_callbacks, keras.callbacks.TensorBoard(log_dir=str(run_dir / TENSORBOARD_DIR))]
        execution["tensorboard"] = TENSORBOARD_DIR
    interrupted = False
    t0 = time.perf_counter()
    try:
        with keras_glue.input_pipeline_without_autotuning() as autotuning_off:
            if autotuning_off:  # recorded only where it really applied
                execution["tf_data_autotune"] = False
                execution["fast_paths"].append("tf-data-autotune-off")
            model.fit(x_train, y_train, batch_size=job.batch_size, epochs=job.epochs,
                      validation_data=(x_val, y_val), shuffle=True, verbose=0,
                      callbacks=[tracker, *extra_callbacks])
    except KeyboardInterrupt:
        interrupted = True
    record.training_seconds = round(time.perf_counter() - t0, 3)

    history = {k: [float(v) for v in vals] for k, vals in tracker.history.items()}
    history["seconds"] = [round(s, 3) for s in tracker.seconds]
    record.epochs_completed = len(tracker.seconds)
    record.epoch_seconds = history["seconds"]
    cpu = record.environment.get("cpu") or {}
    record.cost = training_cost(stats.macs, len(x_train), tracker.seconds,
                                cpu.get("gflops") if record.environment.get("device") == "CPU" else None)
    record.seconds_per_epoch = round(float(np.mean(tracker.seconds)), 3) if tracker.seconds else None
    if history.get("val_accuracy"):
        record.best_val_accuracy = max(history["val_accuracy"])
        record.best_epoch = int(np.argmax(history["val_accuracy"]) + 1)

    if interrupted:
        # The saved model must be what the record says: the last completed epoch's weights.
        record.model_weights = tracker.restore_last_epoch(model)
        record.status = "interrupted"
        record.finished_at = _now()
        _save(run_dir, model, history, record, step_history=tracker.step_history())
        raise Interrupted(record)

    metrics = evaluate_predictions(predict_probabilities(model, x_test, arch.output),
                                   prepared.arrays.y_test.astype("int64"), dataset.num_classes)
    predicted, p_true = metrics.pop("predicted"), metrics.pop("p_true")
    for key, value in metrics.items():
        setattr(record, key, value)
    record.status = "completed"
    record.finished_at = _now()
    correct = predicted == prepared.arrays.y_test
    _save(run_dir, model, history, record, (predicted, p_true, prepared.test_sha256, correct),
          tracker.step_history())
    emit(Event("finished", job, record=record))
    return record


def _save(run_dir: Path, model, history: dict, record: RunRecord, predictions=None, step_history=None) -> None:
    """Write the run's files, run.json last; a failure names what was kept and what was not."""
    from zoo.files import atomic_save_model

    steps = [("model.keras", lambda: atomic_save_model(model, run_dir / "model.keras")),
             ("history", lambda: write_history(run_dir, history, step_history))]
    if predictions is not None:
        steps.append(("test_predictions.npz", lambda: write_predictions(run_dir, *predictions)))
    steps.append(("run.json", lambda: write_record(run_dir, record)))
    kept = []
    for name, write in steps:
        try:
            write()
        except Exception as exc:  # noqa: BLE001  (a full disk reaches us through Keras and h5py too)
            missing = [n for n, _ in steps[len(kept):]]
            reason = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {str(exc)[:120]}"
            raise ZooError(f"{record.model}: trained, but saving it in {run_dir} failed ({reason}); "
                           f"written: {', '.join(kept) or 'nothing'}; not written: {', '.join(missing)}",
                           exit_code=1) from None
        kept.append(name)
