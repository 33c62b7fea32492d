"""Keras callbacks the runner uses: per-epoch timing, and a rich live display that
replaces Keras's progress bar."""

from __future__ import annotations

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Keeps each epoch's wall time and the metrics Keras reports at its end."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.history: dict[str, list[float]] = {}
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))


class RichProgress(keras.callbacks.Callback):
    """Drives a ``zoo.progress.TrainingDisplay``: epochs, steps, running loss/accuracy."""

    # Reading the running metrics forces the device to sync, so do it a few times a second only.
    METRICS_EVERY_SECONDS = 0.25
    # Keras may run our batch hook on a helper thread (rich's Progress is thread-safe). Without
    # this, one batch hook makes Keras convert every step's logs synchronously: measured 10%
    # slower epochs for keras-docs-cnn/adadelta on 2 cores.
    async_safe = True

    def __init__(self, display, name: str, epochs: int, steps: int):
        super().__init__()
        self.display, self.name, self.epochs, self.steps = display, name, epochs, steps
        self._last_metrics = 0.0
        self._epoch_start = 0.0

    def on_train_begin(self, logs=None):
        self.display.start_model(self.name, self.epochs, self.steps)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self.display.start_epoch(epoch + 1)

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        metrics = None
        if logs and now - self._last_metrics >= self.METRICS_EVERY_SECONDS:
            self._last_metrics = now
            metrics = {k: float(v) for k, v in logs.items() if k in ("loss", "accuracy")}
        # With several steps per compiled call, JAX reports the index the call would reach
        # at full length, past the epoch's end on its last call.
        self.display.step(min(batch + 1, self.steps), metrics)

    def on_epoch_end(self, epoch, logs=None):
        self.display.end_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()},
                               time.perf_counter() - self._epoch_start)

    def on_train_end(self, logs=None):
        self.display.end_model()
