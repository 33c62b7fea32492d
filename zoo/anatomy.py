"""A model's anatomy: its layers, parameters, multiply-accumulates, and the arithmetic
behind each layer's count, the way a teacher would write it on a board.

MACs count the multiply-accumulates of one forward pass of one image through the
Dense and convolution layers (activations, pooling and normalisation are cheap and
left out, as torchvision's ``_ops`` and most papers do). Training costs about three
forward passes: one forward, two backward. A model that looks at several views of an
image when it predicts (test-time augmentation: a layer with ``test_time_views = N``, as
speedrun's ``ShiftedViews``) runs N forward passes to predict and one to train.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.errors import ZooError
from zoo.isolation import PluginAbort, plugin_code, plugin_output_to_stderr
from zoo.keras_glue import fresh_names


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    params: int
    trainable: int
    arithmetic: str
    macs: int


@dataclass
class ModelStats:
    params: int
    trainable: int
    non_trainable: int
    macs: int
    input_shape: tuple
    output_shape: tuple
    layers: list[LayerRow]
    outputs: int = 1  # output tensors: training needs exactly one
    test_time_views: int = 1  # forward passes per image when predicting (test-time augmentation)


def build_model(arch, image_shape=(28, 28, 1), num_classes=10, knobs: dict | None = None):
    """Build an architecture for an input shape and make sure its weights exist; an architecture
    with knobs gets each as a keyword argument (``knobs`` overriding their defaults)."""
    import keras

    input_shape = arch.input_shape(image_shape)
    try:
        # a plugin that prints must not spoil --json; one that exits must not end the command;
        # fresh layer names (conv2d, not conv2d_15) so the card, the report and explain agree
        kwargs = {k.name: k.default for k in getattr(arch, "knobs", ())}
        kwargs.update({k: v for k, v in (knobs or {}).items() if k in kwargs})
        with plugin_output_to_stderr(), plugin_code(), fresh_names():
            model = arch.build(input_shape, num_classes, **kwargs)
    except PluginAbort as exc:
        raise ZooError(f"{arch.name}: build() {exc}") from None
    except Exception as exc:
        raise ZooError(f"{arch.name}: build() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise ZooError(f"{arch.name}: build() returned {type(model).__name__}, not a keras.Model")
    if not model.built:
        try:
            model.build((None, *input_shape))
        except Exception as exc:
            raise ZooError(f"{arch.name}: the model cannot be built for input {input_shape} "
                           f"({type(exc).__name__}: {exc})") from exc
    takes = input_shape_of(model)
    if takes is not None and takes != tuple(input_shape):
        raise ZooError(f"{arch.name}: build() made a model whose input is {takes}, but the images reach it as "
                       f"{tuple(input_shape)}: use the input_shape build() is given (keras.Input(input_shape)) "
                       f"rather than a shape written into the code")
    return model


def input_shape_of(model) -> tuple | None:
    """The shape (without the batch) of a model's one input, or None when it has several or none yet."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    return tuple(inputs[0].shape[1:])


def _shape(tensor_shape) -> tuple:
    return tuple(tensor_shape)


def _first_shape(layer, attribute: str) -> tuple:
    """The shape of a layer's (first) input or output tensor.

    A layer may take several inputs (Add, Concatenate: any residual block), be shared
    (Keras reports its first call) or never have been called in a graph (a subclassed
    model's layers): then the shape is unknown, shown as ().
    """
    try:
        tensors = getattr(layer, attribute)
    except (AttributeError, ValueError, RuntimeError):
        return ()
    while isinstance(tensors, (list, tuple)) and tensors:
        tensors = tensors[0]
    if isinstance(tensors, dict) and tensors:
        tensors = next(iter(tensors.values()))
    shape = getattr(tensors, "shape", None)
    return _shape(shape) if shape is not None else ()


def _n(x) -> str:
    return f"{x:,}"


def _layer_row(layer) -> LayerRow:
    kind = type(layer).__name__
    params = layer.count_params() if layer.built else 0
    trainable = sum(math.prod(w.shape) for w in layer.trainable_weights)
    out_shape = _first_shape(layer, "output")
    in_shape = _first_shape(layer, "input")
    arithmetic, macs = "", 0
    views = _views(layer)
    if views > 1:
        arithmetic = f"predicting: {views} views of each image, {views} × the MACs; training: the image alone"
    elif not in_shape or not out_shape:
        arithmetic = _n(params) if params else ""
    elif kind == "Dense":
        fan_in, units = in_shape[-1], layer.units
        positions = math.prod(d for d in in_shape[1:-1]) if len(in_shape) > 2 else 1
        bias = units if layer.use_bias else 0
        arithmetic = f"{_n(fan_in)} × {_n(units)}" + (f" + {_n(units)}" if bias else "") + f" = {_n(params)}"
        macs = positions * fan_in * units
    elif kind in ("Conv1D", "Conv2D", "Conv3D"):
        kernel = tuple(layer.kernel_size)
        in_channels = in_shape[-1] // getattr(layer, "groups", 1)
        kernel_text = "×".join(str(k) for k in (*kernel, in_channels))
        bias = f" + {layer.filters}" if layer.use_bias else ""
        arithmetic = f"{layer.filters} × ({kernel_text}){bias} = {_n(params)}"
        macs = math.prod(out_shape[1:-1]) * layer.filters * math.prod(kernel) * in_channels
    elif kind == "DepthwiseConv2D":
        kernel = tuple(layer.kernel_size)
        macs = math.prod(out_shape[1:]) * math.prod(kernel)
        arithmetic = f"{out_shape[-1]} × ({kernel[0]}×{kernel[1]}) + bias = {_n(params)}"
    elif kind.endswith("BatchNormalization"):  # Keras's, or one computing the same (a fused kernel)
        axis = getattr(layer, "axis", -1)
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        size = math.prod(in_shape[a] for a in axes)
        arithmetic = (f"4 × {size} = {_n(params)} (γ, β learn; moving mean and variance do not: "
                      f"{_n(params - trainable)} non-trainable) over axis {axis}, "
                      f"size {size}")
    elif params:
        arithmetic = f"{_n(params)}"
    return LayerRow(layer.name, kind, out_shape, params, trainable, arithmetic, macs)


def _views(layer) -> int:
    views = getattr(layer, "test_time_views", 1)
    return views if isinstance(views, int) and not isinstance(views, bool) and views > 1 else 1


def layers(model):
    """Every layer that computes something, in order, looking inside nested models and blocks
    (a plugin's residual block is a layer holding layers). The one walk over a model's layers:
    the card, the report and ``zoo explain`` all see the same layers."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from layers(layer)
        else:
            yield layer


def model_stats(model, name: str | None = None) -> ModelStats:
    """Params, MACs and per-layer arithmetic; a model that defeats this is its plugin's
    ``ZooError`` (naming ``name``), never a crash of the listing."""
    try:
        return _model_stats(model)
    except Exception as exc:  # noqa: BLE001  (any graph a plugin can build)
        raise ZooError(f"{name or model.name}: cannot compute its parameters and MACs "
                       f"({type(exc).__name__}: {str(exc)[:160]})") from None


def _model_stats(model) -> ModelStats:
    walked = list(layers(model))
    rows = [_layer_row(layer) for layer in walked]
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = model.count_params()
    return ModelStats(
        params=total,
        trainable=trainable,
        non_trainable=total - trainable,
        macs=sum(r.macs for r in rows),
        input_shape=_shape(model.inputs[0].shape),
        output_shape=_shape(model.outputs[0].shape),
        layers=rows,
        outputs=len(model.outputs),
        test_time_views=math.prod(_views(layer) for layer in walked),
    )


def architecture_stats(arch, image_shape=(28, 28, 1), num_classes=10) -> ModelStats:
    return model_stats(build_model(arch, image_shape, num_classes), name=arch.name)


# A multiply-accumulate is 2 FLOPs forward; the backward pass costs about twice the forward
# (gradients for the inputs and for the weights): 6 FLOPs per MAC per training image.
TRAINING_FLOPS_PER_MAC = 6


def training_cost(macs: int, images: int, epoch_seconds: list[float], peak_gflops: float | None) -> dict:
    """What training cost in arithmetic, whatever the machine: 6 × MACs × images per epoch
    (the validation pass and the optimizer's update not counted), and per epoch the GFLOP/s
    achieved and their share of the device's fp32 peak (None where the peak is unknown)."""
    per_epoch = TRAINING_FLOPS_PER_MAC * macs * images
    rates = [per_epoch / s / 1e9 for s in epoch_seconds if s > 0]
    return {
        "flops_per_image": TRAINING_FLOPS_PER_MAC * macs,
        "training_flops": per_epoch * len(epoch_seconds),
        "training_tflop": per_epoch * len(epoch_seconds) / 1e12,
        "gflops_per_second": rates,
        "peak_gflops": peak_gflops,
        "share_of_peak": [r / peak_gflops for r in rates] if peak_gflops else None,
    }
