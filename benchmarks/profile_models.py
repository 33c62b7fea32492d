"""Where each built-in model's training step spends its time, and what bounds it.

For every model (or those named), at its recipe's batch size, in one process:

* **the whole step**: Keras's compiled training step as the zoo runs it (the recipe's
  optimizer and loss, the zoo's steps per call), the median over a second epoch of
  ``--steps`` steps, on real MNIST images;
* **each layer alone**: its forward and backward pass (gradients for its input and its
  weights) on a tensor of its input's shape, compiled by ``tf.function``, median of
  ``--repeats`` calls, less what calling a compiled function that does nothing costs;
* what is left, **step − Σ layers**: the loss, the optimizer's update of every weight,
  and the per-step dispatch the layers alone do not pay.

It prints milliseconds, each layer's GFLOP/s and share of this CPU's fp32 peak
(``zoo.machine``), and a one-line verdict per model: the share of the step in
convolutions and dense layers (arithmetic), in the layers without multiply-accumulates
(batch norm, pooling, activations, reshapes: memory traffic), and in the rest (optimizer,
loss, overhead). Seconds depend on the CPU; name it when you quote them.

    python benchmarks/profile_models.py
    python benchmarks/profile_models.py speedrun mlp --json profile.json

The peak is computed from the clock /proc/cpuinfo reports; a core that turbo-boosts above
it (or a virtual machine that reports its base clock) can show a layer above 100%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BUILT_IN = ("mlp", "speedrun", "baseline-cnn", "deep-bn-cnn", "keras1-cnn", "keras-docs-cnn", "best")


def call_floor_ms(batch_size: int, repeats: int) -> float:
    """What calling a compiled function costs when it computes (almost) nothing: subtracted
    from each layer's time, so a layer's milliseconds are its kernels', not the call's."""
    return layer_ms(None, (1,), batch_size, repeats, floor=0.0)


def layer_ms(layer, input_shape, batch_size: int, repeats: int, floor: float, input_gradient: bool = True) -> float:
    """Median milliseconds of one forward + backward pass of ``layer`` alone, less the call's floor.
    ``input_gradient``: whether the step needs the gradient for the layer's input (not for the
    layers the images reach before any weight: nothing upstream learns)."""
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).random((batch_size, *input_shape), dtype=np.float32))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True) if layer is not None else x
            total = tf.reduce_sum(tf.cast(y, tf.float32))
        sources = [x] if input_gradient else []
        return tape.gradient(total, [*sources, *(layer.trainable_weights if layer is not None else ())])

    step(x)  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        grads = step(x)
        _ = [g.numpy() for g in grads if g is not None]  # wait for the results
        times.append(time.perf_counter() - start)
    return max(statistics.median(times) * 1000 - floor, 0.0)


def step_ms(model, arch, macs: int, x, y, steps: int) -> tuple[float, int]:
    """Median milliseconds per training step of the compiled model, as the zoo compiles it."""
    import keras

    from zoo.keras_glue import build_loss, execution_settings

    recipe = arch.recipes[0]
    per_call = execution_settings(macs, recipe.batch_size, steps_per_epoch=steps)["steps_per_execution"]
    model.compile(optimizer=recipe.build_optimizer(total_steps=10 * steps),
                  loss=build_loss(recipe.loss, arch.output == "logits", recipe.label_smoothing),
                  steps_per_execution=per_call)
    n = steps * recipe.batch_size
    epoch_seconds = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    model.fit(x[:n], y[:n], batch_size=recipe.batch_size, epochs=3, verbose=0, shuffle=False, callbacks=[Timer()])
    return statistics.median(epoch_seconds[1:]) / steps * 1000, per_call


def profile(name: str, x, y, steps: int, repeats: int, peak: float | None) -> dict:
    import keras

    import zoo
    from zoo.anatomy import layers, model_stats

    arch = zoo.architecture(name)
    recipe = arch.recipes[0]
    batch = recipe.batch_size
    keras.utils.set_random_seed(0)
    model = zoo.build(name)
    x = x.reshape(len(x), *arch.input_shape((28, 28, 1)))  # mlp takes 784 values, the CNNs 28×28×1
    if recipe.loss == "categorical_crossentropy":
        y = keras.utils.to_categorical(y, 10)
    floor = call_floor_ms(batch, repeats)
    stats = model_stats(model)
    rows = []
    learned_upstream = False  # whether any layer before this one has weights (needs its input's gradient)
    for layer, row in zip(layers(model), stats.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = tuple(layer.input.shape[1:])
        ms = layer_ms(layer, shape, batch, repeats, floor, input_gradient=learned_upstream)
        # forward 2 FLOPs a MAC, the weights' gradient 2, the input's gradient 2 where it is needed
        flops = (6 if learned_upstream else 4) * row.macs * batch
        learned_upstream = learned_upstream or bool(layer.trainable_weights)
        rate = flops / ms / 1e6 if row.macs and ms > 0 else None  # ms 0: under the call's own cost
        rows.append({"layer": layer.name, "kind": type(layer).__name__, "input": shape, "macs": row.macs, "ms": ms,
                     "gflops_per_second": rate, "share_of_peak": rate / peak if rate and peak else None})
    total_macs = stats.macs
    ms, per_call = step_ms(model, arch, total_macs, x, y, steps)
    arithmetic = sum(r["ms"] for r in rows if r["macs"])
    memory = sum(r["ms"] for r in rows if not r["macs"])
    rest = max(ms - arithmetic - memory, 0.0)
    rate = 6 * total_macs * batch / ms / 1e6
    return {"model": name, "batch_size": batch, "steps_per_call": per_call, "step_ms": ms,
            "step_gflop": 6 * total_macs * batch / 1e9, "gflops_per_second": rate,
            "share_of_peak": rate / peak if peak else None, "layers": rows,
            "call_floor_ms": floor, "arithmetic_ms": arithmetic, "memory_ms": memory, "rest_ms": rest}


def verdict(p: dict) -> str:
    parts = {"arithmetic (conv, dense)": p["arithmetic_ms"], "memory (BN, pooling, activations)": p["memory_ms"],
             "optimizer, loss, dispatch": p["rest_ms"]}
    total = sum(parts.values()) or 1.0
    shares = ", ".join(f"{k} {v / total:.0%}" for k, v in parts.items())
    timed = [r for r in p["layers"] if r["gflops_per_second"]]
    if not timed:  # every layer cheaper than calling a compiled function: the step is all overhead
        return f"{shares}; every layer alone costs less than a call"
    slowest = min(timed, key=lambda r: r["gflops_per_second"])
    return f"{shares}; slowest arithmetic: {slowest['layer']} at {slowest['gflops_per_second']:.0f} GFLOP/s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="models to profile (default: every built-in)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per layer")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--data-dir", help="the folder with mnist.npz (default: ZOO_DATA_DIR, as every zoo command)")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from zoo import data
    from zoo.plugins import get_zoo
    from zoo.machine import this_cpu

    cpu = this_cpu()
    names = args.models or BUILT_IN
    arrays = data.load(get_zoo().dataset("mnist"), args.data_dir)
    x = data.prepare_x(arrays.x_train, "image")  # as every run scales its images
    y = arrays.y_train
    console = Console()
    console.print(f"CPU: {cpu.model}; fp32 peak {cpu.gflops} GFLOP/s ({cpu.derivation})")
    results = []
    for name in names:
        p = profile(name, x, y, args.steps, args.repeats, cpu.gflops)
        results.append(p)
        table = Table(title=f"{name}: batch {p['batch_size']}, step {p['step_ms']:.2f} ms "
                            f"({p['step_gflop']:.2f} GFLOP, {p['gflops_per_second']:.0f} GFLOP/s"
                            + (f", {p['share_of_peak']:.0%} of peak" if p["share_of_peak"] else "") + ")")
        for column in ("layer", "input", "MACs/image", "ms fwd+bwd", "GFLOP/s", "% of peak"):
            table.add_column(column, justify="left" if column in ("layer", "input") else "right")
        for r in p["layers"]:
            table.add_row(r["layer"], "×".join(map(str, r["input"])), f"{r['macs']:,}" if r["macs"] else "",
                          f"{r['ms']:.2f}", f"{r['gflops_per_second']:.0f}" if r["gflops_per_second"] else "",
                          f"{r['share_of_peak']:.0%}" if r["share_of_peak"] else "")
        table.add_row("step − Σ layers", "", "", f"{p['rest_ms']:.2f}", "", "")
        console.print(table)
        console.print(f"  {verdict(p)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu.to_dict(), "models": results}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
