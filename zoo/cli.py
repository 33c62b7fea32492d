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

import re  # noqa: E402

import typer  # noqa: E402
from typer.core import TyperCommand, TyperGroup  # noqa: E402

from zoo.errors import ZooError  # noqa: E402


def _plain_help_types() -> None:
    """Recent Typer prints each parameter's Python type in the help: `--help <bool>` reads
    as if the flag took a value and `<list[str]>` as Python. Flags get no type; a list shows
    its item type and `...`. Older Typer has no such column, and nothing changes there."""
    from typer import core

    for cls in (core.TyperOption, core.TyperArgument, getattr(core, "_TyperParameter", None)):
        shown = getattr(cls, "__dict__", {}).get("display_type_rich")
        if shown is None or getattr(shown, "_zoo_plain", False):
            continue

        def display_type_rich(self, ctx, _shown=shown):
            if getattr(self, "is_flag", False):
                return None
            text = _shown(self, ctx)
            listed = re.fullmatch(r"<list\[(\w+)\]>(\.\.\.)?", text or "")
            return f"<{listed.group(1).lower()}>..." if listed else text

        display_type_rich._zoo_plain = True
        cls.display_type_rich = display_type_rich


_plain_help_types()


class ZooGroup(TyperGroup):
    """Turns a ZooError from any command into one line on stderr and its exit status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            from zoo.console import err, safe

            err.print(f"[bold red]Error:[/] {safe(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


class CompareCommand(TyperCommand):
    """`zoo compare`, which still accepts its old `--json FILE` (now `--json-out FILE`):
    `--json` alone prints the rows on stdout, as it does for every other command."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, old_json_form(args))


def old_json_form(args: list[str]) -> list[str]:
    """Rewrite `--json FILE` / `--json=FILE` to `--json-out FILE`, with a deprecation note.
    A model name never holds a dot or a slash, so `--json rows.json` or `--json out/x` is a file."""
    rewritten, i = [], 0
    while i < len(args):
        arg = str(args[i])
        following = str(args[i + 1]) if i + 1 < len(args) else None
        if arg.startswith("--json="):
            rewritten.append("--json-out=" + arg.split("=", 1)[1])
        elif arg == "--json" and following and not following.startswith("-") and re.search(r"[./\\]", following):
            rewritten += ["--json-out", following]
            i += 1
        else:
            rewritten.append(args[i])
            i += 1
            continue
        _warn("`compare --json FILE` is deprecated: use --json-out FILE "
              "(--json alone prints the rows as JSON on stdout, as elsewhere)")
        i += 1
    return rewritten


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
        help="Keras backend: tensorflow (default), jax (pip install 'mnist-zoo\\[jax]') or torch "
             "(pip install 'mnist-zoo\\[torch]').")] = None,
):
    _settings["plugins_dir"] = plugins_dir
    if backend:
        if backend not in BACKENDS:
            raise ZooError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        os.environ["KERAS_BACKEND"] = backend  # read by Keras when it is first imported


def _zoo(warn: bool = True):
    from zoo.keras_glue import import_backend_quietly
    from zoo.plugins import get_zoo

    import_backend_quietly()
    zoo = get_zoo(_settings.get("plugins_dir"))
    if warn:
        for failure in zoo.failures:
            _warn(f"{failure.line()} (see `zoo plugins`)")
    return zoo


def _warn(text: str) -> None:
    from zoo.console import err, safe

    err.print(f"[yellow]Warning:[/] {safe(text)}", highlight=False, soft_wrap=True)


def _print_json(data) -> None:
    from zoo.files import json_text

    sys.stdout.write(json_text(data))


# -- registry --------------------------------------------------------------------
def _listing() -> dict:
    """Every model's listing row and card, and the warnings: from the cache when no plugin
    file changed (then neither the plugins nor TensorFlow are imported)."""
    from zoo.cache import listing

    return listing(_settings.get("plugins_dir"), lambda: _zoo(warn=False))


@app.command("list")
def list_models(
    patterns: Annotated[Optional[list[str]], typer.Argument(
        help="Names or fnmatch patterns, e.g. '*cnn*'.", show_default=False)] = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only models with this tag.")] = None,
    as_json: JsonOpt = False,
):
    """List the architectures: params and MACs computed from the built model."""
    from zoo.console import models_table, out

    from zoo.cache import pick

    data = _listing()
    chosen = pick(data, patterns or (), _tag(tag))
    names = {m["name"] for m in chosen}
    for warning in data["warnings"]:
        if warning["model"] is None or warning["model"] in names:
            _warn(warning["text"])
    rows = [m["row"] for m in chosen if m["row"] is not None]
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
    from zoo.console import model_card, out
    from zoo.registry import unknown_name_error

    data = _listing()
    model = next((m for m in data["models"] if m["name"] == name), None)
    if model is None:
        raise unknown_name_error("model", name, [m["name"] for m in data["models"]])
    if model["card"] is None:
        raise ZooError(model["error"])
    if as_json:
        _print_json(model["card"])
    else:
        out.print(model_card(model["card"]))


@app.command()
def plugins(as_json: JsonOpt = False):
    """Show installed plugins, the hooks they implement, what they register, and failures."""
    import dataclasses

    from zoo.cache import cached_stats
    from zoo.console import failures_table, out, plugins_table, safe
    from zoo.plugins import SLOW_IMPORT_SECONDS

    zoo = _zoo(warn=False)
    failures = zoo.failures + zoo.model_failures(cached_stats)
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
    slow = [p for p in zoo.plugins if p.import_seconds > SLOW_IMPORT_SECONDS]
    for p in slow:
        out.print(f"[yellow]Slow:[/] {safe(p.name)} took {p.import_seconds:.1f} s to import", highlight=False)
    if zoo.disabled:
        out.print(f"Disabled by ZOO_DISABLE_PLUGINS: {safe(', '.join(zoo.disabled))}", highlight=False)


def _tag(tag: Optional[str]) -> Optional[str]:
    from zoo.registry import TAG_ALIASES, canonical_tag

    if tag in TAG_ALIASES:
        _warn(f"the tag {tag!r} is now called {canonical_tag(tag)!r}; --tag {canonical_tag(tag)} selects the same models")
    return canonical_tag(tag)


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
        from zoo.figures import sample_grid

        info_["grid"] = str(sample_grid(arrays, show, out_path or Path(f"{name}-samples.png")))
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
TensorBoardOpt = Annotated[bool, typer.Option(
    "--tensorboard", help="Also write TensorBoard logs into each run directory; view them with "
                          "`tensorboard --logdir runs` (pip install 'mnist-zoo\\[tensorboard]').")]
DEFAULT_SEED = 42  # zoo.jobs.DEFAULT_SEED; written here so `zoo --help` needs no import


def _announce(prepared, options, seed):
    from zoo import data as datamod
    from zoo.console import err, safe

    err.print(f"[bold]Data:[/] {safe(options.dataset)} from {safe(prepared.arrays.source)}; "
              f"{prepared.describe()}; seed {seed}", highlight=False)
    if options.validate_on == "test":
        _warn(datamod.test_set_warning())
    available = len(prepared.arrays.y_train)
    if options.limit and options.limit > available:
        _warn(f"--limit {options.limit:,} is more than the {available:,} training images: all of them are used")


def _draw_figures(run_dir, record, arrays) -> list[str]:
    """Figures are a bonus: a plotting problem must not lose a trained run."""
    from zoo import figures

    try:
        return figures.draw_run(run_dir, record, arrays)
    except Exception as exc:  # noqa: BLE001
        _warn(f"could not draw figures for {record.model}: {exc}")
        return []


@app.command()
def train(
    name: Annotated[str, typer.Argument(help="Model name, as `zoo list` shows it.")],
    recipe: Annotated[Optional[str], typer.Option("--recipe", help="Recipe name (default: the first).")] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = DEFAULT_SEED,
    limit: LimitOpt = None,
    validate_on: ValidateOpt = "val",
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    precision: PrecisionOpt = "float32",
    tensorboard: TensorBoardOpt = False,
    as_json: JsonOpt = False,
):
    """Train one model with its article's recipe; save the model, history, metadata and figures."""
    from zoo.console import err, out, safe, train_summary
    from zoo.jobs import Interrupted, Options, check_seed, make_jobs, prepare, run_job
    from zoo.progress import TrainingDisplay
    from zoo.runs import new_run_dir, remove_if_empty, timestamp

    options = Options(epochs=epochs, batch_size=batch_size, limit=limit, validate_on=validate_on,
                      dataset=dataset, data_dir=data_dir, precision=precision, tensorboard=tensorboard)
    check_seed(seed)
    zoo = _zoo()
    arch = zoo.architecture(name)
    job = make_jobs([arch], options, seeds=[seed], recipe=recipe)[0]
    chosen = arch.recipe(job.recipe)
    prepared = prepare(zoo, options, split_seed=seed)
    _announce(prepared, options, seed)
    err.print(f"[bold]Recipe:[/] {safe(arch.name)}/{safe(chosen.name)}: {safe(chosen.optimizer_text())}, "
              f"{chosen.loss}, batch {job.batch_size}, {job.epochs} epoch{'s' * (job.epochs != 1)} "
              f"(from {safe(chosen.source.short())})", highlight=False)
    run_dir = new_run_dir(runs_dir, f"{timestamp()}-{arch.name}")
    try:
        with TrainingDisplay() as display:
            record = run_job(job, prepared, run_dir, display.on_event, registry=zoo)
    except Interrupted as stop:
        _draw_figures(run_dir, stop.record, prepared.arrays)
        raise ZooError(f"interrupted after {stop.record.epochs_completed} epoch(s); the partial run is kept in "
                       f"{run_dir} (model.keras holds the weights of the {stop.record.model_weights})",
                       exit_code=130) from None
    except ZooError:
        remove_if_empty(run_dir)
        raise
    drawn = _draw_figures(run_dir, record, prepared.arrays)
    if as_json:
        _print_json({**record.to_dict(), "run_dir": str(run_dir)})
        return
    out.print(train_summary(record, run_dir, drawn), highlight=False)


@app.command(cls=CompareCommand)
def compare(
    ctx: typer.Context,
    patterns: Annotated[Optional[list[str]], typer.Argument(
        help="Model names or patterns (default: every registered model).", show_default=False)] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = DEFAULT_SEED,
    limit: LimitOpt = None,
    validate_on: ValidateOpt = "val",
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    precision: PrecisionOpt = "float32",
    tensorboard: TensorBoardOpt = False,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only models with this tag, e.g. 'article'.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="One epoch per model (unless --epochs says otherwise).")] = False,
    seeds: Annotated[Optional[str], typer.Option(
        "--seeds", help="Train each model once per seed: N seeds (--seed, --seed+1, …) or a list like 1,7,42. "
                        "The table then shows mean ± std, a 95% interval and a test against the best.")] = None,
    vary_split: Annotated[bool, typer.Option(
        "--vary-split", help="With --seeds, each seed also draws its own train/validation split.")] = False,
    executor_name: Annotated[str, typer.Option(
        "--executor", envvar="ZOO_EXECUTOR", show_envvar=True,
        help="local: one job after another in this process. dask: jobs in parallel on Dask workers, a cluster "
             "of this machine or the one at --scheduler (pip install 'mnist-zoo\\[dask]').")] = "local",
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="With --executor dask: worker processes to start (default: one per job, up to the cores).")] = None,
    threads: Annotated[Optional[int], typer.Option(
        "--threads-per-worker", help="TensorFlow threads per job (default: the cores ÷ the workers; locally, TensorFlow's "
                                     "own). Sums, so the last digits of results, depend on it.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", envvar="ZOO_SCHEDULER", show_envvar=True,
        help="With --executor dask: the address of a running Dask scheduler, e.g. tcp://host:8786.")] = None,
    from_runs: Annotated[Optional[list[Path]], typer.Option(
        "--from-runs", metavar="DIR", help="Compare saved runs (run directories or folders of them) without training.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the rows as JSON and nothing else on stdout (progress stays on stderr).")] = False,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json-out", metavar="FILE", help="Also write the rows as JSON to this file.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option(
        "--csv", metavar="FILE", help="Also write the rows as CSV to this file.")] = None,
    md_path: Annotated[Optional[Path], typer.Option(
        "--md", metavar="FILE", help="Also write the table as Markdown to this file.")] = None,
    make_report: Annotated[bool, typer.Option(
        "--report", help="Also write a web page of the comparison into its folder (report/index.html), "
                         "as `zoo report` does.")] = False,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", metavar="DIR",
        help="Continue a comparison that was stopped (Ctrl-C, a crash): give its folder; the runs that finished "
             "there are kept, the others are trained into it. What you leave out of the command comes from the "
             "folder's plan.json.")] = None,
):
    """Train models on the same data, split and seed, then show them side by side."""
    from zoo import compare as cmp
    from zoo.console import err, out, safe
    from zoo.executors import check_executor, make_executor, run_comparison, write_plan
    from zoo.jobs import Options, make_jobs, parse_seeds, prepare
    from zoo.progress import JobsDisplay, TrainingDisplay
    from zoo.registry import select
    from zoo.runs import new_run_dir, timestamp

    tag = _tag(tag)
    if from_runs:
        if make_report:
            raise ZooError("--report with --from-runs: use zoo report DIR… for saved runs")
        if resume:
            raise ZooError("--resume continues training a comparison; --from-runs trains nothing: give one of them")
        return _compare_saved(from_runs, patterns, tag, json_path, csv_path, md_path, as_json)
    if resume is not None:  # what the command leaves out comes from the folder's plan
        from zoo.executors import check_resumable

        check_resumable(resume)
        asked = dict(patterns=patterns, tag=tag, seeds=seeds, seed=seed, epochs=epochs, batch_size=batch_size,
                     limit=limit, validate_on=validate_on, dataset=dataset, data_dir=data_dir, precision=precision,
                     vary_split=vary_split, tensorboard=tensorboard)
        asked = _fill_from_plan(ctx, resume, asked)
        (patterns, tag, seeds, seed, epochs, batch_size, limit, validate_on, dataset, data_dir, precision,
         vary_split, tensorboard) = asked.values()
    if quick and epochs is None:
        epochs = 1
    seed_list = parse_seeds(seeds, seed)
    options = Options(epochs=epochs, batch_size=batch_size, limit=limit, validate_on=validate_on,
                      dataset=dataset, data_dir=data_dir, precision=precision, vary_split=vary_split,
                      tensorboard=tensorboard)
    check_executor(executor_name, workers, threads, scheduler)
    zoo = _zoo()
    chosen = select(zoo.architectures, patterns or (), tag)
    if not chosen:
        raise ZooError(f"no model matches {' '.join(patterns or [])}".rstrip())
    jobs = make_jobs(chosen, options, seeds=seed_list)
    prepared = prepare(zoo, options, split_seed=seed)
    data_for = prepared
    if vary_split:
        splits = {s: prepare(zoo, options, split_seed=s) for s in seed_list}
        data_for = lambda job: splits[job.seed]  # noqa: E731
    _announce(prepared, options, seed if not vary_split else f"{seed} (split redrawn per seed)")
    if len(seed_list) > 1:
        err.print(f"[bold]Seeds:[/] {', '.join(map(str, seed_list))}: {len(jobs)} runs", highlight=False)
    if resume is not None:
        compare_dir, found = resume, _resume(resume, jobs, data_for)
        todo, done = found.todo, found.done
    else:
        compare_dir, todo, done = new_run_dir(runs_dir, f"compare-{timestamp()}"), jobs, []
        write_plan(compare_dir, dict(
            patterns=list(patterns or []), tag=tag, seed=seed,
            seeds=None if seed_list == [seed] else ",".join(map(str, seed_list)) + "," * (len(seed_list) == 1),
            epochs=epochs, batch_size=batch_size, limit=limit, validate_on=validate_on, dataset=dataset,
            data_dir=str(data_dir) if data_dir else None, precision=precision, vary_split=vary_split,
            tensorboard=tensorboard))
    executor = make_executor(executor_name, len(todo), workers, threads, scheduler, _settings.get("plugins_dir"),
                             on_start=lambda text: err.print(f"[bold]{safe(text)}[/]", highlight=False)) \
        if todo else make_executor("local", 0)
    display = JobsDisplay(todo) if executor.name == "dask" else TrainingDisplay(models=len(todo))
    with display:
        comparison = run_comparison(
            jobs, data_for, compare_dir, display.on_event, executor=executor, registry=zoo, done=done,
            on_outcome=lambda o: o.record and _draw_figures(o.run_dir, o.record, prepared.arrays))
    rows = _summarise(comparison.records, comparison.failed)
    cmp.export(rows, json_path, csv_path, md_path)
    _compare_figures(rows, compare_dir)
    title = (f"{dataset}: {prepared.describe()}, seed{'s' * (len(seed_list) > 1)} "
             f"{', '.join(map(str, seed_list))}" + (", validated on TEST" if validate_on == "test" else ""))
    if as_json:
        _print_json(rows)
    else:
        out.print(*cmp.summary_tables(rows, title, out.width))
        out.print(cmp.per_class_table([r for r in rows if r.get("n")], prepared.arrays.dataset.class_names))
        report_too = " and report/index.html" if make_report and not comparison.interrupted else ""
        out.print(f"Runs, compare.json, compare.png, pareto.png{report_too} in [bold]{safe(str(compare_dir))}[/]",
                  highlight=False)
    if comparison.interrupted:
        raise ZooError(f"interrupted: {len(comparison.completed)} of {len(jobs)} runs finished; "
                       f"their results are kept in {compare_dir} (zoo compare --resume {compare_dir} "
                       f"trains the rest)"
                       + (f" (no report written: zoo report {compare_dir} makes one)" if make_report else ""),
                       exit_code=130)
    if make_report and comparison.records:
        _write_report(comparison.records, compare_dir / "report", data_dir=data_dir)
    if comparison.failed:
        raise ZooError(f"{len(comparison.failed)} run(s) failed: "
                       f"{', '.join(o.job.label for o in comparison.failed)}", exit_code=1)


def _fill_from_plan(ctx: typer.Context, compare_dir: Path, asked: dict) -> dict:
    """`zoo compare --resume DIR`: every choice the command leaves out is the one the comparison
    saved in DIR/plan.json when it started; a choice given must agree with the runs there."""
    from zoo.console import err, safe
    from zoo.executors import PLAN_FILE, read_plan

    def source(name):
        found = ctx.get_parameter_source(name)
        return found.name if found else "DEFAULT"

    left_out = [k for k in asked if source(k) == "DEFAULT"]
    plan = read_plan(compare_dir)
    if plan is None:
        if not any(source(k) == "COMMANDLINE" for k in asked):
            raise ZooError(f"{compare_dir} has no {PLAN_FILE} (an older zoo made it): give that comparison's "
                           f"command again, with --resume {compare_dir}")
        return asked
    taken = {k: plan[k] for k in left_out if k in plan and plan[k] != asked[k]}
    if "data_dir" in taken:
        taken["data_dir"] = Path(taken["data_dir"]) if taken["data_dir"] else None
    if taken:  # say what was taken, as the options one would have typed
        flags = list(taken.get("patterns") or [])
        for key, value in taken.items():
            if key != "patterns" and value not in (None, False):
                flags += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
        err.print(f"[bold]From {safe(str(compare_dir / PLAN_FILE))}:[/] {safe(' '.join(flags))}", highlight=False)
    return {**asked, **taken}


def _resume(compare_dir: Path, jobs, data_for):
    """Which of ``jobs`` already finished in ``compare_dir``; says so, and clears the runs that start again."""
    import shutil

    import keras

    from zoo.console import err, safe
    from zoo.executors import find_finished

    found = find_finished(compare_dir, jobs, data_for, keras.backend.backend(), warn=_warn)
    err.print(f"[bold]Resuming {safe(str(compare_dir))}:[/] {len(found.done)} of {len(jobs)} runs finished there "
              f"and are kept; {len(found.todo)} to train", highlight=False)
    for run_dir in found.restarted:
        err.print(f"{safe(run_dir.name)} was stopped mid-way: it starts again", highlight=False)
        shutil.rmtree(run_dir)
    return found


def _summarise(records, failed=()) -> list[dict]:
    from zoo.compare import comparison_rows

    rows, notes = comparison_rows(records, failed)
    for note in notes:
        _warn(note)
    return rows


def _compare_figures(rows, compare_dir):
    """compare.png (accuracy per model: seeds, mean, interval), pareto.png, and the validation
    curves when there is more than one epoch to draw; a figure never loses the results."""
    from zoo import compare as cmp
    from zoo import figures

    done = [r for r in rows if r.get("mean") is not None]
    if not done:
        return
    try:
        figures.accuracy_chart(done, compare_dir / "compare.png", "Test accuracy, same data and split")
        figures.pareto(done, compare_dir / "pareto.png")
        single = [r for r in done if r["n"] == 1 and r.get("run_dir")]
        histories = cmp.histories(single)
        if any(len(h.get("val_accuracy", [])) > 1 for h in histories.values()):
            figures.compare_curves(histories, compare_dir / "curves.png")
    except Exception as exc:  # noqa: BLE001
        _warn(f"could not draw the comparison's figures: {exc}")


def _compare_saved(from_runs, patterns, tag, json_path, csv_path, md_path, as_json=False):
    """`zoo compare --from-runs`: the same table from saved runs, without training."""
    from zoo import compare as cmp
    from zoo.console import out
    from zoo.registry import select

    stray = [p for p in patterns or () if Path(p).exists()]
    if stray:
        raise ZooError(f"{stray[0]} looks like a run directory: give --from-runs once per directory "
                       f"(--from-runs A --from-runs B)")
    tagged = {a.name for a in select(_zoo().architectures, (), tag)} if tag else None  # tags live in the registry
    records = cmp.pick_saved(cmp.records_from_dirs(from_runs, warn=_warn), patterns or (), tagged)
    if not records:
        raise ZooError(f"no saved run is of a model tagged {tag!r}")
    for key, values in cmp.unlike([cmp.row_from_record(r) for r in records]).items():
        _warn(f"these runs differ in {key} ({', '.join(values)}): not a like-for-like comparison")
    rows = _summarise(records)
    cmp.export(rows, json_path, csv_path, md_path)
    if as_json:
        return _print_json(rows)
    out.print(*cmp.summary_tables(rows, f"{len(records)} saved runs", out.width))
    out.print(*cmp.per_class_tables([r for r in rows if r.get("n")], records))


@app.command()
def report(
    sources: Annotated[list[Path], typer.Argument(
        metavar="RUN_DIRS|COMPARE_DIR...", show_default=False,
        help="Run directories, or folders holding them such as a comparison's folder.")],
    out_dir: Annotated[Optional[Path], typer.Option(
        "-o", "--out", metavar="DIR",
        help="Where the site goes (default: report/ inside the one folder given, else ./report).")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="The index page's heading.")] = None,
    digit: Annotated[int, typer.Option(
        "--digit", min=0, help="The test image whose feature maps every model page shows.")] = 0,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
):
    """Write a web page of saved runs: the table with its statistics, figures, and a page per model
    (card, recipe, mistakes, filters, feature maps, saliency). Opens from disk, offline."""
    from zoo import compare as cmp

    if out_dir is None:
        single = sources[0] if len(sources) == 1 else None
        out_dir = single / "report" if single and single.is_dir() and not (single / "run.json").is_file() \
            else Path("report")
    records = cmp.records_from_dirs(sources, warn=_warn)
    result = _write_report(records, out_dir, title=title, digit=digit, data_dir=data_dir, quiet=as_json)
    if as_json:
        _print_json({"index": str(result.index), "pages": [str(p) for p in result.pages], "notes": result.notes})


def _write_report(records, out_dir: Path, title=None, digit=0, data_dir=None, quiet=False):
    """Build the report (``zoo.report``) with this machine's plugins, cards and data."""
    from zoo import data as datamod
    from zoo import report
    from zoo.console import err, safe
    from zoo.jobs import command_line

    zoo = _zoo(warn=False)  # plugins register their custom layers, which safe_mode loading must know
    cards = {m["name"]: m["card"] for m in _listing()["models"] if m.get("card")}
    result = report.build(records, out_dir, cards=cards, command=command_line(), title=title, digit=digit,
                          load_arrays=lambda name: datamod.load(zoo.dataset(name), data_dir), warn=_warn)
    if not quiet:
        left_out = f"; {len(result.notes)} section(s) left out, each page says why" if result.notes else ""
        err.print(f"[bold]Report:[/] {len(result.pages)} model page(s) in {safe(str(out_dir))}{left_out}. "
                  f"Open {safe(result.index.resolve().as_uri())}", highlight=False, soft_wrap=True)
    return result


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run directory (holding run.json and model.keras).")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
):
    """Evaluate a saved run's model on its dataset's test set again."""
    from zoo import data as datamod
    from zoo.console import out, pct, safe
    from zoo.jobs import evaluate_model
    from zoo.runs import open_run

    _zoo(warn=False)  # plugins register their custom layers, which safe_mode loading must know
    record, model = open_run(run)
    arrays = datamod.load(_zoo(warn=False).dataset(record.dataset.name), data_dir)
    if arrays.dataset.num_classes != len(record.class_names):
        raise ZooError(f"{run}: run.json names {len(record.class_names)} classes, "
                       f"{record.dataset.name} has {arrays.dataset.num_classes}")
    metrics = evaluate_model(model, arrays, record.input_kind, record.output)
    for key in ("predicted", "p_true"):
        metrics.pop(key)
    published = record.published.test_accuracy if record.published else None
    result = {"run_dir": str(run), "model": record.model, **metrics,
              "recorded_test_accuracy": record.test_accuracy, "published_accuracy": published}
    if as_json:
        _print_json(result)
        return
    out.print(f"[bold]{safe(record.model)}[/] ({safe(str(run))}): test accuracy {pct(metrics['test_accuracy'])}, "
              f"loss {metrics['test_loss']:.4f} on {len(arrays.y_test):,} images; recorded at training time: "
              f"{pct(record.test_accuracy)}; article: {pct(published)}", highlight=False)


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="A run directory (holding run.json and model.keras).")],
    images: Annotated[list[Path], typer.Argument(help="PNG/JPEG/BMP/… images of single digits.")],
    save_preprocessed: Annotated[Optional[Path], typer.Option(
        "--save-preprocessed", help="Write each image as the model sees it (28×28 PNG) into this folder.")] = None,
    as_json: JsonOpt = False,
):
    """Read your own handwritten digits: grayscale, invert, crop, fit 20×20, centre in 28×28, predict."""
    from zoo.console import err, out, safe
    from zoo.imaging import read_digits
    from zoo.runs import open_run

    _zoo(warn=False)  # plugins register their custom layers, which safe_mode loading must know
    record, model = open_run(run)
    answers = []
    for answer in read_digits(model, record, images, save_preprocessed):
        answers.append(answer)
        if answer["digit"] is None:
            err.print(f"[bold red]Error:[/] {safe(answer['error'])}", highlight=False, soft_wrap=True)
        elif not as_json:
            guesses = ", ".join(f"{safe(t['label'])} ({t['probability'] * 100:.1f}%)" for t in answer["top3"])
            out.print(f"{safe(answer['image'])}: [bold]{safe(answer['label'])}[/]   top 3: {guesses}",
                      highlight=False)
    if as_json:
        _print_json(answers)
    if any(a["digit"] is None for a in answers):
        raise typer.Exit(1)


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="A run directory (holding run.json and model.keras).")],
    image: Annotated[str, typer.Argument(
        help="An image file of one digit (read as zoo predict reads it), or a number: that test-set image.")],
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", metavar="DIR", help="Where the PNGs go (default: explain-IMAGE inside the run directory).")] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
):
    """What the model sees in one digit: its top 3, every convolution's feature maps, and a saliency map."""
    from zoo import figures
    from zoo.console import out, safe
    from zoo.explain import explain as explain_digit
    from zoo.imaging import preprocess, write_png
    from zoo.runs import open_run

    zoo = _zoo(warn=False)  # plugins register their custom layers, which safe_mode loading must know
    record, model = open_run(run)
    truth = None
    if image.isdigit() and not Path(image).exists():
        from zoo import data as datamod

        arrays = datamod.load(zoo.dataset(record.dataset.name), data_dir)
        index = int(image)
        if index >= len(arrays.x_test):
            raise ZooError(f"test image {index} does not exist: {record.dataset.name} has {len(arrays.x_test):,} "
                           f"(0 to {len(arrays.x_test) - 1:,})")
        digit, truth, name = arrays.x_test[index].reshape(28, 28), int(arrays.y_test[index]), f"test{index}"
        image = f"test image {index}"
    else:
        digit, name = preprocess(Path(image)), Path(image).stem
    folder = out_dir or Path(run) / f"explain-{name}"
    result = explain_digit(model, record, digit)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot write into {folder} ({exc.strerror or exc})") from None
    written = [write_png(digit, folder / "input.png")]
    for i, (layer, maps) in enumerate(result.feature_maps, 1):
        written.append(figures.feature_maps(layer, maps, folder / f"feature-maps-{i}-{layer}.png",
                                            f"{record.model}: convolution {i} of {len(result.feature_maps)}"))
    if result.saliency is not None:
        best = result.top3[0]
        written.append(figures.saliency(digit, result.saliency, folder / "saliency.png",
                                        f"{record.model}: why {best['label']} ({best['probability'] * 100:.1f}%)"))
    answer = {"image": image, "true_label": None if truth is None else record.class_names[truth],
              "label": result.top3[0]["label"], "top3": result.top3,
              "probabilities": [float(p) for p in result.probabilities],
              "feature_maps": [{"layer": n, "shape": list(m.shape)} for n, m in result.feature_maps],
              "files": [str(p) for p in written], "notes": result.notes}
    if as_json:
        return _print_json(answer)
    guesses = ", ".join(f"{safe(t['label'])} ({t['probability'] * 100:.1f}%)" for t in result.top3)
    truth_text = "" if truth is None else f" (true label: {safe(record.class_names[truth])})"
    out.print(f"{safe(image)}: [bold]{safe(result.top3[0]['label'])}[/]{truth_text}   top 3: {guesses}", highlight=False)
    for note in result.notes:
        out.print(f"[dim]{safe(note)}[/]", highlight=False)
    out.print(f"{len(result.feature_maps)} feature-map figure(s){' and a saliency map' * (result.saliency is not None)} "
              f"in [bold]{safe(str(folder))}[/]", highlight=False)


# -- plugin authors ----------------------------------------------------------------
@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The new architecture's name, e.g. tiny-net.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the project folder "
                                                          "(it is named mnist-zoo-NAME).")] = Path("."),
    path: Annotated[Optional[Path], typer.Option("--path", help="The project folder itself, e.g. ./lenet5.")] = None,
):
    """Create an installable plugin project with one documented architecture and its test."""
    from zoo.console import out, safe
    from zoo.scaffold import create

    root = safe(str(create(name, directory, path)))
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
    from zoo.console import out, safe
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
                out.print(f"{mark} {safe(report.model)}: {safe(c.name)}: {safe(c.detail)}", highlight=False)
    failed = [r.model for r in reports if not r.ok]
    if failed:
        raise ZooError(f"contract not met by {', '.join(failed)}", exit_code=1)


def main():
    """The console script: run the command, then leave without TensorFlow's teardown."""
    from zoo import stopping
    from zoo.keras_glue import exit_promptly

    # Ctrl-C and SIGTERM (docker stop, a job scheduler's time limit, kill) save what finished,
    # and are remembered, so a stop that lands where Python swallows it is not lost.
    stopping.install()
    try:
        app()
        code = 0
    except SystemExit as stop:  # how Typer ends every command, successful or not
        code = stop.code
    exit_promptly(code)


if __name__ == "__main__":
    main()
