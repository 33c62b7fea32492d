"""What batch normalisation costs speedrun's network on Keras/TensorFlow and on plain PyTorch.

speedrun trained 1.18–1.24× slower per epoch than the same network in plain PyTorch
on a 2-core AVX2 EPYC (benchmarks/pytorch_peer.py; docs/performance.md). This script isolates the batch-norm layers: the network
with and without them, on random data (the cost of a step does not depend on the
pixels), each variant in a fresh process, interleaved round by round, and prints
milliseconds per training step and the TensorFlow ÷ PyTorch ratio of each.

    pip install -e '.[torch]'
    python benchmarks/batchnorm_cost.py --rounds 2
    python benchmarks/batchnorm_cost.py --variants keras nchw --rounds 3

TensorFlow runs batch norm four ways (``--variants``): Keras's layer channels last (what
the zoo trains), the same layers channels first (NCHW, PyTorch's layout), speedrun's
``batch_norm=fused`` layer, calling TensorFlow's fused kernel (which oneDNN replaces with
its own on x86), and Keras's layer with the whole step compiled by XLA.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

IMAGES, BATCH, STEPS_PER_CALL = 12_800, 128, 32


TF_VARIANTS = {
    # name: what it is
    "keras": "Keras 3's BatchNormalization, channels last (NHWC): what the zoo trains",
    "nchw": "the same layers channels first (NCHW, PyTorch's layout), the input transposed once",
    "fused": "speedrun's batch_norm=fused layer: TensorFlow's fused kernel (FusedBatchNormV3; oneDNN's on x86)",
    "xla": "Keras's BatchNormalization, the whole step compiled by XLA (jit_compile=True)",
}


def one_run(framework: str, with_bn: bool, epochs: int) -> list[float]:
    """Seconds per epoch of one variant (speedrun's layers on a space-to-depth input).

    ``framework`` is "torch" or "tensorflow:VARIANT" (TF_VARIANTS)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((IMAGES, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, IMAGES)
    seconds = []
    if framework.startswith("tensorflow"):
        import keras
        from keras import layers

        variant = framework.partition(":")[2] or "keras"
        data_format = "channels_first" if variant == "nchw" else "channels_last"

        def norm():
            if variant == "fused":
                from zoo_speedrun import (
                    FusedBatchNormalization,  # speedrun's batch_norm=fused layer
                )

                return FusedBatchNormalization()
            return layers.BatchNormalization(axis=1 if variant == "nchw" else -1)

        def block(filters):
            conv = [layers.Conv2D(filters, 3, padding="same", use_bias=not with_bn, data_format=data_format)]
            return conv + ([norm()] if with_bn else []) + [layers.Activation("relu")]

        space_to_depth = [layers.Reshape((14, 2, 14, 2)), layers.Permute((2, 4, 1, 3)), layers.Reshape((4, 14, 14))] \
            if variant == "nchw" else [layers.Reshape((14, 2, 14, 2)), layers.Permute((1, 3, 2, 4)),
                                       layers.Reshape((14, 14, 4))]
        model = keras.Sequential([
            keras.Input((28, 28, 1)), *space_to_depth, *block(16), layers.MaxPooling2D(data_format=data_format),
            *block(32), layers.MaxPooling2D(data_format=data_format),
            layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      steps_per_execution=STEPS_PER_CALL, jit_compile=variant == "xla")
        for _ in range(epochs):
            start = time.perf_counter()
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=True)
            seconds.append(time.perf_counter() - start)
        return seconds
    import torch
    import torch.nn.functional as F
    from torch import nn

    def block(channels_in, filters):
        conv = [nn.Conv2d(channels_in, filters, 3, padding=1, bias=not with_bn)]
        return conv + ([nn.BatchNorm2d(filters)] if with_bn else []) + [nn.ReLU()]

    model = nn.Sequential(*block(4, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(288, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    # the same space-to-depth, done once: (N, 28, 28, 1) → (N, 4, 14, 14)
    images = torch.from_numpy(x).reshape(IMAGES, 14, 2, 14, 2).permute(0, 2, 4, 1, 3).reshape(IMAGES, 4, 14, 14)
    images, labels = images.contiguous(), torch.from_numpy(y)
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(IMAGES)
        for i in range(0, IMAGES, BATCH):
            batch = order[i:i + BATCH]
            optimizer.zero_grad()
            F.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(TF_VARIANTS), choices=list(TF_VARIANTS),
                        help="TensorFlow's ways to run batch norm, each against PyTorch")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: FRAMEWORK with|without
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one[0], args.one[1] == "with", args.epochs)))
        return
    from zoo.machine import this_cpu

    cpu = this_cpu()
    print(f"CPU: {cpu.model}, {cpu.isa}, {cpu.cores} usable cores")
    frameworks = [f"tensorflow:{v}" for v in args.variants] + ["torch"]
    variants = [(f, bn) for f in frameworks for bn in ("with", "without")]
    step_ms: dict[tuple, list[float]] = {v: [] for v in variants}
    for round_ in range(1, args.rounds + 1):
        for framework, bn in variants:
            done = subprocess.run([sys.executable, __file__, "--one", framework, bn, "--epochs", str(args.epochs)],
                                  capture_output=True, text=True, env={**__import__("os").environ,
                                                                       "TF_CPP_MIN_LOG_LEVEL": "3"})
            if done.returncode:
                sys.exit(f"{framework} {bn} batch norm failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            seconds = json.loads(done.stdout.strip().splitlines()[-1])
            ms = 1000 * min(seconds[1:] or seconds) / (IMAGES // BATCH)  # the first epoch traces and warms up
            step_ms[(framework, bn)].append(ms)
            print(f"round {round_}: {framework:18} {bn:7} batch norm  {ms:6.2f} ms/step "
                  f"(first epoch {seconds[0]:.2f} s)", flush=True)
    median = {v: statistics.median(ms) for v, ms in step_ms.items()}
    print(f"\nms per step (median of {args.rounds} rounds; best epoch after the first), batch {BATCH}; "
          f"{cpu.model}, {cpu.isa}, {cpu.cores} cores:")
    for framework in frameworks:
        with_, without = median[(framework, "with")], median[(framework, "without")]
        versus = median[("torch", "with")], median[("torch", "without")]
        print(f"  {framework:18} with {with_:6.2f}  without {without:6.2f}  batch norm costs {with_ - without:5.2f}"
              f"   ÷ PyTorch: with {with_ / versus[0]:.2f}, without {without / versus[1]:.2f}")
    for variant in args.variants:
        print(f"  tensorflow:{variant}: {TF_VARIANTS[variant]}")


if __name__ == "__main__":
    main()
