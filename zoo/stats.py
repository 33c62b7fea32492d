"""Numbers computed from a built model: parameters, multiply-accumulates, and the
arithmetic behind each layer's count, the way a teacher would write it on a board.

MACs count the multiply-accumulates of one forward pass of one image through the
Dense and convolution layers (activations, pooling and normalisation are cheap and
left out, as torchvision's ``_ops`` and most papers do). Training costs about three
forward passes: one forward, two backward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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


def build_model(arch, image_shape=(28, 28, 1), num_classes=10):
    """Build an architecture for an input shape and make sure its weights exist."""
    from zoo.errors import ZooError
    import keras

    input_shape = arch.input_shape(image_shape)
    try:
        model = arch.build(input_shape, num_classes)
    except Exception as exc:
        raise ZooError(f"{arch.name}: build() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise ZooError(f"{arch.name}: build() returned {type(model).__name__}, not a keras.Model")
    if not model.built:
        model.build((None, *input_shape))
    return model


def _shape(tensor_shape) -> tuple:
    return tuple(tensor_shape)


def _n(x) -> str:
    return f"{x:,}"


def _layer_row(layer) -> LayerRow:
    kind = type(layer).__name__
    params = layer.count_params() if layer.built else 0
    trainable = sum(math.prod(w.shape) for w in layer.trainable_weights)
    out_shape = _shape(layer.output.shape)
    in_shape = _shape(layer.input.shape) if hasattr(layer, "input") else ()
    arithmetic, macs = "", 0
    if kind == "Dense":
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
    elif kind == "BatchNormalization":
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        size = math.prod(in_shape[a] for a in axes)
        arithmetic = (f"4 × {size} = {_n(params)} (γ, β learn; moving mean and variance do not: "
                      f"{_n(params - trainable)} non-trainable) over axis {layer.axis}, "
                      f"size {size}")
    elif params:
        arithmetic = f"{_n(params)}"
    return LayerRow(layer.name, kind, out_shape, params, trainable, arithmetic, macs)


def _walk(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _walk(layer)
        else:
            yield layer


def model_stats(model) -> ModelStats:
    rows = [_layer_row(layer) for layer in _walk(model)]
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
    )


def architecture_stats(arch, image_shape=(28, 28, 1), num_classes=10) -> ModelStats:
    return model_stats(build_model(arch, image_shape, num_classes))
