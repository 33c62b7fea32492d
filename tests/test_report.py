"""`zoo report` and `zoo compare --report`: a static site of a comparison, opened in a real
browser (headless Chromium driven by Playwright) from file://, offline."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from conftest import chromium_path

ODD_PLUGIN = '''
import keras
import zoo
SRC = zoo.Source("A & B <i>article</i>", "tests", 2026)

@zoo.hookimpl
def zoo_register_architectures(register):
    register(zoo.Architecture(name="odd-title", title="<b>x</b> & \\"quoted\\"",
        summary="<script>document.title = 'pwned'</script>", teaches="t", source=SRC,
        input_kind="flat", build=lambda shape, k: keras.Sequential([keras.Input(shape),
        keras.layers.Dense(k, activation="softmax")]),
        recipes=(zoo.Recipe(name="r", optimizer={"class_name": "SGD", "learning_rate": 0.1},
                            loss="categorical_crossentropy", batch_size=32, epochs=1, validation="none",
                            source=SRC),)))
'''
MODELS = ("mlp", "speedrun", "odd-title")


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """`zoo compare … --report` of an MLP, a CNN and a plugin with an HTML-like title."""
    from typer.testing import CliRunner

    from zoo.cli import app

    root = tmp_path_factory.mktemp("report")
    (root / "plugins").mkdir()
    (root / "plugins" / "odd_title.py").write_text(ODD_PLUGIN)
    result = CliRunner().invoke(app, ["--plugins-dir", str(root / "plugins"), "compare", *MODELS, "--epochs", "1",
                                      "--limit", "1000", "--runs-dir", str(root / "runs"), "--report"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    compare_dir = next((root / "runs").glob("compare-*"))
    return {"root": root, "dir": compare_dir, "report": compare_dir / "report", "stderr": result.stderr}


# -- numbers -------------------------------------------------------------------------------------
def test_most_confused_lists_the_largest_mistakes_first():
    from zoo.site import most_confused

    matrix = np.array([[50, 3, 0], [9, 40, 1], [0, 3, 30]])
    pairs = most_confused(matrix, ["a", "b", "c"])
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [("b", "a", 9), ("a", "b", 3),
                                                                         ("c", "b", 3), ("b", "c", 1)]
    assert pairs[0]["share"] == pytest.approx(9 / 50)


@pytest.mark.unit
def test_top_losses_are_the_lowest_probabilities_of_the_true_class():
    from zoo.site import top_losses

    p_true = np.array([0.9, 0.01, 0.5, 1e-9, 0.2])
    assert [i for i, _ in top_losses(p_true, limit=3)] == [3, 1, 4]
    assert top_losses(p_true, limit=1)[0][1] == pytest.approx(-np.log(1e-7))  # clipped, as the test loss is


@pytest.mark.unit
def test_the_page_shown_for_several_seeds_is_the_run_nearest_the_mean():
    from types import SimpleNamespace

    from zoo.site import representative

    runs = [SimpleNamespace(test_accuracy=a, seed=s) for s, a in ((1, 0.981), (2, 0.990), (3, 0.986))]
    assert representative(runs, mean=(0.981 + 0.990 + 0.986) / 3).seed == 3


# -- the site ------------------------------------------------------------------------------------
def test_compare_report_writes_an_index_and_a_page_per_model(compared):
    report = compared["report"]
    assert "Report: 3 model page(s)" in compared["stderr"]
    assert (report / "index.html").is_file() and (report / "style.css").is_file()
    for model in MODELS:
        page = (report / "models" / f"{model}.html").read_text()
        assert "What produced this run" in page and "test set sha256" in page
    index = (report / "index.html").read_text()
    for model in MODELS:
        assert f'href="models/{model}.html"' in index
    # the images each page promises exist and are real PNGs
    for page in report.rglob("*.html"):
        for src in re.findall(r'<img[^>]* src="([^"]+)"', page.read_text()):
            image = (page.parent / src).resolve()
            assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{page.name}: {src}"
    cnn = (report / "models" / "speedrun.html").read_text()
    assert "14 × 14 × 16" in cnn and "7 × 7 × 32" in cnn  # the card's layer table: its two convolutions
    assert cnn.count('class="digit"') == 16 + 1  # the top-losses gallery and the explained digit
    assert "Convolution 2, " in cnn and "feature-maps-2.png" in cnn and "feature-maps-3.png" not in cnn
    mlp = (report / "models" / "mlp.html").read_text()
    assert "this model has no convolution: no feature maps to show" in mlp
    assert "hidden unit" in mlp  # its first layer is drawn as 28×28 templates instead
    for page in report.rglob("*.html"):
        text = page.read_text()
        assert "{&#39;" not in text, f"{page.name} prints a raw dict"  # was: epochs {'recipe': 3, 'used': 1}
        # each figure opens full size (a phone shrinks a wide one past reading)
        for src in re.findall(r'<figure>\s*<a href="([^"]+)"[^>]*><img src="([^"]+)"', text):
            assert src[0] == src[1]
        assert not re.search(r'<figure>\s*<img (?!class="digit")', text)  # only the 84-pixel digits are bare
        assert not re.search(r'alt="[^"]*\ba [8]', text)  # "a 8"
    assert "epochs 1 (the recipe says" in cnn
    # a one-epoch run of 8 steps still draws its learning within the epoch, not one dot
    steps = json.loads((next(compared["dir"].glob("speedrun*")) / "history_steps.json").read_text())
    assert len(steps["position"]) >= 4


def test_most_confused_table_matches_the_saved_confusion_matrix(compared):
    from zoo.runs import read_record

    record = read_record(compared["dir"] / "speedrun")
    matrix = np.array(record.confusion_matrix)
    off = matrix - np.diag(np.diag(matrix))
    t, p = np.unravel_index(np.argmax(off), off.shape)
    page = (compared["report"] / "models" / "speedrun.html").read_text()
    first = re.search(r'<table class="confused">.*?<tbody>\s*<tr><td>(\S+)</td><td>(\S+)</td>'
                      r'<td class="num">(\d+)</td>', page, re.S)
    assert first.groups() == (str(t), str(p), str(off.max()))


def test_zoo_report_on_the_compare_folder_gives_the_same_pages(compared, cli, tmp_path):
    result = cli("--plugins-dir", compared["root"] / "plugins", "report", compared["dir"], "-o", tmp_path / "again",
                 "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert Path(answer["index"]) == tmp_path / "again" / "index.html" and len(answer["pages"]) == 3

    def files(folder):
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    assert files(tmp_path / "again") == files(compared["report"])

    def table(page):  # everything but the footer's time and the report's own command line
        text = page.read_text()
        return re.sub(r"<footer>.*?</footer>|<dt>(made|report command)</dt><dd>.*?</dd>", "", text, flags=re.S)

    for page in ("index.html", *(f"models/{m}.html" for m in MODELS)):
        assert table(tmp_path / "again" / page) == table(compared["report"] / page), page


def test_an_html_like_title_is_shown_as_text(compared):
    page = (compared["report"] / "models" / "odd-title.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &#34;quoted&#34;" in page
    assert "<b>x</b>" not in page and "<script>document.title" not in page
    assert "&lt;script&gt;document.title" in page


def test_report_refuses_a_folder_that_is_not_a_report_and_changes_nothing(compared, cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = cli("report", compared["dir"] / "mlp", "-o", tmp_path)
    assert result.exit_code != 0
    assert "not a zoo report" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_report_errors_are_one_line(cli, tmp_path):
    result = cli("report", tmp_path / "nowhere")
    assert result.exit_code != 0 and "no such run directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_report_without_the_test_images_still_writes_the_pages(compared, cli, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    result = cli("report", compared["dir"] / "mlp", "-o", tmp_path / "site", "--data-dir", empty)
    assert result.exit_code == 0, result.stderr
    assert "leaves out the test-image sections" in result.stderr
    page = (tmp_path / "site" / "models" / "mlp.html").read_text()
    assert "confusion.png" in page and "no test images" in page and "loss-01.png" not in page
    again = cli("report", compared["dir"] / "mlp", "-o", tmp_path / "site", "--data-dir", empty)
    assert again.exit_code == 0  # an earlier report is replaced


def test_a_digit_past_the_test_set_is_one_line(compared, cli, tmp_path):
    result = cli("report", compared["dir"] / "mlp", "-o", tmp_path / "site", "--digit", "10000")
    assert result.exit_code != 0 and "--digit 10000: mnist has 10,000 test images" in result.stderr
    assert not (tmp_path / "site").exists()


# -- in a real browser ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="needs Playwright: pip install -e '.[test]'")
    executable = chromium_path()
    if executable is None:
        pytest.skip("needs Chromium: apt-get install -y chromium")
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


def _open(browser, path: Path, width: int, javascript: bool = True):
    context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=javascript)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: not r.url.startswith(("file:", "data:")) and problems.append(f"network: {r.url}"))
    page.on("requestfailed", lambda r: problems.append(f"failed to load: {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return context, page, problems


def _links(page) -> list[str]:
    return page.evaluate("""() => [
        ...Array.from(document.querySelectorAll('a[href]'), a => a.getAttribute('href')),
        ...Array.from(document.querySelectorAll('img[src], script[src]'), e => e.getAttribute('src')),
        ...Array.from(document.querySelectorAll('link[href]'), l => l.getAttribute('href'))]""")


@pytest.mark.browser
def test_every_page_loads_in_a_browser_offline_with_every_image(compared, browser, tmp_path):
    report = compared["report"]
    pages = [report / "index.html", *sorted((report / "models").glob("*.html"))]
    for path in pages:
        for width, label in ((1280, "desktop"), (390, "phone")):
            context, page, problems = _open(browser, path, width)
            images = page.evaluate("() => Array.from(document.images, i => [i.getAttribute('src'), i.naturalWidth, "
                                   "i.getAttribute('alt') || ''])")
            assert images, path.name
            for src, natural_width, alt in images:
                assert natural_width > 0, f"{path.name}: {src} did not load"
                assert len(alt) > 10, f"{path.name}: {src} has no alt text"
            for link in _links(page):
                parsed = urlparse(link)
                assert not parsed.scheme and not parsed.netloc, f"{path.name} links out: {link}"
                target = (path.parent / unquote(parsed.path)).resolve()
                assert target.is_file(), f"{path.name}: {link} is missing"
            # a phone-width page scrolls down, not sideways (wide tables scroll in their own box)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path.name} is {overflow}px wider than a {width}px screen"
            page.screenshot(path=tmp_path / f"{path.stem}-{label}.png", full_page=True)
            assert not problems, f"{path.name} at {width}px: {problems}"
            context.close()
    assert (tmp_path / "index-desktop.png").stat().st_size > 10_000


@pytest.mark.browser
def test_the_table_sorts_with_javascript_and_reads_without_it(compared, browser):
    index = compared["report"] / "index.html"
    context, page, problems = _open(browser, index, 1280, javascript=False)
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 3 and page.locator("table.results th button").count() == 0
    accuracies = [float(v) for v in page.eval_on_selector_all(
        "table.results tbody tr td:nth-of-type(3)", "cells => cells.map(c => c.dataset.value)")]
    assert accuracies == sorted(accuracies, reverse=True)  # as written: best first
    context.close()

    context, page, problems = _open(browser, index, 1280)
    page.get_by_role("button", name="params").click()
    params = page.eval_on_selector_all("table.results tbody tr td:nth-of-type(11)",
                                       "cells => cells.map(c => Number(c.dataset.value))")
    assert params == sorted(params) and len(set(params)) == 3
    page.get_by_role("button", name="params").click()
    again = page.eval_on_selector_all("table.results tbody tr td:nth-of-type(11)",
                                      "cells => cells.map(c => Number(c.dataset.value))")
    assert again == sorted(params, reverse=True)
    assert not problems
    context.close()


@pytest.mark.browser
def test_the_odd_title_is_text_in_the_browser_too(compared, browser):
    context, page, problems = _open(browser, compared["report"] / "models" / "odd-title.html", 1280)
    assert page.locator("h1 b").count() == 0
    assert '<b>x</b> & "quoted"' in page.locator("h1").inner_text()
    assert page.title() != "pwned" and not problems
    context.close()


def test_several_seeds_show_their_spread_and_every_run(compared, cli, tmp_path):
    """Three seeds of one model: the table shows mean ± std and n = 3, the page lists every run
    and shows the one nearest the mean."""
    import json as _json

    from zoo.runs import read_record

    source = compared["dir"] / "mlp"
    accuracy = read_record(source).test_accuracy
    for seed, delta in ((7, 0.004), (8, -0.001), (9, 0.0)):  # one run, saved as three seeds of one model
        copy = tmp_path / "runs" / f"mlp-seed{seed}"
        shutil.copytree(source, copy)
        record = _json.loads((copy / "run.json").read_text())
        record.update(seed=seed, test_accuracy=accuracy + delta)
        (copy / "run.json").write_text(_json.dumps(record))
    result = cli("report", tmp_path / "runs", "-o", tmp_path / "site")
    assert result.exit_code == 0, result.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    mean, std = accuracy + 0.001, np.std([0.004, -0.001, 0.0], ddof=1)
    assert f"{mean * 100:.2f} ± {std * 100:.2f}%" in index
    assert re.search(r'<td class="num" data-value="3\.0">3</td>', index)
    page = (tmp_path / "site" / "models" / "mlp.html").read_text()
    assert all(f"mlp-seed{s}" in page for s in (7, 8, 9))
    assert "The figures below are those of seed 9, the run nearest the mean." in page


def test_runs_of_two_datasets_each_say_which_and_neither_is_worse(compared, cli, tmp_path):
    """A Fashion-MNIST run beside an MNIST one: each row names its dataset and has its own best."""
    import json as _json

    shutil.copytree(compared["dir"] / "mlp", tmp_path / "runs" / "mlp")
    fashion = tmp_path / "runs" / "mlp-fashion"
    shutil.copytree(compared["dir"] / "mlp", fashion)
    record = _json.loads((fashion / "run.json").read_text())
    record["dataset"].update(name="fashion-mnist", test_sha256="another test set",
                             class_names=["T-shirt/top", *map(str, range(1, 10))])
    record["test_accuracy"] -= 0.1  # lower, yet not "worse": it is of another test set
    (fashion / "run.json").write_text(_json.dumps(record))
    empty = tmp_path / "no-data"
    empty.mkdir()
    result = cli("report", tmp_path / "runs", "-o", tmp_path / "site", "--data-dir", empty)
    assert result.exit_code == 0, result.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert '<span class="dataset">(mnist)</span>' in index and '<span class="dataset">(fashion-mnist)</span>' in index
    assert "worse" not in index
    assert "The per-class table shows the" in index
    alone = cli("report", compared["dir"] / "mlp", "-o", tmp_path / "one", "--data-dir", empty)
    assert alone.exit_code == 0 and 'class="dataset"' not in (tmp_path / "one" / "index.html").read_text()


@pytest.mark.unit
def test_words_for_class_names_schedules_and_changes():
    from zoo.site import indefinite, override_text, schedule_text

    assert [indefinite(c) for c in ("8", "3", "11", "18", "1", "Ankle boot", "T-shirt/top", "unit")] == \
        ["an 8", "a 3", "an 11", "an 18", "a 1", "an Ankle boot", "a T-shirt/top", "a unit"]
    assert override_text("batch_size", {"recipe": 128, "used": 32}) == "batch size 32 (the recipe says 128)"
    assert schedule_text({"kind": "warmup_cosine", "warmup": 0.1, "start": 0.1, "alpha": 0.01}) == (
        "warming up from 0.1× the learning rate over the first 10% of steps, then a cosine down to 0.01×")
