"""Seed batching (zoo.seed_batches): the seeds of one small model trained together are the
same runs as those seeds trained one after another.

What makes them the same, each checked here: every seed starts from its own initial
weights, sees its own batches in its own order, keeps its own optimizer state, BatchNorm
statistics and dropout draws. The batch runs the very kernels a seed alone runs, on the
same shapes, so the trained weights agree to float tolerance (on the machines measured,
bit for bit).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import zoo
from zoo import input_pipeline, seed_batches
from zoo.jobs import make_jobs
from zoo.types import Options


# -- what trains with what (no training) ------------------------------------------------------
@pytest.mark.unit
def test_each_seed_has_its_own_order_of_the_training_images_every_epoch():
    first = input_pipeline.epoch_orders(42, 1000, 3)
    assert first.shape == (3, 1000) and all(sorted(row) == list(range(1000)) for row in first)
    assert not np.array_equal(first[0], first[1])  # a new order each epoch
    assert np.array_equal(first, input_pipeline.epoch_orders(42, 1000, 3))  # the seed's, every time
    assert not np.array_equal(first[0], input_pipeline.epoch_orders(43, 1000, 3)[0])


@pytest.mark.unit
def test_a_seed_sees_the_same_batches_batched_as_alone():
    x = np.arange(50, dtype="float32").reshape(50, 1) * 10
    y = np.arange(50, dtype="int64")
    together = list(input_pipeline.training_batches(x, y, [7, 8, 9], 2, 16).take(8).as_numpy_iterator())
    for k, seed in enumerate([7, 8, 9]):
        alone = list(input_pipeline.training_batches(x, y, [seed], 2, 16).take(8).as_numpy_iterator())
        assert [len(b[1]) for b in alone] == [16, 16, 16, 2] * 2  # the last batch of an epoch is the rest
        for (xs, ys), (x1, y1) in zip(together, alone):
            assert np.array_equal(xs[k], x1) and np.array_equal(ys[k], y1)
            assert np.array_equal(xs[k][:, 0], ys[k] * 10)  # images and labels stay paired


@pytest.mark.unit
def test_the_training_step_is_traced_once_when_its_state_is_built_first():
    """Keras builds Adam's moments and the metrics' totals inside the first traced step, and
    TensorFlow then traces the step again; the zoo builds them before fit: one trace, the
    same training."""
    import keras

    from zoo.keras_glue import build_training_state

    traces = []

    class Counted(keras.Sequential):
        def train_step(self, data):
            traces.append(1)  # runs only while TensorFlow traces the step
            return super().train_step(data)

    x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
    y = np.arange(256) % 10
    weights = {}
    for first in (False, True):
        traces.clear()
        keras.utils.set_random_seed(0)
        model = Counted([keras.Input((8,)), keras.layers.Dense(10, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
        if first:
            assert build_training_state(model, x[:64], y[:64])
        model.fit(x, y, batch_size=64, epochs=2, verbose=0, shuffle=False)
        weights[first] = model.get_weights()
        assert len(traces) == (1 if first else 2)
    assert all(np.array_equal(a, b) for a, b in zip(weights[False], weights[True]))


@pytest.mark.unit
def test_the_progress_of_a_seed_batch_counts_epochs_and_names_each_seeds_line():
    """Three seeds trained together end each epoch three times: the bar says 2/2, not 6/2,
    and each epoch's line names its seed; a seed alone's line does not."""
    import io

    from rich.console import Console

    from zoo.progress import TrainingDisplay
    from zoo.types import Event, Job

    out = io.StringIO()
    display = TrainingDisplay(models=3, console=Console(file=out, width=120))
    jobs = [Job("speedrun", "race", seed, Options(), epochs=2, batch_size=128) for seed in (42, 43, 44)]
    for job in jobs:
        display.on_event(Event("started", job, epochs=2, steps=10))
    for epoch in (1, 2):
        for job in jobs:
            display.on_event(Event("epoch_ended", job, epoch=epoch, metrics={"loss": 0.5}, seconds=1.0))
    assert display.progress._tasks[display.epochs_task].completed == 2
    for job in jobs:
        display.on_event(Event("finished", job))
    alone = Job("mlp", "article", 42, Options(), epochs=1, batch_size=32)
    display.on_event(Event("started", alone, epochs=1, steps=10))
    display.on_event(Event("epoch_ended", alone, epoch=1, metrics={"loss": 0.5}, seconds=1.0))
    lines = out.getvalue().splitlines()
    assert [line.split(" epoch")[0] for line in lines if " epoch " in line and "s  loss" in line] == [
        "speedrun seed 42", "speedrun seed 43", "speedrun seed 44"] * 2 + ["mlp"]


@pytest.mark.unit
def test_groups_are_the_seeds_of_one_model_recipe_and_data_ten_at_most(zoo_registry):
    options = Options(epochs=1)
    mlp, cnn = zoo_registry.architecture("mlp"), zoo_registry.architecture("speedrun")
    jobs = make_jobs([mlp, cnn], options, seeds=range(1, 13))
    found = seed_batches.groups(jobs, object())
    assert [(g.jobs[0].model, [j.seed for j in g.jobs]) for g in found] == [
        ("mlp", list(range(1, 11))), ("mlp", [11, 12]), ("speedrun", list(range(1, 11))), ("speedrun", [11, 12])]
    off = make_jobs([mlp], Options(epochs=1, seed_batching=False), seeds=[1, 2])
    assert [len(g.jobs) for g in seed_batches.groups(off, object())] == [1, 1]
    # each seed its own split (--vary-split): different data, trained apart
    assert [len(g.jobs) for g in seed_batches.groups(jobs[:2], lambda job: object())] == [1, 1]


@pytest.mark.unit
def test_what_cannot_be_batched_says_why(zoo_registry):
    recipe = zoo_registry.architecture("mlp").recipes[0]
    assert seed_batches.why_not(Options(), recipe, "tensorflow") is None
    assert "turned off" in seed_batches.why_not(Options(seed_batching=False), recipe, "tensorflow")
    assert "jax" in seed_batches.why_not(Options(), recipe, "jax")
    assert "loss scale" in seed_batches.why_not(Options(precision="mixed_float16"), recipe, "tensorflow")
    assert seed_batches.too_costly(380_000, 128) is None  # speedrun: 0.29 GFLOP a step
    assert "does not pay" in seed_batches.too_costly(2_300_000, 200)
    # Options equal but for seed batching are the same comparison (a resume may change it)
    assert Options(seed_batching=False) == Options()


# -- the same runs -------------------------------------------------------------------------------
def tiny_dropout_net():
    """Convolution, BatchNorm and dropout: every kind of state a seed must keep to itself."""
    import keras
    from keras import layers

    def build(input_shape, num_classes):
        return keras.Sequential([keras.Input(shape=input_shape), layers.Conv2D(4, 3, strides=2),
                                 layers.BatchNormalization(), layers.Activation("relu"), layers.Dropout(0.3),
                                 layers.Flatten(), layers.Dense(num_classes, activation="softmax")],
                                name="tiny-dropout")

    return zoo.Architecture(name="tiny-dropout", build=build, recipes=(zoo.Recipe(
        name="adam", optimizer={"class_name": "Adam", "learning_rate": 0.003},
        schedule={"kind": "warmup_cosine", "warmup": 0.2, "start": 0.1, "alpha": 0.01},
        loss="sparse_categorical_crossentropy", batch_size=64, epochs=2),))


def weights_and_optimizer(run_dir):
    import keras

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model saved without its optimizer's state warns on loading
        model = keras.saving.load_model(run_dir / "model.keras")
    return model.get_weights(), [np.array(v) for v in model.optimizer.variables]


def test_batched_seeds_end_as_the_same_models_as_seeds_trained_alone(tmp_path, mnist_npz):
    """Dropout, BatchNorm, Adam with a schedule: each seed batched ends where it ends alone."""
    from zoo.comparing import run_jobs
    from zoo.jobs import prepare
    from zoo.plugins import get_zoo

    zoo.register(tiny_dropout_net())
    registry = get_zoo()
    results = {}
    for batching in (True, False):
        options = Options(limit=600, data_dir=str(mnist_npz), seed_batching=batching)
        jobs = make_jobs([registry.architecture("tiny-dropout")], options, seeds=[5, 6, 7])
        results[batching] = run_jobs(jobs, prepare(registry, options), tmp_path / str(batching),
                                     registry=registry).ordered()
    for together, alone in zip(results[True], results[False]):
        assert together.record.execution["seed_batching"]["batched"] is True
        assert together.record.execution["seed_batching"]["seeds"] == [5, 6, 7]
        assert alone.record.execution["seed_batching"] == {"batched": False, "reason": "seed batching: turned off "
                                                                                       "(--no-seed-batching)"}
        (w1, o1), (w2, o2) = weights_and_optimizer(together.run_dir), weights_and_optimizer(alone.run_dir)
        assert len(w1) == len(w2) and len(o1) == len(o2)
        for a, b in zip(w1 + o1, w2 + o2):  # weights, BatchNorm statistics, Adam's moments, the step count
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert together.record.test_accuracy == alone.record.test_accuracy
        history = [json.loads((o.run_dir / "history.json").read_text()) for o in (together, alone)]
        np.testing.assert_allclose(history[0]["val_accuracy"], history[1]["val_accuracy"])
        assert int(o1[0]) == 2 * 9  # Adam's step count: 540 training images in batches of 64, twice
    # the seeds differ from each other: three models, not one model three times
    assert len({o.record.test_accuracy for o in results[True]}) > 1


def test_compare_batches_the_seeds_of_a_small_model_and_records_it(tmp_path, mnist_npz):
    comparison = zoo.compare(["speedrun"], seeds=3, epochs=1, limit=500, data_dir=mnist_npz,
                             runs_dir=tmp_path, progress=False)
    batching = [r.execution["seed_batching"] for r in comparison.records]
    assert [b["batched"] for b in batching] == [True] * 3 and batching[0]["seeds"] == [42, 43, 44]
    seconds = batching[0]["seconds"]
    assert all(abs(r.training_seconds * 3 - seconds) < 0.01 for r in comparison.records)  # a third each
    assert len(comparison.rows) == 1 and comparison.rows[0]["n"] == 3
    with pytest.raises(zoo.ZooError, match="seed_batching is True or False"):
        zoo.compare(["speedrun"], seed_batching="no", runs_dir=tmp_path, progress=False)


def test_ctrl_c_in_a_seed_batch_keeps_every_seed_as_interrupted(tmp_path, mnist_npz, zoo_registry):
    from zoo.comparing import run_jobs
    from zoo.jobs import prepare

    options = Options(limit=1000, epochs=3, data_dir=str(mnist_npz))
    jobs = make_jobs([zoo_registry.architecture("mlp")], options, seeds=[1, 2])

    def stop_in_epoch_2(event):
        if event.kind == "epoch_started" and event.epoch == 2 and event.job == jobs[1]:
            raise KeyboardInterrupt

    result = run_jobs(jobs, prepare(zoo_registry, options), tmp_path, stop_in_epoch_2, registry=zoo_registry)
    assert result.interrupted
    assert [(o.record.status, o.record.epochs_completed, o.record.model_weights) for o in result.ordered()] == \
        [("interrupted", 1, "end of epoch 1")] * 2
    assert all((o.run_dir / "model.keras").is_file() for o in result.ordered())


def test_a_model_too_costly_to_batch_trains_alone_and_says_why(tmp_path, mnist_npz, zoo_registry):
    from zoo.comparing import run_jobs
    from zoo.jobs import prepare

    options = Options(limit=300, epochs=1, data_dir=str(mnist_npz))
    jobs = make_jobs([zoo_registry.architecture("baseline-cnn")], options, seeds=[1, 2])
    outcomes = run_jobs(jobs, prepare(zoo_registry, options), tmp_path, registry=zoo_registry).ordered()
    for outcome in outcomes:
        batching = outcome.record.execution["seed_batching"]
        assert batching["batched"] is False and "does not pay" in batching["reason"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["baseline-cnn-seed1", "baseline-cnn-seed2"]
