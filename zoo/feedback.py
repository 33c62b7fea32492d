"""What the user sees while the library works: short messages, warnings and live progress.

The library itself prints nothing; it tells a ``Feedback``, chosen once per call:

* in a terminal: rich lines and live bars on stderr (stdout stays for ``--json``);
* in Jupyter or Colab: one HTML table of the jobs that updates in place (``IPython.display``
  with a display id: no widget library needed, and the final state stays in the notebook);
* ``progress=False``: silence, but for warnings.
"""

from __future__ import annotations

import contextlib
import html
import time


def in_notebook() -> bool:
    """Whether this runs inside a Jupyter kernel (a notebook, JupyterLab, Colab, VS Code)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and (type(shell).__name__ == "ZMQInteractiveShell" or "google.colab" in str(type(shell)))


class Feedback:
    """Messages and progress for one call. ``progress``: True (a display that fits where this
    runs), False (warnings only), or a function that receives every ``zoo.types.Event``."""

    def __init__(self, progress=True):
        self.events = progress if callable(progress) else None
        self.show = bool(progress) and self.events is None

    def info(self, label: str | None, text: str) -> None:
        if not self.show:
            return
        from zoo.console import err, safe

        head = f"[bold]{safe(label)}:[/] " if label else ""
        err.print(f"{head}{safe(text)}" if label else f"[bold]{safe(text)}[/]", highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        from zoo.console import err, safe

        err.print(f"[yellow]Warning:[/] {safe(text)}", highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def display(self, jobs, executor: str = "local", failures_shown: bool = True):
        """A live display of ``jobs`` while the block runs; yields the function to send events to.
        ``failures_shown=False``: a failure is left to the caller's own error (one job alone)."""
        if self.events is not None:
            yield self.events
            return
        if not self.show:
            yield lambda event: None
            return
        if in_notebook():
            shown = NotebookDisplay(jobs)
        else:
            from zoo.progress import JobsDisplay, TrainingDisplay

            shown = (JobsDisplay(jobs) if executor == "dask" else
                     TrainingDisplay(models=len(jobs), show_failures=failures_shown))
        with shown:
            yield shown.on_event


class NotebookDisplay:
    """A table of jobs in a notebook cell, redrawn in place a few times a second at most:
    each job's state, epoch, the last accuracy and the time per epoch."""

    REDRAW_SECONDS = 0.5

    def __init__(self, jobs):
        self.rows = {job: {"state": "waiting", "epoch": "", "accuracy": "", "seconds": ""} for job in jobs}
        self.lines: list[str] = []
        self.handle = None
        self._drawn = 0.0

    def __enter__(self):
        from IPython.display import HTML, display

        self.handle = display(HTML(self._html()), display_id=True)
        return self

    def __exit__(self, *exc):
        self._draw(force=True)
        return False

    def on_event(self, event) -> None:
        row = self.rows.get(event.job)
        if row is None:
            return
        kind = event.kind
        if kind == "started":
            row.update(state="training", epochs=event.epochs)
        elif kind == "epoch_started":
            row["epoch"] = f"{event.epoch} of {row.get('epochs', '?')}"
        elif kind == "step" and event.metrics:
            row["accuracy"] = f"{event.metrics.get('accuracy', 0) * 100:.2f}% (train)"
        elif kind == "epoch_ended":
            metrics = event.metrics or {}
            if "val_accuracy" in metrics:
                row["accuracy"] = f"{metrics['val_accuracy'] * 100:.2f}% (validation)"
            row["seconds"] = f"{event.seconds or 0:.1f} s"
        elif kind == "finished":
            accuracy = event.record.test_accuracy if event.record is not None else None
            row.update(state="done", accuracy="" if accuracy is None else f"{accuracy * 100:.2f}% (test)")
        elif kind == "failed":
            row["state"] = "failed"
            self.lines.append(event.error or "")
        self._draw(force=kind in ("started", "finished", "failed"))

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.handle is None or (not force and now - self._drawn < self.REDRAW_SECONDS):
            return
        from IPython.display import HTML

        self._drawn = now
        self.handle.update(HTML(self._html()))

    def _html(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(job.label)}</td><td>{html.escape(str(r['state']))}</td>"
            f"<td>{html.escape(str(r['epoch']))}</td><td>{html.escape(str(r['accuracy']))}</td>"
            f"<td>{html.escape(str(r['seconds']))}</td></tr>" for job, r in self.rows.items())
        errors = "".join(f"<p style='color:#b00'>Error: {html.escape(line)}</p>" for line in self.lines)
        return ("<table><thead><tr><th>job</th><th>state</th><th>epoch</th><th>accuracy</th>"
                f"<th>s/epoch</th></tr></thead><tbody>{cells}</tbody></table>{errors}")
