"""mnist-zoo: a teaching model zoo of classic MNIST classifiers.

In a notebook or a script, the verbs::

    import zoo
    zoo.list_models("*cnn*")
    c = zoo.compare(["mlp", "speedrun"], seeds=3)   # each with its full recipe
    c                    # the table, inline; c.rows, c.figure("pareto"), c.report()

A plugin author needs only the description types::

    @zoo.hookimpl
    def zoo_register_architectures(register):
        register(zoo.Architecture(...))

Importing it is cheap: nothing here imports Keras or TensorFlow until a verb needs them
(the verbs live in ``zoo.api``, and are loaded on first use).
"""

import os as _os

# TensorFlow's C++ start-up notices (oneDNN, CPU features), printed at its first import, say
# nothing a learner can act on: quiet unless TF_CPP_MIN_LOG_LEVEL is set. Set before anything
# imports TensorFlow, so a notebook that imports zoo first never shows them.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "ipykernel" in __import__("sys").modules:  # a notebook: its own `import keras` is quiet too
    from zoo.keras_glue import quiet_tensorflow_import_in_notebooks

    quiet_tensorflow_import_in_notebooks()

import importlib

from zoo import settings  # noqa: E402  (zoo.settings.using(data_dir=...) in a notebook)
from zoo.errors import (
    DataError,
    Interrupted,
    OptionError,
    RunFileError,
    TrainingError,
    UnknownNameError,
    ZooError,
)
from zoo.hookspecs import hookimpl
from zoo.registry import (
    Architecture,
    Dataset,
    Experiment,
    Knob,
    Published,
    Recipe,
    Source,
)
from zoo.version import __version__

# The user's verbs and result types, and the module that holds each: imported when first used.
_LAZY = {
    "list_models": "zoo.api", "info": "zoo.api", "register": "zoo.api", "train": "zoo.api",
    "compare": "zoo.api", "resume": "zoo.api", "load": "zoo.api", "evaluate": "zoo.api",
    "predict": "zoo.api", "explain": "zoo.api", "report": "zoo.api", "experiments": "zoo.api",
    "experiment": "zoo.api", "serve": "zoo.api", "pretrained": "zoo.api", "export": "zoo.api",
    "architecture": "zoo.api", "build": "zoo.api", "installed_plugins": "zoo.api",
    "datasets": "zoo.api", "add_dataset": "zoo.api", "remove_dataset": "zoo.api", "check_models": "zoo.api",
    "Run": "zoo.results", "Comparison": "zoo.results",
}
VERBS = tuple(name for name, module in _LAZY.items() if module == "zoo.api")


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once loaded, an ordinary attribute
        return value
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["settings", "hookimpl", "Architecture", "Experiment", "Knob", "Recipe", "Source", "Published", "Dataset", "ZooError", "OptionError",
           "UnknownNameError", "DataError", "RunFileError", "TrainingError", "Interrupted", "__version__",
           *_LAZY]
