"""What a trained model sees in one digit: its answer, each convolution's feature maps,
and which pixels the answer depends on most.

* **Feature maps** (CNN Explainer, Wang et al. 2020; keras-io's
  ``visualizing_what_convnets_learn``): every convolution's output for this one input,
  a small image per filter. The first layer's maps look like strokes and edges; deeper
  ones get coarser and more abstract.
* **Saliency** (Simonyan et al. 2014, "Deep Inside Convolutional Networks"): the
  gradient of the predicted class's probability with respect to each input pixel. Bright
  pixels are those where a small change would move the answer most.

``explain`` returns numbers; ``zoo.figures`` draws them; ``zoo explain`` does both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo import data as datamod
from zoo.anatomy import layers
from zoo.errors import ZooError
from zoo.evaluation import predict_probabilities
from zoo.imaging import write_png


@dataclass
class Explanation:
    probabilities: np.ndarray                 # one per class
    top3: list[dict]                          # digit, label, probability
    feature_maps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (layer name, H×W×filters)
    saliency: np.ndarray | None = None        # 28×28, ≥ 0, the largest is 1
    notes: list[str] = field(default_factory=list)
    # What was explained (``zoo.explain`` fills these in)
    image: str = ""                           # the file, or "test image N"
    name: str = "digit"                       # a short name for files: the file's stem, or testN
    digit: np.ndarray | None = None           # the 28×28 input, as the model saw it
    model: str = ""
    true_label: str | None = None
    files: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.top3[0]["label"]

    def figures(self) -> list:
        """matplotlib Figures: each convolution's feature maps, then the saliency map."""
        return self._draw(None)

    def write(self, folder) -> list[str]:
        """The input, each convolution's feature maps and the saliency map as PNGs in ``folder``."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ZooError(f"cannot write into {folder} ({exc.strerror or exc})") from None
        written = [write_png(self.digit, folder / "input.png")] if self.digit is not None else []
        return [str(p) for p in written + self._draw(folder)]

    def _draw(self, folder) -> list:
        from zoo import figures

        drawn = []
        for i, (layer, maps) in enumerate(self.feature_maps, 1):
            path = None if folder is None else folder / f"feature-maps-{i}-{layer}.png"
            drawn.append(figures.feature_maps(layer, maps, path,
                                              f"{self.model}: convolution {i} of {len(self.feature_maps)}"))
        if self.saliency is not None and self.digit is not None:
            best = self.top3[0]
            path = None if folder is None else folder / "saliency.png"
            drawn.append(figures.saliency(self.digit, self.saliency, path,
                                          f"{self.model}: why {best['label']} ({best['probability'] * 100:.1f}%)"))
        return drawn

    def to_dict(self) -> dict:
        """What ``zoo explain --json`` prints."""
        return {"image": self.image, "true_label": self.true_label, "label": self.label, "top3": self.top3,
                "probabilities": [float(p) for p in self.probabilities],
                "feature_maps": [{"layer": n, "shape": list(m.shape)} for n, m in self.feature_maps],
                "files": list(self.files), "notes": self.notes}


def _convolutions(model) -> list:
    import keras

    return [layer for layer in layers(model) if isinstance(layer, keras.layers.Conv2D)]


def feature_maps(model, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Each Conv2D's output for the one input ``x`` (shape 1×…), in the order they run."""
    import keras

    convolutions = [c for c in _convolutions(model) if c in model.layers]
    if not convolutions:
        return []
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs, [c.output for c in convolutions])
    outputs = probe(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [(c.name, np.asarray(keras.ops.convert_to_numpy(o))[0]) for c, o in zip(convolutions, outputs)]


def saliency(model, x: np.ndarray, target: int, output: str = "probabilities",
             field: tuple[int, int] = (28, 28)) -> np.ndarray:
    """|∂ p(target) / ∂ pixel|, reshaped to the image (``field`` for a flat input) and scaled
    so the largest is 1."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        inputs = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            out = model(inputs, training=False)
            p = tf.nn.softmax(out)[0, target] if output == "logits" else out[0, target]
        grad = tape.gradient(p, inputs).numpy()
    elif backend == "jax":
        import jax

        def p_of(inputs):
            out = model(inputs, training=False)
            return (jax.nn.softmax(out) if output == "logits" else out)[0, target]

        grad = np.asarray(jax.grad(p_of)(x))
    else:
        raise ZooError(f"saliency needs the tensorflow or jax backend, not {backend}")
    grad = np.abs(grad[0].reshape(field) if grad.ndim == 2 else grad[0, ..., 0])
    return grad / grad.max() if grad.max() > 0 else grad


def explain(model, record, digit: np.ndarray) -> Explanation:
    """The answer, feature maps and saliency for one uint8 ``digit`` (28×28 for MNIST), as
    ``zoo predict`` sees it."""
    x = datamod.prepare_x(digit[None], record.input_kind).astype("float32")
    probabilities = predict_probabilities(model, x, record.output)[0]
    top = [int(i) for i in np.argsort(-probabilities)[:3]]
    classes = record.class_names
    result = Explanation(probabilities, [{"digit": i, "label": classes[i], "probability": float(probabilities[i])}
                                         for i in top])
    try:
        result.feature_maps = feature_maps(model, x)
    except Exception as exc:  # noqa: BLE001  (a plugin's model may not be a graph we can probe)
        result.notes.append(f"no feature maps for this model ({type(exc).__name__}: {str(exc)[:120]})")
    if not result.feature_maps and not result.notes:
        result.notes.append("this model has no convolution: no feature maps to show")
    try:
        result.saliency = saliency(model, x, top[0], record.output, digit.shape[:2])
    except ZooError as exc:
        result.notes.append(str(exc))
    return result
