"""Runs that learned nothing, flagged in words with their likely cause.

A table row of 11.38% says nothing by itself: it could be a bug, a learning rate 1000×
too small, or a BatchNorm network whose moving statistics have not caught up with its
weights. Each warning starts with a short kind ("near chance", "inference far below
training") so a comparison can count it over seeds, then says what was measured and
what to try. They are written into run.json (``warnings``), the rows, ``--json`` and
the report.
"""

from __future__ import annotations

CHANCE_MARGIN = 0.05  # a test accuracy this close to 1/classes learned next to nothing
INFERENCE_GAP = 0.25  # training accuracy this far above the inference-mode accuracy
SETTLED_MOMENTUM = 0.9  # BatchNorm momentum that settles within a few dozen steps


def batchnorm_layers(model) -> list:
    """The BatchNormalization layers of ``model``, nested ones too."""
    from zoo.anatomy import layers

    return [layer for layer in layers(model) if type(layer).__name__ == "BatchNormalization"]


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
    return (f"BatchNorm moving statistics have not settled after {steps} steps (momentum {momentum:g} keeps "
            f"{left:.0%} of their starting values): train longer, or use momentum={SETTLED_MOMENTUM:g}")


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
