"""The pretrained models shipped with the zoo, and runs that say when they are too short.

A class starts with real numbers and no wait: `zoo pretrained` lists them, every verb that takes
a run takes their names, `zoo serve` with no arguments serves them, and a damaged file is one line.
A run far shorter than its recipe's design says so in run.json, the rows and the table.
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

SHIPPED = ("mlp", "baseline-cnn", "speedrun", "best")


@pytest.mark.unit
def test_the_pretrained_models_are_listed_with_what_a_registry_knows(cli):
    import zoo
    from zoo import pretrained_models

    listed = zoo.pretrained()
    assert [p["name"] for p in listed] == list(SHIPPED)
    total = sum(p["bytes"] for p in listed)
    assert total <= 10_000_000  # "at most about 10 MB together"
    for p in listed:
        folder = pretrained_models.FOLDER / p["name"]
        assert p["sha256"] == pretrained_models.sha256(folder / "model.keras")
        assert p["seed"] == 42 and p["train_images"] == 54_000 and p["validation_images"] == 6_000
        # each single run is close to the multi-seed mean it is read beside
        assert abs(p["test_accuracy"] - p["reference"]["mean"]) <= 0.01, p
        record = json.loads((folder / "run.json").read_text())
        assert record["status"] == "completed" and record["overrides"] == {} and record["split"]["limit"] is None
        assert record["budget"]["under_trained"] is False and record["warnings"] == []
        assert record["epochs_completed"] == record["hyperparameters"]["epochs"]  # the full recipe
    result = cli("pretrained", "--json")
    assert result.exit_code == 0 and [p["name"] for p in json.loads(result.stdout)] == list(SHIPPED)
    table = cli("pretrained").stdout
    assert "speedrun" in table and "multi-seed mean" in table and "MB together" in table


@pytest.mark.unit
def test_the_manifest_means_are_the_shipped_runs_means():
    """Each pretrained model's reference mean is what zoo.load computes from docs/results."""
    from pathlib import Path

    import zoo

    docs = Path(__file__).resolve().parent.parent
    for p in zoo.pretrained():
        ref = p["reference"]
        row = zoo.load(docs / ref["results"], models=p["model"], progress=False).rows[0]
        assert row["n"] == ref["n"] and row["mean"] == pytest.approx(ref["mean"], abs=1e-6)


@pytest.mark.unit
def test_a_damaged_pretrained_file_is_one_line_and_never_a_model(tmp_path, monkeypatch):
    import zoo
    from zoo import pretrained_models

    copy = tmp_path / "pretrained"
    shutil.copytree(pretrained_models.FOLDER, copy)
    monkeypatch.setattr(pretrained_models, "FOLDER", copy)
    model = copy / "speedrun" / "model.keras"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(zoo.RunFileError, match=r"pretrained speedrun: model.keras does not match its SHA-256"):
        zoo.pretrained("speedrun")
    with pytest.raises(zoo.RunFileError, match="does not match its SHA-256"):
        zoo.predict("speedrun", np.zeros((28, 28)))
    (copy / "mlp" / "run.json").unlink()
    with pytest.raises(zoo.RunFileError, match="pretrained mlp: run.json is missing"):
        zoo.evaluate("mlp")
    with pytest.raises(zoo.UnknownNameError, match="no pretrained model 'nope'"):
        zoo.pretrained("nope")


def test_every_verb_that_takes_a_run_takes_a_pretrained_name(cli, tmp_path, monkeypatch, mnist_npz):
    import zoo

    monkeypatch.chdir(tmp_path)
    answer = zoo.evaluate("speedrun", data_dir=mnist_npz)
    assert answer["test_accuracy"] == pytest.approx(answer["recorded_test_accuracy"], abs=1e-4)
    assert answer["test_accuracy"] >= 0.985
    paper = np.full((120, 90), 255.0)
    paper[15:105, 40:52] = 0.0
    assert zoo.predict("mlp", [paper])[0]["label"] == "1"
    # the CLI too; explain writes beside the user, never into the installed package
    result = cli("explain", "baseline-cnn", "3", "--data-dir", mnist_npz)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "explain-baseline-cnn-test3").is_dir()
    loaded = zoo.load(["speedrun", "mlp"], progress=False)
    assert [r["model"] for r in loaded.rows] == ["speedrun", "mlp"] and loaded.rows[1]["standing"] == "worse than the best"
    assert {r.model for r in zoo.load("pretrained", progress=False).records} == set(SHIPPED)
    written = zoo.report(["speedrun", "mlp"], tmp_path / "site", data_dir=mnist_npz, progress=False)
    assert written.index.is_file() and len(written.pages) == 2
    missing = cli("predict", "no-such-model", "x.png")
    assert missing.exit_code != 0 and "no pretrained model of that name" in missing.output
    assert "Traceback" not in missing.output


def test_zoo_serve_with_no_arguments_answers_with_the_pretrained_models(mnist):
    pytest.importorskip("starlette", reason="needs the serve extra")
    from PIL import Image
    from starlette.testclient import TestClient

    from zoo import api, classroom

    folders = api._run_folders(["pretrained"])  # what zoo.serve() with no runs serves
    app = TestClient(classroom.make_app(folders), base_url="http://localhost")
    assert [m["model"] for m in app.get("/api/models").json()["models"]] == list(SHIPPED)
    buf = io.BytesIO()
    Image.fromarray(255 - mnist.x_test[0]).resize((280, 280)).save(buf, format="PNG")
    reply = app.post("/api/predict", content=buf.getvalue(), headers={"Content-Type": "image/png"})
    assert reply.status_code == 200
    assert all(m["top3"][0][0] == int(mnist.y_test[0]) for m in reply.json()["models"])


# -- budgets -------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_the_budget_and_its_warning_say_why_a_short_run_is_weak():
    from zoo import diagnosis

    short = diagnosis.budget(22, 844, 1, 2_700, 2, 54_000)
    assert short["under_trained"] and short["share"] == pytest.approx(0.0261, abs=1e-4)
    text = diagnosis.under_trained_warning("speedrun", short, {"kind": "warmup_cosine"}, [0.99, 0.99])
    assert text.startswith("under-trained: 22 of the 844 steps its recipe was designed for (2.6%: 1 epoch of 2,700 "
                           "images against 2 of 54,000)")
    assert "schedule" in text and "80% of their starting values" in text
    assert diagnosis.under_trained_warning("mlp", diagnosis.budget(3375, 3375, 2, 54_000, 2, 54_000), None, []) is None
    assert not diagnosis.budget(300, 844, 1, 54_000, 2, 54_000)["under_trained"]  # a third or more is not flagged


@pytest.mark.unit
def test_a_batchnorm_warning_never_recommends_the_momentum_in_use():
    from zoo import diagnosis

    [at_099] = diagnosis.run_warnings(0.3, 10, 0.9, 43, [0.99])
    assert "use momentum=0.9" in at_099
    [at_09] = diagnosis.run_warnings(0.3, 10, 0.9, 43, [0.9])
    assert "use momentum" not in at_09 and "train longer" in at_09 and "1% of their starting values" in at_09


def test_a_short_run_is_flagged_under_trained_everywhere(cli, tmp_path, mnist_npz):
    """The issue's done-when: `zoo compare speedrun --epochs 1 --limit 3000 --json` carries the warning."""
    result = cli("compare", "speedrun", "--epochs", "1", "--limit", "3000", "--json", "--data-dir", mnist_npz,
                 "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["budget"]["steps"] == 22 and row["budget"]["designed_steps"] == 844
    [warning] = [w for w in row["warnings"] if w.startswith("under-trained")]
    assert "22 of the 844 steps" in warning
    record = json.loads(next(tmp_path.glob("compare-*/speedrun/run.json")).read_text())
    assert record["budget"]["under_trained"] and warning in record["warnings"]
    table = cli("compare", "--from-runs", next(tmp_path.glob("compare-*")), "--data-dir", mnist_npz).output
    assert "speedrun ⚠" in table and "under-trained: 22 of the 844 steps" in table
