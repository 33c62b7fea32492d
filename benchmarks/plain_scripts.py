"""The seed articles' training scripts in plain Keras 3, written without the zoo.

These are the baselines the benchmark times the zoo against: what a learner gets by
copying the article (translated to Keras 3 with the article's own optimizer values,
since Keras 3 defaults differ), feeding NumPy arrays to ``fit``. Being written
independently of the plugins, they also cross-check the plugins' layers: the
benchmark asserts both build the same number of parameters.

Run one on its own, as a learner would:

    python benchmarks/plain_scripts.py baseline-cnn --epochs 3 --data mnist.npz
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402


def mlp():  # article 000, part 1
    model = keras.Sequential([keras.Input((784,)), layers.Dense(32), layers.Activation("relu"),
                              layers.Dense(10), layers.Activation("softmax")])
    opt = keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-8)
    return model, opt, "categorical_crossentropy", 32, "flat"


def keras1_cnn():  # article 000, part 2
    model = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(32, (3, 3), padding="same"), layers.Activation("relu"),
        layers.Conv2D(32, (3, 3)), layers.Activation("relu"), layers.MaxPooling2D((2, 2)), layers.Dropout(0.25),
        layers.Flatten(), layers.Dense(128), layers.Activation("relu"), layers.Dropout(0.5),
        layers.Dense(10), layers.Activation("softmax")])
    return model, keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-7), \
        "categorical_crossentropy", 128, "image"


def baseline_cnn():  # article 001
    model = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(32, (5, 5), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.3), layers.Flatten(), layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax")])
    return model, keras.optimizers.Adam(), "categorical_crossentropy", 200, "image"


def keras_docs_cnn(recipe="adam"):  # articles 002 (adam) and 004 (adadelta)
    model = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(32, (3, 3), activation="relu"),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)), layers.Dropout(0.25),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax")])
    if recipe == "adam":
        return model, keras.optimizers.Adam(), "sparse_categorical_crossentropy", 128, "image"
    return model, keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-7), \
        "categorical_crossentropy", 128, "image"


def deep_bn_cnn(axis=1):  # article 003
    model = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(32, (3, 3)), layers.Activation("relu"), layers.MaxPool2D((2, 2)),
        layers.ZeroPadding2D((1, 1)), layers.Conv2D(48, (3, 3)), layers.Activation("relu"),
        layers.BatchNormalization(epsilon=1e-6, axis=axis), layers.MaxPool2D((2, 2)),
        layers.ZeroPadding2D((1, 1)), layers.Conv2D(64, (2, 2)), layers.Activation("relu"),
        layers.BatchNormalization(epsilon=1e-6, axis=axis), layers.MaxPool2D((2, 2)), layers.Dropout(0.25),
        layers.Flatten(), layers.Dense(3168), layers.Activation("relu"), layers.Dense(10),
        layers.Activation("softmax")])
    return model, keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-7), \
        "categorical_crossentropy", 64, "image"


SCRIPTS = {
    ("mlp", "article"): mlp,
    ("keras1-cnn", "article"): keras1_cnn,
    ("baseline-cnn", "article"): baseline_cnn,
    ("keras-docs-cnn", "adam"): lambda: keras_docs_cnn("adam"),
    ("keras-docs-cnn", "adadelta"): lambda: keras_docs_cnn("adadelta"),
    ("deep-bn-cnn", "article"): deep_bn_cnn,
}


def article_arrays(x, y, kind, loss):
    """Reshape, scale and encode as the articles do."""
    x = x.astype("float32") / 255.0
    x = x.reshape(len(x), -1) if kind == "flat" else x.reshape(len(x), 28, 28, 1)
    y = y.astype("int32") if loss.startswith("sparse") else keras.utils.to_categorical(y, 10)
    return x, y


class EpochSeconds(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def run(key, x_train, y_train, x_val, y_val, epochs, seed=42):
    """Train as the article does; returns (model, per-epoch seconds)."""
    keras.utils.set_random_seed(seed)
    model, optimizer, loss, batch_size, kind = SCRIPTS[key]()
    model.compile(loss=loss, optimizer=optimizer, metrics=["accuracy"])
    xt, yt = article_arrays(x_train, y_train, kind, loss)
    xv, yv = article_arrays(x_val, y_val, kind, loss)
    timer = EpochSeconds()
    model.fit(xt, yt, batch_size=batch_size, epochs=epochs, verbose=0, validation_data=(xv, yv), callbacks=[timer])
    return model, timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted({m for m, _ in SCRIPTS}))
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", required=True, help="path to mnist.npz")
    args = parser.parse_args()
    recipe = args.recipe or next(r for m, r in SCRIPTS if m == args.model)
    with np.load(args.data) as d:
        x_train, y_train, x_test, y_test = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
    model, seconds = run((args.model, recipe), x_train, y_train, x_test, y_test, args.epochs)
    kind, loss = SCRIPTS[(args.model, recipe)]()[4], SCRIPTS[(args.model, recipe)]()[2]
    score = model.evaluate(*article_arrays(x_test, y_test, kind, loss), verbose=0)
    print(f"{args.model}/{recipe}: {' '.join(f'{s:.1f}' for s in seconds)} s per epoch; "
          f"test loss {score[0]:.4f}, accuracy {score[1]:.4f}")


if __name__ == "__main__":
    main()
