"""The live training display (on stderr, so ``--json`` output stays clean).

One bar for the jobs of a comparison, one for the current model's epochs, one for
the steps of the current epoch with running loss and accuracy; a line per finished
epoch stays above the bars, like Keras's own log but with seconds per epoch.

It subscribes to the job API's events: ``zoo.feedback.Feedback.display`` hands its
``on_event`` to ``run_job`` or ``zoo.comparing.run_jobs``.
"""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from zoo.console import err, safe


def metrics_text(metrics: dict) -> str:
    names = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
    return "  ".join(f"{names[k]} {metrics[k]:.4f}" for k in names if k in metrics)


class _LiveDisplay:
    """A rich ``Progress`` shown while the ``with`` block runs."""

    progress: Progress

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False


class TrainingDisplay(_LiveDisplay):
    def __init__(self, models: int = 1, console=None, show_failures: bool = True):
        # One job alone (zoo train): its failure is the command's one error line, not two.
        self.show_failures = show_failures
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=console or err,
            transient=False,
        )
        self.models_task = (self.progress.add_task("models", total=models, metrics="") if models > 1 else None)
        self.epochs_task = None
        self.steps_task = None
        self.name = ""
        self.training, self.together = False, 0  # how many runs started and are not finished: a seed batch

    def on_event(self, event) -> None:
        """Draw one ``zoo.types.Event``."""
        kind, name = event.kind, event.job.name
        if kind == "started":
            self.together = self.together + 1 if self.training else 1  # seeds of one batch start together
            self.training = True
            self.start_model(name, event.epochs, event.steps)
        elif kind == "epoch_started":
            self.start_epoch(event.epoch)
        elif kind == "step":
            self.step(event.step, event.metrics)
        elif kind == "epoch_ended":
            seed = f" seed {event.job.seed}" if self.together > 1 else ""
            self.end_epoch(event.epoch, event.metrics or {}, event.seconds or 0.0, seed)
        elif kind == "finished":
            self.training = False
            self.end_model()
        elif kind == "failed":
            self.training = False
            if self.show_failures:
                self.note(f"[red]Error:[/] {safe(event.error or '')}")
            self.end_model()

    def start_model(self, name, epochs, steps):
        self.name = name
        self.steps = steps
        for task in (self.epochs_task, self.steps_task):
            if task is not None:
                self.progress.remove_task(task)
        self.epochs_task = self.progress.add_task(f"{safe(name)} epochs", total=epochs, metrics="")
        self.steps_task = self.progress.add_task("  steps", total=steps, metrics="")

    def start_epoch(self, epoch):
        self.progress.reset(self.steps_task, description=f"  epoch {epoch} steps", metrics="")

    def step(self, step, metrics=None):
        if metrics:
            self.progress.update(self.steps_task, completed=step, metrics=metrics_text(metrics))
        else:
            self.progress.update(self.steps_task, completed=step)

    def end_epoch(self, epoch, logs, seconds, seed=""):
        # a seed batch ends each epoch once per seed: the bar counts epochs, not seeds' epochs
        self.progress.update(self.epochs_task, completed=epoch)
        self.progress.update(self.steps_task, metrics=metrics_text(
            {k: v for k, v in logs.items() if k in ("loss", "accuracy")}))
        self.progress.console.print(
            f"[cyan]{safe(self.name)}{seed}[/] epoch {epoch}: {seconds:.1f} s  {metrics_text(logs)}", highlight=False)

    def end_model(self):
        if self.models_task is not None:
            self.progress.advance(self.models_task)

    def note(self, text: str):
        self.progress.console.print(text, highlight=False)


class JobsDisplay(_LiveDisplay):
    """One row per job, for executors that run several at once (Dask): queued, running on
    a worker (epoch k of N, accuracy so far), finished with its test accuracy, or failed.
    A line per finished epoch stays above the rows, naming the worker."""

    def __init__(self, jobs, console=None):
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            TextColumn("{task.fields[state]}"),
            console=console or err,
            transient=False,
        )
        self.rows = {job: self.progress.add_task(safe(job.label), total=None, start=False, state="queued")
                     for job in jobs}
        self.epoch: dict = {}

    def on_event(self, event) -> None:
        """Draw one ``zoo.types.Event``."""
        row = self.rows.get(event.job)
        if row is None:
            return
        task = self.progress.tasks[row]
        where = f" · {safe(event.worker)}" if event.worker else ""
        if event.kind == "queued":
            self.progress.update(row, state="queued")
        elif event.kind == "started":
            self.progress.start_task(row)
            self.progress.update(row, total=event.epochs * event.steps, state=f"starting{where}")
            task.fields["steps"], task.fields["epochs"] = event.steps, event.epochs
        elif event.kind == "epoch_started":
            self.epoch[event.job] = event.epoch
        elif event.kind == "step" and task.fields.get("steps"):
            epoch, steps = self.epoch.get(event.job, 1), task.fields["steps"]
            accuracy = (event.metrics or {}).get("accuracy")
            state = f"epoch {epoch}/{task.fields['epochs']}" + (f"  acc {accuracy:.4f}" if accuracy else "")
            self.progress.update(row, completed=(epoch - 1) * steps + event.step, state=state + where)
        elif event.kind == "epoch_ended":
            if task.fields.get("steps"):
                self.progress.update(row, completed=event.epoch * task.fields["steps"])
            self.progress.console.print(
                f"[cyan]{safe(event.job.label)}[/] epoch {event.epoch}: {event.seconds or 0:.1f} s  "
                f"{metrics_text(event.metrics or {})}{where}", highlight=False)
        elif event.kind == "finished":
            accuracy = event.record.test_accuracy if event.record else None
            self.progress.update(row, completed=task.total or 1, total=task.total or 1,
                                 state="[green]done[/]" + (f"  test {accuracy * 100:.2f}%" if accuracy else ""))
            self.progress.stop_task(row)
        elif event.kind == "failed":
            self.progress.update(row, state="[red]failed[/]")
            self.progress.stop_task(row)
            self.progress.console.print(f"[red]Error:[/] {safe(event.error or '')}", highlight=False)
