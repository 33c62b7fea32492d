"""The shape of the library: one plugin namespace, the job API and its events, typed run
records, race-free run directories, switchable fast paths, options checked once, the
model-stats cache, and the import rules (nothing imports the CLI; training draws nothing)."""

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import minimal_plugin, run_zoo

ZOO = Path(__file__).resolve().parents[1] / "zoo"


def test_import_zoo_gives_the_plugin_namespace_without_keras():
    code = ("import sys, zoo\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "print(sorted(n for n in ('hookimpl', 'Architecture', 'Recipe', 'Source', 'Published', 'Dataset') "
            "if hasattr(zoo, n)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['Architecture',", "'Dataset',", "'Published',", "'Recipe',", "'Source',",
                                   "'hookimpl']"]
    import zoo
    from zoo import registry

    assert zoo.Dataset is registry.Dataset
    assert zoo.Architecture is registry.Architecture


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ZOO.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ZOO.parent / relative).with_suffix(".py").is_file() or (ZOO.parent / relative / "__init__.py").is_file()


def import_graph() -> dict[str, set[str]]:
    """zoo's modules and the zoo modules each imports, counting imports inside functions
    (what hides a circle) and leaving out ``if TYPE_CHECKING:`` blocks (never run)."""
    graph = {}
    for path in ZOO.rglob("*.py"):
        tree = ast.parse(path.read_text())
        skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        edges = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("zoo")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "zoo":
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if _is_module(sub) else node.module)
        name = _module_name(path)
        graph[name] = {e for e in edges if e != name and _is_module(e)}
    return graph


@pytest.mark.unit
def test_no_import_circles_among_zoos_modules():
    """Imports point one way (cli → api → comparing → executors → jobs → data, runs → types): a
    circle, even through an import inside a function, is a design error this test names."""
    graph = import_graph()
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not circles, f"import circles: {circles}"
    assert graph["zoo.types"] <= {"zoo.errors"}  # the value types import nothing of the zoo but its errors
    assert not graph["zoo.executors.base"] & {"zoo.executors.local", "zoo.executors.dask"}


def _fake_zoo(tmp_path, monkeypatch, files: dict) -> Path:
    """A package named zoo of these files, which the structure checks below then read instead."""
    package = tmp_path / "zoo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "ZOO", package)
    return package


@pytest.mark.unit
def test_the_checker_sees_a_circle_hidden_in_a_function(tmp_path, monkeypatch):
    """The circle test is real: two modules importing each other inside functions are found."""
    _fake_zoo(tmp_path, monkeypatch, {"a.py": "def f():\n    from zoo.b import g\n",
                                      "b.py": "def g():\n    from zoo import a\n"})
    with pytest.raises(AssertionError, match="import circles"):
        test_no_import_circles_among_zoos_modules()


@pytest.mark.unit
def test_import_directions():
    """Nothing imports the CLI but __main__; training code imports no display, console or figures."""
    for path in ZOO.rglob("*.py"):
        if "cli" not in path.relative_to(ZOO).parts and path.name != "__main__.py":
            assert "zoo.cli" not in _imports(path), path
    for name in ("jobs.py", "executors/__init__.py", "executors/base.py", "executors/local.py", "executors/dask.py",
                 "callbacks.py", "runs.py", "keras_glue.py", "data.py", "types.py"):
        imported = _imports(ZOO / name)
        for forbidden in ("zoo.figures", "zoo.console", "zoo.progress", "matplotlib", "rich"):
            assert not any(i == forbidden or i.startswith(forbidden + ".") for i in imported), (name, forbidden)


def test_run_job_emits_events_and_returns_a_typed_record(zoo_registry, mnist, tmp_path):
    from zoo.jobs import make_jobs, prepare, run_job
    from zoo.runs import SCHEMA, RunRecord, read_predictions, read_record
    from zoo.types import Options

    options = Options(epochs=2, limit=1000)
    job = make_jobs([zoo_registry.architecture("mlp")], options, seeds=[7])[0]
    assert (job.recipe, job.epochs, job.batch_size, job.seed) == ("article", 2, 32, 7)
    events = []
    record = run_job(job, prepare(zoo_registry, options, split_seed=7), tmp_path, events.append)
    assert isinstance(record, RunRecord) and record.status == "completed" and record.seed == 7
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("epoch_started") == kinds.count("epoch_ended") == 2
    # 900 training images / batch 32 = 29 steps per epoch (reported per compiled call of 64 steps)
    last_steps = [events[i - 1].step for i, k in enumerate(kinds) if k == "epoch_ended"]
    assert last_steps == [29, 29] and kinds.count("step") >= 2
    assert events[0].epochs == 2 and events[0].steps == 29
    ended = [e for e in events if e.kind == "epoch_ended"]
    assert "val_accuracy" in ended[-1].metrics and ended[-1].seconds > 0
    assert events[-1].record is record

    # What it cost in arithmetic: 6 FLOPs per MAC per training image, and against this CPU's own peak.
    assert record.cost["training_flops"] == 6 * record.macs * 900 * 2
    assert len(record.cost["gflops_per_second"]) == 2 and all(r > 0 for r in record.cost["gflops_per_second"])
    cpu = record.environment["cpu"]
    assert cpu["isa"] and cpu["cores"] >= 1
    assert "fp32 lanes" in cpu["derivation"] or cpu["gflops"] is None  # a peak says how it was derived
    if cpu["gflops"]:
        assert record.cost["share_of_peak"] == pytest.approx([r / cpu["gflops"] for r in record.cost["gflops_per_second"]])

    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["schema"] == SCHEMA and "run_dir" not in saved
    again = read_record(tmp_path)
    assert again.test_accuracy == record.test_accuracy and again.run_dir == str(tmp_path)
    predictions = read_predictions(tmp_path)
    assert predictions["predicted"].shape == (10_000,) and predictions["test_sha256"] == record.dataset.test_sha256
    assert (predictions["predicted"] == mnist.y_test).mean() == pytest.approx(record.test_accuracy)
    # Figures are drawn from the finished record by whoever wants them, not by training.
    assert not list(tmp_path.glob("*.png"))


def test_draws_from_pythons_random_elsewhere_do_not_change_the_trained_model(zoo_registry, mnist, tmp_path):
    """Keras seeds unseeded layers from Python's global random; in a Dask worker the event
    loop draws from it too, at times that vary. Here a draw lands between the seeding and
    the build, every time: the job's model must not change."""
    import dataclasses
    import random

    from zoo.jobs import make_jobs, prepare, run_job
    from zoo.types import Options

    options = Options(epochs=1, limit=1000)
    job = make_jobs([zoo_registry.architecture("mlp")], options, seeds=[3])[0]
    prepared = prepare(zoo_registry, options)
    alone = run_job(job, prepared, tmp_path / "alone", registry=zoo_registry)

    mlp = zoo_registry.architecture("mlp")

    def build_after_a_draw(input_shape, num_classes, **knobs):
        random.random()  # what another thread may do at any moment
        return mlp.build(input_shape, num_classes, **knobs)

    class Crowded:
        def architecture(self, name):
            return dataclasses.replace(mlp, build=build_after_a_draw)

    crowded = run_job(job, prepared, tmp_path / "crowded", registry=Crowded())
    assert crowded.test_accuracy == alone.test_accuracy and crowded.test_loss == alone.test_loss


@pytest.mark.process
def test_training_loads_no_display_console_or_figures(mnist_npz, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from zoo.plugins import get_zoo
        from zoo.jobs import prepare, run_job
        from zoo.jobs import make_jobs
        from zoo.types import Options
        zoo = get_zoo()
        options = Options(epochs=1, limit=500, data_dir={str(mnist_npz)!r})
        job = make_jobs([zoo.architecture("mlp")], options)[0]
        record = run_job(job, prepare(zoo, options), {str(tmp_path)!r})
        loaded = [m for m in ("zoo.figures", "zoo.console", "zoo.progress", "zoo.cli") if m in sys.modules]
        print(record.status, loaded)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "completed []"


def test_old_run_records_still_read(tmp_path, mnist):
    """A run.json from mnist-zoo 0.1 (no schema field, source.seed) reads as schema 2."""
    from zoo.runs import SCHEMA, read_record

    old = {"model": "mlp", "title": "MLP", "recipe": "article", "status": "completed", "seed": 42,
           "started_at": "2026-11-01T10:00:00+00:00", "command": None,
           "execution": {"steps_per_execution": 64, "jit_compile": False, "precision": "float32"},
           "hyperparameters": {"batch_size": 32, "epochs": 2}, "overrides": {},
           "dataset": {"name": "mnist", "source": "data dir", "class_names": [str(i) for i in range(10)],
                       "image_shape": [28, 28, 1]},
           "input_kind": "flat", "output": "probabilities", "data_preparation": "flat",
           "split": {"validate_on": "val", "train": 54000, "validation": 6000, "test": 10000, "limit": None,
                     "seed": 42, "article_validated_on": "none"},
           "params": 25450, "trainable_params": 25450, "macs": 25408, "published": None,
           "source": {"title": "Keras之MNIST识别", "seed": "000_378691a82c87a757.txt", "url": ""},
           "environment": {"backend": "tensorflow"}, "training_seconds": 10.0, "epochs_completed": 2,
           "epoch_seconds": [5.0, 5.0], "seconds_per_epoch": 5.0, "best_val_accuracy": 0.95, "best_epoch": 2,
           "test_accuracy": 0.9523, "test_loss": 0.16, "per_class_accuracy": [0.95] * 10,
           "confusion_matrix": [[1] * 10] * 10, "finished_at": "2026-11-01T10:00:10+00:00"}
    (tmp_path / "run.json").write_text(json.dumps(old))
    record = read_record(tmp_path)
    assert record.schema == SCHEMA and record.source.article_file == "000_378691a82c87a757.txt"
    assert record.test_accuracy == 0.9523 and record.dataset.test_sha256 is None


@pytest.mark.parametrize("change, message", [
    (lambda r: [r], "not a run record (a JSON list"),
    (lambda r: {k: v for k, v in r.items() if k != "model"}, "model: Field required"),
    (lambda r: {**r, "test_accuracy": "high"}, "test_accuracy: Input should be a valid number"),
    (lambda r: {**r, "split": None}, "split: Input should be an object"),
    (lambda r: {**r, "schema": 99}, "schema 99"),
])
def test_a_malformed_run_record_is_one_line_naming_the_file(tmp_path, change, message):
    from zoo.errors import ZooError
    from zoo.runs import read_record

    good = {"model": "mlp", "recipe": "article", "status": "completed", "seed": 42, "input_kind": "flat",
            "dataset": {"name": "mnist", "class_names": [str(i) for i in range(10)], "image_shape": [28, 28, 1]},
            "split": {"validate_on": "val", "train": 9, "validation": 1, "test": 10, "seed": 42}}
    read_record_ok = tmp_path / "ok"
    read_record_ok.mkdir()
    (read_record_ok / "run.json").write_text(json.dumps(good))
    assert read_record(read_record_ok).model == "mlp"
    (tmp_path / "run.json").write_text(json.dumps(change(good)))
    with pytest.raises(ZooError) as info:
        read_record(tmp_path)
    assert str(tmp_path / "run.json") in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_new_run_dir_is_race_free_and_stays_inside(tmp_path):
    from zoo.errors import ZooError
    from zoo.runs import new_run_dir

    code = ("import sys; from zoo.runs import new_run_dir\n"
            "print('\\n'.join(str(new_run_dir(sys.argv[1], 'run')) for _ in range(25)))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    made = [line for p in procs for line in p.communicate(timeout=60)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert len(made) == 100 and len(set(made)) == 100  # no two processes got the same folder
    for bad in ("../x", "/abs", "", "..", "a/b"):
        with pytest.raises(ZooError):
            new_run_dir(tmp_path, bad)


@pytest.mark.slow  # 18 s on the project's 2-core AVX2 CPU; tests/test_performance.py checks the pipeline's weights
def test_fast_paths_switch_off_and_runs_record_which_applied(mnist_npz, tmp_path):
    from zoo.keras_glue import fast_path_enabled

    for value, expected in (("", True), ("0", True), ("1", False), ("all", False),
                            ("prompt-exit", True), ("tf-data-autotune-off,quiet-import", False)):
        os.environ["ZOO_NO_FAST_PATHS"] = value
        try:
            assert fast_path_enabled("tf-data-autotune-off") is expected, value
        finally:
            del os.environ["ZOO_NO_FAST_PATHS"]
    plain = run_zoo("train", "mlp", "--epochs", "1", "--limit", "500", "--data-dir", mnist_npz,
                    "--runs-dir", tmp_path, "--json", env={"ZOO_NO_FAST_PATHS": "1"})
    assert plain.returncode == 0, plain.stderr
    execution = json.loads(plain.stdout)["execution"]
    assert execution["fast_paths"] == [] and "tf_data_autotune" not in execution
    fast = run_zoo("train", "mlp", "--epochs", "1", "--limit", "500", "--data-dir", mnist_npz,
                   "--runs-dir", tmp_path, "--json")
    assert json.loads(fast.stdout)["execution"]["fast_paths"] == ["quiet-import", "seed-generator", "layer-names",
                                                                   "build-before-trace", "tf-data-autotune-off"]


@pytest.mark.parametrize("args, message", [
    (("--seed", "-1"), "--seed must be a whole number from 0 to 4294967295"),
    (("--seed", "4294967296"), "--seed must be a whole number from 0 to 4294967295"),
    (("--epochs", "0"), "--epochs 0 must be at least 1"),
    (("--limit", "5"), "--limit 5 is too small"),
    (("--validate-on", "train"), "--validate-on must be 'val' or 'test'"),
])
def test_options_are_checked_once_with_one_line(cli, args, message):
    result = cli("train", "mlp", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.unit
def test_tag_article_selects_the_models_of_the_source_articles(cli):
    rows = {r["name"] for r in json.loads(cli("list", "--tag", "article", "--json").stdout)}
    assert rows == {"mlp", "keras1-cnn", "baseline-cnn", "keras-docs-cnn", "deep-bn-cnn"}


@pytest.mark.unit
def test_get_zoo_respects_the_plugins_dir(tmp_path):
    from zoo.plugins import get_zoo

    (tmp_path / "extra.py").write_text(minimal_plugin("extra-net", batch_size=8))
    assert "extra-net" not in get_zoo().architectures
    assert "extra-net" in get_zoo(str(tmp_path)).architectures  # not the first call's zoo again
    assert "extra-net" not in get_zoo().architectures


COUNTING_PLUGIN = '''
import keras
import zoo
SRC = zoo.Source("counts its builds", "tests", 2026)

def build(input_shape, num_classes):
    with open({counter!r}, "a") as fh:
        fh.write("built\\n")
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])

@zoo.hookimpl
def zoo_register_architectures(register):
    register(zoo.Architecture(name="counted", title="Counted", summary="s", teaches="t", source=SRC,
        input_kind="image", build=build, recipes=(zoo.Recipe(name="r", optimizer={{"class_name": "SGD"}},
        loss="categorical_crossentropy", batch_size=8, epochs=1, validation="none", source=SRC),)))
'''


@pytest.mark.process
def test_zoo_list_answers_from_the_cache_until_a_plugin_file_changes(tmp_path, cli):
    plugins, counter = tmp_path / "plugins", tmp_path / "builds.txt"
    plugins.mkdir()
    plugin = plugins / "counted.py"
    plugin.write_text(COUNTING_PLUGIN.format(counter=str(counter)))
    env = {"ZOO_PLUGINS_DIR": str(plugins), "ZOO_CACHE_DIR": str(tmp_path / "cache")}

    def listed():
        done = cli("list", "counted", "--json", env=env)
        assert done.exit_code == 0, done.stderr
        return json.loads(done.stdout)[0]["params"]

    assert listed() == 7_850 and counter.read_text().count("built") == 1
    assert listed() == 7_850 and counter.read_text().count("built") == 1  # from the cache: not built again
    fresh = run_zoo("list", "counted", "--json", env=env)  # another process reads the same cache
    assert fresh.returncode == 0 and counter.read_text().count("built") == 1
    assert cli("info", "counted", "--json", env=env).exit_code == 0
    assert counter.read_text().count("built") == 1
    plugin.write_text(plugin.read_text() + "\n# edited\n")  # an editable plugin being edited
    os.utime(plugin, ns=(plugin.stat().st_atime_ns, plugin.stat().st_mtime_ns + 10**9))
    assert listed() == 7_850 and counter.read_text().count("built") == 2
    env["ZOO_NO_CACHE"] = "1"
    assert listed() == 7_850 and counter.read_text().count("built") == 3


@pytest.mark.unit
def test_temporaries_left_by_a_killed_save_are_swept_by_the_next_run(tmp_path):
    """kill -9 during a save leaves `.zoo-tmp-*` files; the next run directory made beside them removes them."""
    import time

    from zoo.files import TEMP_PREFIX, atomic_write_text
    from zoo.runs import new_run_dir

    old_run = tmp_path / "compare-1" / "mlp"
    old_run.mkdir(parents=True)
    stale = old_run / f"{TEMP_PREFIX}model.abcd1234.keras"
    stale.write_bytes(b"half a model")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    fresh = old_run / f"{TEMP_PREFIX}run.efgh5678.json"  # a save in progress right now: left alone
    fresh.write_text("{")
    new_run_dir(tmp_path, "compare-2")
    assert not stale.exists() and fresh.exists()
    written = atomic_write_text(tmp_path / "note.txt", "x")
    assert oct(written.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # the user's umask, not 0600


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.process
def test_zoo_list_and_info_answer_from_the_cache_without_tensorflow(tmp_path):
    """The first `zoo list` imports the plugins (and TensorFlow); the next ones read the cache."""
    env = {"ZOO_CACHE_DIR": str(tmp_path / "cache")}
    first = run_zoo("list", "--json", env=env)
    assert first.returncode == 0, first.stderr
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: sys.stderr.write('loaded: %s\\n' % sorted(m for m in ('tensorflow', 'keras', "
             "'zoo_mlp') if m in sys.modules)))\n"
             "from zoo.cli import main\n"
             "sys.argv = ['zoo'] + sys.argv[1:]\n"
             "main()\n")
    for args in (["list", "--json"], ["info", "deep-bn-cnn", "--json"], ["list", "--tag", "article"]):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **env})
        assert done.returncode == 0, done.stderr
        assert "loaded: []" in done.stderr, done.stderr
    listed = subprocess.run([sys.executable, "-c", probe, "list", "--json"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, **env})
    assert json.loads(listed.stdout) == json.loads(first.stdout)  # the same answer as the full load
    card = subprocess.run([sys.executable, "-c", probe, "info", "deep-bn-cnn", "--json"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})
    assert json.loads(card.stdout)["non_trainable_params"] == 40
    unknown = subprocess.run([sys.executable, "-c", probe, "info", "mlpp"], capture_output=True, text=True,
                             timeout=120, env={**os.environ, **env})
    assert unknown.returncode == 2 and "did you mean: mlp" in unknown.stderr


@pytest.mark.unit
def test_a_listing_with_a_broken_plugin_is_not_cached(tmp_path, cli):
    """An import failure may be fixed outside the plugin's files (pip install a dependency)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "needs_missing.py").write_text("import a_package_that_is_not_installed\n")
    env = {"ZOO_PLUGINS_DIR": str(plugins), "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    first = cli("list", "--json", env=env)
    assert first.exit_code == 0 and "a_package_that_is_not_installed" in first.stderr
    assert not (tmp_path / "cache" / "listing-v1.json").exists()


# What may be imported inside a function: libraries that cost real time or memory to import
# (or are optional extras), so that `import zoo` and `zoo --help` stay fast. Everything else —
# the standard library, pluggy, platformdirs, filelock, the zoo's own light modules — is
# imported at the top of the module, where readers and tools see the import graph.
LAZY_LIBRARIES = {
    "tensorflow", "keras", "jax", "torch", "tensorboard",      # the backends
    "numpy", "scipy", "statsmodels", "pandas", "pydantic",     # numbers and the run.json schema
    "matplotlib", "adjustText", "PIL",                         # figures and images
    "rich", "typer", "click", "jinja2", "IPython",             # terminal, pages, notebooks
    "dask", "distributed",                                     # the dask extra
    "starlette", "uvicorn", "python_multipart", "segno",       # the serve extra
    "h5py", "onnx", "onnxruntime", "tf2onnx", "ai_edge_litert",  # model files and the export extra
}


def _top_level_imports(tree) -> list:
    """The import statements a module runs when imported (not inside functions, not TYPE_CHECKING)."""
    found = []

    def visit(body):
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for part in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                    visit(part)
    visit(tree.body)
    return found


def _targets(node, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    return [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names]


def lazy_imports_that_defer_nothing(root: Path = None) -> list[str]:
    """Imports inside functions that defer no heavy library: each should be at the top."""
    root = root or ZOO
    parsed = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        parsed[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = (path, ast.parse(path.read_text()))
    top = {name: (tree, [t for node in _top_level_imports(tree) for t in _targets(node, name, path.name == "__init__.py")])
           for name, (path, tree) in parsed.items()}

    def heavy(target: str, seen=()) -> set[str]:
        """The lazy-listed libraries importing ``target`` loads."""
        if target.split(".")[0] in LAZY_LIBRARIES:
            return {target.split(".")[0]}
        if target not in top or target in seen:
            return set()
        return set().union(*(heavy(t, (*seen, target)) for t in top[target][1] if t != target))

    found = []
    for name, (path, tree) in parsed.items():
        at_top = {id(node) for node in _top_level_imports(tree)}
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        already = heavy(name)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in at_top | typing_only:
                deferred = set().union(*(heavy(t) for t in _targets(node, name, path.name == "__init__.py")))
                if not deferred - already:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.unit
def test_imports_are_at_the_top_unless_they_defer_a_heavy_library():
    """An import inside a function is there to keep a heavy library (LAZY_LIBRARIES) out of
    `import zoo` and `zoo --help`; any other belongs at the top of its module."""
    assert lazy_imports_that_defer_nothing() == []


@pytest.mark.unit
def test_the_lazy_import_checker_sees_a_light_import_in_a_function(tmp_path, monkeypatch):
    package = _fake_zoo(tmp_path, monkeypatch, {
        "light.py": "import json\n",
        "a.py": "def f():\n    import keras\n    from zoo.light import json\n    import time\n"})
    assert [line.split(": ", 1)[1] for line in lazy_imports_that_defer_nothing(package)] == \
        ["from zoo.light import json", "import time"]


@pytest.mark.unit
def test_import_zoo_loads_no_heavy_library():
    code = (f"import sys, zoo\nprint(sorted(m for m in {sorted(LAZY_LIBRARIES)!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.unit
def test_every_keras_internal_the_zoo_reaches_is_still_there():
    """Each reach into Keras falls back quietly when it is gone: this is where a Keras upgrade
    that moves one of them fails loudly instead (see keras_glue's docstring for each)."""
    from zoo import keras_glue

    assert keras_glue.missing_internals() == []


@pytest.mark.unit
def test_keras_internals_live_only_in_keras_glue():
    """`grep -rn "keras.src\\|\\._[a-z]" zoo`: private names of Keras (or of another object
    than self) appear only in zoo/keras_glue.py."""
    import re

    reach = re.compile(r"keras\.src|(?<![\w.])(?!self\b|cls\b)[A-Za-z_]\w*\._[a-z]\w*")
    found = [f"{path.relative_to(ZOO.parent)}:{number}: {line.strip()}"
             for path in ZOO.rglob("*.py") if path.name != "keras_glue.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if reach.search(line.split("#")[0]) and "``" not in line]
    assert found == []


@pytest.mark.unit
def test_the_keras_internals_switch_off(monkeypatch):
    import keras

    from zoo import keras_glue, seed_batches
    from zoo.anatomy import build_model
    from zoo.plugins import get_zoo
    from zoo.types import Options

    monkeypatch.setenv("ZOO_NO_FAST_PATHS", "seed-generator,layer-names,optimizer-slots,build-before-trace")
    with keras_glue.seeded(1) as own_generator, keras_glue.fresh_names() as fresh:
        assert own_generator is False and fresh is False
    optimizer = keras.optimizers.Adam()
    optimizer.build([keras.Variable([1.0])])
    assert keras_glue.optimizer_slots(optimizer) is None
    recipe = get_zoo().architecture("speedrun").recipe()
    assert "optimizer-slots" in seed_batches.why_not(Options(), recipe, "tensorflow")
    assert not keras_glue.applies("layer-names") and keras_glue.applies("quiet-import")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(), "mse", metrics=["mae"])
    zeros = keras.ops.convert_to_numpy(keras.ops.zeros((4, 2)))
    assert keras_glue.build_training_state(model, zeros, zeros) is False
    assert model.optimizer.built  # the public part still applies
    monkeypatch.delenv("ZOO_NO_FAST_PATHS")
    with keras_glue.seeded(1) as own_generator:
        assert own_generator is True
    first = [layer.name for layer in build_model(get_zoo().architecture("mlp")).layers]
    assert first == [layer.name for layer in build_model(get_zoo().architecture("mlp")).layers]
    variables, slots = keras_glue.optimizer_slots(optimizer)
    assert len(variables) == 1 and {"_momentums", "_velocities"} <= set(slots)
