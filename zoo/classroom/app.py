"""The classroom page: thirty phones draw, a projector shows what the class's drawings say.

``zoo serve`` (or ``zoo.serve(...)``) starts a small web app on this machine: a pad to draw on
(mouse, touch or pen), every served model's answer as you draw, the preprocessing step by step
(crop, fit into 20×20, centre by centre of mass in 28×28: the step that decides whether a 99%
model reads your digit), a CNN's first feature maps, and "this is a 3" buttons that save the
drawing into a folder dataset. ``/projector`` is the same page in large type with the class
view below: each model's accuracy on the class's drawings so far, with its interval, the class's
digits one by one, the drawings every model missed, and a QR code of the page's address.

It is Starlette on uvicorn (one small ASGI framework whose test client needs no server) rather
than Gradio, whose page is its own. Behind the page, a JSON API:

* ``GET /api/models``: the models served (the seeds of one model as one card);
* ``POST /api/predict`` (``?detail=0`` for the answers only): a PNG body, or a multipart field
  ``image`` → every model's top 3, the preprocessing steps and feature maps;
* ``POST /api/collect?label=N``: the drawing saved as ``DIR/<label>/<time>-<random>.png``;
* ``GET /api/class``: the class view as JSON; ``POST /api/class/new``: archive the class's
  drawings into a dated folder and start again.

Safe on a school network (``zoo.classroom.guard``): the Host must be this machine's; a request
that changes anything (collect, new class) carries the page's token in ``X-Zoo-Token`` and a
same-origin ``Origin``; an upload is capped in bytes and in pixels before it is decoded, and
shrunk as it is; predictions are micro-batched (``zoo.classroom.batching``); drawings are saved
small, under unique names, within a cap (``zoo.classroom.session``). Nothing leaves the machine:
no CDN, no account.
"""

from __future__ import annotations

import asyncio
import io
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo import data as datamod
from zoo.anatomy import layers
from zoo.classroom.batching import Batcher
from zoo.classroom.guard import Guard
from zoo.classroom.session import ClassSession, Full
from zoo.errors import OptionError, ZooError
from zoo.files import check_output_folder
from zoo.folders import IMAGE_SUFFIXES
from zoo.imaging import (
    box_for,
    decode_grayscale,
    field_of,
    load_grayscale,
    mosaic,
    png_uri,
    to_mnist,
)
from zoo.plugins import get_zoo
from zoo.rows import records_from_dirs
from zoo.runs import open_run
from zoo.types import label

MAX_UPLOAD_BYTES = 4_000_000   # a 280×280 canvas PNG is 5–20 kB; a phone photo of a digit fits too
MAX_UPLOAD_PIXELS = 4_000_000  # 2000×2000: decoded, a drawing costs a few tens of MB at most
DECODED_SIDE = 560             # an upload is shrunk to this as it is decoded (the models see 28)
READ_TIMEOUT_SECONDS = 10.0    # a client that stops sending mid-upload is let go
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
    group: str = ""            # the card it shows in: the model (and variant), seeds together

    def describe(self) -> dict:
        r = self.record
        return {"model": self.label, "group": self.group or self.label, "seed": r.seed, "run": self.run,
                "dataset": r.dataset.name, "classes": list(r.class_names),
                "input": f"{self.field[0]}×{self.field[1]}", "test_accuracy": r.test_accuracy,
                "params": r.params, "feature_maps": self.probe is not None}


def find_runs(paths) -> list[Path]:
    """The run folders to serve: each path a run (it has run.json) or a folder of runs."""
    if not paths:
        raise OptionError("no runs to serve: give a comparison's folder or run folders (zoo.serve() with none "
                          "serves the pretrained models)")
    return [Path(p) for p in paths]


def load_models(paths, plugins_dir=None, warn=print) -> list[Served]:
    """Every completed run with a model under ``paths``, loaded; an unreadable one is skipped with a warning."""
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
        name = label(record.model, record.knobs)
        served.append(Served(name, str(record.run_dir), record, model, field_of(record), _first_convolution(model),
                             group=name))
    if not served:
        raise OptionError("no trained model to serve there (a run folder holds run.json and model.keras)")
    labels = [s.label for s in served]
    for s in served:  # two runs of one model (seeds): one card, each seed told apart
        if labels.count(s.label) > 1:
            s.label = f"{s.label} (seed {s.record.seed})"
    return served


def _first_convolution(model):
    """A model from the input to its first Conv2D's output, or None when it has none."""
    import keras

    for layer in layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            try:
                return keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, layer.output)
            except Exception:  # noqa: BLE001  (a subclassed model has no graph to cut)
                return None
    return None


# -- what the API answers --------------------------------------------------------------------------
def feature_map_grid(maps: np.ndarray, limit: int = FEATURE_MAPS_SHOWN) -> np.ndarray:
    """The first ``limit`` channels of H×W×C maps as one gray mosaic, each on its own scale."""
    tiles = np.moveaxis(maps[..., :limit], -1, 0).astype("float64")
    low = tiles.min(axis=(1, 2), keepdims=True)
    span = tiles.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(tiles - low, span, out=np.zeros_like(tiles), where=span > 0) * 255
    return mosaic(scaled.astype("uint8"), cols=min(4, len(tiles)), fill=np.uint8(40))


STEP_CAPTIONS = {"ink": "your drawing, white on black", "cropped": "cropped to the ink",
                 "fitted": "fitted into the box", "centred": "centred by centre of mass"}


@dataclass
class Prepared:
    """One drawing preprocessed once per input size, as each served model takes it."""

    digits: dict               # (field, input kind) → the model-ready array (1 × …)
    images: dict               # field → the 28×28-style uint8 image
    steps: dict = field(default_factory=dict)  # the first field's steps, for the page


def prepare(served: list[Served], gray: np.ndarray, steps: bool = True) -> Prepared:
    digits, images, shown = {}, {}, {}
    for s in served:
        if s.field not in images:
            record_steps = {} if steps and not images else None
            images[s.field] = to_mnist(gray, "drawing", s.field, record_steps)
            if record_steps is not None:
                shown = record_steps
        key = (s.field, s.record.input_kind)
        if key not in digits:
            digits[key] = datamod.prepare_x(images[s.field][None], s.record.input_kind)
    return Prepared(digits, images, shown)


def answer(served: list[Served], prepared: Prepared, scored, detail: bool = True) -> dict:
    """Every model's top 3 for one drawing, the preprocessing step by step, and the first
    convolution's feature maps where a model has one (``detail=False``: the answers only)."""
    models = []
    for s, got in zip(served, scored):
        probs = got.probabilities
        top = np.argsort(-probs)[:3]
        classes = s.record.class_names
        models.append({"model": s.label, "group": s.group, "seed": s.record.seed, "run": s.run,
                       "top3": [[int(i), round(float(probs[i]), 6)] for i in top],
                       "labels": [classes[int(i)] for i in top],
                       "feature_maps": png_uri(feature_map_grid(got.maps), 3)
                       if detail and got.maps is not None else None})
    reply = {"models": models}
    if detail:
        first = served[0].field
        box = box_for(first)
        reply["preprocessed"] = png_uri(prepared.images[first])
        reply["steps"] = [{"step": k, "caption": STEP_CAPTIONS[k].replace("the box", f"{box[0]}×{box[1]}")
                           + (f" in {first[0]}×{first[1]}" if k == "centred" else ""),
                           "image": png_uri(prepared.steps[k])} for k in ("ink", "cropped", "fitted", "centred")]
    return reply


def collect(folder: Path, label: str, data: bytes, classes) -> tuple[str, int]:
    """Save a drawing as ``folder/<label>/<time>-<random>.png`` (re-encoded, shrunk: only its pixels
    are kept). Returns the path relative to ``folder`` and how many that class now holds."""
    if label not in classes:
        raise ZooError(f"label {label!r} is not one of the models' classes ({', '.join(classes)})")
    gray = decode_grayscale(data, "upload", MAX_UPLOAD_PIXELS, DECODED_SIDE)
    to_mnist(gray, "upload")  # refuses a blank drawing before it becomes a dataset image
    return ClassSession(Path(folder), list(classes), []).save(label, gray)


# -- the web app -----------------------------------------------------------------------------------
def make_app(paths=(), *, collect_into=None, plugins_dir=None, warn=print, served: list[Served] | None = None,
             hosts=(), batching: bool = True, lan_url: str | None = None):
    """The Starlette app over the runs at ``paths`` (see the module's docstring). ``hosts``: the
    names this server answers to besides this machine's own (the LAN address it announces);
    ``batching=False`` scores each drawing alone (the benchmark's baseline)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    served = served if served is not None else load_models(paths, plugins_dir, warn)
    classes = list(served[0].record.class_names)
    folder = Path(collect_into) if collect_into is not None else None
    if folder is not None:
        check_output_folder(folder, "--collect-into")
    batcher = Batcher(served, enabled=batching)
    session = ClassSession(folder, classes, [s.label for s in served]) if folder is not None else None
    guard = Guard(hosts)

    def problem(status: int, text: str) -> JSONResponse:
        return JSONResponse({"error": text}, status_code=status)

    async def upload(request: Request) -> bytes:
        """The image's bytes: the body, or the multipart field ``image``; capped and timed while read."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            raise _TooLarge()
        content_type = request.headers.get("content-type", "")
        body = bytearray()
        chunks = request.stream().__aiter__()
        while True:
            try:
                chunk = await asyncio.wait_for(chunks.__anext__(), READ_TIMEOUT_SECONDS)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise _TooSlow() from None
            body += chunk
            if len(body) > MAX_UPLOAD_BYTES:
                raise _TooLarge()
        if content_type.startswith("multipart/form-data"):
            return await run_in_threadpool(_multipart_image, bytes(body), content_type)
        return bytes(body)

    def decoded(data: bytes) -> np.ndarray:
        return decode_grayscale(data, "upload", MAX_UPLOAD_PIXELS, DECODED_SIDE)

    async def scored(gray: np.ndarray, maps: bool):
        prepared = await run_in_threadpool(prepare, served, gray, maps)
        got = await asyncio.wrap_future(batcher.score(prepared.digits, maps))
        return prepared, got

    async def handle(request: Request, work) -> Response:
        try:
            data = await upload(request)
            return JSONResponse(await work(data))
        except _TooLarge:
            return problem(413, f"the image is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB")
        except _TooSlow:
            return problem(408, f"the upload stalled for {READ_TIMEOUT_SECONDS:g} s")
        except ClientDisconnect:
            warn(f"a client at {request.client.host if request.client else '?'} left mid-upload")
            return Response(status_code=499)
        except Full as exc:
            return problem(409, str(exc))
        except ZooError as exc:
            return problem(400 if not isinstance(exc, _Unsupported) else 415, str(exc).splitlines()[0])

    pages = {view: _page(served, classes, folder, guard.token, projector=view, lan_url=lan_url)
             for view in (False, True)}  # rendered once: thirty phones load the same page

    async def index(request: Request):
        return HTMLResponse(pages[False])

    async def projector(request: Request):
        return HTMLResponse(pages[True])

    async def models(request: Request):
        return JSONResponse({"models": [s.describe() for s in served], "classes": classes,
                             "collecting": folder is not None, "batching": batcher.enabled})

    async def predict(request: Request):
        detail = request.query_params.get("detail", "1") != "0"

        async def work(data: bytes) -> dict:
            gray = await run_in_threadpool(decoded, data)
            prepared, got = await scored(gray, detail)
            return await run_in_threadpool(answer, served, prepared, got, detail)

        return await handle(request, work)

    async def collect_one(request: Request):
        label = request.query_params.get("label", "")
        if session is None:
            return problem(409, "collecting is off: start zoo serve with --collect-into DIR")
        if label not in classes:
            return problem(422, f"label {label[:20]!r} is not one of the models' classes ({', '.join(classes)})")

        async def work(data: bytes) -> dict:
            gray = await run_in_threadpool(decoded, data)
            prepared, got = await scored(gray, False)  # also refuses a blank drawing (no ink)
            saved, count = await run_in_threadpool(session.save, label, gray)
            session.add(saved, label, [int(np.argmax(g.probabilities)) for g in got], prepared.images[served[0].field])
            return {"saved": saved, "label": label, "in_class": count,
                    "read_as": {s.label: classes[int(np.argmax(g.probabilities))] for s, g in zip(served, got)}}

        return await handle(request, work)

    async def class_view(request: Request):
        if session is None:
            return JSONResponse({"drawings": 0, "collecting": False, "models": [], "missed": []})
        return JSONResponse({**await run_in_threadpool(session.summary), "collecting": True})

    async def new_class(request: Request):
        if session is None:
            return problem(409, "collecting is off: start zoo serve with --collect-into DIR")
        return JSONResponse(await run_in_threadpool(session.archive))

    if session is not None:
        _score_saved(session, served, batcher, warn)
    app = Starlette(routes=[
        Route("/", index), Route("/projector", projector), Route("/api/models", models),
        Route("/api/predict", predict, methods=["POST"]), Route("/api/collect", collect_one, methods=["POST"]),
        Route("/api/class", class_view), Route("/api/class/new", new_class, methods=["POST"]),
    ])
    app.state.batcher, app.state.session, app.state.token = batcher, session, guard.token
    return guard.wrap(app, changing={"/api/collect", "/api/class/new"})


def _score_saved(session, served: list[Served], batcher, warn) -> None:
    """Drawings already in the collect folder (a server restarted mid-class) count in the class view."""
    folder = session.folder
    if not folder.is_dir():
        return
    for class_name in session.classes:
        sub = folder / class_name
        if not sub.is_dir() or sub.is_symlink():
            continue
        for path in sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
            try:
                gray = load_grayscale(path)
                prepared = prepare(served, gray, steps=False)
                got = batcher.score(prepared.digits, False).result()
            except ZooError as exc:
                warn(f"{path}: left out of the class view ({exc})")
                continue
            session.bytes_written += path.stat().st_size
            session.add(f"{class_name}/{path.name}", class_name, [int(np.argmax(g.probabilities)) for g in got],
                        prepared.images[served[0].field])


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
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


def _cards(served: list[Served]) -> list[dict]:
    """One card per model (and variant): the seeds of one model side by side in it."""
    cards: dict[str, dict] = {}
    for s in served:
        card = cards.setdefault(s.group, {**s.describe(), "model": s.group, "seeds": []})
        card["seeds"].append({"label": s.label, "seed": s.record.seed, "test_accuracy": s.record.test_accuracy})
    return list(cards.values())


def _page(served: list[Served], classes: list[str], folder: Path | None, token: str, projector: bool,
          lan_url: str | None = None) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("zoo", "templates/classroom"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("index.html").render(
        models=[s.describe() for s in served], cards=_cards(served), classes=classes, collecting=folder is not None,
        folder=str(folder) if folder else "", box=box_text(served[0].field), token=token, projector=projector,
        lan_url=lan_url, qr=_qr_svg(lan_url) if projector and lan_url else None)


def _qr_svg(url: str) -> str:
    """The page's address as an inline SVG QR code (segno, pure Python: no network)."""
    try:
        import segno
    except ImportError:
        return ""
    return segno.make(url, error="m").svg_inline(scale=6, dark="#000", light="#fff")


def box_text(field: tuple[int, int]) -> str:
    (h, w), (bh, bw) = field, box_for(field)
    return f"fitted into {bh}×{bw}, centred in {h}×{w}"


def _check_port(host: str, port: int) -> None:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise OptionError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); give another --port") from None


def _this_machine() -> str:
    """This machine's address on its network, for the URL the class types (else its name)."""
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
    local = host in ("127.0.0.1", "localhost", "::1")
    shown = "localhost" if local else _this_machine() if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/"
    app = make_app(paths, collect_into=collect_into, plugins_dir=plugins_dir, warn=warn,
                   hosts=[shown, host, socket.gethostname()], lan_url=None if local else url)
    if not local:
        warn(f"serving on {host}: anyone on this network can open the page and send drawings"
             + (f", which are saved into {collect_into}" if collect_into else "") + "; stop it with Ctrl-C after class")
    info(f"The classroom page: {url} (the projector's: {url}projector; Ctrl-C stops it)")
    if not local:
        try:
            import segno

            buffer = io.StringIO()
            segno.make(url, error="m").terminal(out=buffer, compact=True)
            info("Phones join by this QR code (also on the projector page):\n" + buffer.getvalue())
        except ImportError:
            pass
    # idle connections close after 5 s; past 200 at once, new ones get 503 rather than a queue
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5, limit_concurrency=200)
