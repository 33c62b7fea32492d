"""`zoo train`, `zoo compare`, `zoo evaluate`, `zoo predict` on small slices of real MNIST."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_zoo
from PIL import Image

RUN_FILES = {"model.keras", "run.json", "history.json", "history.csv", "curves.png", "confusion.png", "mistakes.png"}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """baseline-cnn, one epoch on 2,000 images, through the real CLI."""
    runs = tmp_path_factory.mktemp("runs")
    from typer.testing import CliRunner

    from zoo.cli import app

    result = CliRunner().invoke(app, ["train", "baseline-cnn", "--epochs", "1", "--limit", "2000",
                                      "--runs-dir", str(runs), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    return Path(record["run_dir"]), record


def test_train_writes_every_file_and_learns(trained_run):
    run_dir, record = trained_run
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    assert record["status"] == "completed"
    assert record["test_accuracy"] > 0.7  # chance is 0.1
    assert record["params"] == 592_074 and record["macs"] == 1_051_904
    assert record["execution"]["tf_data_autotune"] is False  # the TensorFlow input pipeline ran untuned
    assert record["split"] == {"validate_on": "val", "train": 1800, "validation": 200, "test": 10_000,
                               "limit": 2000, "seed": 42, "article_validated_on": "test", "varies_with_seed": False}
    assert record["overrides"] == {"epochs": {"recipe": 10, "used": 1}}
    assert record["hyperparameters"]["optimizer"]["class_name"] == "Adam"
    assert len(record["per_class_accuracy"]) == 10
    assert np.array(record["confusion_matrix"]).sum() == 10_000
    assert record["environment"]["backend"] == "tensorflow" and record["environment"]["keras"].startswith("3")
    history = json.loads((run_dir / "history.json").read_text())
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert (run_dir / "history.csv").read_text().startswith("epoch,")


def test_evaluate_reproduces_the_recorded_accuracy(cli, trained_run):
    run_dir, record = trained_run
    result = cli("evaluate", run_dir, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["test_accuracy"] == pytest.approx(record["test_accuracy"], abs=1e-4)


def photo_of_digit(image28: np.ndarray, path: Path, rgb=False):
    """A test digit as a person would photograph it: dark ink, light paper, large, off-centre."""
    digit = Image.fromarray(255 - image28).resize((150, 150), Image.BILINEAR)
    canvas = Image.new("L", (420, 320), 250)
    canvas.paste(digit, (240, 20))
    (canvas.convert("RGB") if rgb else canvas).save(path)
    return path


def test_predict_reads_a_photo_like_digit(cli, trained_run, mnist, tmp_path):
    run_dir, _ = trained_run
    from zoo.runs import load_model

    model = load_model(run_dir)
    direct = model.predict(mnist.x_test[:50, ..., None] / 255.0, verbose=0).argmax(axis=1)
    index = next(i for i in range(50) if direct[i] == mnist.y_test[i] and mnist.y_test[i] != 1)
    gray = photo_of_digit(mnist.x_test[index], tmp_path / "digit.png")
    rgb = photo_of_digit(mnist.x_test[index], tmp_path / "digit.jpg", rgb=True)
    result = cli("predict", run_dir, gray, rgb, "--json", "--save-preprocessed", tmp_path / "seen")
    assert result.exit_code == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["image"] for a in answers] == [str(gray), str(rgb)]
    for answer in answers:
        assert answer["digit"] == mnist.y_test[index]
        assert len(answer["probabilities"]) == 10 and sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)
    seen = np.asarray(Image.open(tmp_path / "seen" / "digit.png"))
    assert seen.shape == (28, 28) and seen[0].max() == 0  # white on black, border empty


def test_predict_bad_images_fail_one_line_each(cli, trained_run, tmp_path, mnist):
    run_dir, _ = trained_run
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("L", (60, 60), 255).save(tmp_path / "blank.png")
    good = photo_of_digit(mnist.x_test[0], tmp_path / "good.png")
    result = cli("predict", run_dir, tmp_path / "notes.png", good, tmp_path / "blank.png")
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and "notes.png" in errors[0] and "blank" in errors[1]
    assert "good.png" in result.stdout  # the other image is still answered


def test_compare_two_models(cli, tmp_path):
    out = tmp_path / "out.json"
    result = cli("compare", "mlp", "baseline-cnn", "--epochs", "1", "--limit", "2000",
                 "--runs-dir", tmp_path / "runs", "--json-out", out, "--csv", tmp_path / "out.csv",
                 "--md", tmp_path / "out.md")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["mlp", "baseline-cnn"]
    for row in rows:
        for key in ("test_accuracy", "test_loss", "params", "macs", "seconds_per_epoch", "training_seconds",
                    "best_val_accuracy", "per_class_accuracy", "run_dir"):
            assert row[key] is not None, key
        assert row["test_accuracy"] > 0.5
        assert (row["precision"], row["backend"]) == ("float32", "tensorflow")
        assert row["training_tflop"] == pytest.approx(6 * row["macs"] * 1800 / 1e12, rel=1e-3)  # 1,800 images, 1 epoch
        assert RUN_FILES <= {p.name for p in Path(row["run_dir"]).iterdir()}
    assert rows[1]["published_accuracy"] == 0.9911
    assert rows[1]["vs_published"] is None and rows[1]["verdict"] == "not comparable"
    assert rows[1]["verdict_note"].startswith("not comparable: changed epochs")
    compare_dir = Path(rows[0]["run_dir"]).parent
    assert (compare_dir / "compare.png").is_file() and (compare_dir / "compare.json").is_file()
    assert (compare_dir / "pareto.png").is_file()
    # One run each: exact McNemar on the two runs' saved per-image results, as statsmodels computes it.
    from statsmodels.stats.contingency_tables import mcnemar

    best, other = sorted(rows, key=lambda r: -r["test_accuracy"])
    a, b = (np.load(Path(r["run_dir"]) / "test_predictions.npz")["correct"] for r in (best, other))
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert other["test"] == "McNemar (exact)" and best["standing"] == "best"
    assert other["p_value_vs_best"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert best["n"] == 1 and best["ci_low"] < best["test_accuracy"] < best["ci_high"]
    text = " ".join(result.stdout.split())
    assert "baseline-cnn" in text and "592,074" in text and "per class" in text
    assert (tmp_path / "out.csv").read_text().startswith("model,")
    assert "| mlp ⚠ |" in (tmp_path / "out.md").read_text()  # one epoch of 1,800 images: flagged under-trained

    again = cli("compare", "--from-runs", compare_dir, "--json")  # --json: the rows on stdout, nothing else
    assert again.exit_code == 0, again.stderr
    assert "like-for-like" not in again.stderr
    assert json.loads(again.stdout)[0]["test_accuracy"] == rows[0]["test_accuracy"]


def test_interrupt_inside_training_keeps_a_loadable_run(mnist, zoo_registry, tmp_path):
    import keras

    from zoo.errors import Interrupted
    from zoo.jobs import make_jobs, prepare, run_job
    from zoo.runs import load_model, read_record
    from zoo.types import Options

    class StopAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    options = Options(epochs=5, limit=1000)
    job = make_jobs([zoo_registry.architecture("mlp")], options)[0]
    with pytest.raises(Interrupted):
        run_job(job, prepare(zoo_registry, options), tmp_path, extra_callbacks=[StopAfterTwoEpochs()])
    record = read_record(tmp_path)
    assert record.status == "interrupted" and record.epochs_completed == 2
    assert len(json.loads((tmp_path / "history.json").read_text())["loss"]) == 2
    assert load_model(tmp_path).count_params() == 25_450
    assert not list(tmp_path.glob(".*"))  # no half-written temporary files


BROKEN = '''
from zoo import hookimpl
from zoo.registry import Architecture, Recipe, Source

SRC = Source("broken", "tests", 2026)

def build(input_shape, num_classes):
    raise ValueError("this model cannot be built")

@hookimpl
def zoo_register_architectures(register):
    register(Architecture(name="broken-net", title="Broken", summary="", teaches="", source=SRC,
        input_kind="image", build=build, recipes=(Recipe(name="r", optimizer={"class_name": "SGD"},
        loss="categorical_crossentropy", batch_size=32, epochs=1, validation="none", source=SRC),)))
'''


@pytest.mark.process
def test_broken_model_fails_alone_in_a_comparison(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text(BROKEN)
    result = run_zoo("compare", "broken-net", "mlp", "--epochs", "1", "--limit", "500",
                     "--runs-dir", tmp_path / "runs", "--json-out", tmp_path / "rows.json",
                     env={"ZOO_PLUGINS_DIR": str(plugins)})
    assert result.returncode == 1
    assert "cannot be built" in result.stderr and "Traceback" not in result.stderr
    rows = {r["model"]: r for r in json.loads((tmp_path / "rows.json").read_text())}
    assert rows["broken-net"]["status"] == "failed"
    assert rows["mlp"]["status"] == "completed" and rows["mlp"]["test_accuracy"] > 0.3


@pytest.mark.process
def test_sigterm_stops_training_as_ctrl_c_does(tmp_path):
    """docker stop or a scheduler's time limit sends SIGTERM: the run is saved, not lost."""
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "train", "mlp", "--epochs", "300", "--limit", "6000",
                             "--runs-dir", str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs.glob("*")):
        time.sleep(0.2)
    time.sleep(4)  # inside training
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, stderr  # the signal's own exit status, as shells report it
    assert "interrupted after" in stderr and "Traceback" not in stderr
    saved = json.loads(next(runs.glob("*/run.json")).read_text())
    assert saved["status"] == "interrupted" and 0 < saved["epochs_completed"] < 300


@pytest.mark.process
def test_ctrl_c_during_a_comparison_keeps_finished_models(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo", "compare", "mlp", "keras-docs-cnn", "--epochs", "5", "--limit", "6000",
         "--seeds", "2", "--runs-dir", str(runs), "--json-out", str(tmp_path / "rows.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs.glob("compare-*/keras-docs-cnn-seed42")):
        time.sleep(0.2)
    time.sleep(4)  # well inside keras-docs-cnn's training
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert "--resume" in stderr  # the message says how to train the rest
    rows = {r["model"]: r for r in json.loads((tmp_path / "rows.json").read_text())}
    # both finished seeds of mlp are kept, with their statistics
    assert rows["mlp"]["status"] == "completed" and rows["mlp"]["n"] == 2 and rows["mlp"]["test_accuracy"] > 0.5
    assert rows["mlp"]["seeds"] == [42, 43] and rows["mlp"]["ci_low"] <= rows["mlp"]["mean"] <= rows["mlp"]["ci_high"]
    assert rows["keras-docs-cnn"]["status"] == "interrupted"
    assert "mlp" in stdout  # the table still shows the finished model
    compare_dir = next(runs.glob("compare-*"))
    assert (compare_dir / "mlp-seed42" / "model.keras").is_file() and (compare_dir / "mlp-seed43" / "model.keras").is_file()
    stopped = json.loads((compare_dir / "keras-docs-cnn-seed42" / "run.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["model_weights"].startswith(("end of epoch", "mid-epoch 1"))


def test_resume_trains_only_what_a_stopped_comparison_did_not_finish(cli, tmp_path):
    command = ["compare", "mlp", "--seeds", "3", "--epochs", "1", "--limit", "1500"]
    first = cli(*command, "--runs-dir", tmp_path / "runs")
    assert first.exit_code == 0, first.stderr
    folder = next((tmp_path / "runs").glob("compare-*"))
    kept = (folder / "mlp-seed42" / "run.json").read_bytes()
    # what a Ctrl-C leaves: one run stopped mid-way (its status says so); what kill -9 leaves: a folder, no run.json
    stopped = folder / "mlp-seed43" / "run.json"
    stopped.write_text(json.dumps({**json.loads(stopped.read_text()), "status": "interrupted"}))
    (folder / "mlp-seed44" / "run.json").unlink()

    resumed = cli(*command, "--resume", folder, "--json-out", tmp_path / "rows.json")
    assert resumed.exit_code == 0, resumed.stderr
    assert "1 of 3 runs finished there and are kept; 2 to train" in resumed.stderr
    assert "mlp-seed43 was stopped mid-way: it starts again" in resumed.stderr
    assert "mlp-seed44 was stopped mid-way: it starts again" in resumed.stderr  # not a mlp-seed44-2 beside it
    assert (folder / "mlp-seed42" / "run.json").read_bytes() == kept  # not trained again
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["mlp-seed42", "mlp-seed43", "mlp-seed44"]
    saved = json.loads((folder / "compare.json").read_text())
    assert [(r["model"], r["seed"], r["status"]) for r in saved] == [
        ("mlp", 42, "completed"), ("mlp", 43, "completed"), ("mlp", 44, "completed")]
    [row] = json.loads((tmp_path / "rows.json").read_text())
    assert row["n"] == 3 and row["test_accuracy"] > 0.3

    again = cli("compare", "--resume", folder)  # the folder's plan.json fills in the rest of the command
    assert again.exit_code == 0 and "3 of 3 runs finished there and are kept; 0 to train" in again.stderr
    assert "plan.json: mlp --seeds 42,43,44 --epochs 1 --limit 1500" in again.stderr.replace("\n", "")
    other_options = cli("compare", "--resume", folder, "--epochs", "2")
    assert other_options.exit_code == 2
    assert "mlp/article seed 42 ran there with other options (epochs 1 there, 2 here)" in other_options.stderr
    fewer = cli("compare", "mlp", "--seeds", "2", "--epochs", "1", "--limit", "1500", "--resume", folder)
    assert fewer.exit_code == 2 and "holds 1 finished run(s) that are no job of this command" in fewer.stderr
    (folder / "plan.json").unlink()  # as a folder of an older zoo
    older = cli("compare", "--resume", folder)
    assert older.exit_code == 2 and "has no plan.json (an older zoo made it)" in older.stderr
    for args, message in ((["--resume", tmp_path], "not a comparison's folder"),
                          (["--resume", tmp_path / "nowhere"], "no such folder"),
                          (["--resume", folder, "--from-runs", folder], "give one of them")):
        wrong = cli(*command, *args)
        assert wrong.exit_code == 2 and message in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.slow  # optional backends; 13 s each on the project's 2-core AVX2 CPU
# jax: 57 steps an epoch (1,800 images, batch 32), at least 8 calls: 7 per call; Keras on torch refuses more than 1
@pytest.mark.parametrize("backend, steps_per_call", [("jax", 7), ("torch", 1)])
def test_other_backends_train_and_are_recorded(mnist_npz, tmp_path, backend, steps_per_call):
    """`--backend jax|torch` (optional extras) run the same trainer and say so in run.json."""
    pytest.importorskip(backend)
    done = run_zoo("--backend", backend, "train", "mlp", "--epochs", "1", "--limit", "2000", "--data-dir", mnist_npz,
                   "--runs-dir", tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["environment"]["backend"] == backend and record["environment"][backend]
    assert record["execution"]["steps_per_execution"] == steps_per_call
    assert record["test_accuracy"] > 0.7
    assert "oneDNN" not in done.stderr  # TensorFlow, imported for tf.data, stays quiet


@pytest.mark.process
def test_prompt_exit_runs_exit_handlers_flushes_and_keeps_the_status(tmp_path):
    """Once TensorFlow is loaded the console script skips the interpreter's teardown (1–3 s);
    exit handlers, buffered output and the exit status must survive that."""
    marker = tmp_path / "handler-ran"
    script = ("import atexit, sys, keras\n"
              "from zoo.keras_glue import exit_promptly\n"
              f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
              "sys.stdout.write('buffered, not yet flushed')\n"
              "exit_promptly(int(sys.argv[1]) if sys.argv[1].isdigit() else sys.argv[1])\n")
    done = subprocess.run([sys.executable, "-c", script, "3"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert done.stdout == "buffered, not yet flushed"
    assert marker.read_text() == "yes"
    done = subprocess.run([sys.executable, "-c", script, "no data here"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip().endswith("no data here")


def test_compare_several_seeds_gives_intervals_and_tests(cli, tmp_path):
    out = tmp_path / "out.json"
    result = cli("compare", "mlp", "speedrun", "--seeds", "3", "--epochs", "1", "--limit", "2000",
                 "--runs-dir", tmp_path / "runs", "--json-out", out, "--csv", tmp_path / "out.csv")
    assert result.exit_code == 0, result.stderr
    rows = {r["model"]: r for r in json.loads(out.read_text())}
    for row in rows.values():
        assert row["n"] == 3 and row["seeds"] == [42, 43, 44] and len(row["accuracies"]) == 3
        assert row["mean"] == pytest.approx(np.mean(row["accuracies"]))
        assert row["std"] == pytest.approx(np.std(row["accuracies"], ddof=1))
        assert row["ci_low"] <= row["mean"] <= row["ci_high"] and len(row["run_dirs"]) == 3
    best, other = sorted(rows.values(), key=lambda r: -r["mean"])
    assert best["standing"] == "best" and other["test"] == "Welch t-test"  # two models: their seeds pair nothing
    from scipy import stats

    welch = stats.ttest_ind(best["accuracies"], other["accuracies"], equal_var=False).pvalue
    assert other["p_value_vs_best"] == pytest.approx(welch)
    assert "95% interval" in result.stdout and "±" in result.stdout
    assert '"[42, 43, 44]"' in (tmp_path / "out.csv").read_text()  # lists as JSON text in the CSV
    again = cli("compare", "--from-runs", Path(best["run_dirs"][0]).parent, "--json-out=" + str(tmp_path / "again.json"))
    assert again.exit_code == 0, again.stderr
    assert {r["model"]: r["mean"] for r in json.loads((tmp_path / "again.json").read_text())} == \
        pytest.approx({m: r["mean"] for m, r in rows.items()})


def test_a_limit_above_the_training_set_says_it_was_capped(cli, tmp_path):
    result = cli("train", "mlp", "--epochs", "1", "--limit", "100000", "--batch-size", "2000", "--runs-dir", tmp_path,
                 "--json")
    assert result.exit_code == 0, result.stderr
    assert "--limit 100,000 is more than the 60,000 training images" in " ".join(result.stderr.split())
    assert json.loads(result.stdout)["split"]["train"] == 54_000


def test_tensorboard_logs_go_into_the_run_directory(cli, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="TensorBoard is an extra: pip install -e '.[tensorboard]'")
    result = cli("train", "mlp", "--epochs", "2", "--limit", "1000", "--runs-dir", tmp_path, "--tensorboard", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    logs = Path(record["run_dir"]) / "tensorboard"
    assert record["execution"]["tensorboard"] == "tensorboard"
    for part in ("train", "validation"):  # Keras's layout, which `tensorboard --logdir runs` reads
        events = list((logs / part).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0, part

    from zoo import types

    monkeypatch.setattr(types, "has_tensorboard", lambda: False)
    missing = cli("train", "mlp", "--tensorboard", "--runs-dir", tmp_path)
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "Error: --tensorboard needs TensorBoard: pip install 'mnist-zoo[tensorboard]'"
