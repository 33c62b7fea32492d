"""`zoo explain`: one digit's answer, each convolution's feature maps, and a saliency map."""

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, zoo_registry):
    from zoo.jobs import make_jobs, prepare, run_job
    from zoo.types import Options

    folder = tmp_path_factory.mktemp("cnn-run")
    options = Options(epochs=1, limit=1000)
    run_job(make_jobs([zoo_registry.architecture("baseline-cnn")], options)[0], prepare(zoo_registry, options),
            folder)
    return folder


def test_explain_a_test_digit_shows_top3_feature_maps_and_saliency(cli, cnn_run, mnist, tmp_path):
    result = cli("explain", cnn_run, "0", "--out", tmp_path / "seen", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["true_label"] == str(mnist.y_test[0])
    probabilities = [t["probability"] for t in answer["top3"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(answer["probabilities"]) == pytest.approx(1)
    assert answer["label"] == answer["top3"][0]["label"]
    # baseline-cnn: one 5×5 convolution of 32 filters over 28×28 → 24×24×32
    assert [m["shape"] for m in answer["feature_maps"]] == [[24, 24, 32]]
    names = sorted(Path(f).name for f in answer["files"])
    assert names[0].startswith("feature-maps-1-") and names[1:] == ["input.png", "saliency.png"]
    assert all((tmp_path / "seen" / n).stat().st_size > 1000 for n in names if n != "input.png")
    from PIL import Image

    assert Image.open(tmp_path / "seen" / "input.png").size == (28, 28)  # the digit as the model saw it
    shown = cli("explain", cnn_run, "0", "--out", tmp_path / "again")
    assert "test image 0:" in shown.stdout and f"true label: {mnist.y_test[0]}" in shown.stdout


def test_saliency_is_the_gradient_of_the_answer(zoo_registry, cnn_run, mnist):
    from zoo.explaining import explain
    from zoo.runs import open_run

    record, model = open_run(cnn_run)
    digit = mnist.x_test[1].reshape(28, 28)
    result = explain(model, record, digit)
    weights = result.saliency
    assert weights.shape == (28, 28) and weights.min() >= 0 and weights.max() == pytest.approx(1)
    # Nudge the pixel the map calls most important, and one it calls unimportant: the answer's
    # probability moves more for the first (a finite difference, against the gradient).
    from zoo.jobs import predict_probabilities

    def p(image):
        x = image[None, ..., None].astype("float32") / 255
        return predict_probabilities(model, x)[0][result.top3[0]["digit"]]

    top = np.unravel_index(np.argmax(weights), weights.shape)
    low = np.unravel_index(np.argmin(weights), weights.shape)
    moved = []
    for pixel in (top, low):
        nudged = digit.astype("float64").copy()
        nudged[pixel] = 255 - nudged[pixel]
        moved.append(abs(p(nudged) - p(digit.astype("float64"))))
    assert moved[0] > moved[1]


def test_explain_a_file_with_a_model_without_convolutions(cli, tmp_path, zoo_registry):
    from PIL import Image

    from zoo.jobs import make_jobs, prepare, run_job
    from zoo.types import Options

    options = Options(epochs=1, limit=500)
    run_job(make_jobs([zoo_registry.architecture("mlp")], options)[0], prepare(zoo_registry, options), tmp_path)
    image = np.full((60, 40), 255, dtype=np.uint8)
    image[10:50, 18:23] = 0  # a dark vertical bar: a "1"
    Image.fromarray(image).save(tmp_path / "one.png")
    result = cli("explain", tmp_path, tmp_path / "one.png", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["feature_maps"] == [] and "no convolution" in answer["notes"][0]
    assert sorted(Path(f).name for f in answer["files"]) == ["input.png", "saliency.png"]
    assert Path(answer["files"][0]).parent == tmp_path / "explain-one"


def test_explain_bad_input_is_one_line(cli, cnn_run, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    for args, message in (((cnn_run, "99999"), "test image 99999 does not exist: mnist has 10,000"),
                          ((cnn_run, tmp_path / "notes.png"), "notes.png"),
                          ((tmp_path, "3"), "not a run directory")):
        result = cli("explain", *args)
        assert result.exit_code != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.stderr
