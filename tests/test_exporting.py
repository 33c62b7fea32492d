"""zoo export: a model written as ONNX, LiteRT or a SavedModel, then run by that format's own
runtime on every test image and compared with Keras."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime", reason="needs the export extra: pip install -e '.[export]'")
pytest.importorskip("ai_edge_litert", reason="needs the export extra: pip install -e '.[export]'")


@pytest.mark.parametrize("model", ["mlp", "speedrun"])
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_a_pretrained_model_exports_and_agrees_with_keras_on_every_test_image(model, fmt, tmp_path, cli, mnist_npz):
    """The issue's done-when, in the default lane: ≥ 99.9% top-1 agreement on the 10,000 test images."""
    suffix = {"onnx": ".onnx", "litert": ".tflite"}[fmt]
    out = tmp_path / f"{model}{suffix}"
    result = cli("export", model, "--format", fmt, "-o", out, "--data-dir", mnist_npz, "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    [check] = answer["parity"]
    assert check["images"] == 10_000 and check["agreement"] >= 0.999 and check["max_probability_difference"] < 1e-3
    assert out.is_file() and out.stat().st_size > 10_000
    meta = json.loads((tmp_path / f"{model}{suffix}.json").read_text())
    assert meta["preprocessing"]["classes"] == [str(d) for d in range(10)]
    assert meta["preprocessing"]["input_shape"] == ([None, 784] if model == "mlp" else [None, 28, 28, 1])
    assert "centred by centre of mass" in meta["preprocessing"]["steps"]
    if fmt == "onnx":  # the preprocessing travels inside the file too
        import onnx

        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert props["zoo.model"] == model and json.loads(props["zoo.preprocessing"])["scale"].startswith("gray")


def test_the_class_drawings_are_checked_too_and_a_disagreeing_file_is_an_error(tmp_path, mnist, mnist_npz,
                                                                              monkeypatch):
    import zoo
    from zoo import exporting

    for label in ("3", "7"):
        (tmp_path / "drawn" / label).mkdir(parents=True)
        for i in np.flatnonzero(mnist.y_test == int(label))[:4]:
            Image.fromarray(255 - mnist.x_test[i]).save(tmp_path / "drawn" / label / f"{i}.png")
    answer = zoo.export("speedrun", "onnx", tmp_path / "s.onnx", dataset=f"folder:{tmp_path / 'drawn'}",
                        data_dir=mnist_npz)
    assert [c["images"] for c in answer["parity"]] == [10_000, 8] and all(c["agreement"] == 1 for c in answer["parity"])
    real = exporting.run_exported

    def wrong(fmt, path, x, batch=1000):  # a runtime that reads twelve images as other digits
        out = real(fmt, path, x, batch)
        out[5:17] = np.roll(out[5:17], 1, axis=1)
        return out

    monkeypatch.setattr(exporting, "run_exported", wrong)
    with pytest.raises(exporting.ExportError, match=r"99\.88% of the test set \(12 images differ: 5, 6, .*, 14, …\)"):
        zoo.export("speedrun", "onnx", tmp_path / "t.onnx", data_dir=mnist_npz)


@pytest.mark.unit
def test_a_wrong_name_or_format_is_one_line_before_anything_loads(cli, tmp_path):
    wrong = cli("export", "speedrun", "--format", "litert", "-o", tmp_path / "x.litert")
    assert wrong.exit_code == 2 and "a litert file's name ends in .tflite" in wrong.stderr
    unknown = cli("export", "speedrun", "--format", "tfjs")
    assert unknown.exit_code == 2 and "give one of onnx, litert, saved_model" in unknown.stderr
    assert "Traceback" not in wrong.stderr + unknown.stderr


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_every_built_in_model_exports(fmt, tmp_path, cli, mnist_npz):
    """Each model of the zoo (speedrun with its fused batch norm too), briefly trained."""
    runs = tmp_path / "runs"
    trained = cli("compare", "mlp", "keras1-cnn", "baseline-cnn", "keras-docs-cnn", "deep-bn-cnn", "deep-bn-cnn-fixed",
                  "best", "speedrun", "--epochs", "1", "--limit", "600", "--data-dir", mnist_npz, "--runs-dir", runs)
    fused = cli("compare", "speedrun", "--set", "batch_norm=fused", "--epochs", "1", "--limit", "600",
                "--data-dir", mnist_npz, "--runs-dir", runs)
    assert trained.exit_code == 0 and fused.exit_code == 0, trained.stderr + fused.stderr
    folders = [p for p in runs.glob("compare-*/*") if (p / "model.keras").is_file()]
    assert len(folders) == 9
    suffix = {"onnx": ".onnx", "litert": ".tflite"}[fmt]
    for folder in folders:
        result = cli("export", folder, "--format", fmt, "-o", tmp_path / f"{folder.name}{suffix}", "--data-dir",
                     mnist_npz, "--json")
        assert result.exit_code == 0, (folder.name, result.stderr)
        assert json.loads(result.stdout)["parity"][0]["agreement"] >= 0.999, folder.name


def test_a_network_registered_in_a_cell_exports(tmp_path, mnist_npz):
    import keras

    import zoo

    def build(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(8, 3, activation="relu"),
                                 keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(num_classes, activation="softmax")])

    zoo.register(zoo.Architecture(name="cell-net", build=build, recipes=zoo.Recipe(
        "adam", {"class_name": "Adam", "learning_rate": 0.01}, "categorical_crossentropy", batch_size=64, epochs=1)))
    run = zoo.train("cell-net", limit=1000, data_dir=mnist_npz, runs_dir=tmp_path / "runs", progress=False)
    answer = zoo.export(run, "onnx", tmp_path / "cell.onnx", data_dir=mnist_npz)
    assert answer["model"] == "cell-net" and answer["parity"][0]["agreement"] >= 0.999


@pytest.mark.browser
def test_a_report_runs_its_models_in_the_browser_with_no_server_and_agrees_with_keras(tmp_path, mnist, mnist_npz):
    """The page opens from disk (file://), loads ONNX Runtime Web from its own folder, and reads
    test digits as Keras does; drawing on it answers too."""
    from conftest import chromium_path

    import zoo
    from zoo.evaluation import as_probabilities

    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    if executable is None:
        pytest.skip("needs Chromium: apt-get install -y chromium")
    written = zoo.report(["mlp", "speedrun"], tmp_path / "site", in_browser=True, data_dir=mnist_npz, progress=False)
    page_file = tmp_path / "site" / "browser" / "draw.html"
    assert page_file.is_file() and 'href="browser/draw.html"' in written.index.read_text()
    assert "cdn" not in page_file.read_text().lower() and "http" not in page_file.read_text().split("<script")[1]
    images = mnist.x_test[:40]
    expected = {}
    for name in ("mlp", "speedrun"):
        run = zoo.pretrained(name)
        x = images.reshape(len(images), -1) if name == "mlp" else images[..., None]
        expected[name] = as_probabilities(np.asarray(run.model()(x.astype("float32") / 255)), run.record.output)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable)
        page = browser.new_page()
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.route("http*://**", lambda route: (problems.append(route.request.url), route.abort()))  # nothing leaves
        page.goto(page_file.as_uri())
        assert sorted(page.evaluate("window.zooReady")) == ["mlp", "speedrun"]
        for name in ("mlp", "speedrun"):
            got = np.array(page.evaluate("async ([name, digits]) => Promise.all(digits.map(d => window.zooRead(name, d)))",
                                         [name, (images.reshape(len(images), -1) / 255).tolist()]))
            assert (got.argmax(axis=1) == expected[name].argmax(axis=1)).all(), name
            assert np.abs(got - expected[name]).max() < 1e-4, name
        box = page.locator("#pad").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
        page.mouse.down()
        for t in np.linspace(0.15, 0.85, 15):
            page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * t)
        page.mouse.up()
        page.wait_for_selector('#pad[data-state="answered"]', timeout=30_000)
        assert page.locator('.card[data-model="speedrun"] .answer').inner_text() == "1"
        assert not problems, problems
        browser.close()
