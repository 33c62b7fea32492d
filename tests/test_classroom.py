"""The classroom page (`zoo serve`): its JSON API with real PNGs and bad ones, and the page in a
real browser: strokes drawn with the mouse, every model's top 3, a digit saved into a folder."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")


@pytest.fixture(scope="module")
def served(mnist_runs):
    from zoo.classroom import load_models

    return load_models([mnist_runs])


def client(served, collect_into=None):
    from starlette.testclient import TestClient

    from zoo.classroom import make_app

    return TestClient(make_app(served=served, collect_into=collect_into))


def png_bytes(digit: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(255 - digit).resize((280, 280), Image.BILINEAR).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(side: int = 100_000) -> bytes:
    """A tiny PNG whose header claims side × side pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_the_api_answers_every_models_top3_with_the_steps(served, mnist):
    app = client(served)
    listed = app.get("/api/models").json()
    assert [m["model"] for m in listed["models"]] == ["mlp", "baseline-cnn"]
    assert listed["classes"] == [str(d) for d in range(10)] and listed["collecting"] is False
    hits = 0
    for index in range(10):
        reply = app.post("/api/predict", content=png_bytes(mnist.x_test[index]), headers={"Content-Type": "image/png"})
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert [m["model"] for m in answer["models"]] == ["mlp", "baseline-cnn"]
        for model in answer["models"]:
            digits, probabilities = zip(*model["top3"])
            assert len(set(digits)) == 3 and list(probabilities) == sorted(probabilities, reverse=True)
            assert 0 < sum(probabilities) <= 1.000001
        hits += answer["models"][1]["top3"][0][0] == int(mnist.y_test[index])
        assert answer["models"][0]["feature_maps"] is None and answer["models"][1]["feature_maps"].startswith(
            "data:image/png;base64,")
    assert hits >= 7  # real digits through the canvas's size and polarity, read by a trained CNN
    assert [s["step"] for s in answer["steps"]] == ["ink", "cropped", "fitted", "centred"]
    import base64

    final = Image.open(io.BytesIO(base64.b64decode(answer["preprocessed"].split(",", 1)[1])))
    assert final.size == (28, 28)
    # the same image as a multipart form field
    form = app.post("/api/predict", files={"image": ("digit.png", png_bytes(mnist.x_test[0]), "image/png")})
    assert form.status_code == 200 and form.json()["models"][0]["top3"] == answer_for(app, mnist.x_test[0])


def answer_for(app, digit):
    return app.post("/api/predict", content=png_bytes(digit)).json()["models"][0]["top3"]


def test_bad_uploads_get_a_one_line_4xx_and_the_server_stays_up(served, mnist, tmp_path):
    from zoo.classroom import MAX_UPLOAD_BYTES

    app = client(served, collect_into=tmp_path / "class")
    cases = {
        "not an image": (app.post("/api/predict", content=b"hello, not a png"), 400, "not an image Pillow can read"),
        "a decompression bomb": (app.post("/api/predict", content=bomb_png()), 400, "far more pixels|megapixels"),
        "an oversized body": (app.post("/api/predict", content=b"\0" * (MAX_UPLOAD_BYTES + 1)), 413, "larger than"),
        "a blank drawing": (app.post("/api/predict", content=png_bytes(np.zeros((28, 28), np.uint8))), 400,
                            "blank image"),
        "no body": (app.post("/api/predict", content=b""), 400, "empty"),
        "a form without image": (app.post("/api/predict", files={"other": ("a.png", b"x", "image/png")}), 415,
                                 "field named image"),
        "a label of 11": (app.post("/api/collect?label=11", content=png_bytes(mnist.x_test[0])), 422,
                          "not one of the models' classes"),
        "a path as label": (app.post("/api/collect?label=../../x", content=png_bytes(mnist.x_test[0])), 422,
                            "not one of the models' classes"),
    }
    import re

    for what, (reply, status, text) in cases.items():
        assert reply.status_code == status, (what, reply.status_code, reply.text)
        error = reply.json()["error"]
        assert re.search(text, error) and "\n" not in error and "Traceback" not in error, (what, error)
    assert not list(tmp_path.rglob("*.png"))  # nothing was saved by any of them
    assert app.post("/api/predict", content=png_bytes(mnist.x_test[1])).status_code == 200  # still up
    off = client(served).post("/api/collect?label=3", content=png_bytes(mnist.x_test[0]))
    assert off.status_code == 409 and "--collect-into" in off.json()["error"]


def test_ten_collected_digits_are_a_dataset_zoo_evaluate_reads(served, mnist_runs, mnist, tmp_path, cli):
    app = client(served, collect_into=tmp_path / "class")
    for digit in range(10):
        index = int(np.flatnonzero(mnist.y_test == digit)[1])
        reply = app.post(f"/api/collect?label={digit}", content=png_bytes(mnist.x_test[index]))
        assert reply.status_code == 200, reply.text
        saved = reply.json()["saved"]
        assert saved.startswith(f"{digit}/") and (tmp_path / "class" / saved).is_file() and reply.json()["in_class"] == 1
    result = cli("evaluate", mnist_runs / "baseline-cnn", "--dataset", f"folder:{tmp_path / 'class'}", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["test_images"] == 10 and 0.5 <= answer["test_accuracy"] <= 1.0


# -- the page in a real browser -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(mnist_runs, tmp_path_factory):
    """`zoo serve` as a user starts it, in its own process, on a free port."""
    folder = tmp_path_factory.mktemp("collected")
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "zoo", "serve", str(mnist_runs), "--port", str(port),
                                "--collect-into", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"zoo serve exited: {process.stdout.read()}")
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("zoo serve did not start within 120 s")
    yield {"url": f"http://127.0.0.1:{port}/", "folder": folder, "process": process}
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _draw_a_seven(page):
    box = page.locator("#pad").bounding_box()
    x0, y0, w = box["x"], box["y"], box["width"]
    strokes = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)], [(0.35, 0.5), (0.65, 0.5)]]
    for stroke in strokes:
        page.mouse.move(x0 + stroke[0][0] * w, y0 + stroke[0][1] * w)
        page.mouse.down()
        for (xa, ya), (xb, yb) in zip(stroke, stroke[1:]):
            for t in np.linspace(0, 1, 12)[1:]:
                page.mouse.move(x0 + (xa + (xb - xa) * t) * w, y0 + (ya + (yb - ya) * t) * w)
        page.mouse.up()


@pytest.mark.browser
def test_draw_on_the_page_and_every_model_answers_then_save_the_digit(server, tmp_path):
    from conftest import chromium_path

    playwright_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install -e '.[test]'")
    executable = chromium_path()
    if executable is None:
        pytest.skip("needs Chromium: apt-get install -y chromium")
    shots = Path(os.environ.get("ZOO_SCREENSHOTS") or tmp_path)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable)
        for width, name in ((1280, "classroom-desktop.png"), (390, "classroom-phone.png")):
            page = browser.new_page(viewport={"width": width, "height": 900})
            problems = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.goto(server["url"])
            assert page.locator(".model").count() == 2
            _draw_a_seven(page)
            page.wait_for_selector('#pad[data-state="answered"]', timeout=30_000)  # the whole drawing's answer
            for card in ("mlp", "baseline-cnn"):
                assert page.locator(f'.model[data-model="{card}"] .top3 li').count() == 3
            assert page.locator("#steps img").count() == 4
            assert page.locator('.model[data-model="baseline-cnn"] .maps img').is_visible()
            bars = page.locator(".top3 li").count()
            assert bars == 6
            page.screenshot(path=str(shots / name), full_page=True)
            if width == 1280:
                page.get_by_title("This is a 7").click()
                page.wait_for_function("document.getElementById('status').textContent.startsWith('Saved')")
                saved = list((server["folder"] / "7").glob("*.png"))
                assert len(saved) == 1
                assert page.locator(".top3 li").count() == 0  # the pad is cleared for the next digit
            assert not problems, problems
            page.close()
        browser.close()
    assert (shots / "classroom-phone.png").stat().st_size > 5_000


@pytest.mark.process
def test_a_port_in_use_or_a_missing_folder_is_one_line_before_models_load(mnist_runs, cli):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = cli("serve", mnist_runs, "--port", busy.getsockname()[1])
    assert result.exit_code != 0 and "cannot listen on 127.0.0.1:" in result.stderr
    assert "give another --port" in result.stderr and "Traceback" not in result.stderr
    missing = cli("serve", mnist_runs / "nothing-here")
    assert missing.exit_code != 0 and "no such run directory" in missing.stderr


@pytest.mark.unit
def test_a_class_name_that_is_no_folder_name_is_refused_not_nested(mnist, tmp_path):
    from zoo.classroom import collect
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="cannot name a folder|T-shirt/top"):
        collect(tmp_path, "T-shirt/top", png_bytes(mnist.x_test[0]), ["T-shirt/top", "Trouser"])
    assert not any(tmp_path.iterdir())
    saved, count = collect(tmp_path, "Trouser", png_bytes(mnist.x_test[0]), ["T-shirt/top", "Trouser"])
    assert saved.startswith("Trouser/") and count == 1
