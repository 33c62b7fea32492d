"""Test trained models on a dataset they were not trained on: the class's own handwriting.

A model trained on MNIST meets a folder of digits drawn on the classroom page. None of
those images was seen in training, so *every* one of them is the test set, and each is
preprocessed as ``zoo predict`` preprocesses a photo (inverted where the paper is light,
cropped, fitted into 20×20, centred by centre of mass in 28×28), because that is how the
digits would reach the model in use. Classes are matched by name: a folder of 3s and 7s
is tested against the model's "3" and "7". The gap between MNIST accuracy and accuracy
here is a measured lesson in distribution shift.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from zoo import data as datamod
from zoo.errors import ZooError
from zoo.evaluation import evaluate_predictions, predict_probabilities, test_set_sha256
from zoo.files import path_part
from zoo.imaging import describe_steps, field_of, to_mnist
from zoo.runs import DatasetInfo, RunRecord, open_run, write_predictions, write_record


@dataclasses.dataclass
class ForeignTestSet:
    """Another dataset's images, as a run's model reads them, labelled in the run's classes."""

    dataset: str
    source: str
    x: np.ndarray               # uint8, N × height × width
    y: np.ndarray               # int64, the run's class numbers
    preprocessing: str
    skipped: list[str]          # images with no digit in them (blank), by name

    def describe(self, trained_on: str) -> dict:
        return {"dataset": self.dataset, "trained_on": trained_on, "images": int(len(self.y)),
                "preprocessing": self.preprocessing, "skipped": self.skipped,
                "why_every_image": f"the model was trained on {trained_on}: none of these images was seen in training"}


def foreign_test_set(arrays, record: RunRecord) -> ForeignTestSet:
    """Every image of ``arrays`` (train and test parts), preprocessed for ``record``'s model."""
    theirs, ours = list(arrays.dataset.class_names), list(record.class_names)
    unknown = [c for c in theirs if c not in ours]
    if unknown:
        raise ZooError(f"{arrays.dataset.name} has classes the model {record.model} does not know: "
                       f"{', '.join(unknown[:10])} (it knows {', '.join(ours[:20])})")
    to_ours = np.array([ours.index(c) for c in theirs])
    images = np.concatenate([arrays.x_train, arrays.x_test])
    labels = np.concatenate([arrays.y_train, arrays.y_test]).astype("int64")
    field = field_of(record)
    kept, xs, skipped = [], [], []
    for i, image in enumerate(images):
        try:
            xs.append(to_mnist(image.astype("float64"), f"image {i}", field))
            kept.append(i)
        except ZooError:
            skipped.append(f"image {i} (blank: no digit found)")
    if not kept:
        raise ZooError(f"{arrays.dataset.name}: no image holds a digit")
    return ForeignTestSet(arrays.dataset.name, arrays.source, np.stack(xs), to_ours[labels[kept]],
                          describe_steps(field), skipped)


def evaluate_on(model, record: RunRecord, test: ForeignTestSet) -> dict:
    """Accuracy, loss, per-class accuracy, confusion matrix and per-image results on ``test``."""
    x = datamod.prepare_x(test.x, record.input_kind)
    return evaluate_predictions(predict_probabilities(model, x, record.output), test.y, len(record.class_names))


def retested_record(record: RunRecord, test: ForeignTestSet, metrics: dict, run_dir: Path) -> RunRecord:
    """``record`` with its test numbers replaced by those on ``test`` (its training kept as it was)."""
    dataset = DatasetInfo(name=test.dataset, class_names=list(record.class_names),
                          image_shape=list(record.dataset.image_shape), source=test.source,
                          test_sha256=test_set_sha256(test.x, test.y))
    return dataclasses.replace(
        record, dataset=dataset, split=dataclasses.replace(record.split, test=int(len(test.y))),
        published=None, warnings=[],
        test_accuracy=metrics["test_accuracy"], test_loss=metrics["test_loss"],
        per_class_accuracy=metrics["per_class_accuracy"], confusion_matrix=metrics["confusion_matrix"],
        tested_on=test.describe(record.dataset.name), run_dir=str(run_dir))


def retest(records: list[RunRecord], dataset, folder: Path, data_dir=None, warn=print) -> list[RunRecord]:
    """Each saved run's model tested on ``dataset``; each result written as a run folder
    (run.json and test_predictions.npz, no model) under ``folder``, for statistics and reports."""
    arrays = datamod.load(dataset, data_dir)
    done, used = [], set()
    for record in records:
        name = stem = path_part(Path(record.run_dir).name)
        while name in used:  # two runs of one name from two folders
            name = f"{stem}-{len(used)}"
        used.add(name)
        try:
            _, model = open_run(record.run_dir)
            test = foreign_test_set(arrays, record)
        except ZooError as exc:
            warn(f"{record.run_dir}: not re-tested ({exc})")
            continue
        metrics = evaluate_on(model, record, test)
        run_dir = folder / name
        run_dir.mkdir(parents=True, exist_ok=True)
        new = retested_record(record, test, metrics, run_dir)
        write_record(run_dir, new)
        write_predictions(run_dir, metrics["predicted"], metrics["p_true"], new.dataset.test_sha256,
                          metrics["predicted"] == test.y)
        done.append(new)
    return done
