"""The zoo's verbs, for Python: a notebook, a script, the CLI and the classroom page call these.

    import zoo
    zoo.list_models("*cnn*")                       # the listing, as data
    c = zoo.compare(["mlp", "speedrun"], seeds=3)  # a Comparison: c.rows, c.table(), c.figure("pareto")
    c                                              # in a notebook: the table, inline

Each verb checks its arguments first (a ``zoo.ZooError`` subclass, one line, before anything
slow loads), reports progress through ``zoo.feedback`` (``progress=False`` for silence)
and returns data or a ``Run`` / ``Comparison``. Nothing here exits the process or prints
to stdout. Keras and TensorFlow load only when a verb needs them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from zoo import classroom, exporting, folders, pretrained_models, settings, site
from zoo import data as datamod
from zoo import experimenting as experimentsmod
from zoo import rows as rowsmod
from zoo.anatomy import build_model
from zoo.cache import cached_stats, listing, pick
from zoo.check import check_all
from zoo.comparing import (
    announce_data,
    check_resumable,
    draw_comparison_figures,
    draw_run_figures,
    run_comparison,
)
from zoo.errors import Interrupted, OptionError, RunFileError, TrainingError, ZooError
from zoo.evaluation import evaluate_model
from zoo.explaining import explain as explain_digit
from zoo.feedback import Feedback
from zoo.files import atomic_write_json
from zoo.imaging import field_of, image_name, preprocess, read_digits
from zoo.jobs import make_jobs, prepare, run_job
from zoo.keras_glue import import_backend_quietly
from zoo.knobs import parse_set
from zoo.plan import (
    DEFAULT_MARGIN_POINTS,
    PLAN_FILE,
    Execution,
    Plan,
    flag,
    margin_fraction,
)
from zoo.plugins import get_zoo
from zoo.plugins import register as add
from zoo.registry import select, unknown_name_error
from zoo.results import Comparison, Run
from zoo.retesting import evaluate_on, foreign_test_set, retest
from zoo.rows import comparison_rows
from zoo.runs import new_run_dir, open_run, remove_if_empty, timestamp
from zoo.types import DEFAULT_SEED, Options, check_seed

RUNS_DIR_ENV = settings.ENVIRONMENT["runs_dir"]


def _runs_dir(runs_dir) -> Path:
    return Path(runs_dir or settings.current().runs_dir)


def _registry(plugins_dir=None, feedback=None):
    """The loaded plugins (Keras is imported first, quietly); with ``feedback``, says which failed."""
    import_backend_quietly()
    registry = get_zoo(plugins_dir)
    if feedback is not None:
        for failure in registry.failures:
            feedback.warn(f"{failure.line()} (see `zoo plugins`)")
    return registry


def _names(value, what: str) -> list:
    """A name or a list of names (models, patterns), as the API takes them; else a one-line error."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise OptionError(f"{what} takes a name or a list of names, not {_kind(value)}")


def _paths(value, what: str) -> list:
    """A path or a list of paths (run folders, comparison folders, pretrained names)."""
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike)) for v in value):
        return list(value)
    raise OptionError(f"{what} takes a folder's path or a list of them, not {_kind(value)}")


def _kind(value) -> str:
    if isinstance(value, (list, tuple)):
        inner = sorted({type(v).__name__ for v in value})
        return f"a {type(value).__name__} of {', '.join(inner)}" if inner else f"an empty {type(value).__name__}"
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _run_of(run) -> Run:
    """A ``Run``, a run directory's path, or a pretrained model's name (``zoo.pretrained()``)."""
    if isinstance(run, Run):
        return run
    if isinstance(run, (str, os.PathLike)):
        if pretrained_models.is_pretrained(os.fspath(run)):
            return Run.open(pretrained_models.folder(os.fspath(run)))
        if not Path(run).exists() and "/" not in os.fspath(run):  # a bare name: neither a folder nor pretrained
            known = ", ".join(pretrained_models.names())
            raise RunFileError(f"{run}: no such run directory, and no pretrained model of that name "
                               f"(pretrained: {known}; `zoo pretrained` lists them)")
        return Run.open(run)
    raise OptionError(f"give a zoo.Run, a run directory or a pretrained model's name, not {type(run).__name__}")


def pretrained(name: str | None = None):
    """The models shipped trained with the zoo: with no ``name``, a list of dicts (accuracy,
    size, SHA-256, recipe, epochs, seed, the CPU it trained on, and the multi-seed mean in
    docs/results it is read beside); with a ``name``, that model as a ``Run`` (its files
    checked against their SHA-256 first). Every verb that takes a run takes the name too:
    ``zoo.predict("speedrun", "my-digit.png")``."""
    if name is None:
        return pretrained_models.listing()
    if not isinstance(name, str):
        raise OptionError(f"give a pretrained model's name, not {type(name).__name__}")
    return Run.open(pretrained_models.folder(name))


# -- the registry -------------------------------------------------------------------------------------
def _listing(plugins_dir=None) -> dict:
    """Every model's listing row and card, and the warnings: from the cache when no plugin file
    changed (then neither the plugins nor TensorFlow are imported)."""
    return listing(plugins_dir, lambda: _registry(plugins_dir))


def list_models(pattern=None, tag: str | None = None, *, plugins_dir=None, warnings: list | None = None) -> list[dict]:
    """Every architecture (or those ``pattern`` — a name, an fnmatch pattern like ``'*cnn*'``
    or a list of them — and ``tag`` pick): name, title, params, MACs, published accuracy, tags.
    ``warnings``: a list to collect the listing's warnings into (plugins that failed, models
    that cannot be built)."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern or ())
    data = _listing(plugins_dir)
    chosen = pick(data, patterns, tag)
    names = {m["name"] for m in chosen}
    if warnings is not None:
        warnings += [w["text"] for w in data["warnings"] if w["model"] is None or w["model"] in names]
    return [m["row"] for m in chosen if m["row"] is not None]


def info(name: str, *, plugins_dir=None) -> dict:
    """The model card of ``name`` as data: what it teaches, every layer with the arithmetic behind
    its parameter count, its recipes, pitfalls and sources."""
    data = _listing(plugins_dir)
    model = next((m for m in data["models"] if m["name"] == name), None)
    if model is None:
        raise unknown_name_error("model", name, [m["name"] for m in data["models"]])
    if model["card"] is None:
        raise TrainingError(model["error"])
    return model["card"]


def register(architecture, *, plugins_dir=None):
    """Add an architecture written in this process (a notebook cell) to the zoo for this session.

    Only ``name``, ``build`` and one ``Recipe(name, optimizer, loss, batch_size, epochs)`` are
    needed. The model is built and checked now (one line if it cannot be); registering the
    same name again replaces it. Then ``zoo.compare(["my-net", "speedrun"])`` trains it beside
    the zoo's models. Returns the registered architecture."""
    _registry(plugins_dir)
    return add(architecture, plugins_dir)


def architecture(name: str, *, plugins_dir=None):
    """The registered ``zoo.Architecture`` called ``name`` (its build function, recipes, knobs, card
    fields); an unknown name is a ``zoo.UnknownNameError`` naming close matches."""
    if not isinstance(name, str):
        raise OptionError(f"name= takes a model's name, not {_kind(name)}")
    return _registry(plugins_dir).architecture(name)


def build(name: str, *, image_shape=(28, 28, 1), num_classes: int = 10, plugins_dir=None, **knobs):
    """Model ``name`` built for ``image_shape`` and ``num_classes`` — uncompiled, untrained, its
    weights made — as a comparison builds it: ``zoo.build("speedrun")``,
    ``zoo.build("baseline-cnn", dropout=0.5)``. A knob it does not have is one line naming those it has."""
    arch = architecture(name, plugins_dir=plugins_dir)
    settings = parse_set(arch, knobs)
    return build_model(arch, tuple(image_shape), int(num_classes), settings)


def installed_plugins(*, plugins_dir=None) -> dict:
    """The installed plugins, the hooks they implement and what they register; every failure
    (a plugin that did not load, a model that cannot be built); the plugins disabled by name."""

    registry = _registry(plugins_dir)
    failures = registry.failures + registry.model_failures(cached_stats)
    return {"plugins": [dataclasses.asdict(p) for p in registry.plugins],
            "failures": [dataclasses.asdict(f) for f in failures], "disabled": registry.disabled}


def datasets(name: str | None = None, *, data_dir=None, verify: bool = False, show: int | None = None, out=None,
             progress=True, plugins_dir=None):
    """What ``zoo data`` shows. Without ``name``: every dataset (the plugins' and the folders
    ``add_dataset`` named), one dict each. With it (a name, or ``folder:DIR``): that dataset's
    dict — where it was found, sizes, class counts, pixel statistics. ``verify``: the arrays'
    checksums compared with the known ones (``verified``: True, False or None per array).
    ``show=N``: a PNG grid of N samples written to ``out`` (default ``NAME-samples.png``),
    named in ``grid``."""
    registry = _registry(plugins_dir, Feedback(progress))
    if name is None:
        return datamod.describe_all([*registry.datasets.values(), *folders.added_datasets()], data_dir,
                                    verify=flag(verify, "verify"))
    found, arrays = datamod.describe(registry.dataset(name), data_dir, verify=flag(verify, "verify"))
    if show:
        from zoo import figures  # matplotlib: only for the grid

        found["grid"] = str(figures.sample_grid(arrays, show, Path(out) if out else Path(f"{name}-samples.png")))
    return found


def add_dataset(name: str, folder, *, plugins_dir=None):
    """Name a folder of images ``folder/<label>/*.png`` as a dataset (``zoo data add NAME DIR``):
    ``dataset=name`` then means it, in every verb and lesson. Returns the ``zoo.Dataset``."""
    return folders.add(name, Path(folder), _registry(plugins_dir).datasets)


def remove_dataset(name: str) -> None:
    """Forget a name ``add_dataset`` gave (the folder itself is untouched)."""
    folders.remove(name)


def check_models(models, *, dataset: str = "mnist", data_dir=None, progress=True, plugins_dir=None) -> list:
    """The plugin contract, checked for each model ``models`` (names or patterns) picks
    (``zoo check``): metadata, build, output, recipes, overfitting a batch, save and load.
    One report each (``.ok``, ``.results``, ``.to_dict()``)."""
    return check_all(_registry(plugins_dir, Feedback(progress)), _names(models, "models="), dataset, data_dir)


def experiments(*, plugins_dir=None) -> list[dict]:
    """The experiments the plugins registered: each a question, the model, the knob values it
    compares (the first is the reference), its quick defaults and what ``full`` changes."""
    registry = _registry(plugins_dir)
    return [{"name": e.name, "question": e.question, "model": e.model, "kind": e.kind,
             "vary": {k: list(v) for k, v in e.vary.items()}, "set": dict(e.set), "seeds": e.seeds,
             "epochs": e.epochs, "limit": e.limit, "full": dict(e.full), "notice": e.notice, "plugin": e.plugin,
             "source": e.source.short()} for e in registry.experiments.values()]


def experiment(name: str, *, seeds: int | None = None, full: bool = False, seed: int = DEFAULT_SEED,
               data_dir=None, runs_dir=None, executor: str = "local", workers: int | None = None,
               threads: int | None = None, scheduler: str | None = None, progress=True,
               plugins_dir=None) -> Comparison:
    """Run a registered experiment (``zoo.experiments()`` lists them): its variants on the same
    seeds and split, quick by default, the article's recipe with ``full=True``. Returns the
    ``Comparison``; its ``answer`` holds the result in words (``answer.lines``), with each
    difference's interval and test, and ``differences.png`` in its folder draws them."""
    registry = _registry(plugins_dir)
    chosen = registry.experiment(name)
    registry.architecture(chosen.model)  # its model's plugin must be installed: one line if not
    asked = experimentsmod.settings(chosen, seeds, full)
    plan = Plan.of(asked["models"], seeds=asked["seeds"], seed=seed, vary=asked["vary"], set=asked["set"],
                   epochs=asked["epochs"], limit=asked["limit"], validate_on=asked["validate_on"], data_dir=data_dir,
                   test_each_epoch=asked["test_each_epoch"], experiment=name, executor=executor, workers=workers,
                   threads=threads, scheduler=scheduler)
    comparison = _compare(plan, _runs_dir(runs_dir), progress, plugins_dir)
    return _answered(comparison, chosen)


def _answered(comparison: Comparison, chosen) -> Comparison:
    """The experiment's answer on ``comparison``, saved beside its runs (experiment.json and
    differences.png) so a report made later shows it too."""
    from zoo import figures

    comparison.answer = experimentsmod.answer(chosen, comparison)
    if comparison.dir is not None:
        atomic_write_json(comparison.dir / experimentsmod.ANSWER_FILE, comparison.answer.to_dict())
        if any(n.get("paired_differences") for n in comparison.answer.numbers):
            figures.paired_differences(comparison.answer.numbers, comparison.dir / experimentsmod.FIGURE_FILE,
                                       chosen.question)
    return comparison


# -- training -------------------------------------------------------------------------------------------
def train(name: str, *, recipe: str | None = None, epochs: int | None = None, batch_size: int | None = None,
          limit: int | None = None, seed: int = DEFAULT_SEED, validate_on: str = "val", dataset: str = "mnist",
          data_dir=None, runs_dir=None, precision: str = "float32", tensorboard: bool = False,
          progress=True, plugins_dir=None) -> Run:
    """Train ``name`` with its article's recipe (or ``recipe``) into a new folder of ``runs_dir``
    and return the ``Run``: the model, history, run.json, per-image results and figures.

    A Ctrl-C (or a notebook's stop button) raises ``zoo.Interrupted`` whose ``result`` is the
    saved, interrupted run."""
    options = Options(epochs=epochs, batch_size=batch_size, limit=limit, validate_on=validate_on,
                      dataset=dataset, data_dir=data_dir, precision=precision, tensorboard=tensorboard)
    check_seed(seed)
    feedback = Feedback(progress)
    registry = _registry(plugins_dir, feedback)
    arch = registry.architecture(name)
    job = make_jobs([arch], options, seeds=[seed], recipe=recipe)[0]
    chosen = arch.recipe(job.recipe)
    prepared = prepare(registry, options, split_seed=seed)
    announce_data(prepared, options, seed, feedback)
    feedback.info("Recipe", f"{arch.name}/{chosen.name}: {chosen.optimizer_text()}, {chosen.loss_text()}, batch "
                            f"{job.batch_size}, {job.epochs} epoch{'s' * (job.epochs != 1)} "
                            f"(from {chosen.source.short()})")
    run_dir = new_run_dir(_runs_dir(runs_dir), f"{timestamp()}-{arch.name}")
    try:
        with feedback.display([job], failures_shown=False) as on_event:
            record = run_job(job, prepared, run_dir, on_event, registry=registry)
    except Interrupted as stop:
        draw_run_figures(run_dir, stop.record, prepared.arrays, feedback.warn)
        raise Interrupted(f"interrupted after {stop.record.epochs_completed} epoch(s); the partial run is kept in "
                          f"{run_dir} (model.keras holds the weights of the {stop.record.model_weights})",
                          result=Run(stop.record, run_dir)) from None
    except ZooError:
        remove_if_empty(run_dir)
        raise
    run = Run(record, run_dir)
    run.figures = draw_run_figures(run_dir, record, prepared.arrays, feedback.warn)
    return run


def compare(models=None, *, seeds=1, seed: int = DEFAULT_SEED, tag: str | None = None, vary=None, set=None,
            epochs: int | None = None, batch_size: int | None = None, limit: int | None = None, quick: bool = False,
            validate_on: str = "val", dataset: str = "mnist", data_dir=None, precision: str = "float32",
            vary_split: bool = False, tensorboard: bool = False,
            executor: str = "local", workers: int | None = None, threads: int | None = None,
            scheduler: str | None = None, seed_batching: bool = True,
            margin: float = DEFAULT_MARGIN_POINTS, runs_dir=None, progress=True, plugins_dir=None) -> Comparison:
    """Train ``models`` on the same data, split and seeds, and compare them: one row per model
    with mean ± std, a 95% interval and a test against the best. The keywords, by what they are for:

    *What to train.* ``models``: names or fnmatch patterns (None: every model, or those tagged
    ``tag``). ``vary``: change one thing, e.g. ``{"dropout": [0, 0.5]}`` (or ``["dropout=0,0.5"]``,
    as ``--vary`` types it): one row per value, labelled ``baseline-cnn[dropout=0.5]``, the first
    the reference, each other with its difference and a paired test; two knobs make a grid.
    ``set``: knobs fixed for every variant (``zoo.info(name)["knobs"]`` lists them).

    *Seeds.* ``seeds``: how many (counting up from ``seed``) or a list of them.

    *Data and training.* ``epochs``, ``batch_size`` (default: each recipe's), ``quick`` (one epoch
    unless ``epochs`` says otherwise), ``limit`` (training images), ``validate_on``,
    ``dataset``/``data_dir``, ``precision``, ``vary_split`` (each seed draws its own split),
    ``tensorboard``.

    *How it runs.* ``executor="dask"`` runs the jobs on Dask workers (``workers``, ``threads``,
    ``scheduler``); ``seed_batching``: the seeds of a small model train together, as one
    computation (each run.json says how it trained); False: one after another.

    *How it is judged.* ``margin``: in accuracy points, how close our mean must be shown to be
    (TOST) to a published figure for "consistent with the article".

    *Where, and what you see.* ``runs_dir``, ``progress``, ``plugins_dir``.

    A job that fails is a row with its error; a Ctrl-C raises ``zoo.Interrupted`` whose
    ``result`` is the comparison so far (``zoo.resume(result.dir)`` trains the rest). Every
    keyword is checked before anything trains (``zoo.plan.Plan``, which is also plan.json)."""
    plan = Plan.of(_names(models, "models="), seeds=seeds, seed=seed, tag=tag, vary=vary, set=set, epochs=epochs,
                   batch_size=batch_size, limit=limit, quick=quick, validate_on=validate_on, dataset=dataset,
                   data_dir=data_dir, precision=precision, vary_split=vary_split, tensorboard=tensorboard,
                   executor=executor, workers=workers, threads=threads, scheduler=scheduler,
                   seed_batching=seed_batching, margin=margin)
    return _compare(plan, _runs_dir(runs_dir), progress, plugins_dir)


def resume(directory, *, executor: str = "local", workers: int | None = None, threads: int | None = None,
           scheduler: str | None = None, seed_batching: bool = True, margin: float = DEFAULT_MARGIN_POINTS,
           progress=True, plugins_dir=None, **given) -> Comparison:
    """Go on with a comparison that was stopped (Ctrl-C, a crash, a killed process): the runs
    that finished in ``directory`` are kept, the others train into it. Every choice not in
    ``given`` (``models``, ``seeds``, ``epochs``, …, as ``compare`` takes them) comes from the
    folder's plan.json; one given must agree with the runs there. How it runs and the margin
    are this call's."""
    plan = resumed_plan(directory, given, Execution(executor, workers, threads, scheduler, seed_batching),
                        margin_fraction(margin), progress)
    comparison = _compare(plan, None, progress, plugins_dir, resume=Path(directory))
    registry = _registry(plugins_dir)
    if plan.experiment in registry.experiments:  # a stopped experiment, finished: its answer too
        comparison = _answered(comparison, registry.experiments[plan.experiment])
    return comparison


def resumed_plan(directory, given: dict, execution: Execution, margin: float, progress=True) -> Plan:
    """The plan a resumed comparison follows: ``given`` (``compare``'s keywords) over the
    folder's plan.json; says which choices came from the plan."""
    folder = check_resumable(directory)
    if "models" in given:
        given = {**given, "models": _names(given["models"], "models=")}
    saved = Plan.read(folder)
    if saved is None:  # a folder an older zoo made: what to train must be given again
        if not (given.get("quick") or any(k != "quick" for k in given)):
            raise RunFileError(f"{folder} has no {PLAN_FILE} (an older zoo made it): give that comparison's "
                               f"command again, with --resume {folder}")
        saved = Plan()
    plan, taken = saved.resumed(given, execution, margin)
    if taken:
        Feedback(progress).info(f"From {folder / PLAN_FILE}", plan.flags(taken))
    return plan


def _compare(plan: Plan, runs_dir, progress, plugins_dir, resume: Path | None = None) -> Comparison:
    feedback = Feedback(progress)
    registry = _registry(plugins_dir, feedback)
    ran = run_comparison(plan, runs_dir=runs_dir, resume=resume, plugins_dir=plugins_dir, registry=registry,
                         feedback=feedback)
    rows, notes = comparison_rows(ran.outcomes.records, ran.outcomes.failed, plan.margin)
    for note in notes:
        feedback.warn(note)
    draw_comparison_figures(rows, ran.compare_dir, feedback.warn)
    comparison = Comparison(ran.outcomes.records, rows, notes, ran.compare_dir, ran.title, ran.outcomes.interrupted)
    if ran.outcomes.interrupted:
        raise Interrupted(f"interrupted: {len(ran.outcomes.completed)} of {len(ran.jobs)} runs finished; their "
                          f"results are kept in {ran.compare_dir} (zoo compare --resume {ran.compare_dir}, or "
                          f"zoo.resume({str(ran.compare_dir)!r}), trains the rest)", result=comparison)
    return comparison


def load(dirs, *, models=None, tag: str | None = None, margin: float = DEFAULT_MARGIN_POINTS, progress=True,
         plugins_dir=None, dataset: str | None = None, data_dir=None, runs_dir="runs") -> Comparison:
    """A ``Comparison`` of saved runs, trained before: run directories, or folders holding them
    (a comparison's folder). ``models``: names or patterns to keep; ``tag``: only models with it.
    Nothing is trained. One unreadable run in a folder is skipped with a warning.

    ``dataset``: re-test every model on another dataset first (e.g. ``"folder:class-3b"``, the
    digits a class drew), with the same statistics; each result is written as a run folder
    (no model) in ``runs_dir/retest-…`` (``zoo.evaluate`` says what that means)."""
    feedback = Feedback(progress)
    dirs = _run_folders(_paths(dirs, "dirs="))
    patterns = _names(models, "models=")
    stray = [p for p in patterns if Path(p).exists()]
    if stray:
        raise OptionError(f"{stray[0]} looks like a run directory: give --from-runs once per directory "
                          f"(--from-runs A --from-runs B; in Python, zoo.load([A, B]))")
    tagged = {a.name for a in select(_registry(plugins_dir).architectures, (), tag)} if tag else None
    records = rowsmod.pick_saved(rowsmod.records_from_dirs(dirs, warn=feedback.warn), patterns, tagged)
    if not records:
        raise RunFileError(f"no saved run is of a model tagged {tag!r}" if tag else "no saved run matches")
    folder = Path(dirs[0]) if len(dirs) == 1 and not (Path(dirs[0]) / "run.json").is_file() else None
    title = f"{len(records)} saved runs"
    if dataset is not None:
        records, folder, title = _retest(records, dataset, data_dir, runs_dir, plugins_dir, feedback)
    for key, values in rowsmod.unlike([rowsmod.row_from_record(r) for r in records]).items():
        feedback.warn(f"these runs differ in {key} ({', '.join(values)}): not a like-for-like comparison")
    rows, notes = rowsmod.comparison_rows(records, margin=margin_fraction(margin))
    for note in notes:
        feedback.warn(note)
    if dataset is not None:
        draw_comparison_figures(rows, folder, feedback.warn)
    comparison = Comparison(records, rows, notes, folder, title)
    if folder is not None and dataset is None:
        comparison.answer = _saved_experiment_answer(comparison, plugins_dir, feedback.warn)
    return comparison


def _saved_experiment_answer(comparison: Comparison, plugins_dir, warn):
    """The answer of the experiment a comparison's folder holds (its plan.json says which),
    computed from these runs as the experiment computed it; None for any other folder."""
    try:
        plan = Plan.read(comparison.dir)
    except ZooError as exc:
        warn(str(exc))
        return None
    if plan is None or plan.experiment is None:
        return None
    registry = _registry(plugins_dir)
    if plan.experiment not in registry.experiments:
        warn(f"these runs are the experiment {plan.experiment!r}, which no installed plugin registers: "
             f"its answer is left out")
        return None
    return experimentsmod.answer(registry.experiments[plan.experiment], comparison)


def _retest(records, dataset, data_dir, runs_dir, plugins_dir, feedback):
    chosen = _registry(plugins_dir).dataset(dataset)
    folder = new_run_dir(Path(runs_dir), f"retest-{timestamp()}")
    feedback.info(None, f"Testing {len(records)} model(s) on {chosen.name}")
    done = retest(records, chosen, folder, data_dir, warn=feedback.warn)
    if not done:
        remove_if_empty(folder)
        raise RunFileError(f"no saved run could be re-tested on {chosen.name}")
    tested = done[0].tested_on
    trained_on = ", ".join(sorted({d.tested_on["trained_on"] for d in done}))
    feedback.info("Re-tested", f"{len(done)} run(s) on all {tested['images']:,} images of {chosen.name} "
                               f"(trained on {trained_on}; none seen in training); each {tested['preprocessing']}; "
                               f"results in {folder}")
    if tested["skipped"]:
        feedback.warn(f"{len(tested['skipped'])} image(s) left out: {', '.join(tested['skipped'][:5])}")
    return done, folder, f"{len(done)} saved runs re-tested on {chosen.name}"


# -- using a trained model -----------------------------------------------------------------------------
def _open(run: Run, plugins_dir=None):
    registry = _registry(plugins_dir)  # plugins register their custom layers, which safe loading must know
    record, model = open_run(run.dir)
    return registry, record, model


def evaluate(run, *, dataset: str | None = None, data_dir=None, plugins_dir=None) -> dict:
    """Test a saved run's model again: accuracy, loss, per-class accuracy and the confusion
    matrix, beside what was recorded at training time.

    ``dataset``: another one to test it on, e.g. ``"folder:class-3b"`` (digits a class drew)
    or ``"digits"``. Then every image of it is the test set (none was seen in training),
    each preprocessed as ``predict`` preprocesses a photo, classes matched by name; the
    answer says so (``tested_on``)."""
    run = _run_of(run)
    registry, record, model = _open(run, plugins_dir)
    chosen = registry.dataset(dataset or record.dataset.name)
    arrays = datamod.load(chosen, data_dir)
    published = record.published.test_accuracy if record.published else None
    answer = {"run_dir": str(run.dir), "model": record.model, "dataset": chosen.name}
    if chosen.name != record.dataset.name:
        test = foreign_test_set(arrays, record)
        metrics = evaluate_on(model, record, test)
        published = None  # the article's number is for its own dataset's test set
        answer["tested_on"] = test.describe(record.dataset.name)
        images = len(test.y)
    else:
        if arrays.dataset.num_classes != len(record.class_names):
            raise RunFileError(f"{run.dir}: run.json names {len(record.class_names)} classes, "
                               f"{record.dataset.name} has {arrays.dataset.num_classes}")
        metrics = evaluate_model(model, arrays, record.input_kind, record.output)
        images = len(arrays.y_test)
    for key in ("predicted", "p_true"):
        metrics.pop(key)
    return {**answer, **metrics, "test_images": images, "recorded_test_accuracy": record.test_accuracy,
            "published_accuracy": published}


def predict(run, images, *, save_preprocessed=None, plugins_dir=None) -> list[dict]:
    """Read handwritten digits: each image (a file's path, a PIL image or a 2-D array of gray
    levels, either polarity) is cropped, fitted into 20×20 and centred in 28×28 by its centre of
    mass, as MNIST was made, then read. One answer per image: its digit, label, probabilities and
    top 3, or its ``error`` (one bad image does not lose the others' answers)."""
    run = _run_of(run)
    if isinstance(images, (str, os.PathLike)) or getattr(images, "ndim", 0) == 2 or hasattr(images, "convert"):
        images = [images]
    if not isinstance(images, (list, tuple)) and not hasattr(images, "__array__"):
        raise OptionError(f"images= takes a file's path, a PIL image, a 2-D array or a list of them, not "
                          f"{_kind(images)}")
    _, record, model = _open(run, plugins_dir)
    return list(read_digits(model, record, list(images), save_preprocessed))


def explain(run, image, *, out=None, data_dir=None, plugins_dir=None):
    """What a model sees in one digit: its top 3, every convolution's feature maps and a saliency map.

    ``image``: a file's path, a PIL image, a 2-D array, or an int (that test-set image). Returns
    a ``zoo.explaining.Explanation``; ``.figures()`` draws it (matplotlib). With ``out``, the
    PNGs are also written into that folder (``.files`` lists them); ``out=True``: into
    ``explain-NAME`` in the run's folder (NAME: the image file's stem, or testN for test image
    N), or in the working directory for a pretrained model, which is installed read-only."""
    run = _run_of(run)
    if image is None or isinstance(image, bool) or not (isinstance(image, (int, str, os.PathLike))
                                                        or hasattr(image, "convert") or hasattr(image, "__array__")):
        raise OptionError(f"image= takes a file's path, a PIL image, a 2-D array or a test image's number, not "
                          f"{_kind(image)}")
    registry, record, model = _open(run, plugins_dir)
    truth = None
    if _is_test_index(image):
        arrays = datamod.load(registry.dataset(record.dataset.name), data_dir)
        index = int(image)
        if not 0 <= index < len(arrays.x_test):
            raise OptionError(f"test image {index} does not exist: {record.dataset.name} has "
                              f"{len(arrays.x_test):,} (0 to {len(arrays.x_test) - 1:,})")
        digit, truth, name = arrays.x_test[index], int(arrays.y_test[index]), f"test{index}"
        label = f"test image {index}"
    else:
        label = image_name(image, 0)
        digit, name = preprocess(image, label, field_of(record)), Path(label).stem.replace(" ", "-")
    result = explain_digit(model, record, digit)
    result.image, result.name, result.digit = label, name, digit
    result.model = record.model
    result.true_label = None if truth is None else record.class_names[truth]
    if out is True:
        out = run.dir / f"explain-{name}"
        if pretrained_models.is_shipped_folder(run.dir):
            out = Path(f"explain-{run.dir.name}-{name}")
    if out is not None and out is not False:
        result.files = result.write(out)
    return result


def _is_test_index(image) -> bool:
    """An int, or digits that name no file: a test-set image's number, as ``explain`` takes it."""
    return isinstance(image, int) or (isinstance(image, str) and image.isdigit() and not Path(image).exists())


def report(comparison_or_dirs, out=None, *, title: str | None = None, digit: int = 0, data_dir=None,
           margin: float | None = None, in_browser: bool = False, progress=True, plugins_dir=None):
    """Write a static web site of a comparison (a ``Comparison``, or saved run folders): the
    table with its statistics, cost and learning-curve figures, and a page per model with its
    card, recipe, mistakes, filters, feature maps and saliency. Opens from disk, offline.
    A ``Comparison`` is shown as it was computed (its margin, its failed jobs); saved runs get
    their statistics with ``margin`` (accuracy points, default 0.2). Returns where its pages are
    (``.index``, ``.pages``, ``.notes``). ``in_browser``: add a "draw a digit" page whose models run
    in the browser (ONNX Runtime Web, shipped with the zoo; each model exported to ONNX and checked
    against Keras first; needs ``pip install 'mnist-zoo[export]'``)."""
    feedback = Feedback(progress)
    if isinstance(comparison_or_dirs, Comparison):
        if margin is not None:
            raise OptionError("margin applies to saved runs: a Comparison is reported with the margin it was "
                              "computed with (zoo.load(..., margin=) computes it again)")
        comparison = comparison_or_dirs
    else:  # saved runs: the Comparison zoo.load makes of them, so the report shows what it computed
        comparison = load(_paths(comparison_or_dirs, "comparison_or_dirs= (or a Comparison)"),
                          margin=DEFAULT_MARGIN_POINTS if margin is None else margin, progress=progress,
                          plugins_dir=plugins_dir)
    if out is None:
        out = comparison.dir / "report" if comparison.dir is not None else Path("report")
    if flag(in_browser, "in_browser"):
        exporting.needs_runtime("onnxruntime", exporting.FORMATS["onnx"])
    return site.write(comparison.records, Path(out), title=title, digit=digit, data_dir=data_dir, warn=feedback.warn,
                      plugins_dir=plugins_dir, in_browser=in_browser, **comparison.shown())


def export(run, format: str = "onnx", out=None, *, dataset: str | None = None, data_dir=None,
           plugins_dir=None) -> dict:
    """Write ``run``'s model (a ``Run``, a run folder or a pretrained name) as ``format`` —
    ``"onnx"``, ``"litert"`` or ``"saved_model"`` — to ``out`` (default ``NAME.onnx`` etc. here),
    with its preprocessing in ``NAME.json``; then run the file with its own runtime on every test
    image and compare with Keras (``["parity"]``: top-1 agreement, largest probability difference).
    ``dataset``: check on another dataset too, e.g. ``"folder:class-3b"`` (the class's drawings).
    Below 99.9% agreement it raises ``zoo.exporting.ExportError`` naming the images that differ.
    Needs ``pip install 'mnist-zoo[export]'`` for ONNX and LiteRT."""
    chosen = exporting.check_format(format)
    if chosen.name != "saved_model":
        exporting.needs_runtime(chosen.runtime, chosen)  # a missing runtime is one line before anything loads
    named = isinstance(run, str) and pretrained_models.is_pretrained(run)
    run = _run_of(run)
    registry = _registry(plugins_dir)  # custom layers registered before the model loads
    record = run.record
    arrays = datamod.load(registry.dataset(record.dataset.name), data_dir)
    foreign = None
    if dataset is not None:
        foreign = foreign_test_set(datamod.load(registry.dataset(dataset), data_dir), record)
    name = record.model if named or pretrained_models.is_shipped_folder(run.dir) else run.dir.name
    return exporting.export(run.dir, chosen.name, out, arrays=arrays, foreign=foreign, name=name)


def _run_folders(dirs) -> list:
    """Folders of runs as given, each pretrained model's name (``"speedrun"``, or ``"pretrained"``
    for all of them) turned into its checked folder."""
    out = []
    for d in dirs:
        if isinstance(d, (str, os.PathLike)) and not Path(d).exists() and os.fspath(d) == "pretrained":
            out += [pretrained_models.folder(n) for n in pretrained_models.names()]
        elif isinstance(d, (str, os.PathLike)) and pretrained_models.is_pretrained(os.fspath(d)):
            out.append(pretrained_models.folder(os.fspath(d)))
        else:
            out.append(d)
    return out


def serve(runs=(), *, host: str = "127.0.0.1", port: int = 8000, collect_into=None, plugins_dir=None,
          progress=True) -> None:
    """The classroom page (``zoo.classroom``): draw a digit and every served model answers
    side by side, with the preprocessing shown step by step; with ``collect_into``, drawings
    are saved as a folder dataset (``DIR/<label>/*.png``). ``runs``: a comparison's folder or
    run folders (default: the newest comparison in ./runs). Serves until Ctrl-C; needs
    ``pip install 'mnist-zoo[serve]'``. Binds to this machine only unless ``host`` says otherwise."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise OptionError("zoo serve needs Starlette and uvicorn: pip install 'mnist-zoo[serve]' "
                          "(or pip install -e '.[serve]' in a checkout)") from None

    if not 0 < int(port) < 65536:
        raise OptionError(": give a port from 1 to 65535", parameter="port", value=port)
    # nothing given: the pretrained models, no training needed
    runs = _run_folders(_paths(runs, "runs=") if runs else ["pretrained"])
    feedback = Feedback(progress)
    classroom.serve(runs, host=host, port=int(port), collect_into=collect_into, plugins_dir=plugins_dir,
                    warn=feedback.warn, info=lambda text: feedback.info(None, text))
