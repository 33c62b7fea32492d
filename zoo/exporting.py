"""Take a model anywhere: ONNX, LiteRT or a SavedModel, checked against Keras on every test image.

A model trained in the zoo lives in a ``.keras`` file that only Keras reads. ``zoo export``
writes it in a format other runtimes read — ONNX (onnxruntime, ONNX Runtime Web in a browser,
C++, C#, Java), LiteRT (Android, iOS, microcontrollers: the format once called TFLite) or a
TensorFlow SavedModel (TF Serving) — through Keras's own exporter, and then **runs the exported
file with its own runtime on the whole test set** and compares it with Keras: the top-1
agreement and the largest difference in any probability. Below 99.9% agreement the export is an
error that names the images that differ: a file that answers unlike the model it came from is
worse than no file.

What a runtime needs to know to feed the model is written beside it (``NAME.onnx.json``,
``NAME.tflite.json``, ``zoo.json`` in a SavedModel; inside the ONNX file's metadata too): the input's shape and dtype, how pixels are scaled (gray levels / 255,
white digit on black, cropped, fitted into 20×20 and centred by centre of mass in 28×28, as
MNIST was made), whether the output is probabilities or logits, the class names, the run it
came from, and the parity measured.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo import data as datamod
from zoo.anatomy import layers
from zoo.errors import OptionError, ZooError
from zoo.evaluation import as_probabilities
from zoo.files import atomic_write_json, check_output_file
from zoo.imaging import box_for, describe_steps, field_of
from zoo.jobs import useful_line
from zoo.keras_glue import _fd2_to_devnull
from zoo.runs import open_run

MIN_AGREEMENT = 0.999
SHOWN_DIFFERENCES = 10


class ExportError(ZooError):
    """An export that failed, or whose file answers unlike the Keras model."""


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str                # "" for a folder
    keras: str                 # Keras's name for it (Model.export(format=...))
    runtime: str               # the package that runs it, for the one-line error when missing
    install: str


FORMATS = {
    "onnx": Format("onnx", ".onnx", "onnx", "onnxruntime", "pip install -e '.[export]'"),
    "litert": Format("litert", ".tflite", "litert", "ai_edge_litert", "pip install -e '.[export]'"),
    "saved_model": Format("saved_model", "", "tf_saved_model", "tensorflow", "it comes with TensorFlow"),
}


def check_format(fmt: str) -> Format:
    if fmt not in FORMATS:
        raise OptionError(f": give one of {', '.join(FORMATS)}", parameter="format", value=fmt)
    return FORMATS[fmt]


def output_path(fmt: Format, name: str, out=None) -> Path:
    """``out``, or ``NAME.onnx`` / ``NAME.tflite`` / ``NAME-saved_model/`` in the working directory."""
    if out is not None:
        if fmt.suffix and Path(out).suffix != fmt.suffix:
            raise OptionError(f": a {fmt.name} file's name ends in {fmt.suffix}", parameter="out", value=str(out))
        return Path(out)
    return Path(f"{name}{fmt.suffix}" if fmt.suffix else f"{name}-saved_model")


def is_augmentation(layer) -> bool:
    """Keras's random augmentation layers (RandomRotation, RandomZoom, …): the identity at
    inference, but their graph holds random-number ops that other runtimes do not have."""
    import keras

    return isinstance(layer, keras.layers.Layer) and type(layer).__name__.startswith("Random") and \
        type(layer).__module__.startswith("keras.")


def for_inference(model):
    """``model`` as inference runs it: its augmentation layers (the identity there) left out, the
    same layer objects and weights for the rest. A model without them is returned as it is."""
    import keras

    if not any(is_augmentation(layer) for layer in layers(model)):
        return model
    return keras.models.clone_model(model, clone_function=lambda layer: (
        keras.layers.Identity(name=f"{layer.name}_at_inference") if is_augmentation(layer) else layer))


def preprocessing(record) -> dict:
    """What a runtime must do to a digit before the model sees it."""
    field = field_of(record)
    shape = [math.prod(field)] if record.input_kind == "flat" else [*field, 1]
    return {"input_shape": [None, *shape], "dtype": "float32", "scale": "gray level / 255, in [0, 1]",
            "digit": "white on black" + (", flattened row by row" if record.input_kind == "flat" else ""),
            "field": list(field), "box": list(box_for(field)), "steps": describe_steps(field),
            "output": record.output, "classes": list(record.class_names)}


# -- running an exported file ------------------------------------------------------------------------
def needs_runtime(module: str, fmt: Format):
    """The format's runtime module, or a one-line error saying which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OptionError(f"needs {module}: {fmt.install}", parameter="format", value=fmt.name) from None


def run_exported(fmt: Format, path: Path, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """The exported file's outputs on ``x``, computed by that format's own runtime."""
    outputs = []
    if fmt.name == "onnx":
        ort = needs_runtime("onnxruntime", fmt)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for start in range(0, len(x), batch):
            outputs.append(session.run(None, {name: x[start:start + batch]})[0])
    elif fmt.name == "litert":
        litert = needs_runtime("ai_edge_litert.interpreter", fmt)
        with _fd2_to_devnull():  # its C++ core announces the CPU delegate it creates on fd 2
            interpreter = litert.Interpreter(model_path=str(path))
        given = interpreter.get_input_details()[0]
        for start in range(0, len(x), batch):
            chunk = x[start:start + batch]
            interpreter.resize_tensor_input(given["index"], list(chunk.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], chunk)
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy())
    else:
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        for start in range(0, len(x), batch):
            outputs.append(np.asarray(loaded.serve(tf.constant(x[start:start + batch]))))
    return np.concatenate(outputs).astype(np.float64)


def parity(expected: np.ndarray, got: np.ndarray, what: str) -> dict:
    """Top-1 agreement and the largest probability difference between Keras and the exported file."""
    same = expected.argmax(axis=1) == got.argmax(axis=1)
    differ = np.flatnonzero(~same)
    return {"on": what, "images": int(len(same)), "agreement": float(same.mean()),
            "max_probability_difference": float(np.abs(expected - got).max()),
            "differing_images": [int(i) for i in differ[:SHOWN_DIFFERENCES]], "differing": int(len(differ))}


# -- the export ----------------------------------------------------------------------------------------
def export(run_dir, fmt: str = "onnx", out=None, *, arrays=None, foreign=None, name: str | None = None) -> dict:
    """Export the run in ``run_dir`` (loaded safely) to ``fmt`` at ``out``, then check the file
    against Keras on every image of ``arrays``' test set (and of ``foreign``, a ``ForeignTestSet``
    such as the class's drawings). Returns what was written and the parity; raises
    ``ExportError`` when agreement is below ``MIN_AGREEMENT``, naming the images."""
    chosen = check_format(fmt)
    record, model = open_run(run_dir)
    name = name or record.model
    path = output_path(chosen, name, out)
    if chosen.suffix:
        check_output_file(path)
    elif path.exists():
        raise OptionError(f"{path} already exists: give another -o folder (a SavedModel is a folder)")
    checks = [("the test set", arrays.x_test)] if arrays is not None else []
    if foreign is not None:
        checks.append((foreign.dataset, foreign.x))
    x_first = datamod.prepare_x(checks[0][1][:1] if checks else np.zeros((1, *record.dataset.image_shape[:2]),
                                                                         np.uint8), record.input_kind)
    model(x_first)  # a loaded model must have been called before Keras exports it
    exported = for_inference(model)
    exported(x_first)
    _export_with_keras(exported, path, chosen, record)
    meta = {"format": chosen.name, "file": str(path), "model": record.model, "recipe": record.recipe,
            "seed": record.seed, "run": str(run_dir), "test_accuracy": record.test_accuracy,
            "trained_on": record.dataset.name, "preprocessing": preprocessing(record), "parity": []}
    if chosen.name == "onnx":
        _onnx_metadata(path, meta)  # before the check: what is checked is the file as it stays
    for what, images in checks:
        x = datamod.prepare_x(images, record.input_kind)
        expected = as_probabilities(np.asarray(model.predict(x, batch_size=1000, verbose=0)), record.output)
        got = as_probabilities(run_exported(chosen, path, x), record.output)
        meta["parity"].append(parity(expected, got, what))
    _write_sidecar(chosen, path, meta)
    for found in meta["parity"]:
        if found["agreement"] < MIN_AGREEMENT:
            shown = ", ".join(map(str, found["differing_images"]))
            raise ExportError(f"{path}: the exported {chosen.name} model agrees with Keras on only "
                              f"{found['agreement']:.2%} of {found['on']} ({found['differing']} images differ: "
                              f"{shown}{', …' if found['differing'] > SHOWN_DIFFERENCES else ''}); do not use it")
    return meta


def _export_with_keras(model, path: Path, chosen: Format, record) -> None:

    try:
        # the exporters print their progress; Keras's tf2onnx shim warns about NumPy's np.object
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"keras\.src\.export")
            model.export(str(path), format=chosen.keras, verbose=False)
    except Exception as exc:  # noqa: BLE001  (each exporter raises its own errors)
        custom = sorted({type(layer).__name__ for layer in layers(model)
                         if not type(layer).__module__.startswith("keras.")})

        why = f"{type(exc).__name__}: {useful_line(exc, 160)}"
        hint = (f"; its custom layer{'s' * (len(custom) > 1)} {', '.join(custom)} may have no {chosen.name} form"
                if custom else "")
        raise ExportError(f"{record.model}: cannot be exported to {chosen.name} ({why}){hint}") from None


def _write_sidecar(chosen: Format, path: Path, meta: dict) -> None:
    """The preprocessing and parity beside the file: NAME.json (zoo.json inside a SavedModel)."""
    sidecar = path / "zoo.json" if not chosen.suffix else path.with_name(path.name + ".json")
    meta["metadata"] = str(sidecar)
    atomic_write_json(sidecar, meta)


def _onnx_metadata(path: Path, meta: dict) -> None:
    """The model's name and preprocessing in the ONNX file's own metadata (``metadata_props``)."""
    try:
        import onnx
    except ImportError:
        return
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in (("zoo.model", meta["model"]), ("zoo.preprocessing", json.dumps(meta["preprocessing"]))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
