"""The zoo against plain PyTorch on the same CPU: seconds per epoch, side by side.

PyTorch's ``examples/mnist`` is the script a learner would otherwise copy. This file
writes ``baseline-cnn`` and ``speedrun``'s network that way — an ``nn.Module``, a
``DataLoader`` over the arrays, the same layers, batch size, optimizer (and schedule) —
and times them against ``zoo train`` on the same arrays and split, each in a fresh
process, interleaved round by round so a slow spell of a shared machine hits every
contender. It also times the zoo on Keras's torch and JAX backends.

    pip install -e '.[torch,jax]'          # benchmark-only extras, never needed by the tests
    python benchmarks/pytorch_peer.py                       # both models, 2 rounds, 3 epochs
    python benchmarks/pytorch_peer.py --models speedrun --rounds 3

Per contender: seconds per epoch (the median over rounds of the median of epochs after
the first, which pays for tracing and warm-up), the whole process's wall time (Python and the
framework starting, the data, every epoch, the test, the end: the median over rounds), the achieved GFLOP/s of training
(6 × MACs × images ÷ seconds) and its share of this machine's peak (zoo.machine), the
test accuracy after those epochs (a sanity check, not a result: few epochs), and the
ratio to the zoo's default (TensorFlow). Every epoch includes one pass over the
validation split, as Keras's ``fit`` does. speedrun's default computes batch normalisation with
TensorFlow's fused kernel; it also runs with ``batch_norm=keras`` (Keras's own layer: the same
model, the slower step it had before).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTENDERS = {
    # name: how it runs (a third item: a knob set with `zoo compare --set`, for the models that have it)
    "zoo (TensorFlow)": ["zoo", "tensorflow"],
    "zoo (TF, batch_norm=keras)": ["zoo", "tensorflow", "batch_norm=keras"],
    "plain PyTorch": ["plain"],
    "zoo (Keras on torch)": ["zoo", "torch"],
    "zoo (Keras on JAX)": ["zoo", "jax"],
}
RECIPES = {  # as the zoo's plugins give them
    "baseline-cnn": {"batch_size": 200, "learning_rate": 0.001, "schedule": None, "label_smoothing": 0.0,
                     "test_time_views": 1},
    "speedrun": {"batch_size": 128, "learning_rate": 0.015,
                 "schedule": {"warmup": 0.2, "start": 0.1, "alpha": 0.01}, "label_smoothing": 0.1, "test_time_views": 5},
}


# -- the PyTorch side, written as pytorch/examples/mnist writes it ----------------------------
def torch_models():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class BaselineCNN(nn.Module):
        """baseline-cnn: Conv2D(32, 5×5) → max-pool → dropout 0.3 → Dense(128) → Dense(10)."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 32, 5)
            self.dropout = nn.Dropout(0.3)
            self.fc1 = nn.Linear(12 * 12 * 32, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv(x)), 2)
            x = torch.flatten(self.dropout(x), 1)
            return self.fc2(F.relu(self.fc1(x)))  # logits: cross_entropy applies the softmax

    class SpeedrunNet(nn.Module):
        """speedrun: space-to-depth 14×14×4 → Conv(16)+BN → pool → Conv(32)+BN → pool → Dense(128) → Dense(10);
        five views of each image when predicting."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 16, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(16, eps=1e-3, momentum=0.01)  # Keras's defaults: momentum 0.99 there
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
            self.fc1 = nn.Linear(3 * 3 * 32, 128)
            self.fc2 = nn.Linear(128, 10)

        def logits(self, x):
            x = F.pixel_unshuffle(x, 2)  # 1×28×28 → 4×14×14, losing nothing
            x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
            x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
            return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

        def forward(self, x):
            if self.training:
                return self.logits(x)
            # predicting, as the zoo's speedrun does: the image and its one-pixel shifts down, up, right
            # and left (zeros fill the edge), the five views' probabilities averaged (log: for argmax)
            rows, cols = x.shape[-2:]
            padded = F.pad(x, (1, 1, 1, 1))
            views = torch.cat([padded[..., 1 - down:1 - down + rows, 1 - right:1 - right + cols]
                               for down, right in self.views])
            return F.softmax(self.logits(views), 1).view(len(self.views), len(x), -1).mean(0).log()

        views = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))

    return {"baseline-cnn": BaselineCNN, "speedrun": SpeedrunNet}


def warmup_cosine(step: int, total: int, warmup: float, start: float, alpha: float) -> float:
    """Keras's CosineDecay with a linear warm-up, as a factor of the peak learning rate."""
    warm = int(total * warmup)
    if warm and step < warm:
        return start + (1 - start) * step / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return (1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress)) + alpha


def train_plain(model_name: str, epochs: int, seed: int, limit: int | None) -> dict:
    """One run of the plain PyTorch version; returns its epoch seconds and test accuracy."""
    os.environ["KERAS_BACKEND"] = "torch"  # the zoo's data module imports Keras: not TensorFlow here
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from zoo.jobs import prepare
    from zoo.plugins import get_zoo
    from zoo.types import Options

    torch.manual_seed(seed)
    prepared = prepare(get_zoo(), Options(limit=limit), split_seed=seed)
    a, s = prepared.arrays, prepared.split

    def tensors(x, y):
        return torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.float32) / 255), torch.from_numpy(y.astype(np.int64))

    train = DataLoader(TensorDataset(*tensors(a.x_train[s.train], a.y_train[s.train])),
                       batch_size=RECIPES[model_name]["batch_size"], shuffle=True)
    val = DataLoader(TensorDataset(*tensors(a.x_train[s.val], a.y_train[s.val])), batch_size=1000)
    test = DataLoader(TensorDataset(*tensors(a.x_test, a.y_test)), batch_size=1000)
    model = torch_models()[model_name]()
    recipe = RECIPES[model_name]
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe["learning_rate"], betas=(0.9, 0.999), eps=1e-7)
    total = epochs * len(train)
    scheduler = None
    if recipe["schedule"]:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total,
                                                                                             **recipe["schedule"]))

    def accuracy(loader):
        model.eval()
        correct = 0
        with torch.no_grad():
            for data, target in loader:
                correct += (model(data).argmax(1) == target).sum().item()
        return correct / len(loader.dataset)

    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for data, target in train:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data), target, label_smoothing=recipe["label_smoothing"])
            loss.backward()
            optimizer.step()
            if scheduler:
                scheduler.step()
        accuracy(val)  # Keras's fit validates at each epoch's end; so does this
        seconds.append(time.perf_counter() - start)
    return {"epoch_seconds": seconds, "test_accuracy": accuracy(test), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


# -- the driver ---------------------------------------------------------------------------------
KNOBS = {"batch_norm": ("speedrun",)}  # which models have the knobs a contender sets


def applies(how: list[str], model: str) -> bool:
    return len(how) < 3 or model in KNOBS[how[2].partition("=")[0]]


def run_contender(how: list[str], model: str, epochs: int, seed: int, limit: int | None, runs: str) -> dict:
    if how[0] == "plain":
        cmd = [sys.executable, __file__, "--plain", model, "--epochs", str(epochs), "--seed", str(seed)]
    elif len(how) > 2:  # a knob: `zoo compare` sets it; its run.json is what `zoo train --json` prints
        cmd = [sys.executable, "-m", "zoo", "--backend", how[1], "compare", model, "--set", how[2], "--epochs",
               str(epochs), "--seed", str(seed), "--runs-dir", runs, "--json"]
    else:
        cmd = [sys.executable, "-m", "zoo", "--backend", how[1], "train", model, "--epochs", str(epochs),
               "--seed", str(seed), "--runs-dir", runs, "--json"]
    if limit:
        cmd += ["--limit", str(limit)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    process_seconds = time.perf_counter() - start  # what a user waits for: start, data, training, the end
    if done.returncode:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"failed": lines[-1] if lines else f"exit {done.returncode}"}
    if len(how) > 2:
        [row] = json.loads(done.stdout)
        record = json.loads((Path(row["run_dir"]) / "run.json").read_text())
    else:
        record = json.loads(done.stdout)
    return {**record, "process_seconds": process_seconds}


def steady(seconds: list[float]) -> float:
    """Seconds per epoch once warm: the median of the epochs after the first (the first alone if one)."""
    return statistics.median(seconds[1:] or seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, default=None, help="train on this many images (a quick look)")
    parser.add_argument("--json", dest="json_path", help="also write the results to this file")
    parser.add_argument("--plain", help=argparse.SUPPRESS)  # internal: one plain PyTorch run, JSON on stdout
    args = parser.parse_args()
    if args.plain:
        print(json.dumps(train_plain(args.plain, args.epochs, args.seed, args.limit)))
        return

    from rich.console import Console
    from rich.table import Table

    from zoo.machine import this_cpu

    console = Console(width=max(Console().width, 130))
    peak = this_cpu()
    console.print(f"CPU: {peak.model}, {peak.isa}, {peak.cores} usable cores; peak "
                  + (f"{peak.gflops:.1f} GFLOP/s ({peak.derivation})" if peak.gflops else "unknown")
                  + (f" [{peak.guess}]" if peak.guess else ""), highlight=False)
    for model in args.models:  # the PyTorch side must train the zoo's recipe, not an old copy of it
        card = json.loads(subprocess.run([sys.executable, "-m", "zoo", "info", model, "--json"], capture_output=True,
                                         text=True, check=True).stdout)
        recipe = card["recipes"][0]
        ours = (recipe["batch_size"], recipe["optimizer"]["learning_rate"], recipe.get("label_smoothing", 0.0),
                card.get("test_time_views", 1))
        if ours != tuple(RECIPES[model][k] for k in ("batch_size", "learning_rate", "label_smoothing", "test_time_views")):
            sys.exit(f"{model}: the zoo's recipe (batch {ours[0]}, learning rate {ours[1]}, label smoothing "
                     f"{ours[2]}, {ours[3]} test-time views) differs from this file's RECIPES: update it")
    results: dict = {m: {c: [] for c in args.contenders} for m in args.models}
    macs, images = {}, {}
    with tempfile.TemporaryDirectory() as runs:
        for round_ in range(1, args.rounds + 1):
            for model in args.models:
                for name in args.contenders:
                    if not applies(CONTENDERS[name], model):
                        continue
                    got = run_contender(CONTENDERS[name], model, args.epochs, args.seed, args.limit, runs)
                    if "failed" in got:
                        console.print(f"round {round_} {model} {name}: [red]{got['failed']}[/]", highlight=False)
                        continue
                    if "macs" in got:
                        macs[model], images[model] = got["macs"], got["split"]["train"]
                    results[model][name].append(got)
                    console.print(f"round {round_} {model} {name}: "
                                  f"{', '.join(f'{s:.1f}' for s in got['epoch_seconds'])} s/epoch, "
                                  f"test {got['test_accuracy'] * 100:.2f}%", highlight=False)
    table = Table(title=f"Seconds per epoch, same arrays and split, {args.epochs} epochs × {args.rounds} rounds "
                        f"(median of epochs 2+; {peak.model}, {peak.isa}, {peak.cores} cores)", title_justify="left")
    for column in ("model", "contender", "s/epoch", "÷ zoo (TF)", "whole process s", "÷ zoo (TF)", "GFLOP/s",
                   "% of peak", "test acc", "runs"):
        table.add_column(column, justify="left" if column in ("model", "contender") else "right")
    summary = []
    for model in args.models:
        base = base_process = None
        for name in args.contenders:
            runs_ = results[model][name]
            if not applies(CONTENDERS[name], model):
                continue
            if not runs_:
                table.add_row(model, name, "failed", "", "", "", "", "0")
                continue
            per_epoch = statistics.median(steady(r["epoch_seconds"]) for r in runs_)
            process = statistics.median(r["process_seconds"] for r in runs_)
            base = per_epoch if name == "zoo (TensorFlow)" else base
            base_process = process if name == "zoo (TensorFlow)" else base_process
            gflops = 6 * macs.get(model, 0) * images.get(model, 0) / per_epoch / 1e9 if model in macs else None
            share = gflops / peak.gflops if gflops and peak.gflops else None
            accuracy = statistics.median(r["test_accuracy"] for r in runs_)
            summary.append({"model": model, "contender": name, "seconds_per_epoch": per_epoch,
                            "vs_zoo_tensorflow": per_epoch / base if base else None,
                            "process_seconds": process,
                            "process_vs_zoo_tensorflow": process / base_process if base_process else None,
                            "gflops_per_second": gflops,
                            "share_of_peak": share, "test_accuracy": accuracy, "runs": len(runs_),
                            "epoch_seconds": [r["epoch_seconds"] for r in runs_]})
            table.add_row(model, name, f"{per_epoch:.2f}", f"{per_epoch / base:.2f}" if base else "—",
                          f"{process:.1f}", f"{process / base_process:.2f}" if base_process else "—",
                          f"{gflops:.1f}" if gflops else "—", f"{share * 100:.1f}%" if share else "—",
                          f"{accuracy * 100:.2f}%", str(len(runs_)))
    console.print(table)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"cpu": peak.model, "isa": peak.isa, "cores": peak.cores,
                                                    "peak_gflops": peak.gflops, "rows": summary}, indent=1))


if __name__ == "__main__":
    main()
