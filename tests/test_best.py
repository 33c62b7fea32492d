"""The `best` model's three tools do what its card says: augmentation in training only,
weight averaging over a fraction of the run, and real learning on real MNIST."""

import numpy as np
import pytest


def test_augmentation_changes_training_images_only(zoo_registry, mnist):
    import keras

    from zoo import data
    from zoo.anatomy import build_model

    keras.utils.set_random_seed(0)
    model = build_model(zoo_registry.architecture("best"))
    augment = keras.Sequential([layer for layer in model.layers if layer.name.startswith("random_")])
    assert len(augment.layers) == 3  # rotation, zoom, translation
    x = data.prepare_x(mnist.x_test[:64], "image")
    np.testing.assert_array_equal(np.asarray(augment(x, training=False)), x)
    moved = np.asarray(augment(x, training=True))
    assert np.abs(moved - x).mean() > 0.01
    # The digit is moved, not erased or painted over: the ink stays about the same.
    assert moved.sum() == pytest.approx(x.sum(), rel=0.15)
    # Predictions are deterministic: the random layers are off at inference.
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.unit
def test_weight_average_spans_a_fraction_of_the_run(zoo_registry):
    recipe = zoo_registry.architecture("best").recipe()
    full = recipe.build_optimizer(total_steps=20 * 422)
    assert full.use_ema and full.ema_momentum == pytest.approx(1 - 1 / 844)
    # A one-epoch quick run averages over its own last tenth, not its random start.
    quick = recipe.build_optimizer(total_steps=422)
    assert quick.ema_momentum == pytest.approx(1 - 1 / 42.2)
    with pytest.raises(ValueError, match="total_steps"):
        recipe.build_optimizer()


@pytest.mark.unit
def test_weight_average_is_refused_outside_0_1():
    from zoo.registry import Recipe, Source

    with pytest.raises(ValueError, match="weight_average"):
        Recipe(name="x", optimizer={"class_name": "Adam"}, loss="sparse_categorical_crossentropy",
               batch_size=32, epochs=1, validation="none", source=Source("t", "tests", 2026),
               weight_average=1.5)


@pytest.mark.slow  # 80 s on the project's 2-core AVX2 CPU
def test_best_learns_and_ends_with_averaged_weights(zoo_registry, mnist):
    """500 steps on 8,000 real images: well above chance, and the final weights are the average."""
    import keras

    from zoo import data
    from zoo.anatomy import build_model

    arch = zoo_registry.architecture("best")
    recipe = arch.recipe()
    x = data.prepare_x(mnist.x_train[:8000], "image")
    y = data.prepare_y(mnist.y_train[:8000], recipe.labels, 10)
    keras.utils.set_random_seed(0)
    model = build_model(arch)
    optimizer = recipe.build_optimizer(total_steps=2 * 250)
    model.compile(optimizer=optimizer, loss=recipe.loss, metrics=["accuracy"])
    # Batch 32 for enough steps: batch norm's moving statistics (momentum 0.99) need a few
    # hundred to forget their start (after 189 steps of batch 128, inference was at chance).
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    for weight, average in zip(model.trainable_variables, optimizer._model_variables_moving_average):
        np.testing.assert_array_equal(np.asarray(weight), np.asarray(average))
    x_test = data.prepare_x(mnist.x_test[:2000], "image")
    accuracy = (model.predict(x_test, verbose=0).argmax(1) == mnist.y_test[:2000]).mean()
    assert accuracy > 0.85
