"""One comparison, three ways: in process, and on a Dask LocalCluster of 1×T and N×1.

Each is a fresh `zoo compare` process (start-up, data, every job, the table), run in
turn, in an order that rotates every repetition so that drift in a noisy machine's speed
hits all of them. Prints each wall time, the ratio to the local executor in the same
repetition, the training seconds summed over the jobs (the work), what Dask's start and
the data's transfer cost, and whether every configuration gave the same accuracies.

    python benchmarks/executors.py mlp baseline-cnn speedrun --seeds 4 --epochs 1 --repeats 1

Needs the dask extra (pip install -e '.[dask]').
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(models, extra, runs_dir) -> dict:
    cmd = [sys.executable, "-m", "zoo", "compare", *models, *extra, "--runs-dir", str(runs_dir), "--json"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        lines = done.stderr.strip().splitlines()
        sys.exit(f"{' '.join(cmd[3:])} failed: {lines[-1] if lines else done.returncode}")
    rows = json.loads(done.stdout)
    transfer = re.search(r"Data: (\d+) MB to each of (\d+) worker\(s\) in ([\d.]+) s", done.stderr)
    return {"wall": wall, "accuracies": {r["model"]: r["accuracies"] for r in rows},
            "training": sum(json.loads((Path(d) / "run.json").read_text())["training_seconds"]
                            for r in rows for d in r["run_dirs"]),
            "transfer": float(transfer.group(3)) if transfer else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--seeds", default="4")
    parser.add_argument("--epochs", default="1")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    from zoo.machine import usable_cores

    cores = usable_cores()
    base = ["--seeds", args.seeds, "--epochs", args.epochs]
    configs = {
        "local": base,
        f"dask 1×{cores}": [*base, "--executor", "dask", "--workers", "1", "--threads-per-worker", str(cores)],
        f"dask {cores}×1": [*base, "--executor", "dask", "--workers", str(cores), "--threads-per-worker", "1"],
    }
    results = {name: [] for name in configs}
    names = list(configs)
    with tempfile.TemporaryDirectory() as runs:
        for repeat in range(args.repeats):
            order = names[repeat % len(names):] + names[:repeat % len(names)]
            for name in order:
                result = run(args.models, configs[name], Path(runs) / f"{repeat}-{name.replace(' ', '_')}")
                results[name].append(result)
                print(f"repeat {repeat + 1} {name:10s} {result['wall']:7.1f} s wall, "
                      f"{result['training']:7.1f} s of training in the jobs"
                      + (f", data sent in {result['transfer']:.1f} s" if result["transfer"] is not None else ""),
                      flush=True)
    local = [r["wall"] for r in results["local"]]
    print(f"\n{' '.join(args.models)}, --seeds {args.seeds} --epochs {args.epochs}, {cores} usable cores")
    for name in names:
        walls = [r["wall"] for r in results[name]]
        ratios = [w / lw for w, lw in zip(walls, local)]
        same = all(r["accuracies"] == results["local"][i]["accuracies"] for i, r in enumerate(results[name]))
        print(f"{name:10s} median {statistics.median(walls):7.1f} s   ÷ local {statistics.median(ratios):.2f}   "
              f"same accuracies as local: {'yes' if same else 'NO'}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"cores": cores, "models": args.models, "seeds": args.seeds,
                                                    "epochs": args.epochs, "results": results}, indent=2))


if __name__ == "__main__":
    main()
