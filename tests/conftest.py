"""Shared fixtures: real MNIST from the project's data directory, and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests' model-stats and listing caches live in a folder of their own, not the user's.
os.environ.setdefault("ZOO_CACHE_DIR", tempfile.mkdtemp(prefix="zoo-test-cache-"))
# Folders named by `zoo data add` are remembered in a config folder: the tests' own, too.
os.environ.setdefault("ZOO_CONFIG_DIR", tempfile.mkdtemp(prefix="zoo-test-config-"))
# pytest-xdist's workers inherit COLUMNS=80 from the controller; the CLI tests read the output as a
# pipe gets it (160 columns, zoo.console.PIPE_WIDTH), whichever way pytest runs them.
os.environ.pop("COLUMNS", None)


def _own_plugins_only() -> list[str]:
    """The core's tests pick their own plugin set: mnist-zoo's built-in plugins. A third-party
    plugin installed beside it (a user's res-cnn once turned `zoo list '*cnn*'` red), or a
    plugins folder in the environment, would change every listing; the tests that are about
    third-party plugins install their own, in fresh processes. Returns what was set aside."""
    from zoo.isolation import DISABLE_ENV
    from zoo.plugins import (
        GROUPS,
        PLUGINS_DIR_ENV,
        THIS_DISTRIBUTION,
        _normalized,
        ordered_entry_points,
    )

    foreign = sorted({ep.name for group in GROUPS for ep in ordered_entry_points(group)
                      if not ep.dist or _normalized(ep.dist.name) != THIS_DISTRIBUTION})
    if foreign:
        given = [n for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
        os.environ[DISABLE_ENV] = ",".join(dict.fromkeys(given + foreign))
    if os.environ.pop(PLUGINS_DIR_ENV, None):
        foreign.append(f"the plugins folder in ${PLUGINS_DIR_ENV}")
    return foreign


SET_ASIDE = _own_plugins_only()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject.toml): a worker per core, at most 4. Each holds its own TensorFlow
    (about 1.5 GB) and trains on every core; two on 2 cores overlap one's tracing, plotting and
    statistics (Python, one core) with the other's training."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def pytest_report_header(config):
    if SET_ASIDE:
        return f"mnist-zoo: plugins set aside for the core's tests: {', '.join(SET_ASIDE)}"
    return None


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST, found the way users find it: ZOO_DATA_DIR (CI points it at ../shared/data),
    else Keras's cache, else Keras's download."""
    from zoo import data
    from zoo.errors import ZooError
    from zoo.plugins import get_zoo

    try:
        return data.load(get_zoo().dataset("mnist"))
    except ZooError as exc:
        pytest.fail(f"the tests need real MNIST: {exc}")


@pytest.fixture(scope="session")
def mnist_npz(mnist, tmp_path_factory):
    """A data directory holding mnist.npz written from the real arrays (for CLI runs)."""
    import numpy as np

    folder = tmp_path_factory.mktemp("mnist-data")
    np.savez_compressed(folder / "mnist.npz", x_train=mnist.x_train, y_train=mnist.y_train,
                        x_test=mnist.x_test, y_test=mnist.y_test)
    return folder


@pytest.fixture(scope="session")
def mnist_runs(tmp_path_factory):
    """A comparison of an MLP and a CNN, one epoch on 3,000 real MNIST images: models to re-test,
    serve and read digits with."""
    from typer.testing import CliRunner

    from zoo.cli import app

    root = tmp_path_factory.mktemp("mnist-runs")
    result = CliRunner().invoke(app, ["compare", "mlp", "baseline-cnn", "--epochs", "1", "--limit", "3000",
                                      "--runs-dir", str(root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(root.glob("compare-*"))


@pytest.fixture(scope="session")
def zoo_registry():
    from zoo.plugins import get_zoo

    return get_zoo()


@pytest.fixture
def cli():
    """Run the real `zoo` command in-process; returns click's Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from zoo.cli import app

    runner = CliRunner()

    def run(*args, env=None):
        return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    return run


def run_zoo(*args, env=None, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """Run `python -m zoo` in a fresh process (for plugin discovery and exit codes)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def minimal_plugin(model: str, batch_size: int = 32) -> str:
    """The source of a one-file plugin registering ``model``: one Dense layer, one SGD recipe."""
    return f'''
import keras
import zoo
SRC = zoo.Source({model!r}, "tests", 2026)

@zoo.hookimpl
def zoo_register_architectures(register):
    register(zoo.Architecture(name={model!r}, title="x", summary="s", teaches="t", source=SRC,
        input_kind="flat", build=lambda shape, k: keras.Sequential([keras.Input(shape),
        keras.layers.Dense(k, activation="softmax")]),
        recipes=(zoo.Recipe(name="r", optimizer={{"class_name": "SGD"}}, loss="categorical_crossentropy",
                            batch_size={batch_size}, epochs=1, validation="none", source=SRC),)))
'''


def chromium_path() -> str | None:
    """The system's Chromium for the browser tests (Playwright drives it), or None."""
    import shutil
    from pathlib import Path

    for candidate in (os.environ.get("ZOO_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None
