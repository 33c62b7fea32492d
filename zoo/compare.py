"""Comparison rows, tables and exports, made from run records.

``zoo.executors.run_comparison`` runs the jobs (and keeps the failure and Ctrl-C
rules); this module only turns the records into rows, rich tables, JSON, CSV and
Markdown, and reads saved runs back for ``zoo compare --from-runs``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from statistics import median

from zoo.errors import ZooError
from zoo.files import atomic_write_json, atomic_write_text
from zoo.runs import RUN_FILE, RunRecord, read_history, read_record


def _median_or_none(values) -> float | None:
    values = [v for v in values or () if v is not None]
    return float(median(values)) if values else None


def row_from_record(record: RunRecord) -> dict:
    """One comparison row (also one object of ``--json``) from a run record."""
    published = record.published.test_accuracy if record.published else None
    test = record.test_accuracy
    return {
        "model": record.model,
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
    }


def _compare_order(folder: Path) -> list[str]:
    """Run folder names in the order the comparison ran them (empty if compare.json is unreadable)."""
    try:
        rows = json.loads((folder / "compare.json").read_text(encoding="utf-8"))
        return [Path(r.get("run_dir") or "").name for r in rows if isinstance(r, dict)]
    except (OSError, ValueError, TypeError, AttributeError):
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
    from zoo.registry import matches

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
        keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("per_class_accuracy", "records")))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in rows)
        atomic_write_text(csv_path, buf.getvalue())
    if md_path:
        atomic_write_text(md_path, summary_markdown(rows))


def per_class_tables(rows: list[dict], records: list[RunRecord]) -> list:
    """One per-class table per dataset among the runs (classes of one dataset mean nothing for another)."""
    class_names = {r.dataset.name: r.class_names for r in records}
    if len(class_names) == 1:
        return [per_class_table(rows, next(iter(class_names.values())))]
    return [per_class_table([r for r in rows if r.get("dataset") == name], names, f" ({name})")
            for name, names in class_names.items()]


def per_class_table(rows: list[dict], class_names, title_suffix: str = ""):
    from rich.table import Table

    from zoo.console import safe

    done = [r for r in rows if r.get("per_class_accuracy")]
    t = Table(title=f"Test accuracy per class{safe(title_suffix)}", title_justify="left")
    t.add_column("class")
    for r in done:
        t.add_column(safe(r["model"]), justify="right")
    for i, name in enumerate(class_names):
        values = [r["per_class_accuracy"][i] for r in done]
        worst = min(values) if values else None
        t.add_row(safe(name), *(f"[red]{v * 100:.2f}%[/]" if v == worst and len(values) > 1 else f"{v * 100:.2f}%"
                               for v in values))
    return t


def histories(rows: list[dict]) -> dict[str, dict]:
    """Each run's history, labelled by model (and run folder when a model appears twice)."""
    from collections import Counter

    counts = Counter(r["model"] for r in rows)
    out = {}
    for row in rows:
        history = read_history(row["run_dir"]) if row.get("run_dir") else None
        if history:
            label = row["model"] if counts[row["model"]] == 1 else f"{row['model']} ({Path(row['run_dir']).name})"
            out[label] = history
    return out


# -- several seeds: statistics per model ------------------------------------------------------
def summary_rows(records: list[RunRecord]) -> tuple[list[dict], list[str]]:
    """One row per model, recipe and set of options: the run row's keys (for older tools)
    plus n, mean, std, the 95% interval, the test against the best and the verdict."""
    from zoo import statistics

    analysed, notes = statistics.analyse(records)  # pools completed runs only
    rows = []
    for stats in analysed:
        runs = stats.pop("records")
        row = row_from_record(runs[0])
        comparable = stats.get("published_inside") is not None
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
            **{k: v for k, v in stats.items() if k not in ("model", "recipe")},
        })
        if stats["n"] > 1:
            row["run_dir"], row["seed"] = None, None
        rows.append(row)
    return rows, notes


def comparison_rows(records: list[RunRecord], failed=()) -> tuple[list[dict], list[str]]:
    """The table's and the exports' rows: statistics per model over the completed runs, then
    the runs that were interrupted and the jobs that failed (``zoo.executors.Outcome``)."""
    rows, notes = summary_rows([r for r in records if r.status == "completed"])
    rows += [{**row_from_record(r), "standing": None} for r in records if r.status != "completed"]
    rows += [{"model": o.job.model, "recipe": o.job.recipe, "seed": o.job.seed, "status": "failed",
              "error": o.error} for o in failed]
    return rows, notes


def _mean_lists(lists):
    lists = [v for v in lists if v]
    return [round(float(sum(col) / len(col)), 4) for col in zip(*lists)] if lists else None


def _mean(values):
    values = [v for v in values if v is not None]
    return float(sum(values) / len(values)) if values else None


def _accuracy_cell(row) -> str:
    if row.get("mean") is None:
        return "—" if row.get("test_accuracy") is None else f"{row['test_accuracy'] * 100:.2f}%"
    if row["n"] == 1:
        return f"{row['mean'] * 100:.2f}%"
    return f"{row['mean'] * 100:.2f} ± {row['std'] * 100:.2f}%"


def _interval_cell(row) -> str:
    if row.get("ci_low") is None:
        return "—"
    return f"{row['ci_low'] * 100:.2f}–{row['ci_high'] * 100:.2f}%"


def _vs_best_cell(row) -> str:
    from zoo.statistics import fmt_p

    standing = row.get("standing")
    if standing is None:
        return "—"
    if standing == "best":
        return "best"
    if standing == "untested":
        return f"no test ({row.get('untested_because') or 'no per-image results'})"
    mark = "≈ best" if standing.startswith("not distinguishable") else "worse"
    holm = ", Holm" if row.get("holm") else ""
    return f"{mark} (p {fmt_p(row['p_value_vs_best'])}, {row['test']}{holm})"


def _published_cell(row) -> str:
    if row.get("published_accuracy") is None:
        return "—"
    return f"{row['published_accuracy'] * 100:.2f}%"


SUMMARY_COLUMNS = [
    # key, header, cell
    ("model", "model", lambda r: str(r["model"])),
    ("recipe", "recipe", lambda r: str(r.get("recipe") or "—")),
    ("n", "n", lambda r: str(r.get("n") or "—")),
    ("accuracy", "test acc", _accuracy_cell),
    ("interval", "95% interval", _interval_cell),
    ("vs_best", "vs the best", _vs_best_cell),
    ("published", "published", _published_cell),
    ("verdict", "reproduction", lambda r: r.get("verdict") or "—"),
    ("seconds_per_epoch", "s/epoch", lambda r: "—" if r.get("seconds_per_epoch") is None
     else f"{r['seconds_per_epoch']:.1f}"),
    ("training_seconds", "total s", lambda r: "—" if r.get("training_seconds") is None
     else f"{r['training_seconds']:.1f}"),
    ("training_tflop", "train TFLOP", lambda r: "—" if r.get("training_tflop") is None
     else f"{r['training_tflop']:.3g}"),
    ("share_of_peak", "% of peak", lambda r: "—" if r.get("share_of_peak") is None
     else f"{r['share_of_peak'] * 100:.2g}%"),
    ("params", "params", lambda r: "—" if r.get("params") is None else f"{r['params']:,}"),
    ("macs", "MACs", lambda r: "—" if r.get("macs") is None else f"{r['macs']:,}"),
]
SUMMARY_RESULTS = ("model", "n", "accuracy", "interval", "vs_best", "published", "verdict")
SUMMARY_COST = ("model", "recipe", "params", "macs", "seconds_per_epoch", "training_seconds", "training_tflop",
                "share_of_peak")


def summary_tables(rows: list[dict], title: str, width: int):
    """The comparison table: one row per model; results and costs apart on a narrow terminal."""
    if width >= 170:
        return [_summary_table(rows, title, [c[0] for c in SUMMARY_COLUMNS])]
    cost = _summary_table(rows, "What each model cost (medians over seeds)", SUMMARY_COST)
    cost.caption = None
    return [_summary_table(rows, f"{title}: results", SUMMARY_RESULTS), cost]


def _summary_table(rows: list[dict], title: str, keys):
    from rich.table import Table

    from zoo.console import safe

    columns = [c for c in SUMMARY_COLUMNS if c[0] in keys]
    t = Table(title=title, title_justify="left")
    for key, header, _ in columns:
        t.add_column(header, justify="left" if key in ("model", "recipe", "vs_best", "verdict") else "right",
                     no_wrap=key not in ("vs_best", "verdict"))
    datasets = {r.get("dataset") for r in rows if r.get("dataset")}
    for row in rows:
        cells = [safe(cell(row)) for _, _, cell in columns]
        if len(datasets) > 1 and row.get("dataset"):  # runs of several datasets: say which row is which
            cells[0] += f" ({safe(row['dataset'])})"
        if row.get("status") in ("interrupted", "failed"):
            cells[1] = "[yellow]interrupted[/]" if row["status"] == "interrupted" else "[red]failed[/]"
        style = {"best": "bold green", "not distinguishable from the best": "green"}.get(row.get("standing"))
        t.add_row(*cells, style=style)
    t.caption = ("95% interval: t across seeds, or Clopper-Pearson for one run. vs the best: McNemar (one run each) "
                 "or a t-test across seeds; ≈ best means p ≥ 0.05, not distinguishable.")
    return t


def summary_markdown(rows: list[dict]) -> str:
    headers = [h for _, h, _ in SUMMARY_COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row).replace("|", "\\|") for _, _, cell in SUMMARY_COLUMNS) + " |")
    return "\n".join(lines) + "\n"
