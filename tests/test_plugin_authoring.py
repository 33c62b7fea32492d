"""Writing a plugin: `zoo new`, `zoo check`, the zoo_check fixture, local plugins, versioning."""

import json
import os
import subprocess
import sys

import pytest
from conftest import run_zoo


@pytest.fixture
def scaffold(tmp_path):
    """`zoo new tiny-net`, pip-installed into a folder of its own: (project, env putting it on the path).

    Not into this environment: the other tests, run beside this one by pytest-xdist, would see
    a plugin appear in the middle of their listings."""
    result = run_zoo("new", "tiny-net", "--dir", tmp_path)
    assert result.returncode == 0, result.stderr
    root, site = tmp_path / "mnist-zoo-tiny-net", tmp_path / "site-packages"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                              "--target", str(site), str(root)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    return root, {"PYTHONPATH": str(site)}


@pytest.mark.process
def test_new_plugin_installs_lists_checks_tests_and_trains(scaffold, tmp_path):
    root, installed = scaffold
    assert {p.name for p in root.iterdir()} >= {"pyproject.toml", "README.md", "zoo_tiny_net", "tests"}
    listed = run_zoo("list", "--json", env=installed)
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "tiny-net")
    assert row["params"] == 56_714  # 160 + 4,640 + 800·64 + 64 + 650

    checked = run_zoo("check", "tiny-net", env=installed)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "overfits a batch" in checked.stdout and "✗" not in checked.stdout

    own_tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)],
                               capture_output=True, text=True, cwd=root, env={**os.environ, **installed})
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    assert "1 passed" in own_tests.stdout

    trained = run_zoo("train", "tiny-net", "--epochs", "2", "--limit", "3000", "--runs-dir", tmp_path / "runs",
                      "--json", env=installed)
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["test_accuracy"] > 0.5


def test_new_can_name_the_project_folder_and_ignores_build_leftovers(tmp_path, cli):
    made = cli("new", "lenet5", "--path", tmp_path / "lenet5")
    assert made.exit_code == 0, made.stderr
    root = tmp_path / "lenet5"
    assert (root / "zoo_lenet5" / "__init__.py").is_file()
    assert "*.egg-info/" in (root / ".gitignore").read_text()
    assert 'filterwarnings = ["ignore::DeprecationWarning"]' in (root / "pyproject.toml").read_text()
    assert "pip install -e /path/to/mnist-zoo" in (root / "README.md").read_text()
    assert cli("new", "lenet5", "--path", root).exit_code == 2  # never over an existing project


def test_new_refuses_bad_names_and_existing_folders(tmp_path, cli):
    assert cli("new", "Tiny Net", "--dir", tmp_path).exit_code == 2
    assert cli("new", "tiny", "--dir", tmp_path).exit_code == 0
    again = cli("new", "tiny", "--dir", tmp_path)
    assert again.exit_code == 2 and "already exists" in again.stderr


BAD_MODELS = '''
import keras
from zoo import hookimpl
from zoo.registry import Architecture, Recipe, Source

SRC = Source("contract failures", "tests", 2026)
RECIPE = Recipe(name="adam", optimizer={"class_name": "Adam", "learning_rate": 0.001},
                loss="sparse_categorical_crossentropy", batch_size=32, epochs=1, validation="none", source=SRC)

def no_softmax(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes)])

def frozen(input_shape, num_classes):
    model = keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(num_classes, activation="softmax")])
    model.trainable = False
    return model

def not_a_model(input_shape, num_classes):
    return "a string"

@hookimpl
def zoo_register_architectures(register):
    for name, build in (("no-softmax", no_softmax), ("frozen", frozen), ("not-a-model", not_a_model)):
        register(Architecture(name=name, title=name, summary="s", teaches="t", source=SRC,
                              input_kind="image", build=build, recipes=(RECIPE,)))
'''


def test_check_reports_each_broken_contract_in_one_line(tmp_path, cli):
    (tmp_path / "bad.py").write_text(BAD_MODELS)
    env = {"ZOO_PLUGINS_DIR": str(tmp_path)}
    result = cli("check", "no-softmax", "frozen", "not-a-model", "mlp", "--json", env=env)
    assert result.exit_code == 1
    reports = {r["model"]: {c["name"]: c for c in r["checks"]} for r in json.loads(result.stdout)}
    assert not reports["no-softmax"]["probabilities"]["ok"]
    assert not reports["frozen"]["overfits a batch"]["ok"]
    assert not reports["not-a-model"]["build"]["ok"] and "not a keras.Model" in reports["not-a-model"]["build"]["detail"]
    assert all(c["ok"] for c in reports["mlp"].values())
    assert "contract not met by no-softmax, frozen, not-a-model" in result.stderr

    listed = cli("list", "--json", env=env)
    assert listed.exit_code == 0
    names = {r["name"] for r in json.loads(listed.stdout)}
    assert "mlp" in names and "not-a-model" not in names
    assert "not-a-model: build() returned str" in listed.stderr
    failures = json.loads(cli("plugins", "--json", env=env).stdout)["failures"]
    build = [f for f in failures if f["stage"] == "build"]
    assert len(build) == 1 and "not-a-model: build() returned str" in build[0]["error"]
    assert build[0]["plugin"] == "bad" and "zoo check not-a-model" in build[0]["hint"]
    broken_train = cli("train", "not-a-model", "--limit", "100", "--runs-dir", tmp_path / "runs", env=env)
    assert broken_train.exit_code == 2
    assert broken_train.stderr.strip().splitlines()[-1].startswith("Error: not-a-model: build() returned str")


@pytest.mark.process
def test_plugin_api_version_and_unknown_hooks_are_reported(tmp_path):
    (tmp_path / "future.py").write_text("ZOO_API_VERSION = 99\n")
    (tmp_path / "odd.py").write_text(
        "from zoo import hookimpl\n\n@hookimpl\ndef zoo_register_optimizers(register):\n    pass\n")
    result = run_zoo("plugins", "--json", env={"ZOO_PLUGINS_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    failures = {f["plugin"]: f for f in json.loads(result.stdout)["failures"]}
    assert failures["future"]["stage"] == "api" and "API 99" in failures["future"]["error"]
    assert "zoo_register_optimizers" in failures["odd"]["error"]
    assert run_zoo("list", "--json", env={"ZOO_PLUGINS_DIR": str(tmp_path)}).returncode == 0


@pytest.mark.unit
def test_a_new_plugins_readme_names_no_package_registry(tmp_path):
    """The house rule: no registry's host anywhere; the package index is named, not linked."""
    from zoo.scaffold import create

    readme = (create("tiny-net", tmp_path) / "README.md").read_text()
    assert "mnist-zoo" in readme and "the package index" in readme and "://" not in readme
