"""Change one thing: knobs, `--vary`/`--set`, and experiments answered with paired seeds."""

import json

import pytest
from conftest import run_zoo

# A third-party plugin using what docs/writing-a-plugin.md promises: a knob its build() takes,
# and an experiment of its own (registered through zoo_register_experiments).
KNOBBED = '''
import keras
import zoo

SRC = zoo.Source("a knobbed test net", "tests", 2026)


def build(input_shape, num_classes, width=8, activation="relu"):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(width, activation=activation),
                             keras.layers.Dense(num_classes, activation="softmax")])


@zoo.hookimpl
def zoo_register_architectures(register):
    register(zoo.Architecture(
        name="knobbed", title="Knobbed", summary="s", teaches="t", source=SRC, input_kind="flat", build=build,
        knobs=(zoo.Knob("width", 8, "hidden units", low=1, high=256),
               zoo.Knob("activation", "relu", "the hidden layer's activation", ("relu", "tanh", "linear"))),
        recipes=(zoo.Recipe(name="sgd", optimizer={"class_name": "SGD", "learning_rate": 0.1},
                            loss="sparse_categorical_crossentropy", batch_size=64, epochs=1, source=SRC),)))


@zoo.hookimpl
def zoo_register_experiments(register):
    register(zoo.Experiment(name="width-matters", question="Does a wider hidden layer help?", model="knobbed",
                            vary={"width": [4, 64]}, seeds=2, epochs=1, limit=500, notice="wider, better?"))
'''


@pytest.fixture
def knobbed(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "knobbed.py").write_text(KNOBBED)
    monkeypatch.setenv("ZOO_PLUGINS_DIR", str(folder))
    from zoo.plugins import get_zoo

    return get_zoo(str(folder))


# -- knobs and variants (no training) -----------------------------------------------------
@pytest.mark.unit
def test_knob_values_are_parsed_and_checked(knobbed):
    from zoo import Knob, OptionError
    from zoo.knobs import variants
    from zoo.types import label

    arch = knobbed.architecture("knobbed")
    assert variants(arch, ["width=4,64"]) == [{"width": 4}, {"width": 64}]
    grid = variants(arch, ["width=4,64", "activation=relu,tanh"], ["learning_rate=0.05"])
    assert len(grid) == 4 and grid[0] == {"learning_rate": 0.05, "width": 4, "activation": "relu"}
    assert label("knobbed", {"width": 64, "learning_rate": 0.5}) == "knobbed[width=64,learning_rate=0.5]"
    assert label("baseline-cnn", {"dropout": 0.0}) == "baseline-cnn[dropout=0]"
    for bad, message in ((["depth=1,2"], "has no knob 'depth'; its knobs: width, activation, recipe"),
                         (["width=4"], "at least two values"), (["width=4,4"], "each value once"),
                         (["width=4,x"], "give a number"), (["width=4,1000"], "up to 256"),
                         (["width=4.5,8"], "whole number"), (["activation=relu,gelu"], "allowed values are relu, "
                                                                                       "tanh, linear"),
                         (["width"], "KNOB=VALUE"), (["batch_size=0,8"], "from 1")):
        with pytest.raises(OptionError, match=message):
            variants(arch, bad)
    with pytest.raises(OptionError, match="width: given both to vary"):
        variants(arch, ["width=4,8"], ["width=4"])
    with pytest.raises(ValueError, match="not one of its values"):
        Knob("x", 3, values=(1, 2))
    with pytest.raises(ValueError, match="short words"):
        Knob("x", "a/b")


@pytest.mark.unit
def test_jobs_of_variants_share_seeds_and_name_their_folders(knobbed):
    from zoo.executors.base import run_dir_names
    from zoo.jobs import make_jobs
    from zoo.types import Options

    arch = knobbed.architecture("knobbed")
    jobs = make_jobs([arch], Options(), seeds=[1, 2], vary=["width=4,64"], settings=["epochs=3"])
    assert [(j.name, j.seed, j.epochs) for j in jobs] == [
        ("knobbed[epochs=3,width=4]", 1, 3), ("knobbed[epochs=3,width=4]", 2, 3),
        ("knobbed[epochs=3,width=64]", 1, 3), ("knobbed[epochs=3,width=64]", 2, 3)]
    assert run_dir_names(jobs)[:2] == ["knobbed-epochs-3-width-4-seed1", "knobbed-epochs-3-width-4-seed2"]
    docs = make_jobs([knobbed.architecture("keras-docs-cnn")], Options(), vary=["recipe=adam,adadelta"])
    assert [(j.recipe, j.batch_size) for j in docs] == [("adam", 128), ("adadelta", 128)]


@pytest.mark.unit
def test_info_lists_each_models_knobs_and_the_built_in_ones_keep_the_articles_values(cli):
    card = json.loads(cli("info", "baseline-cnn", "--json").stdout)
    knobs = {k["name"]: k for k in card["knobs"]}
    assert knobs["dropout"]["default"] == 0.3 and knobs["filters"]["default"] == 32
    assert {"recipe", "learning_rate", "batch_size", "epochs"} <= set(knobs)
    assert knobs["learning_rate"]["kind"] == "recipe" and knobs["dropout"]["kind"] == "model"
    deep = {k["name"]: k for k in json.loads(cli("info", "deep-bn-cnn", "--json").stdout)["knobs"]}
    assert deep["bn_axis"]["default"] == 1 and deep["bn_axis"]["values"] == [1, -1]
    # declaring knobs changed no model: the published parameter counts still hold
    assert card["params"] == 592_074
    assert json.loads(cli("info", "deep-bn-cnn", "--json").stdout)["params"] == 1_886_250


@pytest.mark.unit
def test_a_recipe_with_label_smoothing_offers_it_as_a_knob():
    """speedrun's recipe smooths its labels: the knob starts at the recipe's value and 0 turns it off;
    a recipe without smoothing offers no such knob."""
    import zoo
    from zoo.knobs import all_knobs, apply

    speedrun, mlp = zoo.architecture("speedrun"), zoo.architecture("mlp")
    smoothing = speedrun.recipes[0].label_smoothing
    knobs = {k.name: k for k in all_knobs(speedrun)}
    assert smoothing > 0 and knobs["label_smoothing"].default == smoothing
    assert apply(speedrun, {}).recipe.label_smoothing == smoothing
    assert apply(speedrun, {"label_smoothing": 0}).recipe.label_smoothing == 0.0
    assert apply(speedrun, {"label_smoothing": 0.2}).recipe.loss_text().endswith("with label smoothing 0.2")
    assert "label_smoothing" not in {k.name for k in all_knobs(mlp)}


# -- comparisons of variants -------------------------------------------------------------
def test_vary_gives_one_row_per_value_with_a_paired_test_against_the_first(cli, tmp_path, mnist_npz):
    """The issue's done-when: two rows labelled by their knob values, tested with a paired test."""
    result = cli("compare", "mlp", "--vary", "hidden_units=8,32", "--seeds", "2", "--epochs", "1",
                 "--limit", "1000", "--json", "--data-dir", mnist_npz, "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "2 of mlp × 2 seed(s): 4 runs" in " ".join(result.stderr.split())
    reference, other = json.loads(result.stdout)
    assert (reference["label"], other["label"]) == ("mlp[hidden_units=8]", "mlp[hidden_units=32]")
    assert other["reference"] == "mlp[hidden_units=8]" and "reference" not in reference
    assert other["test_vs_reference"] == "paired t-test (same model, seeds and split)"
    low, high = other["difference_interval"]
    assert low <= other["difference_vs_reference"] <= high
    assert [seed for seed, _ in other["paired_differences"]] == [42, 43]
    folder = next(tmp_path.glob("compare-*"))
    record = json.loads((folder / "mlp-hidden-units-32-seed42" / "run.json").read_text())
    assert record["knobs"] == {"hidden_units": 32}
    plan = json.loads((folder / "plan.json").read_text())
    assert plan["vary"] == ["hidden_units=8,32"]
    # the saved runs read back as the same rows, and resuming trains nothing
    loaded = cli("compare", "--from-runs", folder, "--json")
    assert [r["label"] for r in json.loads(loaded.stdout)] == [reference["label"], other["label"]]
    resumed = cli("compare", "--resume", folder, "--data-dir", mnist_npz)
    assert resumed.exit_code == 0 and "4 of 4 runs finished there and are kept; 0 to train" in resumed.stderr
    assert "vs the reference" in resumed.stdout and "mlp[hidden_units=32]" in resumed.stdout


def test_an_unknown_knob_is_one_line_naming_the_knobs(cli, tmp_path):
    result = cli("compare", "mlp", "--vary", "dropout=0,0.5", "--runs-dir", tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "mlp has no knob 'dropout'; its knobs: hidden_units, recipe, learning_rate, batch_size, epochs" in \
        " ".join(result.stderr.split())
    assert not list(tmp_path.iterdir())


# -- experiments ---------------------------------------------------------------------------
@pytest.mark.process
def test_experiments_are_listed_and_a_plugin_adds_its_own(knobbed):
    found = {e["name"]: e for e in json.loads(run_zoo("experiments", "--json").stdout)}
    assert {"adadelta-learning-rate", "batchnorm-axis", "dropout", "validate-on-test",
            "batchnorm-short-run", "width-matters"} <= set(found)
    assert found["width-matters"]["plugin"] == "knobbed" and found["width-matters"]["vary"] == {"width": [4, 64]}
    assert found["adadelta-learning-rate"]["vary"] == {"learning_rate": [1.0, 0.001]}


def test_a_plugins_experiment_runs_and_answers_in_words(knobbed, tmp_path, mnist_npz):
    import zoo

    result = zoo.experiment("width-matters", data_dir=mnist_npz, runs_dir=tmp_path, progress=False)
    [line] = result.answer.lines
    assert line.startswith("knobbed[width=64] vs knobbed[width=4]: ") and "paired t-test" in line
    assert "95% interval" in line and ("not distinguishable at this n" in line or "than the reference" in line)
    saved = json.loads((result.dir / "experiment.json").read_text())
    assert saved["question"] == "Does a wider hidden layer help?" and saved["answer"] == [line]
    assert (result.dir / "differences.png").read_bytes()[:4] == b"\x89PNG"
    # the report of the experiment's folder opens with the question, its answer and the differences
    page = (result.report(progress=False).index).read_text()
    assert page.index("Does a wider hidden layer help?") < page.index('id="table"')
    assert "knobbed[width=64]" in page and "img/differences.png" in page
    pages = {p.name: p.read_text() for p in (result.dir / "report" / "models").glob("*.html")}
    assert len(pages) == 2 and any("these runs are the variant knobbed[width=64]" in text for text in pages.values())
    # saved runs: zoo.load computes the same answer from them (plan.json names the experiment)
    (result.dir / "experiment.json").unlink()  # not read back: the answer is computed, not stored and trusted
    again = zoo.load(result.dir, progress=False)
    assert again.answer.lines == [line] and again.rows == result.rows
    page = zoo.report(result.dir, out=tmp_path / "again", progress=False).index.read_text()
    assert line.split(":")[0] in page and page.index("Does a wider hidden layer help?") < page.index('id="table"')
    with pytest.raises(zoo.UnknownNameError, match="unknown experiment .nope."):
        zoo.experiment("nope")
    with pytest.raises(zoo.OptionError, match=r"^seeds=1: an experiment compares variants seed by seed, give 2 or more$"):
        zoo.experiment("width-matters", seeds=1)


@pytest.mark.unit
def test_choosing_the_epoch_on_the_test_set_is_measured_seed_by_seed(tmp_path):
    """Per seed: the test set's best epoch minus the test accuracy at the epoch the held-out
    validation split chooses; its t-interval unclipped (it may reach below zero)."""
    from types import SimpleNamespace

    from zoo.experimenting import selection_optimism

    records = []
    for seed, val, test in ((1, [0.90, 0.95, 0.93], [0.91, 0.93, 0.95]), (2, [0.91, 0.92, 0.93], [0.90, 0.94, 0.93]),
                            (3, [0.89, 0.96, 0.94], [0.90, 0.95, 0.95])):
        folder = tmp_path / str(seed)
        folder.mkdir()
        (folder / "history.json").write_text(json.dumps({"val_accuracy": val, "test_accuracy": test,
                                                         "loss": [1.0, 0.5, 0.4]}))
        records.append(SimpleNamespace(run_dir=str(folder), seed=seed, split=SimpleNamespace(validate_on="val")))
    found = selection_optimism(records)
    assert found["n"] == 3 and found["per_seed"][0] == [1, pytest.approx(0.02)]  # best 0.95, val picks epoch 2: 0.93
    assert found["mean"] == pytest.approx((0.02 + 0.01 + 0.0) / 3)
    assert found["epochs"][0] == [1, 2, 3]  # validation chose epoch 2, the test set would choose epoch 3
    low, high = found["interval"]
    assert low < 0 < found["mean"] < high  # unclipped


@pytest.mark.slow  # about a minute on 2 cores
def test_the_adadelta_experiment_shows_the_keras_3_trap(tmp_path, mnist_npz):
    """The issue's done-when: `zoo experiment adadelta-learning-rate` (quick default) shows the
    trap with its interval."""
    result = run_zoo("experiment", "adadelta-learning-rate", "--json", "--data-dir", mnist_npz,
                     "--runs-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    [number] = json.loads(result.stdout)["numbers"]
    assert number["variant"] == "keras1-cnn[learning_rate=0.001]" and number["reference"] == "keras1-cnn[learning_rate=1.0]"
    assert number["interval"][1] < -0.3 and number["p"] < 0.05  # tens of points worse, and the test says so


@pytest.mark.slow
@pytest.mark.dask
def test_variants_train_on_dask_workers_as_locally(tmp_path, mnist_npz):
    args = ("compare", "mlp", "--vary", "hidden_units=8,32", "--seeds", "2", "--epochs", "1", "--limit", "500",
            "--threads-per-worker", "1", "--json", "--data-dir", mnist_npz)
    dask = run_zoo(*args, "--executor", "dask", "--workers", "2", "--runs-dir", tmp_path / "dask")
    local = run_zoo(*args, "--runs-dir", tmp_path / "local")
    assert dask.returncode == 0 and local.returncode == 0, dask.stderr + local.stderr
    assert [(r["label"], r["accuracies"]) for r in json.loads(dask.stdout)] == \
        [(r["label"], r["accuracies"]) for r in json.loads(local.stdout)]
