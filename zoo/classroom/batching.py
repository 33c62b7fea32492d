"""Micro-batching: thirty students drawing at once, each model called once per batch.

A Keras model answers one drawing in about as long as it answers thirty: the cost of a call
is mostly the call. So requests do not call the models themselves: each puts its preprocessed
digit in a queue and waits. One worker thread takes what arrived within a short window
(``WINDOW_SECONDS`` after the first, at most ``MAX_BATCH``), stacks the digits of each input
size, calls every model once on its stack, and hands each request its own row. With one
drawing in the queue the window costs a few milliseconds; with thirty it saves thirty calls
per model (``benchmarks/classroom_load.py`` measures both ways).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from zoo.evaluation import as_probabilities

WINDOW_SECONDS = 0.008  # how long a batch waits for company after its first drawing
MAX_BATCH = 64


@dataclass
class Scored:
    """One model's answer to one drawing: its class probabilities, and its first convolution's
    feature maps where asked and the model has one."""

    probabilities: np.ndarray
    maps: np.ndarray | None = None


class Batcher:
    """Calls ``served`` models on batches of drawings from many requests (see the module's docstring).
    ``enabled=False`` calls them on each drawing alone, as before (the benchmark's baseline)."""

    def __init__(self, served, enabled: bool = True, window: float = WINDOW_SECONDS, max_batch: int = MAX_BATCH):
        self.served, self.enabled, self.window, self.max_batch = served, enabled, window, max_batch
        self.batches = 0  # how many model calls batches took (tests and the benchmark read it)
        self._queue: queue.Queue = queue.Queue()
        self._alone = threading.Lock()
        if enabled:
            threading.Thread(target=self._work, name="zoo-classroom-batcher", daemon=True).start()

    def score(self, digits: dict, maps: bool = True) -> Future:
        """A future of ``[Scored per served model]`` for one drawing: ``digits`` maps each
        (field, input kind) to that drawing preprocessed for it (an array the model takes)."""
        future: Future = Future()
        if self.enabled:
            self._queue.put((digits, maps, future))
        else:
            with self._alone:  # one call per model at a time, as each request did before batching
                self._run([(digits, maps, future)])
        return future

    def _work(self):
        while True:
            first = self._queue.get()
            batch, deadline = [first], threading.Event()
            timer = threading.Timer(self.window, deadline.set)
            timer.start()
            while len(batch) < self.max_batch and not deadline.is_set():
                try:
                    batch.append(self._queue.get(timeout=max(0.0005, self.window / 4)))
                except queue.Empty:
                    continue
            timer.cancel()
            self._run(batch)

    def _run(self, batch):
        try:
            self.batches += 1
            answers = [[None] * len(self.served) for _ in batch]
            for i, s in enumerate(self.served):
                x = np.concatenate([digits[(s.field, s.record.input_kind)] for digits, _, _ in batch])
                probabilities = as_probabilities(np.asarray(s.model(x, training=False)), s.record.output)
                wanted = [j for j, (_, maps, _) in enumerate(batch) if maps]
                feature_maps = None
                if s.probe is not None and wanted:
                    feature_maps = np.asarray(s.probe(x[wanted], training=False))
                for j in range(len(batch)):
                    m = feature_maps[wanted.index(j)] if feature_maps is not None and j in wanted else None
                    answers[j][i] = Scored(probabilities[j], m)
            for (_, _, future), answer in zip(batch, answers):
                future.set_result(answer)
        except BaseException as exc:  # noqa: BLE001  (every waiting request hears why, none hangs)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
