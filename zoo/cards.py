"""Model cards: everything the zoo knows about an architecture, as plain data.

``card()`` is what ``zoo info --json`` prints and what ``zoo info`` renders; the
registry's metadata plus the numbers computed from the built model.
"""

from __future__ import annotations

import dataclasses

from zoo.knobs import all_knobs
from zoo.registry import Architecture, Recipe


def recipe_dict(recipe: Recipe) -> dict:
    data = dataclasses.asdict(recipe)
    data["labels"] = recipe.labels
    data["optimizer_text"] = recipe.optimizer_text()
    data["loss_text"] = recipe.loss_text()
    data["notes"] = list(recipe.notes)
    return data


def published_accuracy(arch: Architecture) -> float | None:
    """The best accuracy any of the architecture's articles reports."""
    results = [r.published.test_accuracy for r in arch.recipes if r.published]
    return max(results) if results else None


def summary_row(arch: Architecture, stats) -> dict:
    """One line of ``zoo list --json``."""
    return {
        "name": arch.name,
        "title": arch.title,
        "params": stats.params,
        "macs": stats.macs,
        "input_kind": arch.input_kind,
        "tags": list(arch.tags),
        "source": arch.source.short(),
        "article_file": arch.source.article_file,
        "site": arch.source.site,
        "published_accuracy": published_accuracy(arch),
        "recipes": [r.name for r in arch.recipes],
        "plugin": arch.plugin,
    }


def card(arch: Architecture, stats) -> dict:
    """The whole model card."""
    from zoo.data import describe_preparation

    return {
        **summary_row(arch, stats),
        "summary": arch.summary,
        "teaches": arch.teaches,
        "source": dataclasses.asdict(arch.source),
        "output": arch.output,
        "test_time_views": stats.test_time_views,
        "trainable_params": stats.trainable,
        "non_trainable_params": stats.non_trainable,
        "input_shape": list(stats.input_shape),
        "output_shape": list(stats.output_shape),
        "layers": [
            {
                "name": row.name,
                "type": row.kind,
                "output_shape": list(row.output_shape),
                "params": row.params,
                "arithmetic": row.arithmetic,
                "macs": row.macs,
            }
            for row in stats.layers
        ],
        "recipes": [recipe_dict(r) for r in arch.recipes],
        "data_preparation": {r.name: describe_preparation(arch, r) for r in arch.recipes},
        "notes": list(arch.notes),
        "pitfalls": list(arch.pitfalls),
        "knobs": knob_dicts(arch),
    }


def knob_dicts(arch: Architecture) -> list[dict]:
    """The knobs `zoo compare --vary` can change: the architecture's own, then its recipe's."""
    return [{"name": k.name, "default": k.default, "description": k.description, "values": list(k.values),
             "kind": "model" if k in arch.knobs else "recipe"} for k in all_knobs(arch)]
