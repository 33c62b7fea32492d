"""Any image size and class count: the 8×8 UCI digits, folder datasets (DIR/<label>/*.png), and
trained models re-tested on another dataset (a class's own handwriting)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# A model that cannot fit 8×8: two 5×5 convolutions and two poolings shrink it to nothing.
DEEP_POOL_PLUGIN = '''
import keras
import zoo

def build(input_shape, num_classes):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(4, 5), keras.layers.MaxPooling2D(2),
                             keras.layers.Conv2D(4, 5), keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])

@zoo.hookimpl
def zoo_register_architectures(register):
    register(zoo.Architecture(name="deep-pool", build=build, recipes=[zoo.Recipe(
        name="adam", optimizer={"class_name": "Adam", "learning_rate": 0.001},
        loss="sparse_categorical_crossentropy", batch_size=64, epochs=1)]))
'''


# A plugin's own dataset made by code (Dataset(loader=...)), at its own size and class count:
# the UCI digits 0, 1 and 2, padded to 12×12, named by word.
LOADER_PLUGIN = '''
import numpy as np
import zoo

def three_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits(n_class=3)
    images = np.pad(np.round(bunch.images * 255 / 16).astype("uint8"), ((0, 0), (2, 2), (2, 2)))
    labels = bunch.target.astype("int64")
    return {"x_train": images[:400], "y_train": labels[:400], "x_test": images[400:], "y_test": labels[400:]}

@zoo.hookimpl
def zoo_register_datasets(register):
    register(zoo.Dataset(name="three-digits", description="UCI digits 0-2 at 12x12", source="UCI",
                         class_names=("zero", "one", "two"), license="CC BY 4.0", image_shape=(12, 12, 1),
                         loader=three_digits, located="made by the three_digits plugin"))
'''


def canvas_png(digit: np.ndarray, path: Path, size: int = 280) -> Path:
    """An MNIST digit as the classroom canvas sends it: black ink on white, 280×280."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(255 - digit).resize((size, size), Image.BILINEAR).save(path)
    return path


@pytest.fixture(scope="module")
def five_classes(mnist, tmp_path_factory) -> Path:
    """A 5-class folder dataset of 32×32 images: MNIST's 0–4, padded, 40 of each, named c0…c4."""
    root = tmp_path_factory.mktemp("five")
    for c in range(5):
        for i in np.flatnonzero(mnist.y_train == c)[:40]:
            (root / f"c{c}").mkdir(exist_ok=True)
            Image.fromarray(np.pad(mnist.x_train[i], 2)).save(root / f"c{c}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def drawn(mnist, tmp_path_factory) -> Path:
    """Ten digits as a class would collect them, one of each, real handwriting from MNIST's test set."""
    root = tmp_path_factory.mktemp("drawn")
    for digit in range(10):
        index = int(np.flatnonzero(mnist.y_test == digit)[0])
        canvas_png(mnist.x_test[index], root / str(digit) / f"{index}.png")
    return root


# -- the 8×8 digits ------------------------------------------------------------------------------
@pytest.mark.unit
def test_digits_is_scikit_learns_bundled_8x8_set_with_a_fixed_stratified_split(zoo_registry):
    from zoo import data

    dataset = zoo_registry.dataset("digits")
    arrays = data.load(dataset)
    assert dataset.image_shape == (8, 8, 1) and arrays.x_train.shape == (1437, 8, 8)
    assert arrays.x_test.shape == (360, 8, 8) and arrays.x_train.dtype == np.uint8 and arrays.x_train.max() == 255
    assert np.bincount(arrays.y_test).min() >= 35  # every digit in the test fifth
    assert all(data.verify_checksums(arrays).values())  # the same split on every machine


def test_compare_on_digits_trains_on_8x8_and_explains_and_reports(cli, tmp_path):
    result = cli("compare", "mlp", "baseline-cnn", "--dataset", "digits", "--epochs", "3", "--runs-dir", tmp_path,
                 "--report", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"mlp", "baseline-cnn"} and all(r["mean"] > 0.2 for r in rows.values())
    assert all(r["published_accuracy"] is None for r in rows.values())  # MNIST's published figures do not apply
    run = next(tmp_path.glob("compare-*")) / "baseline-cnn"
    record = json.loads((run / "run.json").read_text())
    assert record["dataset"]["image_shape"] == [8, 8, 1] and record["params"] == 18_634
    assert "8×8×1 image" in record["data_preparation"]
    assert (run.parent / "report" / "index.html").is_file()
    assert (run.parent / "report" / "models" / "baseline-cnn.html").is_file()
    explained = cli("explain", run, "3", "--out", tmp_path / "explained")
    assert explained.exit_code == 0, explained.stderr
    assert (tmp_path / "explained" / "saliency.png").is_file()
    # a drawing is preprocessed to the model's own 8×8 before it is read
    canvas_png(np.pad(np.full((8, 3), 255, np.uint8), 10), tmp_path / "one.png")
    predicted = cli("predict", run, tmp_path / "one.png", "--json")
    assert predicted.exit_code == 0, predicted.stderr
    assert len(json.loads(predicted.stdout)[0]["probabilities"]) == 10


def test_a_model_that_cannot_fit_8x8_is_skipped_with_its_reason(cli, tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "deep_pool.py").write_text(DEEP_POOL_PLUGIN)
    result = cli("--plugins-dir", tmp_path / "plugins", "compare", "mlp", "deep-pool", "--dataset", "digits",
                 "--epochs", "1", "--runs-dir", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.stderr
    assert "deep-pool skipped: it does not fit digits's 8×8×1 images in 10 classes" in result.stderr
    assert [r["model"] for r in json.loads(result.stdout)] == ["mlp"]
    alone = cli("--plugins-dir", tmp_path / "plugins", "compare", "deep-pool", "--dataset", "digits",
                "--runs-dir", tmp_path / "runs")
    assert alone.exit_code != 0 and "no chosen model fits digits's 8×8×1 images" in alone.stderr


def test_a_plugins_dataset_made_by_its_loader_trains_at_its_own_size(cli, tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "three_digits.py").write_text(LOADER_PLUGIN)
    shown = cli("--plugins-dir", tmp_path / "plugins", "data", "three-digits", "--json")
    assert shown.exit_code == 0, shown.stderr
    found = json.loads(shown.stdout)
    assert found["source"] == "made by the three_digits plugin" and found["image_shape"] == [12, 12, 1]
    assert found["classes"] == ["zero", "one", "two"] and found["train"] == 400
    result = cli("--plugins-dir", tmp_path / "plugins", "compare", "mlp", "baseline-cnn", "--dataset", "three-digits",
                 "--epochs", "2", "--runs-dir", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["model"] for r in rows} == {"mlp", "baseline-cnn"} and all(r["mean"] > 0.5 for r in rows)
    record = json.loads((next((tmp_path / "runs").glob("compare-*")) / "mlp" / "run.json").read_text())
    assert record["dataset"]["image_shape"] == [12, 12, 1] and record["params"] == 144 * 32 + 32 + 33 * 3


# -- folder datasets -----------------------------------------------------------------------------
@pytest.mark.unit
def test_a_folder_dataset_takes_its_classes_size_and_split_from_the_folder(five_classes, zoo_registry):
    from zoo import data

    dataset = zoo_registry.dataset(f"folder:{five_classes}")
    assert dataset.class_names == ("c0", "c1", "c2", "c3", "c4") and dataset.image_shape == (32, 32, 1)
    arrays = data.load(dataset)
    assert len(arrays.x_test) == 40 and np.bincount(arrays.y_test).tolist() == [8] * 5  # a stratified fifth
    assert len(arrays.x_train) == 160 and arrays.x_train.shape[1:] == (32, 32)
    assert data.load(dataset).x_test.tobytes() == arrays.x_test.tobytes()  # fixed, not redrawn


@pytest.mark.unit
def test_folder_dataset_mistakes_are_one_line(tmp_path, zoo_registry):
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="no such folder"):
        zoo_registry.dataset(f"folder:{tmp_path / 'nowhere'}")
    (tmp_path / "flat").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(ZooError, match=r"no images in class folders \(expected .*/<label>/\*\.png"):
        zoo_registry.dataset(f"folder:{tmp_path / 'flat'}")
    (tmp_path / "bad" / "3").mkdir(parents=True)
    (tmp_path / "bad" / "3" / "x.png").write_text("not a png")
    with pytest.raises(ZooError, match="x.png: not an image Pillow can read"):
        zoo_registry.dataset(f"folder:{tmp_path / 'bad'}")
    with pytest.raises(ZooError, match=r"unknown dataset 'mnsit' \(did you mean: mnist\?\); a folder of images is folder:DIR"):
        zoo_registry.dataset("mnsit")


def test_a_five_class_32x32_folder_trains_reports_and_can_be_named(cli, five_classes, tmp_path):
    added = cli("data", "add", "five", five_classes)
    assert added.exit_code == 0, added.stderr
    assert "five" in added.stdout and "32×32" in added.stdout
    listed = cli("data", "--json")
    assert any(r["name"] == "five" for r in json.loads(listed.stdout))
    result = cli("compare", "mlp", "keras-docs-cnn", "--dataset", "five", "--epochs", "2", "--runs-dir", tmp_path,
                 "--report", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["model"] for r in rows} == {"mlp", "keras-docs-cnn"}
    run = next(tmp_path.glob("compare-*")) / "keras-docs-cnn"
    record = json.loads((run / "run.json").read_text())
    assert record["dataset"]["class_names"] == ["c0", "c1", "c2", "c3", "c4"]
    assert record["dataset"]["image_shape"] == [32, 32, 1] and record["split"]["test"] == 40
    assert (run.parent / "report" / "models" / "keras-docs-cnn.html").is_file()
    assert (run / "confusion.png").is_file()
    explained = cli("explain", run, "0", "--out", tmp_path / "explained")
    assert explained.exit_code == 0, explained.stderr
    assert cli("data", "remove", "five").exit_code == 0
    assert cli("data", "five").exit_code != 0


# -- re-testing on a class's own digits ----------------------------------------------------------
def test_evaluate_on_a_folder_tests_every_image_preprocessed_as_predict_does(cli, mnist_runs, drawn):
    from zoo.imaging import decode_grayscale, to_mnist

    result = cli("evaluate", mnist_runs / "baseline-cnn", "--dataset", f"folder:{drawn}", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["test_images"] == 10 and answer["tested_on"]["images"] == 10
    assert answer["tested_on"]["trained_on"] == "mnist" and answer["published_accuracy"] is None
    assert "centred by centre of mass in 28×28" in answer["tested_on"]["preprocessing"]
    # the same images through zoo predict give the same accuracy
    predicted = cli("predict", mnist_runs / "baseline-cnn", *sorted(drawn.glob("*/*.png")), "--json")
    truths = [int(Path(a["image"]).parent.name) for a in json.loads(predicted.stdout)]
    hits = [a["digit"] == t for a, t in zip(json.loads(predicted.stdout), truths)]
    assert answer["test_accuracy"] == pytest.approx(np.mean(hits))
    assert answer["test_accuracy"] >= 0.5  # real digits, read by a trained CNN
    # a folder holding a class the model does not know is refused by name
    (drawn.parent / "odd" / "x").mkdir(parents=True)
    Image.fromarray(to_mnist(decode_grayscale((drawn / "3").glob("*.png").__next__().read_bytes()))).save(
        drawn.parent / "odd" / "x" / "a.png")
    odd = cli("evaluate", mnist_runs / "mlp", "--dataset", f"folder:{drawn.parent / 'odd'}")
    assert odd.exit_code != 0 and "has classes the model mlp does not know: x" in odd.stderr


def test_compare_from_runs_retests_a_comparison_on_a_folder_with_its_statistics(cli, mnist_runs, drawn, tmp_path):
    result = cli("compare", "--from-runs", mnist_runs, "--dataset", f"folder:{drawn}", "--runs-dir", tmp_path,
                 "--json")
    assert result.exit_code == 0, result.stderr
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"mlp", "baseline-cnn"}
    other = [r for r in rows.values() if r["standing"] != "best"]
    assert other and other[0]["test"] == "McNemar (exact)" and other[0]["min_detectable_difference"] > 0
    assert rows["mlp"]["ci_high"] - rows["mlp"]["ci_low"] > 0.3  # ten digits: a wide interval, honestly
    retest = next(tmp_path.glob("retest-*"))
    record = json.loads((retest / "mlp" / "run.json").read_text())
    assert record["tested_on"]["trained_on"] == "mnist" and record["dataset"]["name"] == f"folder:{drawn}"
    assert record["split"]["test"] == 10 and (retest / "mlp" / "test_predictions.npz").is_file()
    assert "Re-tested: 2 run(s) on all 10 images" in result.stderr


def test_a_folder_too_small_to_split_is_one_line_before_training(cli, tmp_path):
    for label in ("a", "b"):
        (tmp_path / "tiny" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / "tiny" / label / f"{i}.png")
    result = cli("compare", "mlp", "--dataset", f"folder:{tmp_path / 'tiny'}", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "too few to hold out a 10% validation set" in result.stderr
    assert "Traceback" not in result.stderr and not list((tmp_path / "runs").glob("compare-*/mlp"))
