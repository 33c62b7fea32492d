"""The benchmark scripts run end to end and report what they promise (no timings asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


def run_script(name, *args, cwd):
    return subprocess.run([sys.executable, str(BENCH / name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env={**os.environ, "COLUMNS": "200"})


@pytest.mark.slow  # 16 s on the project's 2-core AVX2 CPU: a benchmark's smoke test, not a user's feature
def test_bench_prints_side_by_side_ratios(mnist_npz, tmp_path):
    out = tmp_path / "bench.json"
    done = run_script("bench.py", "mlp", "--limit", "2000", "--epochs", "2", "--repeats", "2",
                      "--data-dir", mnist_npz, "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "zoo ÷ plain" in done.stdout
    result = json.loads(out.read_text())
    assert result["environment"]["backend"] == "tensorflow"
    (row,) = result["rows"]
    assert (row["model"], row["recipe"], row["macs"]) == ("mlp", "article", 25_408)
    assert len(row["plain_runs"]) == len(row["zoo_runs"]) == 2
    assert row["ratio"] == pytest.approx(row["zoo_seconds_per_epoch"] / row["plain_seconds_per_epoch"], rel=0.02)
    assert 0 < row["zoo_peak_fraction"] < 1


@pytest.mark.slow  # 25 s on the project's 2-core AVX2 CPU: a benchmark's smoke test, not a user's feature
def test_whole_command_runs_both_commands(mnist_npz, tmp_path):
    out = tmp_path / "whole.json"
    done = run_script("whole_command.py", "mlp", "--epochs", "1", "--repeats", "1", "--data-dir", mnist_npz,
                      "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert len(result["runs"]["plain"]) == len(result["runs"]["zoo"]) == 1
    assert result["ratio"] > 0
    missing = run_script("whole_command.py", "mlp", "--data-dir", tmp_path, cwd=tmp_path)
    assert missing.returncode != 0 and "mnist.npz" in missing.stderr


@pytest.mark.slow  # about 20 s on 2 cores: two models' layers timed one by one
def test_profile_models_times_each_layer_and_says_where_the_step_goes(mnist_npz, tmp_path):
    out = tmp_path / "profile.json"
    done = run_script("profile_models.py", "mlp", "speedrun", "--steps", "10", "--repeats", "3",
                      "--data-dir", mnist_npz, "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fp32 peak" in done.stdout and "step − Σ layers" in done.stdout
    result = json.loads(out.read_text())
    mlp, speedrun = result["models"]
    assert (mlp["model"], mlp["batch_size"], speedrun["batch_size"]) == ("mlp", 32, 128)
    assert [r["kind"] for r in speedrun["layers"]].count("Conv2D") == 2
    assert sum(r["macs"] for r in speedrun["layers"]) == 376_832  # every layer with arithmetic is there
    for p in result["models"]:
        assert p["step_ms"] > 0 and p["rest_ms"] >= 0
        assert p["arithmetic_ms"] + p["memory_ms"] > 0
        assert p["gflops_per_second"] == pytest.approx(p["step_gflop"] / p["step_ms"] * 1000, rel=1e-6)


@pytest.mark.unit
def test_peak_is_the_cpus_given_or_left_empty_on_an_accelerator():
    sys.path.insert(0, str(BENCH))
    try:
        from bench import machine_peak
    finally:
        sys.path.remove(str(BENCH))
    cpu_peak, how = machine_peak("CPU")
    assert cpu_peak > 0 and "cores" in how
    assert machine_peak("GPU: /physical_device:GPU:0") == (None, "unknown for GPU: /physical_device:GPU:0 "
                                                                 "(give --peak-gflops)")
    assert machine_peak("GPU: H100", 67_000)[0] == 67_000


@pytest.mark.slow  # about a minute on 2 cores: three commands, one of them training ten seeds
def test_seed_batching_benchmark_names_the_cpu_and_where_the_time_went(mnist_npz, tmp_path):
    out = tmp_path / "seeds.json"
    done = run_script("seed_batching.py", "mlp", "--repeats", "1", "--epochs", "1", "--limit", "500",
                      "--data-dir", mnist_npz, "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CPU: ") and "ten seeds batched take" in done.stdout
    result = json.loads(out.read_text())["results"]["mlp"]
    assert set(result["median"]) == {"one seed", "10 seeds batched", "10 seeds one after another"}
    assert "first epoch" in result["notes"]["10 seeds batched"][1]  # it did train batched
    assert "turned off" in result["notes"]["10 seeds one after another"][1]
