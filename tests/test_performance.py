"""The fast paths compute the same thing as the plain ones (no timings here: see benchmarks/)."""

import contextlib
import os

import numpy as np
import pytest

from zoo.keras_glue import CHEAP_STEP_FLOPS, execution_settings


@pytest.mark.unit
def test_steps_per_execution_only_for_cheap_steps(zoo_registry):
    from zoo.anatomy import architecture_stats

    def steps(name):
        arch = zoo_registry.architecture(name)
        return execution_settings(architecture_stats(arch).macs, arch.recipe().batch_size)["steps_per_execution"]

    mlp = architecture_stats(zoo_registry.architecture("mlp")).macs
    cnn = architecture_stats(zoo_registry.architecture("baseline-cnn")).macs
    assert 6 * mlp * 32 < CHEAP_STEP_FLOPS < 6 * cnn * 200
    assert steps("mlp") > 1 and steps("speedrun") > 1  # measured faster (docs/performance.md)
    assert [steps(name) for name in ("baseline-cnn", "keras1-cnn", "keras-docs-cnn", "deep-bn-cnn", "best")] == [1] * 5
    # Keras's torch backend refuses steps_per_execution > 1 (zoo --backend torch train mlp failed on it)
    assert execution_settings(mlp, 32, backend="torch")["steps_per_execution"] == 1
    assert execution_settings(mlp, 32, backend="jax")["steps_per_execution"] == 64
    # a short epoch still has 8 calls, so its learning curve has points within it
    assert execution_settings(mlp, 32, backend="tensorflow", steps_per_epoch=22)["steps_per_execution"] == 2
    assert execution_settings(mlp, 32, backend="tensorflow", steps_per_epoch=1688)["steps_per_execution"] == 64


@pytest.mark.parametrize("name", ["mlp", "speedrun"])  # speedrun: batch normalisation's moving statistics too
def test_many_steps_per_call_train_the_same_weights(zoo_registry, mnist, name):
    """64 steps per compiled call run the same optimizer updates in the same order as 1."""
    import keras

    from zoo import data
    from zoo.anatomy import build_model

    arch = zoo_registry.architecture(name)
    recipe = arch.recipe()
    x = data.prepare_x(mnist.x_train[:1280], arch.input_kind)
    y = data.prepare_y(mnist.y_train[:1280], recipe.labels, 10)
    weights = []
    for steps in (1, 64):
        keras.utils.set_random_seed(0)
        model = build_model(arch)
        model.compile(optimizer=recipe.build_optimizer(total_steps=20), loss=recipe.loss, steps_per_execution=steps)
        model.fit(x, y, batch_size=recipe.batch_size, epochs=2, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def schedule_of(optimizer):
    """The learning-rate schedule an optimizer evaluates at each step, through Keras's public config."""
    import keras

    return keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])


def test_schedule_warms_up_then_decays(zoo_registry):
    recipe = zoo_registry.architecture("speedrun").recipe()
    optimizer = recipe.build_optimizer(total_steps=1000)
    schedule = schedule_of(optimizer)
    peak = recipe.optimizer["learning_rate"]
    assert float(schedule(0)) == pytest.approx(peak * 0.1, rel=1e-3)
    assert float(schedule(200)) == pytest.approx(peak, rel=1e-3)
    assert float(schedule(1000)) == pytest.approx(peak * 0.01, rel=1e-2)
    assert float(schedule(600)) < float(schedule(300)) < peak * 1.0001
    with pytest.raises(ValueError, match="total_steps"):
        recipe.build_optimizer()


@pytest.mark.unit
def test_schedule_without_warmup_starts_at_the_peak_and_unknown_kinds_are_refused():
    from zoo.registry import Recipe, Source

    src = Source("t", "tests", 2026)
    recipe = Recipe(name="cos", optimizer={"class_name": "Adam", "learning_rate": 0.01},
                    loss="sparse_categorical_crossentropy", batch_size=32, epochs=1, validation="none",
                    source=src, schedule={"kind": "warmup_cosine", "warmup": 0.0, "alpha": 0.1})
    schedule = schedule_of(recipe.build_optimizer(total_steps=100))
    assert float(schedule(0)) == pytest.approx(0.01, rel=1e-3)
    assert float(schedule(100)) == pytest.approx(0.001, rel=1e-2)
    with pytest.raises(ValueError, match="unknown schedule"):
        Recipe(name="x", optimizer={"class_name": "Adam"}, loss="sparse_categorical_crossentropy",
               batch_size=32, epochs=1, validation="none", source=src, schedule={"kind": "onecycle"})


def test_mixed_bfloat16_is_explicit_recorded_and_scoped_to_its_run(cli, tmp_path):
    import json

    import keras

    from zoo.runs import load_model

    result = cli("train", "baseline-cnn", "--epochs", "1", "--limit", "2000", "--precision", "mixed_bfloat16",
                 "--runs-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["execution"]["precision"] == "mixed_bfloat16"
    assert record["test_accuracy"] > 0.7  # chance is 0.1; the numbers differ from float32's, not the learning
    conv = load_model(record["run_dir"]).layers[0]
    assert (conv.compute_dtype, conv.variable_dtype) == ("bfloat16", "float32")
    assert keras.mixed_precision.global_policy().name == "float32"  # the next model is not affected
    plain = cli("train", "mlp", "--epochs", "1", "--limit", "1000", "--runs-dir", tmp_path, "--json")
    assert plain.exit_code == 0, plain.stderr
    both = cli("compare", "--from-runs", record["run_dir"], "--from-runs", json.loads(plain.stdout)["run_dir"])
    assert both.exit_code == 0
    assert "differ in precision (float32, mixed_bfloat16)" in " ".join(both.stderr.split())
    stray = cli("compare", "--from-runs", record["run_dir"], json.loads(plain.stdout)["run_dir"])
    assert stray.exit_code == 2 and "once per directory" in stray.stderr
    only_mlp = cli("compare", "mlp", "--from-runs", record["run_dir"], "--from-runs", json.loads(plain.stdout)["run_dir"])
    assert only_mlp.exit_code == 0 and "baseline-cnn" not in only_mlp.stdout
    runs = ("--from-runs", record["run_dir"], "--from-runs", json.loads(plain.stdout)["run_dir"])
    dense_only = cli("compare", "--tag", "dense", *runs)  # mlp is tagged dense, baseline-cnn is not
    assert dense_only.exit_code == 0 and "mlp" in dense_only.stdout and "baseline-cnn" not in dense_only.stdout
    untagged = cli("compare", "--tag", "augmentation", *runs)
    assert untagged.exit_code == 2 and "no saved run is of a model tagged 'augmentation'" in untagged.stderr
    bad = cli("train", "mlp", "--precision", "fp8", "--runs-dir", tmp_path)
    assert bad.exit_code == 2 and "--precision must be one of" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_speedrun_reaches_99_percent(cli, tmp_path):
    """The race recipe, as `zoo train speedrun` runs it (benchmarks/speedrun.py times it)."""
    import json

    result = cli("train", "speedrun", "--seed", "2", "--runs-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["test_accuracy"] >= 0.99  # every seed tried reached 99% (docs/results/speedrun-five-seeds)
    # 422 steps an epoch, at least 8 calls (keras_glue.CALLS_PER_EPOCH): 52 per call
    assert record["execution"] == {"steps_per_execution": 52, "jit_compile": False, "precision": "float32",
                                   "tf_data_autotune": False, "threads": None,
                                   "seed_batching": {"batched": False, "reason": "trained on its own"},
                                   "fast_paths": ["quiet-import", "seed-generator", "layer-names", "build-before-trace",
                                                  "tf-data-autotune-off"]}


def test_input_pipeline_without_autotuning_trains_the_same_weights(zoo_registry, mnist):
    """Turning off tf.data's autotuning thread must not change a single batch or weight."""
    import keras
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    from zoo import data
    from zoo.anatomy import build_model
    from zoo.keras_glue import input_pipeline_without_autotuning

    arch = zoo_registry.architecture("baseline-cnn")
    recipe = arch.recipe()
    x = data.prepare_x(mnist.x_train[:1000], "image")
    y = data.prepare_y(mnist.y_train[:1000], recipe.labels, 10)

    def train(quiet_pipeline):
        keras.utils.set_random_seed(3)
        model = build_model(arch)
        model.compile(optimizer=recipe.build_optimizer(), loss=recipe.loss)
        with input_pipeline_without_autotuning() if quiet_pipeline else contextlib.nullcontext():
            model.fit(x, y, batch_size=100, epochs=2, shuffle=True, verbose=0,
                      validation_data=(x[:200], y[:200]))
            predictions = model.predict(x[:300], verbose=0)
        return model.get_weights(), predictions

    plain_weights, plain_predictions = train(False)
    quiet_weights, quiet_predictions = train(True)
    for a, b in zip(plain_weights, quiet_weights):
        assert np.array_equal(a, b)  # same shuffled batches, same order, same updates
    assert np.array_equal(plain_predictions, quiet_predictions)

    with input_pipeline_without_autotuning():
        inside = ArrayDataAdapter(x, y, batch_size=100, shuffle=True).get_tf_dataset()
    outside = ArrayDataAdapter(x, y, batch_size=100, shuffle=True).get_tf_dataset()
    assert inside.options().autotune.enabled is False  # the switch is really thrown…
    assert outside.options().autotune.enabled is not False  # …and put back afterwards
    assert isinstance(inside, tf.data.Dataset)


@pytest.mark.unit
def test_speedrun_fused_batch_norm_computes_what_keras_batch_norm_computes():
    """batch_norm=fused is a faster kernel, not another model: the same outputs in training and
    inference, the same moving statistics (Keras averages the biased variance), the same weights."""
    import keras
    from zoo_speedrun import FusedBatchNormalization

    x = np.random.default_rng(0).normal(2.0, 3.0, size=(32, 7, 7, 16)).astype("float32")
    plain, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    for layer in (plain, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 16)), layer.beta.assign(np.linspace(-1, 1, 16))
    for _ in range(3):
        np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), rtol=1e-4, atol=1e-4)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(fused, name).numpy(), getattr(plain, name).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), rtol=1e-4, atol=1e-4)
    assert [w.shape for w in fused.weights] == [w.shape for w in plain.weights]  # 4 × channels: the same parameters


@pytest.mark.unit
def test_speedrun_fused_batch_norm_works_under_mixed_bfloat16():
    """With --precision mixed_bfloat16 the fused kernel takes bfloat16 activations and float32
    scale and statistics, as Keras's layer does: the same outputs, to bfloat16's precision."""
    import keras
    from zoo_speedrun import FusedBatchNormalization

    from zoo.keras_glue import dtype_policy

    x = np.random.default_rng(1).normal(2.0, 3.0, size=(32, 7, 7, 16)).astype("float32")
    with dtype_policy("mixed_bfloat16"):
        plain, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    for layer in (plain, fused):
        layer.build(x.shape)
    for training in (True, False):
        mine, keras_own = fused(x, training=training), plain(x, training=training)
        assert keras.backend.standardize_dtype(mine.dtype) == keras.backend.standardize_dtype(keras_own.dtype) \
            == "bfloat16"
        np.testing.assert_allclose(np.asarray(mine, "float32"), np.asarray(keras_own, "float32"), rtol=0.02, atol=0.02)
    assert fused.moving_mean.dtype == "float32"


def test_speedrun_with_fused_batch_norm_trains_saves_and_loads(tmp_path, mnist):
    import zoo

    comparison = zoo.compare("speedrun", vary={"batch_norm": ["keras", "fused"]}, epochs=1, limit=1500,
                             runs_dir=tmp_path, progress=False)
    keras_row, fused_row = comparison.rows
    assert (keras_row["label"], fused_row["label"]) == ("speedrun[batch_norm=keras]", "speedrun[batch_norm=fused]")
    assert fused_row["params"] == keras_row["params"] == 43_658
    # The same initial weights and batches, only float rounding differs: the same accuracy to within a few images
    # (low for both, 22-23% here: after 11 steps BatchNorm's moving statistics have not settled).
    assert abs(fused_row["test_accuracy"] - keras_row["test_accuracy"]) < 0.01 and fused_row["test_accuracy"] > 0.15
    from zoo.runs import load_model, read_predictions

    loaded = load_model(fused_row["run_dir"])  # model.keras loads (the layer is registered) and reads as it did
    assert "FusedBatchNormalization" in [type(layer).__name__ for layer in loaded.layers]
    images = mnist.x_test[:200].reshape(200, 28, 28, 1).astype("float32") / 255
    saved = read_predictions(fused_row["run_dir"])["predicted"][:200]
    assert np.array_equal(loaded.predict(images, verbose=0).argmax(axis=1), saved)


@pytest.mark.unit
def test_fused_batch_norm_says_it_needs_tensorflow(monkeypatch):
    import keras
    import zoo_speedrun

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="batch_norm=fused calls a TensorFlow kernel: not on Keras's jax backend"):
        zoo_speedrun.batch_normalization("fused")
    assert type(zoo_speedrun.batch_normalization("keras")).__name__ == "BatchNormalization"
    # the default follows the backend: the fused kernel only where it exists
    assert type(zoo_speedrun.batch_normalization("auto")).__name__ == "BatchNormalization"
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    assert type(zoo_speedrun.batch_normalization("auto")).__name__ == "FusedBatchNormalization"


@pytest.mark.unit
def test_speedrun_looks_at_five_views_when_it_predicts_and_one_when_it_trains():
    """test_views=5 (the default) is the same network with the same weights: training sees each image
    alone, exactly as test_views=1; predicting averages the class probabilities of the image and its
    copies shifted one pixel down, up, right and left, zeros filling the edge; the card says it costs
    five forward passes."""
    import keras
    import zoo_speedrun

    from zoo.anatomy import model_stats

    five, one = zoo_speedrun.build((28, 28, 1), 10), zoo_speedrun.build((28, 28, 1), 10, test_views=1)
    one.set_weights(five.get_weights())
    x = np.random.default_rng(2).random((6, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(five(x, training=True), one(x, training=True))

    def shifted(images, down, right):
        out = np.zeros_like(images)
        rows, cols = slice(max(down, 0), 28 + min(down, 0)), slice(max(right, 0), 28 + min(right, 0))
        out[:, rows, cols] = images[:, slice(max(-down, 0), 28 + min(-down, 0)), slice(max(-right, 0), 28 + min(-right, 0))]
        return out

    assert shifted(x, 1, 0)[:, 1:].tolist() == x[:, :-1].tolist() and not shifted(x, 1, 0)[:, 0].any()
    views = [shifted(x, down, right) for down, right in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))]
    expected = np.mean([np.asarray(one(v, training=False)) for v in views], axis=0)
    np.testing.assert_allclose(five(x, training=False), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(five.predict(x, verbose=0).sum(axis=1), 1, rtol=1e-5)  # still probabilities
    assert [type(layer).__name__ for layer in five.layers][::len(five.layers) - 1] == ["ShiftedViews", "AverageOfViews"]
    assert "ShiftedViews" not in [type(layer).__name__ for layer in one.layers]

    stats, plain = model_stats(five), model_stats(one)
    assert (stats.macs, stats.params, stats.test_time_views) == (plain.macs, plain.params, 5) and plain.test_time_views == 1
    assert stats.layers[0].arithmetic.startswith("predicting: 5 views of each image")
    assert keras.saving.get_registered_object("zoo_speedrun>ShiftedViews") is zoo_speedrun.ShiftedViews


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_speedrun_with_its_five_views_builds_trains_and_predicts_on_keras_other_backends(backend):
    """The views are Keras ops, not TensorFlow's: Keras infers their shapes without running them (JAX
    cannot trace a reshape of an unknown batch into five), and training sees the image alone there too."""
    import subprocess
    import sys

    pytest.importorskip(backend)
    script = """
import numpy as np, keras, zoo_speedrun
five, one = zoo_speedrun.build((28, 28, 1), 10), zoo_speedrun.build((28, 28, 1), 10, test_views=1)
one.set_weights(five.get_weights())
x = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
same = np.allclose(keras.ops.convert_to_numpy(five(x, training=True)), keras.ops.convert_to_numpy(one(x, training=True)))
p = five.predict(x, verbose=0)
five.compile("adam", "sparse_categorical_crossentropy")
five.fit(x, np.arange(4), epochs=1, verbose=0)
print(keras.backend.backend(), p.shape, same, bool(np.allclose(p.sum(axis=1), 1, atol=1e-5)))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": backend})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == f"{backend} (4, 10) True True"
