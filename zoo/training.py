"""Train one architecture with one recipe and save everything about the run.

The recipe decides the optimizer, loss, batch size and epochs; options may override
them and the run records what was overridden. The data module decides the layout
and label encoding. A run directory holds the model, its history, its metadata and
its figures; every file is written atomically, and a run stopped by Ctrl-C is kept
and marked interrupted.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from zoo import data as datamod
from zoo.errors import ZooError
from zoo.files import atomic_save_model, atomic_write_json, atomic_write_text

RUN_FILE = "run.json"


@dataclass
class TrainOptions:
    """What the user asked for; None means "as the recipe says"."""

    recipe: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = datamod.DEFAULT_SEED
    limit: int | None = None
    validate_on: str = "val"
    dataset: str = "mnist"
    data_dir: str | None = None
    # "float32" (what the articles ran), or Keras's "mixed_bfloat16" / "mixed_float16":
    # faster where the hardware has the units (AMX or AVX512-BF16 CPUs, GPUs) and the
    # numbers change, so only on request.
    precision: str = "float32"


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclass
class Prepared:
    """One dataset split once, shared by every model of a comparison."""

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


def prepare(zoo, options: TrainOptions) -> Prepared:
    arrays = datamod.load(zoo.dataset(options.dataset), options.data_dir)
    split = datamod.make_split(arrays.y_train, options.validate_on, options.seed, options.limit)
    return Prepared(arrays, split)


class Interrupted(Exception):
    """Training was stopped by Ctrl-C; ``result`` is the saved, interrupted run."""

    def __init__(self, result):
        super().__init__("interrupted")
        self.result = result


@dataclass
class RunResult:
    run_dir: Path
    record: dict = field(default_factory=dict)


def new_run_dir(parent: Path, name: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / name
    n = 1
    while path.exists():
        n += 1
        path = parent / f"{name}-{n}"
    path.mkdir()
    return path


def timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _history_csv(history: dict) -> str:
    keys = list(history)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([i + 1, *(history[k][i] for k in keys)])
    return buf.getvalue()


def evaluate_predictions(probabilities: np.ndarray, y_true: np.ndarray, num_classes: int) -> dict:
    """Accuracy, cross-entropy, per-class accuracy and confusion matrix from predictions."""
    predicted = probabilities.argmax(axis=1)
    p_true = np.clip(probabilities[np.arange(len(y_true)), y_true], 1e-7, 1 - 1e-7)
    confusion = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(confusion, (y_true, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float((predicted == y_true).mean()),
        "test_loss": float(-np.log(p_true).mean()),
        "per_class_accuracy": [round(float(v), 4) for v in per_class],
        "confusion_matrix": confusion.tolist(),
        "predicted": predicted,
    }


def predict_probabilities(model, x, output: str = "probabilities", batch_size: int = 1024) -> np.ndarray:
    with input_pipeline_without_autotuning():
        out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float64")
    if output == "logits":
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out


def train(zoo, arch, options: TrainOptions, prepared: Prepared, run_dir: Path, progress=None,
          extra_callbacks=()) -> RunResult:
    """Train ``arch`` on ``prepared`` data, writing the run into ``run_dir``.

    Raises ``Interrupted`` (with the saved run) on Ctrl-C, ``ZooError`` on bad input.
    """
    import keras

    from zoo import backend
    from zoo.callbacks import EpochTimer
    from zoo.stats import build_model, model_stats

    recipe = arch.recipe(options.recipe)
    epochs = options.epochs if options.epochs is not None else recipe.epochs
    batch_size = options.batch_size if options.batch_size is not None else recipe.batch_size
    if epochs < 1 or batch_size < 1:
        raise ZooError("--epochs and --batch-size must be at least 1")
    overrides = {k: {"recipe": r, "used": u} for k, r, u in
                 (("epochs", recipe.epochs, epochs), ("batch_size", recipe.batch_size, batch_size)) if r != u}
    dataset = prepared.arrays.dataset

    keras.backend.clear_session()  # a fresh graph per model: nothing left over from the last one
    keras.utils.set_random_seed(options.seed)
    # Layers take their dtype policy when they are made: set it for this build only.
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(options.precision)
    try:
        model = build_model(arch, dataset.image_shape, dataset.num_classes)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    stats = model_stats(model)
    if stats.output_shape != (None, dataset.num_classes):
        raise ZooError(f"{arch.name}: output shape {stats.output_shape}, expected (None, {dataset.num_classes})")
    (x_train, y_train), (x_val, y_val), (x_test, _) = prepared.parts(arch.input_kind, recipe.labels)
    steps_per_epoch = -(-len(x_train) // batch_size)
    execution = execution_settings(stats.macs, batch_size)
    loss = keras.losses.get({"class_name": recipe.loss, "config": {"from_logits": arch.output == "logits"}})
    model.compile(optimizer=recipe.build_optimizer(total_steps=epochs * steps_per_epoch), loss=loss,
                  metrics=["accuracy"], **execution)
    execution = {**execution, "jit_compile": bool(model.jit_compile), "precision": options.precision}
    y_test = prepared.arrays.y_test.astype("int64")

    record = {
        "model": arch.name,
        "title": arch.title,
        "recipe": recipe.name,
        "status": "running",
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["zoo", *sys.argv[1:]]) if Path(sys.argv[0]).name in ("zoo", "__main__.py") else None,
        "execution": execution,
        "hyperparameters": {
            "optimizer": recipe.optimizer,
            "schedule": recipe.schedule,
            "weight_average": recipe.weight_average,
            "loss": recipe.loss,
            "labels": recipe.labels,
            "batch_size": batch_size,
            "epochs": epochs,
        },
        "overrides": overrides,
        "seed": options.seed,
        "dataset": {"name": dataset.name, "source": prepared.arrays.source,
                    "class_names": list(dataset.class_names), "image_shape": list(dataset.image_shape)},
        "input_kind": arch.input_kind,
        "output": arch.output,
        "data_preparation": datamod.describe_preparation(arch, recipe),
        "split": {
            "validate_on": prepared.split.validate_on,
            "train": int(len(prepared.split.train)),
            "validation": int(len(x_val)),
            "test": int(len(x_test)),
            "limit": options.limit,
            "seed": prepared.split.seed,
            "article_validated_on": recipe.validation,
        },
        "params": stats.params,
        "trainable_params": stats.trainable,
        "macs": stats.macs,
        "published": None if recipe.published is None else {
            "test_accuracy": recipe.published.test_accuracy, "test_loss": recipe.published.test_loss},
        "source": {"title": recipe.source.title, "seed": recipe.source.seed, "url": recipe.source.url},
        "environment": backend.describe(),
    }

    timer = EpochTimer()
    callbacks = [timer, *([progress.callback(arch.name, epochs, steps_per_epoch)] if progress else []),
                 *extra_callbacks]
    interrupted = False
    t0 = time.perf_counter()
    try:
        with input_pipeline_without_autotuning() as autotuning_off:
            if autotuning_off:  # recorded only where it really applied
                execution["tf_data_autotune"] = False
            model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val),
                      shuffle=True, verbose=0, callbacks=callbacks)
    except KeyboardInterrupt:
        interrupted = True
    record["training_seconds"] = round(time.perf_counter() - t0, 3)

    history = {k: [float(v) for v in vals] for k, vals in timer.history.items()}
    history["seconds"] = [round(s, 3) for s in timer.seconds]
    record["epochs_completed"] = len(timer.seconds)
    record["epoch_seconds"] = history["seconds"]
    record["seconds_per_epoch"] = round(float(np.mean(timer.seconds)), 3) if timer.seconds else None
    if history.get("val_accuracy"):
        record["best_val_accuracy"] = max(history["val_accuracy"])
        record["best_epoch"] = int(np.argmax(history["val_accuracy"]) + 1)

    atomic_save_model(model, run_dir / "model.keras")
    atomic_write_json(run_dir / "history.json", history)
    atomic_write_text(run_dir / "history.csv", _history_csv(history))

    result = RunResult(run_dir, record)
    if interrupted:
        record["status"] = "interrupted"
        record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_json(run_dir / RUN_FILE, record)
        _figures_quietly(run_dir, record, history, None, None)
        raise Interrupted(result)

    probabilities = predict_probabilities(model, x_test, arch.output)
    metrics = evaluate_predictions(probabilities, y_test, dataset.num_classes)
    predicted = metrics.pop("predicted")
    record.update(metrics)
    record["status"] = "completed"
    record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(run_dir / RUN_FILE, record)
    _figures_quietly(run_dir, record, history, predicted, prepared.arrays)
    return result


# A training step cheaper than this many FLOPs is dominated by Python and dispatch
# overhead, so several steps run per compiled call. Measured on 2 cores: the mlp's
# epoch (4.9 MFLOP steps) is 3.4× faster at 64 steps per call; the CNNs' steps
# (≥ 1 GFLOP) gain nothing and lose up to 5%. See docs/performance.md.
CHEAP_STEP_FLOPS = 50e6
STEPS_PER_CALL_FOR_CHEAP_STEPS = 64


def execution_settings(macs: int, batch_size: int) -> dict:
    """How to run the training steps; the same computation either way.

    XLA stays off (Keras's "auto" on CPU): measured, it makes these convolutions
    about 12× slower on CPU.
    """
    step_flops = 6 * macs * batch_size
    steps = STEPS_PER_CALL_FOR_CHEAP_STEPS if step_flops < CHEAP_STEP_FLOPS else 1
    return {"steps_per_execution": steps}


@contextlib.contextmanager
def input_pipeline_without_autotuning():
    """Feed NumPy arrays to Keras as usual, with tf.data's autotuning thread turned off.

    For arrays, Keras (TensorFlow backend) builds a tf.data pipeline whose parallel map
    and prefetch are autotuned. On 2 cores the autotuner's optimisation thread competes
    with training, and every iterator waits for it when destroyed: Keras makes a fresh
    iterator at each epoch's end, so when `fit` returns it tears one down, measured at
    0 to 5 s after the last epoch (docs/performance.md). The arrays, the batches and their
    order are unchanged (a test compares the trained weights bit for bit); only the
    tuning thread goes. Outside TensorFlow, or on a Keras without this adapter, nothing
    changes. Yields whether autotuning was turned off.
    """
    try:
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ImportError
        import tensorflow as tf
        from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

        keras_pipeline = ArrayDataAdapter.get_tf_dataset
    except (ImportError, AttributeError):
        yield False
        return

    def pipeline_without_autotuning(adapter):
        options = tf.data.Options()
        options.autotune.enabled = False
        return keras_pipeline(adapter).with_options(options)

    ArrayDataAdapter.get_tf_dataset = pipeline_without_autotuning
    try:
        yield True
    finally:
        ArrayDataAdapter.get_tf_dataset = keras_pipeline


def _figures_quietly(run_dir, record, history, predicted, arrays):
    """Figures are a bonus: a plotting problem must not lose a trained run."""
    from zoo import figures

    try:
        if history.get("loss"):
            figures.curves(history, run_dir / "curves.png", record["model"])
        if predicted is not None:
            figures.confusion(np.array(record["confusion_matrix"]), record["dataset"]["class_names"],
                              run_dir / "confusion.png", record["model"])
            figures.mistakes(arrays.x_test, arrays.y_test, predicted, record["dataset"]["class_names"],
                             run_dir / "mistakes.png", record["model"])
    except Exception as exc:  # noqa: BLE001
        from rich.markup import escape

        from zoo.console import err

        err.print(f"[yellow]Warning:[/] could not draw figures for {record['model']}: {escape(str(exc))}")


def load_run(run_dir) -> dict:
    """A saved run's metadata, or a one-line error naming what is wrong."""
    import json

    path = Path(run_dir)
    file = path / RUN_FILE if path.is_dir() else path
    if not file.is_file():
        raise ZooError(f"{run_dir}: not a run directory (no {RUN_FILE})")
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ZooError(f"{file}: unreadable run record ({exc})") from None
    record["run_dir"] = str(file.parent)
    return record


def load_model(run_dir):
    """The run's model, loaded with Keras safe_mode (no arbitrary code from the file)."""
    import keras

    path = Path(run_dir) / "model.keras"
    if not path.is_file():
        raise ZooError(f"{run_dir}: no model.keras in the run directory")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001
        raise ZooError(f"{path}: cannot load model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
