"""What the Python API gives back: a ``Run`` (one trained model) and a ``Comparison`` (models
side by side, with their statistics). Both are views over what is saved on disk, so a
comparison loaded from its folder next week is the same object as the one just trained.

In a notebook, both show themselves as HTML (``_repr_html_``); in a terminal, ``print``
gives a text table.
"""

from __future__ import annotations

import html
import io
from functools import cached_property
from pathlib import Path

from zoo import site
from zoo.errors import OptionError, UnknownNameError
from zoo.feedback import Feedback
from zoo.plugins import get_zoo
from zoo.rows import learning_curves
from zoo.runs import RunRecord, open_run, read_history, read_record

FIGURES = ("accuracy", "pareto", "curves")


def _text(renderable, width: int = 150) -> str:
    from rich.console import Console

    # force_jupyter=False: in a notebook, rich would display the table instead of writing it
    console = Console(width=width, file=io.StringIO(), force_terminal=False, force_jupyter=False, color_system=None)
    console.print(renderable)
    return console.file.getvalue().rstrip()


class Run:
    """One trained model: its record (``run.json``), history and saved Keras model, in ``dir``."""

    def __init__(self, record: RunRecord, run_dir=None):
        self.record = record
        self.dir = Path(run_dir or record.run_dir)

    @classmethod
    def open(cls, run_dir) -> "Run":
        """The run saved in ``run_dir`` (a folder holding run.json)."""
        return cls(read_record(run_dir), run_dir)

    @property
    def model_name(self) -> str:
        return self.record.model

    @property
    def test_accuracy(self) -> float | None:
        return self.record.test_accuracy

    @property
    def seed(self) -> int:
        return self.record.seed

    @property
    def status(self) -> str:
        return self.record.status

    @cached_property
    def history(self) -> dict:
        """Per-epoch metrics (loss, accuracy, val_loss, val_accuracy, seconds), as Keras's History has them."""
        return read_history(self.dir) or {}

    def model(self):
        """The trained Keras model (loaded safely: no code from the file runs)."""
        get_zoo()  # plugins register their custom layers, which safe loading must know
        return open_run(self.dir)[1]

    def to_dict(self) -> dict:
        return {**self.record.to_dict(), "run_dir": str(self.dir)}

    def __repr__(self) -> str:
        accuracy = "—" if self.test_accuracy is None else f"{self.test_accuracy * 100:.2f}%"
        return (f"Run({self.model_name!r}, recipe {self.record.recipe!r}, seed {self.seed}, {self.status}, "
                f"test accuracy {accuracy}, dir {str(self.dir)!r})")

    def _repr_html_(self) -> str:
        r = self.record
        accuracy = "—" if r.test_accuracy is None else f"{r.test_accuracy * 100:.2f}%"
        cells = [("model", r.model), ("recipe", r.recipe), ("seed", r.seed), ("status", r.status),
                 ("test accuracy", accuracy), ("epochs", r.epochs_completed),
                 ("training time", "—" if r.training_seconds is None else f"{r.training_seconds:.1f} s"),
                 ("params", f"{r.params:,}"), ("folder", str(self.dir))]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td style='text-align:left'>"
                       f"{html.escape(str(v))}</td></tr>" for k, v in cells)
        return f"<table class='mnist-zoo run'>{body}</table>"


class Comparison:
    """Models compared on the same data: one row per model (``rows``, the same as ``zoo compare
    --json``), the runs behind them, and the folder they are saved in (``dir``; None for saved
    runs gathered from several places)."""

    def __init__(self, records: list[RunRecord], rows: list[dict], notes: list[str] = (), directory=None,
                 title: str | None = None, interrupted: bool = False):
        self.records = list(records)
        self.rows = rows
        self.notes = list(notes)
        self.dir = Path(directory) if directory is not None else None
        self.title = title or f"{len([r for r in rows if r.get('n')])} model(s) compared"
        self.interrupted = interrupted
        self.answer = None  # an experiment's answer in words (zoo.experiment), else None

    @property
    def runs(self) -> list[Run]:
        return [Run(r) for r in self.records]

    @property
    def best(self) -> dict | None:
        """The best row (the highest mean test accuracy), or None when nothing completed."""
        return next((r for r in self.rows if r.get("standing") == "best"), None)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r.get("status") == "failed"]

    def row(self, model: str) -> dict:
        """The row of ``model`` (its first, when a model has several recipes)."""
        for row in self.rows:
            if model in (row["model"], row.get("label")):
                return row
        raise UnknownNameError(f"no row for {model!r} in this comparison (it has: "
                               f"{', '.join(dict.fromkeys(r['model'] for r in self.rows))})")

    # -- showing it ---------------------------------------------------------------------------------
    def table(self, width: int | None = None):
        """The comparison table as a rich renderable (``rich.print(c.table())``): results and costs
        in one table, or in two when ``width`` is narrower than a wide terminal; then per class."""
        from rich.console import Group

        from zoo.console import (
            WIDE_TERMINAL,
            per_class_tables,
            summary_tables,
            warnings_text,
        )

        by_dataset = {r.dataset.name: r.class_names for r in self.records}
        done = [r for r in self.rows if r.get("n")]
        parts = summary_tables(self.rows, self.title, width or WIDE_TERMINAL)
        warned = warnings_text(self.rows)
        if warned is not None:
            parts.append(warned)
        if done and by_dataset:
            parts += per_class_tables(done, by_dataset)
        return Group(*parts)

    def __repr__(self) -> str:
        where = f" in {self.dir}" if self.dir else ""
        return f"<Comparison of {len(self.rows)} row(s){where}>\n" + _text(self.table(width=120), width=120)

    def _repr_html_(self) -> str:
        """The report's table (the same template and columns), with the notes under it."""
        env = site.environment()
        template = env.get_template("notebook.html")
        return template.render(rows=self.rows, title=self.title, notes=self.notes, directory=self.dir,
                               mixed_datasets=len({r.get("dataset") for r in self.rows if r.get("dataset")}) > 1,
                               **site.table_context(self.rows))

    def figure(self, kind: str = "accuracy"):
        """A matplotlib Figure: ``accuracy`` (each model's seeds, mean and 95% interval),
        ``pareto`` (accuracy against training time, compute and MACs) or ``curves``
        (validation accuracy and loss per epoch)."""
        from zoo import figures

        done = [r for r in self.rows if r.get("mean") is not None]
        if kind not in FIGURES:
            raise UnknownNameError(f"unknown figure {kind!r} (there are: {', '.join(FIGURES)})")
        if not done:
            raise UnknownNameError("no completed run to draw")
        if kind == "accuracy":
            return figures.accuracy_chart(done, None, self.title)
        if kind == "pareto":
            return figures.pareto(done, None)
        curves = learning_curves(done)
        if not curves:
            raise UnknownNameError("no run here kept its history: nothing to draw")
        return figures.overlaid_curves(curves, None)

    def report(self, out=None, **options):
        """Write the report (a static web site) of this comparison; returns where its pages are.
        ``out`` defaults to ``report/`` in the comparison's folder."""
        if out is None:
            out = (self.dir / "report") if self.dir else Path("report")
        return site.write(self.records, Path(out), warn=Feedback(options.pop("progress", True)).warn,
                          **self.shown(), **options)

    def shown(self) -> dict:
        """What a report of this comparison shows as computed here: its rows (its margin, its failed
        jobs), its notes and an experiment's answer."""
        return {"rows": self.rows, "notes": self.notes, "answer": self.answer.to_dict() if self.answer else None}

    def to_pandas(self):
        """The rows as a pandas DataFrame, one row per model (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            raise OptionError("to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(self.rows)
