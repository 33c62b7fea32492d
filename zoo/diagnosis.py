"""Runs that learned nothing, flagged in words with their likely cause.

A table row of 11.38% says nothing by itself: it could be a bug, a learning rate 1000×
too small, or a BatchNorm network whose moving statistics have not caught up with its
weights. Each warning starts with a short kind ("near chance", "inference far below
training") so a comparison can count it over seeds, then says what was measured and
what to try. They are written into run.json (``warnings``), the rows, ``--json`` and
the report.
"""

from __future__ import annotations

import math

from zoo.anatomy import layers

CHANCE_MARGIN = 0.05  # a test accuracy this close to 1/classes learned next to nothing
# A run with fewer than this share of the steps its recipe was designed for is flagged: its
# accuracy says how far this model gets in a short run, not what the model reaches.
UNDER_TRAINED_SHARE = 1 / 3
INFERENCE_GAP = 0.25  # training accuracy this far above the inference-mode accuracy
SETTLED_MOMENTUM = 0.9  # BatchNorm momentum that settles within a few dozen steps


def batchnorm_layers(model) -> list:
    """The BatchNormalization layers of ``model``, nested ones too."""
    # Keras's layer, and a plugin's computing the same (speedrun's FusedBatchNormalization)
    return [layer for layer in layers(model) if type(layer).__name__.endswith("BatchNormalization")]


def batchnorm_momenta(model) -> list[float]:
    """The momentum of each BatchNormalization layer of ``model``."""
    return [float(layer.momentum) for layer in batchnorm_layers(model) if hasattr(layer, "momentum")]


def _batchnorm_cause(steps: int, momenta: list[float]) -> str:
    momentum = max(momenta)
    left = momentum ** steps if steps else 1.0
    # The moving variance starts at 1 and real activations' can be 0.003 (measured in a residual
    # block): only below 1e-4 of the start is the start surely forgotten.
    if left < 1e-4:  # settled long ago: the layers themselves normalise the wrong way
        return (f"its BatchNorm layers act differently in inference mode although {steps} steps settled their "
                f"statistics: check each normalises per channel (axis=-1)")
    # never recommend the momentum already in use: then only more steps help
    remedy = (f"train longer, or use momentum={SETTLED_MOMENTUM:g}" if momentum > SETTLED_MOMENTUM else
              f"train longer: about {_steps_to_forget(momentum):,} steps at momentum {momentum:g} forget the start")
    return (f"BatchNorm moving statistics have not settled after {steps} steps (momentum {momentum:g} keeps "
            f"{_share(left)} of their starting values): {remedy}")


def _steps_to_forget(momentum: float) -> int:
    """Steps after which ``momentum``'s moving averages keep under 1e-4 of their start."""
    return math.ceil(math.log(1e-4) / math.log(momentum)) if 0 < momentum < 1 else 0


def _share(left: float) -> str:
    return f"{left:.0%}" if left >= 0.1 else f"{left:.1%}" if left >= 0.001 else "under 0.1%"


def budget(steps: int, designed_steps: int, epochs: int, images: int, designed_epochs: int,
           designed_images: int) -> dict:
    """How much of its recipe's designed training a run had: ``steps`` against ``designed_steps``
    (the registered recipe's epochs and batch size on the dataset's whole training split)."""
    share = steps / designed_steps if designed_steps else 1.0
    return {"steps": steps, "designed_steps": designed_steps, "share": round(share, 4),
            "epochs": epochs, "images": images, "designed_epochs": designed_epochs,
            "designed_images": designed_images, "under_trained": share < UNDER_TRAINED_SHARE}


def under_trained_warning(model: str, spent: dict, schedule: dict | None, momenta: list[float]) -> str | None:
    """Why a run far shorter than its recipe's design is weak, in words (None when it is not)."""
    if not spent.get("under_trained"):
        return None
    steps, designed = spent["steps"], spent["designed_steps"]
    what = (f"{spent['epochs']} epoch{'s' * (spent['epochs'] != 1)} of {spent['images']:,} images against "
            f"{spent['designed_epochs']} of {spent['designed_images']:,}")
    why = []
    if schedule:  # a schedule in fractions of the run is squeezed into the short one
        why.append(f"its learning-rate schedule (warm-up, then cosine) ran in {steps:,} steps")
    if momenta:
        left = max(momenta) ** steps
        if left >= 1e-3:  # a thousandth of the start or more still weighs on small real variances
            why.append(f"BatchNorm's moving statistics (momentum {max(momenta):g}) still hold {_share(left)} of "
                       f"their starting values, and the test set is read with them")
    because = f"; {' and '.join(why)}" if why else ""
    return (f"under-trained: {steps:,} of the {designed:,} steps its recipe was designed for "
            f"({_share(spent['share'])}: {what}){because}. This shows a short run, not what {model} reaches "
            f"with its recipe")


def run_warnings(test_accuracy: float | None, num_classes: int, train_accuracy: float | None,
                 steps: int, momenta: list[float]) -> list[str]:
    """What is wrong with a finished run, in words (empty when nothing is)."""
    if test_accuracy is None or num_classes < 2:
        return []
    chance = 1 / num_classes
    warnings = []
    gap = train_accuracy is not None and train_accuracy - test_accuracy >= INFERENCE_GAP
    if test_accuracy <= chance + CHANCE_MARGIN:
        if gap and momenta:
            cause = _batchnorm_cause(steps, momenta)
        elif gap:
            cause = "it fits its training images but not new ones: more data, or regularisation"
        else:
            cause = ("it did not learn on its training images either: check the learning rate (Keras 3's Adadelta "
                     "default is 1000× smaller than Keras 2's), the loss and the labels, or train longer")
        warnings.append(f"near chance: test accuracy {test_accuracy:.1%} is within {CHANCE_MARGIN * 100:.0f} "
                        f"points of chance ({chance:.0%}); {cause}")
    elif gap:  # one warning per run: near chance already names the gap's cause
        cause = (_batchnorm_cause(steps, momenta) if momenta else
                 "the model fits its training images but not new ones (overfitting: more data, or regularisation)")
        warnings.append(f"inference far below training: {test_accuracy:.1%} on the test set against "
                        f"{train_accuracy:.1%} in training; {cause}")
    return warnings


def kind(warning: str) -> str:
    """A warning's kind: its words before the first colon."""
    return warning.split(":", 1)[0]


def row_warnings(records) -> list[str]:
    """A comparison row's warnings: each kind once, from its first run, with how many of the
    row's seeds had it."""
    seen: dict[str, tuple[str, int]] = {}
    for record in records:
        for warning in getattr(record, "warnings", None) or []:
            text, count = seen.get(kind(warning), (warning, 0))
            seen[kind(warning)] = (text, count + 1)
    n = len(records)
    return [text if n == 1 else f"{text} (in {count} of {n} seeds)" for text, count in seen.values()]
