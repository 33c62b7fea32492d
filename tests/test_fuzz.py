"""Property-based fuzzing of everything that reads untrusted files.

For any input, the image loader, the IDX and .npz readers and the run.json reader give
a valid answer or a ``ZooError`` (the CLI's one-line error), never another exception.
The default run tries a few hundred inputs in seconds; ``pytest -m slow`` runs the
longer profile (``FUZZ_EXAMPLES`` examples per property, default 2,000).
"""

import gzip
import io
import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="pip install -e '.[test]' installs Hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from zoo.errors import ZooError  # noqa: E402

# Pillow warns about the damaged files it is fed here; the property is about what the zoo does.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
QUICK = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")), deadline=None,
                suppress_health_check=list(HealthCheck))
SCRATCH = Path(tempfile.mkdtemp(prefix="zoo-fuzz-"))


def _file(name: str, data: bytes) -> Path:
    path = SCRATCH / name
    path.write_bytes(data)
    return path


# -- images --------------------------------------------------------------------------
def _encoded_image(draw_array, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(draw_array).save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def image_files(draw):
    """Random bytes, real images of random content and size, and real images cut short or bit-flipped."""
    kind = draw(st.sampled_from(["bytes", "image", "truncated", "flipped", "float"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    h, w = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    if kind == "float":
        values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=h * w,
                               max_size=h * w))
        return _encoded_image(np.array(values, dtype=np.float32).reshape(h, w), "TIFF")
    pixels = np.frombuffer(draw(st.binary(min_size=h * w, max_size=h * w)), dtype=np.uint8).reshape(h, w)
    data = _encoded_image(pixels.copy(), draw(st.sampled_from(["PNG", "BMP", "TIFF", "JPEG", "GIF"])))
    if kind == "truncated":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "flipped":
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    return data


def _check_image(data: bytes):
    from zoo.imaging import preprocess

    try:
        out = preprocess(_file("image", data))
    except ZooError:
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8


@QUICK
@given(image_files())
def test_image_loader_answers_or_says_why(data):
    _check_image(data)


@pytest.mark.slow
@LONG
@given(image_files())
def test_image_loader_answers_or_says_why_long(data):
    _check_image(data)


# -- IDX ----------------------------------------------------------------------------------
@st.composite
def idx_files(draw):
    """Random bytes, or a real IDX header with random dimensions and a payload of random length."""
    if draw(st.booleans()):
        data = draw(st.binary(max_size=600))
    else:
        dims = draw(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 12), min_size=0, max_size=5))
        payload = draw(st.binary(max_size=600))
        data = bytes([0, 0, draw(st.sampled_from([8, 8, 9])), len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload
    return gzip.compress(data) if draw(st.booleans()) else data


def _check_idx(data: bytes, gz: bool):
    from zoo.data import read_idx

    try:
        out = read_idx(_file("data.gz" if gz else "data", data), limit=10_000)
    except ZooError:
        return
    assert out.dtype == np.uint8 and out.nbytes <= 10_000


@QUICK
@given(idx_files())
def test_idx_reader_answers_or_says_why(data):
    _check_idx(data, data[:2] == b"\x1f\x8b")


@pytest.mark.slow
@LONG
@given(idx_files())
def test_idx_reader_answers_or_says_why_long(data):
    _check_idx(data, data[:2] == b"\x1f\x8b")


# -- .npz ------------------------------------------------------------------------------------
@st.composite
def npz_files(draw):
    """Random bytes, or zip archives of .npy entries with random headers and payloads."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=800))
    buf = io.BytesIO()
    names = draw(st.lists(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "other"]), max_size=5, unique=True))
    with zipfile.ZipFile(buf, "w", draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as archive:
        for name in names:
            header = io.BytesIO()
            shape = tuple(draw(st.lists(st.integers(0, 10**15) | st.integers(0, 30), max_size=3)))
            descr = draw(st.sampled_from(["|u1", "<i8", "<f4", "|O", ">u2"]))
            np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": draw(st.booleans()),
                                                          "shape": shape})
            raw = header.getvalue()
            if draw(st.booleans()):
                i = draw(st.integers(0, len(raw) - 1))
                raw = raw[:i] + draw(st.binary(max_size=8)) + raw[i + 1:]
            archive.writestr(f"{name}.npy", raw + draw(st.binary(max_size=300)))
    return buf.getvalue()


def _check_npz(data: bytes):
    from zoo.data import read_npz

    try:
        arrays = read_npz(_file("data.npz", data), dict.fromkeys(("x_train", "y_train", "x_test", "y_test"), 5000))
    except ZooError:
        return
    assert set(arrays) == {"x_train", "y_train", "x_test", "y_test"}
    assert all(a.nbytes <= 5000 for a in arrays.values())


@QUICK
@given(npz_files())
def test_npz_reader_answers_or_says_why(data):
    _check_npz(data)


@pytest.mark.slow
@LONG
@given(npz_files())
def test_npz_reader_answers_or_says_why_long(data):
    _check_npz(data)


# -- run.json ------------------------------------------------------------------------------------
VALID = {"model": "mlp", "recipe": "article", "status": "completed", "seed": 42, "input_kind": "flat",
         "dataset": {"name": "mnist", "class_names": [str(i) for i in range(10)], "image_shape": [28, 28, 1]},
         "split": {"validate_on": "val", "train": 9, "validation": 1, "test": 10, "seed": 42},
         "test_accuracy": 0.9, "per_class_accuracy": [0.9] * 10, "epoch_seconds": [1.0]}
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4),
                           max_leaves=12)


@st.composite
def run_json_files(draw):
    """Random bytes, random JSON, or a valid record with one field (or sub-field) replaced."""
    kind = draw(st.sampled_from(["bytes", "json", "mutated"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    record = json.loads(json.dumps(VALID))
    target = record
    if draw(st.booleans()):
        target = record[draw(st.sampled_from(["dataset", "split"]))]
    key = draw(st.sampled_from(sorted(target)))
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(json_values)
    return json.dumps(record).encode()


def _check_record(data: bytes):
    from zoo.runs import RunRecord, read_record

    try:
        record = read_record(_file("run.json", data))
        record.check_consistent("run.json")
    except ZooError:
        return
    assert isinstance(record, RunRecord) and isinstance(record.model, str)


@QUICK
@given(run_json_files())
def test_run_record_reader_answers_or_says_why(data):
    _check_record(data)


@pytest.mark.slow
@LONG
@given(run_json_files())
def test_run_record_reader_answers_or_says_why_long(data):
    _check_record(data)
