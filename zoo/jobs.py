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
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from zoo import backend, diagnosis, keras_glue, seed_batches, stopping
from zoo import data as datamod
from zoo.anatomy import build_model, model_stats, training_cost
from zoo.errors import DataError, Interrupted, NotSaved, TrainingError, ZooError
from zoo.evaluation import (
    evaluate_predictions,
    predict_probabilities,
    test_set_sha256,
)
from zoo.files import atomic_save_model
from zoo.input_pipeline import training_batches, validation_batches
from zoo.keras_glue import build_loss, seeded
from zoo.knobs import apply, variants
from zoo.plugins import get_zoo, output_problem
from zoo.runs import (
    DatasetInfo,
    PublishedInfo,
    RunRecord,
    SourceInfo,
    SplitInfo,
    read_record,
    remove_if_empty,
    write_history,
    write_predictions,
    write_record,
)
from zoo.types import (
    DEFAULT_SEED,
    Event,
    Job,
    Options,
    check_seed,
    ignore_event,
)

TENSORBOARD_DIR = "tensorboard"


# -- data --------------------------------------------------------------------------------
@dataclass
class Prepared:
    """One dataset split once, shared by every job of a comparison."""

    arrays: datamod.Arrays
    split: datamod.Split
    # images prepared once per input kind and labels once per encoding: the ten seeds of a batch
    # and the models of a comparison share them (measured: 0.18 s an array in a fresh process,
    # 5.5 s of a ten-seed speedrun batch)
    _prepared: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def parts(self, input_kind: str, labels: str):
        """(x, y) for training, validation and test, as a model of this input kind and loss takes
        them; the same read-only arrays for every run that asks (a run that changed them in place
        would change the next run's data: it gets an error instead)."""
        k = self.arrays.dataset.num_classes
        x_train, x_val, x_test = self._once(("x", input_kind), lambda x: datamod.prepare_x(x, input_kind))
        y_train, y_val, y_test = self._once(("y", labels), lambda y: datamod.prepare_y(y, labels, k))
        return (x_train, y_train), (x_val, y_val), (x_test, y_test)

    def __getstate__(self):
        # what a Dask worker is sent (scattered to every worker): the split, never the arrays
        # prepared from it, which the worker makes again (tens of MB more to send otherwise)
        return {**self.__dict__, "_prepared": {}}

    def _once(self, key, prepare) -> tuple:
        """Training, validation and test arrays of the images (key "x") or labels ("y"), prepared once."""
        if key not in self._prepared:
            a, s = self.arrays, self.split
            train, test = (a.x_train, a.x_test) if key[0] == "x" else (a.y_train, a.y_test)
            tested = prepare(test)
            made = (prepare(train[s.train]), tested if s.validate_on == "test" else prepare(train[s.val]), tested)
            for array in made:
                array.flags.writeable = False
            self._prepared[key] = made
        return self._prepared[key]

    @functools.cached_property
    def test_sha256(self) -> str:
        """The test set's identity (images and labels): per-image results pair only within one."""
        return test_set_sha256(self.arrays.x_test, self.arrays.y_test)

    def describe(self) -> str:
        return self.split.describe(len(self.arrays.x_test))


def prepare(registry, options: Options, split_seed: int = DEFAULT_SEED) -> Prepared:
    """Load the options' dataset and split it (stratified, seeded by ``split_seed``)."""
    arrays = datamod.load(registry.dataset(options.dataset), options.data_dir)
    if arrays.dataset.num_classes < 2:  # a one-output softmax is always "right": 100% that means nothing

        raise DataError(f"{arrays.dataset.name} has {arrays.dataset.num_classes} class "
                        f"({', '.join(map(str, arrays.dataset.class_names))}): a classifier needs two or more to train")
    split = datamod.make_split(arrays.y_train, options.validate_on, check_seed(split_seed), options.limit)
    return Prepared(arrays, split)


# -- running one job ------------------------------------------------------------------------------

class NotBatched(Exception):
    """These seeds cannot train batched (the message says why); nothing was saved: train them alone."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def command_line() -> str | None:
    return " ".join(["zoo", *sys.argv[1:]]) if Path(sys.argv[0]).name in ("zoo", "__main__.py") else None


def make_jobs(architectures, options: Options, seeds=(DEFAULT_SEED,), recipe: str | None = None,
              vary=None, settings=None) -> list[Job]:
    """The jobs of a comparison: one per architecture, variant and seed, each with its recipe,
    epochs and batch size resolved once (the recipe's, unless ``options`` or a knob say
    otherwise; a knob wins over ``options``: the variant is what was asked). ``recipe``: the
    recipe's name (default: each architecture's first); ``vary``/``settings``: ``zoo.knobs``'s
    ``--vary`` and ``--set`` (none: each model as registered)."""
    jobs = []
    for arch in architectures:
        for variant in variants(arch, vary, settings) if vary or settings else [{}]:
            applied = apply(arch, {"recipe": recipe, **variant} if recipe else variant)
            chosen = applied.recipe
            epochs = applied.epochs or (options.epochs if options.epochs is not None else chosen.epochs)
            batch = applied.batch_size or (options.batch_size if options.batch_size is not None else chosen.batch_size)
            jobs.extend(Job(arch.name, chosen.name, check_seed(seed), options, epochs, batch, tuple(variant.items()),
                            applied) for seed in seeds)
    return jobs


def _published(recipe, dataset):
    """The article's result, where this run is on the dataset it was published for."""
    found = recipe.published
    if found is None or found.dataset != dataset.name:
        return None
    return PublishedInfo(found.test_accuracy, found.test_loss)


def run_job(job: Job, prepared: Prepared, run_dir, on_event: Callable[[Event], Any] | None = None,
            registry=None, extra_callbacks=(), batching: dict | None = None) -> RunRecord:
    """Train ``job`` on ``prepared`` data into ``run_dir``; return its record.

    Raises ``Interrupted`` (with the saved run) on Ctrl-C and ``ZooError`` for anything
    else that goes wrong, a plugin's broken model included: one job fails alone.
    """
    import keras

    emit = on_event or ignore_event
    keras.backend.clear_session()  # a fresh graph per model: nothing left over from the last one
    try:
        with seeded(job.seed):  # the seeds, the weights, the shuffling: this job's alone
            return _run(job, prepared, Path(run_dir), emit, registry, extra_callbacks, batching)
    except (Interrupted, KeyboardInterrupt):
        raise
    except ZooError as exc:
        emit(Event("failed", job, error=str(exc)))
        raise
    except Exception as exc:  # a plugin's model that cannot train fails alone
        error = f"{job.model}: training failed ({type(exc).__name__}: {useful_line(exc)})"
        emit(Event("failed", job, error=error))
        raise TrainingError(error) from None


# Lines of Keras's and TensorFlow's error messages that say where, not what.
_BOILERPLATE = ("exception encountered when calling", "arguments received by", "traceback", "file \"", "node:",
                "graph execution error", "detected at node", "•", "in user code", "call context")


_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def useful_line(exc: BaseException, limit: int = 240) -> str:
    """The line of an exception's message that says what went wrong: Keras and TensorFlow open
    theirs with where it happened ("Exception encountered when calling Sequential.call()"), and
    Keras marks words in bold with terminal escape codes, which a one-line error leaves out."""
    lines = [line.strip() for line in _TERMINAL_CODES.sub("", str(exc)).splitlines() if line.strip()]
    telling = [line for line in lines if not line.lower().startswith(_BOILERPLATE)]
    line = (telling or lines or [""])[0]
    return line if len(line) <= limit else line[:limit - 1] + "…"


@dataclass
class _Started:
    """A job's model built and compiled, its data and its record begun: ready to fit."""

    job: Job
    arch: Any
    model: Any
    record: RunRecord
    train: tuple
    validation: tuple
    x_test: Any
    steps_per_epoch: int
    run_dir: Path


def _start(job, prepared, run_dir, registry, branches: int = 1, applied=None) -> _Started:
    """Build, check and compile ``job``'s model and begin its record (``branches``: how many
    seeds train together with it, whose step is that much more work; ``applied``: its knobs
    applied, where a seed batch did it once for all its seeds)."""
    arch = (registry or get_zoo()).architecture(job.model)
    applied = applied or job.applied or apply(arch, {**job.settings, "recipe": job.recipe})  # build() and recipe
    recipe = applied.recipe
    dataset = prepared.arrays.dataset
    options = job.options

    with keras_glue.dtype_policy(options.precision):
        model = build_model(arch, dataset.image_shape, dataset.num_classes, applied.build_kwargs)
    stats = model_stats(model, name=arch.name)
    problem = output_problem(arch.name, stats, dataset.num_classes)
    if problem:
        raise TrainingError(problem)
    (x_train, y_train), (x_val, y_val), (x_test, _) = prepared.parts(arch.input_kind, recipe.labels)
    steps_per_epoch = -(-len(x_train) // job.batch_size)
    # a seed batch's step is the seeds' steps together: measured, ten speedrun seeds ran an
    # epoch in 24.3 s at one step per call and 28.2 s at 52 (benchmarks/seed_batching.py)
    execution = keras_glue.execution_settings(stats.macs * branches, job.batch_size, steps_per_epoch=steps_per_epoch)
    model.compile(optimizer=recipe.build_optimizer(total_steps=job.epochs * steps_per_epoch),
                  loss=keras_glue.build_loss(recipe.loss, from_logits=arch.output == "logits",
                                             label_smoothing=recipe.label_smoothing),
                  metrics=["accuracy"], **execution)
    execution = {**execution, "jit_compile": bool(model.jit_compile), "precision": options.precision,
                 "threads": keras_glue.threads_in_use(),
                 "fast_paths": [p for p in ("quiet-import", "seed-generator", "layer-names") if keras_glue.applies(p)]}

    overrides = {k: {"recipe": r, "used": u} for k, r, u in
                 (("epochs", recipe.epochs, job.epochs), ("batch_size", recipe.batch_size, job.batch_size))
                 if r != u}
    record = RunRecord(
        model=arch.name, title=arch.title, recipe=recipe.name, status="running", seed=job.seed,
        knobs=job.settings,
        started_at=_now(), command=command_line(), execution=execution,
        hyperparameters={"optimizer": recipe.optimizer, "schedule": recipe.schedule,
                         "weight_average": recipe.weight_average, "loss": recipe.loss, "labels": recipe.labels,
                         "label_smoothing": recipe.label_smoothing,
                         "batch_size": job.batch_size, "epochs": job.epochs},
        overrides=overrides,
        dataset=DatasetInfo(name=dataset.name, source=prepared.arrays.source,
                            class_names=[str(c) for c in dataset.class_names],
                            image_shape=list(dataset.image_shape), test_sha256=prepared.test_sha256),
        input_kind=arch.input_kind, output=arch.output,
        data_preparation=datamod.describe_preparation(arch, recipe, image_shape=dataset.image_shape),
        split=SplitInfo(validate_on=prepared.split.validate_on, train=int(len(prepared.split.train)),
                        validation=int(len(x_val)), test=int(len(x_test)), limit=options.limit,
                        seed=prepared.split.seed, article_validated_on=recipe.validation,
                        varies_with_seed=options.vary_split),
        params=stats.params, trainable_params=stats.trainable, macs=stats.macs,
        published=_published(recipe, dataset),
        source=SourceInfo(recipe.source.title, recipe.source.article_file, recipe.source.url),
        environment=backend.describe(),
        run_dir=str(run_dir),
    )
    return _Started(job, arch, model, record, (x_train, y_train), (x_val, y_val), x_test, steps_per_epoch,
                    Path(run_dir))


def _shuffled(run: _Started) -> dict:
    """The training batches in the seed's own order (``input_pipeline.epoch_orders``): the
    same whether this seed trains alone or batched. Other Keras backends shuffle as Keras does."""
    import keras

    (x, y), job = run.train, run.job
    if keras.backend.backend() != "tensorflow":
        return {"x": x, "y": y, "batch_size": job.batch_size, "shuffle": True}

    return {"x": training_batches(x, y, [job.seed], job.epochs, job.batch_size),
            "steps_per_epoch": run.steps_per_epoch, "shuffle": False}


def _run(job, prepared, run_dir, emit, registry, extra_callbacks, batching) -> RunRecord:
    from zoo.callbacks import RunCallback

    run = _start(job, prepared, run_dir, registry)
    record, model, execution = run.record, run.model, run.record.execution
    execution["seed_batching"] = batching or seed_batches.trained_alone("trained on its own")
    emit(Event("started", job, epochs=job.epochs, steps=run.steps_per_epoch))
    tracker = RunCallback(job, emit, run.steps_per_epoch)
    if job.options.test_each_epoch:
        from zoo.callbacks import TestEachEpoch

        y_test = prepared.arrays.y_test.astype("int64")
        extra_callbacks = [*extra_callbacks, TestEachEpoch(tracker, run.x_test, y_test, run.arch.output)]
    if job.options.tensorboard:  # `tensorboard --logdir runs/` then shows every run
        import keras

        extra_callbacks = [*extra_callbacks, keras.callbacks.TensorBoard(log_dir=str(run.run_dir / TENSORBOARD_DIR))]
        execution["tensorboard"] = TENSORBOARD_DIR
    interrupted = False
    (x, y), size = run.train, job.batch_size
    if keras_glue.build_training_state(model, x[:size], y[:size]):  # one trace of the step, not two
        execution["fast_paths"].append("build-before-trace")
    t0 = time.perf_counter()
    try:
        with keras_glue.input_pipeline_without_autotuning() as autotuning_off:
            if autotuning_off:  # recorded only where it really applied
                execution["tf_data_autotune"] = False
                execution["fast_paths"].append("tf-data-autotune-off")
            model.fit(**_shuffled(run), epochs=job.epochs, validation_data=run.validation,
                      verbose=0, callbacks=[tracker, *extra_callbacks])
    except KeyboardInterrupt:
        interrupted = True
    record.training_seconds = round(time.perf_counter() - t0, 3)
    return _finish(run, prepared, tracker, interrupted, emit)


def run_seed_batch(jobs: list[Job], prepared: Prepared, run_dirs: list, on_event=None,
                   registry=None) -> list[RunRecord | ZooError]:
    """Train the seeds ``jobs`` (one model, recipe and data; ``zoo.seed_batches`` says how)
    together, each into its run directory; return each one's record, or the error that
    failed it alone (saving it, say).

    Raises ``NotBatched`` (nothing saved) where they cannot train together, and
    ``Interrupted`` (every seed saved as interrupted) on Ctrl-C.
    """
    import keras

    from zoo.callbacks import BranchLogs, RunCallback

    emit = on_event or ignore_event
    first, seeds = jobs[0], [job.seed for job in jobs]
    arch = (registry or get_zoo()).architecture(first.model)
    applied = first.applied or apply(arch, {**first.settings, "recipe": first.recipe})  # the seeds share their knobs
    recipe = applied.recipe
    why = seed_batches.why_not(first.options, recipe, keras.backend.backend())
    if why:
        raise NotBatched(why)
    keras.backend.clear_session()
    runs = []
    try:
        for job, run_dir in zip(jobs, run_dirs):
            with seeded(job.seed):  # each seed's weights and dropout generators, as alone
                runs.append(_start(job, prepared, run_dir, registry, branches=len(jobs), applied=applied))
            why = len(runs) == 1 and seed_batches.too_costly(runs[0].record.macs, first.batch_size)
            if why:  # known from the first seed's model: the others are built only to be batched
                raise NotBatched(why)
        names = [run.model.name for run in runs]
        batch = seed_batches.join([run.model for run in runs], seeds, arch.input_shape(prepared.arrays.dataset.image_shape))
        outputs = [seed_batches.branch_name(seed) for seed in seeds]
        steps = runs[0].steps_per_epoch
        batch.compile(optimizer=recipe.build_optimizer(total_steps=first.epochs * steps),
                      loss={o: build_loss(recipe.loss, from_logits=arch.output == "logits",
                                          label_smoothing=recipe.label_smoothing) for o in outputs},
                      metrics={o: ["accuracy"] for o in outputs},
                      steps_per_execution=runs[0].record.execution["steps_per_execution"])
    except (NotBatched, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001  (alone, each seed fails or trains on its own terms)
        raise NotBatched(f"could not be joined ({type(exc).__name__}: {str(exc)[:120]})") from None

    trackers = [RunCallback(job, emit, steps) for job in jobs]
    for job in jobs:
        emit(Event("started", job, epochs=job.epochs, steps=steps))
    interrupted = False
    (x, y), size = runs[0].train, first.batch_size
    if keras_glue.build_training_state(batch, (x[:size],) * len(jobs), (y[:size],) * len(jobs)):
        for run in runs:
            run.record.execution["fast_paths"].append("build-before-trace")
    t0 = time.perf_counter()
    try:
        batch.fit(training_batches(*runs[0].train, seeds, first.epochs, first.batch_size),
                  steps_per_epoch=steps, epochs=first.epochs, verbose=0, shuffle=False,
                  validation_data=validation_batches(*runs[0].validation, len(jobs), first.batch_size),
                  callbacks=[BranchLogs(t, o + "_", run.model) for t, o, run in zip(trackers, outputs, runs)])
    except KeyboardInterrupt:
        interrupted = True
    except Exception as exc:  # noqa: BLE001
        raise NotBatched(f"batched training failed ({type(exc).__name__}: {str(exc)[:120]})") from None
    seconds = time.perf_counter() - t0
    # every seed's test predictions in one pass (the same numbers as each branch alone)
    tested = [None] * len(jobs) if interrupted else seed_batches.predict(batch, runs[0].x_test, arch.output)

    results = []
    for run, tracker, name, probabilities in zip(runs, trackers, names, tested):
        run.model.name = name  # the branch is the model again, as it is saved
        if not interrupted:
            seed_batches.hand_back_optimizer_state(batch.optimizer, run.model)
            run.record.execution["fast_paths"].append("optimizer-slots")
        batch_epochs = list(tracker.seconds)
        tracker.seconds = [s / len(jobs) for s in batch_epochs]  # each seed's share of the batch's time
        run.record.training_seconds = round(seconds / len(jobs), 3)
        run.record.execution["seed_batching"] = {
            "batched": True, "seeds": seeds, "seconds": round(seconds, 3),
            "epoch_seconds": [round(s, 3) for s in batch_epochs],
            "note": f"trained with {len(jobs) - 1} other seed(s) in one computation; this run's seconds are "
                    f"the batch's divided by {len(jobs)}"}
        try:
            results.append(_finish(run, prepared, tracker, interrupted, emit, probabilities))
        except Interrupted as stop:
            results.append(stop.record)
        except ZooError as exc:
            emit(Event("failed", run.job, error=str(exc)))
            results.append(exc)
    if interrupted:  # every seed saved as interrupted (or the error that kept it from being saved)
        raise Interrupted(records=results)
    return results


def run_group(group: seed_batches.Group, prepared: Prepared, run_dir_for: Callable[[Job], Path],
              on_event=None, registry=None) -> Iterator[tuple[Job, Path | None, RunRecord | ZooError]]:
    """Train one group of seeds (``seed_batches.groups``): together, as one computation, where
    they can be, else one after another. The one place that decides; every executor calls it.

    ``run_dir_for(job)`` gives each job its folder (made when first needed). Yields, in the
    jobs' order, each job, its folder and its record, or the error that failed it alone (with
    no folder: an empty one is removed). On Ctrl-C it yields what was saved, then raises
    ``KeyboardInterrupt``.
    """
    jobs, batching = list(group.jobs), group.alone
    folders: dict[Job, Path] = {}

    def folder(job: Job) -> Path:
        if job not in folders:
            folders[job] = Path(run_dir_for(job))
        return folders[job]

    def outcome(job: Job, result):
        if isinstance(result, ZooError):
            remove_if_empty(folder(job))
            return job, None, result
        return job, folder(job), result

    try:
        yield from _train_group(jobs, batching, prepared, folder, outcome, on_event, registry)
    finally:  # a seed batch that did not train, or a Ctrl-C, leaves no empty folders
        for made in folders.values():
            remove_if_empty(made)


def _train_group(jobs, batching, prepared, folder, outcome, on_event, registry):
    if len(jobs) > 1:
        try:
            results = run_seed_batch(jobs, prepared, [folder(job) for job in jobs], on_event, registry)
        except NotBatched as why:  # nothing saved: the seeds train one after another, in these folders
            batching = seed_batches.not_batched(why)
        except Interrupted as stop:
            for job, result in zip(jobs, stop.records):
                yield outcome(job, result)
            raise KeyboardInterrupt from None
        else:
            for job, result in zip(jobs, results):
                yield outcome(job, result)
            return
    for job in jobs:
        stopping.check()
        try:
            record = run_job(job, prepared, folder(job), on_event, registry, batching=batching)
        except Interrupted as stop:
            yield outcome(job, stop.record)
            raise KeyboardInterrupt from None
        except KeyboardInterrupt:
            saved = _saved_record(folder(job))  # Ctrl-C after the run was saved keeps it
            if saved is not None:
                yield outcome(job, saved)
            else:
                remove_if_empty(folder(job))
            raise
        except ZooError as exc:
            yield outcome(job, exc)
            continue
        yield outcome(job, record)


def _saved_record(run_dir: Path) -> RunRecord | None:
    try:
        return read_record(run_dir)
    except ZooError:
        return None


def _finish(run: _Started, prepared, tracker, interrupted: bool, emit, probabilities=None) -> RunRecord:
    """Complete the record from the fit's history, evaluate on the test set and save;
    an interrupted run is saved as such and raised as ``Interrupted``."""
    job, arch, model, record, run_dir = run.job, run.arch, run.model, run.record, run.run_dir
    dataset = prepared.arrays.dataset
    x_train = run.train[0]
    history = {k: [float(v) for v in vals] for k, vals in tracker.history.items()}
    history["seconds"] = [round(s, 3) for s in tracker.seconds]
    record.epochs_completed = len(tracker.seconds)
    record.epoch_seconds = history["seconds"]
    cpu = record.environment.get("cpu") or {}
    # bf16 arithmetic runs against the CPU's bf16 peak where it has one (AVX512-BF16, AMX)
    bf16 = job.options.precision == "mixed_bfloat16" and cpu.get("bf16_gflops")
    record.cost = training_cost(record.macs, len(x_train), tracker.seconds,
                                (cpu.get("bf16_gflops") if bf16 else cpu.get("gflops"))
                                if record.environment.get("device") == "CPU" else None)
    record.cost["peak_precision"] = "bfloat16" if bf16 else "float32"
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
        raise Interrupted(records=[record])

    if probabilities is None:
        probabilities = predict_probabilities(model, run.x_test, arch.output)
    metrics = evaluate_predictions(probabilities,
                                   prepared.arrays.y_test.astype("int64"), dataset.num_classes)
    predicted, p_true = metrics.pop("predicted"), metrics.pop("p_true")
    for key, value in metrics.items():
        setattr(record, key, value)
    trained = history.get("accuracy") or [None]
    steps = record.epochs_completed * run.steps_per_epoch
    momenta = diagnosis.batchnorm_momenta(model)
    record.budget = _budget(run, prepared, steps)
    short = diagnosis.under_trained_warning(arch.name, record.budget, record.hyperparameters.get("schedule"), momenta)
    record.warnings = diagnosis.run_warnings(record.test_accuracy, dataset.num_classes, trained[-1], steps,
                                             momenta) + ([short] if short else [])
    record.status = "completed"
    record.finished_at = _now()
    correct = predicted == prepared.arrays.y_test
    _save(run_dir, model, history, record, (predicted, p_true, prepared.test_sha256, correct),
          tracker.step_history())
    emit(Event("finished", job, record=record))
    return record


def _budget(run: _Started, prepared: Prepared, steps: int) -> dict:
    """The steps ``run`` had against its registered recipe's design: that recipe's epochs and
    batch size (not a variant's or an override's) on the whole training split."""
    designed = run.arch.recipe(run.job.recipe)
    images = datamod.full_training_size(len(prepared.arrays.y_train), prepared.split.validate_on)
    return diagnosis.budget(steps, designed.epochs * -(-images // designed.batch_size), run.record.epochs_completed,
                            len(run.train[0]), designed.epochs, images)


def _save(run_dir: Path, model, history: dict, record: RunRecord, predictions=None, step_history=None) -> None:
    """Write the run's files, run.json last; a failure names what was kept and what was not."""
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
            raise NotSaved(f"{record.model}: trained, but saving it in {run_dir} failed ({reason}); "
                           f"written: {', '.join(kept) or 'nothing'}; not written: {', '.join(missing)}") from None
        kept.append(name)
