"""Comparison rows made from run records, and read back from saved runs.

A row is plain data (the keys ``zoo compare --json`` prints and ``Comparison.rows``
holds): one per model, recipe and set of options, with its statistics over seeds.
``zoo.columns`` says how a row is shown; ``zoo.comparing`` runs the jobs.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from statistics import median

from zoo import statistics
from zoo.columns import data_keys, markdown
from zoo.diagnosis import row_warnings
from zoo.errors import ZooError
from zoo.files import (
    atomic_write_json,
    atomic_write_text,
    check_output_file,
    link_outside,
    read_json,
)
from zoo.registry import matches
from zoo.runs import RUN_FILE, RunRecord, read_history, read_record, read_steps
from zoo.types import label, name_of


def _median_or_none(values) -> float | None:
    values = [v for v in values or () if v is not None]
    return float(median(values)) if values else None


def row_from_record(record: RunRecord) -> dict:
    """One comparison row (also one object of ``--json``) from a run record."""
    published = record.published.test_accuracy if record.published else None
    test = record.test_accuracy
    return {
        "model": record.model,
        "label": label(record.model, record.knobs),  # the model, or its variant: baseline-cnn[dropout=0.5]
        "knobs": dict(record.knobs),
        "recipe": record.recipe,
        "dataset": record.dataset.name,
        "status": record.status,
        "params": record.params,
        "macs": record.macs,
        "epochs": record.hyperparameters.get("epochs"),
        "epochs_completed": record.epochs_completed,
        "seconds_per_epoch": record.seconds_per_epoch,
        "training_seconds": record.training_seconds,
        "training_tflop": record.cost.get("training_tflop"),
        "share_of_peak": _median_or_none(record.cost.get("share_of_peak")),
        "best_val_accuracy": record.best_val_accuracy,
        "test_accuracy": test,
        "test_loss": record.test_loss,
        "published_accuracy": published,
        "vs_published": (test - published) if test is not None and published is not None else None,
        "per_class_accuracy": record.per_class_accuracy,
        "validate_on": record.split.validate_on,
        "precision": record.execution.get("precision", "float32"),
        "backend": record.environment.get("backend"),
        "seed": record.seed,
        "run_dir": record.run_dir,
        "error": record.error,
        "overridden": bool(record.overrides or record.split.limit),
        "warnings": list(record.warnings),
        "budget": dict(record.budget) or None,
        "tested_on": dict(record.tested_on) or None,
    }


def _compare_order(folder: Path) -> list[str]:
    """Run folder names in the order the comparison ran them (empty if compare.json is unreadable)."""
    try:
        rows = read_json(folder / "compare.json", "comparison")
        return [Path(r.get("run_dir") or "").name for r in rows if isinstance(r, dict)]
    except (ZooError, TypeError, AttributeError):
        return []


def records_from_dirs(dirs, warn=None) -> list[RunRecord]:
    """Run records from run directories, or from folders holding run directories.

    Inside a folder of runs, one unreadable or malformed run is skipped with a
    one-line warning (``warn``) and the rest are read; a run directory named
    directly must read.
    """
    records = []
    for d in dirs:
        path = Path(d)
        if (path / RUN_FILE).is_file():
            records.append(read_record(path))
        elif path.is_dir():
            found = sorted(p.parent for p in path.glob(f"*/{RUN_FILE}"))
            order = _compare_order(path)  # keep the comparison's own order
            found.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
            if not found:
                raise ZooError(f"{d}: no runs found (no {RUN_FILE} in it or its sub-folders)")
            for run in found:
                elsewhere = link_outside(run, path)
                if elsewhere is not None and warn is not None:
                    warn(f"{run.name} links to {elsewhere}, outside {d}: read as one of its runs")
                try:
                    records.append(read_record(run))
                except ZooError as exc:
                    if warn is None:
                        raise
                    warn(f"skipped: {exc}")
            if not records:
                raise ZooError(f"{d}: none of its runs could be read")
        else:
            raise ZooError(f"{d}: no such run directory")
    return records


def pick_saved(records: list[RunRecord], patterns=(), models=None) -> list[RunRecord]:
    """Saved runs whose model matches ``patterns`` (fnmatch) and, if given, is in ``models``."""
    picked = [r for r in records if matches(r.model, patterns)]
    if patterns and not picked:
        raise ZooError(f"no saved run matches {' '.join(patterns)}")
    if models is not None:
        picked = [r for r in picked if r.model in models]
    return picked


def unlike(rows: list[dict]) -> dict[str, list[str]]:
    """Settings in which saved runs differ (then they are not a like-for-like comparison)."""
    differ = {}
    for key in ("dataset", "validate_on", "precision", "backend"):  # seeds differ on purpose: statistics pool them
        values = sorted({str(r[key]) for r in rows})
        if len(values) > 1:
            differ[key] = values
    return differ


def export(rows: list[dict], json_path=None, csv_path=None, md_path=None):
    """Write the rows as JSON, CSV (lists as JSON text) and Markdown, each atomically."""
    if json_path:
        atomic_write_json(json_path, rows)
    if csv_path:
        keys = list(dict.fromkeys([*data_keys(), *(k for r in rows for k in r)]))
        keys = [k for k in keys if k not in ("per_class_accuracy", "records") and any(k in r for r in rows)]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in rows)
        atomic_write_text(csv_path, buf.getvalue())
    if md_path:
        atomic_write_text(md_path, markdown(rows))


def learning_curves(rows: list[dict]) -> dict[str, tuple[dict, dict | None]]:
    """Per row, the learning of its run nearest the row's mean (one curve per model): the
    per-epoch history and the steps sampled within epochs, labelled by model (and recipe when
    a model has several rows)."""
    counts = Counter(name_of(r) for r in rows)
    out = {}
    for row in rows:
        dirs = row.get("run_dirs") or [row.get("run_dir")]
        accuracies = row.get("accuracies") or []
        if len(accuracies) == len(dirs) and row.get("mean") is not None:
            dirs = [dirs[min(range(len(dirs)), key=lambda i: abs(accuracies[i] - row["mean"]))]]
        history = read_history(dirs[0]) if dirs[0] else None
        if history and history.get("loss"):
            label = name_of(row) if counts[name_of(row)] == 1 else f"{name_of(row)}/{row.get('recipe')}"
            out[label] = (history, read_steps(dirs[0]))
    return out


# -- several seeds: statistics per model ------------------------------------------------------
def summary_rows(records: list[RunRecord], margin: float | None = None) -> tuple[list[dict], list[str]]:
    """One row per model, recipe and set of options: the run row's keys (for older tools)
    plus n, mean, std, the 95% interval, the test against the best and the verdict."""
    analysed, notes = statistics.analyse(records, statistics.MARGIN if margin is None else margin)
    rows = []
    for stats in analysed:
        runs = stats.pop("records")
        row = row_from_record(runs[0])
        comparable = stats.get("verdict") not in (None, "not comparable")
        row.update({
            "test_accuracy": stats["mean"],
            "test_loss": _mean([r.test_loss for r in runs]),
            "best_val_accuracy": _mean([r.best_val_accuracy for r in runs]),
            "seconds_per_epoch": stats["median_seconds_per_epoch"],
            "training_seconds": stats["median_training_seconds"],
            "training_tflop": _median_or_none([r.cost.get("training_tflop") for r in runs]),
            "share_of_peak": _median_or_none([_median_or_none(r.cost.get("share_of_peak")) for r in runs]),
            "vs_published": (stats["mean"] - row["published_accuracy"]) if comparable else None,
            "run_dirs": [r.run_dir for r in runs],
            "per_class_accuracy": _mean_lists([r.per_class_accuracy for r in runs]),
            "warnings": row_warnings(runs),
            **{k: v for k, v in stats.items() if k not in ("model", "recipe")},
        })
        if stats["n"] > 1:
            row["run_dir"], row["seed"] = None, None
        rows.append(row)
    return rows, notes


def comparison_rows(records: list[RunRecord], failed=(), margin: float | None = None) -> tuple[list[dict], list[str]]:
    """The table's and the exports' rows: statistics per model over the completed runs, then
    the runs that were interrupted and the jobs that failed (``zoo.types.Outcome``)."""
    rows, notes = summary_rows([r for r in records if r.status == "completed"], margin)
    rows += [{**row_from_record(r), "standing": None} for r in records if r.status != "completed"]
    rows += [{"model": o.job.model, "label": o.job.name, "knobs": o.job.settings, "recipe": o.job.recipe,
              "seed": o.job.seed, "status": "failed",
              "error": o.error} for o in failed]
    return rows, notes


def _mean_lists(lists):
    """Column means of equal-length lists, each over the values that are not None."""
    lists = [v for v in lists if v]
    columns = [[x for x in col if x is not None] for col in zip(*lists)]
    return [round(float(sum(col) / len(col)), 4) if col else None for col in columns] if lists else None


def _mean(values):
    values = [v for v in values if v is not None]
    return float(sum(values) / len(values)) if values else None


def check_export_paths(*paths) -> None:
    """Files the rows will be written to, checked before anything trains (``files.check_output_file``)."""
    for path in paths:
        if path is not None:
            check_output_file(path)
