"""Predicting and scoring: class probabilities from a model, and what they say on a test set.

Training (``zoo.jobs``), ``zoo evaluate``, ``zoo explain``, ``zoo predict`` and the report
all score models here, so a number means the same thing wherever it is shown.
"""

from __future__ import annotations

import hashlib

import numpy as np

from zoo import data as datamod
from zoo.keras_glue import input_pipeline_without_autotuning


def test_set_sha256(x_test: np.ndarray, y_test: np.ndarray) -> str:
    """A test set's identity (images and labels), as run.json and test_predictions.npz record it."""
    digest = hashlib.sha256(np.ascontiguousarray(x_test).tobytes())
    digest.update(np.ascontiguousarray(y_test).astype(np.int64).tobytes())
    return digest.hexdigest()


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
        # a class with no image has no accuracy (None, shown "—"), not 0%
        "per_class_accuracy": [round(float(v), 4) if n else None for v, n in zip(per_class, confusion.sum(axis=1))],
        "confusion_matrix": confusion.tolist(),
        "predicted": predicted,
        "p_true": p_true,
    }


def predict_probabilities(model, x, output: str = "probabilities", batch_size: int = 1024) -> np.ndarray:
    """Class probabilities for ``x`` (softmax applied here when the model gives logits)."""
    with input_pipeline_without_autotuning():
        out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float64")
    return as_probabilities(out, output)


def as_probabilities(out: np.ndarray, output: str = "probabilities") -> np.ndarray:
    """A model's outputs (rows of examples) as class probabilities: softmax where they are logits."""
    out = np.asarray(out, dtype="float64")
    if output == "logits":
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out


def evaluate_model(model, arrays, input_kind: str, output: str) -> dict:
    """The test-set evaluation ``run_job``, ``zoo evaluate`` and the report all use."""
    x = datamod.prepare_x(arrays.x_test, input_kind)
    return evaluate_predictions(predict_probabilities(model, x, output), arrays.y_test.astype("int64"),
                                arrays.dataset.num_classes)
