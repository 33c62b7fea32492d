"""What a learner waits for: the article's plain script against `zoo train`, start to finish.

Both are run as fresh processes (Python, TensorFlow import, data loading, training,
test evaluation; the zoo also loads its plugins, saves the model, run.json and history
and draws three figures), interleaved, with the order alternating every repetition so
that drift in a noisy machine's speed hits both. Both validate on the test set, as the
article's script does.

    python benchmarks/whole_command.py baseline-cnn --epochs 3 --repeats 5 --data-dir ../shared/data

Prints every run, the medians and their ratio, and each repetition's ratio; --json writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def timed(cmd: list[str]) -> float:
    return timed_output(cmd)[0]


def timed_output(cmd: list[str]) -> tuple[float, str]:
    """Run ``cmd`` as a fresh process: its wall seconds and stdout; its last error line ends the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        lines = (done.stderr or done.stdout).strip().splitlines()
        sys.exit(f"{' '.join(cmd[1:5])} … failed: {lines[-1] if lines else done.returncode}")
    return seconds, done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a seed model with a plain script (plain_scripts.py lists them)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"),
                        help="folder holding mnist.npz (default: ZOO_DATA_DIR)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    if not args.data_dir or not (Path(args.data_dir) / "mnist.npz").is_file():
        sys.exit("give --data-dir DIR (or ZOO_DATA_DIR) holding mnist.npz: the plain script reads that file")

    from rich.console import Console
    from rich.table import Table

    console = Console()
    npz = str(Path(args.data_dir) / "mnist.npz")
    plain_cmd = [sys.executable, str(HERE / "plain_scripts.py"), args.model, "--epochs", str(args.epochs),
                 "--data", npz]
    times = {"plain": [], "zoo": []}
    with tempfile.TemporaryDirectory() as runs:
        zoo_cmd = [sys.executable, "-m", "zoo", "train", args.model, "--epochs", str(args.epochs),
                   "--validate-on", "test", "--data-dir", args.data_dir, "--runs-dir", runs, "--json"]
        for rep in range(args.repeats):
            for side in (("plain", "zoo") if rep % 2 == 0 else ("zoo", "plain")):
                times[side].append(timed(plain_cmd if side == "plain" else zoo_cmd))
                console.print(f"run {rep + 1} {side}: {times[side][-1]:.1f} s", highlight=False)
    median = {side: statistics.median(t) for side, t in times.items()}
    ratio = median["zoo"] / median["plain"]
    table = Table(title=f"{args.model}, {args.epochs} epochs, whole commands (s), {args.repeats} interleaved runs",
                  title_justify="left")
    for col in ("command", *(f"run {i + 1}" for i in range(args.repeats)), "median"):
        table.add_column(col, justify="left" if col == "command" else "right")
    table.add_row("plain script", *(f"{t:.1f}" for t in times["plain"]), f"{median['plain']:.1f}")
    table.add_row("zoo train", *(f"{t:.1f}" for t in times["zoo"]), f"{median['zoo']:.1f}")
    console.print(table)
    colour = "green" if ratio <= 1.0 else "red"
    # Runs of one repetition ran back to back, so they share the machine's phase: pair them.
    pair_ratios = [z / p for z, p in zip(times["zoo"], times["plain"])]
    wins = sum(r < 1 for r in pair_ratios)
    console.print(f"zoo ÷ plain (medians): [{colour}]{ratio:.3f}[/]; per repetition "
                  f"{', '.join(f'{r:.2f}' for r in pair_ratios)} (zoo faster in {wins} of {len(pair_ratios)})",
                  highlight=False)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"model": args.model, "epochs": args.epochs, "runs": times,
                                                    "median": median, "ratio": round(ratio, 4),
                                                    "pair_ratios": [round(r, 4) for r in pair_ratios]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
