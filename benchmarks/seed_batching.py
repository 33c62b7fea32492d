"""Ten seeds for the price of a few? Seed batching measured, whole commands.

For each model, three commands, each a fresh process (Python, TensorFlow import, data,
training, test evaluation, saving, figures: what a user waits for), interleaved with the
order rotating every repetition so that a noisy machine's drift hits all three:

* ``zoo compare MODEL``                                  one seed
* ``zoo compare MODEL --seeds 10``                       ten seeds, batched where it pays
* ``zoo compare MODEL --seeds 10 --no-seed-batching``    ten seeds, one after another

    python benchmarks/seed_batching.py mlp speedrun baseline-cnn --repeats 2 --data-dir ../shared/data

Prints every run, the medians, the ratios to one seed, the share of the CPU's peak the
training reached (from run.json), and where a batched command's time went (first epoch,
which includes building the computation, the other epochs, and everything else). The
CPU is named: seconds mean nothing without it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from whole_command import timed_output  # this folder: the script's own

COMMANDS = {"one seed": [], "10 seeds batched": ["--seeds", "10"],
            "10 seeds one after another": ["--seeds", "10", "--no-seed-batching"]}


def run(cmd: list[str]) -> tuple[float, list[dict]]:
    seconds, stdout = timed_output(cmd)
    rows = json.loads(stdout)
    records = [json.loads((Path(d) / "run.json").read_text()) for row in rows for d in row["run_dirs"]]
    return seconds, records


def where_time_went(seconds: float, records: list[dict]) -> str:
    batching = records[0]["execution"].get("seed_batching", {})
    if batching.get("batched"):
        epochs = batching["epoch_seconds"]
        rest = seconds - batching["seconds"]
        return (f"first epoch {epochs[0]:.1f} s (includes tracing the {len(batching['seeds'])}-branch step), "
                f"other epochs {sum(epochs[1:]):.1f} s, everything else {rest:.1f} s")
    trained = sum(r["training_seconds"] for r in records)
    return f"training {trained:.1f} s, everything else {seconds - trained:.1f} s" + (
        f" (not batched: {batching['reason']})" if batching.get("reason") else "")


def share_of_peak(records: list[dict]) -> float | None:
    """The last epoch's share (the first one also builds the computation), median over the seeds."""
    shares = [r["cost"].get("share_of_peak") for r in records if r.get("cost")]
    shares = [s[-1] for s in shares if s]
    return statistics.median(shares) if shares else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, help="instead of each recipe's own")
    parser.add_argument("--limit", type=int, help="train on this many images (default: all)")
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from zoo.machine import this_cpu

    console = Console()
    cpu = this_cpu()
    console.print(f"CPU: {cpu.model} ({cpu.isa}, {cpu.cores} cores, fp32 peak {cpu.gflops:.0f} GFLOP/s)",
                  highlight=False)
    extra = [*(["--epochs", str(args.epochs)] if args.epochs else []),
             *(["--limit", str(args.limit)] if args.limit else []),
             *(["--data-dir", args.data_dir] if args.data_dir else [])]
    results = {}
    with tempfile.TemporaryDirectory() as runs:
        for model in args.models:
            times = {name: [] for name in COMMANDS}
            notes = {}
            names = list(COMMANDS)
            for rep in range(args.repeats):
                order = names[rep % 3:] + names[:rep % 3]
                for name in order:
                    cmd = [sys.executable, "-m", "zoo", "compare", model, *COMMANDS[name], *extra,
                           "--runs-dir", runs, "--json"]
                    seconds, records = run(cmd)
                    times[name].append(seconds)
                    notes[name] = (share_of_peak(records), where_time_went(seconds, records))
                    console.print(f"{model} run {rep + 1} {name}: {seconds:.1f} s", highlight=False)
            median = {name: statistics.median(t) for name, t in times.items()}
            table = Table(title=f"{model}: whole commands (s), {args.repeats} interleaved runs, {cpu.model} "
                                f"{cpu.isa}, {cpu.cores} cores", title_justify="left")
            for col in ("command", "runs", "median", "÷ one seed", "share of peak", "where the time went"):
                table.add_column(col, justify="left" if col in ("command", "where the time went") else "right")
            for name in COMMANDS:
                share = notes[name][0]
                table.add_row(name, ", ".join(f"{t:.1f}" for t in times[name]), f"{median[name]:.1f}",
                              f"{median[name] / median['one seed']:.2f}",
                              f"{share:.1%}" if share is not None else "—", notes[name][1])
            console.print(table)
            speedup = median["10 seeds one after another"] / median["10 seeds batched"]
            console.print(f"{model}: ten seeds batched take {median['10 seeds batched'] / median['one seed']:.2f}× "
                          f"one seed's wall time (one after another: "
                          f"{median['10 seeds one after another'] / median['one seed']:.2f}×); batching is "
                          f"{speedup:.2f}× faster", highlight=False)
            results[model] = {"times": times, "median": median, "notes": notes}
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"cpu": cpu.model, "isa": cpu.isa, "cores": cpu.cores,
                                                    "results": results}, indent=1))


if __name__ == "__main__":
    main()
