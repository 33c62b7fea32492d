"""Ctrl-C that Python swallows (raised inside a gc callback, as JAX's runs on every
collection) still stops training and comparisons: ``zoo.stopping`` remembers it."""

import gc
import os
import signal
import sys

import pytest

from zoo import stopping


@pytest.fixture
def stop_flag():
    """Leave no stop request behind for the next test (they share one process)."""
    yield
    stopping.reset()


@pytest.mark.unit
def test_a_ctrl_c_swallowed_by_a_gc_callback_is_still_seen(monkeypatch, stop_flag):
    swallowed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: swallowed.append(unraisable.exc_type))

    def busy_gc_callback(phase, info):  # like JAX's _xla_gc_callback: Python code run by every collection
        if phase == "start":
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(10_000))  # the handler runs here, between two bytecodes of this callback

    previous = signal.signal(signal.SIGINT, stopping.request_stop)
    gc.callbacks.append(busy_gc_callback)
    try:
        gc.collect()  # no KeyboardInterrupt comes out of here: Python printed it and dropped it
    finally:
        gc.callbacks.remove(busy_gc_callback)
        signal.signal(signal.SIGINT, previous)
    assert swallowed == [KeyboardInterrupt]
    assert stopping.requested()
    with pytest.raises(KeyboardInterrupt):
        stopping.check()


def swallowed_stop(monkeypatch):
    """What a Ctrl-C lost inside a gc callback leaves: the request, and no exception."""
    monkeypatch.setattr(stopping, "_requested", signal.SIGINT)


def test_training_stops_at_the_next_batch_after_a_swallowed_ctrl_c(zoo_registry, tmp_path, monkeypatch, stop_flag):
    import keras

    from zoo.errors import Interrupted
    from zoo.jobs import make_jobs, prepare, run_job
    from zoo.runs import load_model, read_record
    from zoo.types import Options

    class LoseACtrlCInEpochTwo(keras.callbacks.Callback):
        async_safe = True  # as RunCallback is: Keras then runs batch hooks on a helper thread

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                swallowed_stop(monkeypatch)

    options = Options(epochs=5, limit=1000)
    job = make_jobs([zoo_registry.architecture("mlp")], options)[0]
    with pytest.raises(Interrupted):
        run_job(job, prepare(zoo_registry, options), tmp_path, extra_callbacks=[LoseACtrlCInEpochTwo()])
    record = read_record(tmp_path)
    assert record.status == "interrupted" and record.epochs_completed == 1
    assert record.model_weights == "end of epoch 1"
    assert load_model(tmp_path).count_params() == 25_450


def test_a_local_comparison_starts_no_job_after_a_swallowed_ctrl_c(zoo_registry, tmp_path, monkeypatch, stop_flag):
    from zoo.comparing import run_jobs as run_comparison
    from zoo.jobs import make_jobs, prepare
    from zoo.types import Options

    options = Options(epochs=1, limit=1000, seed_batching=False)  # two jobs, one after the other
    jobs = make_jobs([zoo_registry.architecture("mlp")], options, seeds=[42, 43])
    comparison = run_comparison(jobs, prepare(zoo_registry, options), tmp_path,
                                on_outcome=lambda outcome: swallowed_stop(monkeypatch))
    assert comparison.interrupted
    assert [o.status for o in comparison.outcomes] == ["completed"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["mlp-seed42"]  # seed 43 never started


def test_a_ctrl_c_before_anything_finished_prints_one_line_and_no_tables(cli, tmp_path, monkeypatch, stop_flag,
                                                                          mnist_npz):
    swallowed_stop(monkeypatch)  # as if Ctrl-C came during the first batch
    result = cli("compare", "mlp", "speedrun", "--epochs", "1", "--limit", "500", "--data-dir", mnist_npz,
                 "--runs-dir", tmp_path)
    assert result.exit_code == 130 and "Traceback" not in result.stderr
    assert result.stdout.strip() == ""  # no tables of nothing
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")][0].startswith(
        "Error: interrupted: 0 of 2 runs finished")
