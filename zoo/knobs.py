"""Change one thing: the knobs a model has, and the variants ``--vary`` and ``--set`` make.

Every model has the knobs of its recipe (``recipe``, ``learning_rate``, ``batch_size``,
``epochs``, ``schedule``); an architecture adds its own (``zoo.Knob``: dropout, filters, a
BatchNorm setting), which its ``build`` takes as keyword arguments. A **variant** is one
setting of some knobs; ``--vary dropout=0,0.5`` makes one per value (the first is the
reference), two ``--vary`` make a grid, ``--set`` fixes a knob for all of them. Variants of
one model train on the same seeds, split and batch order, so their difference gets a
paired test. Nothing here imports Keras.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from zoo.errors import OptionError
from zoo.registry import Architecture, Knob, Recipe
from zoo.types import shown

RECIPE_KNOBS = ("recipe", "learning_rate", "batch_size", "epochs", "schedule", "label_smoothing")
MAX_VARIANTS = 64


def recipe_knobs(arch: Architecture, recipe: Recipe | None = None) -> list[Knob]:
    """The knobs every model has: its recipe's, with that recipe's values as defaults."""
    recipe = recipe or arch.recipes[0]
    rate = recipe.optimizer.get("learning_rate")
    knobs = [
        Knob("recipe", recipe.name, "which of the model's recipes trains it", tuple(r.name for r in arch.recipes)),
        Knob("learning_rate", float(rate) if isinstance(rate, (int, float)) else 0.001,
             "the optimizer's learning rate" + ("" if isinstance(rate, (int, float)) else
                                                " (the recipe leaves Keras's default)"), low=1e-9, high=100.0),
        Knob("batch_size", recipe.batch_size, "images per training step", low=1, high=100_000),
        Knob("epochs", recipe.epochs, "passes over the training images", low=1, high=10_000),
    ]
    if recipe.schedule:
        knobs.append(Knob("schedule", "recipe", "the recipe's learning-rate schedule, or none (a constant rate)",
                          ("recipe", "none")))
    if recipe.label_smoothing:
        knobs.append(Knob("label_smoothing", recipe.label_smoothing,
                          "how far the loss's targets move from 1 and 0 towards 1/classes (0: the labels as they are)",
                          low=0.0, high=0.99))
    return knobs


def all_knobs(arch: Architecture, recipe: Recipe | None = None) -> list[Knob]:
    """An architecture's own knobs, then its recipe's."""
    own = {k.name for k in arch.knobs}
    return [*arch.knobs, *(k for k in recipe_knobs(arch, recipe) if k.name not in own)]


def _knob(arch: Architecture, name: str) -> Knob:
    knobs = {k.name: k for k in all_knobs(arch)}
    if name not in knobs:
        raise OptionError(f"{arch.name} has no knob {name!r}; its knobs: {', '.join(knobs)} (zoo info {arch.name})")
    return knobs[name]


def _split(text: str, flag: str) -> tuple[str, str]:
    if not isinstance(text, str) or "=" not in text:
        raise OptionError(f"{flag} takes KNOB=VALUE{',VALUE…' if flag == '--vary' else ''}, not {text!r}")
    name, _, values = text.partition("=")
    return name.strip(), values


def parse_vary(arch: Architecture, vary) -> list[tuple[str, list]]:
    """``["dropout=0,0.5"]`` (or ``{"dropout": [0, 0.5]}``) → ``[("dropout", [0.0, 0.5])]``, each value
    checked against the knob; the first value of each is the reference."""
    items = vary.items() if isinstance(vary, dict) else [_split(v, "--vary") for v in vary or ()]
    parsed, count = [], 1
    for name, values in items:
        knob = _knob(arch, name)
        if not isinstance(values, (str, list, tuple)):
            raise OptionError(f"{name}: give its values as a list (or 'a,b' text), not {type(values).__name__}", parameter="vary")
        texts = [v for v in values.split(",") if v.strip()] if isinstance(values, str) else list(values)
        if len(texts) < 2:
            raise OptionError(f"{name}: give at least two values, the first being the reference", parameter="vary")
        count *= len(texts)  # the grid's size, known before anything is parsed or built
        if count > MAX_VARIANTS:
            raise OptionError(f"makes {'at least ' * (len(parsed) + 1 < len(items))}{count:,} variants; "
                              f"give at most {MAX_VARIANTS}", parameter="vary")
        chosen = [knob.parse(v) for v in texts]
        if len(set(map(repr, chosen))) != len(chosen):
            raise OptionError(f"{name}: give each value once", parameter="vary")
        if name in dict(parsed):
            raise OptionError(f"{name} is given twice", parameter="vary")
        parsed.append((name, chosen))
    return parsed


def parse_set(arch: Architecture, settings) -> dict:
    """``["dropout=0.3"]`` (or ``{"dropout": 0.3}``) → ``{"dropout": 0.3}``, checked."""
    items = settings.items() if isinstance(settings, dict) else [_split(v, "--set") for v in settings or ()]
    parsed = {}
    for name, value in items:
        parsed[name] = _knob(arch, name).parse(value)
    return parsed


def variants(arch: Architecture, vary=None, settings=None) -> list[dict]:
    """Every combination of the varied values (the reference first), each with the fixed settings."""
    varied, fixed = parse_vary(arch, vary), parse_set(arch, settings)
    both = set(dict(varied)) & set(fixed)
    if both:
        raise OptionError(f"{', '.join(sorted(both))}: given both to vary (vary those) and to set (fix these)",
                          parameter="vary")
    if not varied:
        return [fixed] if fixed else [{}]
    grid = [dict(zip([n for n, _ in varied], combo)) for combo in itertools.product(*(v for _, v in varied))]
    if len(grid) > MAX_VARIANTS:
        raise OptionError(f"makes {len(grid)} variants; give at most {MAX_VARIANTS}", parameter="vary")
    return [{**fixed, **combo} for combo in grid]


def knob_texts(given, flag: str) -> list[str]:
    """``--vary``/``--set`` as typed (``["dropout=0,0.5"]``), from the CLI's list or the API's
    dict, for plan.json: resuming makes the same variants again."""
    if not given:
        return []
    if isinstance(given, dict):
        return [f"{k}={','.join(map(shown, v)) if isinstance(v, (list, tuple)) else shown(v)}"
                for k, v in given.items()]
    if isinstance(given, str):
        return [given]
    return [str(v) for v in given]


@dataclass(frozen=True)
class Applied:
    """What a variant changes: build()'s keyword arguments, and the recipe, epochs and batch size."""

    build_kwargs: dict
    recipe: Recipe
    epochs: int | None
    batch_size: int | None


def apply(arch: Architecture, settings: dict) -> Applied:
    """A variant's settings turned into what training uses."""
    settings = dict(settings or {})
    recipe = arch.recipe(settings.get("recipe"))
    own = {k.name for k in arch.knobs}
    build_kwargs = {k.name: settings.get(k.name, k.default) for k in arch.knobs}
    if "learning_rate" in settings and "learning_rate" not in own:
        recipe = replace(recipe, optimizer={**recipe.optimizer, "learning_rate": settings["learning_rate"]})
    if settings.get("schedule") == "none" and "schedule" not in own:
        recipe = replace(recipe, schedule=None)
    if "label_smoothing" in settings and "label_smoothing" not in own:
        recipe = replace(recipe, label_smoothing=float(settings["label_smoothing"]))
    return Applied(build_kwargs, recipe, settings.get("epochs") if "epochs" not in own else None,
                   settings.get("batch_size") if "batch_size" not in own else None)
