"""Several runs side by side: the same data, split and seed for every model.

Each model trains with its own article's recipe (that is what is being compared);
what is shared is everything else. A model that fails to build or train fails
alone; Ctrl-C keeps the models already finished, in the table and in the files.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from zoo.errors import ZooError
from zoo.files import atomic_write_json, atomic_write_text
from zoo.training import RUN_FILE, load_run

COLUMNS = [
    # key, header, format
    ("model", "model", str),
    ("recipe", "recipe", str),
    ("params", "params", lambda v: f"{v:,}"),
    ("macs", "MACs", lambda v: f"{v:,}"),
    ("epochs_completed", "epochs", str),
    ("seconds_per_epoch", "s/epoch", lambda v: f"{v:.1f}"),
    ("training_seconds", "total s", lambda v: f"{v:.1f}"),
    ("best_val_accuracy", "best val acc", lambda v: f"{v * 100:.2f}%"),
    ("test_accuracy", "test acc", lambda v: f"{v * 100:.2f}%"),
    ("test_loss", "test loss", lambda v: f"{v:.4f}"),
    ("published_accuracy", "published", lambda v: f"{v * 100:.2f}%"),
    ("vs_published", "Δ published", lambda v: f"{v * 100:+.2f} pt"),
]


def row_from_record(record: dict) -> dict:
    """One comparison row (also one object of ``--json``) from a run record."""
    published = (record.get("published") or {}).get("test_accuracy")
    test = record.get("test_accuracy")
    return {
        "model": record["model"],
        "recipe": record.get("recipe"),
        "status": record.get("status"),
        "params": record.get("params"),
        "macs": record.get("macs"),
        "epochs": record.get("hyperparameters", {}).get("epochs"),
        "epochs_completed": record.get("epochs_completed"),
        "seconds_per_epoch": record.get("seconds_per_epoch"),
        "training_seconds": record.get("training_seconds"),
        "best_val_accuracy": record.get("best_val_accuracy"),
        "test_accuracy": test,
        "test_loss": record.get("test_loss"),
        "published_accuracy": published,
        "vs_published": (test - published) if test is not None and published is not None else None,
        "per_class_accuracy": record.get("per_class_accuracy"),
        "validate_on": record.get("split", {}).get("validate_on"),
        "precision": record.get("execution", {}).get("precision", "float32"),
        "backend": record.get("environment", {}).get("backend"),
        "seed": record.get("seed"),
        "run_dir": record.get("run_dir"),
        "error": record.get("error"),
        "overridden": bool(record.get("overrides") or record.get("split", {}).get("limit")),
    }


def records_from_dirs(dirs) -> list[dict]:
    """Run records from run directories, or from folders holding run directories."""
    records = []
    for d in dirs:
        path = Path(d)
        if (path / RUN_FILE).is_file():
            records.append(load_run(path))
        elif path.is_dir():
            found = sorted(p.parent for p in path.glob(f"*/{RUN_FILE}"))
            if (path / "compare.json").is_file():  # keep the comparison's own order
                order = [Path(r.get("run_dir") or "").name for r in json.loads((path / "compare.json").read_text())]
                found.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
            if not found:
                raise ZooError(f"{d}: no runs found (no {RUN_FILE} in it or its sub-folders)")
            records += [load_run(p) for p in found]
        else:
            raise ZooError(f"{d}: no such run directory")
    return records


def export(rows: list[dict], json_path=None, csv_path=None, md_path=None):
    if json_path:
        atomic_write_json(json_path, rows)
    if csv_path:
        keys = [k for k in rows[0] if k != "per_class_accuracy"] if rows else []
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(csv_path, buf.getvalue())
    if md_path:
        atomic_write_text(md_path, markdown(rows))


def _cell(row, key, fmt):
    value = row.get(key)
    return "—" if value is None else fmt(value)


def markdown(rows: list[dict]) -> str:
    headers = [h for _, h, _ in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, k, f) for k, _, f in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


COST = ("model", "recipe", "params", "macs", "epochs_completed", "seconds_per_epoch", "training_seconds")
RESULTS = ("model", "epochs_completed", "best_val_accuracy", "test_accuracy", "test_loss", "published_accuracy",
           "vs_published")


def tables(rows: list[dict], title: str, width: int):
    """One side-by-side table on a wide terminal; on a narrow one, results and costs apart."""
    if width >= 150:
        return [_table(rows, title, [c[0] for c in COLUMNS])]
    return [_table(rows, f"{title}: results", RESULTS), _table(rows, "What each model cost", COST)]


def _table(rows: list[dict], title: str, keys):
    from rich.table import Table

    columns = [c for c in COLUMNS if c[0] in keys]
    t = Table(title=title, title_justify="left")
    for key, header, _ in columns:
        t.add_column(header, justify="left" if key in ("model", "recipe") else "right", no_wrap=True)
    best = max((r["test_accuracy"] for r in rows if r.get("test_accuracy") is not None), default=None)
    for row in rows:
        cells = [_cell(row, k, f) for k, _, f in columns]
        if row.get("status") in ("interrupted", "failed"):
            note = "[yellow]interrupted[/]" if row["status"] == "interrupted" else "[red]failed[/]"
            cells[1] = note
        style = "bold green" if best is not None and row.get("test_accuracy") == best else None
        t.add_row(*cells, style=style)
    if any(r.get("overridden") for r in rows):
        t.caption = "published: the article's result for its full recipe; these runs changed epochs or data size"
    return t


def per_class_table(rows: list[dict], class_names):
    from rich.table import Table

    done = [r for r in rows if r.get("per_class_accuracy")]
    t = Table(title="Test accuracy per class", title_justify="left")
    t.add_column("class")
    for r in done:
        t.add_column(r["model"], justify="right")
    for i, name in enumerate(class_names):
        values = [r["per_class_accuracy"][i] for r in done]
        worst = min(values) if values else None
        t.add_row(str(name), *(f"[red]{v * 100:.2f}%[/]" if v == worst and len(values) > 1 else f"{v * 100:.2f}%"
                               for v in values))
    return t


def histories(rows: list[dict]) -> dict[str, dict]:
    """Each run's history, labelled by model (and run folder when a model appears twice)."""
    from collections import Counter

    counts = Counter(r["model"] for r in rows)
    out = {}
    for row in rows:
        path = Path(row.get("run_dir") or "") / "history.json"
        if row.get("run_dir") and path.is_file():
            label = row["model"] if counts[row["model"]] == 1 else f"{row['model']} ({Path(row['run_dir']).name})"
            out[label] = json.loads(path.read_text())
    return out
