"""Time to accuracy: run `zoo train speedrun` (or `best`) as whole commands over several seeds.

Prints, per seed and as medians: test accuracy, training wall time (what the model
costs) and the whole command's wall time (what the learner waits for, Python and
TensorFlow start-up included).

    python benchmarks/speedrun.py --seeds 5
    python benchmarks/speedrun.py --model best --target 0.996 --seeds 3
    python benchmarks/speedrun.py --seeds 3 -- --epochs 3 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="speedrun")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to count seeds against")
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("extra", nargs="*", help="more `zoo train` options, after --")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for seed in range(1, args.seeds + 1):
            cmd = [sys.executable, "-m", "zoo", "train", args.model, "--seed", str(seed), "--runs-dir", runs,
                   "--json", *args.extra]
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode:
                sys.exit(f"seed {seed} failed: {done.stderr.strip().splitlines()[-1]}")
            record = json.loads(done.stdout)
            rows.append({"seed": seed, "test_accuracy": record["test_accuracy"],
                         "training_seconds": record["training_seconds"], "command_seconds": round(wall, 2),
                         "epochs": record["hyperparameters"]["epochs"],
                         "batch_size": record["hyperparameters"]["batch_size"]})
            console.print(f"seed {seed}: {record['test_accuracy'] * 100:.2f}% in {record['training_seconds']:.1f} s "
                          f"of training, {wall:.1f} s whole command", highlight=False)
    median = {k: statistics.median(r[k] for r in rows) for k in ("test_accuracy", "training_seconds", "command_seconds")}
    table = Table(title=f"zoo train {args.model} {' '.join(args.extra)} — median of {len(rows)} seeds",
                  title_justify="left")
    for col in ("test accuracy", "training s", "whole command s", f"seeds ≥ {args.target * 100:.1f}%"):
        table.add_column(col, justify="right")
    table.add_row(f"{median['test_accuracy'] * 100:.2f}%", f"{median['training_seconds']:.1f}",
                  f"{median['command_seconds']:.1f}", f"{sum(r['test_accuracy'] >= args.target for r in rows)}/{len(rows)}")
    console.print(table)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"runs": rows, "median": median}, indent=2) + "\n")


if __name__ == "__main__":
    main()
