"""What batch normalisation costs speedrun's network on Keras/TensorFlow and on plain PyTorch.

speedrun trains 1.2× slower per epoch than the same network in plain PyTorch
(benchmarks/pytorch_peer.py). This script isolates the batch-norm layers: the network
with and without them, on random data (the cost of a step does not depend on the
pixels), each variant in a fresh process, interleaved round by round, and prints
milliseconds per training step and the TensorFlow ÷ PyTorch ratio of each.

    pip install -e '.[torch]'
    python benchmarks/batchnorm_cost.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

IMAGES, BATCH, STEPS_PER_CALL = 12_800, 128, 32


def one_run(framework: str, with_bn: bool, epochs: int) -> list[float]:
    """Seconds per epoch of one variant (speedrun's layers on a space-to-depth input)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((IMAGES, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, IMAGES)
    seconds = []
    if framework == "tensorflow":
        import keras
        from keras import layers

        def block(filters):
            conv = [layers.Conv2D(filters, 3, padding="same", use_bias=not with_bn)]
            return conv + ([layers.BatchNormalization()] if with_bn else []) + [layers.Activation("relu")]

        model = keras.Sequential([
            keras.Input((28, 28, 1)), layers.Reshape((14, 2, 14, 2)), layers.Permute((1, 3, 2, 4)),
            layers.Reshape((14, 14, 4)), *block(16), layers.MaxPooling2D(), *block(32), layers.MaxPooling2D(),
            layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      steps_per_execution=STEPS_PER_CALL)
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
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: FRAMEWORK with|without
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one[0], args.one[1] == "with", args.epochs)))
        return
    variants = [(f, bn) for f in ("tensorflow", "torch") for bn in ("with", "without")]
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
            print(f"round {round_}: {framework:10} {bn:7} batch norm  {ms:6.2f} ms/step", flush=True)
    median = {v: statistics.median(ms) for v, ms in step_ms.items()}
    print(f"\nms per step (median of {args.rounds} rounds; best epoch after the first), batch {BATCH}:")
    for bn in ("with", "without"):
        tf_ms, torch_ms = median[("tensorflow", bn)], median[("torch", bn)]
        print(f"  {bn:7} batch norm: TensorFlow {tf_ms:6.2f}  PyTorch {torch_ms:6.2f}  TF ÷ PyTorch {tf_ms / torch_ms:.2f}")
    for framework in ("tensorflow", "torch"):
        cost = median[(framework, "with")] - median[(framework, "without")]
        print(f"  batch norm costs {framework}: {cost:.2f} ms per step")


if __name__ == "__main__":
    main()
