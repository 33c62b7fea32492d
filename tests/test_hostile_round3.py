"""Hostile input, round three: each case an adversarial probe found, now a one-line error or the
right result, with nothing lost and memory near a normal run's."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_zoo
from PIL import Image


def weight_bomb(model_file: Path, out: Path, rows: int = 12_500_000) -> Path:
    """The probe's file: a real model.keras whose weights declare (rows, 32) float32 zeros, gzip
    compressed inside HDF5 (a few KB stored, 1.6 GB when read)."""
    import h5py

    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(rows, 32), dtype="float32", compression="gzip", fillvalue=0)
    with zipfile.ZipFile(model_file) as source, zipfile.ZipFile(out, "w") as bomb:
        for name in source.namelist():
            bomb.writestr(name, weights.getvalue() if name.endswith(".h5") else source.read(name))
    return out


@pytest.mark.unit
def test_a_weight_file_declaring_gigabytes_is_refused_from_its_metadata(tmp_path):
    import zoo
    from zoo import pretrained_models
    from zoo.runs import check_model_archive

    run = tmp_path / "mlp-run"
    for file in ("run.json", "history.json", "test_predictions.npz"):
        (run / file).parent.mkdir(exist_ok=True)
        (run / file).write_bytes((pretrained_models.FOLDER / "mlp" / file).read_bytes())
    weight_bomb(pretrained_models.FOLDER / "mlp" / "model.keras", run / "model.keras")
    with pytest.raises(zoo.ZooError, match=r"declares more than .* bytes of weights .* refused unread"):
        check_model_archive(run / "model.keras", 25_450)
    with pytest.raises(zoo.ZooError, match="refused unread"):
        zoo.predict(run, np.zeros((28, 28)))
    check_model_archive(pretrained_models.FOLDER / "mlp" / "model.keras", 25_450)  # a real one passes


@pytest.mark.process
def test_predicting_with_the_weight_bomb_stays_near_a_normal_runs_memory(tmp_path):
    from zoo import pretrained_models

    run = tmp_path / "mlp-run"
    run.mkdir()
    for file in ("run.json", "history.json", "test_predictions.npz"):
        (run / file).write_bytes((pretrained_models.FOLDER / "mlp" / file).read_bytes())
    weight_bomb(pretrained_models.FOLDER / "mlp" / "model.keras", run / "model.keras")
    digit = tmp_path / "one.png"
    Image.fromarray(np.pad(np.full((20, 4), 255, np.uint8), ((4, 4), (12, 12)))).save(digit)
    normal, normal_mb = peak_of("predict", "mlp", digit)
    assert normal.returncode == 0, normal.stderr
    result, peak_mb = peak_of("predict", run, digit)
    assert result.returncode != 0 and "refused unread" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert peak_mb < normal_mb + 300, (peak_mb, normal_mb)  # TensorFlow loaded as always, no 7 GB of zeros


def peak_of(*args):
    """`zoo ARGS` in a fresh process, and its peak resident memory in MB, measured by a parent of
    its own (this test process's other children would mix into the figure)."""
    measure = ("import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:], capture_output=True, "
               "text=True); print(json.dumps([r.returncode, r.stdout, r.stderr, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))")
    out = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "zoo", *map(str, args)],
                         capture_output=True, text=True, timeout=600)
    code, stdout, stderr, peak = json.loads(out.stdout)
    return subprocess.CompletedProcess(args, code, stdout, stderr), peak


def _wait_for(condition, seconds=240):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.process
def test_kill_9_at_any_point_leaves_a_folder_resume_finishes(tmp_path, mnist_npz):
    """A comparison's folder is one from its first moment: killed before any run finished, or
    after one did (seeds one after another), `--resume` keeps what finished and trains the rest."""
    args = [sys.executable, "-m", "zoo", "compare", "mlp", "--seeds", "3", "--limit", "2000", "--epochs", "2",
            "--no-seed-batching", "--data-dir", str(mnist_npz)]
    for point in ("started", "one finished"):
        runs = tmp_path / point.replace(" ", "-")
        proc = subprocess.Popen([*args, "--runs-dir", str(runs)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if point == "started":
            assert _wait_for(lambda: list(runs.glob("compare-*/compare.json")))
        else:
            assert _wait_for(lambda: list(runs.glob("compare-*/*/run.json")))
        proc.kill()
        proc.wait()
        folder = next(runs.glob("compare-*"))
        kept = {p.parent.name: p.read_text() for p in folder.glob("*/run.json")}
        resumed = run_zoo("compare", "--resume", folder, "--json", "--data-dir", mnist_npz)
        assert resumed.returncode == 0, resumed.stderr
        rows = json.loads(resumed.stdout)
        assert [r["n"] for r in rows] == [3] and rows[0]["seeds"] == [42, 43, 44]
        for name, text in kept.items():  # the finished runs were kept, not trained again
            assert (folder / name / "run.json").read_text() == text


HANGS_AT_IMPORT = "import time\ntime.sleep(120)\n"
HANGS_IN_HOOK = '''
import time
import zoo

@zoo.hookimpl
def zoo_register_architectures(register):
    time.sleep(120)
'''


@pytest.mark.process
def test_a_plugin_that_hangs_at_import_or_in_its_hook_is_named_and_the_rest_answer(tmp_path):
    (tmp_path / "stuck_import.py").write_text(HANGS_AT_IMPORT)
    (tmp_path / "stuck_hook.py").write_text(HANGS_IN_HOOK)
    env = {"ZOO_PLUGINS_DIR": str(tmp_path), "ZOO_CACHE_DIR": str(tmp_path / "cache"), "ZOO_BUILD_TIMEOUT": "3"}
    started = time.time()
    listed = run_zoo("list", "--json", env=env, timeout=120)
    assert time.time() - started < 90
    assert listed.returncode == 0, listed.stderr
    assert "mlp" in {m["name"] for m in json.loads(listed.stdout)}
    said = " ".join(listed.stderr.split())
    assert "importing plugin 'stuck_import'" in said and "still running after 3 s" in said
    assert "plugin 'stuck_hook''s zoo_register_architectures still running after 3 s" in said


@pytest.mark.process
def test_sigterm_while_a_plugin_imports_stops_the_command_with_its_status(tmp_path):
    (tmp_path / "stuck_import.py").write_text(HANGS_AT_IMPORT)
    env = {**os.environ, "ZOO_PLUGINS_DIR": str(tmp_path), "ZOO_CACHE_DIR": str(tmp_path / "cache"),
           "ZOO_BUILD_TIMEOUT": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    time.sleep(12)  # TensorFlow loaded, the plugin's import sleeping
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "raised KeyboardInterrupt itself" not in err and "Traceback" not in err
    assert "Architectures in the zoo" not in out  # stopped, not listed as if nothing happened


@pytest.mark.unit
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "soon", "1e300"])
def test_a_timeout_setting_that_is_no_finite_positive_number_is_one_line(cli, monkeypatch, value):
    from zoo.isolation import build_timeout

    monkeypatch.setenv("ZOO_BUILD_TIMEOUT", value)
    with pytest.raises(Exception, match="ZOO_BUILD_TIMEOUT=.*give a number of seconds above 0"):
        build_timeout()


@pytest.mark.process
def test_zoo_build_timeout_inf_is_one_line_from_the_command(tmp_path):
    result = run_zoo("list", env={"ZOO_BUILD_TIMEOUT": "inf", "ZOO_NO_CACHE": "1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "ZOO_BUILD_TIMEOUT='inf'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.unit
def test_a_vary_grid_is_sized_before_it_is_built(zoo_registry):
    import tracemalloc

    from zoo import OptionError
    from zoo.knobs import variants

    mlp = zoo_registry.architecture("mlp")
    tracemalloc.start()
    with pytest.raises(OptionError, match=r"^vary makes at least 600 variants; give at most 64$"):
        variants(mlp, {"hidden_units": list(range(1, 601)), "learning_rate": [i / 1e4 for i in range(1, 601)],
                       "batch_size": list(range(1, 601))})
    with pytest.raises(OptionError, match=r"^vary makes at least 3,000 variants"):
        variants(mlp, ["hidden_units=" + ",".join(map(str, range(1, 3001))),
                       "batch_size=" + ",".join(map(str, range(1, 3001)))])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50_000_000  # no grid was built to print the error


@pytest.mark.unit
def test_a_deeply_nested_datasets_json_is_one_line(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("ZOO_CONFIG_DIR", str(tmp_path))
    (tmp_path / "datasets.json").write_text("[" * 100_000)
    for args in (("data",), ("data", "add", "mine", str(tmp_path))):
        result = cli(*args)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "datasets.json" in result.stderr and "nested too deeply" in result.stderr


@pytest.mark.unit
def test_a_folder_scan_is_cached_by_the_folders_listing(tmp_path, monkeypatch):
    from zoo import folders

    for label in ("3", "7"):
        (tmp_path / "class" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((28, 28), 255 * (i % 2), np.uint8)).save(tmp_path / "class" / label / f"{i}.png")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    first = folders.folder_dataset(tmp_path / "class")
    calls = []
    real_scan = folders.scan
    monkeypatch.setattr(folders, "scan", lambda root: calls.append(root) or real_scan(root))
    again = folders.folder_dataset(tmp_path / "class")
    assert calls == [] and again.class_names == first.class_names and again.sizes == first.sizes
    time.sleep(0.01)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "class" / "7" / "new.png")
    grown = folders.folder_dataset(tmp_path / "class")
    assert len(calls) == 1 and grown.description.startswith("7 images")


@pytest.mark.unit
def test_a_dataset_of_one_class_is_refused_before_training(tmp_path, mnist_npz):
    import zoo

    (tmp_path / "only" / "7").mkdir(parents=True)
    for i in range(30):
        Image.fromarray(np.full((28, 28), 8 * i, np.uint8)).save(tmp_path / "only" / "7" / f"{i}.png")
    with pytest.raises(zoo.DataError, match="has 1 class .*needs two or more"):
        zoo.compare("mlp", dataset=f"folder:{tmp_path / 'only'}", progress=False, runs_dir=tmp_path / "runs")
    assert not list((tmp_path / "runs").glob("*/*/run.json"))


@pytest.mark.unit
def test_the_python_api_checks_its_arguments_types():
    import zoo

    cases = [(lambda: zoo.predict("mlp", None), "images= takes"), (lambda: zoo.compare(5), "models= takes"),
             (lambda: zoo.load(None), "dirs= takes"), (lambda: zoo.explain("mlp", None), "image= takes"),
             (lambda: zoo.report(3), "comparison_or_dirs="), (lambda: zoo.pretrained(7), "pretrained model's name"),
             (lambda: zoo.evaluate(None), "give a zoo.Run")]
    for call, words in cases:
        with pytest.raises(zoo.ZooError, match=words):
            call()
