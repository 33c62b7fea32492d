"""``zoo new``: a standalone, installable plugin project to start a new architecture from."""

from __future__ import annotations

from pathlib import Path

from zoo.errors import ZooError
from zoo.files import check_output_folder
from zoo.hookspecs import API_VERSION
from zoo.registry import MAX_NAME, is_model_name

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "mnist-zoo-{name}"
version = "0.1.0"
description = "The {name} architecture for mnist-zoo"
requires-python = ">=3.11"
dependencies = ["mnist-zoo"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This line is what makes `zoo list` find the plugin once it is installed.
[project.entry-points."mnist_zoo.architectures"]
{name} = "{package}"

[tool.setuptools]
packages = ["{package}"]

[tool.pytest.ini_options]
addopts = "-p no:cacheprovider"
# Keras, TensorFlow and NumPy warn about their own internals; mnist-zoo's tests hide them too.
filterwarnings = ["ignore::DeprecationWarning"]
'''

GITIGNORE = '''\
*.egg-info/
__pycache__/
.pytest_cache/
build/
dist/
runs/
'''

MODULE = '''\
"""{name} — a small CNN to start from. Edit this docstring first.

What it teaches: say in two sentences what a learner sees in this model that they
do not see in the others (the zoo shows this text in `zoo info {name}`).

Source: the article, paper or idea it comes from.

Two 3×3 convolutions with max pooling find strokes, a Dense(64) layer combines
them, softmax turns ten scores into probabilities: about 60k weights, 98% on MNIST
after a few epochs.
"""

import keras
from keras import layers

from zoo import Architecture, Recipe, Source, hookimpl

ZOO_API_VERSION = {api}  # the plugin API this file was written for

SOURCE = Source(title="Your article or paper", site="where it was published", year=None)


def build(input_shape, num_classes):
    """Return an uncompiled keras.Model; the zoo compiles it with a recipe."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),               # (28, 28, 1) for MNIST
            layers.Conv2D(16, (3, 3), activation="relu"),  # → 26×26×16
            layers.MaxPooling2D((2, 2)),                   # → 13×13×16
            layers.Conv2D(32, (3, 3), activation="relu"),  # → 11×11×32
            layers.MaxPooling2D((2, 2)),                   # → 5×5×32
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="{package}",
    )


RECIPE = Recipe(
    name="default",
    # Spell out every optimizer parameter: library defaults change between versions.
    optimizer={{"class_name": "Adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}},
    loss="sparse_categorical_crossentropy",  # integer labels; categorical_crossentropy for one-hot
    batch_size=128,
    epochs=3,
    validation="none",
    source=SOURCE,
)


@hookimpl
def zoo_register_architectures(register):
    register(
        Architecture(
            name="{name}",
            title="{title}",
            summary="A small two-block CNN: a starting point for your own architecture.",
            teaches="How few weights a convolutional network needs to read digits well.",
            source=SOURCE,
            input_kind="image",  # "flat" to receive 784-vectors instead of 28×28×1 images
            build=build,
            recipes=(RECIPE,),
            tags=("cnn", "community"),
            notes=("Replace these notes with what a learner should notice in your model.",),
        )
    )
'''

TEST = '''\
"""The zoo's plugin contract, through the `zoo_check` fixture that mnist-zoo installs."""


def test_{package}_meets_the_zoo_contract(zoo_check):
    report = zoo_check("{name}")
    assert report.ok
'''

README = '''\
# mnist-zoo-{name}

An architecture plugin for mnist-zoo.

Until mnist-zoo is on the package index, install it from its checkout first, in the same
environment: `pip install -e /path/to/mnist-zoo` (then `dependencies = ["mnist-zoo"]`
below is already met).

```bash
pip install -e '.[test]'    # now `zoo list` shows {name}; [test] brings pytest for its test
zoo check {name}             # the plugin contract: builds, outputs, recipes, overfits a batch, saves
pytest                       # the same contract, through the zoo_check fixture
zoo train {name}             # train it with its recipe
zoo compare {name} baseline-cnn --epochs 1
```

Edit `{package}/__init__.py`: the docstring (what your model teaches and where it
comes from), `build()`, and the recipe. Offline, point the zoo at MNIST with
`ZOO_DATA_DIR=/folder/with/mnist.npz`.
'''


def create(name: str, directory: Path, path: Path | None = None) -> Path:
    """Write the project into ``directory/mnist-zoo-NAME``, or exactly into ``path``."""
    if not is_model_name(name):  # the registry's rule: what users type, and a folder name
        shown = repr(name)[:70] + ("…" if len(repr(name)) > 70 else "")
        raise ZooError(f"plugin name {shown}: use lower-case letters, digits and single hyphens, at most "
                       f"{MAX_NAME} characters, e.g. 'tiny-net'")
    package = "zoo_" + name.replace("-", "_")
    root = Path(path) if path is not None else Path(directory) / f"mnist-zoo-{name}"
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ZooError(f"{root} already exists; pick another --dir, --path or name")
    check_output_folder(root, "folder for the project")
    title = name  # as typed: "res-cnn", not "Res cnn"
    values = {"name": name, "package": package, "title": title, "api": API_VERSION}
    files = {
        "pyproject.toml": PYPROJECT,
        f"{package}/__init__.py": MODULE,
        f"tests/test_{package}.py": TEST,
        "README.md": README,
        ".gitignore": GITIGNORE,
    }
    try:
        for relative, template in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.format(**values), encoding="utf-8")
    except OSError as exc:  # a full disk mid-way: say so, and what is left
        raise ZooError(f"cannot write the project into {root} ({exc.strerror or exc}); remove what was "
                       f"written there and try again") from None
    return root
