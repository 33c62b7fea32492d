"""The Keras callback behind ``run_job``: times epochs, keeps the history, remembers the
last completed epoch's weights, and reports progress as ``zoo.types.Event`` objects."""

from __future__ import annotations

import time

import keras

from zoo import stopping
from zoo.types import Event


class RunCallback(keras.callbacks.Callback):
    """Per-epoch seconds and metrics, the last epoch's weights, and events for listeners."""

    # Reading the running metrics forces the device to sync, so do it a few times a second only,
    # and at SAMPLES_PER_EPOCH even steps: a fast model's one-epoch curve then still has points.
    METRICS_EVERY_SECONDS = 0.25
    SAMPLES_PER_EPOCH = 20
    # Keras may run our batch hook on a helper thread. Without this, one batch hook makes
    # Keras convert every step's logs synchronously: measured 10% slower epochs for
    # keras-docs-cnn/adadelta on 2 cores.
    async_safe = True

    def __init__(self, job, emit, steps: int):
        super().__init__()
        self.job, self.emit, self.steps = job, emit, steps
        self.seconds: list[float] = []
        self.history: dict[str, list[float]] = {}
        self.last_step = 0
        # (epoch, step, loss, accuracy) a few times a second: the curve within an epoch,
        # which is all a one-epoch run has to show
        self.samples: list[tuple[int, int, float, float]] = []
        self._epoch = 0
        self._last_weights = None
        self._start = 0.0
        self._last_metrics = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._start = time.perf_counter()
        self.last_step = 0
        self.emit(Event("epoch_started", self.job, epoch=epoch + 1, steps=self.steps))

    def on_train_batch_end(self, batch, logs=None):
        stopping.check()  # a Ctrl-C whose KeyboardInterrupt was swallowed still stops within a batch
        now = time.perf_counter()
        metrics = None
        stride = max(1, self.steps // self.SAMPLES_PER_EPOCH)
        due = now - self._last_metrics >= self.METRICS_EVERY_SECONDS or (batch + 1) % stride == 0
        if logs and due:
            self._last_metrics = now
            metrics = {k: float(v) for k, v in logs.items() if k in ("loss", "accuracy")}
            if len(metrics) == 2:
                self.samples.append((self._epoch, min(batch + 1, self.steps), metrics["loss"], metrics["accuracy"]))
        # With several steps per compiled call, JAX reports the index the call would reach
        # at full length, past the epoch's end on its last call.
        self.last_step = min(batch + 1, self.steps)
        self.emit(Event("step", self.job, step=self.last_step, steps=self.steps, metrics=metrics))

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.seconds.append(seconds)
        logs = {k: float(v) for k, v in (logs or {}).items()}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        self._last_weights = self.model.get_weights()  # a copy: what an interrupted run saves
        self.emit(Event("epoch_ended", self.job, epoch=epoch + 1, metrics=logs, seconds=seconds))

    def step_history(self) -> dict:
        """The within-epoch samples as columns, with the position in epochs (1.5 = half way through epoch 2)."""
        return {"steps_per_epoch": self.steps,
                "position": [round(e - 1 + s / self.steps, 4) for e, s, _, _ in self.samples],
                "loss": [round(x, 5) for _, _, x, _ in self.samples],
                "accuracy": [round(x, 5) for _, _, _, x in self.samples]}

    def restore_last_epoch(self, model) -> str:
        """Put the last completed epoch's weights back; say what the model now holds."""
        if self._last_weights is None:
            return f"mid-epoch 1 (stopped after step {self.last_step} of {self.steps})"
        model.set_weights(self._last_weights)
        return f"end of epoch {len(self.seconds)}"


class TestEachEpoch(keras.callbacks.Callback):
    """The test set's accuracy after every epoch, into the run's history as ``test_accuracy``:
    what the articles watched while training (``Options.test_each_epoch``). Only the
    validate-on-test experiment asks for it, to measure what choosing an epoch on it costs;
    nothing is chosen by it. After the run's own callback, so the epoch's seconds exclude it."""

    def __init__(self, tracker: RunCallback, x_test, y_test, output: str):
        super().__init__()
        self.tracker, self.x_test, self.y_test, self.output = tracker, x_test, y_test, output

    def on_epoch_end(self, epoch, logs=None):
        from zoo.evaluation import predict_probabilities

        predicted = predict_probabilities(self.model, self.x_test, self.output).argmax(axis=1)
        self.tracker.history.setdefault("test_accuracy", []).append(float((predicted == self.y_test).mean()))


class BranchLogs(keras.callbacks.Callback):
    """Shows one branch of a seed batch (``zoo.seed_batches``) to that run's own callback
    under plain names (``seed_42_loss`` → ``loss``), with the branch as its model: the
    run's callback sees what it would see had the seed trained alone."""

    async_safe = True

    def __init__(self, callback, prefix: str, branch):
        super().__init__()
        self.callback, self.prefix = callback, prefix
        callback.set_model(branch)  # this callback's model is the whole batch (Keras sets it)

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(params)

    def _plain(self, logs):
        if not logs:
            return logs
        return {head + key[len(head + self.prefix):]: value for key, value in logs.items()
                for head in ("", "val_") if key.startswith(head + self.prefix)}

    def on_epoch_begin(self, epoch, logs=None):
        self.callback.on_epoch_begin(epoch, self._plain(logs))

    def on_train_batch_end(self, batch, logs=None):
        self.callback.on_train_batch_end(batch, self._plain(logs))

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, self._plain(logs))
