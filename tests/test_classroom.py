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


def client(served, collect_into=None, **options):
    """The classroom app in-process, as the page reaches it: this machine's Host, and the page's
    token and Origin on every request that changes anything."""
    from starlette.testclient import TestClient

    from zoo.classroom import make_app

    app = make_app(served=served, collect_into=collect_into, **options)
    return TestClient(app, base_url="http://localhost",
                      headers={"X-Zoo-Token": app.state.token, "Origin": "http://localhost"})


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
    assert listed["batching"] is True
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


def _browser(tmp_path):
    from conftest import chromium_path

    playwright_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install -e '.[test]'")
    executable = chromium_path()
    if executable is None:
        pytest.skip("needs Chromium: apt-get install -y chromium")
    return playwright_api, executable, Path(os.environ.get("ZOO_SCREENSHOTS") or tmp_path)


def _watch(page):
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    return problems


@pytest.mark.browser
def test_draw_on_the_page_and_every_model_answers_then_save_the_digit(server, tmp_path):
    playwright_api, executable, shots = _browser(tmp_path)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems = _watch(page)
        page.goto(server["url"])
        assert page.locator(".model").count() == 2
        page.locator("#detail summary").click()  # the preprocessing and feature maps, on demand
        _draw_a_seven(page)
        page.wait_for_selector('#pad[data-state="answered"]', timeout=30_000)  # the whole drawing's answer
        for card in ("mlp", "baseline-cnn"):
            assert page.locator(f'.model[data-model="{card}"] .top3 li').count() == 3
            assert page.locator(f'.model[data-model="{card}"] .answer').inner_text().strip() != ""
        assert page.locator("#steps img").count() == 4
        assert page.locator('.model[data-model="baseline-cnn"] .maps img').is_visible()
        page.screenshot(path=str(shots / "classroom-desktop.png"), full_page=True)
        page.get_by_title("This is a 7: save it for the class's test set").click()
        page.wait_for_function("document.getElementById('status').textContent.startsWith('Saved')")
        assert len(list((server["folder"] / "7").glob("*.png"))) == 1
        assert page.locator(".top3 li").count() == 0  # the pad is cleared for the next digit
        assert not problems, problems
        browser.close()


@pytest.mark.browser
def test_on_a_phone_the_pad_and_every_answer_share_one_screen(server, tmp_path):
    playwright_api, executable, shots = _browser(tmp_path)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable)
        page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        problems = _watch(page)
        page.goto(server["url"])
        _draw_a_seven(page)
        page.wait_for_selector('#pad[data-state="answered"]', timeout=30_000)
        assert page.evaluate("window.scrollY") == 0
        for element in ["#pad", *[f'.model[data-model="{m}"] .answer' for m in ("mlp", "baseline-cnn")],
                        '#labels button[data-label="9"]']:
            box = page.locator(element).bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844, (element, box)
            assert page.locator(element).inner_text() if "answer" in element else True
        page.screenshot(path=str(shots / "classroom-phone.png"))
        assert not problems, problems
        browser.close()
    assert (shots / "classroom-phone.png").stat().st_size > 5_000


@pytest.mark.browser
def test_the_projector_shows_the_class_view_as_phones_save_drawings(server, tmp_path):
    playwright_api, executable, shots = _browser(tmp_path)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable)
        projector = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
        problems = _watch(projector)
        projector.goto(server["url"] + "projector")
        assert projector.locator("html.projector").count() == 1
        size = projector.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert size >= 22  # large type for the back of the room
        before = projector.locator("#class-count").inner_text()
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
        phone.goto(server["url"])
        for _ in range(2):
            _draw_a_seven(phone)
            phone.wait_for_selector('#pad[data-state="answered"]', timeout=30_000)
            phone.locator('#labels button[data-label="7"]').click()
            phone.wait_for_function("document.getElementById('status').textContent.startsWith('Saved')")
        projector.wait_for_function("document.querySelectorAll('#class-models tr').length === 2", timeout=15_000)
        projector.wait_for_function("document.getElementById('class-count').textContent.includes('drawings saved')",
                                    timeout=15_000)
        assert projector.locator("#class-count").inner_text() != before
        rows = projector.locator("#class-models tr").all_inner_texts()
        assert all(" of " in row and "%" in row for row in rows)  # right of n, accuracy and its interval
        projector.screenshot(path=str(shots / "classroom-projector.png"))
        assert not problems, problems
        browser.close()


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


# -- a class, not a student -----------------------------------------------------------------------
def test_a_hundred_concurrent_collects_leave_as_many_files_as_saved_answers(served, mnist, tmp_path):
    """Two saves in one second once picked one name and the second overwrote the first."""
    from concurrent.futures import ThreadPoolExecutor

    app = client(served, collect_into=tmp_path / "class")
    body = png_bytes(mnist.x_test[0])
    with ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(lambda _: app.post("/api/collect?label=7", content=body), range(100)))
    saved = [r.json()["saved"] for r in replies if r.status_code == 200]
    assert len(saved) == 100 and len(set(saved)) == 100
    files = list((tmp_path / "class" / "7").glob("*.png"))
    assert len(files) == 100 and not list((tmp_path / "class").rglob("*.partial"))
    # stored small: the models see 28×28; a 280×280 canvas is kept at 140×140 at most
    with Image.open(files[0]) as im:
        assert max(im.size) <= 140 and im.mode == "L"
    summary = app.get("/api/class").json()
    assert summary["drawings"] == 100 and all(m["n"] == 100 for m in summary["models"])


def test_a_cross_origin_or_tokenless_request_changes_nothing(served, mnist, tmp_path):
    from starlette.testclient import TestClient

    from zoo.classroom import make_app

    app = make_app(served=served, collect_into=tmp_path / "class")
    raw = TestClient(app, base_url="http://localhost")
    body = png_bytes(mnist.x_test[0])
    token = app.state.token
    refused = {
        "another site's page": raw.post("/api/collect?label=7", content=body,
                                        headers={"Origin": "http://evil.example", "X-Zoo-Token": token}),
        "no token": raw.post("/api/collect?label=7", content=body, headers={"Origin": "http://localhost"}),
        "a wrong token": raw.post("/api/collect?label=7", content=body,
                                  headers={"Origin": "http://localhost", "X-Zoo-Token": "guess"}),
        "no Origin": raw.post("/api/collect?label=7", content=body, headers={"X-Zoo-Token": token}),
        "a multipart form from elsewhere": raw.post("/api/collect?label=7", files={"image": ("a.png", body)},
                                                    headers={"Origin": "http://evil.example"}),
        "a new class from elsewhere": raw.post("/api/class/new", headers={"Origin": "http://evil.example"}),
    }
    for what, reply in refused.items():
        assert reply.status_code == 403, (what, reply.status_code)
        assert "\n" not in reply.json()["error"]
    rebinding = TestClient(app, base_url="http://evil.example").get("/")
    assert rebinding.status_code == 421 and "does not answer to the host" in rebinding.json()["error"]
    assert not (tmp_path / "class").exists() or not list((tmp_path / "class").rglob("*.png"))
    page = raw.get("/").text
    assert f'<meta name="zoo-token" content="{token}">' in page
    # a prediction from a page elsewhere is refused too; one from a tool with no Origin is answered
    assert raw.post("/api/predict", content=body, headers={"Origin": "http://evil.example"}).status_code == 403
    assert raw.post("/api/predict", content=body).status_code == 200


@pytest.mark.process
def test_a_7000_pixel_png_is_a_4xx_and_costs_the_server_little(served, tmp_path):
    """A 62 KB PNG of 7000×7000 once cost 3.16 GB; a 2000×2000 one is decoded shrunk."""
    import resource

    big = io.BytesIO()
    Image.new("L", (7000, 7000), 255).save(big, format="PNG")
    allowed = io.BytesIO()
    canvas = Image.new("L", (2000, 2000), 255)
    canvas.paste(0, (900, 300, 1100, 1700))
    canvas.save(allowed, format="PNG")
    app = client(served)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reply = app.post("/api/predict", content=big.getvalue())
    assert reply.status_code in (400, 413) and "megapixels" in reply.json()["error"]
    ok = app.post("/api/predict?detail=0", content=allowed.getvalue())
    assert ok.status_code == 200 and "steps" not in ok.json()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, grown_mb


def test_a_linked_class_folder_is_refused_and_the_folder_has_a_cap(served, mnist, tmp_path, monkeypatch):
    from zoo.classroom import session

    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "7").symlink_to(outside, target_is_directory=True)
    app = client(served, collect_into=tmp_path / "class")
    reply = app.post("/api/collect?label=7", content=png_bytes(mnist.x_test[0]))
    assert reply.status_code == 400 and "is a link" in reply.json()["error"]
    assert not list(outside.iterdir())
    monkeypatch.setattr(session, "MAX_DRAWINGS", 2)
    for _ in range(2):
        assert app.post("/api/collect?label=3", content=png_bytes(mnist.x_test[0])).status_code == 200
    full = app.post("/api/collect?label=3", content=png_bytes(mnist.x_test[0]))
    assert full.status_code == 409 and "start a new class" in full.json()["error"]
    assert len(list((tmp_path / "class" / "3").glob("*.png"))) == 2


def test_the_class_view_says_what_the_drawings_say_and_a_new_class_archives_them(served, mnist, tmp_path):
    from scipy import stats

    app = client(served, collect_into=tmp_path / "class")
    for index in range(12):
        digit = int(mnist.y_test[index])
        assert app.post(f"/api/collect?label={digit}", content=png_bytes(mnist.x_test[index])).status_code == 200
    view = app.get("/api/class").json()
    assert view["drawings"] == 12 and [m["model"] for m in view["models"]] == ["mlp", "baseline-cnn"]
    for m in view["models"]:
        ci = stats.binomtest(m["correct"], 12).proportion_ci(0.95, method="exact")
        assert (m["low"], m["high"]) == pytest.approx((ci.low, ci.high)) and m["accuracy"] == m["correct"] / 12
    assert view["mcnemar"]["n"] == 12 and view["mcnemar"]["p"] is not None
    assert sum(d["n"] for d in view["by_digit"]) == 12 and len(view["confusion"]["matrix"]) == 10
    assert all(set(m) >= {"file", "label", "read_as", "image"} for m in view["missed"])
    archived = app.post("/api/class/new").json()
    assert archived["drawings"] == 12 and Path(archived["archived"]).name.startswith("class-")
    assert len(list(Path(archived["archived"]).rglob("*.png"))) == 12
    assert app.get("/api/class").json()["drawings"] == 0
    # a restarted server counts the drawings already in the folder
    assert app.post("/api/collect?label=7", content=png_bytes(mnist.x_test[0])).status_code == 200
    assert client(served, collect_into=tmp_path / "class").get("/api/class").json()["drawings"] == 1


def test_concurrent_predictions_are_batched_and_answer_as_alone(served, mnist):
    from concurrent.futures import ThreadPoolExecutor

    batched, alone = client(served), client(served, batching=False)
    bodies = [png_bytes(mnist.x_test[i]) for i in range(30)]
    with ThreadPoolExecutor(max_workers=30) as pool:
        together = list(pool.map(lambda b: batched.post("/api/predict?detail=0", content=b).json(), bodies))
    calls = batched.app.state.batcher.batches
    assert calls < 30  # thirty drawings, fewer model calls
    for body, answer in zip(bodies, together):
        single = alone.post("/api/predict?detail=0", content=body).json()
        for a, b in zip(answer["models"], single["models"]):
            assert [d for d, _ in a["top3"]] == [d for d, _ in b["top3"]]
            assert [p for _, p in a["top3"]] == pytest.approx([p for _, p in b["top3"]], abs=1e-4)


@pytest.mark.process
def test_a_client_that_leaves_mid_upload_is_one_log_line(mnist_runs, tmp_path):
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "zoo", "serve", str(mnist_runs / "mlp"), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for_port(port, process)
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
                          b"Content-Length: 100000\r\n\r\n" + b"\x89PNG" + b"\0" * 1000)
        time.sleep(2)
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert "Traceback" not in out
    assert out.count("left mid-upload") <= 20 and len(out.splitlines()) < 40


def _wait_for_port(port, process, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            if process.poll() is not None:
                return False
            time.sleep(0.5)
    return False


def test_seeds_of_one_model_are_one_card(mnist_runs, tmp_path, cli, mnist_npz):
    """A 2-seed comparison of 3 models is 6 runs: the page shows 3 cards, each seed's answer in it."""
    result = cli("compare", "mlp", "speedrun", "--seeds", "2", "--epochs", "1", "--limit", "1000",
                 "--data-dir", mnist_npz, "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    from zoo.classroom import load_models

    served = load_models([next(tmp_path.glob("compare-*"))])
    page = client(served).get("/").text
    assert page.count('<article class="model"') == 2
    assert 'data-run="mlp (seed 42)"' in page and 'data-run="mlp (seed 43)"' in page
