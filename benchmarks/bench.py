"""Is the zoo as fast as the plain scripts, and how close to the CPU's limit?

For each seed model and recipe, times N epochs of (a) the article's script in plain
Keras (``plain_scripts.py``) and (b) the zoo's trainer, on the same images, in one
process, interleaved (the order alternates every repetition, so drift in a noisy
machine's speed hits both). Prints seconds per epoch for both, their ratio, the
achieved GFLOP/s and the fraction of this CPU's fp32 peak, as a table and as JSON.

    python benchmarks/bench.py --epochs 3 --repeats 2 --json bench.json
    python benchmarks/bench.py 'baseline-cnn' --limit 20000

Seconds per epoch are the median over epochs 2..N (epoch 1 also pays for tracing),
then the fastest repetition: on a shared machine noise only ever adds time, so the
minimum is the steadiest estimate of what a model costs. Every repetition is in the JSON. FLOPs per epoch are 6 × MACs per image
for each training image (forward + backward) plus 2 × MACs for each validation image.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))


def cpu_peak_gflops() -> tuple[float | None, str]:
    """This CPU's fp32 peak from its own flags and clock (zoo.machine), and how it was derived."""
    from zoo.machine import this_cpu

    cpu = this_cpu()
    return cpu.gflops, cpu.derivation + (f" — a guess: {cpu.guess}" if cpu.guess else "")


def machine_peak(device: str, given: float | None = None) -> tuple[float | None, str]:
    """The peak to measure against: the one given, else the CPU's; None on an accelerator,
    where the CPU formula says nothing (the benchmark runs the same, with that column empty)."""
    if given:
        return given, "given with --peak-gflops"
    if device != "CPU":
        return None, f"unknown for {device} (give --peak-gflops)"
    return cpu_peak_gflops()


def steady(seconds: list[float]) -> float:
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def run_zoo(zoo, arch, recipe, prepared, epochs, seed) -> dict:
    """The zoo's trainer, as `zoo train` runs it; returns the run record."""
    from rich.console import Console

    from zoo.jobs import make_jobs, run_job
    from zoo.progress import TrainingDisplay
    from zoo.types import Options

    job = make_jobs([arch], Options(epochs=epochs), seeds=[seed], recipe=recipe)[0]
    # The display users see, drawn into a string: its cost is part of the zoo's cost.
    display = TrainingDisplay(console=Console(file=io.StringIO(), width=120))
    with tempfile.TemporaryDirectory() as tmp, display:
        return run_job(job, prepared, Path(tmp), display.on_event, registry=zoo).to_dict()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("patterns", nargs="*", help="model names or patterns (default: all seeds)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="train on a stratified subset")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--peak-gflops", type=float, default=None, help="override the estimated fp32 peak")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--backend", default=None, choices=("tensorflow", "jax", "torch"),
                        help="Keras backend for both sides (default: KERAS_BACKEND, else tensorflow)")
    args = parser.parse_args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend  # before anything imports Keras

    from rich.console import Console
    from rich.table import Table

    from zoo.anatomy import architecture_stats
    from zoo.backend import describe
    from zoo.jobs import prepare
    from zoo.keras_glue import import_backend_quietly
    from zoo.plugins import get_zoo
    from zoo.registry import matches
    from zoo.types import Options

    import_backend_quietly()
    import plain_scripts

    console = Console()
    env = describe()
    peak, derivation = machine_peak(env["device"], args.peak_gflops)
    zoo = get_zoo()
    prepared = prepare(zoo, Options(limit=args.limit, data_dir=args.data_dir), split_seed=args.seed)
    split = prepared.split
    arrays = prepared.arrays
    x_train, y_train = arrays.x_train[split.train], arrays.y_train[split.train]
    x_val, y_val = arrays.x_train[split.val], arrays.y_train[split.val]
    console.print(f"{env['backend']} {env.get(env['backend'], '')} backend, Keras {env['keras']}, on {env['device']}; "
                  f"{len(x_train):,} training + {len(x_val):,} validation images; {args.epochs} epochs × "
                  f"{args.repeats} repetitions; fp32 peak "
                  f"{f'{peak:.0f} GFLOP/s = ' if peak else ''}{derivation}", highlight=False)

    keys = [k for k in plain_scripts.SCRIPTS if matches(k[0], args.patterns)]
    rows = []
    for model_name, recipe in keys:
        arch = zoo.architecture(model_name)
        macs = architecture_stats(arch).macs
        plain_runs, zoo_runs = [], []
        for rep in range(args.repeats):
            order = ("plain", "zoo") if rep % 2 == 0 else ("zoo", "plain")
            for side in order:
                if side == "plain":
                    model, seconds = plain_scripts.run((model_name, recipe), x_train, y_train, x_val, y_val,
                                                       args.epochs, args.seed)
                    plain_params = model.count_params()
                    plain_runs.append(steady(seconds))
                else:
                    record = run_zoo(zoo, arch, recipe, prepared, args.epochs, args.seed)
                    zoo_runs.append(steady(record["epoch_seconds"]))
                console.print(f"  {model_name}/{recipe} rep {rep + 1} {side}: "
                              f"{(plain_runs if side == 'plain' else zoo_runs)[-1]:.2f} s/epoch", highlight=False)
        if plain_params != record["params"]:
            raise SystemExit(f"{model_name}: plain script has {plain_params:,} params, the plugin {record['params']:,}")
        plain_s, zoo_s = min(plain_runs), min(zoo_runs)
        flops = 6 * macs * len(x_train) + 2 * macs * len(x_val)
        rows.append({
            "model": model_name, "recipe": recipe, "macs": macs,
            "plain_seconds_per_epoch": round(plain_s, 3), "zoo_seconds_per_epoch": round(zoo_s, 3),
            "ratio": round(zoo_s / plain_s, 3),
            "plain_gflops": round(flops / plain_s / 1e9, 1), "zoo_gflops": round(flops / zoo_s / 1e9, 1),
            "zoo_peak_fraction": round(flops / zoo_s / 1e9 / peak, 3) if peak else None,
            "plain_runs": [round(s, 3) for s in plain_runs], "zoo_runs": [round(s, 3) for s in zoo_runs],
        })

    table = Table(title=f"Seconds per epoch, plain Keras script vs the zoo ({platform.node()})", title_justify="left")
    for col in ("model / recipe", "MACs", "plain s/epoch", "zoo s/epoch", "zoo ÷ plain", "zoo GFLOP/s",
                "of fp32 peak"):
        table.add_column(col, justify="left" if col.startswith("model") else "right")
    for r in rows:
        ratio = f"[green]{r['ratio']:.2f}[/]" if r["ratio"] <= 1.0 else f"[red]{r['ratio']:.2f}[/]"
        table.add_row(f"{r['model']} / {r['recipe']}", f"{r['macs']:,}", f"{r['plain_seconds_per_epoch']:.2f}",
                      f"{r['zoo_seconds_per_epoch']:.2f}", ratio, f"{r['zoo_gflops']:.0f}",
                      f"{r['zoo_peak_fraction'] * 100:.0f}%" if r["zoo_peak_fraction"] is not None else "—")
    console.print(table)
    result = {"environment": env, "peak_gflops": peak, "peak_derivation": derivation, "epochs": args.epochs,
              "repeats": args.repeats, "train_images": len(x_train), "validation_images": len(x_val), "rows": rows}
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"JSON written to {args.json_path}")


if __name__ == "__main__":
    main()
