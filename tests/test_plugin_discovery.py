"""Third-party plugins are found through entry points; broken ones are isolated."""

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_zoo

GOOD_PLUGIN = '''
import keras
from zoo import hookimpl
from zoo.registry import Architecture, Recipe, Source

SRC = Source("A throwaway test plugin", "tests", 2026)

def build(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])

@hookimpl
def zoo_register_architectures(register):
    register(Architecture(
        name="tiny-logreg", title="Logistic regression", summary="One Dense layer.",
        teaches="Softmax regression.", source=SRC, input_kind="image", build=build,
        recipes=(Recipe(name="sgd", optimizer={"class_name": "SGD", "learning_rate": 0.1},
                        loss="sparse_categorical_crossentropy", batch_size=32, epochs=1,
                        validation="none", source=SRC),),
        tags=("test",)))
'''


def make_distribution(root, dist, version, entry_points: dict[str, str], modules: dict[str, str]):
    """A minimal installed distribution: a *.dist-info folder plus modules, on sys.path via PYTHONPATH."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[mnist_zoo.architectures]\n{lines}\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


@pytest.mark.process
def test_third_party_plugin_is_discovered(tmp_path):
    make_distribution(tmp_path, "zoo-tiny", "0.3.1", {"tiny-logreg": "zoo_tiny"}, {"zoo_tiny": GOOD_PLUGIN})
    result = run_zoo("list", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["tiny-logreg"]["params"] == 7_850  # 784 × 10 + 10
    assert "mlp" in rows
    plugins = json.loads(run_zoo("plugins", "--json", env={"PYTHONPATH": str(tmp_path)}).stdout)
    tiny = next(p for p in plugins["plugins"] if p["name"] == "tiny-logreg")
    assert (tiny["distribution"], tiny["version"]) == ("zoo-tiny", "0.3.1")


@pytest.mark.process
def test_broken_plugins_are_isolated(tmp_path):
    make_distribution(
        tmp_path, "zoo-broken", "1.0",
        {"explodes-on-import": "zoo_explodes", "hook-raises": "zoo_hook_raises",
         "not-a-model": "zoo_not_a_model", "duplicate": "zoo_duplicate"},
        {
            "zoo_explodes": "raise RuntimeError('kaboom at import')\n",
            "zoo_hook_raises": """
                from zoo import hookimpl
                @hookimpl
                def zoo_register_architectures(register):
                    raise ValueError('hook went wrong')
            """,
            "zoo_not_a_model": """
                from zoo import hookimpl
                @hookimpl
                def zoo_register_architectures(register):
                    register("just a string")
            """,
            "zoo_duplicate": GOOD_PLUGIN.replace("tiny-logreg", "mlp"),
        },
    )
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_zoo("list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    names = [r["name"] for r in json.loads(result.stdout)]
    assert {"mlp", "keras1-cnn", "baseline-cnn", "keras-docs-cnn", "deep-bn-cnn"} <= set(names)
    assert names.count("mlp") == 1
    assert "kaboom at import" in result.stderr and "Traceback" not in result.stderr

    failures = json.loads(run_zoo("plugins", "--json", env=env).stdout)["failures"]
    by_plugin = {f["plugin"]: f for f in failures}
    assert by_plugin["explodes-on-import"]["stage"] == "import"
    assert "RuntimeError: kaboom at import" in by_plugin["explodes-on-import"]["error"]
    assert by_plugin["explodes-on-import"]["distribution"] == "zoo-broken"
    assert by_plugin["hook-raises"]["stage"] == "hook"
    assert "hook went wrong" in by_plugin["hook-raises"]["error"]
    assert "Architecture" in by_plugin["not-a-model"]["error"]
    assert "already registered" in by_plugin["duplicate"]["error"]

    table = run_zoo("plugins", env=env)
    assert table.returncode == 0 and "kaboom" in table.stdout


@pytest.mark.process
def test_disable_and_plugins_dir(tmp_path):
    (tmp_path / "local_tiny.py").write_text(GOOD_PLUGIN)
    (tmp_path / "raises.py").write_text("raise ImportError('local plugin is broken')\n")
    result = run_zoo("list", "--json", env={"ZOO_PLUGINS_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "tiny-logreg" in {r["name"] for r in json.loads(result.stdout)}
    assert "local plugin is broken" in result.stderr
    result = run_zoo("list", "--json", env={"ZOO_PLUGINS_DIR": str(tmp_path), "ZOO_DISABLE_PLUGINS": "raises,mlp"})
    names = {r["name"] for r in json.loads(result.stdout)}
    assert "mlp" not in names and "tiny-logreg" in names
    assert "local plugin is broken" not in result.stderr


@pytest.mark.process
def test_the_core_tests_pass_with_a_third_party_plugin_installed(tmp_path):
    """A new user's residual-CNN plugin, installed beside mnist-zoo, turned `zoo list '*cnn*'`'s
    test red: the core's tests now set third-party plugins aside (tests/conftest.py)."""
    import subprocess

    make_distribution(tmp_path, "zoo-res-cnn", "0.1", {"res-cnn": "zoo_res_cnn"},
                      {"zoo_res_cnn": GOOD_PLUGIN.replace("tiny-logreg", "res-cnn")})
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("ZOO_DISABLE_PLUGINS", None)
    listed = run_zoo("list", "*cnn*", "--json", env={"PYTHONPATH": str(tmp_path), "ZOO_DISABLE_PLUGINS": ""})
    assert "res-cnn" in {r["name"] for r in json.loads(listed.stdout)}  # it is there for users
    tests = Path(__file__).resolve().parent
    result = subprocess.run([sys.executable, "-m", "pytest", str(tests / "test_cli_registry.py"),
                             "-k", "patterns_and_tags or list_table or info_explains"],
                            capture_output=True, text=True, env=env, cwd=tests.parent, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "plugins set aside for the core's tests: res-cnn" in result.stdout
