"""`zoo train` and `zoo compare`: parse, call ``zoo.train`` / ``compare`` / ``resume`` / ``load``, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo.cli.app import (
    DEFAULT_SEED,
    BatchOpt,
    CommandFailed,
    DataDirOpt,
    DatasetOpt,
    EpochsOpt,
    JsonOpt,
    LimitOpt,
    PrecisionOpt,
    RunsDirOpt,
    SeedOpt,
    TensorBoardOpt,
    ValidateOpt,
    ZooCommand,
    ZooError,
    _api,
    _flag,
    _opt,
    _print_json,
    _report_line,
    _settings,
    command,
)
from zoo.errors import Interrupted


@command(cls=ZooCommand)
def train(
    name: Annotated[str, typer.Argument(help="Model name, as `zoo list` shows it.")],
    recipe: _opt(str, "--recipe", metavar="NAME", help="Recipe name (default: the first).") = None,
    epochs: EpochsOpt = None, batch_size: BatchOpt = None, seed: SeedOpt = DEFAULT_SEED, limit: LimitOpt = None,
    validate_on: ValidateOpt = "val", dataset: DatasetOpt = "mnist", data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = Path("runs"), precision: PrecisionOpt = "float32", tensorboard: TensorBoardOpt = False,
    as_json: JsonOpt = False,
):
    """Train one model with its article's recipe; save the model, history, metadata and figures."""
    from zoo.console import out, train_summary

    run = _api().train(name, recipe=recipe, epochs=epochs, batch_size=batch_size, limit=limit, seed=seed,
                       validate_on=validate_on, dataset=dataset, data_dir=data_dir, runs_dir=runs_dir,
                       precision=precision, tensorboard=tensorboard, plugins_dir=_settings.get("plugins_dir"))
    if as_json:
        return _print_json(run.to_dict())
    out.print(train_summary(run.record, run.dir, run.figures), highlight=False)


@command(cls=ZooCommand)
def compare(
    ctx: typer.Context,
    patterns: Annotated[Optional[list[str]], typer.Argument(
        metavar="MODEL", help="Model names or patterns (default: every registered model).", show_default=False)] = None,
    epochs: EpochsOpt = None, batch_size: BatchOpt = None, seed: SeedOpt = DEFAULT_SEED, limit: LimitOpt = None,
    validate_on: ValidateOpt = "val", dataset: DatasetOpt = "mnist", data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = Path("runs"), precision: PrecisionOpt = "float32", tensorboard: TensorBoardOpt = False,
    tag: _opt(str, "--tag", metavar="TAG", help="Only models with this tag, e.g. 'article'.") = None,
    quick: _flag("--quick", "One epoch per model (unless --epochs says otherwise).") = False,
    seeds: _opt(str, "--seeds", metavar="N|LIST", help="Train each model once per seed: N seeds (--seed, --seed+1, "
                "…) or a list like 1,7,42. The table then shows mean ± std, a 95% interval and a test against the "
                "best.") = None,
    vary_split: _flag("--vary-split", "With --seeds, each seed also draws its own train/validation split.") = False,
    vary: _opt(list[str], "--vary", metavar="KNOB=V1,V2",
               help="Change one thing: one row per value (the first is the reference), each on the same seeds and "
                    "split, with a paired test against the reference. Twice makes a grid. `zoo info NAME` lists the "
                    "knobs (every model has recipe, learning_rate, batch_size, epochs).") = None,
    settings: _opt(list[str], "--set", metavar="KNOB=V", help="Fix a knob for every run, e.g. --set dropout=0.3.") = None,
    executor: Annotated[str, typer.Option(
        "--executor", metavar="local|dask", envvar="ZOO_EXECUTOR", show_envvar=True,
        help="local: one job after another in this process. dask: jobs in parallel on Dask workers, a cluster "
             "of this machine or the one at --scheduler (pip install 'mnist-zoo\\[dask]').")] = "local",
    workers: _opt(int, "--workers", metavar="N", help="With --executor dask: worker processes to start (default: "
                  "one per job, up to the cores).") = None,
    threads: _opt(int, "--threads-per-worker", metavar="N", help="TensorFlow threads per job (default: the cores ÷ "
                  "the workers; locally, TensorFlow's own). Sums, so the last digits of results, depend on it.") = None,
    scheduler: _opt(str, "--scheduler", metavar="ADDRESS", envvar="ZOO_SCHEDULER", show_envvar=True,
                    help="With --executor dask: the address of a running Dask scheduler, e.g. tcp://host:8786.") = None,
    seed_batching: Annotated[bool, typer.Option(
        "--seed-batching/--no-seed-batching", help="With --seeds, train the seeds of a small model together, as "
        "one computation: the same recipe, seeds and batches (each seed its own weights and optimizer), "
        "faster; the same weights to rounding. Each run.json says how it trained.", metavar="")] = True,
    from_runs: _opt(list[Path], "--from-runs", metavar="DIR",
                    help="Compare saved runs (run directories or folders of them) without training.") = None,
    as_json: _flag("--json", "Print the rows as JSON and nothing else on stdout (progress stays on stderr).") = False,
    json_path: _opt(Path, "--json-out", metavar="FILE", help="Also write the rows as JSON to this file.") = None,
    csv_path: _opt(Path, "--csv", metavar="FILE", help="Also write the rows as CSV to this file.") = None,
    md_path: _opt(Path, "--md", metavar="FILE", help="Also write the table as Markdown to this file.") = None,
    make_report: _flag("--report", "Also write a web page of the comparison into its folder (report/index.html), "
                                   "as `zoo report` does.") = False,
    margin: Annotated[float, typer.Option(
        "--margin", metavar="POINTS", help="How close, in accuracy points, our mean must be shown to be to an "
        "article's published run for 'consistent' (an equivalence test, TOST; docs/tutorial.md says why 0.2).")] = 0.2,
    resume: _opt(Path, "--resume", metavar="DIR", help="Continue a comparison that was stopped (Ctrl-C, a crash): "
                 "give its folder; the runs that finished there are kept, the others are trained into it. What you "
                 "leave out of the command comes from the folder's plan.json.") = None,
):
    """Train models on the same data, split and seed, then show them side by side."""
    from zoo.rows import check_export_paths, export

    api, plugins_dir = _api(), _settings.get("plugins_dir")
    check_export_paths(json_path, csv_path, md_path)  # before anything trains
    if from_runs:
        if make_report or resume:
            raise ZooError("--report with --from-runs: use zoo report DIR… for saved runs" if make_report else
                           "--resume continues training a comparison; --from-runs trains nothing: give one of them")
        retest = dataset if _given_on_command_line(ctx, "dataset") else None  # re-test the models on it
        result = api.load(from_runs, models=patterns, tag=tag, margin=margin, plugins_dir=plugins_dir,
                          dataset=retest, data_dir=data_dir, runs_dir=runs_dir)
        export(result.rows, json_path, csv_path, md_path)
        return _print_json(result.rows) if as_json else _show(result, saved=False)
    executing = dict(executor=executor, workers=workers, threads=threads, scheduler=scheduler, plugins_dir=plugins_dir,
                     margin=margin, seed_batching=seed_batching)
    try:
        if resume is not None:
            asked = dict(patterns=patterns, tag=tag, seeds=seeds, seed=seed, epochs=epochs, batch_size=batch_size,
                         limit=limit, validate_on=validate_on, dataset=dataset, data_dir=data_dir,
                         precision=precision, vary_split=vary_split, tensorboard=tensorboard, vary=vary,
                         settings=settings)
            given = {{"patterns": "models", "settings": "set"}.get(k, k): v for k, v in asked.items()
                     if _given_on_command_line(ctx, k)}
            result = api.resume(resume, quick=quick, **given, **executing)
        else:
            result = api.compare(patterns, seeds=seeds, seed=seed, epochs=epochs, batch_size=batch_size, limit=limit,
                                 tag=tag, quick=quick, validate_on=validate_on, dataset=dataset, data_dir=data_dir,
                                 runs_dir=runs_dir, precision=precision, vary_split=vary_split,
                                 tensorboard=tensorboard, vary=vary, set=settings, **executing)
    except Interrupted as stop:
        finished = stop.result is not None and any(r.status == "completed" for r in stop.result.records)
        if finished:  # nothing finished: no tables of nothing, only the line saying what was kept
            export(stop.result.rows, json_path, csv_path, md_path)
            _print_json(stop.result.rows) if as_json else _show(stop.result, saved=False)
        raise Interrupted(str(stop) + (f" (no report written: zoo report {stop.result.dir} makes one)"
                                    if make_report and stop.result is not None else "")) from None
    export(result.rows, json_path, csv_path, md_path)
    _print_json(result.rows) if as_json else _show(result, report=make_report)
    if make_report and result.records:
        _report_line(api.report(result, result.dir / "report", plugins_dir=plugins_dir), result.dir / "report")
    if result.failed:
        labels = [f"{r['model']}/{r['recipe']} seed {r['seed']}" for r in result.failed]
        raise CommandFailed(f"{len(result.failed)} run(s) failed: {', '.join(labels)}")


def _given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Typed on this command line (not a default, and not an environment variable such as ZOO_DATA_DIR)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _show(comparison, saved: bool = True, report: bool = False) -> None:
    from zoo.console import out, safe

    out.print(comparison.table(width=out.width))
    if saved and comparison.dir is not None and comparison.records and not comparison.interrupted \
            and (comparison.dir / "compare.json").is_file():
        report_too = " and report/index.html" if report else ""
        out.print(f"Runs, compare.json, compare.png, pareto.png{report_too} in [bold]{safe(str(comparison.dir))}[/]",
                  highlight=False)


@command(name="experiments", cls=ZooCommand)
def experiments_command(as_json: JsonOpt = False):
    """List the experiments: questions a class can answer by changing one knob on paired seeds."""
    from rich.table import Table

    from zoo.console import out, safe

    found = _api().experiments(plugins_dir=_settings.get("plugins_dir"))
    if as_json:
        return _print_json(found)
    table = Table(title="Experiments (zoo experiment NAME runs one; --full for the article's recipe)",
                  title_justify="left")
    for col in ("name", "model", "changes", "quick run", "question"):
        table.add_column(col)
    for e in found:
        changes = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in e["vary"].items()) or "validates on test"
        quick = f"{e['seeds']} seeds, {e['epochs'] or 'all'} epoch(s), {e['limit'] or 'all'} images"
        table.add_row(safe(e["name"]), safe(e["model"]), safe(changes), quick, safe(e["question"]))
    out.print(table)


@command(name="experiment", cls=ZooCommand)
def experiment_command(
    name: Annotated[str, typer.Argument(help="Experiment name, as `zoo experiments` lists it.")],
    seeds: _opt(int, "--seeds", metavar="N", help="Seeds per variant (default: the experiment's).") = None,
    full: _flag("--full", "The article's whole recipe (all epochs and images) instead of the quick run.") = False,
    seed: SeedOpt = DEFAULT_SEED, data_dir: DataDirOpt = None, runs_dir: RunsDirOpt = Path("runs"),
    as_json: JsonOpt = False,
):
    """Run an experiment: its variants on the same seeds and split, a paired test per difference,
    the answer in words, and a figure of the differences seed by seed."""
    from zoo.console import out, safe

    result = _api().experiment(name, seeds=seeds, full=full, seed=seed, data_dir=data_dir, runs_dir=runs_dir,
                               plugins_dir=_settings.get("plugins_dir"))  # Ctrl-C: one line, exit 130
    answer = result.answer
    if as_json:
        return _print_json({**answer.to_dict(), "rows": result.rows, "dir": str(result.dir)})
    out.print(result.table(width=out.width))
    out.print(f"[bold]{safe(answer.question)}[/]", highlight=False)
    for line in answer.lines:
        out.print(f"  • {safe(line)}", highlight=False)
    if answer.notice:
        out.print(f"[dim]What to notice: {safe(answer.notice)}[/]", highlight=False)
    figure = result.dir / "differences.png" if result.dir else None
    out.print(f"Runs, experiment.json{', differences.png' if figure and figure.is_file() else ''} in "
              f"[bold]{safe(str(result.dir))}[/]", highlight=False)
