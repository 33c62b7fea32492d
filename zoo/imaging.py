"""Turn a photo or scan of a handwritten digit into an MNIST-style 28×28 image.

MNIST digits are white on black, size-normalised to fit a 20×20 box (keeping their
aspect ratio) and centred by centre of mass in a 28×28 field. A digit from your own
paper gets the same treatment, or no model will recognise it: article 002 fed a
ready-made 28×28 image, which hides every one of these steps.
"""

from __future__ import annotations

import base64
import io
import stat
import warnings
from pathlib import Path

import numpy as np

from zoo import data as datamod
from zoo.errors import ZooError
from zoo.evaluation import predict_probabilities
from zoo.files import atomic_write_bytes

BOX = 20
FIELD = 28
# A photo of one digit needs far fewer pixels than this (a 12-megapixel phone photo is 12);
# checked from the header before decoding, so a tiny file that claims a huge image (a
# "decompression bomb") is refused before it takes gigabytes. Pillow's own limit is 89.
MAX_PIXELS = 50_000_000


MAX_FILE_BYTES = 200_000_000  # a digit photo is a few MB; more is refused before reading


def _check_regular_file(path: Path) -> None:
    """A pipe or a device given as an image would block, or read forever: refused by its kind."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ZooError(f"{path}: no such file") from None
    except OSError as exc:
        raise ZooError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ZooError(f"{path}: a folder, not an image")
    if not stat.S_ISREG(info.st_mode):
        kind = "a pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else "a device" if (
            stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)) else "a socket" if stat.S_ISSOCK(
            info.st_mode) else "not a regular file"
        raise ZooError(f"{path}: {kind}, not an image file")
    if info.st_size > MAX_FILE_BYTES:
        raise ZooError(f"{path}: {info.st_size / 1e6:,.0f} MB is more than the {MAX_FILE_BYTES // 1_000_000} MB "
                       "a digit photo needs")


def load_grayscale(path) -> np.ndarray:
    """Any mode Pillow reads (RGB, RGBA, palette, 16-bit…) → float array in [0, 255]."""
    path = Path(path)
    _check_regular_file(path)
    return _grayscale(path, path)


def decode_grayscale(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS,
                     max_side: int | None = None) -> np.ndarray:
    """An image file's bytes (an upload) → float array in [0, 255], with a file's checks.
    ``max_pixels`` is checked from the header, before anything is decoded; ``max_side`` shrinks
    the image as it is decoded (a server's bound on what one upload may cost)."""
    if len(data) > MAX_FILE_BYTES:
        raise ZooError(f"{name}: {len(data) / 1e6:,.0f} MB is more than a digit photo needs")
    if not data:
        raise ZooError(f"{name}: empty (no image sent)")
    return _grayscale(io.BytesIO(data), name, max_pixels, max_side)


def _grayscale(source, path, max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # the zoo's own, lower pixel cap follows
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(source)  # reads the header only
        with im:
            width, height = im.size
            if width * height > max_pixels:
                cap = f"{max_pixels / 1_000_000:g} megapixels"
                raise ZooError(f"{path}: {width}×{height} pixels is more than the {cap} "
                               "a digit photo needs; crop or shrink it")
            if max_side is not None:
                im.draft("L", (max_side, max_side))  # JPEG decodes at a fraction of its size
            im.load()
            if max_side is not None and max(im.size) > max_side:
                im.thumbnail((max_side, max_side))  # in 8 bits, before any float copy
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)  # transparent = paper
            if im.mode in ("I", "I;16", "I;16B", "F"):
                arr = np.asarray(im, dtype="float64")
                if not np.isfinite(arr).all():
                    raise ZooError(f"{path}: the image holds pixel values that are not numbers (NaN or infinity)")
                low, peak = min(arr.min(), 0.0), arr.max()
                return (arr - low) / ((peak - low) or 1.0) * 255.0
            return np.asarray(im.convert("L"), dtype="float64")
    except ZooError:
        raise
    except UnidentifiedImageError:
        raise ZooError(f"{path}: not an image Pillow can read") from None
    except Image.DecompressionBombError:
        raise ZooError(f"{path}: the image claims far more pixels than a digit photo has (refused unread)") from None
    except Exception as exc:  # noqa: BLE001  (a damaged file can make any decoder raise anything)
        raise ZooError(f"{path}: unreadable image ({type(exc).__name__}: {str(exc)[:120]})") from None


def box_for(field: tuple[int, int]) -> tuple[int, int]:
    """The box a digit is fitted into inside ``field``: MNIST's 20 of 28 (the same share of a
    larger field); a small field such as the UCI digits' 8×8 is filled, as those were made."""
    h, w = field
    if min(h, w) < FIELD:
        return h, w
    return round(h * BOX / FIELD), round(w * BOX / FIELD)


def to_mnist(gray: np.ndarray, name: str = "image", field: tuple[int, int] = (FIELD, FIELD),
             steps: dict | None = None) -> np.ndarray:
    """Grayscale array → 28×28 uint8 (or ``field``), white digit on black, centred by centre of mass.

    ``steps``, a dict, receives each stage as a uint8 image, for the classroom page to show:
    ``ink`` (white on black, paper removed), ``cropped``, ``fitted`` (into the 20×20 box) and
    ``centred`` (the result)."""
    from PIL import Image

    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ZooError(f"{name}: not a two-dimensional image")
    # Ink is whatever differs from the paper; the border tells us which the paper is.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper: invert, as MNIST is white on black
        gray = 255.0 - gray
    gray = gray - np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))
    gray = np.clip(gray, 0, None)
    peak = gray.max()
    if peak < 30:  # less contrast than the faintest MNIST strokes: nothing written
        raise ZooError(f"{name}: blank image (no digit found)")
    gray = gray / peak * 255.0
    ink = gray > 0.2 * 255.0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = gray[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    h, w = crop.shape
    (field_h, field_w), (box_h, box_w) = field, box_for(field)
    scale = min(box_h / h, box_w / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(Image.fromarray(crop.astype("float32"), mode="F").resize((new_w, new_h), Image.LANCZOS))
    resized = np.clip(resized, 0, 255)
    canvas = np.zeros((field_h, field_w), dtype="float64")
    top, left = (field_h - new_h) // 2, (field_w - new_w) // 2
    canvas[top: top + new_h, left: left + new_w] = resized
    # shift so the centre of mass sits at the centre of the field, as MNIST was made
    total = canvas.sum()
    ys, xs = np.indices(canvas.shape)
    dy = int(round((field_h - 1) / 2 - (ys * canvas).sum() / total))
    dx = int(round((field_w - 1) / 2 - (xs * canvas).sum() / total))
    result = np.clip(_shift(canvas, dy, dx), 0, 255).astype("uint8")
    if steps is not None:
        as_uint8 = lambda a: np.clip(a, 0, 255).astype("uint8")  # noqa: E731
        steps.update(ink=as_uint8(gray), cropped=as_uint8(crop), fitted=as_uint8(resized), centred=result)
    return result


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(image)
    h, w = image.shape
    src_y, dst_y = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    src_x, dst_x = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[dst_y, dst_x] = image[src_y, src_x]
    return out


def preprocess(image, name: str | None = None, field: tuple[int, int] = (FIELD, FIELD),
               steps: dict | None = None) -> np.ndarray:
    """One digit as the models see it: a file's path, a PIL image or a 2-D array of gray
    levels (0–255, any size, either polarity) → 28×28 uint8 (or ``field``), white on black,
    centred (``to_mnist``; ``steps`` receives its stages)."""
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if not np.isfinite(image.astype("float64")).all():
            raise ZooError(f"{name or 'image'}: holds values that are not numbers (NaN or infinity)")
        return to_mnist(image.astype("float64"), name or "image", field, steps)
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        return to_mnist(np.asarray(image.convert("L"), dtype="float64"), name or "image", field, steps)
    return to_mnist(load_grayscale(image), name or str(image), field, steps)


def field_of(record) -> tuple[int, int]:
    """The image size a run's model reads (its dataset's height and width)."""
    shape = getattr(getattr(record, "dataset", None), "image_shape", None) or (FIELD, FIELD)
    return int(shape[0]), int(shape[1])


def describe_steps(field: tuple[int, int]) -> str:
    """The preprocessing in words, as results record it."""
    (h, w), (bh, bw) = field, box_for(field)
    return (f"inverted to white on black where the paper is light, cropped to the ink, fitted into {bh}×{bw} "
            f"keeping the aspect ratio, centred by centre of mass in {h}×{w} (as MNIST was made)")


def image_name(image, index: int) -> str:
    """What to call an input in answers and errors: a file's path, else its position."""
    return f"image {index}" if isinstance(image, np.ndarray) or hasattr(image, "convert") else str(image)


def mosaic(tiles, cols: int, gap: int = 1, fill=0.0) -> np.ndarray:
    """Equal-sized 2-D ``tiles`` laid out in one image, ``cols`` to a row, ``gap`` pixels of
    ``fill`` between them (filters, feature maps: one image draws far faster than many)."""
    tiles = np.asarray(tiles)
    n, h, w = tiles.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), fill, dtype=np.result_type(tiles, fill))
    for k, tile in enumerate(tiles):
        top, left = (k // cols) * (h + gap), (k % cols) * (w + gap)
        out[top:top + h, left:left + w] = tile
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 image encoded as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def png_uri(image: np.ndarray, scale: int = 1) -> str:
    """A uint8 image as a data: URI (PNG), enlarged ``scale`` times without smoothing."""
    if scale > 1:
        image = np.kron(image, np.ones((scale, scale), dtype=image.dtype))
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def write_png(image: np.ndarray, path) -> Path:
    """Write a uint8 image as PNG, atomically; a folder that cannot be written is one line."""
    try:
        return atomic_write_bytes(path, png_bytes(image))
    except OSError as exc:
        raise ZooError(f"cannot write {path} ({exc.strerror or exc})") from None


def read_digits(model, record, paths, save_dir=None):
    """Yield one answer per image file: the digit, its probabilities and top 3, or its error.

    One unreadable image is that image's error; the others are still answered. With
    ``save_dir``, each image is also written as the model sees it (a 28×28 PNG for MNIST); two inputs
    with one file name (a/x.png, b/x.png) become x.png and x-2.png.
    """
    if save_dir is not None and Path(save_dir).exists() and not Path(save_dir).is_dir():
        raise ZooError("is a file; give a folder", parameter="save_preprocessed", value=str(save_dir))
    classes, saved = record.class_names, set()
    for index, path in enumerate(paths):
        name = image_name(path, index)
        try:
            digit = preprocess(path, name, field_of(record))
        except ZooError as exc:
            yield {"image": name, "error": str(exc), "digit": None, "probabilities": None}
            continue
        except Exception as exc:  # noqa: BLE001  (one odd image must not lose the others' answers)
            error = f"{name}: cannot process this image ({type(exc).__name__}: {str(exc)[:120]})"
            yield {"image": name, "error": error, "digit": None, "probabilities": None}
            continue
        if save_dir is not None:
            stem = Path(name).stem.replace(" ", "-")
            file_name, n = stem, 1
            while file_name in saved:
                n += 1
                file_name = f"{stem}-{n}"
            saved.add(file_name)
            write_png(digit, Path(save_dir) / f"{file_name}.png")
        probs = predict_probabilities(model, datamod.prepare_x(digit[None], record.input_kind), record.output)[0]
        top = np.argsort(-probs)[:3]
        yield {"image": name, "digit": int(top[0]), "label": classes[int(top[0])],
               "probabilities": [round(float(p), 6) for p in probs],
               "top3": [{"digit": int(i), "label": classes[int(i)], "probability": round(float(probs[i]), 6)}
                        for i in top]}
