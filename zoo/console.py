"""Rich rendering of listings and model cards. Functions take plain data (the dicts
``zoo.cards`` makes) so what is shown and what ``--json`` prints cannot drift apart."""

from __future__ import annotations

import os
from pathlib import Path
from statistics import median

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from zoo.columns import CAPTION, COLUMNS, shown
from zoo.types import name_of

# Piped or redirected output has no terminal to wrap to: use a width that keeps tables whole.
PIPE_WIDTH = 160


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, width=PIPE_WIDTH)
    return console


out = _console()
err = _console(stderr=True)


def _control(ch: str) -> bool:
    return (ord(ch) < 32 and ch not in "\n\t") or 0x7F <= ord(ch) < 0xA0


def printable(text) -> str:
    """Control characters (an ANSI escape in a plugin's title) shown as escapes, not obeyed."""
    text = str(text)
    if any(_control(ch) for ch in text):
        text = "".join(ch.encode("unicode_escape").decode("ascii") if _control(ch) else ch for ch in text)
    return text


def safe(text) -> str:
    """Text from outside (paths, names, titles, errors) as rich markup that shows it literally.

    Square brackets are escaped (``[/y]`` would crash rich, ``[draft]`` would vanish) and
    control characters are shown as escapes instead of reaching the terminal.
    """
    return escape(printable(text))


def train_summary(record, run_dir, figures) -> str:
    """The lines `zoo train` ends with: test result against the article, cost, where it is."""
    line = f"[bold]Test:[/] accuracy {pct(record.test_accuracy)}, loss {record.test_loss:.4f}"
    published = record.published.test_accuracy if record.published else None
    if published is not None:
        line += f" — the article reports {pct(published)}"
        if record.overrides or record.split.limit:
            line += " (for its full recipe; this run changed it, so the two are not comparable)"
        else:
            line += f" ({(record.test_accuracy - published) * 100:+.2f} pt)"
    logs = [f"{record.execution['tensorboard']}/ (tensorboard --logdir {safe(str(Path(run_dir).parent))})"] \
        if record.execution.get("tensorboard") else []
    files = ", ".join(["model.keras", "run.json", "history.json/.csv", "test_predictions.npz", *figures, *logs])
    epochs = record.epochs_completed
    warned = "".join(f"\n[bold yellow]⚠[/] [yellow]{safe(w)}[/]" for w in record.warnings)
    return (f"{line}{warned}\n{epochs} epoch{'s' * (epochs != 1)}, {record.seconds_per_epoch:.1f} s/epoch, "
            f"{record.training_seconds:.1f} s training{_compute(record)}. "
            f"Saved in [bold]{safe(str(run_dir))}[/]: {files}")


def _compute(record) -> str:
    """", 0.083 TFLOP at 34 GFLOP/s (27% of this CPU's fp32 peak)": what the training cost in arithmetic."""
    cost = record.cost or {}
    if not cost.get("training_tflop"):
        return ""
    text = f", {cost['training_tflop']:.3g} TFLOP"
    rates, shares = cost.get("gflops_per_second") or [], cost.get("share_of_peak") or []
    if rates:
        text += f" at {median(rates):.3g} GFLOP/s"
        if shares:
            peak = "bf16" if cost.get("peak_precision") == "bfloat16" else "fp32"
            text += f" ({median(shares) * 100:.2g}% of this CPU's {peak} peak)"
    return text


def n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def pct(value) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def shape(value) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in value) + ")"


def models_table(rows: list[dict]) -> Table:
    wide = out.width >= 110  # on a narrow terminal the title would squeeze every column
    table = Table(title="Architectures in the zoo", title_justify="left")
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("MACs", justify="right", no_wrap=True)
    table.add_column("input", no_wrap=True)
    table.add_column("published", justify="right", no_wrap=True)
    table.add_column("source", no_wrap=True, max_width=24, overflow="ellipsis")
    if wide:
        table.add_column("title", ratio=1)
    for row in rows:
        article = (f"article {row['article_file'][:3]}" if row.get("article_file")
                   else safe(row.get("site") or row["source"]))
        cells = [safe(row["name"]), n(row["params"]), n(row["macs"]), row["input_kind"],
                 pct(row["published_accuracy"]), article]
        table.add_row(*cells, *([safe(row["title"])] if wide else []))
    table.caption = "MACs: multiply-accumulates per image, forward pass. `zoo info NAME` explains a model."
    return table


def pretrained_table(rows: list[dict]) -> Table:
    """The pretrained models: each one run of the full recipe, beside its shipped multi-seed mean."""
    table = Table(title="Pretrained models (shipped with the zoo)", title_justify="left")
    for header in ("name", "test acc", "multi-seed mean", "recipe", "trained", "size", "SHA-256 (model.keras)"):
        table.add_column(header, justify="right" if header in ("test acc", "multi-seed mean", "size") else "left",
                         no_wrap=header != "trained")
    for row in rows:
        ref = row.get("reference") or {}
        mean = f"{pct(ref['mean'])} (n={ref['n']})" if ref.get("mean") is not None else "—"
        trained = (f"{row['epochs']} epochs, batch {row['batch_size']}, {row['train_images']:,} images "
                   f"(+{row['validation_images']:,} held out), seed {row['seed']}")
        table.add_row(f"[bold cyan]{safe(row['name'])}[/]", pct(row["test_accuracy"]), mean,
                      safe(row["recipe"]), safe(trained), f"{row['bytes'] / 1e6:.2f} MB", row["sha256"][:16] + "…")
    total = sum(row["bytes"] for row in rows)
    table.caption = (f"{len(rows)} models, {total / 1e6:.1f} MB together. Each is one run of its model's full recipe "
                     "on the held-out split; the multi-seed mean is from docs/results. Any command that takes a run "
                     "takes these names: zoo predict speedrun digit.png; zoo serve with no arguments serves them.")
    return table


def model_card(card: dict) -> Group:
    src = card["source"]
    head = Text.assemble((printable(card["title"]), "bold"), "\n\n", printable(card["summary"]), "\n\n",
                         ("Teaches: ", "bold"), printable(card["teaches"]), "\n",
                         ("Source: ", "bold"), printable(src["title"]), f" — {printable(src['site'])}",
                         f", {src['year']}" if src.get("year") else "",
                         f" (article {printable(src['article_file'])})" if src.get("article_file") else "",
                         f"\n{printable(src['url'])}" if src.get("url") else "")
    layers = Table(title="Layers", title_justify="left")
    for col, just in (("layer", "left"), ("type", "left"), ("output shape", "left"),
                      ("params", "right"), ("arithmetic", "left"), ("MACs", "right")):
        layers.add_column(col, justify=just)
    for row in card["layers"]:
        layers.add_row(safe(row["name"]), safe(row["type"]), shape(row["output_shape"]), n(row["params"]),
                       safe(row["arithmetic"]), n(row["macs"]) if row["macs"] else "")
    layers.add_section()
    layers.add_row("total", "", shape(card["output_shape"]), n(card["params"]),
                   f"{n(card['trainable_params'])} trainable, {n(card['non_trainable_params'])} non-trainable",
                   n(card["macs"]), style="bold")
    views = card.get("test_time_views", 1)
    if views > 1:
        layers.add_row("predicting", "", "", "", f"{views} views of each image: {views} × {n(card['macs'])}",
                       n(views * card["macs"]))
    recipes = [_recipe_panel(r) for r in card["recipes"]]
    parts = [Panel(head, title=f"[bold cyan]{safe(card['name'])}[/]", title_align="left"), layers, *recipes]
    prep = Text(printable("\n".join(f"• {name}: {text}" for name, text in card["data_preparation"].items())))
    parts.append(Panel(prep, title="Data the zoo feeds it", title_align="left"))
    if card.get("knobs"):
        knobs = Table(title=f"Knobs (zoo compare {card['name']} --vary KNOB=A,B)", title_justify="left")
        for col in ("knob", "default", "values", "what it changes"):
            knobs.add_column(col)
        for k in card["knobs"]:
            knobs.add_row(safe(k["name"]), safe(str(k["default"])),
                          safe(", ".join(map(str, k["values"]))) if k["values"] else "any number" if
                          isinstance(k["default"], (int, float)) else "any", safe(k["description"]))
        parts.append(knobs)
    if card["notes"]:
        parts.append(Panel(Text(printable("\n".join(f"• {x}" for x in card["notes"]))), title="Teaching notes",
                           title_align="left"))
    if card["pitfalls"]:
        parts.append(Panel(Text(printable("\n".join(f"• {x}" for x in card["pitfalls"]))), title="Known pitfalls",
                           title_align="left", border_style="yellow"))
    return Group(*parts)


def _recipe_panel(r: dict) -> Panel:
    grid = Table.grid(padding=(0, 2))
    pub = r["published"]
    published = "—" if not pub else f"{pct(pub['test_accuracy'])} test accuracy" + (
        f", loss {pub['test_loss']}" if pub.get("test_loss") is not None else "")
    src = r["source"]
    rows = [
        ("optimizer", r["optimizer_text"]),
        ("loss", f"{r.get('loss_text', r['loss'])} ({'one-hot' if r['labels'] == 'onehot' else 'integer'} labels)"),
        ("batch, epochs", f"{r['batch_size']}, {r['epochs']}"),
        ("validated on", _validation_text(r["validation"])),
        ("published", published),
        ("from", src["title"] + (f" (article {src['article_file'][:3]})" if src.get("article_file") else "")),
        *(("note", note) for note in r.get("notes", [])),
    ]
    for key, value in rows:
        grid.add_row(f"[bold]{key}[/]", safe(value))
    return Panel(grid, title=f"Recipe [bold]{safe(r['name'])}[/]", title_align="left")


def _validation_text(validation: str) -> str:
    if validation == "test":
        return "the test set (leaks)"
    if validation.startswith("split:"):
        return f"last {float(validation[6:]) * 100:.0f}% of train"
    return "nothing"


def plugins_table(plugins: list[dict]) -> Table:
    table = Table(title="Plugins", title_justify="left")
    for col in ("plugin", "distribution", "version", "hooks", "registers"):
        table.add_column(col)
    for p in plugins:
        table.add_row(safe(p["name"]), safe(p["distribution"]), safe(p["version"]), ", ".join(p["hooks"]),
                      safe(", ".join(p["architectures"] + p["datasets"] + p.get("experiments", []))))
    return table


def failures_table(failures: list[dict]) -> Table:
    table = Table(title="Failures", title_justify="left", border_style="red")
    for col in ("plugin", "distribution", "stage", "error", "hint"):
        table.add_column(col)
    for f in failures:
        table.add_row(safe(f["plugin"]), safe(f"{f['distribution']} {f['version']}"), f["stage"], safe(f["error"]),
                      safe(f["hint"]))
    return table


def datasets_table(rows: list[dict]) -> Table:
    table = Table(title="Datasets", title_justify="left")
    verified = any("verified" in r for r in rows)
    for col in ("name", "description", "classes", "license", "found at", *(["checksums"] if verified else [])):
        table.add_column(col)
    for r in rows:
        cells = [safe(r["name"]), safe(r["description"]), str(r["classes"]), safe(r["license"]),
                 safe(r["found"]) if r["found"] else "[yellow]not found locally (download on first use)[/]"]
        if verified:
            checks = r.get("verified")
            cells.append("—" if checks is None else "[red]mismatch[/]" if any(v is False for v in checks.values())
                         else "match" if all(v is True for v in checks.values()) else "no known checksums")
        table.add_row(*cells)
    return table


def data_table(info: dict) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row("[bold]source[/]", safe(info["source"]))
    head.add_row("[bold]license[/]", safe(info["license"]))
    head.add_row("[bold]sizes[/]", f"{n(info['train'])} training, {n(info['test'])} test images, "
                                   f"{'×'.join(map(str, info['image_shape']))}")
    head.add_row("[bold]pixels[/]", f"mean {info['pixel_mean']:.4f}, std {info['pixel_std']:.4f} "
                                    "(training set, after /255)")
    if "grid" in info:
        head.add_row("[bold]samples[/]", safe(info["grid"]))
    if "verified" in info:
        marks = {True: "[green]ok[/]", False: "[red]MISMATCH[/]", None: "[yellow]no known checksum[/]"}
        head.add_row("[bold]checksums[/]", ", ".join(f"{k} {marks[v]}" for k, v in info["verified"].items()))
    counts = Table(title="Images per class", title_justify="left")
    counts.add_column("class")
    counts.add_column("train", justify="right")
    counts.add_column("test", justify="right")
    for label, tr, te in zip(info["classes"], info["train_class_counts"], info["test_class_counts"]):
        counts.add_row(safe(label), n(tr), n(te))
    return Group(Panel(head, title=f"[bold cyan]{safe(info['name'])}[/]: {safe(info['description'])}",
                       title_align="left"), counts)


# -- the comparison table (columns from zoo.columns) ---------------------------------------------
WIDE_TERMINAL = 170  # narrower than this: results and costs in two tables


def summary_tables(rows: list[dict], title: str, width: int) -> list[Table]:
    """The comparison table: one row per model; results and costs apart on a narrow terminal."""
    columns = shown(rows)
    if width >= WIDE_TERMINAL or not any(c.cost and not c.results for c in columns):
        return [summary_table(rows, title, columns)]
    cost = summary_table(rows, "What each model cost (medians over seeds)", [c for c in columns if c.cost])
    cost.caption = None
    return [summary_table(rows, f"{title}: results", [c for c in columns if c.results]), cost]


def summary_table(rows: list[dict], title: str, columns=None) -> Table:
    columns = columns or shown(rows, COLUMNS)
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c.header, justify="right" if c.numeric else "left",
                     no_wrap=c.key not in ("vs_best", "verdict", "vs_reference"))
    datasets = {r.get("dataset") for r in rows if r.get("dataset")}
    for row in rows:
        cells = [safe(c.cell(row)) for c in columns]
        if len(datasets) > 1 and row.get("dataset"):  # runs of several datasets: say which row is which
            cells[0] += f" ({safe(row['dataset'])})"
        if row.get("warnings"):  # learned nothing: said in words under the table
            cells[0] += " [bold yellow]⚠[/]"
        if row.get("status") in ("interrupted", "failed") and len(cells) > 1:
            cells[1] = "[yellow]interrupted[/]" if row["status"] == "interrupted" else "[red]failed[/]"
        style = {"best": "bold green", "not distinguishable from the best": "green"}.get(row.get("standing"))
        t.add_row(*cells, style=style)
    t.caption = CAPTION
    return t


def warnings_text(rows: list[dict]):
    """The rows' warnings (runs that learned nothing, with the likely cause), one line each; None if none."""
    lines = [f"⚠ {name_of(row)}/{row.get('recipe')}: {warning}" for row in rows for warning in row.get("warnings") or []]
    if not lines:
        return None
    return Text("\n".join(printable(line) for line in lines), style="yellow")


def per_class_tables(rows: list[dict], class_names_by_dataset: dict[str, list]) -> list[Table]:
    """One per-class table per dataset among the runs (classes of one dataset mean nothing for another)."""
    if len(class_names_by_dataset) == 1:
        return [per_class_table(rows, next(iter(class_names_by_dataset.values())))]
    return [per_class_table([r for r in rows if r.get("dataset") == name], names, f" ({name})")
            for name, names in class_names_by_dataset.items()]


def per_class_table(rows: list[dict], class_names, title_suffix: str = "") -> Table:
    """Test accuracy per class, one column per model; the model that does worst on a class in red."""
    done = [r for r in rows if r.get("per_class_accuracy")]
    t = Table(title=f"Test accuracy per class{safe(title_suffix)}", title_justify="left")
    t.add_column("class")
    for r in done:
        t.add_column(safe(name_of(r)), justify="right")
    empty = False
    for i, name in enumerate(class_names):
        values = [r["per_class_accuracy"][i] for r in done]
        known = [v for v in values if v is not None]
        worst = min(known) if len(known) > 1 else None
        empty |= len(known) < len(values)
        t.add_row(safe(name), *("—" if v is None else f"[red]{v * 100:.2f}%[/]" if v == worst
                               else f"{v * 100:.2f}%" for v in values))
    if empty:
        t.caption = "—: no image of this class was tested"
    return t
