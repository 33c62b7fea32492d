"""`zoo compare --executor dask`: the same comparison on Dask workers (spawned processes on
loopback), with their faults: a killed worker, Ctrl-C, a plugin a worker lacks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import minimal_plugin, run_zoo

pytest.importorskip("distributed", reason="Dask is an extra: pip install -e '.[dask]'")
pytestmark = pytest.mark.dask  # CI runs them (pytest -m 'not slow'); the quick lane leaves them out

import psutil  # noqa: E402  (Dask depends on it)

from zoo.comparing import run_jobs as run_comparison
from zoo.executors import make_executor  # noqa: E402
from zoo.executors.dask import DaskExecutor, plan_workers  # noqa: E402
from zoo.jobs import (
    make_jobs,
    prepare,  # noqa: E402
)
from zoo.plan import Execution  # noqa: E402
from zoo.types import Options

TINY = ["--epochs", "1", "--limit", "1000"]


def accuracies(stdout: str) -> dict:
    return {row["model"]: row["accuracies"] for row in json.loads(stdout)}


@pytest.mark.slow  # 40-50 s: two fresh processes (TensorFlow sizes its thread pools once)
def test_a_dask_comparison_gives_the_local_table(tmp_path):
    dask = run_zoo("compare", "mlp", "--seeds", "2", *TINY, "--executor", "dask", "--workers", "2",
                   "--runs-dir", tmp_path / "dask", "--json", timeout=300)
    assert dask.returncode == 0, dask.stderr
    assert "LocalCluster of 2 worker processes × 1 thread" in dask.stderr
    # the workers import TensorFlow as quietly as the driver: none of its C++ start-up notices
    assert "absl::InitializeLog" not in dask.stderr and "port.cc" not in dask.stderr
    local = run_zoo("compare", "mlp", "--seeds", "2", *TINY, "--threads-per-worker", "1",
                    "--runs-dir", tmp_path / "local", "--json", timeout=300)  # a fresh process: threads set once
    assert local.returncode == 0, local.stderr
    assert accuracies(dask.stdout) == accuracies(local.stdout)  # the same digits, not merely close
    row = json.loads(dask.stdout)[0]
    assert row["n"] == 2 and row["accuracies"][0] > 0.5
    for run_dir in map(Path, row["run_dirs"]):  # written by the driver, where the local executor writes
        assert run_dir.parent.parent == tmp_path / "dask"
        assert {"model.keras", "run.json", "test_predictions.npz", "history.json"} <= \
            {p.name for p in run_dir.iterdir()}
        record = json.loads((run_dir / "run.json").read_text())
        assert record["execution"]["executor"] == "dask" and record["execution"]["worker"].startswith("tcp://")
        assert record["execution"]["seed_batching"]["seeds"] == [42, 43]  # the two seeds were one Dask task
        assert record["command"].startswith("zoo compare mlp")  # the driver's command, not Dask's


def test_without_dask_the_dask_executor_is_one_line_naming_the_extra(tmp_path):
    blocker = tmp_path / "distributed.py"
    blocker.write_text("raise ImportError('no Dask here')\n")
    result = run_zoo("compare", "mlp", *TINY, "--executor", "dask", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip() == ("Error: --executor dask needs Dask distributed: "
                                     "pip install 'mnist-zoo[dask]'")


@pytest.mark.unit
def test_executor_options_are_checked_before_any_work():
    from zoo.errors import ZooError

    for kwargs, message in (({"executor": "ray"}, "^executor must be one of local, dask"),
                            ({"executor": "local", "workers": 2}, "^workers needs the dask executor$"),
                            ({"executor": "dask", "workers": 0}, "^workers=0 must be at least 1$"),
                            ({"seed_batching": "yes"}, "^seed_batching is True or False, not 'yes'$")):
        with pytest.raises(ZooError, match=message):
            Execution(**kwargs)
    assert make_executor(Execution("dask", workers=2), jobs=2).plan.workers == 2
    assert plan_workers(jobs=8, cores=2) == plan_workers(jobs=2, cores=2)  # 2 × 1: no more workers than cores
    assert (plan_workers(jobs=1, cores=4).workers, plan_workers(jobs=1, cores=4).threads) == (1, 4)
    assert "oversubscribed" in plan_workers(jobs=4, workers=4, threads=2, cores=2).describe()


@pytest.fixture(scope="module")
def mnist_small(zoo_registry, mnist_npz):
    # one job per task: these tests kill the worker of one seed and keep the other
    options = Options(epochs=2, limit=1000, data_dir=str(mnist_npz), seed_batching=False)
    return options, prepare(zoo_registry, options)


def kill_worker_of(event) -> None:
    from distributed import default_client

    os.kill(default_client().run(os.getpid)[event.worker], signal.SIGKILL)


def run_killing(victim_kills: int, tmp_path, zoo_registry, mnist_small):
    """A comparison of two mlp jobs in which the first one's worker is SIGKILLed ``victim_kills``
    times, each at the start of its second epoch."""
    options, prepared = mnist_small
    victim, other = make_jobs([zoo_registry.architecture("mlp")], options, seeds=[42, 43])
    kills = []

    def on_event(event):
        if event.job == victim and event.kind == "epoch_started" and event.epoch == 2 and len(kills) < victim_kills:
            kills.append(event.worker)
            kill_worker_of(event)

    executor = DaskExecutor(plan_workers(2, workers=2, threads=1))
    comparison = run_comparison([victim, other], prepared, tmp_path, on_event, executor=executor,
                                registry=zoo_registry)
    return comparison, kills


def test_a_killed_worker_loses_no_finished_job_and_its_job_is_retried_once(tmp_path, zoo_registry, mnist_small):
    comparison, kills = run_killing(1, tmp_path, zoo_registry, mnist_small)
    assert [o.status for o in comparison.ordered()] == ["completed", "completed"] and len(kills) == 1
    retried = comparison.ordered()[0].record
    assert retried.execution["worker"] != kills[0] and retried.epochs_completed == 2


def test_the_broadcast_split_stays_on_every_worker():
    """A retried job must find the split on whichever worker it lands: Dask's active memory
    manager would drop the broadcast copies no task waits for (every 2 s); the zoo's cluster
    keeps them."""
    executor = DaskExecutor(plan_workers(2, workers=2, threads=1))
    with executor.client(2) as client:
        [split] = client.scatter([bytes(1000)], broadcast=True, hash=False)
        time.sleep(5)  # more than two of the memory manager's rounds
        assert len(client.who_has(split)[split.key]) == 2


@pytest.mark.slow  # 15–35 s on the project's 2-core AVX2 CPU
def test_a_job_whose_worker_dies_twice_fails_alone(tmp_path, zoo_registry, mnist_small):
    comparison, kills = run_killing(2, tmp_path, zoo_registry, mnist_small)
    failed, kept = comparison.ordered()
    assert len(kills) == 2 and failed.status == "failed" and "its worker died" in failed.error
    assert kept.status == "completed" and (kept.run_dir / "model.keras").is_file()
    rows = json.loads((tmp_path / "compare.json").read_text())
    assert [r["status"] for r in rows] == ["failed", "completed"]


def test_a_plugin_missing_on_a_worker_fails_that_job_alone(tmp_path, mnist_small):
    from zoo.plugins import get_zoo

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "tiny.py").write_text(minimal_plugin("tiny-net"))
    registry = get_zoo(str(plugins))  # this machine has the plugin; the workers are not told of it
    assert not registry.failures
    options, prepared = mnist_small
    jobs = make_jobs([registry.architecture("tiny-net"), registry.architecture("mlp")], Options(
        epochs=1, limit=1000, data_dir=options.data_dir))
    failures = []
    comparison = run_comparison(jobs, prepared, tmp_path / "cmp",
                                lambda e: e.kind == "failed" and failures.append(e.error),
                                executor=DaskExecutor(plan_workers(2, workers=2, threads=1)), registry=registry)
    missing, fine = comparison.ordered()
    assert missing.status == "failed" and fine.status == "completed"
    assert "its plugin 'tiny' is not installed on worker tcp://127.0.0.1:" in missing.error
    assert failures == [missing.error]


def children_of(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow  # 34 s; test_a_swallowed_ctrl_c_still_stops_the_wait_for_workers covers the driver's stop in-process
def test_ctrl_c_keeps_finished_runs_and_leaves_no_process_behind(tmp_path):
    runs = tmp_path / "runs"
    # A new session, so Ctrl-C can go to the whole group, as a terminal sends it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo", "compare", "mlp", "keras-docs-cnn", "--epochs", "20", "--limit", "6000",
         "--executor", "dask", "--workers", "2", "--runs-dir", str(runs), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline, seen = time.time() + 240, set()
    try:
        while time.time() < deadline:
            seen.update(children_of(proc.pid))
            rows = [json.loads(p.read_text()) for p in runs.glob("compare-*/compare.json")]
            if rows and any(r["model"] == "mlp" and r["status"] == "completed" for r in rows[0]):
                break
            time.sleep(0.5)
        else:
            pytest.fail("mlp did not finish in time")
        seen.update(children_of(proc.pid))
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted: 1 of 2 runs finished" in err and "Traceback" not in err
    assert json.loads(out)[0]["model"] == "mlp"  # the finished run's row, on stdout as asked
    kept = json.loads(next(runs.glob("compare-*/compare.json")).read_text())
    assert [r["model"] for r in kept] == ["mlp"] and (Path(kept[0]["run_dir"]) / "model.keras").is_file()
    assert seen, "the workers were never seen"
    time.sleep(2)
    assert [pid for pid in seen if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []


def test_a_swallowed_ctrl_c_still_stops_the_wait_for_workers(tmp_path, zoo_registry, mnist_small, monkeypatch):
    """A Ctrl-C raised inside a gc callback (JAX runs one on every collection) is dropped by
    Python; the driver's wait for results must stop all the same (it once trained on)."""
    from zoo import stopping

    options, prepared = mnist_small
    jobs = make_jobs([zoo_registry.architecture("mlp")], Options(epochs=40, limit=1000, data_dir=options.data_dir),
                     seeds=[42, 43])

    def lose_a_ctrl_c(event):
        if event.kind == "epoch_ended" and event.epoch == 1:
            monkeypatch.setattr(stopping, "_requested", signal.SIGINT)  # the request, without its exception

    try:
        comparison = run_comparison(jobs, prepared, tmp_path, lose_a_ctrl_c, registry=zoo_registry,
                                    executor=DaskExecutor(plan_workers(2, workers=2, threads=1)))
    finally:
        stopping.reset()
    assert comparison.interrupted
    assert [o.status for o in comparison.outcomes if o.status == "completed"] == []  # 40 epochs never ran


@pytest.mark.unit
def test_an_unreachable_scheduler_is_one_line(monkeypatch):
    from zoo.errors import ZooError
    from zoo.executors import dask as dask_executor

    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(ZooError, match=r"^cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9: "):
        with DaskExecutor(scheduler="tcp://127.0.0.1:9").client(jobs=1):
            pass


@pytest.mark.slow  # 37 s on the project's 2-core AVX2 CPU; the LocalCluster tests cover the executor itself
def test_a_scheduler_and_a_worker_started_by_hand(tmp_path):
    """The two-terminal case of docs/scaling-out.md, on loopback."""
    address_file = tmp_path / "scheduler.json"
    started = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                 "--no-dashboard", "--scheduler-file", str(address_file)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.time() + 60
        while not address_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        started.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        result = run_zoo("compare", "mlp", *TINY, "--executor", "dask", "--scheduler", address,
                         "--runs-dir", tmp_path / "runs", "--json", timeout=300)
        assert result.returncode == 0, result.stderr
        assert f"the cluster at {address}, 1 worker(s)" in result.stderr
        assert json.loads(result.stdout)[0]["accuracies"][0] > 0.5
    finally:
        for proc in started:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in started:
            proc.wait(timeout=60)
