"""A comparison as a small static web site: ``zoo report`` and ``zoo compare --report``.

A teacher opens ``index.html`` straight from disk (no server, no network) and finds the
comparison table with its statistics, what accuracy costs, the learning curves, and one
page per model with what a class needs to read a model:

* its card (every layer, its output shape and the arithmetic of its parameters) and recipe;
* the confusion matrix and the pairs it confuses most (fast.ai's ``most_confused``);
* the test images it gets most wrong, with its top three guesses (``plot_top_losses``);
* the first layer's weights, every convolution's feature maps for one digit (CNN
  Explainer, Wang et al. 2020) and saliency maps (Simonyan et al. 2014);
* what produced it: versions, backend, precision, data checksum, command line.

Pages are Jinja2 templates with autoescaping on, so a model name or title is shown as
text, never read as HTML. The site is built in a folder beside the target and moved into
place at the end: a failed or interrupted build leaves an earlier report as it was.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from zoo import columns, inbrowser
from zoo import data as datamod
from zoo import runs as runsmod
from zoo.anatomy import layers
from zoo.cache import listing
from zoo.errors import ZooError
from zoo.evaluation import predict_probabilities
from zoo.evaluation import test_set_sha256 as sha
from zoo.experimenting import variant_numbers
from zoo.explaining import explain, saliency
from zoo.files import path_part
from zoo.imaging import write_png
from zoo.jobs import command_line
from zoo.keras_glue import import_backend_quietly
from zoo.plugins import get_zoo
from zoo.runs import RunRecord
from zoo.types import label, name_of
from zoo.version import __version__

TEMPLATES = Path(__file__).parent / "templates" / "report"
MARKER = ".mnist-zoo-report"  # what says a folder holds a report this command may replace
TOP_LOSSES = 16
SALIENCY_DIGITS = 6


@dataclass
class Report:
    index: Path
    pages: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- numbers for the pages ------------------------------------------------------------------------
def most_confused(matrix, class_names, limit: int = 8) -> list[dict]:
    """The off-diagonal cells of a confusion matrix, largest first (fast.ai's ``most_confused``)."""
    matrix = np.asarray(matrix)
    pairs = [(int(matrix[t, p]), t, p) for t in range(len(matrix)) for p in range(len(matrix)) if t != p and matrix[t, p]]
    pairs.sort(key=lambda c: (-c[0], c[1], c[2]))
    totals = matrix.sum(axis=1)
    return [{"true": class_names[t], "predicted": class_names[p], "count": n, "share": n / max(int(totals[t]), 1)}
            for n, t, p in pairs[:limit]]


def top_losses(p_true: np.ndarray, limit: int = TOP_LOSSES) -> list[tuple[int, float]]:
    """(test index, cross-entropy) of the images whose true class got the lowest probability."""
    order = np.argsort(p_true, kind="stable")[:limit]
    return [(int(i), float(-np.log(max(float(p_true[i]), 1e-7)))) for i in order]


def representative(runs: list[RunRecord], mean: float) -> RunRecord:
    """The run nearest the mean accuracy: what a model page shows in detail."""
    return min(runs, key=lambda r: abs((r.test_accuracy or 0.0) - mean))


def first_weights(model, pixels: int = 784):
    """(layer name, kernel) of the first layer with weights to look at: a convolution's
    filters, or a dense layer on the pixels (784 for MNIST); None when the first such layer is neither."""
    import keras

    for layer in layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            return layer.name, np.asarray(keras.ops.convert_to_numpy(layer.kernel))
        if isinstance(layer, keras.layers.Dense):
            kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel))
            return (layer.name, kernel) if kernel.shape[0] == pixels else None
    return None


def test_set_sha256(arrays) -> str:
    return sha(arrays.x_test, arrays.y_test)


# -- building ---------------------------------------------------------------------------------------
def environment():
    """The Jinja2 environment of the report's templates (autoescaped), with its filters."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, digits=2: "—" if v is None else f"{v * 100:.{digits}f}%"
    env.filters["num"] = lambda v: "—" if v is None else f"{v:,}"
    env.filters["value"] = lambda v: "" if v is None else repr(float(v))  # data-value for sorting
    env.filters["shape"] = lambda dims: " × ".join(str(d) for d in dims if d is not None)  # no batch axis
    env.filters["schedule"] = schedule_text
    env.filters["override"] = override_text
    return env


def schedule_text(schedule) -> str:
    """A run's learning-rate schedule in words (run.json keeps the dict)."""
    if not isinstance(schedule, dict):
        return str(schedule)
    if schedule.get("kind") == "warmup_cosine":
        return (f"warming up from {schedule.get('start', 0.0)}× the learning rate over the first "
                f"{schedule.get('warmup', 0.0) * 100:.0f}% of steps, then a cosine down to {schedule.get('alpha', 0.0)}×")
    return ", ".join(f"{key} {value}" for key, value in schedule.items())


def override_text(name: str, change) -> str:
    """``epochs 1 (the recipe says 3)`` for run.json's ``{"epochs": {"recipe": 3, "used": 1}}``."""
    if isinstance(change, dict) and {"recipe", "used"} <= set(change):
        return f"{name.replace('_', ' ')} {change['used']} (the recipe says {change['recipe']})"
    return f"{name.replace('_', ' ')} {change}"


def indefinite(word: str) -> str:
    """'an 8', 'an 11', 'a 3', 'an ankle boot': the article English puts before a class name."""
    text = str(word)
    spoken_vowel = text[:1].lower() in "aeio8" or text[:2] in ("11", "18") or (
        text[:1].lower() == "u" and not text.lower().startswith(("uni", "use", "usu")))
    return f"{'an' if spoken_vowel else 'a'} {text}"


def columns_of(row: dict) -> dict:
    """One row's cells, by column key (``zoo.columns``)."""
    return columns.cells(row)


def table_context(rows: list[dict]) -> dict:
    """What the shared results table (``_table.html``) needs: the columns, and each row's cells
    and sort values (``zoo.columns``, the same as the terminal's and Markdown's)."""
    return {"columns": columns.shown(rows), "cells": [columns.cells(r) for r in rows],
            "sort_values": [columns.sort_values(r) for r in rows], "caption": columns.CAPTION}


def _slugs(rows: list[dict]) -> list[str | None]:
    """A file name per completed row: the model name (names are lower-case letters, digits
    and dashes), with the recipe and a number when a model has several rows."""

    counts = Counter(r["model"] for r in rows if r.get("n"))
    seen, slugs = set(), []
    for row in rows:
        if not row.get("n"):
            slugs.append(None)
            continue
        slug = row["model"] if counts[row["model"]] == 1 else f"{row['model']}-{row.get('recipe') or 'run'}"
        if row.get("knobs"):  # a variant: baseline-cnn-dropout-0.5
            slug = "-".join([slug, *(f"{k}-{v}" for k, v in row["knobs"].items())]).replace("_", "-")
        slug = path_part(slug, "model page")  # names come from run.json files: never a path
        base, k = slug, 1
        while slug in seen:
            k += 1
            slug = f"{base}-{k}"
        seen.add(slug)
        slugs.append(slug)
    return slugs


def _optimizer_text(hyper: dict) -> str:
    optimizer = dict(hyper.get("optimizer") or {})
    name = optimizer.pop("class_name", "?")
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in optimizer.items())})"


def _provenance(record: RunRecord) -> list[tuple[str, str]]:
    env, execution = record.environment, record.execution
    versions = ", ".join(f"{k} {env[k]}" for k in ("python", "keras", "tensorflow", "jax", "torch") if env.get(k))
    cpu = env.get("cpu") or {}
    items = [
        ("versions", versions or "not recorded"),
        ("backend", f"{env.get('backend', '?')} on {env.get('device', 'CPU')}"),
        ("precision", execution.get("precision", "float32")),
        ("CPU", f"{cpu.get('model', '?')} ({cpu.get('isa', '?')}), {env.get('cpu_count', '?')} logical cores"
                + (f"; peak {cpu['gflops']} GFLOP/s" if cpu.get("gflops") else "")),
        ("data", f"{record.dataset.name}, {record.dataset.source or 'source not recorded'}"),
        ("test set sha256", record.dataset.test_sha256 or "not recorded"),
        ("split", f"train {record.split.train:,}, validation {record.split.validation:,} "
                  f"({'the test set' if record.split.validate_on == 'test' else 'held out of train'}), "
                  f"test {record.split.test:,}; split seed {record.split.seed}"
                  + (f"; --limit {record.split.limit:,}" if record.split.limit else "")),
        ("seed", str(record.seed)),
        ("command", record.command or "not recorded (run from Python)"),
        ("started / finished", f"{record.started_at or '?'} / {record.finished_at or '?'}"),
        ("run directory", str(record.run_dir or "?")),
    ]
    if execution.get("executor"):
        items.insert(3, ("executor", f"{execution['executor']}" + (f", worker {execution['worker']}"
                                                                    if execution.get("worker") else "")))
    return items


class _Builder:
    def __init__(self, folder: Path, load_arrays, warn, digit: int):
        self.folder, self.load_arrays, self.warn, self.digit = folder, load_arrays, warn, digit
        self.arrays: dict[str, object] = {}

    def dataset(self, record: RunRecord):
        """The run's test images (None, with a note, when they cannot be had)."""
        name = record.dataset.name
        if name not in self.arrays:
            try:
                self.arrays[name] = self.load_arrays(name) if self.load_arrays else None
            except ZooError as exc:
                self.warn(f"the report leaves out the test-image sections: {exc}")
                self.arrays[name] = None
            arrays = self.arrays[name]
            if arrays is not None and self.digit >= len(arrays.x_test):
                raise ZooError(f": {name} has {len(arrays.x_test):,} test images (0 to {len(arrays.x_test) - 1:,})",
                               parameter="digit", value=self.digit)
        return self.arrays[name]

    def section(self, notes: list[str], what: str, draw: Callable):
        """Draw one section; a problem costs that section (with a note), never the report."""
        try:
            return draw()
        except ZooError as exc:
            notes.append(f"{what}: {exc}")
        except Exception as exc:  # noqa: BLE001  (a plugin's model may not support a probe)
            notes.append(f"{what}: left out ({type(exc).__name__}: {str(exc)[:160]})")
        return None

    def model_page(self, row: dict, runs: list[RunRecord], slug: str, card: dict | None) -> dict:
        from zoo import figures

        record = representative(runs, row["mean"])
        folder = self.folder / "models" / slug
        folder.mkdir(parents=True, exist_ok=True)
        src = lambda name: f"{slug}/{name}"  # noqa: E731  (relative to the model page)
        notes: list[str] = []
        page = {"slug": slug, "row": row, "cells": columns_of(row), "record": record, "card": card,
                "title": record.title or record.model, "notes": notes,
                "figures": dict.fromkeys(("curves", "confusion", "first_layer", "saliency")),
                "first_layer": None, "saliency_caption": None,
                "provenance": _provenance(record), "optimizer": _optimizer_text(record.hyperparameters),
                "runs": sorted(runs, key=lambda r: r.seed), "losses": [], "feature_maps": [], "explained": None,
                "confused": [], "card_recipe": None}
        if card and record.knobs:
            params = f", with {record.params:,} parameters" if record.params is not None else ""
            notes.append(f"the model card below describes {record.model} as registered (its knobs' defaults); "
                         f"these runs are the variant {label(record.model, record.knobs)}{params}")
        if card:
            page["card_recipe"] = next((r for r in card.get("recipes", []) if r["name"] == record.recipe), None)
            if card.get("params") is not None and record.params is not None and card["params"] != record.params \
                    and not record.knobs:
                notes.append(f"the plugin installed now builds {card['params']:,} parameters; this run had "
                             f"{record.params:,}: the card may describe a newer version of the model")
        elif card is None:
            notes.append("the plugin that registers this model is not installed here: no model card")
        run_dir = Path(record.run_dir)
        classes = record.class_names

        def run_figure(name, draw):  # the run's own figure when it has one, else drawn now
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, folder / name)
            else:
                draw(folder / name)
            return src(name)

        history = runsmod.read_history(run_dir)
        if history and history.get("loss"):
            page["figures"]["curves"] = self.section(notes, "learning curves", lambda: run_figure(
                "curves.png", lambda path: figures.curves(history, path, record.model, runsmod.read_steps(run_dir))))
        if record.confusion_matrix is not None:
            matrix = np.array(record.confusion_matrix)
            page["figures"]["confusion"] = self.section(notes, "confusion matrix", lambda: run_figure(
                "confusion.png", lambda path: figures.confusion(matrix, classes, path, record.model)))
            page["confused"] = most_confused(matrix, classes)

        arrays = self.dataset(record)
        predictions = self.section(notes, "per-image results",
                                   lambda: runsmod.read_predictions(run_dir, record.split.test))
        model = self.section(notes, "the saved model", lambda: runsmod.load_model(run_dir, record.params))
        if arrays is None:
            notes.append("no test images (see the warning printed when the report was made): no gallery, "
                         "feature maps or saliency")
            return page
        same_test_set = predictions is not None and predictions["test_sha256"] in (None, test_set_sha256(arrays)) \
            and len(predictions["p_true"]) == len(arrays.y_test)
        if predictions is None:
            notes.append("this run has no per-image results (test_predictions.npz): no top-losses gallery")
        elif not same_test_set:
            notes.append("this run's per-image results are for another test set: no top-losses gallery")
        else:
            page["losses"] = self.section(notes, "top losses", lambda: self._losses(
                record, model, arrays, predictions, folder, slug)) or []
        if model is None:
            return page
        field = arrays.x_test.shape[1:3]
        weights = self.section(notes, "first layer", lambda: first_weights(model, field[0] * field[1]))
        if weights is not None:
            layer, kernel = weights
            if self.section(notes, "first layer", lambda: figures.first_layer(
                    kernel, folder / "first-layer.png", f"{record.model}, {layer}", field=field)):
                page["figures"]["first_layer"] = src("first-layer.png")
                page["first_layer"] = {"layer": layer, "shape": list(kernel.shape), "conv": kernel.ndim == 4}
        explained = self.section(notes, "feature maps", lambda: self._explain(record, model, arrays, folder, slug))
        if explained:
            page["explained"] = explained
            page["feature_maps"] = explained.pop("maps")
        saliency = self.section(notes, "saliency", lambda: self._saliency(record, model, arrays, folder))
        if saliency:
            page["figures"]["saliency"] = src("saliency.png")
            page["saliency_caption"] = saliency
        write_png(255 - arrays.x_test[self.digit], folder / "digit.png")
        return page

    def _losses(self, record, model, arrays, predictions, folder, slug) -> list[dict]:
        classes = record.class_names
        worst = top_losses(predictions["p_true"])
        index = [i for i, _ in worst]
        probabilities = None
        if model is not None:
            x = datamod.prepare_x(arrays.x_test[index], record.input_kind)
            probabilities = predict_probabilities(model, x, record.output)
        shown = []
        for n, (i, loss) in enumerate(worst):
            name = f"loss-{n + 1:02d}.png"
            write_png(255 - arrays.x_test[i], folder / name)
            truth = classes[int(arrays.y_test[i])]
            if probabilities is not None:
                top = np.argsort(-probabilities[n])[:3]
                guesses = [{"label": classes[int(k)], "probability": float(probabilities[n][k])} for k in top]
            else:
                guesses = [{"label": classes[int(predictions["predicted"][i])], "probability": None}]
            shown.append({"src": f"{slug}/{name}", "index": i, "true": truth, "loss": loss, "top3": guesses,
                          "alt": f"test image {i}: {indefinite(truth)}, taken for {guesses[0]['label']}"})
        return shown

    def _explain(self, record, model, arrays, folder, slug) -> dict:
        from zoo import figures

        digit = arrays.x_test[self.digit]
        result = explain(model, record, digit)
        maps = []
        for i, (layer, values) in enumerate(result.feature_maps, 1):
            name = f"feature-maps-{i}.png"
            figures.feature_maps(layer, values, folder / name,
                                 f"{record.model}: convolution {i} of {len(result.feature_maps)}")
            maps.append({"src": f"{slug}/{name}", "layer": layer, "shape": list(values.shape),
                         "alt": f"{values.shape[-1]} feature maps of {layer} ({values.shape[0]}×{values.shape[1]}) "
                                f"for test image {self.digit}"})
        return {"index": self.digit, "true": record.class_names[int(arrays.y_test[self.digit])],
                "top3": result.top3, "notes": result.notes, "maps": maps, "src": f"{slug}/digit.png"}

    def _saliency(self, record, model, arrays, folder) -> str:
        from zoo import figures

        picked, labels = [], set()
        for i, digit in enumerate(arrays.y_test):  # the first test image of each of six classes
            if int(digit) not in labels:
                picked.append(i)
                labels.add(int(digit))
            if len(picked) == SALIENCY_DIGITS:
                break
        x = datamod.prepare_x(arrays.x_test[picked], record.input_kind).astype("float32")
        probabilities = predict_probabilities(model, x, record.output)
        items = []
        for n, (i, p) in enumerate(zip(picked, probabilities)):
            guess = int(np.argmax(p))
            items.append({"digit": arrays.x_test[i],
                          "map": saliency(model, x[n:n + 1], guess, record.output, arrays.x_test.shape[1:3]),
                          "caption": f"#{i}: {record.class_names[guess]} ({p[guess] * 100:.0f}%)"})
        figures.saliency_grid(items, folder / "saliency.png",
                              f"{record.model}: where a change of pixel moves its answer most")
        return ", ".join(f"test image {i}" for i in picked)


def _comparison_figures(rows: list[dict], pages: list[dict], folder: Path, notes: list[str]) -> dict:
    from zoo import figures

    done = [r for r in rows if r.get("mean") is not None]
    shown = dict.fromkeys(("accuracy", "pareto", "curves"))  # the page asks for each, drawn or not
    if not done:
        return shown
    (folder / "img").mkdir(exist_ok=True)
    for key, draw in (
        ("accuracy", lambda: figures.accuracy_chart(done, folder / "img" / "accuracy.png",
                                                    "Test accuracy, same data and split")),
        ("pareto", lambda: figures.pareto(done, folder / "img" / "pareto.png")),
    ):
        try:
            draw()
            shown[key] = f"img/{key}.png"
        except Exception as exc:  # noqa: BLE001
            notes.append(f"could not draw the {key} figure: {exc}")
    curves = {}
    for page in pages:
        history = runsmod.read_history(page["record"].run_dir)
        if history and history.get("loss"):
            curves[page["slug"]] = (history, runsmod.read_steps(page["record"].run_dir))
    if curves:
        try:
            figures.overlaid_curves(curves, folder / "img" / "curves.png")
            shown["curves"] = "img/curves.png"
        except Exception as exc:  # noqa: BLE001
            notes.append(f"could not draw the learning curves: {exc}")
    return shown


def _experiment_section(rows: list[dict], folder: Path, notes: list[str], answer: dict | None = None) -> dict | None:
    """Variants against their references (``zoo compare --vary``), and the question and answer
    of an experiment (``answer``, as the experiment gave it): the index page's first section."""
    from zoo import figures

    saved = answer
    numbers = variant_numbers(rows)
    if not numbers and saved is not None and isinstance(saved.get("numbers"), list):
        numbers = [n for n in saved["numbers"] if isinstance(n, dict) and isinstance(n.get("difference"), (int, float))
                   and isinstance(n.get("paired_differences"), list)]
    if not numbers and saved is None:
        return None
    question = str(saved.get("question") or "") if saved else ""
    section = {"question": question, "answer": saved["answer"] if saved else [],
               "notice": str(saved.get("notice") or "") if saved else "", "numbers": numbers, "figure": None}
    if any(n.get("paired_differences") for n in numbers):
        try:
            (folder / "img").mkdir(exist_ok=True)
            figures.paired_differences(numbers, folder / "img" / "differences.png",
                                       question or "Each variant against its reference")
            section["figure"] = "img/differences.png"
        except Exception as exc:  # noqa: BLE001
            notes.append(f"could not draw the paired differences: {exc}")
    return section


def _staging(out_dir: Path) -> Path:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ZooError(f"{out_dir} is a file; give a folder for the report")
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise ZooError(f"{out_dir} already holds files that are not a zoo report; choose another folder "
                           f"with -o (nothing was changed)")
    staging = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    except OSError as exc:
        raise ZooError(f"cannot write the report into {out_dir} ({exc.strerror or exc})") from None
    return staging


def _move_into_place(staging: Path, out_dir: Path) -> None:
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def build(records: list[RunRecord], out_dir, *, rows: list[dict], notes: list[str] = (),
          answer: dict | None = None, cards: dict[str, dict] | None = None, load_arrays: Callable | None = None,
          command: str | None = None, title: str | None = None, digit: int = 0,
          warn: Callable[[str], None] = lambda text: None, in_browser: bool = False) -> Report:
    """Write the report of a comparison into ``out_dir``; return where its pages are.

    It shows what the comparison computed, as it was computed: ``records``, its ``rows`` and
    ``notes`` (its margin, its failed jobs) and an experiment's ``answer`` (``Answer.to_dict()``);
    nothing is computed again here. ``cards`` maps model names to model cards (``zoo.cards.card``);
    ``load_arrays(name)`` gives a dataset's arrays (for the galleries, feature maps and saliency);
    ``digit`` is the test image every model's feature maps are drawn for.
    """
    if not records:
        raise ZooError("no runs to report on")
    rows, notes = [dict(row) for row in rows], list(notes or [])
    for row in rows:  # interrupted and failed rows carry no statistics
        for key in ("n", "mean", "std", "ci_low", "ci_high", "p_value_vs_best", "standing", "published_accuracy",
                    "seconds_per_epoch", "training_seconds", "training_tflop", "params", "macs", "test_accuracy",
                    "per_class_accuracy", "dataset", "warnings", "verdict", "verdict_note", "run_dir"):
            row.setdefault(key, None)
    done = sorted((r for r in rows if r.get("mean") is not None), key=lambda r: -r["mean"])
    rows = done + [r for r in rows if r.get("mean") is None]
    out_dir = Path(out_dir)
    staging = _staging(out_dir)
    try:
        builder = _Builder(staging, load_arrays, warn, digit)
        by_dir = {r.run_dir: r for r in records}
        env = environment()
        pages = []
        for row, slug in zip(rows, _slugs(rows)):
            row["slug"] = slug
            if slug is None:
                continue
            runs = [by_dir[d] for d in row["run_dirs"] if d in by_dir]
            card = (cards or {}).get(row["model"]) if cards is not None else False
            pages.append(builder.model_page(row, runs, slug, card))
        shown = _comparison_figures(rows, pages, staging, notes)
        browser = None
        if in_browser:  # every model exported to ONNX, checked, and run by the page itself
            first = pages[0]["record"] if pages else records[0]
            arrays = load_arrays(first.dataset.name) if load_arrays else None
            browser = inbrowser.write(staging / "browser", [(p["slug"], label(p["record"].model, p["record"].knobs),
                                                             p["record"]) for p in pages if p["record"].run_dir],
                                      arrays, notes)
        experiment = _experiment_section(rows, staging, notes, answer)
        first = records[0]
        classes = first.class_names
        same_data = [r for r in done if r.get("dataset") == first.dataset.name]  # classes are the dataset's
        if len(same_data) < len(done):
            notes = [*notes, f"The per-class table shows the {first.dataset.name} runs only: the others are of "
                             f"another dataset, with other classes."]
        per_class = [(name, [(name_of(r), r["per_class_accuracy"][i] if r.get("per_class_accuracy") else None)
                             for r in same_data]) for i, name in enumerate(classes)]
        seeds = sorted({r.seed for r in records})
        context = {
            "title": title or f"{first.dataset.name}: {len(done)} model{'s' * (len(done) != 1)} compared",
            "rows": rows, **table_context(rows), "pages": pages, "figures": shown, "notes": notes,
            "per_class": per_class, "seeds": seeds, "first": first, "version": __version__,
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "commands": sorted({r.command for r in records if r.command}),
            "datasets": sorted({(r.dataset.name, r.dataset.test_sha256 or "not recorded") for r in records}),
            "mixed_datasets": len({r.get("dataset") for r in rows}) > 1,  # then each row says which it is
            "validated_on_test": any(r.split.validate_on == "test" for r in records),
            "varied_split": any(r.split.varies_with_seed for r in records),
            "experiment": experiment,
            "root": "", "browser": browser,
        }
        (staging / "index.html").write_text(env.get_template("index.html").render(**context), encoding="utf-8")
        (staging / "models").mkdir(exist_ok=True)
        for page in pages:
            html = env.get_template("model.html").render(**{**context, "page": page, "root": "../"})
            (staging / "models" / f"{page['slug']}.html").write_text(html, encoding="utf-8")
        for asset in ("style.css", "sort.js"):
            shutil.copyfile(TEMPLATES / asset, staging / asset)
        (staging / MARKER).write_text("made by zoo report; the next zoo report into this folder replaces it\n",
                                      encoding="utf-8")
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for page in pages:
        notes.extend(f"{page['slug']}: {n}" for n in page["notes"])
    return Report(out_dir / "index.html", [out_dir / "models" / f"{p['slug']}.html" for p in pages], notes)


def write(records: list[RunRecord], out_dir, *, title: str | None = None, digit: int = 0, data_dir=None,
          warn: Callable[[str], None] = lambda text: None, plugins_dir=None, **shown) -> Report:
    """``build`` with this machine's plugins, model cards and data (``zoo.report`` and ``zoo report``)."""
    import_backend_quietly()
    registry = get_zoo(plugins_dir)  # plugins register their custom layers, which safe loading must know
    cards = {m["name"]: m["card"] for m in listing(plugins_dir, lambda: registry)["models"] if m.get("card")}
    return build(records, out_dir, cards=cards, command=command_line(), title=title, digit=digit,
                 load_arrays=lambda name: datamod.load(registry.dataset(name), data_dir), warn=warn, **shown)
