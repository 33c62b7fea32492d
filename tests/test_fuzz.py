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
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
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


@pytest.mark.unit
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


@pytest.mark.unit
@QUICK
@given(idx_files())
# found by the long run: a dimension of 0 beside huge ones (NumPy: "array is too big" on reshape)
@example(b"\x00\x00\x08\x04\x00\x00\x00\x00\x00\x02\xb1*\x00\x02\xb12\x11\xa9Q\x13")
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


@pytest.mark.unit
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


@pytest.mark.unit
@QUICK
@given(run_json_files())
def test_run_record_reader_answers_or_says_why(data):
    _check_record(data)


@pytest.mark.slow
@LONG
@given(run_json_files())
def test_run_record_reader_answers_or_says_why_long(data):
    _check_record(data)


# -- every other file a run or a comparison folder holds --------------------------------------------
SMALL = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
LONG_SMALL = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")) // 10, deadline=None,
                      suppress_health_check=list(HealthCheck))


@st.composite
def json_files(draw):
    """Random bytes, random JSON, JSON nested past the parser's depth, NaN and Infinity, and
    a file over the size cap: what a hand edit, a bad disk or an attacker leaves."""
    kind = draw(st.sampled_from(["bytes", "json", "deep", "nan", "large"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    if kind == "deep":
        depth = draw(st.integers(1_000, 100_000))
        return (draw(st.sampled_from(["[", '{"a":'])) * depth).encode()
    if kind == "nan":
        return f'{{"seeds": {draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))}}}'.encode()
    if kind == "large":
        return b"large"  # stands for a file over the cap: read with a tiny limit below
    return json.dumps(draw(json_values)).encode()


def _folder(name: str) -> Path:
    folder = SCRATCH / name
    folder.mkdir(exist_ok=True)
    return folder


def _check_json_readers(data: bytes):
    """plan.json, compare.json, history.json, history_steps.json and the listing cache: each
    reader answers (the right type) or says why in one line, never another exception."""
    from zoo import cache
    from zoo.files import read_json
    from zoo.plan import Plan
    from zoo.rows import _compare_order
    from zoo.runs import read_history, read_steps

    folder = _folder("folder")
    for name in ("plan.json", "compare.json", "history.json", "history_steps.json"):
        (folder / name).write_bytes(data)
    if data == b"large":
        with pytest.raises(ZooError, match="refused unread"):
            read_json(folder / "plan.json", "plan", limit=3)
        return
    try:
        assert isinstance(Plan.read(folder), Plan)
    except ZooError:
        pass
    assert isinstance(_compare_order(folder), list)
    history = read_history(folder)
    assert history is None or all(isinstance(v, list) for v in history.values())
    steps = read_steps(folder)
    assert steps is None or len(steps["position"]) == len(steps["loss"])
    _check_config_readers(data)
    try:
        listing = json.loads(data)
    except (ValueError, RecursionError):
        return
    if isinstance(listing, dict):
        cache._listing_shaped(listing)  # a bool, whatever the types inside


def _check_config_readers(data: bytes):
    """The zoo's own configuration (datasets.json of `zoo data add`, the pretrained manifest) goes
    through the same capped, depth-limited reader: a table, or one line."""
    import os
    from unittest import mock

    from zoo import folders, pretrained_models

    folder = _folder("config")
    (folder / "datasets.json").write_bytes(data)
    (folder / "manifest.json").write_bytes(data)
    with mock.patch.dict(os.environ, {"ZOO_CONFIG_DIR": str(folder)}), \
            mock.patch.object(pretrained_models, "FOLDER", folder):
        for read in (folders.added, pretrained_models.manifest):
            try:
                assert isinstance(read(), dict)
            except ZooError as exc:
                assert "\n" not in str(exc)


@pytest.mark.unit
@QUICK
@given(json_files())
def test_plan_compare_history_and_cache_readers_answer_or_say_why(data):
    _check_json_readers(data)


@pytest.mark.slow
@LONG
@given(json_files())
def test_plan_compare_history_and_cache_readers_answer_or_say_why_long(data):
    _check_json_readers(data)


@st.composite
def prediction_files(draw):
    """An npz of random arrays under the names a run writes, headers that promise more than
    they hold, random bytes, or a real file cut short."""
    kind = draw(st.sampled_from(["bytes", "arrays", "liar", "truncated"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    buf = io.BytesIO()
    if kind == "liar":
        header = io.BytesIO()
        shape = (draw(st.integers(0, 10**12)),)
        np.lib.format.write_array_header_1_0(header, {"descr": draw(st.sampled_from(["<i8", "<f4", "|b1", "|O"])),
                                                      "fortran_order": False, "shape": shape})
        with zipfile.ZipFile(buf, "w") as npz:
            for name in draw(st.lists(st.sampled_from(["predicted", "p_true", "correct", "test_sha256"]),
                                      min_size=1, unique=True)):
                npz.writestr(f"{name}.npy", header.getvalue())
        return buf.getvalue()
    arrays = {}
    for name in draw(st.lists(st.sampled_from(["predicted", "p_true", "correct", "test_sha256", "other"]),
                              unique=True)):
        size = draw(st.integers(0, 12))
        arrays[name] = np.frombuffer(draw(st.binary(min_size=size * 4, max_size=size * 4)),
                                     dtype=draw(st.sampled_from(["<i4", "<f4", "<u4"])))
    np.savez(buf, **arrays)
    data = buf.getvalue()
    return data[: draw(st.integers(0, len(data)))] if kind == "truncated" else data


def _check_predictions(data: bytes):
    from zoo.runs import read_predictions

    folder = _folder("predictions")
    (folder / "test_predictions.npz").write_bytes(data)
    try:
        read = read_predictions(folder, 10)
    except ZooError:
        return
    assert read is not None and len(read["predicted"]) == 10


@QUICK
@given(prediction_files())
def test_prediction_reader_answers_or_says_why(data):
    _check_predictions(data)


@pytest.mark.slow
@LONG
@given(prediction_files())
def test_prediction_reader_answers_or_says_why_long(data):
    _check_predictions(data)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A real model.keras (an mlp, untrained) and its parameter count, to mutate."""
    from zoo.anatomy import build_model
    from zoo.plugins import get_zoo

    model = build_model(get_zoo().architecture("mlp"))
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    model.save(path)
    return path.read_bytes(), model.count_params()


@st.composite
def keras_archives(draw, original: bytes):
    """A real .keras with an entry replaced, cut, inflated, added or bit-flipped, or a random zip."""
    kind = draw(st.sampled_from(["replace", "truncate", "flip", "add", "random"]))
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original)))]
    if kind == "flip":
        i = draw(st.integers(0, len(original) - 1))
        return original[:i] + bytes([original[i] ^ draw(st.integers(1, 255))]) + original[i + 1:]
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as old, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as new:
        names = old.namelist()
        target = draw(st.sampled_from(names))
        for name in names if kind != "random" else []:
            content = old.read(name)
            if kind == "replace" and name == target:
                content = draw(st.one_of(st.binary(max_size=300), st.just(bytes(draw(st.integers(0, 30_000_000))))))
                if name == "config.json" and draw(st.booleans()):
                    content = json.dumps(draw(json_values)).encode()
            new.writestr(name, content)
        if kind in ("add", "random"):
            for _ in range(draw(st.integers(1, 80 if kind == "add" else 3))):
                name = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz._-/", min_size=1, max_size=12))
                new.writestr(name.strip("/") or "x", draw(st.binary(max_size=50)))
    return buf.getvalue()


def _check_archive(data: bytes, params: int):
    import keras

    from zoo.runs import load_model

    folder = _folder("keras")
    (folder / "model.keras").write_bytes(data)
    try:
        model = load_model(folder, params)
    except ZooError:
        return
    assert isinstance(model, keras.Model)


def _archive_property(saved_model, profile):
    original, params = saved_model

    @profile
    @given(keras_archives(original))
    def check(data):
        _check_archive(data, params)

    check()


def test_keras_archive_loader_answers_or_says_why(saved_model):
    _archive_property(saved_model, SMALL)


@pytest.mark.slow
def test_keras_archive_loader_answers_or_says_why_long(saved_model):
    _archive_property(saved_model, LONG_SMALL)


# -- what compare and report do with whatever records read ------------------------------------------
@st.composite
def record_sets(draw):
    """One to four run records that pass the reader, each a valid record with fields changed."""
    from zoo.runs import record_from_dict

    records = []
    for n in range(draw(st.integers(1, 4))):
        data = json.loads(json.dumps(VALID))
        data["seed"] = draw(st.integers(0, 2**31 - 1))
        data["model"] = draw(st.sampled_from(["mlp", "speedrun", "res-cnn"]))
        for key in draw(st.lists(st.sampled_from(["test_accuracy", "best_val_accuracy", "per_class_accuracy",
                                                  "confusion_matrix", "params", "macs", "epoch_seconds",
                                                  "status", "warnings", "test_loss", "training_seconds"]),
                                 max_size=4, unique=True)):
            data[key] = draw(st.one_of(json_values, st.floats(0, 1), st.lists(st.floats(0, 1), max_size=12),
                                       st.lists(st.lists(st.integers(0, 9), max_size=10), max_size=10)))
        try:
            record = record_from_dict(data, f"run {n}")
        except ZooError:
            continue
        record.run_dir = str(_folder(f"run-{n}"))
        records.append(record)
    return records


def _check_comparison(records):
    from zoo.files import json_text
    from zoo.rows import comparison_rows, export

    rows, notes = comparison_rows(records)
    json.loads(json_text(rows))  # strict JSON, whatever was read
    folder = _folder("exports")
    export(rows, folder / "rows.json", folder / "rows.csv", folder / "rows.md")
    assert all(isinstance(note, str) for note in notes)


@pytest.mark.unit
@QUICK
@given(record_sets())
def test_comparison_rows_of_any_readable_records_are_strict_json(records):
    _check_comparison(records)


@pytest.mark.slow
@LONG_SMALL
@given(record_sets())
def test_comparison_rows_of_any_readable_records_are_strict_json_long(records):
    _check_comparison(records)


def _check_report(records):
    from zoo import site
    from zoo.rows import comparison_rows

    if not records:
        return
    rows, notes = comparison_rows(records)
    report = site.write(records, SCRATCH / "report", data_dir="/nonexistent-data-dir", rows=rows, notes=notes)
    assert (SCRATCH / "report" / "index.html").is_file() and report is not None


@pytest.mark.unit
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))  # figures: a second each
@given(record_sets())
def test_a_report_of_any_readable_records_is_written(records):
    _check_report(records)


@pytest.mark.slow
@LONG_SMALL
@given(record_sets())
def test_a_report_of_any_readable_records_is_written_long(records):
    _check_report(records)
