"""The Python API, driven directly as a notebook drives it: every verb, the Run and Comparison
it returns, a network registered from Python code, and the same rows as the CLI's --json."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo

ZOO_DIR = Path(zoo.__file__).parent


def tiny_cnn(input_shape, num_classes):
    """What a student writes in a cell: one convolution, one pooling, a softmax."""
    import keras

    return keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.MaxPooling2D(4), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])


def tiny_net():
    return zoo.Architecture(name="tiny-cell-net", build=tiny_cnn,
                            recipes=zoo.Recipe("adam", {"class_name": "Adam", "learning_rate": 0.01},
                                               "categorical_crossentropy", batch_size=64, epochs=1))


@pytest.fixture(scope="module", autouse=True)
def forget_registered_networks():
    """The networks these tests register stay in this module: other tests list the zoo's own."""
    yield
    from zoo.plugins import forget_session

    forget_session()


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """A network registered from Python beside mlp, two seeds each, one epoch on 1,000 images."""
    zoo.register(tiny_net())
    runs = tmp_path_factory.mktemp("api-runs")
    return zoo.compare(["tiny-cell-net", "mlp"], seeds=2, epochs=1, limit=1000, runs_dir=runs, progress=False)


def test_import_zoo_loads_no_keras_and_every_verb_stays_a_function():
    """Importing every submodule must not replace a verb with a module of its name
    (``import zoo.report`` would have, when the report's module was called that)."""
    code = ("import sys, zoo\n"
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
            "print(sorted(zoo.VERBS))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(eval(done.stdout)) >= {"list_models", "info", "train", "compare", "resume", "load", "evaluate",
                                      "predict", "explain", "report", "register"}
    for module in pkgutil.walk_packages([str(ZOO_DIR)], prefix="zoo."):
        if module.name != "zoo.__main__":  # that one runs the command
            importlib.import_module(module.name)
    for verb in zoo.VERBS:
        assert callable(getattr(zoo, verb)) and not isinstance(getattr(zoo, verb), type(zoo)), verb
    assert isinstance(zoo.Run, type) and isinstance(zoo.Comparison, type)


@pytest.mark.unit
def test_listing_and_cards_as_data():
    rows = zoo.list_models("*cnn*")
    assert {"keras1-cnn", "baseline-cnn"} <= {r["name"] for r in rows} and all("cnn" in r["name"] for r in rows)
    assert {r["name"] for r in zoo.list_models(tag="article")} >= {"mlp", "deep-bn-cnn"}
    card = zoo.info("mlp")
    assert card["name"] == "mlp" and card["params"] == 25_450 and card["recipes"][0]["batch_size"] == 32
    with pytest.raises(zoo.UnknownNameError, match="did you mean: mlp"):
        zoo.info("mlpp")


def test_errors_are_zoo_errors_raised_before_training(tmp_path):
    with pytest.raises(zoo.OptionError, match=r"^epochs=0 must be at least 1$"):
        zoo.compare(["mlp"], epochs=0, runs_dir=tmp_path)
    with pytest.raises(zoo.OptionError, match=r"^seeds=0: give between 1 and 1000 seeds$"):
        zoo.compare(["mlp"], seeds=0, runs_dir=tmp_path)
    with pytest.raises(zoo.UnknownNameError):
        zoo.compare(["no-such-model"], runs_dir=tmp_path, progress=False)
    assert issubclass(zoo.OptionError, zoo.ZooError) and issubclass(zoo.Interrupted, zoo.ZooError)
    assert not list(tmp_path.iterdir())  # nothing was started


@pytest.mark.unit
def test_register_checks_the_network_and_replaces_it_when_a_cell_runs_again():
    import keras

    with pytest.raises(zoo.OptionError, match="already a model of plugin"):
        zoo.register(zoo.Architecture(name="mlp", build=tiny_cnn, recipes=tiny_net().recipes))

    def three_outputs(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(3)])

    with pytest.raises(zoo.OptionError, match=r"output shape \(None, 3\)"):
        zoo.register(zoo.Architecture(name="three-out", build=three_outputs, recipes=tiny_net().recipes))
    with pytest.raises(ValueError, match="build must be a function"):
        zoo.Architecture(name="no-build", recipes=tiny_net().recipes)

    def wider(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(8, 3, activation="relu"),
                                 keras.layers.MaxPooling2D(4), keras.layers.Flatten(),
                                 keras.layers.Dense(num_classes, activation="softmax")])

    zoo.register(zoo.Architecture(name="cell-net-again", build=tiny_cnn, recipes=tiny_net().recipes))
    first = zoo.info("cell-net-again")["params"]
    zoo.register(zoo.Architecture(name="cell-net-again", build=wider, recipes=tiny_net().recipes))
    card = zoo.info("cell-net-again")
    assert card["params"] > first  # the cell ran again: the new network replaced the old
    assert [r["name"] for r in zoo.list_models("cell-net-again")] == ["cell-net-again"]
    assert "this Python session" in json.dumps(card)


def test_compare_returns_a_comparison_of_the_registered_network(comparison):
    assert [r["model"] for r in comparison.rows] == ["tiny-cell-net", "mlp"]
    assert all(r["n"] == 2 and 0.1 < r["mean"] <= 1 for r in comparison.rows)
    assert comparison.best is not None and comparison.best["standing"] == "best"
    assert len(comparison.runs) == 4 and {run.seed for run in comparison.runs} == {42, 43}
    assert (comparison.dir / "compare.json").is_file() and (comparison.dir / "plan.json").is_file()
    html = comparison._repr_html_()
    assert "<table" in html and "tiny-cell-net" in html and "% of peak" in html  # the report's columns
    text = repr(comparison)
    assert "tiny-cell-net" in text and "95% interval" in text
    for kind in ("accuracy", "pareto", "curves"):
        figure = comparison.figure(kind)
        assert figure.axes, kind
    with pytest.raises(zoo.UnknownNameError):
        comparison.figure("pie")
    frame = comparison.to_pandas()
    assert list(frame["model"]) == ["tiny-cell-net", "mlp"]


def test_the_cli_json_and_comparison_rows_agree(comparison, cli):
    from zoo.files import json_text

    printed = cli("compare", "--from-runs", comparison.dir, "--json")
    assert printed.exit_code == 0, printed.stderr
    assert json.loads(printed.stdout) == json.loads(json_text(comparison.rows))
    assert json.loads(json_text(zoo.load(comparison.dir, progress=False).rows)) == json.loads(printed.stdout)


def test_a_run_its_model_and_what_it_sees(comparison, tmp_path, mnist):
    run = comparison.runs[2]  # mlp, seed 42
    assert isinstance(run, zoo.Run) and run.model_name == "mlp" and run.test_accuracy == run.record.test_accuracy
    assert len(run.history["val_accuracy"]) == 1 and run.dir.is_dir()
    model = run.model()
    assert model.count_params() == 25_450

    again = zoo.evaluate(run)
    assert again["test_accuracy"] == pytest.approx(run.test_accuracy) and again["test_images"] == 10_000

    image = mnist.x_test[0]  # a 7, as an array of gray levels
    answers = zoo.predict(str(run.dir), [image, tmp_path / "missing.png"])
    assert answers[0]["digit"] == answers[0]["top3"][0]["digit"] and len(answers[0]["probabilities"]) == 10
    assert answers[1]["digit"] is None and "no such file" in answers[1]["error"]

    cnn = comparison.runs[0]  # tiny-cell-net: it has a convolution to look inside
    seen = zoo.explain(cnn, 0, out=tmp_path / "explained")
    assert seen.true_label == "7" and len(seen.feature_maps) == 1 and seen.saliency.shape == (28, 28)
    assert len(seen.figures()) == 2 and (tmp_path / "explained" / "saliency.png").is_file()


def test_train_resume_and_report(comparison, tmp_path):
    run = zoo.train("mlp", epochs=1, limit=500, seed=3, runs_dir=tmp_path / "one", progress=False)
    assert run.record.seed == 3 and run.record.split.train == 450 and (run.dir / "model.keras").is_file()

    (comparison.dir / "mlp-seed43" / "run.json").unlink()  # as a kill -9 leaves it
    resumed = zoo.resume(comparison.dir, progress=False)
    assert [r["n"] for r in resumed.rows] == [2, 2]
    assert (comparison.dir / "mlp-seed43" / "run.json").is_file()

    written = resumed.report(tmp_path / "site")
    assert written.index.is_file() and len(written.pages) == 2
    assert "% of peak" in written.index.read_text()  # the one column spec: the report has every column
    assert zoo.report([comparison.dir], tmp_path / "site2", progress=False).index.is_file()


def test_a_stop_keeps_the_finished_runs_and_resume_goes_on(tmp_path):
    """A notebook's stop button is a KeyboardInterrupt in the middle of training."""
    seen = []

    def stop_in_the_second_job(event):
        seen.append(event.kind)
        if event.kind == "epoch_ended" and seen.count("started") == 2:
            raise KeyboardInterrupt

    with pytest.raises(zoo.Interrupted, match="1 of 2 runs finished") as stopped:
        # one seed after the other (a stop in a seed batch stops its seeds together: test_seed_batching)
        zoo.compare(["mlp"], seeds=2, epochs=1, limit=500, runs_dir=tmp_path, progress=stop_in_the_second_job,
                    seed_batching=False)
    partial = stopped.value.result
    assert isinstance(partial, zoo.Comparison) and partial.interrupted
    assert [r.get("status") for r in partial.rows] == ["completed", "interrupted"]
    finished = zoo.resume(partial.dir, progress=False)
    assert finished.rows[0]["n"] == 2


@pytest.mark.unit
def test_the_notebook_display_updates_one_output_in_place():
    """In Jupyter, progress is one HTML table redrawn through a display id (no widgets needed)."""
    pytest.importorskip("IPython")
    from zoo.feedback import NotebookDisplay
    from zoo.types import Event, Job, Options

    job = Job("mlp", "article", 42, Options(), 1, 32)
    shown = NotebookDisplay([job])
    updates = []
    shown.handle = type("Handle", (), {"update": lambda self, obj: updates.append(obj.data)})()
    shown.on_event(Event("started", job, epochs=1, steps=10))
    shown.on_event(Event("epoch_ended", job, epoch=1, metrics={"val_accuracy": 0.9}, seconds=1.5))
    shown.on_event(Event("failed", job, error="<b>boom</b>"))
    assert "training" in updates[0] and "failed" in updates[-1] and "&lt;b&gt;boom" in updates[-1]
    assert np.all([u.startswith("<table>") for u in updates])


@pytest.mark.unit
def test_the_obvious_calls_for_a_model_and_the_plugins():
    """zoo.build(name, **knobs) is what a comparison builds: uncompiled, weights made; no private reach."""
    speedrun = zoo.build("speedrun")
    assert speedrun.count_params() == 43_658 and not speedrun.compiled
    assert zoo.build("baseline-cnn", dropout=0.5).count_params() == 592_074
    assert zoo.architecture("mlp").recipe().batch_size == 32
    with pytest.raises(zoo.ZooError, match="has no knob|knob"):
        zoo.build("mlp", dropout=0.5)
    with pytest.raises(zoo.UnknownNameError):
        zoo.architecture("no-such-net")
    listed = zoo.installed_plugins()
    assert {"mlp", "speedrun"} <= {name for p in listed["plugins"] for name in p["architectures"]}


@pytest.mark.unit
def test_errors_name_the_python_parameter_and_the_cli_its_flag(tmp_path, cli):
    """One error, said in the caller's words: `limit=5` from Python, `--limit 5` from the
    command line, with the exit status the CLI gives its kind."""
    with pytest.raises(zoo.OptionError, match=r"^limit=5 is too small: use at least 20 images$") as raised:
        zoo.compare(["mlp"], limit=5, runs_dir=tmp_path)
    assert (raised.value.parameter, raised.value.value) == ("limit", 5)
    with pytest.raises(zoo.OptionError, match=r"^validate_on must be 'val' or 'test', not 'train'$"):
        zoo.compare(["mlp"], validate_on="train", runs_dir=tmp_path)
    with pytest.raises(zoo.OptionError, match=r"^batch_size=0 must be at least 1$"):
        zoo.compare(["mlp"], batch_size=0, runs_dir=tmp_path)
    for args, said in ((("--limit", "5"), "Error: --limit 5 is too small: use at least 20 images"),
                       (("--seeds", "0"), "Error: --seeds 0: give between 1 and 1000 seeds"),
                       (("--batch-size", "0"), "Error: --batch-size 0 must be at least 1"),
                       (("--validate-on", "train"), "Error: --validate-on must be 'val' or 'test', not 'train'")):
        result = cli("compare", "mlp", *args, "--runs-dir", tmp_path)
        assert result.exit_code == 2 and result.stderr.strip() == said, result.stderr
    from zoo.cli.app import CommandFailed, exit_code_of, flag_for

    assert exit_code_of(zoo.Interrupted("stopped")) == 130 and exit_code_of(CommandFailed("2 run(s) failed")) == 1
    assert exit_code_of(zoo.OptionError("bad")) == 2 and flag_for("threads") == "--threads-per-worker"


def test_what_zoo_data_and_zoo_check_show_are_library_calls(tmp_path, mnist, monkeypatch):
    """The CLI's `zoo data` and `zoo check` call these; a notebook can too."""
    from PIL import Image

    monkeypatch.setenv("ZOO_CONFIG_DIR", str(tmp_path / "config"))
    every = {row["name"] for row in zoo.datasets()}
    assert {"mnist", "digits"} <= every
    one = zoo.datasets("mnist", show=4, out=tmp_path / "grid.png")
    assert one["name"] == "mnist" and one["grid"] == str(tmp_path / "grid.png") and (tmp_path / "grid.png").is_file()
    for label in ("0", "1"):
        (tmp_path / "drawn" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(255 - mnist.x_test[i]).save(tmp_path / "drawn" / label / f"{i}.png")
    added = zoo.add_dataset("drawn", tmp_path / "drawn")
    assert added.class_names == ("0", "1") and "drawn" in {row["name"] for row in zoo.datasets()}
    zoo.remove_dataset("drawn")
    assert "drawn" not in {row["name"] for row in zoo.datasets()}
    [report] = zoo.check_models("mlp", progress=False)
    assert report.ok and report.model == "mlp"
