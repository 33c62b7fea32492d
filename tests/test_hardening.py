"""Untrusted files, hostile plugins' output and odd paths never crash the zoo or lose results.

Each test reproduces a case found by trying the zoo as an adversarial user would, and
checks that it now ends in a one-line error (or a warning) and loses nothing.
"""

import gzip
import importlib.util
import io
import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import run_zoo
from PIL import Image

# A third-party-style plugin using every feature docs/writing-a-plugin.md documents: the
# functional API with a residual branch, a shared layer and a nested model, a custom layer
# (saved and loaded back), logits output, a learning-rate schedule and weight averaging.
EVERY_FEATURE = '''
import keras
import zoo

SRC = zoo.Source("every documented plugin feature", "tests", 2026)


@keras.saving.register_keras_serializable(package="zoo_test_every_feature")
class Scale(keras.layers.Layer):
    """A custom layer: one learned scale per channel."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    shortcut = x
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.Add()([x, shortcut])                     # the residual branch
    x = Scale()(x)
    x = keras.layers.MaxPooling2D(4)(x)
    x = keras.layers.Flatten()(x)
    shared = keras.layers.Dense(32, activation="relu")
    x = keras.layers.Concatenate()([shared(x), shared(x)])  # one layer used twice
    head = keras.Sequential([keras.Input((64,)), keras.layers.Dense(num_classes)], name="head")
    return keras.Model(inputs, head(x), name="every_feature")  # logits: no softmax


@zoo.hookimpl
def zoo_register_architectures(register):
    register(zoo.Architecture(
        name="every-feature", title="Every feature", summary="s", teaches="t", source=SRC,
        input_kind="image", build=build, output="logits",
        recipes=(zoo.Recipe(
            name="adam", optimizer={"class_name": "Adam", "learning_rate": 0.003},
            loss="sparse_categorical_crossentropy", batch_size=64, epochs=2, validation="none", source=SRC,
            schedule={"kind": "warmup_cosine", "warmup": 0.1, "start": 0.1, "alpha": 0.1},
            weight_average=0.2, label_smoothing=0.1),)))
'''


@pytest.fixture(scope="module")
def every_feature(tmp_path_factory, mnist_npz):
    folder = tmp_path_factory.mktemp("every-feature-plugin")
    (folder / "every_feature.py").write_text(EVERY_FEATURE)
    return {"ZOO_PLUGINS_DIR": str(folder), "ZOO_DATA_DIR": str(mnist_npz)}


@pytest.mark.unit
def test_logits_loss_really_applies():
    """keras.losses.get(...config...) drops from_logits; the zoo's loss keeps it."""
    from zoo.keras_glue import build_loss

    for name in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        assert build_loss(name, from_logits=True).get_config()["from_logits"] is True
        assert build_loss(name, from_logits=False).get_config()["from_logits"] is False


@pytest.mark.unit
def test_label_smoothing_on_integer_labels_is_kerass_on_one_hot_labels():
    """Keras's sparse loss has no label smoothing; the zoo's gives what Keras's categorical
    loss gives on the same labels one-hot, for probabilities and for logits."""
    import keras

    from zoo import Recipe
    from zoo.errors import OptionError
    from zoo.keras_glue import build_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 10)).astype("float32")
    labels = rng.integers(0, 10, 16)
    one_hot = keras.utils.to_categorical(labels, 10)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    for from_logits, outputs in ((True, logits), (False, probabilities)):
        for smoothing in (0.05, 0.1):
            ours = build_loss("sparse_categorical_crossentropy", from_logits, smoothing)(labels, outputs)
            kerass = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
            assert float(ours) == pytest.approx(float(kerass(one_hot, outputs)), rel=1e-6)
        unsmoothed = build_loss("sparse_categorical_crossentropy", from_logits, 0.1)(labels, outputs)
        plain = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)(labels, outputs)
        assert float(unsmoothed) != pytest.approx(float(plain), rel=1e-3)  # the smoothing really applies
    for wrong in (-0.1, 1.0, True, "0.1"):
        with pytest.raises(OptionError, match="label_smoothing"):
            Recipe(name="r", optimizer="Adam", loss="sparse_categorical_crossentropy", batch_size=8, epochs=1,
                       label_smoothing=wrong)


@pytest.mark.process
def test_every_documented_feature_checks_trains_predicts_and_evaluates(every_feature, tmp_path, mnist, cli):
    listed = cli("list", "every-feature", "--json", env=every_feature)
    assert listed.exit_code == 0, listed.stderr
    row = json.loads(listed.stdout)[0]
    assert row["params"] == 16 * 9 + 16 + 16 * 9 * 16 + 16 + 16 + (16 * 49 * 32 + 32) + (64 * 10 + 10)
    # conv 784·16·9 + conv 784·16·144 + dense (×2 calls counted once per layer) + head
    assert row["macs"] == 784 * 16 * 9 + 784 * 16 * 144 + 784 * 32 + 640

    checked = cli("check", "every-feature", env=every_feature)
    assert checked.exit_code == 0, checked.stdout + checked.stderr

    trained = cli("train", "every-feature", "--limit", "3000", "--runs-dir", tmp_path, "--json", env=every_feature)
    assert trained.exit_code == 0, trained.stderr
    record = json.loads(trained.stdout)
    assert record["output"] == "logits" and record["hyperparameters"]["weight_average"] == 0.2
    assert record["hyperparameters"]["label_smoothing"] == 0.1  # and model.keras, compiled with it, loads below
    assert record["test_accuracy"] > 0.8  # with a probability loss on logits it stayed at chance

    image = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.x_test[0]).resize((140, 140)).save(image)
    predicted = run_zoo("predict", record["run_dir"], image, "--json", env=every_feature)  # a fresh process
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)[0]
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)  # softmax applied to the logits
    evaluated = run_zoo("evaluate", record["run_dir"], "--json", env=every_feature)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["test_accuracy"] == pytest.approx(record["test_accuracy"], abs=1e-4)
    # a plugin's custom layer (Scale) and logits output: exported and checked, or refused in one line naming it
    if importlib.util.find_spec("onnxruntime"):
        exported = run_zoo("export", record["run_dir"], "-o", tmp_path / "every.onnx", "--json", env=every_feature)
        if exported.returncode == 0:
            assert json.loads(exported.stdout)["parity"][0]["agreement"] >= 0.999
        else:
            assert len(exported.stderr.strip().splitlines()) == 1 and "Scale" in exported.stderr


# -- model files ----------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory, zoo_registry, mnist):
    from zoo.jobs import make_jobs, prepare, run_job
    from zoo.types import Options

    folder = tmp_path_factory.mktemp("small-run")
    options = Options(epochs=1, limit=500)
    run_job(make_jobs([zoo_registry.architecture("mlp")], options)[0], prepare(zoo_registry, options), folder)
    return folder


def _copy_run(src: Path, dst: Path, config=None, extra=None, weights=None) -> Path:
    """A copy of a run whose model.keras has its config.json (or weights) replaced, or entries added."""
    dst.mkdir()
    (dst / "run.json").write_text((src / "run.json").read_text())
    with zipfile.ZipFile(src / "model.keras") as old, zipfile.ZipFile(dst / "model.keras", "w",
                                                                       zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "config.json" and config is not None:
                data = config if isinstance(config, bytes) else json.dumps(config).encode()
            if item.filename == "model.weights.h5" and weights is not None:
                data = weights
            new.writestr(item.filename, data)
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return dst


def test_a_model_file_naming_os_system_or_a_lambda_runs_nothing(small_run, tmp_path, cli):
    import keras

    marker = tmp_path / "pwned"
    os_system = {"module": "os", "class_name": "system", "config": f"touch {marker}", "registered_name": "system"}
    bad = _copy_run(small_run, tmp_path / "os-system", config=os_system)
    result = cli("evaluate", bad)
    assert result.exit_code == 2 and "cannot load model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    writes_marker = eval(f"lambda x: (open({str(marker)!r}, 'w'), x)[1]")  # no closure: Keras can save it
    lambda_model = keras.Sequential([keras.Input((784,)), keras.layers.Lambda(writes_marker),
                                     keras.layers.Dense(10, activation="softmax")])
    lambda_run = tmp_path / "lambda"
    lambda_run.mkdir()
    (lambda_run / "run.json").write_text((small_run / "run.json").read_text())
    lambda_model.save(lambda_run / "model.keras")
    marker.unlink()  # building the model here called the lambda once; loading must not
    result = cli("evaluate", lambda_run)
    assert result.exit_code == 2 and "cannot load model" in result.stderr
    assert not marker.exists()  # nothing ran


def test_a_model_file_that_would_inflate_absurdly_is_refused_unread(small_run, tmp_path, cli):
    bomb = _copy_run(small_run, tmp_path / "bomb", config=b" " * 30_000_000)  # 30 MB of config, ~30 KB stored
    assert (bomb / "model.keras").stat().st_size < 1_000_000
    result = cli("evaluate", bomb)
    assert result.exit_code == 2 and "refused unread" in result.stderr and "config.json" in result.stderr


def test_weights_far_larger_than_the_parameters_need_are_refused_unread(small_run, tmp_path, cli):
    """A 59 MB .keras whose weights inflated to 1.89 GB (under the ratio cap) took zoo evaluate to
    4.3 GB; the weights are now held against the parameter count run.json records."""
    noise = np.random.default_rng(0).integers(0, 256, 6_000_000, dtype=np.uint8).tobytes()
    fat = _copy_run(small_run, tmp_path / "fat", weights=noise + bytes(6_000_000))  # ~2× compressible
    result = cli("evaluate", fat)
    assert result.exit_code == 2 and "refused unread" in result.stderr
    assert "far more than the 25,450 parameters its run.json records need" in " ".join(result.stderr.split())


def test_predictions_declaring_a_billion_images_are_refused_and_the_rest_compare(small_run, tmp_path, cli):
    """A 5.8 MB test_predictions.npz declaring 10⁹ predictions took --from-runs to 2 GB, then
    ended the whole comparison."""
    import shutil

    from zoo.errors import ZooError
    from zoo.runs import read_predictions

    liar = tmp_path / "runs" / "liar"
    shutil.copytree(small_run, liar)
    header = io.BytesIO()  # magic and header only: the 8 GB of data it promises are not there
    np.lib.format.write_array_header_1_0(header, {"descr": "<i8", "fortran_order": False, "shape": (10**9,)})
    with zipfile.ZipFile(liar / "test_predictions.npz", "w") as npz:
        for name in ("predicted", "p_true", "correct"):
            npz.writestr(f"{name}.npy", header.getvalue())
    with pytest.raises(ZooError, match="refused before reading"):
        read_predictions(liar, 10_000)
    result = cli("compare", "--from-runs", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["model"] == "mlp" and row["test_accuracy"] > 0.5


# -- images ---------------------------------------------------------------------------
def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width × height pixels, with no pixel data (a tiny 'bomb')."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_bad_images_are_each_one_line_and_the_rest_are_answered(small_run, tmp_path, cli, mnist):
    big = png_header_only(tmp_path / "big.png", 12000, 12000)
    bomb = png_header_only(tmp_path / "bomb.png", 30000, 30000)
    nan = tmp_path / "nan.tiff"
    pixels = np.zeros((40, 40), dtype=np.float32)
    pixels[5:30, 18:22] = np.nan
    Image.fromarray(pixels, mode="F").save(nan)
    good = tmp_path / "my [draft].png"
    Image.fromarray(255 - mnist.x_test[0]).resize((100, 100)).save(good)
    result = cli("predict", small_run, big, bomb, nan, good, "--json")
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in result.stderr
    assert "megapixels" in errors[0] and "far more pixels" in errors[1] and "not numbers" in errors[2]
    answers = json.loads(result.stdout)
    assert [a["digit"] is None for a in answers] == [True, True, True, False]
    shown = cli("predict", small_run, good)
    assert shown.exit_code == 0 and "my [draft].png" in shown.stdout  # brackets shown, not eaten as markup


def test_save_preprocessed_at_a_file_and_name_clashes(small_run, tmp_path, cli, mnist):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(255 - mnist.x_test[0]).resize((80, 80)).save(tmp_path / folder / "x.png")
    (tmp_path / "file").write_text("not a folder")
    clash = cli("predict", small_run, tmp_path / "a" / "x.png", tmp_path / "b" / "x.png",
                "--save-preprocessed", tmp_path / "seen")
    assert clash.exit_code == 0, clash.stderr
    assert sorted(p.name for p in (tmp_path / "seen").iterdir()) == ["x-2.png", "x.png"]
    at_file = cli("predict", small_run, tmp_path / "a" / "x.png", "--save-preprocessed", tmp_path / "file")
    assert at_file.exit_code == 2 and "is a file" in at_file.stderr


# -- data files -----------------------------------------------------------------------
def idx_bytes(dims, payload: bytes) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


@pytest.mark.unit
def test_idx_headers_are_checked_before_reading(tmp_path):
    import tracemalloc

    from zoo.data import read_idx
    from zoo.errors import ZooError

    padded = tmp_path / "padded.gz"  # declares 10 images, inflates to 50 MB
    padded.write_bytes(gzip.compress(idx_bytes((10, 28, 28), bytes(7840 + 50_000_000)), compresslevel=1))
    tracemalloc.start()
    with pytest.raises(ZooError, match="truncated or padded"):
        read_idx(padded)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000  # it stopped inflating after the declared 7,840 bytes
    huge = tmp_path / "huge"
    huge.write_bytes(idx_bytes((4_000_000_000, 4_000_000_000, 4_000_000_000), b""))  # past 2**64 bytes
    with pytest.raises(ZooError, match="refused before reading"):
        read_idx(huge)
    more_than_mnist = tmp_path / "more"
    more_than_mnist.write_bytes(idx_bytes((70000, 28, 28), b""))
    with pytest.raises(ZooError, match="refused before reading"):
        read_idx(more_than_mnist, limit=60000 * 28 * 28)


@pytest.mark.unit
def test_npz_headers_are_checked_before_allocating(tmp_path, zoo_registry):
    from zoo import data
    from zoo.errors import ZooError

    folder = tmp_path / "claims"
    folder.mkdir()
    with zipfile.ZipFile(folder / "mnist.npz", "w") as archive:
        archive.writestr("x_train.npy", _npy_with_header((10**12, 28, 28)))  # no data behind the claim
        for key in ("y_train", "x_test", "y_test"):
            archive.writestr(f"{key}.npy", _npy_with_header((5,)))
    with pytest.raises(ZooError, match="refused before reading"):
        data.load(zoo_registry.dataset("mnist"), str(folder))

    npy = tmp_path / "npy"
    npy.mkdir()
    np.save(npy / "mnist.npy", np.zeros(3))
    (npy / "mnist.npy").rename(npy / "mnist.npz")
    with pytest.raises(ZooError, match="single NumPy array"):
        data.load(zoo_registry.dataset("mnist"), str(npy))
    noise = tmp_path / "noise"
    noise.mkdir()
    (noise / "mnist.npz").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ZooError) as info:
        data.load(zoo_registry.dataset("mnist"), str(noise))
    assert "allow_pickle" not in str(info.value) and "not a zip archive" in str(info.value)


def _npy_with_header(shape) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue()


# -- saved runs -------------------------------------------------------------------------
def test_one_bad_saved_run_is_skipped_and_the_rest_compare(small_run, tmp_path, cli):
    folder = tmp_path / "compare-x"
    folder.mkdir()
    _copy_run(small_run, folder / "good")
    truncated = _copy_run(small_run, folder / "truncated")
    (truncated / "run.json").write_text((small_run / "run.json").read_text()[:200])
    wrong = _copy_run(small_run, folder / "wrong")
    (wrong / "run.json").write_text(json.dumps({**json.loads((small_run / "run.json").read_text()),
                                                "test_accuracy": "high"}))
    (folder / "compare.json").write_text("{ not json")  # a corrupt compare.json: order is simply unknown
    result = cli("compare", "--from-runs", folder)
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning")]
    assert len(warnings) == 2 and "truncated" in " ".join(warnings) and "test_accuracy" in " ".join(warnings)
    assert "mlp" in result.stdout


@pytest.mark.parametrize("edit, message", [
    (lambda r: {**r, "dataset": None}, "dataset: Input should be an object"),
    (lambda r: {**r, "dataset": {**r["dataset"], "class_names": ["0", "1", "2"]}}, "inconsistent run record"),
    (lambda r: {**r, "input_kind": "image"}, "does not match model.keras"),
    (lambda r: {**r, "input_kind": "pixels"}, "input_kind"),
    (lambda r: [r], "not a run record"),
])
def test_an_edited_run_json_is_one_line_for_evaluate_and_predict(small_run, tmp_path, cli, edit, message):
    run = _copy_run(small_run, tmp_path / "edited")
    (run / "run.json").write_text(json.dumps(edit(json.loads((small_run / "run.json").read_text()))))
    for args in (("evaluate", run), ("predict", run, tmp_path / "whatever.png")):
        result = cli(*args)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


# -- plugins: output, markup, names, precedence --------------------------------------------
LOUD = '''
import keras
import zoo
print("hello from import")
SRC = zoo.Source("[/y] <b>loud</b> \\x1b[31mred", "tests", 2026)

def build(input_shape, num_classes):
    print("hello from build")
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])

def wrong_output(input_shape, num_classes):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(3)])

R = zoo.Recipe(name="r", optimizer={"class_name": "SGD"}, loss="categorical_crossentropy", batch_size=8,
               epochs=1, validation="none", source=SRC)

@zoo.hookimpl
def zoo_register_architectures(register):
    print("hello from the hook")
    register(zoo.Architecture(name="loud", title="[/y] <b>x</b> [draft]", summary="s", teaches="t",
                              source=SRC, input_kind="image", build=build, recipes=(R,)))
    register(zoo.Architecture(name="three-outputs", title="t", summary="s", teaches="t", source=SRC,
                              input_kind="image", build=wrong_output, recipes=(R,)))
    for bad in ("../x", "/abs", "", "\\t", "-rf", "Upper"):
        register(zoo.Architecture(name=bad, title="t", summary="s", teaches="t", source=SRC,
                                  input_kind="image", build=build, recipes=(R,)))
'''


@pytest.mark.unit
def test_plugins_that_print_odd_names_and_markup_cannot_break_the_zoo(tmp_path, cli, mnist_npz):
    (tmp_path / "loud.py").write_text(LOUD)
    env = {"ZOO_PLUGINS_DIR": str(tmp_path), "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    for args in (("list",), ("info", "loud"), ("plugins",), ("data", "mnist", "--data-dir", mnist_npz)):
        result = cli(*args, "--json", env=env)
        assert result.exit_code == 0, result.stderr
        json.loads(result.stdout)  # stdout holds the JSON document and nothing else
    shown = cli("info", "loud", env=env)
    assert shown.exit_code == 0 and "[/y] <b>x</b> [draft]" in shown.stdout
    assert "\x1b[31m" not in shown.stdout and "\\x1b" in shown.stdout  # the escape is shown, not obeyed
    listed = cli("list", env=env)
    assert listed.exit_code == 0 and "three-outputs: output shape (None, 3)" in " ".join(listed.stderr.split())
    failures = json.loads(cli("plugins", "--json", env=env).stdout)["failures"]
    assert any("three-outputs: output shape (None, 3)" in f["error"] for f in failures)
    # the hook raises at the first bad name: the plugin's failure, not the zoo's
    assert any("architecture name '../x'" in f["error"] for f in failures)


ROGUE = '''
import sys
import time
import keras
import zoo
SRC = zoo.Source("rogue builds", "tests", 2026)
R = zoo.Recipe(name="r", optimizer={"class_name": "SGD"}, loss="categorical_crossentropy", batch_size=8,
               epochs=1, validation="none", source=SRC)

def sleeps(input_shape, num_classes):
    time.sleep(3600)

def exits(input_shape, num_classes):
    sys.exit(3)

def interrupts(input_shape, num_classes):
    raise KeyboardInterrupt

def three_heads(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, [keras.layers.Dense(num_classes, activation="softmax")(x) for _ in range(3)])

@zoo.hookimpl
def zoo_register_architectures(register):
    for name, build in (("sleeps", sleeps), ("exits", exits), ("interrupts", interrupts),
                        ("three-heads", three_heads)):
        register(zoo.Architecture(name=name, title=name, summary="s", teaches="t", source=SRC,
                                  input_kind="image", build=build, recipes=(R,)))
'''


@pytest.mark.process
def test_plugins_that_hang_or_exit_are_named_and_the_rest_answers(tmp_path):
    """A build() that sleeps hung `zoo list`; one calling sys.exit(3) ended `zoo list --json`
    with empty output; sys.exit("msg") at import ended every command without naming the plugin;
    a model with three outputs passed `zoo list` and failed training with a KeyError."""
    (tmp_path / "rogue.py").write_text(ROGUE)
    (tmp_path / "quits.py").write_text("import sys\nsys.exit('not today')\n")
    env = {"ZOO_PLUGINS_DIR": str(tmp_path), "ZOO_CACHE_DIR": str(tmp_path / "cache"), "ZOO_BUILD_TIMEOUT": "3"}
    listed = run_zoo("list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {"mlp", "three-heads"} <= {m["name"] for m in json.loads(listed.stdout)}
    said = " ".join(listed.stderr.split())
    assert "sleeps: build() still running after 3 s" in said
    assert "exits: build() called sys.exit(3)" in said
    assert "interrupts: build() raised KeyboardInterrupt itself" in said
    assert "three-heads: 3 outputs, expected one (None, 10) tensor" in said
    assert "plugin 'quits'" in said and "called sys.exit('not today') (quits.py:2)" in said
    plugins = run_zoo("plugins", "--json", env=env)
    assert plugins.returncode == 0 and json.loads(plugins.stdout)["failures"]
    info = run_zoo("info", "mlp", env=env)
    assert info.returncode == 0 and "Traceback" not in info.stderr
    checked = run_zoo("check", "three-heads", "exits", env=env)
    assert checked.returncode != 0 and "Traceback" not in checked.stderr
    assert "3 outputs, expected one (None, 10) tensor" in " ".join(checked.stdout.split())


@pytest.mark.unit
def test_names_that_are_not_the_name_rule_are_refused():
    from zoo import Architecture, Recipe, Source

    src = Source("t", "tests", 2026)
    recipe = Recipe(name="r", optimizer={"class_name": "SGD"}, loss="categorical_crossentropy", batch_size=8,
                    epochs=1, validation="none", source=src)
    for bad in ("../x", "/abs", "", "\t", "-rf", "Upper", "a--b", "x y", "x" * 300):
        with pytest.raises(ValueError, match="lower-case letters"):
            Architecture(name=bad, title="t", summary="s", teaches="t", source=src, input_kind="flat",
                         build=lambda *a: None, recipes=(recipe,))


def test_a_name_from_a_file_never_becomes_a_path_outside(tmp_path, cli):
    """A run.json whose model is ../../../escaped-by-report wrote a page and 22 figures outside
    `zoo report -o`: such a record is now refused (skipped with one line) and the rest reported."""
    import shutil

    import zoo
    from zoo.files import path_part
    from zoo.runs import new_run_dir

    shipped = Path(__file__).resolve().parents[1] / "docs" / "results" / "article-three-seeds" / "mlp-seed42"
    runs = tmp_path / "runs"
    shutil.copytree(shipped, runs / "good")
    evil = runs / "evil"
    shutil.copytree(shipped, evil)
    record = json.loads((evil / "run.json").read_text())
    (evil / "run.json").write_text(json.dumps({**record, "model": "../../../escaped-by-report"}))
    out = tmp_path / "report" / "out"
    result = cli("report", runs, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "skipped" in result.stderr and "no zoo model name" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "runs"]  # nothing written beside
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["out"]
    assert [p.name for p in (out / "models").glob("*.html")] == ["mlp.html"]
    for bad in ("../x", "a/b", "..", "x\x00y", "bell\x07"):
        with pytest.raises(zoo.ZooError, match="cannot name a file or folder"):
            path_part(bad)
    long = new_run_dir(tmp_path, "m" * 300)  # a stable short form, not "File name too long"
    assert long.is_dir() and len(long.name) <= 80 and long.name == path_part("m" * 300)


def test_zoo_new_with_an_overlong_name_is_one_line(tmp_path, cli):
    result = cli("new", "x" * 300, "--dir", tmp_path)
    assert result.exit_code == 2 and "at most 64 characters" in result.stderr and not list(tmp_path.iterdir())


@pytest.mark.slow  # three fresh processes
def test_precedence_does_not_depend_on_sys_path_order(tmp_path):
    """A third-party `mlp` loses to the built-in whether its distribution is found first or last."""
    from test_plugin_discovery import GOOD_PLUGIN, make_distribution

    make_distribution(tmp_path, "zoo-aaa-clash", "1.0", {"aaa-clash": "zoo_aaa_clash"},
                      {"zoo_aaa_clash": GOOD_PLUGIN.replace("tiny-logreg", "mlp")})
    before = run_zoo("plugins", "--json", env={"PYTHONPATH": str(tmp_path)})
    after_code = (f"import sys; sys.path.append({str(tmp_path)!r}); from zoo.cli import main; "
                  "sys.argv = ['zoo', 'plugins', '--json']; main()")
    import subprocess

    after = subprocess.run([sys.executable, "-c", after_code], capture_output=True, text=True, timeout=120)
    for result in (before, after):
        data = json.loads(result.stdout)
        owner = next(p for p in data["plugins"] if "mlp" in p["architectures"])
        assert owner["distribution"] == "mnist-zoo"
        clash = next(f for f in data["failures"] if f["plugin"] == "aaa-clash")
        assert "already registered by plugin 'mlp' (mnist-zoo)" in clash["error"]


@pytest.mark.process
def test_slow_plugin_import_is_announced_and_reported(tmp_path, cli):
    (tmp_path / "sleepy.py").write_text("import time\ntime.sleep(3.5)\n")
    result = run_zoo("plugins", env={"ZOO_PLUGINS_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert "Still importing plugin 'sleepy'" in result.stderr
    assert "sleepy took 3." in " ".join(result.stdout.split())


# -- runs directories and saving -----------------------------------------------------------
def test_a_runs_dir_that_cannot_be_made_is_one_line(tmp_path, cli, mnist_npz):
    (tmp_path / "file").write_text("x")
    result = cli("train", "mlp", "--limit", "100", "--epochs", "1", "--data-dir", mnist_npz,
                 "--runs-dir", tmp_path / "file" / "runs")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot create the runs folder" in errors[0]


def test_a_runs_dir_with_markup_in_its_name_trains(tmp_path, cli, mnist_npz):
    runs = tmp_path / "[/y] runs [draft]"
    result = cli("train", "mlp", "--limit", "200", "--epochs", "1", "--data-dir", mnist_npz, "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert "[/y] runs [draft]" in " ".join(result.stdout.split())


def test_a_save_that_fails_after_training_says_what_was_kept(zoo_registry, tmp_path, monkeypatch):
    import errno

    from zoo import files
    from zoo.errors import ZooError
    from zoo.jobs import make_jobs, prepare, run_job
    from zoo.types import Options

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "atomic_write_json", full_disk)  # history.json cannot be written
    monkeypatch.setattr("zoo.runs.atomic_write_json", full_disk)
    options = Options(epochs=1, limit=200)
    with pytest.raises(ZooError) as info:
        run_job(make_jobs([zoo_registry.architecture("mlp")], options)[0], prepare(zoo_registry, options), tmp_path)
    message = str(info.value)
    assert "trained, but saving it" in message and "No space left on device" in message
    assert "written: model.keras" in message and "not written: history, test_predictions.npz, run.json" in message
    assert (tmp_path / "model.keras").is_file()


def test_a_train_that_fails_says_so_once(tmp_path, cli, mnist_npz):
    """The failure of `zoo train`'s one job is the command's one error line, not that line twice."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "three_out.py").write_text(
        "import keras\nimport zoo\n"
        "SRC = zoo.Source('t', 'tests', 2026)\n"
        "@zoo.hookimpl\n"
        "def zoo_register_architectures(register):\n"
        "    register(zoo.Architecture(name='three-out', title='t', summary='s', teaches='t', source=SRC,\n"
        "        input_kind='flat', build=lambda shape, k: keras.Sequential([keras.Input(shape),\n"
        "        keras.layers.Dense(3)]), recipes=(zoo.Recipe('r', {'class_name': 'SGD'},\n"
        "        'categorical_crossentropy', 32, 1),)))\n")
    result = cli("--plugins-dir", tmp_path / "plugins", "train", "three-out", "--limit", "100",
                 "--data-dir", mnist_npz, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and result.stderr.count("Error:") == 1, result.stderr
    assert "output shape (None, 3)" in result.stderr


@pytest.mark.unit
def test_data_verify_without_a_name_verifies_every_dataset_found(cli, mnist_npz):
    result = cli("data", "--verify", "--json", "--data-dir", mnist_npz)
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["mnist"]["verified"] and all(rows["mnist"]["verified"].values())


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace('"test_accuracy": 0.', '"test_accuracy": NaN, "x": 0.', 1), "NaN is not JSON"),
    (lambda text: text.replace('"test_accuracy": 0.', '"test_accuracy": 5.0, "x": 0.', 1), "outside 0..1"),
    (lambda text: text.replace('"test_accuracy": 0.', '"test_accuracy": -1.0, "x": 0.', 1), "outside 0..1"),
    (lambda text: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_a_bad_run_record_is_skipped_with_one_line_and_the_rest_compare(tmp_path, cli, edit, message):
    """NaN, Infinity, an accuracy of 5 or -1, JSON nested 100,000 deep: each run.json refused on
    read, in one line, and the good runs beside it still compared; the --json stays strict JSON."""
    import shutil

    shipped = Path(__file__).resolve().parents[1] / "docs" / "results" / "article-three-seeds"
    for name in ("mlp-seed42", "keras1-cnn-seed42"):
        shutil.copytree(shipped / name, tmp_path / name)
    bad = tmp_path / "bad"
    shutil.copytree(shipped / "mlp-seed43", bad)
    (bad / "run.json").write_text(edit((bad / "run.json").read_text()))
    result = cli("compare", "--from-runs", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    assert "skipped" in result.stderr and message in result.stderr and "Traceback" not in result.stderr
    rows = json.loads(result.stdout)  # strict JSON: json.loads would take NaN, so look for it too
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    assert sorted(r["model"] for r in rows) == ["keras1-cnn", "mlp"] and all(r["n"] == 1 for r in rows)


@pytest.mark.unit
def test_a_huge_json_file_is_refused_unread(tmp_path):
    from zoo.files import read_json

    path = tmp_path / "run.json"
    with open(path, "wb") as f:  # sparse: 60 MB that takes no disk
        f.seek(60_000_000)
        f.write(b"}")
    with pytest.raises(zoo_errors().RunFileError, match="refused unread"):
        read_json(path, "run record")


@pytest.mark.unit
def test_json_output_is_strict(tmp_path):
    from zoo.files import json_text

    assert json.loads(json_text({"a": float("nan"), "b": [float("inf"), 1.5]})) == {"a": None, "b": [None, 1.5]}


def zoo_errors():
    from zoo import errors

    return errors


@pytest.mark.unit
def test_layer_names_do_not_depend_on_what_was_built_before(zoo_registry):
    """The card said conv2d_15 where the feature maps said conv2d: Keras numbers layers per
    process, so each model is now built in a fresh name scope."""
    from zoo.anatomy import architecture_stats, build_model

    first = [row.name for row in architecture_stats(zoo_registry.architecture("baseline-cnn")).layers]
    for name in ("keras-docs-cnn", "speedrun", "baseline-cnn"):
        build_model(zoo_registry.architecture(name))
    again = [row.name for row in architecture_stats(zoo_registry.architecture("baseline-cnn")).layers]
    assert again == first and first[0] == "conv2d"


# -- runs that learned nothing -------------------------------------------------------------
# A new user's first plugin: two residual blocks with BatchNorm (Keras's momentum 0.99), Adam
# 0.005 with warm-up and cosine. After --epochs 1 --limit 5000 (36 steps) it sat at 11% silently.
RES_CNN = '''import keras
import zoo

SRC = zoo.Source("a new user's residual CNN", "tests", 2026)


def block(x, filters):
    shortcut = keras.layers.Conv2D(filters, 1, padding="same")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)  # Keras's default momentum, 0.99
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(keras.layers.Add()([x, shortcut]))


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = block(inputs, 16)
    x = keras.layers.MaxPooling2D()(x)
    x = block(x, 32)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


@zoo.hookimpl
def zoo_register_architectures(register):
    register(zoo.Architecture(
        name="res-cnn", title="Residual CNN", summary="two residual blocks with BatchNorm", teaches="t",
        source=SRC, input_kind="image", build=build,
        recipes=(zoo.Recipe(name="adam", optimizer={"class_name": "Adam", "learning_rate": 0.005},
                            loss="sparse_categorical_crossentropy", batch_size=128, epochs=5, validation="split:0.1",
                            source=SRC, schedule={"kind": "warmup_cosine", "warmup": 0.1, "start": 0.1, "alpha": 0.0}),)))
'''


def test_a_batchnorm_run_at_chance_is_flagged_with_its_cause(tmp_path, cli, mnist_npz):
    import zoo

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "res_cnn.py").write_text(RES_CNN)
    env = {"ZOO_PLUGINS_DIR": str(tmp_path / "plugins")}
    result = cli("compare", "res-cnn", "mlp", "--epochs", "1", "--limit", "5000", "--data-dir", mnist_npz,
                 "--runs-dir", tmp_path / "runs", "--json", "--md", tmp_path / "table.md", env=env)
    assert result.exit_code == 0, result.stderr
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    assert rows["res-cnn"]["test_accuracy"] < 0.15
    assert [w.split(":")[0] for w in rows["mlp"]["warnings"]] == ["under-trained"]  # one epoch of 4,500: short
    [warning] = [w for w in rows["res-cnn"]["warnings"] if not w.startswith("under-trained")]
    assert warning.startswith("near chance: test accuracy")
    assert "BatchNorm moving statistics have not settled after 36 steps (momentum 0.99" in warning
    record = json.loads((Path(rows["res-cnn"]["run_dir"]) / "run.json").read_text())
    assert warning in record["warnings"]
    assert "⚠ res-cnn/adam: near chance" in (tmp_path / "table.md").read_text()
    loaded = zoo.load(Path(rows["res-cnn"]["run_dir"]).parent, progress=False)
    assert "near chance" in loaded._repr_html_() and "near chance" in " ".join(repr(loaded).split())

    checked = cli("check", "res-cnn", "--data-dir", mnist_npz, env=env)
    assert checked.exit_code == 0, checked.stdout  # a warning, not a failure: the contract holds
    said = " ".join(checked.stdout.split())
    assert "⚠ res-cnn: inference mode:" in said and "once BatchNorm's moving statistics are these images' own" in said


@pytest.mark.unit
def test_the_warnings_say_what_was_measured_and_the_likely_cause():
    from zoo.diagnosis import row_warnings, run_warnings

    assert run_warnings(0.98, 10, 0.99, 400, [0.99]) == []
    [bn] = run_warnings(0.1138, 10, 0.42, 39, [0.99])
    assert bn.startswith("near chance: test accuracy 11.4%") and "keeps 68% of their starting values" in bn
    [slow] = run_warnings(0.1, 10, 0.11, 39, [])
    assert "did not learn on its training images either" in slow and "Adadelta" in slow
    [gap] = run_warnings(0.5, 10, 0.9, 39, [0.99])
    assert gap.startswith("inference far below training: 50.0% on the test set against 90.0%")
    [axis] = run_warnings(0.5, 10, 0.9, 5000, [0.99])
    [lagging] = run_warnings(0.5, 10, 0.9, 423, [0.99])  # 1.4% of a variance of 1 still swamps a real 0.003
    assert "have not settled after 423 steps" in lagging
    assert "axis=-1" in axis  # settled long ago: not a matter of time
    records = [SimpleNamespace(warnings=[bn]), SimpleNamespace(warnings=[]), SimpleNamespace(warnings=[bn])]
    assert row_warnings(records) == [f"{bn} (in 2 of 3 seeds)"]


def test_a_second_resume_of_a_folder_in_use_is_refused_and_links_are_noted(tmp_path, cli, mnist_npz):
    """Two `zoo compare --resume D` at once: one deleted the other's live run folder and both
    trained into it. A run folder linked in from outside was followed silently."""
    import shutil

    from zoo.comparing import folder_lock

    first = cli("compare", "mlp", "--epochs", "1", "--limit", "300", "--data-dir", mnist_npz,
                "--runs-dir", tmp_path / "runs")
    assert first.exit_code == 0, first.stderr
    [folder] = (tmp_path / "runs").glob("compare-*")
    with folder_lock(folder):  # as a first `zoo compare --resume` still training would hold it
        again = cli("compare", "--resume", folder, "--data-dir", mnist_npz)
    assert again.exit_code == 2 and "Traceback" not in again.stderr
    assert "another zoo compare is training into this folder" in again.stderr

    [run] = [p for p in folder.iterdir() if (p / "run.json").is_file()]
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run, elsewhere)
    run.symlink_to(elsewhere, target_is_directory=True)
    loaded = cli("compare", "--from-runs", folder)
    assert loaded.exit_code == 0 and f"links to {elsewhere}" in " ".join(loaded.stderr.split())
    resumed = cli("compare", "--resume", folder, "--data-dir", mnist_npz)
    assert resumed.exit_code == 0, resumed.stderr
    assert "outside this comparison" in " ".join(resumed.stderr.split()) and (elsewhere / "run.json").is_file()


def test_wrong_types_in_a_plan_or_a_listing_are_one_line_or_ignored(tmp_path, cli, monkeypatch):
    from zoo import cache
    from zoo.errors import ZooError
    from zoo.plan import Plan
    from zoo.types import parse_seeds

    folder = tmp_path / "compare-x"
    folder.mkdir()
    (folder / "compare.json").write_text("[]")
    (folder / "plan.json").write_text(json.dumps({"patterns": "mlp"}))  # was read as m, l, p
    result = cli("compare", "--resume", folder)
    assert result.exit_code == 2 and "'patterns' should be a list of names" in result.stderr
    (folder / "plan.json").write_text(json.dumps({"patterns": ["mlp"], "seeds": 5}))
    assert Plan.read(folder).seed_list == [42, 43, 44, 45, 46]  # a count, as --seeds 5
    (folder / "plan.json").write_text(json.dumps({"patterns": ["mlp"], "seeds": ",".join(map(str, range(100_000)))}))
    result = cli("compare", "--resume", folder)
    assert result.exit_code == 2 and "100,000 seeds; give at most 1000" in result.stderr
    with pytest.raises(ZooError, match="at most 1000"):
        parse_seeds(list(range(1001)))

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    assert cli("list", "--json").exit_code == 0  # writes the listing
    listing = tmp_path / "cache" / cache.LISTING_FILE
    good = json.loads(listing.read_text())
    for damage in (lambda d: d["models"].__setitem__(0, 1), lambda d: d["models"][0]["row"].__setitem__("params", "x"),
                   lambda d: d["models"][0]["card"]["layers"].__setitem__(0, None),
                   lambda d: d.__setitem__("warnings", {"a": 1}),
                   lambda d: [m["card"].__setitem__("test_time_views", "5") for m in d["models"] if m["card"]]):
        data = json.loads(json.dumps(good))
        damage(data)
        listing.write_text(json.dumps(data))
        for args in (("list",), ("info", "mlp"), ("info", "speedrun")):
            shown = cli(*args)
            assert shown.exit_code == 0 and ("mlp" if args == ("list",) else args[-1]) in shown.stdout, shown.stderr


def test_output_paths_are_checked_first_and_a_pipe_is_no_image(tmp_path, cli, mnist_npz):
    import os

    (tmp_path / "afile").write_text("x")
    cases = [("new", "x", "--dir", tmp_path / "afile"), ("data", "mnist", "--data-dir", mnist_npz, "--show", "4",
             "--out", tmp_path / "afile" / "g.png"), ("data", "mnist", "--data-dir", mnist_npz, "--show", "4",
             "--out", tmp_path)]
    for args in cases:
        result = cli(*args)
        assert result.exit_code != 0 and result.stderr.count("Error:") == 1, result.stderr
        assert "afile" in result.stderr or "is a folder" in result.stderr
    # a training never starts when a file it will write cannot be written
    result = cli("compare", "mlp", "--data-dir", mnist_npz, "--runs-dir", tmp_path / "runs",
                 "--json-out", tmp_path / "afile" / "x.json")
    assert result.exit_code == 2 and "afile is not a folder" in result.stderr and not (tmp_path / "runs").exists()

    from zoo.imaging import preprocess

    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    with pytest.raises(Exception, match="a pipe"):  # it used to block forever, waiting for a writer
        preprocess(fifo)
    with pytest.raises(Exception, match="a device"):
        preprocess("/dev/zero")


@pytest.mark.unit
def test_a_training_error_is_one_plain_line_without_terminal_codes():
    from zoo.jobs import useful_line

    keras_said = ValueError("Exception encountered when calling Sequential.call().\n\n\x1b[1mInput 'mean' of "
                            "'FusedBatchNormV3' Op has type float32 that does not match type bfloat16\x1b[0m\n")
    assert useful_line(keras_said) == ("Input 'mean' of 'FusedBatchNormV3' Op has type float32 that does not "
                                       "match type bfloat16")
