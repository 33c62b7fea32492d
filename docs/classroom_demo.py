"""The classroom page, end to end, as the tutorial shows it: draw digits, save them, test on them.

Starts ``zoo serve COMPARE_DIR --collect-into DIR`` on a free port, opens the page in Chromium
(Playwright), draws each digit 0–9 with mouse strokes three times (three sizes and places, as
three pupils might), presses "this is a …" after each, screenshots the page with a digit on
it, then re-tests the comparison's models on the thirty drawings with
``zoo compare --from-runs COMPARE_DIR --dataset folder:DIR``.

    pip install -e '.[serve,test]'
    zoo compare mlp baseline-cnn speedrun --epochs 2
    python docs/classroom_demo.py runs/compare-… --collect-into drawn --screenshot docs/img/classroom.png

The strokes are a script's, not a class's: simple, clean shapes. A real class's digits are
more varied; this shows the path, not how well the models read children's handwriting.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

# Each digit as strokes in the unit square (x right, y down), drawn the way most people do.
DIGITS = {
    "0": [[(0.5, 0.15), (0.32, 0.25), (0.26, 0.5), (0.32, 0.75), (0.5, 0.86), (0.68, 0.75), (0.74, 0.5),
           (0.68, 0.25), (0.5, 0.15)]],
    "1": [[(0.4, 0.28), (0.52, 0.15), (0.52, 0.86)]],
    "2": [[(0.27, 0.3), (0.38, 0.18), (0.56, 0.15), (0.7, 0.26), (0.68, 0.42), (0.27, 0.85), (0.76, 0.85)]],
    "3": [[(0.28, 0.2), (0.58, 0.14), (0.72, 0.28), (0.5, 0.48), (0.73, 0.63), (0.64, 0.83), (0.28, 0.85)]],
    "4": [[(0.58, 0.86), (0.58, 0.15), (0.24, 0.62), (0.78, 0.62)]],
    "5": [[(0.7, 0.15), (0.34, 0.15), (0.31, 0.46), (0.55, 0.42), (0.72, 0.58), (0.65, 0.8), (0.3, 0.85)]],
    "6": [[(0.66, 0.15), (0.42, 0.33), (0.3, 0.62), (0.42, 0.85), (0.64, 0.78), (0.66, 0.58), (0.44, 0.52),
           (0.31, 0.64)]],
    "7": [[(0.24, 0.18), (0.76, 0.18), (0.44, 0.86)]],
    "8": [[(0.5, 0.5), (0.3, 0.34), (0.5, 0.15), (0.7, 0.34), (0.5, 0.5), (0.28, 0.68), (0.5, 0.87),
           (0.72, 0.68), (0.5, 0.5)]],
    "9": [[(0.68, 0.36), (0.5, 0.17), (0.32, 0.3), (0.4, 0.5), (0.68, 0.38), (0.64, 0.86)]],
}
# Three pupils: a large centred digit, a small one high on the left, a narrow one low on the right.
HANDS = [(1.0, 0.0, 0.0), (0.6, -0.15, -0.12), (0.75, 0.12, 0.1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def draw(page, strokes, scale, dx, dy) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # a button's click scrolled the page; the pad is at the top
    box = page.locator("#pad").bounding_box()
    size = box["width"]

    def at(x, y):
        return box["x"] + (0.5 + (x - 0.5) * scale + dx) * size, box["y"] + (0.5 + (y - 0.5) * scale + dy) * size

    for stroke in strokes:
        page.mouse.move(*at(*stroke[0]))
        page.mouse.down()
        for (xa, ya), (xb, yb) in zip(stroke, stroke[1:]):
            for k in range(1, 9):
                t = k / 8
                page.mouse.move(*at(xa + (xb - xa) * t, ya + (yb - ya) * t))
        page.mouse.up()


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("compare_dir", type=Path)
    parser.add_argument("--collect-into", type=Path, default=Path("drawn"))
    parser.add_argument("--screenshot", type=Path, default=Path("classroom.png"))
    parser.add_argument("--chromium", default=os.environ.get("ZOO_CHROMIUM") or shutil.which("chromium"))
    args = parser.parse_args()

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "zoo", "serve", str(args.compare_dir), "--port", str(port),
                               "--collect-into", str(args.collect_into)])
    try:
        for _ in range(240):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=args.chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"http://127.0.0.1:{port}/")
            for hand in HANDS:
                for label, strokes in DIGITS.items():
                    draw(page, strokes, *hand)
                    page.wait_for_selector('#pad[data-state="answered"]')  # the finished drawing's answer
                    if label == "3" and hand == HANDS[0]:
                        page.screenshot(path=str(args.screenshot))
                    page.get_by_title(f"This is a {label}").click()
                    page.wait_for_function("document.getElementById('status').textContent.startsWith('Saved')")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    subprocess.run([sys.executable, "-m", "zoo", "compare", "--from-runs", str(args.compare_dir),
                    "--dataset", f"folder:{args.collect_into}"], check=True)


if __name__ == "__main__":
    main()
