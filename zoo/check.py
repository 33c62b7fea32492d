"""The plugin contract: what every architecture must do to take part in the zoo.

``zoo check NAME`` runs it from the command line; the ``zoo_check`` pytest fixture
(shipped with mnist-zoo through a ``pytest11`` entry point) runs it in a plugin's own
tests. Each check is one readable line; a failing check never stops the others.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo import data as datamod
from zoo.anatomy import build_model
from zoo.diagnosis import SETTLED_MOMENTUM, batchnorm_layers, batchnorm_momenta
from zoo.errors import ZooError
from zoo.keras_glue import build_loss
from zoo.registry import select

OVERFIT_IMAGES = 64
OVERFIT_TARGET = 0.95
OVERFIT_MAX_STEPS = 300
INFERENCE_GAP = 0.5  # training-mode accuracy this far above inference mode's is warned about


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # passed, but says something the plugin's author must read


@dataclass
class Report:
    model: str
    results: list[CheckResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"model": self.model, "ok": self.ok, "checks": [dataclasses.asdict(c) for c in self.results]}

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def add(self, name, ok, detail="", warning=False):
        self.results.append(CheckResult(name, bool(ok), detail, bool(warning)))
        return ok

    def warnings(self) -> list[str]:
        return [f"{self.model}: {r.name}: {r.detail}" for r in self.results if r.warning]

    def failures(self) -> list[str]:
        return [f"{self.model}: {r.name}: {r.detail}" for r in self.results if not r.ok]


def _metadata_problems(arch) -> list[str]:
    problems = []
    for attr in ("name", "title", "summary", "teaches"):
        if not str(getattr(arch, attr, "") or "").strip():
            problems.append(f"{attr} is empty")
    if not arch.source.title.strip():
        problems.append("source.title is empty")
    for recipe in arch.recipes:
        if recipe.batch_size < 1 or recipe.epochs < 1:
            problems.append(f"recipe {recipe.name!r}: batch_size and epochs must be at least 1")
        if not recipe.source.title.strip():
            problems.append(f"recipe {recipe.name!r}: source.title is empty")
    names = [r.name for r in arch.recipes]
    if len(set(names)) != len(names):
        problems.append("recipe names repeat")
    return problems


def check(arch, arrays) -> Report:
    """Run every check on ``arch`` with images from ``arrays`` (a loaded dataset)."""
    report = Report(arch.name)
    problems = _metadata_problems(arch)
    report.add("metadata", not problems, "; ".join(problems) or "name, title, summary, teaches, source, recipes")

    dataset = arrays.dataset
    try:
        model = build_model(arch, dataset.image_shape, dataset.num_classes)
    except ZooError as exc:
        report.add("build", False, str(exc).removeprefix(f"{arch.name}: "))
        return report
    report.add("build", True, f"keras.Model for input {arch.input_shape(dataset.image_shape)}")

    shape, want = tuple(model.outputs[0].shape), (None, dataset.num_classes)
    if len(model.outputs) != 1:
        report.add("output shape", False, f"{len(model.outputs)} outputs, expected one {want} tensor")
        return report
    if not report.add("output shape", shape == want, f"{shape}" + ("" if shape == want else f", expected {want}")):
        return report

    x = datamod.prepare_x(arrays.x_train[:OVERFIT_IMAGES], arch.input_kind)
    y = arrays.y_train[:OVERFIT_IMAGES].astype("int64")
    out = np.asarray(model(x[:8], training=False))
    if arch.output == "probabilities":
        sums_to_one = np.all(out >= 0) and np.allclose(out.sum(axis=1), 1, atol=1e-3)
        report.add("probabilities", sums_to_one,
                   "outputs are non-negative and sum to 1" if sums_to_one else
                   "outputs are not probabilities: end with softmax or declare output='logits'")
    else:
        report.add("logits", np.all(np.isfinite(out)), "declared logits; the zoo applies softmax")

    from_logits = arch.output == "logits"
    compiled = []
    for recipe in arch.recipes:
        try:
            loss = build_loss(recipe.loss, from_logits, recipe.label_smoothing)
            model_r = build_model(arch, dataset.image_shape, dataset.num_classes)
            model_r.compile(optimizer=recipe.build_optimizer(OVERFIT_MAX_STEPS), loss=loss, metrics=["accuracy"])
            compiled.append((recipe, model_r))
        except Exception as exc:  # noqa: BLE001
            report.add(f"recipe {recipe.name} compiles", False, f"{type(exc).__name__}: {exc}")
    if compiled:
        report.add("recipes compile", len(compiled) == len(arch.recipes), ", ".join(r.name for r, _ in compiled))
        recipe, model_r = compiled[0]
        _overfit(report, model_r, recipe, x, y, dataset.num_classes, arch.output)
    _round_trip(report, model, x)
    return report


def _overfit(report, model, recipe, x, y, num_classes, output):
    """A model that cannot memorise 64 images has a bug, whatever its design.

    Judged on the accuracy training itself reports (dropout and batch statistics on):
    BatchNorm's moving averages trail fast-changing weights, so inference-mode accuracy
    on a batch seen for a few dozen steps says little. It is reported alongside.
    """
    keras_y = datamod.prepare_y(y, recipe.labels, num_classes)
    accuracy, steps = 0.0, 0
    try:
        while steps < OVERFIT_MAX_STEPS and accuracy < OVERFIT_TARGET:
            _, accuracy = model.train_on_batch(x, keras_y)
            steps += 1
        inference = float((np.asarray(model(x, training=False)).argmax(axis=1) == y).mean())
    except Exception as exc:  # noqa: BLE001
        report.add("overfits a batch", False, f"training raised {type(exc).__name__}: {exc}")
        return
    report.add("overfits a batch", accuracy >= OVERFIT_TARGET,
               f"{accuracy * 100:.0f}% of {len(x)} real images after {steps} steps with recipe {recipe.name!r}"
               f" ({inference * 100:.0f}% in inference mode)"
               + ("" if accuracy >= OVERFIT_TARGET else f"; needs {OVERFIT_TARGET * 100:.0f}%"))
    if accuracy - inference >= INFERENCE_GAP:
        _inference_gap(report, model, x, y, accuracy, inference, steps)


def _inference_gap(report, model, x, y, accuracy, inference, steps):
    """Training mode right, inference mode far off: a new user's residual BatchNorm plugin sat at
    chance after a 1-epoch comparison this way. Let the moving statistics settle on the same
    images (forward passes in training mode change nothing else) and measure again: if the
    accuracy comes back, the statistics were the cause, and a short run will show it."""
    momenta = batchnorm_momenta(model)
    if not momenta:
        report.add("inference mode", True, f"{inference * 100:.0f}% in inference mode against {accuracy * 100:.0f}% "
                   "in training: dropout or another training-only layer changes the answers a lot", warning=True)
        return
    momentum = max(momenta)
    settled = _settled_accuracy(model, x, y)
    report.add("inference mode", True,
               f"{inference * 100:.0f}% in inference mode after {steps} steps, {settled * 100:.0f}% once BatchNorm's "
               f"moving statistics are these images' own: with momentum {momentum:g} they lag "
               f"fast-changing weights, so a short run (--epochs 1 --limit 5000) can sit near chance; train longer, "
               f"or use BatchNormalization(momentum={SETTLED_MOMENTUM:g})", warning=True)


def _settled_accuracy(model, x, y) -> float:
    """Inference-mode accuracy once every BatchNorm layer's moving statistics equal what
    endless forward passes over ``x`` would leave: one training-mode pass with momentum 0
    (each layer then sees inputs normalised as in training), momenta restored after."""
    norms = batchnorm_layers(model)
    saved = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        model(x, training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum
    return float((np.asarray(model(x, training=False)).argmax(axis=1) == y).mean())


def _round_trip(report, model, x):
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        try:
            model.save(path)
            loaded = keras.saving.load_model(path, safe_mode=True)
        except Exception as exc:  # noqa: BLE001
            report.add("save/load", False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]} "
                       "(custom layers need @keras.saving.register_keras_serializable)")
            return
    same = np.allclose(np.asarray(model(x, training=False)), np.asarray(loaded(x, training=False)), atol=1e-5)
    report.add("save/load", same, ".keras round trip gives the same predictions" if same else
               "the reloaded model predicts differently")


def check_all(registry, patterns, dataset: str = "mnist", data_dir=None) -> list[Report]:
    """``check`` every architecture ``patterns`` pick, on images of ``dataset``."""
    chosen = select(registry.architectures, patterns, None)
    arrays = datamod.load(registry.dataset(dataset), data_dir)
    return [check(arch, arrays) for arch in chosen]
