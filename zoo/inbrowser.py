"""A report page whose models run in the browser: draw a digit, no Python server.

``zoo report --in-browser`` exports each model of the report to ONNX (``zoo.exporting``, checked
against Keras on the whole test set first) and writes ``browser/draw.html``: a pad, the
preprocessing done in JavaScript as ``zoo.imaging.to_mnist`` does it, and every model answering
through ONNX Runtime Web (its WebAssembly build, one thread). The page works from disk
(``file://``) and from any static host, offline: the runtime and the models are in the folder,
as JavaScript files (a page opened from disk may not fetch files, but it may load scripts), so
nothing comes from a CDN and nothing is sent anywhere.

The runtime ships with the zoo in ``zoo/web/``: ONNX Runtime Web 1.31.1 (MIT licence, Microsoft),
its ES-module bundle (77 KB) and its SIMD WebAssembly (14.8 MB; 3.8 MB gzip-compressed as shipped,
about 20 MB in a report as base64).
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

from zoo.errors import ZooError
from zoo.files import atomic_write_text

WEB = Path(__file__).parent / "web"
RUNTIME_SOURCE = "ort.wasm.bundle.min.mjs"
RUNTIME_WASM = "ort-wasm-simd-threaded.wasm.gz"
LICENCE = "LICENSE-onnxruntime-web.txt"


def runtime_size() -> dict:
    return {"source_bytes": (WEB / RUNTIME_SOURCE).stat().st_size,
            "wasm_bytes": len(gzip.decompress((WEB / RUNTIME_WASM).read_bytes())),
            "licence": "MIT (ONNX Runtime Web 1.31.1, Microsoft)"}


def _script(name: str, value: str) -> str:
    return f"window.{name} = {json.dumps(value)};\n"


def write(folder: Path, models: list[tuple[str, str, object]], arrays, notes: list[str]) -> str | None:
    """Into ``folder``: the runtime, each model (``(slug, label, record)``) exported to ONNX and
    checked, and ``draw.html``. Returns the page's path relative to the report, or None (with a
    note) when no model could be exported (ONNX's exporter or runtime not installed, say)."""
    import jinja2

    from zoo import exporting

    folder.mkdir(parents=True, exist_ok=True)
    shown = []
    for slug, label, record in models:
        target = folder / f"{slug}.onnx"
        try:
            meta = exporting.export(record.run_dir, "onnx", target, arrays=arrays, name=label)
        except ZooError as exc:
            notes.append(f"{label} does not run in the browser page: {exc}")
            continue
        atomic_write_text(folder / f"{slug}.model.js",
                          f"window.ZOO_MODELS = window.ZOO_MODELS || {{}};\nwindow.ZOO_MODELS[{json.dumps(slug)}] = "
                          f"{json.dumps(base64.b64encode(target.read_bytes()).decode())};\n")
        target.unlink()  # the page reads the script; the sidecar keeps the preprocessing and the parity
        shown.append({"slug": slug, "label": label, "input_shape": meta["preprocessing"]["input_shape"],
                      "output": meta["preprocessing"]["output"], "classes": meta["preprocessing"]["classes"],
                      "field": meta["preprocessing"]["field"], "box": meta["preprocessing"]["box"],
                      "agreement": meta["parity"][0]["agreement"] if meta["parity"] else None,
                      "images": meta["parity"][0]["images"] if meta["parity"] else None})
    if not shown:
        return None
    atomic_write_text(folder / "ort-source.js", _script("ZOO_ORT_SOURCE", (WEB / RUNTIME_SOURCE).read_text()))
    wasm = gzip.decompress((WEB / RUNTIME_WASM).read_bytes())
    atomic_write_text(folder / "ort-wasm.js", _script("ZOO_ORT_WASM", base64.b64encode(wasm).decode()))
    atomic_write_text(folder / LICENCE, (WEB / LICENCE).read_text())
    env = jinja2.Environment(loader=jinja2.PackageLoader("zoo", "templates/report"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    page = env.get_template("draw.html").render(models=shown, models_json=json.dumps(shown),
                                                runtime=runtime_size())
    atomic_write_text(folder / "draw.html", page)
    return "browser/draw.html"
