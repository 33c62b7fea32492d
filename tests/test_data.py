"""The data module: sources, validation, splits, layouts, and the `zoo data` command."""

import gzip
import json
import os
import struct

import numpy as np
import pytest
from conftest import run_zoo

from zoo import data
from zoo.errors import ZooError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data dir, an empty Keras cache, no download: only what the test puts in place."""
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("ZOO_NO_DOWNLOAD", "1")
    data._cache.clear()
    yield tmp_path
    data._cache.clear()


def write_idx(path, array, compress):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if compress else (lambda p: open(p, "wb"))
    with opener(str(path) + (".gz" if compress else "")) as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_all_idx(folder, mnist, compress):
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in data.IDX_NAMES.items():
        write_idx(folder / stem, getattr(mnist, key), compress)


@pytest.mark.unit
def test_loads_npz_from_data_dir(isolated, mnist, zoo_registry):
    folder = isolated / "d"
    folder.mkdir()
    np.savez(folder / "mnist.npz", x_train=mnist.x_train, y_train=mnist.y_train,
             x_test=mnist.x_test, y_test=mnist.y_test)
    arrays = data.load(zoo_registry.dataset("mnist"), str(folder))
    assert arrays.source == f"data dir: {folder / 'mnist.npz'}"
    assert all(data.verify(arrays).values())


@pytest.mark.unit
@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_loads_idx_from_data_dir(isolated, mnist, zoo_registry, compress):
    write_all_idx(isolated / "d" / "mnist", mnist, compress)
    arrays = data.load(zoo_registry.dataset("mnist"), str(isolated / "d"))
    assert "IDX" in arrays.source
    assert np.bincount(arrays.y_train).tolist() == TRAIN_COUNTS
    assert all(data.verify(arrays).values())


@pytest.mark.unit
def test_keras_cache_is_used(isolated, mnist, zoo_registry):
    cache = isolated / "keras-home" / "datasets"
    cache.mkdir(parents=True)
    np.savez(cache / "mnist.npz", x_train=mnist.x_train, y_train=mnist.y_train,
             x_test=mnist.x_test, y_test=mnist.y_test)
    assert data.load(zoo_registry.dataset("mnist")).source.startswith("Keras cache")


@pytest.mark.unit
def test_missing_source_names_every_place(isolated, zoo_registry):
    (isolated / "empty").mkdir()
    with pytest.raises(ZooError) as info:
        data.load(zoo_registry.dataset("mnist"), str(isolated / "empty"))
    message = str(info.value)
    assert "empty" in message and "keras-home" in message and "ZOO_DATA_DIR" in message


@pytest.mark.unit
def test_a_data_dir_that_does_not_exist_is_reported_not_skipped(isolated, zoo_registry, tmp_path):
    """A typo in --data-dir must not fall through to a download attempt."""
    with pytest.raises(ZooError, match="does not exist"):
        data.load(zoo_registry.dataset("mnist"), str(isolated / "no-such-folder"))
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ZooError, match="is not a folder"):
        data.load(zoo_registry.dataset("mnist"), str(tmp_path / "a-file"))


@pytest.mark.process
def test_missing_source_cli_is_one_line_exit_2(tmp_path):
    env = {"ZOO_DATA_DIR": str(tmp_path), "KERAS_HOME": str(tmp_path / "kh"), "ZOO_NO_DOWNLOAD": "1"}
    result = run_zoo("data", "mnist", env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "mnist not found" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.unit
def test_truncated_npz_is_a_clean_error(isolated, mnist, zoo_registry):
    folder = isolated / "d"
    folder.mkdir()
    np.savez(folder / "whole.npz", x_train=mnist.x_train, y_train=mnist.y_train,
             x_test=mnist.x_test, y_test=mnist.y_test)
    whole = (folder / "whole.npz").read_bytes()
    (folder / "mnist.npz").write_bytes(whole[: len(whole) // 3])
    with pytest.raises(ZooError, match="mnist.npz: corrupt or truncated"):
        data.load(zoo_registry.dataset("mnist"), str(folder))


@pytest.mark.process
def test_truncated_idx_cli_is_one_line_exit_2(tmp_path, mnist):
    folder = tmp_path / "d" / "mnist"
    write_all_idx(folder, mnist, compress=False)
    images = folder / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:100_000])
    env = {"ZOO_DATA_DIR": str(tmp_path / "d"), "ZOO_NO_DOWNLOAD": "1"}
    result = run_zoo("data", "mnist", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "t10k-images-idx3-ubyte" in lines[0] and "truncated" in lines[0]


@pytest.mark.unit
def test_wrong_shape_is_rejected(isolated, zoo_registry):
    folder = isolated / "d"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.savez(folder / "mnist.npz", x_train=rng.integers(0, 255, (100, 32, 32), dtype=np.uint8),
             y_train=np.zeros(100, np.uint8), x_test=np.zeros((10, 32, 32), np.uint8), y_test=np.zeros(10, np.uint8))
    with pytest.raises(ZooError, match=r"x_train has shape \(100, 32, 32\)"):
        data.load(zoo_registry.dataset("mnist"), str(folder))


@pytest.mark.unit
def test_split_is_stratified_disjoint_deterministic(mnist):
    split = data.make_split(mnist.y_train, "val", seed=3)
    again = data.make_split(mnist.y_train, "val", seed=3)
    assert np.array_equal(split.train, again.train) and np.array_equal(split.val, again.val)
    assert len(np.intersect1d(split.train, split.val)) == 0
    assert len(split.train) + len(split.val) == 60_000 and len(split.val) == 6_000
    val_share = np.bincount(mnist.y_train[split.val], minlength=10) / np.array(TRAIN_COUNTS)
    assert np.allclose(val_share, 0.1, atol=0.002)
    other = data.make_split(mnist.y_train, "val", seed=4)
    assert not np.array_equal(split.val, other.val)


def test_limit_is_stratified_and_test_validation_holds_nothing_out(mnist):
    split = data.make_split(mnist.y_train, "test", seed=0, limit=2000)
    assert split.val is None and len(split.train) == 2000
    counts = np.bincount(mnist.y_train[split.train], minlength=10)
    assert np.all(np.abs(counts - np.array(TRAIN_COUNTS) / 30) <= 1)
    with pytest.raises(ZooError):
        data.make_split(mnist.y_train, "train")


@pytest.mark.unit
@pytest.mark.parametrize("name, shape, labels", [
    ("mlp", (784,), "onehot"),
    ("baseline-cnn", (28, 28, 1), "onehot"),
    ("keras-docs-cnn", (28, 28, 1), "integer"),
])
def test_each_model_gets_its_layout_and_encoding(mnist, zoo_registry, name, shape, labels):
    arch = zoo_registry.architecture(name)
    recipe = arch.recipe()
    x = data.prepare_x(mnist.x_train[:5], arch.input_kind)
    y = data.prepare_y(mnist.y_train[:5], recipe.labels, 10)
    assert recipe.labels == labels
    assert x.shape == (5, *shape) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == ((5, 10) if labels == "onehot" else (5,))
    assert data.prepare_x(mnist.x_train[:2], "image", "channels_first").shape == (2, 1, 28, 28)


@pytest.mark.unit
def test_fast_scaling_gives_the_articles_exact_values(mnist):
    """prepare_x scales in one pass; the values must be bit-for-bit the articles' x.astype('float32') / 255."""
    raw = mnist.x_train[:3000]
    articles = raw.astype("float32") / 255.0
    ours = data.prepare_x(raw, "flat")
    assert ours.dtype == np.float32
    assert np.array_equal(ours.view(np.int32), articles.reshape(len(raw), -1).view(np.int32))
    standardized = data.prepare_x(raw, "image", standardize=(0.1307, 0.3081))
    assert np.array_equal(standardized[..., 0], (articles - 0.1307) / 0.3081)


@pytest.mark.unit
def test_standardize_uses_the_given_statistics(mnist):
    x = data.prepare_x(mnist.x_train[:2000], "image", standardize=(0.1307, 0.3081))
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05


def test_zoo_data_json(cli):
    result = cli("data", "mnist", "--json", "--verify")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["train"], info["test"]) == (60_000, 10_000)
    assert info["train_class_counts"] == TRAIN_COUNTS
    assert (info["pixel_mean"], info["pixel_std"]) == (0.1307, 0.3081)
    assert all(info["verified"].values())


@pytest.mark.unit
def test_zoo_data_show_writes_a_png(cli, tmp_path):
    out = tmp_path / "grid.png"
    result = cli("data", "mnist", "--show", "12", "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["grid"] == str(out)
    from PIL import Image

    assert Image.open(out).size[0] > 200


@pytest.mark.unit
def test_fashion_mnist_from_debian(isolated, zoo_registry):
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        if os.environ.get("CI"):
            pytest.fail(".ci/run installs dataset-fashion-mnist; it is missing")
        pytest.skip("apt-get install dataset-fashion-mnist")
    arrays = data.load(zoo_registry.dataset("fashion-mnist"))
    assert arrays.source.startswith("system: /usr/share/datasets/fashion-mnist")
    assert np.bincount(arrays.y_train).tolist() == [6000] * 10
    assert all(data.verify(arrays).values())


@pytest.mark.unit
def test_zoo_data_without_a_name_lists_datasets_and_where_they_are(cli, mnist):
    result = cli("data", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) >= {"mnist", "fashion-mnist"}
    assert rows["mnist"]["found"].endswith("mnist.npz") and rows["mnist"]["classes"] == 10


@pytest.mark.unit
def test_a_comparisons_arrays_are_prepared_once_and_cannot_be_changed_by_a_run(zoo_registry):
    """Ten seeds (or several models) share one preparation of the split: the same arrays each
    time, images shared across label encodings, every array read-only."""
    from zoo.jobs import prepare
    from zoo.types import Options

    prepared = prepare(zoo_registry, Options(limit=1000))
    first = prepared.parts("image", "integer")
    again = prepared.parts("image", "integer")
    one_hot = prepared.parts("image", "onehot")
    flat = prepared.parts("flat", "integer")
    assert all(a is b for pair, twin in zip(first, again) for a, b in zip(pair, twin))
    assert all(x is y for (x, _), (y, _) in zip(first, one_hot))        # the images once, whatever the labels
    assert all(y is z for (_, y), (_, z) in zip(first, flat))           # the labels once, whatever the layout
    (x_train, y_train), (x_val, _), (x_test, _) = first
    assert x_train.shape == (900, 28, 28, 1) and x_val.shape == (100, 28, 28, 1) and x_test.shape[0] == 10_000
    assert one_hot[0][1].shape == (900, 10) and flat[0][0].shape == (900, 784)
    np.testing.assert_array_equal(x_train, data.prepare_x(prepared.arrays.x_train[prepared.split.train], "image"))
    for pair in (*first, *one_hot, *flat):
        for array in pair:
            with pytest.raises(ValueError, match="read-only"):
                array[:1] = 0
    # a Dask worker is sent the split, not the prepared arrays (it prepares its own)
    import pickle

    sent = pickle.loads(pickle.dumps(prepared))
    assert sent.parts("image", "integer")[0][0] is not x_train
    fresh = prepare(zoo_registry, Options(limit=1000))
    assert len(pickle.dumps(prepared)) == len(pickle.dumps(fresh))  # the raw split only, as before any run
