"""Run records and run directories: the one place that creates, writes and reads them.

A run directory holds one trained model and everything known about it::

    model.keras             the model (Keras format, loaded with safe_mode)
    run.json                the RunRecord below: what ran, on what, and how it did
    history.json / .csv     per-epoch metrics and seconds
    test_predictions.npz    each test image's predicted class and the probability the
                            model gave its true class (runs can be compared image by image)
    curves.png, confusion.png, mistakes.png   figures, drawn from the finished record

Every file is written atomically (beside the target, then renamed). ``run.json`` carries
a ``schema`` number; records written before it existed (schema 1) still read.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from zoo.errors import ZooError
from zoo.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    path_part,
    read_json,
    read_npy_entry,
    sweep_temporaries,
)
from zoo.keras_glue import smoothed_sparse_crossentropy
from zoo.registry import KNOB_RULE, KNOB_TEXT, is_model_name

SCHEMA = 2
RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
PREDICTIONS_FILE = "test_predictions.npz"
FIGURES = ("curves.png", "confusion.png", "mistakes.png")
STATUSES = ("running", "completed", "interrupted", "failed")


@dataclass
class DatasetInfo:
    name: str
    class_names: list[str]
    image_shape: list[int]
    source: str = ""
    test_sha256: str | None = None  # identity of the test set: runs on different ones are never paired


@dataclass
class SplitInfo:
    validate_on: Literal["val", "test"]
    train: int
    validation: int
    test: int
    seed: int
    limit: int | None = None
    article_validated_on: str | None = None
    varies_with_seed: bool = False  # --vary-split: each seed drew its own split


@dataclass
class PublishedInfo:
    test_accuracy: float
    test_loss: float | None = None


@dataclass
class SourceInfo:
    title: str
    article_file: str = ""
    url: str = ""


@dataclass
class RunRecord:
    """Everything run.json says about one run. Typed; validated when read."""

    model: str
    recipe: str
    status: Literal["running", "completed", "interrupted", "failed"]
    seed: int
    dataset: DatasetInfo
    split: SplitInfo
    input_kind: Literal["flat", "image"]
    output: Literal["probabilities", "logits"] = "probabilities"
    title: str = ""
    # A variant's knob settings (zoo compare --vary / --set), in the order given; {} for the
    # model as registered. Runs with other knobs are other rows, never pooled.
    knobs: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA
    started_at: str | None = None
    finished_at: str | None = None
    command: str | None = None
    execution: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    data_preparation: str = ""
    params: int | None = None
    trainable_params: int | None = None
    macs: int | None = None
    published: PublishedInfo | None = None
    source: SourceInfo | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    training_seconds: float | None = None
    epochs_completed: int = 0
    epoch_seconds: list[float] = field(default_factory=list)
    seconds_per_epoch: float | None = None
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    per_class_accuracy: list[float | None] | None = None  # None for a class with no test image
    confusion_matrix: list[list[int]] | None = None
    # Training compute (zoo.anatomy.training_cost): FLOPs, achieved GFLOP/s and share of peak per epoch.
    cost: dict[str, Any] = field(default_factory=dict)
    # The steps this run had against those its registered recipe was designed for, on the
    # dataset's whole training split (zoo.diagnosis.budget); under a third is "under-trained".
    budget: dict[str, Any] = field(default_factory=dict)
    # What the saved model.keras holds when the run was stopped (e.g. "end of epoch 3").
    model_weights: str | None = None
    error: str | None = None
    # A run that learned nothing, in words with its likely cause (zoo.diagnosis).
    warnings: list[str] = field(default_factory=list)
    # Set when the test numbers are from another dataset than the training one (zoo.retesting):
    # which, how many images, how each was preprocessed, and the dataset trained on.
    tested_on: dict[str, Any] = field(default_factory=dict)
    # Where the record was read from; not written into run.json.
    run_dir: str | None = field(default=None, compare=False)

    @property
    def class_names(self) -> list[str]:
        return self.dataset.class_names

    def to_dict(self) -> dict:
        """The record as run.json holds it (and as ``zoo train --json`` prints it, with run_dir)."""
        data = dataclasses.asdict(self)
        data.pop("run_dir")
        return data

    def check_consistent(self, where: str) -> None:
        """Facts that must agree with each other before the record drives a model."""
        classes = len(self.dataset.class_names)
        problems = []
        if classes < 2:
            problems.append(f"{classes} class name(s)")
        if self.per_class_accuracy is not None and len(self.per_class_accuracy) != classes:
            problems.append(f"{len(self.per_class_accuracy)} per-class accuracies for {classes} classes")
        if self.confusion_matrix is not None and (
                len(self.confusion_matrix) != classes or any(len(row) != classes for row in self.confusion_matrix)):
            problems.append(f"a confusion matrix that is not {classes}×{classes}")
        for name in ("test_accuracy", "best_val_accuracy"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                problems.append(f"{name} {value} outside 0..1")
        if self.per_class_accuracy is not None and not all(v is None or 0 <= v <= 1 for v in self.per_class_accuracy):
            problems.append("a per-class accuracy outside 0..1")
        if self.confusion_matrix is not None and any(v < 0 for row in self.confusion_matrix for v in row):
            problems.append("a negative count in the confusion matrix")
        if problems:
            raise ZooError(f"{where}: inconsistent run record ({'; '.join(problems)})")


_adapter = None


def _record_adapter():
    global _adapter
    if _adapter is None:
        from pydantic import TypeAdapter

        _adapter = TypeAdapter(RunRecord)
    return _adapter


def _upgrade(data: dict) -> dict:
    """Records written before the schema field (mnist-zoo 0.1) to the current shape."""
    if data.get("schema", 1) == 1:
        data = dict(data)
        source = data.get("source")
        if isinstance(source, dict) and "seed" in source:
            source = dict(source)
            source["article_file"] = source.pop("seed") or ""
            data["source"] = source
        data["schema"] = SCHEMA
    return data


def record_from_dict(data: Any, where: str) -> RunRecord:
    """A RunRecord from parsed JSON, or a one-line ZooError naming ``where`` and the first problem."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise ZooError(f"{where}: not a run record (a JSON {type(data).__name__}, not an object)")
    schema = data.get("schema", 1)
    if not isinstance(schema, int) or schema > SCHEMA:
        raise ZooError(f"{where}: run record schema {schema!r}, this mnist-zoo reads up to {SCHEMA}: upgrade mnist-zoo")
    data = {k: v for k, v in _upgrade(data).items() if k != "run_dir"}
    try:
        # strict: "high" is not an accuracy and "3" is not an epoch count (JSON mode: objects
        # are accepted for the nested dataclasses)
        record = _record_adapter().validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ZooError(f"{where}: not a valid run record ({location}: {first['msg']})") from None

    if not is_model_name(record.model):  # names become file names in reports and comparisons
        raise ZooError(f"{where}: not a valid run record (model {record.model[:60]!r} is no zoo model name)")

    for name, value in record.knobs.items():  # they name rows, figures and report pages
        if not KNOB_RULE.match(name) or not isinstance(value, (bool, int, float, str)) or (
                isinstance(value, str) and not KNOB_TEXT.match(value)):
            raise ZooError(f"{where}: not a valid run record (knob {name[:40]!r}={str(value)[:40]!r})")
    record.check_consistent(where)  # on every read, not only when a model is loaded
    return record


def read_record(run_dir) -> RunRecord:
    """A saved run's record (a run directory or its run.json), or a one-line error."""
    path = Path(run_dir)
    file = path / RUN_FILE if path.is_dir() else path
    if not file.is_file():
        raise ZooError(f"{run_dir}: not a run directory (no {RUN_FILE})")

    record = record_from_dict(read_json(file, "run record"), str(file))
    record.run_dir = str(file.parent)
    return record


def write_record(run_dir, record: RunRecord) -> Path:
    return atomic_write_json(Path(run_dir) / RUN_FILE, record.to_dict())


# -- run directories -------------------------------------------------------------
def timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def new_run_dir(parent, name: str) -> Path:
    """Create ``parent/name`` (or ``name-2``, ``name-3``…) and return it; safe against races.

    ``name`` must be one plain folder name: a model name like ``../x`` can never put a
    run outside ``parent``.
    """
    parent = Path(parent)
    name = path_part(name, "run directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot create the runs folder {parent} ({exc.strerror or exc})") from None
    sweep_temporaries(parent)  # what a save killed mid-way (kill -9) left behind
    n = 1
    while True:
        path = parent / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()  # atomic: of two processes asking for one name, exactly one gets it
            return path
        except FileExistsError:
            n += 1
        except OSError as exc:
            raise ZooError(f"cannot create a run directory in {parent} ({exc.strerror or exc})") from None


def remove_if_empty(path: Path) -> None:
    try:
        Path(path).rmdir()
    except OSError:
        pass


# -- the files beside run.json -------------------------------------------------------
def history_csv(history: dict) -> str:
    keys = list(history)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([i + 1, *(history[k][i] for k in keys)])
    return buf.getvalue()


STEPS_FILE = "history_steps.json"


def write_history(run_dir, history: dict, steps: dict | None = None) -> None:
    atomic_write_json(Path(run_dir) / HISTORY_FILE, history)
    atomic_write_text(Path(run_dir) / "history.csv", history_csv(history))
    if steps is not None:
        atomic_write_json(Path(run_dir) / STEPS_FILE, steps)


def read_steps(run_dir) -> dict | None:
    """Training loss and accuracy sampled within epochs (None for runs without them)."""
    try:
        steps = read_json(Path(run_dir) / STEPS_FILE, "step history")
    except ZooError:
        return None
    keys = ("position", "loss", "accuracy")
    if not isinstance(steps, dict) or not all(_numbers(steps.get(k)) and None not in steps[k] for k in keys):
        return None
    if len({len(steps[k]) for k in keys}) != 1:
        return None
    return steps


def read_history(run_dir) -> dict | None:
    """A run's per-epoch history, or None when it is missing or unreadable."""
    try:
        history = read_json(Path(run_dir) / HISTORY_FILE, "history")
    except ZooError:
        return None
    if not isinstance(history, dict) or not all(_numbers(v) for v in history.values()):
        return None  # figures and tables draw these: anything but lists of finite numbers is no history
    if len({len(v) for v in history.values()}) > 1:
        return None
    return {key: [float("nan") if v is None else v for v in values] for key, values in history.items()}


def _numbers(values) -> bool:
    """A list of finite numbers, or null where training diverged (json_text writes NaN as null)."""
    return isinstance(values, list) and all(v is None or (
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)) for v in values)


def write_predictions(run_dir, predicted: np.ndarray, p_true: np.ndarray, test_sha256: str | None,
                      correct: np.ndarray) -> None:
    """Each test image's predicted class, the probability given to its true class, and
    whether it was right (so two runs can be compared image by image without the data)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, predicted=predicted.astype(np.uint16), p_true=p_true.astype(np.float32),
                        test_sha256=np.array(test_sha256 or ""), correct=correct.astype(bool))
    atomic_write_bytes(Path(run_dir) / PREDICTIONS_FILE, buf.getvalue())


MAX_PREDICTIONS = 10_000_000  # test images per run when the record does not say (MNIST has 10,000)


def read_predictions(run_dir, test_images: int | None = None) -> dict | None:
    """``{"predicted", "p_true", "test_sha256", "correct"}`` of a run, or None if it has none
    (older runs). Each array's header is checked against ``test_images`` (the record's test
    set size), or ``MAX_PREDICTIONS``, before its data is read."""

    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    entries = test_images if test_images is not None else MAX_PREDICTIONS
    what = f"{entries:,} test images" if test_images is not None else "a run's predictions"
    try:
        with zipfile.ZipFile(path) as npz:
            names = {n.removesuffix(".npy"): n for n in npz.namelist()}
            if not {"predicted", "p_true"} <= set(names):
                raise ZooError(f"{path}: per-image predictions without 'predicted' and 'p_true'")
            read = {key: read_npy_entry(npz, names[key], path, 8 * entries + 64, what)
                    for key in ("predicted", "p_true", "correct") if key in names}
            sha = str(read_npy_entry(npz, names["test_sha256"], path, 4 * 64 + 64, "a checksum")) \
                if "test_sha256" in names else ""
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001  (zipfile errors and the like: a damaged file)
        raise ZooError(f"{path}: unreadable per-image predictions ({type(exc).__name__})") from None
    predicted, p_true, correct = read["predicted"], read["p_true"], read.get("correct")
    if predicted.ndim != 1 or p_true.shape != predicted.shape or (correct is not None and
                                                                   correct.shape != predicted.shape):
        raise ZooError(f"{path}: per-image predictions of the wrong shape")
    if test_images is not None and len(predicted) != test_images:
        raise ZooError(f"{path}: {len(predicted):,} per-image predictions for a test set of {test_images:,}")
    return {"predicted": predicted.astype(np.int64), "p_true": p_true, "test_sha256": sha or None,
            "correct": None if correct is None else correct.astype(bool)}


# What a .keras file of this zoo may hold. The largest model here saves ~8 MB of weights
# and a config of ~20 KB; these caps leave a wide margin and still refuse a zip bomb (a
# 1 MB file whose config inflates to 1 GiB) before Keras inflates anything.
MAX_MODEL_CONFIG_BYTES = 10_000_000
MAX_MODEL_FILE_BYTES = 1_000_000_000
MAX_MODEL_ENTRIES = 64
MAX_COMPRESSION_RATIO = 200
# model.weights.h5 holds each parameter in float32 (4 bytes), the optimizer's slots (Adam: two
# more copies), an EMA copy, and HDF5's bookkeeping per variable: measured 2.2× (RMSprop, mlp)
# to 4× (Adam, a small residual CNN) of 4 bytes × parameters. 8× plus 4 MB is a wide margin.
WEIGHT_BYTES_PER_PARAM = 4 * 8
WEIGHT_BYTES_OVERHEAD = 4_000_000


def check_model_archive(path: Path, params: int | None = None) -> None:
    """Refuse a ``.keras`` file whose entries are absurd for a model of this zoo (one line):
    with ``params`` (the run record's parameter count), weights far larger than that many
    parameters need are refused too, before Keras inflates them."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ZooError(f"{path}: not a Keras model file (not a readable zip archive: {type(exc).__name__})") from None
    if len(entries) > MAX_MODEL_ENTRIES:
        raise ZooError(f"{path}: {len(entries)} entries, more than a Keras model file of this zoo holds "
                       f"({MAX_MODEL_ENTRIES}); refused unread")
    for entry in entries:
        limit = MAX_MODEL_CONFIG_BYTES if entry.filename.endswith(".json") else MAX_MODEL_FILE_BYTES
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > limit or (entry.file_size > 1_000_000 and ratio > MAX_COMPRESSION_RATIO):
            raise ZooError(f"{path}: its {entry.filename} would inflate to {entry.file_size:,} bytes "
                           f"({ratio:,.0f}× its stored size), absurd for a model of this zoo; refused unread")
        weights_cap = None if params is None else WEIGHT_BYTES_PER_PARAM * max(params, 0) + WEIGHT_BYTES_OVERHEAD
        if weights_cap is not None and entry.filename.endswith(".h5") and entry.file_size > weights_cap:
            raise ZooError(f"{path}: its {entry.filename} would inflate to {entry.file_size:,} bytes, far more than "
                           f"the {params:,} parameters its run.json records need; refused unread")
    for entry in entries:
        if entry.filename.endswith(".h5"):
            check_declared_weights(path, entry.filename, params)


# HDF5 compresses a dataset inside the file (gzip), so an .h5 entry of 1.7 MB can declare 1.6 GB of
# zeros, which Keras allocates as it reads: what each dataset declares is checked before that.
MAX_DECLARED_WEIGHT_BYTES = 2_000_000_000  # when the record gives no parameter count: far above this zoo's models


def check_declared_weights(path: Path, name: str, params: int | None = None) -> int:
    """The bytes the weight file ``name`` inside the archive ``path`` declares, every dataset's shape
    × its dtype's size read from HDF5's metadata (no data is read); a one-line error when that is
    more than ``params`` parameters need, or than ``MAX_DECLARED_WEIGHT_BYTES``."""
    import h5py

    cap = MAX_DECLARED_WEIGHT_BYTES if params is None else WEIGHT_BYTES_PER_PARAM * max(params, 0) + WEIGHT_BYTES_OVERHEAD
    declared, datasets = 0, 0

    def count(_, item):
        nonlocal declared, datasets
        if isinstance(item, h5py.Dataset):
            datasets += 1
            declared += int(math.prod(item.shape or ())) * item.dtype.itemsize
            if declared > cap:
                return True  # stop visiting: enough is known
        return None

    try:
        with zipfile.ZipFile(path) as archive, archive.open(name) as stored:
            data = stored.read(MAX_MODEL_FILE_BYTES + 1)
        with h5py.File(io.BytesIO(data), "r") as weights:
            weights.visititems(count)
    except (OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile) as exc:
        raise ZooError(f"{path}: its {name} is not a readable weight file ({type(exc).__name__})") from None
    if declared > cap:
        whom = f"the {params:,} parameters its run.json records" if params is not None else "a model of this zoo"
        raise ZooError(f"{path}: its {name} declares more than {cap:,} bytes of weights (shapes read from the "
                       f"file, nothing loaded), far more than {whom} need; refused unread")
    return declared


def load_model(run_dir, params: int | None = None):
    """The run's model, loaded with Keras safe_mode (no arbitrary code from the file), after
    its archive passed ``check_model_archive`` (with ``params``, the record's parameter count)."""
    import keras

    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise ZooError(f"{run_dir}: no {MODEL_FILE} in the run directory")
    check_model_archive(path, params)
    smoothed_sparse_crossentropy()  # a recipe's label-smoothed loss is in the file's compile config
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ZooError(f"{path}: cannot load model ({type(exc).__name__}: {first})") from None


def open_run(run_dir):
    """A saved run's record and model, checked against each other (one line if they disagree).

    Plugins that define custom layers must be loaded first (``zoo.plugins.get_zoo``):
    safe_mode loading only knows registered classes.
    """
    record = read_record(run_dir)
    record.check_consistent(str(Path(run_dir) / RUN_FILE))
    model = load_model(run_dir, record.params)
    shape = tuple(record.dataset.image_shape)
    expected_in = (math.prod(shape),) if record.input_kind == "flat" else shape
    got_in = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    got_out = model.outputs[0].shape[-1] if model.outputs else None
    if got_in != expected_in or got_out != len(record.class_names):
        raise ZooError(f"{run_dir}: run.json does not match model.keras (record: input {expected_in}, "
                       f"{len(record.class_names)} classes; model: input {got_in}, {got_out} outputs)")
    if record.params is not None and model.count_params() != record.params:
        raise ZooError(f"{run_dir}: run.json does not match model.keras (record: {record.params:,} parameters; "
                       f"model: {model.count_params():,})")
    return record, model
