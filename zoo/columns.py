"""The comparison table's columns, written once.

Each ``Column`` says what its heading is, how a row's cell reads, which row keys it
shows, and how it sorts. The terminal table (``zoo.console``), the Markdown and CSV
exports, a notebook's ``Comparison._repr_html_`` and the report's index page all take
their columns from ``COLUMNS``, so a column added here appears everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from zoo.types import name_of


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def _accuracy_cell(row) -> str:
    if row.get("mean") is None:
        return _pct(row.get("test_accuracy"))
    if row["n"] == 1:
        return f"{row['mean'] * 100:.2f}%"
    return f"{row['mean'] * 100:.2f} ± {row['std'] * 100:.2f}%"


def _vs_best_cell(row) -> str:
    from zoo.statistics import fmt_p

    standing = row.get("standing")
    if standing is None:
        return "—"
    if standing == "best":
        return "best (tie)" if row.get("tied_best") else "best"
    if standing == "untested":
        return f"no test ({row.get('untested_because') or 'no per-image results'})"
    holm = f", Holm over {row['comparisons']} pairs" if row.get("holm") else ""
    test = f"p {fmt_p(row['p_value_vs_best'])}, {short_test(row['test'])}{holm}"
    detect = row.get("min_detectable_difference")
    power = ""
    if detect is not None:
        level = row.get("detectable_alpha")
        at = f" at α {level:.3g}" if level is not None and level < 0.05 else ""
        uncertain = " (from a few runs' sd)" if "uncertain" in (row.get("detectable_from") or "") else ""
        power = f"; would detect ≥ {detect * 100:.2f} pt{at}{uncertain}"
    if standing.startswith("not distinguishable"):
        return f"≈ best: not distinguishable at this n ({test}{power})"
    if standing == "unsettled":
        return (f"unsettled: the gap is larger than this n should detect, yet not rejected ({test}{power}); "
                f"more seeds")
    return f"worse ({test})"


def short_test(name: str | None) -> str:
    return (name or "").replace(" (same model, seeds and split)", "")


def _verdict_cell(row) -> str:
    return row.get("verdict_note") or row.get("verdict") or "—"


def _interval_cell(row) -> str:
    if row.get("ci_low") is None:
        return "—"
    return f"{row['ci_low'] * 100:.2f}–{row['ci_high'] * 100:.2f}%"


def _vs_reference_cell(row) -> str:
    """A variant against its reference: the difference, its 95% interval and the test."""
    from zoo.statistics import fmt_p

    if not row.get("reference"):
        return "reference" if row.get("knobs") and row.get("n") else "—"
    diff, ci = row.get("difference_vs_reference"), row.get("difference_interval")
    text = f"{diff * 100:+.2f} pt" if diff is not None else "—"
    if ci:
        text += f" (95% {ci[0] * 100:+.2f} to {ci[1] * 100:+.2f})"
    if row.get("p_value_vs_reference") is None:
        return f"{text}; no test ({row.get('untested_vs_reference') or 'none applies'})"
    return f"{text}, p {fmt_p(row['p_value_vs_reference'])}, {short_test(row.get('test_vs_reference'))}"


def _vs_best_sort(row):
    """The best first, then by p-value (the likelier to equal the best first)."""
    standing, p = row.get("standing"), row.get("p_value_vs_best")
    return 2.0 if standing == "best" else p


def _number(key: str, text: Callable[[float], str]):
    return lambda row: "—" if row.get(key) is None else text(row[key])


@dataclass(frozen=True)
class Column:
    key: str                                   # the column's own name
    header: str
    cell: Callable[[dict], str]                # the row's cell, as text
    fields: tuple[str, ...] = ()               # the row keys it shows (CSV puts these first)
    numeric: bool = False                      # right-aligned; sorts by ``sort``
    sort: Callable[[dict], object] | None = None  # the value a click on the heading sorts by
    results: bool = True                       # on a narrow terminal: the results table (else the cost one)
    cost: bool = False
    only_if: str | None = None                 # shown only when some row has this key (variants' columns)


COLUMNS = [
    Column("model", "model", name_of, ("model",), results=True, cost=True),
    Column("recipe", "recipe", lambda r: str(r.get("recipe") or "—"), ("recipe",), results=False, cost=True),
    Column("n", "n", lambda r: str(r.get("n") or "—"), ("n",), numeric=True, sort=lambda r: r.get("n")),
    Column("accuracy", "test acc", _accuracy_cell, ("mean", "std", "test_accuracy"), numeric=True,
           sort=lambda r: r["mean"] if r.get("mean") is not None else r.get("test_accuracy")),
    Column("interval", "95% interval", _interval_cell, ("ci_low", "ci_high", "seed_std", "test_set_se"), numeric=True,
           sort=lambda r: r.get("ci_low")),
    Column("vs_best", "vs the best", _vs_best_cell,
           ("standing", "p_value_vs_best", "test", "min_detectable_difference"), sort=_vs_best_sort),
    Column("vs_reference", "vs the reference", _vs_reference_cell,
           ("reference", "difference_vs_reference", "difference_interval", "p_value_vs_reference",
            "test_vs_reference"), sort=lambda r: r.get("difference_vs_reference"), only_if="knobs"),
    Column("published", "published", lambda r: _pct(r.get("published_accuracy")), ("published_accuracy",),
           numeric=True, sort=lambda r: r.get("published_accuracy")),
    Column("verdict", "reproduction", _verdict_cell, ("verdict", "equivalence_p", "prediction_low", "prediction_high",
                                                      "margin")),
    Column("seconds_per_epoch", "s/epoch", _number("seconds_per_epoch", lambda v: f"{v:.1f}"),
           ("seconds_per_epoch",), numeric=True, sort=lambda r: r.get("seconds_per_epoch"), results=False, cost=True),
    Column("training_seconds", "total s", _number("training_seconds", lambda v: f"{v:.1f}"),
           ("training_seconds",), numeric=True, sort=lambda r: r.get("training_seconds"), results=False, cost=True),
    Column("training_tflop", "train TFLOP", _number("training_tflop", lambda v: f"{v:.3g}"),
           ("training_tflop",), numeric=True, sort=lambda r: r.get("training_tflop"), results=False, cost=True),
    Column("share_of_peak", "% of peak", _number("share_of_peak", lambda v: f"{v * 100:.2g}%"),
           ("share_of_peak",), numeric=True, sort=lambda r: r.get("share_of_peak"), results=False, cost=True),
    Column("params", "params", _number("params", lambda v: f"{v:,}"), ("params",), numeric=True,
           sort=lambda r: r.get("params"), results=False, cost=True),
    Column("macs", "MACs", _number("macs", lambda v: f"{v:,}"), ("macs",), numeric=True,
           sort=lambda r: r.get("macs"), results=False, cost=True),
]

CAPTION = ("95% interval: of the model's accuracy, with both the seeds' noise (Student's t on n − 1 degrees of "
           "freedom) and the test set's; with one run, the test set's alone (Clopper-Pearson). vs the best: McNemar "
           "for one run each, Welch's t-test across seeds for different models, a paired t-test only for one model "
           "on the same seeds; Holm over every pair. ≈ best: p ≥ 0.05, not shown different — it says what this n "
           "could detect at Holm's level. reproduction: the published run is one draw, with our seed spread; "
           "consistent: TOST within the margin and inside our 95% prediction interval for one run; below/above: "
           "outside it.")


def shown(rows: list[dict], columns=None) -> list[Column]:
    """The columns these rows need: a variant's column only where there are variants; for
    models re-tested on another dataset, what was measured there (not what training cost)."""
    retested = bool(rows) and all(r.get("tested_on") for r in rows)
    training_only = ("published", "verdict")  # an article's figure is for its own test set
    return [c for c in columns or COLUMNS if (c.only_if is None or any(r.get(c.only_if) for r in rows))
            and not (retested and (not c.results or c.key in training_only))]


def cells(row: dict) -> dict[str, str]:
    """Every column's text for one row."""
    return {c.key: c.cell(row) for c in COLUMNS}


def sort_values(row: dict) -> dict[str, str]:
    """Every sortable column's value for one row, as text for an HTML ``data-value`` ('' when none)."""
    values = {}
    for c in COLUMNS:
        value = c.sort(row) if c.sort else None
        values[c.key] = "" if value is None else (repr(float(value)) if c.numeric or c.key in ("vs_best",
                                                  "vs_reference") else str(value))
    values["model"] = name_of(row)
    return values


def data_keys() -> list[str]:
    """The row keys the columns show, in the columns' order (CSV's first columns)."""
    return list(dict.fromkeys(k for c in COLUMNS for k in c.fields))


def markdown(rows: list[dict]) -> str:
    """The table as Markdown, every column."""
    columns = shown(rows)
    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [c.cell(row).replace("|", "\\|") for c in columns]
        if row.get("warnings"):
            cells[0] += " ⚠"
        lines.append("| " + " | ".join(cells) + " |")
    warned = [f"- ⚠ {name_of(row)}/{row.get('recipe')}: {w}" for row in rows for w in row.get("warnings") or []]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(warned) + "\n" if warned else "")
