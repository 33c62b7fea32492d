"""The classroom page: draw a digit and every model of a comparison answers, side by side.

``zoo serve COMPARE_DIR`` (or ``zoo.serve(...)``) starts a small web app on this machine:
a canvas to draw on (mouse, touch or pen), the preprocessing shown step by step (the step
that decides whether a 99% model reads your digit: crop, fit into 20×20, centre by centre
of mass in 28×28), each model's top 3 as you draw, a CNN's first feature maps of your digit,
and "this is a 3" buttons that save the drawing into a folder dataset for ``zoo evaluate
RUN --dataset folder:DIR``.

It is Starlette on uvicorn: one small ASGI framework whose test client needs no server,
rather than Gradio, whose page is its own (a teacher's projector wants the preprocessing
and every model at once, laid out for it). Behind the page, a JSON API:

* ``GET /api/models``: the models served;
* ``POST /api/predict``: a PNG as the body (or a multipart field ``image``) → every model's top 3;
* ``POST /api/collect?label=N``: a PNG as the body → saved as ``DIR/<label>/<time>.png``.

Uploads are capped in bytes and pixels as ``zoo predict`` caps files; a bad one is a one-line
4xx and the server stays up. No client-supplied text reaches a path: the label must be one
of the models' classes, and the file name is made here.
"""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import OptionError, ZooError

MAX_UPLOAD_BYTES = 4_000_000   # a 280×280 canvas PNG is 5–20 kB; a phone photo of a digit fits too
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
FEATURE_MAPS_SHOWN = 16


@dataclass
class Served:
    """One run's model, loaded once, and what the page says about it."""

    label: str
    run: str
    record: object
    model: object
    field: tuple[int, int]
    probe: object = None       # the first convolution's output, or None for a model without one
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> dict:
        r = self.record
        return {"model": self.label, "run": self.run, "dataset": r.dataset.name, "classes": list(r.class_names),
                "input": f"{self.field[0]}×{self.field[1]}", "test_accuracy": r.test_accuracy,
                "params": r.params, "feature_maps": self.probe is not None}


def find_runs(paths) -> list[Path]:
    """The run folders to serve: each path a run (it has run.json) or a folder of runs; with
    none, the newest comparison in ./runs."""
    if not paths:
        newest = sorted(Path("runs").glob("compare-*"), key=lambda p: p.stat().st_mtime)
        if not newest:
            raise OptionError("no runs to serve: give a comparison's folder or run folders (train some first: "
                              "zoo compare --quick)")
        paths = [newest[-1]]
    return [Path(p) for p in paths]


def load_models(paths, plugins_dir=None, warn=print) -> list[Served]:
    """Every completed run with a model under ``paths``, loaded; an unreadable one is skipped with a warning."""
    from zoo.imaging import field_of
    from zoo.plugins import get_zoo
    from zoo.rows import records_from_dirs
    from zoo.runs import open_run
    from zoo.types import label

    get_zoo(plugins_dir)  # plugins register their custom layers before their models load
    served = []
    for record in records_from_dirs(find_runs(paths), warn=warn):
        if record.status != "completed" or record.tested_on:
            continue
        try:
            _, model = open_run(record.run_dir)
        except ZooError as exc:
            warn(f"{record.run_dir}: not served ({exc})")
            continue
        served.append(Served(label(record.model, record.knobs), str(record.run_dir),
                             record, model, field_of(record), _first_convolution(model)))
    if not served:
        raise OptionError("no trained model to serve there (a run folder holds run.json and model.keras)")
    labels = [s.label for s in served]
    for s in served:  # two runs of one model (seeds): tell them apart by seed
        if labels.count(s.label) > 1:
            s.label = f"{s.label} (seed {s.record.seed})"
    return served


def _first_convolution(model):
    """A model from the input to its first Conv2D's output, or None when it has none."""
    import keras

    from zoo.anatomy import layers

    for layer in layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            try:
                return keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, layer.output)
            except Exception:  # noqa: BLE001  (a subclassed model has no graph to cut)
                return None
    return None


# -- what the API answers --------------------------------------------------------------------------
def png_uri(image: np.ndarray, scale: int = 1) -> str:
    """A uint8 image as a data: URI (PNG), enlarged ``scale`` times without smoothing."""
    from zoo.imaging import png_bytes

    if scale > 1:
        image = np.kron(image, np.ones((scale, scale), dtype=image.dtype))
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def feature_map_grid(maps: np.ndarray, limit: int = FEATURE_MAPS_SHOWN) -> np.ndarray:
    """The first ``limit`` channels of H×W×C maps as one gray mosaic, each on its own scale."""
    from zoo.imaging import mosaic

    tiles = np.moveaxis(maps[..., :limit], -1, 0).astype("float64")
    low = tiles.min(axis=(1, 2), keepdims=True)
    span = tiles.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(tiles - low, span, out=np.zeros_like(tiles), where=span > 0) * 255
    return mosaic(scaled.astype("uint8"), cols=min(4, len(tiles)), fill=np.uint8(40))


STEP_CAPTIONS = {"ink": "your drawing, white on black", "cropped": "cropped to the ink",
                 "fitted": "fitted into the box", "centred": "centred by centre of mass"}


def answer(served: list[Served], gray: np.ndarray) -> dict:
    """Every model's top 3 for one drawing, the preprocessing step by step, and the first
    convolution's feature maps where a model has one."""
    from zoo import data as datamod
    from zoo.evaluation import as_probabilities
    from zoo.imaging import box_for, to_mnist

    by_field, steps = {}, {}  # preprocessed once per image size
    for s in served:
        if s.field not in by_field:
            steps[s.field] = {}
            by_field[s.field] = to_mnist(gray, "drawing", s.field, steps[s.field])
    models = []
    for s in served:
        x = datamod.prepare_x(by_field[s.field][None], s.record.input_kind)
        with s.lock:  # one Keras call per model at a time (a direct call: predict() adds ~20 ms)
            probs = as_probabilities(np.asarray(s.model(x, training=False)), s.record.output)[0]
            maps = np.asarray(s.probe(x, training=False))[0] if s.probe is not None else None
        top = np.argsort(-probs)[:3]
        classes = s.record.class_names
        models.append({"model": s.label, "run": s.run,
                       "top3": [[int(i), round(float(probs[i]), 6)] for i in top],
                       "labels": [classes[int(i)] for i in top],
                       "feature_maps": png_uri(feature_map_grid(maps), 3) if maps is not None else None})
    first = served[0].field
    shown = steps[first]
    box = box_for(first)
    return {"models": models, "preprocessed": png_uri(by_field[first]),
            "steps": [{"step": k, "caption": STEP_CAPTIONS[k].replace("the box", f"{box[0]}×{box[1]}")
                       + (f" in {first[0]}×{first[1]}" if k == "centred" else ""),
                       "image": png_uri(shown[k])} for k in ("ink", "cropped", "fitted", "centred")]}


def collect(folder: Path, label: str, data: bytes, classes) -> tuple[str, int]:
    """Save a drawing as ``folder/<label>/<time>.png`` (re-encoded: only its pixels are kept).
    Returns the path relative to ``folder`` and how many that class now holds."""
    import time

    from zoo.files import path_part
    from zoo.imaging import decode_grayscale, to_mnist, write_png

    if label not in classes:
        raise ZooError(f"label {label!r} is not one of the models' classes ({', '.join(classes)})")
    # one of the models' own class names, never the client's text; a name that is no folder
    # name ("T-shirt/top") is refused rather than nested
    name = path_part(label, "class name")
    if name != label:
        raise ZooError(f"class {label!r} cannot name a folder: this model's drawings cannot be collected")
    gray = decode_grayscale(data, "upload")
    to_mnist(gray, "upload")  # refuses a blank drawing before it becomes a dataset image
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while (target / f"{stamp}-{n}.png").exists():
        n += 1
    write_png(np.clip(np.round(gray), 0, 255).astype("uint8"), target / f"{stamp}-{n}.png")
    return f"{name}/{stamp}-{n}.png", sum(1 for _ in target.glob("*.png"))


# -- the web app -----------------------------------------------------------------------------------
def make_app(paths=(), *, collect_into=None, plugins_dir=None, warn=print, served: list[Served] | None = None):
    """The Starlette app over the runs at ``paths`` (see the module's docstring)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    served = served if served is not None else load_models(paths, plugins_dir, warn)
    classes = list(served[0].record.class_names)
    folder = Path(collect_into) if collect_into is not None else None
    if folder is not None:
        from zoo.files import check_output_folder

        check_output_folder(folder, "--collect-into")
    page = _page(served, classes, folder)

    def problem(status: int, text: str) -> JSONResponse:
        return JSONResponse({"error": text}, status_code=status)

    async def upload(request: Request) -> bytes:
        """The image's bytes: the body, or the multipart field ``image``; capped while read."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            raise _TooLarge()
        content_type = request.headers.get("content-type", "")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD_BYTES:
                raise _TooLarge()
        if content_type.startswith("multipart/form-data"):
            return await run_in_threadpool(_multipart_image, bytes(body), content_type)
        return bytes(body)

    async def handle(request: Request, work) -> JSONResponse:
        try:
            data = await upload(request)
            return JSONResponse(await run_in_threadpool(work, data))
        except _TooLarge:
            return problem(413, f"the image is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB")
        except ZooError as exc:
            return problem(400 if not isinstance(exc, _Unsupported) else 415, str(exc).splitlines()[0])

    async def index(request: Request):
        return HTMLResponse(page)

    async def models(request: Request):
        return JSONResponse({"models": [s.describe() for s in served], "classes": classes,
                             "collecting": folder is not None})

    async def predict(request: Request):
        from zoo.imaging import decode_grayscale

        return await handle(request, lambda data: answer(served, decode_grayscale(data, "upload")))

    async def collect_one(request: Request):
        label = request.query_params.get("label", "")
        if folder is None:
            return problem(409, "collecting is off: start zoo serve with --collect-into DIR")
        if label not in classes:
            return problem(422, f"label {label[:20]!r} is not one of the models' classes ({', '.join(classes)})")

        def save(data: bytes) -> dict:
            saved, count = collect(folder, label, data, classes)
            return {"saved": saved, "label": label, "in_class": count}

        return await handle(request, save)

    return Starlette(routes=[
        Route("/", index), Route("/api/models", models),
        Route("/api/predict", predict, methods=["POST"]), Route("/api/collect", collect_one, methods=["POST"]),
    ])


class _TooLarge(Exception):
    pass


class _Unsupported(ZooError):
    pass


def _multipart_image(body: bytes, content_type: str) -> bytes:
    """The ``image`` field of a multipart form, parsed by python-multipart (as Starlette does)."""
    from python_multipart import parse_form

    found = {}

    def on_file(f):
        if f.field_name == b"image":
            f.file_object.seek(0)
            found["image"] = f.file_object.read()

    def on_field(f):
        if f.field_name == b"image":
            found["image"] = f.value or b""

    try:
        parse_form({"Content-Type": content_type.encode(), "Content-Length": str(len(body)).encode()},
                   io.BytesIO(body), on_field, on_file)
    except Exception as exc:  # noqa: BLE001  (a malformed form raises the parser's own errors)
        raise _Unsupported(f"unreadable multipart form ({type(exc).__name__})") from None
    if "image" not in found:
        raise _Unsupported("a multipart upload needs a field named image")
    return found["image"]


def _page(served: list[Served], classes: list[str], folder: Path | None) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("zoo", "templates/classroom"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("index.html").render(
        models=[s.describe() for s in served], classes=classes, collecting=folder is not None,
        folder=str(folder) if folder else "", box=box_text(served[0].field))


def box_text(field: tuple[int, int]) -> str:
    from zoo.imaging import box_for

    (h, w), (bh, bw) = field, box_for(field)
    return f"fitted into {bh}×{bw}, centred in {h}×{w}"


def _check_port(host: str, port: int) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise OptionError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); give another --port") from None


def _this_machine() -> str:
    """This machine's address on its network, for the URL the class types (else its name)."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return s.getsockname()[0]
    except OSError:
        return socket.gethostname()


def serve(paths=(), *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, collect_into=None, plugins_dir=None,
          warn=print, info=print) -> None:
    """Serve the classroom page until Ctrl-C (see the module's docstring)."""
    import uvicorn

    _check_port(host, port)  # before the models load: a port in use is one line, at once
    app = make_app(paths, collect_into=collect_into, plugins_dir=plugins_dir, warn=warn)
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"serving on {host}: anyone on this network can open the page and send drawings"
             + (f", which are saved into {collect_into}" if collect_into else "") + "; stop it with Ctrl-C after class")
    shown = "localhost" if host in ("127.0.0.1", "::1") else _this_machine() if host == "0.0.0.0" else host
    info(f"The classroom page: http://{shown}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
