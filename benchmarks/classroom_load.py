"""A class at once: thirty students drawing, each stroke a prediction, against `zoo serve`.

Starts the classroom server in this process (uvicorn on a free local port, the pretrained
models it serves with no arguments, or the runs given), then has CLIENTS clients each send
REQUESTS drawings (real MNIST test digits as 280×280 canvas PNGs) as fast as answers come
back, all at once. It measures every request's latency and the requests per second, with
micro-batching on and off, side by side in alternating rounds, and names the CPU.

    python benchmarks/classroom_load.py --clients 30 --requests 10 --rounds 2
    python benchmarks/classroom_load.py --models mlp speedrun baseline-cnn --detail 1

`--detail 1` asks for the preprocessing steps and feature maps too (what a page with its
details open asks); the default is what a phone asks for while drawing (the answers).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def canvas_png(digit: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(255 - digit).resize((280, 280), Image.BILINEAR).save(buf, format="PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_keep_alive=5, limit_concurrency=200))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread


def hammer(port: int, bodies: list[bytes], clients: int, requests: int, detail: int) -> dict:
    """Every client sends ``requests`` drawings one after another; all clients at once."""
    import httpx

    url = f"http://127.0.0.1:{port}/api/predict?detail={detail}"
    latencies, failures = [], []
    lock = threading.Lock()
    go = threading.Barrier(clients)

    def client(k: int):
        with httpx.Client(headers={"Content-Type": "image/png"}, timeout=60) as http:
            go.wait()
            for i in range(requests):
                body = bodies[(k * requests + i) % len(bodies)]
                t0 = time.perf_counter()
                reply = http.post(url, content=body)
                took = time.perf_counter() - t0
                with lock:
                    (latencies if reply.status_code == 200 else failures).append(took)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {"n": len(ordered), "failed": len(failures), "p50": statistics.median(ordered),
            "p90": ordered[int(0.9 * (len(ordered) - 1))], "max": ordered[-1], "per_second": len(ordered) / wall}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=["mlp", "speedrun", "baseline-cnn"],
                        help="pretrained names or run folders (default: three pretrained models)")
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--requests", type=int, default=10, help="drawings each client sends")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each setting")
    parser.add_argument("--detail", type=int, choices=(0, 1), default=0)
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from zoo import api
    from zoo import data as datamod
    from zoo.classroom import load_models, make_app
    from zoo.machine import this_cpu
    from zoo.plugins import get_zoo

    console = Console()
    cpu = this_cpu()
    console.print(f"CPU: {cpu.model} ({cpu.isa}, {cpu.cores} cores); {args.clients} clients × {args.requests} "
                  f"drawings, detail={args.detail}", highlight=False)
    api._registry()
    arrays = datamod.load(get_zoo().dataset("mnist"), args.data_dir)
    bodies = [canvas_png(arrays.x_test[i]) for i in range(200)]
    served = load_models(api._run_folders(args.models))
    console.print(f"Serving {', '.join(s.label for s in served)}", highlight=False)
    results = {True: [], False: []}
    for round_ in range(args.rounds):
        for batching in ((True, False) if round_ % 2 == 0 else (False, True)):
            port = free_port()
            server, thread = start(make_app(served=served, batching=batching), port)
            hammer(port, bodies[:5], min(args.clients, 5), 1, args.detail)  # warm: traced graphs, threads
            results[batching].append(hammer(port, bodies, args.clients, args.requests, args.detail))
            server.should_exit = True
            thread.join(timeout=10)
    table = Table(title="Classroom load: latency per request (s) and throughput", title_justify="left")
    for column in ("batching", "round", "requests", "failed", "p50", "p90", "max", "requests/s"):
        table.add_column(column, justify="left" if column == "batching" else "right")
    for batching in (True, False):
        for i, r in enumerate(results[batching]):
            table.add_row("on" if batching else "off", str(i + 1), str(r["n"]), str(r["failed"]), f"{r['p50']:.3f}",
                          f"{r['p90']:.3f}", f"{r['max']:.3f}", f"{r['per_second']:.1f}")
    console.print(table)
    on, off = ([statistics.median(r[k] for r in results[b]) for k in ("p90", "per_second")] for b in (True, False))
    console.print(f"Medians over rounds: p90 {on[0]:.3f} s batched against {off[0]:.3f} s alone "
                  f"({off[0] / on[0]:.2f}× lower); {on[1]:.1f} against {off[1]:.1f} requests/s "
                  f"({on[1] / off[1]:.2f}×), on {cpu.model}, {cpu.cores} cores.", highlight=False)


if __name__ == "__main__":
    main()
