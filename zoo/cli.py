"""The ``zoo`` command.

Nothing heavy is imported at module level: ``zoo --help`` and argument errors answer
before TensorFlow loads. Every user-facing failure is a ``ZooError``, which
``ZooGroup`` turns into one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

# Quiet TensorFlow's C++ start-up chatter before anything can import it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402
from rich.markup import escape  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from zoo.errors import ZooError  # noqa: E402


class ZooGroup(TyperGroup):
    """Turns a ZooError from any command into one line on stderr and its exit status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            from zoo.console import err

            err.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="zoo",
    cls=ZooGroup,
    help="A teaching model zoo of classic MNIST classifiers: list, explain, train, compare, predict.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)

_settings: dict = {}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON and nothing else on stdout.")]
DataDirOpt = Annotated[Optional[str], typer.Option(
    "--data-dir", envvar="ZOO_DATA_DIR", show_envvar=True,
    help="Folder holding mnist.npz (or the IDX files); default: Keras's cache, then its download.")]


BACKENDS = ("tensorflow", "jax", "torch")


@app.callback()
def _root(
    plugins_dir: Annotated[Optional[str], typer.Option(
        "--plugins-dir", envvar="ZOO_PLUGINS_DIR", show_envvar=True,
        help="Also load plugins from the .py files in this folder.")] = None,
    backend: Annotated[Optional[str], typer.Option(
        "--backend", envvar="KERAS_BACKEND", show_envvar=True,
        help="Keras backend: tensorflow (default), jax (pip install 'mnist-zoo[jax]') or torch.")] = None,
):
    _settings["plugins_dir"] = plugins_dir
    if backend:
        if backend not in BACKENDS:
            raise ZooError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        os.environ["KERAS_BACKEND"] = backend  # read by Keras when it is first imported


def _zoo(warn: bool = True):
    from zoo.backend import import_backend_quietly
    from zoo.console import err
    from zoo.plugins import get_zoo

    import_backend_quietly()
    zoo = get_zoo(_settings.get("plugins_dir"))
    if warn:
        for failure in zoo.failures:
            err.print(f"[yellow]Warning:[/] {escape(failure.line())} (see `zoo plugins`)", highlight=False, soft_wrap=True)
    return zoo


def _print_json(data) -> None:
    from zoo.files import json_text

    sys.stdout.write(json_text(data))


# -- registry --------------------------------------------------------------------
@app.command("list")
def list_models(
    patterns: Annotated[Optional[list[str]], typer.Argument(
        help="Names or fnmatch patterns, e.g. '*cnn*'.", show_default=False)] = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only models with this tag.")] = None,
    as_json: JsonOpt = False,
):
    """List the architectures: params and MACs computed from the built model."""
    from zoo.cards import summary_row
    from zoo.console import err, models_table, out
    from zoo.registry import select
    from zoo.stats import architecture_stats

    zoo = _zoo()
    rows = []
    for arch in select(zoo.architectures, patterns or (), tag):
        try:
            rows.append(summary_row(arch, architecture_stats(arch)))
        except ZooError as exc:  # a plugin whose model cannot be built is left out, not fatal
            err.print(f"[yellow]Warning:[/] {escape(str(exc))} (left out; `zoo check {arch.name}` says more)",
                      highlight=False, soft_wrap=True)
    if as_json:
        _print_json(rows)
    else:
        out.print(models_table(rows))


@app.command()
def info(
    name: Annotated[str, typer.Argument(help="Model name, as `zoo list` shows it.")],
    as_json: JsonOpt = False,
):
    """Show a model card: what it teaches, every layer and the arithmetic behind it, recipes."""
    from zoo.cards import card
    from zoo.console import model_card, out
    from zoo.stats import architecture_stats

    arch = _zoo().architecture(name)
    data = card(arch, architecture_stats(arch))
    if as_json:
        _print_json(data)
    else:
        out.print(model_card(data))


@app.command()
def plugins(as_json: JsonOpt = False):
    """Show installed plugins, the hooks they implement, what they register, and failures."""
    import dataclasses

    from zoo.console import failures_table, out, plugins_table

    from zoo.plugins import PluginFailure
    from zoo.stats import build_model

    zoo = _zoo(warn=False)
    failures = list(zoo.failures)
    owners = {name: p for p in zoo.plugins for name in p.architectures}
    for arch in zoo.architectures.values():  # a model that cannot be built is a plugin failure too
        try:
            build_model(arch)
        except ZooError as exc:
            owner = owners[arch.name]
            failures.append(PluginFailure(owner.name, owner.distribution, owner.version, "build",
                                          str(exc), f"`zoo check {arch.name}` says more"))
    data = {
        "plugins": [dataclasses.asdict(p) for p in zoo.plugins],
        "failures": [dataclasses.asdict(f) for f in failures],
        "disabled": zoo.disabled,
    }
    if as_json:
        _print_json(data)
        return
    out.print(plugins_table(data["plugins"]))
    if failures:
        out.print(failures_table(data["failures"]))
    if zoo.disabled:
        out.print(f"Disabled by ZOO_DISABLE_PLUGINS: {', '.join(zoo.disabled)}")


# -- data ------------------------------------------------------------------------
@app.command()
def data(
    name: Annotated[Optional[str], typer.Argument(help="Dataset name; all datasets when left out.")] = None,
    data_dir: DataDirOpt = None,
    verify: Annotated[bool, typer.Option("--verify", help="Compare array checksums with the known ones.")] = False,
    show: Annotated[Optional[int], typer.Option("--show", help="Write a PNG grid of N samples.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Where --show writes its PNG.")] = None,
    as_json: JsonOpt = False,
):
    """Show a dataset: where it was found, sizes, class counts, pixel statistics."""
    from zoo import data as datamod
    from zoo.console import data_table, datasets_table, out

    zoo = _zoo()
    if name is None:
        rows = []
        for ds in zoo.datasets.values():
            found = datamod.locate(ds, data_dir)
            rows.append({"name": ds.name, "description": ds.description, "classes": len(ds.class_names),
                         "license": ds.license,
                         "found": datamod.source_text(found) if found else None})
        _print_json(rows) if as_json else out.print(datasets_table(rows))
        return
    arrays = datamod.load(zoo.dataset(name), data_dir)
    info_ = datamod.summary(arrays)
    if verify:
        info_["verified"] = datamod.verify(arrays)
    if show:
        path = out_path or Path(f"{name}-samples.png")
        info_["grid"] = str(datamod.save_grid(arrays, show, path))
    if as_json:
        _print_json(info_)
    else:
        out.print(data_table(info_))
    if verify and not all(v is not False for v in info_["verified"].values()):
        bad = ", ".join(k for k, v in info_["verified"].items() if v is False)
        raise ZooError(f"{name}: checksum mismatch for {bad} ({arrays.source})", exit_code=1)


# -- training --------------------------------------------------------------------
EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", help="Override the recipe's epochs.")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", help="Override the recipe's batch size.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for the split, weight init and shuffling.")]
LimitOpt = Annotated[Optional[int], typer.Option(
    "--limit", help="Train on a stratified subset of N training images (quick runs).")]
ValidateOpt = Annotated[str, typer.Option(
    "--validate-on", help="'val': a held-out part of the training set (honest). 'test': the test set, as "
                          "the articles did (leaks: you pick on the numbers you report).")]
DatasetOpt = Annotated[str, typer.Option("--dataset", help="Dataset name (zoo data lists them).")]
PrecisionOpt = Annotated[str, typer.Option(
    "--precision", help="float32 (as the articles), mixed_bfloat16 (CPUs with AMX or AVX512-BF16) or "
                        "mixed_float16 (GPUs): faster where the hardware has the units; changes the numbers.")]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", envvar="ZOO_RUNS_DIR", help="Where run directories go.")]


def _options(**kw):
    from zoo.training import PRECISIONS, TrainOptions

    if kw["validate_on"] not in ("val", "test"):
        raise ZooError(f"--validate-on must be 'val' or 'test', not {kw['validate_on']!r}")
    if kw["precision"] not in PRECISIONS:
        raise ZooError(f"--precision must be one of {', '.join(PRECISIONS)}, not {kw['precision']!r}")
    for key in ("epochs", "batch_size", "limit"):
        if kw.get(key) is not None and kw[key] < 1:
            raise ZooError(f"--{key.replace('_', '-')} must be at least 1")
    return TrainOptions(**kw)


def _announce_split(prepared, options):
    from zoo import data as datamod
    from zoo.console import err

    err.print(f"[bold]Data:[/] {options.dataset} from {prepared.arrays.source}; "
              f"{prepared.split.describe(len(prepared.arrays.x_test))}; seed {options.seed}", highlight=False)
    if options.validate_on == "test":
        err.print(f"[yellow]Warning:[/] {datamod.test_set_warning()}", highlight=False)


def _train_one(zoo, arch, options, prepared, run_dir, display):
    """Train, turning anything a broken model raises into a one-line ZooError."""
    from zoo.training import Interrupted, train as train_run

    try:
        return train_run(zoo, arch, options, prepared, run_dir, display)
    except (Interrupted, ZooError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a plugin's model that cannot train fails alone
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ZooError(f"{arch.name}: training failed ({type(exc).__name__}: {message})") from None


def _remove_if_empty(path: Path):
    try:
        path.rmdir()
    except OSError:
        pass


@app.command()
def train(
    name: Annotated[str, typer.Argument(help="Model name, as `zoo list` shows it.")],
    recipe: Annotated[Optional[str], typer.Option("--recipe", help="Recipe name (default: the first).")] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = 42,
    limit: LimitOpt = None,
    validate_on: ValidateOpt = "val",
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    precision: PrecisionOpt = "float32",
    as_json: JsonOpt = False,
):
    """Train one model with its article's recipe; save the model, history, metadata and figures."""
    from zoo.console import err, out, pct
    from zoo.progress import TrainingDisplay
    from zoo.training import Interrupted, new_run_dir, prepare, timestamp

    options = _options(recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed, limit=limit,
                       validate_on=validate_on, dataset=dataset, data_dir=data_dir, precision=precision)
    zoo = _zoo()
    arch = zoo.architecture(name)
    chosen = arch.recipe(recipe)
    prepared = prepare(zoo, options)
    _announce_split(prepared, options)
    err.print(f"[bold]Recipe:[/] {arch.name}/{chosen.name}: {chosen.optimizer_text()}, {chosen.loss}, "
              f"batch {batch_size or chosen.batch_size}, {epochs or chosen.epochs} epochs "
              f"(from {chosen.source.short()})", highlight=False)
    run_dir = new_run_dir(runs_dir, f"{timestamp()}-{arch.name}")
    try:
        with TrainingDisplay() as display:
            result = _train_one(zoo, arch, options, prepared, run_dir, display)
    except Interrupted as stop:
        raise ZooError(f"interrupted after {stop.result.record['epochs_completed']} epoch(s); "
                       f"the partial run is kept in {run_dir}", exit_code=130) from None
    except ZooError:
        _remove_if_empty(run_dir)
        raise
    r = result.record
    if as_json:
        _print_json({**r, "run_dir": str(run_dir)})
        return
    published = r.get("published") or {}
    line = f"[bold]Test:[/] accuracy {pct(r['test_accuracy'])}, loss {r['test_loss']:.4f}"
    if published.get("test_accuracy") is not None:
        line += (f" — the article reports {pct(published['test_accuracy'])} "
                 f"({(r['test_accuracy'] - published['test_accuracy']) * 100:+.2f} pt)")
    out.print(line, highlight=False)
    out.print(f"{r['epochs_completed']} epochs, {r['seconds_per_epoch']:.1f} s/epoch, "
              f"{r['training_seconds']:.1f} s training. Saved in [bold]{run_dir}[/]: model.keras, run.json, "
              "history.json/.csv, curves.png, confusion.png, mistakes.png", highlight=False)


@app.command()
def compare(
    patterns: Annotated[Optional[list[str]], typer.Argument(
        help="Model names or patterns (default: every registered model).", show_default=False)] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = 42,
    limit: LimitOpt = None,
    validate_on: ValidateOpt = "val",
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    precision: PrecisionOpt = "float32",
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only models with this tag, e.g. 'seed'.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="One epoch per model (unless --epochs says otherwise).")] = False,
    from_runs: Annotated[Optional[list[Path]], typer.Option(
        "--from-runs", help="Compare saved runs (run directories or folders of them) without training.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the rows as JSON to this file.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Also write the rows as CSV to this file.")] = None,
    md_path: Annotated[Optional[Path], typer.Option("--md", help="Also write the table as Markdown to this file.")] = None,
):
    """Train models on the same data, split and seed, then show them side by side."""
    from zoo import compare as cmp
    from zoo import figures
    from zoo.console import err, out
    from zoo.files import atomic_write_json
    from zoo.progress import TrainingDisplay
    from zoo.registry import matches, select
    from zoo.training import Interrupted, new_run_dir, prepare, timestamp

    if from_runs:
        stray = [p for p in patterns or () if Path(p).exists()]
        if stray:
            raise ZooError(f"{stray[0]} looks like a run directory: give --from-runs once per directory "
                           f"(--from-runs A --from-runs B)")
        records = cmp.records_from_dirs(from_runs)
        if patterns:  # model names or patterns pick among the saved runs
            records = [r for r in records if matches(r["model"], patterns)]
            if not records:
                raise ZooError(f"no saved run matches {' '.join(patterns)}")
        if tag:  # tags live in the registry, not in saved runs
            tagged = {a.name for a in select(_zoo().architectures, (), tag)}
            records = [r for r in records if r["model"] in tagged]
            if not records:
                raise ZooError(f"no saved run is of a model tagged {tag!r}")
        rows = [cmp.row_from_record(r) for r in records]
        for key in ("validate_on", "seed", "precision", "backend"):  # saved runs may not be like for like
            values = sorted({str(r[key]) for r in rows})
            if len(values) > 1:
                err.print(f"[yellow]Warning:[/] these runs differ in {key} ({', '.join(values)}): "
                          "not a like-for-like comparison", highlight=False)
        cmp.export(rows, json_path, csv_path, md_path)
        out.print(*cmp.tables(rows, f"{len(rows)} saved runs", out.width))
        out.print(cmp.per_class_table(rows, records[0]["dataset"]["class_names"]))
        return
    if quick and epochs is None:
        epochs = 1
    options = _options(recipe=None, epochs=epochs, batch_size=batch_size, seed=seed, limit=limit,
                       validate_on=validate_on, dataset=dataset, data_dir=data_dir, precision=precision)
    zoo = _zoo()
    chosen = select(zoo.architectures, patterns or (), tag)
    if not chosen:
        raise ZooError(f"no model matches {' '.join(patterns or [])}")
    prepared = prepare(zoo, options)
    _announce_split(prepared, options)
    compare_dir = new_run_dir(runs_dir, f"compare-{timestamp()}")
    rows, interrupted = [], False
    with TrainingDisplay(models=len(chosen)) as display:
        for arch in chosen:
            run_dir = new_run_dir(compare_dir, arch.name)
            try:
                result = _train_one(zoo, arch, options, prepared, run_dir, display)
                rows.append(cmp.row_from_record({**result.record, "run_dir": str(run_dir)}))
            except Interrupted as stop:
                rows.append(cmp.row_from_record({**stop.result.record, "run_dir": str(run_dir)}))
                interrupted = True
                break
            except KeyboardInterrupt:
                _remove_if_empty(run_dir)
                interrupted = True
                break
            except ZooError as exc:
                _remove_if_empty(run_dir)
                display.note(f"[red]Error:[/] {escape(str(exc))}")
                display.end_model()
                rows.append({"model": arch.name, "status": "failed", "error": str(exc)})
    finished = [r for r in rows if r.get("status") != "failed"]
    atomic_write_json(compare_dir / "compare.json", rows)
    cmp.export(rows, json_path, csv_path, md_path)
    if finished:
        try:
            figures.compare_curves(cmp.histories(finished), compare_dir / "compare.png")
        except Exception as exc:  # noqa: BLE001  (a figure must not lose the results)
            err.print(f"[yellow]Warning:[/] could not draw compare.png: {escape(str(exc))}")
    title = (f"{dataset}: {prepared.split.describe(len(prepared.arrays.x_test))}, seed {seed}"
             + (", validated on TEST" if validate_on == "test" else ""))
    out.print(*cmp.tables(rows, title, out.width))
    out.print(cmp.per_class_table(finished, prepared.arrays.dataset.class_names))
    out.print(f"Runs, compare.json and compare.png in [bold]{compare_dir}[/]", highlight=False)
    if interrupted:
        raise ZooError(f"interrupted: {sum(r.get('status') == 'completed' for r in rows)} of {len(chosen)} models "
                       f"finished; their results are kept in {compare_dir}", exit_code=130)
    failed = [r["model"] for r in rows if r.get("status") == "failed"]
    if failed:
        raise ZooError(f"{len(failed)} model(s) failed: {', '.join(failed)}", exit_code=1)


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run directory (holding run.json and model.keras).")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
):
    """Evaluate a saved run's model on its dataset's test set again."""
    from zoo import data as datamod
    from zoo.console import out, pct
    from zoo.training import evaluate_predictions, load_model, load_run, predict_probabilities

    record = load_run(run)
    zoo = _zoo()
    model = load_model(run)
    arrays = datamod.load(zoo.dataset(record["dataset"]["name"]), data_dir)
    x = datamod.prepare_x(arrays.x_test, record["input_kind"])
    metrics = evaluate_predictions(predict_probabilities(model, x, record.get("output", "probabilities")),
                                   arrays.y_test.astype("int64"), arrays.dataset.num_classes)
    metrics.pop("predicted")
    result = {"run_dir": str(run), "model": record["model"], **metrics,
              "recorded_test_accuracy": record.get("test_accuracy"),
              "published_accuracy": (record.get("published") or {}).get("test_accuracy")}
    if as_json:
        _print_json(result)
        return
    out.print(f"[bold]{record['model']}[/] ({run}): test accuracy {pct(metrics['test_accuracy'])}, "
              f"loss {metrics['test_loss']:.4f} on {len(x):,} images; recorded at training time: "
              f"{pct(record.get('test_accuracy'))}; article: {pct(result['published_accuracy'])}", highlight=False)


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="A run directory (holding run.json and model.keras).")],
    images: Annotated[list[Path], typer.Argument(help="PNG/JPEG/BMP/… images of single digits.")],
    save_preprocessed: Annotated[Optional[Path], typer.Option(
        "--save-preprocessed", help="Write each image as the model sees it (28×28 PNG) into this folder.")] = None,
    as_json: JsonOpt = False,
):
    """Read your own handwritten digits: grayscale, invert, crop, fit 20×20, centre in 28×28, predict."""
    import numpy as np

    from zoo import data as datamod
    from zoo.console import err, out
    from zoo.imaging import preprocess
    from zoo.training import load_model, load_run, predict_probabilities

    record = load_run(run)
    classes = record["dataset"]["class_names"]
    _zoo(warn=False)  # plugins register their custom layers, which safe_mode loading must know
    model = load_model(run)
    answers, failures = [], 0
    for path in images:
        try:
            digit_image = preprocess(path)
        except ZooError as exc:
            failures += 1
            err.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            answers.append({"image": str(path), "error": str(exc), "digit": None, "probabilities": None})
            continue
        if save_preprocessed:
            from PIL import Image

            save_preprocessed.mkdir(parents=True, exist_ok=True)
            Image.fromarray(digit_image).save(save_preprocessed / f"{Path(path).stem}.png")
        x = datamod.prepare_x(digit_image[None], record["input_kind"])
        probs = predict_probabilities(model, x, record.get("output", "probabilities"))[0]
        top = np.argsort(-probs)[:3]
        answers.append({"image": str(path), "digit": int(top[0]), "label": classes[int(top[0])],
                        "probabilities": [round(float(p), 6) for p in probs],
                        "top3": [{"digit": int(i), "probability": round(float(probs[i]), 6)} for i in top]})
        if not as_json:
            guesses = ", ".join(f"{classes[i]} ({probs[i] * 100:.1f}%)" for i in top)
            out.print(f"{path}: [bold]{classes[int(top[0])]}[/]   top 3: {guesses}", highlight=False)
    if as_json:
        _print_json(answers)
    if failures:
        raise typer.Exit(1)


# -- plugin authors ----------------------------------------------------------------
@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The new architecture's name, e.g. tiny-net.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the project folder.")] = Path("."),
):
    """Create an installable plugin project with one documented architecture and its test."""
    from zoo.console import out
    from zoo.scaffold import create

    root = create(name, directory)
    out.print(f"Created [bold]{root}[/]. Next:\n"
              f"  pip install -e {root}\n  zoo list\n  zoo check {name}\n  (cd {root} && pytest)\n"
              f"  zoo train {name}", highlight=False)


@app.command()
def check(
    names: Annotated[list[str], typer.Argument(help="Architectures to check (names or patterns).")],
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
):
    """Check the plugin contract: metadata, build, output, recipes, overfitting a batch, save/load."""
    import dataclasses

    from zoo import data as datamod
    from zoo.check import check as run_check
    from zoo.console import out
    from zoo.registry import select

    zoo = _zoo()
    chosen = select(zoo.architectures, names, None)
    arrays = datamod.load(zoo.dataset(dataset), data_dir)
    reports = [run_check(arch, arrays) for arch in chosen]
    if as_json:
        _print_json([{"model": r.model, "ok": r.ok, "checks": [dataclasses.asdict(c) for c in r.results]}
                     for r in reports])
    else:
        for report in reports:
            for c in report.results:
                mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
                out.print(f"{mark} {report.model}: {c.name}: {c.detail}", highlight=False)
    failed = [r.model for r in reports if not r.ok]
    if failed:
        raise ZooError(f"contract not met by {', '.join(failed)}", exit_code=1)


def main():
    """The console script: run the command, then leave without TensorFlow's teardown."""
    try:
        app()
        code = 0
    except SystemExit as stop:  # how Typer ends every command, successful or not
        code = stop.code
    exit_promptly(code)


def exit_promptly(code):
    """Exit with ``code``, skipping the interpreter's teardown once TensorFlow is loaded.

    By the time a command returns, everything it writes is saved and closed, yet a
    process that has imported TensorFlow then spends 1–3 s here destroying its modules
    and C++ state (measured, docs/performance.md): a wait at the end of every command
    that does nothing for the learner. Exit handlers still run (temporary files,
    logging, coverage) and both streams are flushed; then the process ends.
    """
    if "tensorflow" not in sys.modules and "keras" not in sys.modules:
        raise SystemExit(code)  # nothing heavy loaded: the ordinary exit is instant
    if code is None:
        code = 0
    elif not isinstance(code, int):  # SystemExit("message") prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`zoo list | head`) has nothing to flush to
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
