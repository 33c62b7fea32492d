"""Datasets: find them, check them, split them honestly, shape them for each model.

Every source article loads, reshapes, scales and one-hot encodes MNIST by hand, each
a little differently. Here it happens once, for every model, decided by the model's
metadata (flat or image input) and its recipe's loss (integer or one-hot labels).

Where the arrays come from, in order (the first that exists wins):

1. the data directory: ``--data-dir`` or ``ZOO_DATA_DIR``; an ``.npz`` in Keras's
   layout (``mnist.npz``) or the four IDX files, gzipped or not;
2. Keras's cache (``~/.keras/datasets``, or ``$KERAS_HOME/datasets``);
3. system copies, e.g. Debian's ``dataset-fashion-mnist`` package — a local file
   beats a download;
4. Keras's own download (``keras.datasets.mnist.load_data()``), unless
   ``ZOO_NO_DOWNLOAD=1``.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo import settings
from zoo.errors import OptionError, ZooError
from zoo.files import read_npy_entry
from zoo.registry import Dataset
from zoo.types import DEFAULT_SEED, MIN_LIMIT

DATA_DIR_ENV = settings.ENVIRONMENT["data_dir"]
NO_DOWNLOAD_ENV = settings.ENVIRONMENT["download"]
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DEFAULT_VAL_FRACTION = 0.1


@dataclass
class Arrays:
    """The raw uint8 images and integer labels of one dataset, and where they came from."""

    dataset: Dataset
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # e.g. "data dir: /data/mnist.npz"


# -- finding the files -----------------------------------------------------------
def keras_cache_dir() -> Path:
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home) / "datasets"


def _idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder``, gzipped or not, or None if any is missing."""
    found = {}
    for key, stem in IDX_NAMES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def resolve_data_dir(data_dir: str | None) -> str | None:
    """The data directory in force: the one given, else ``ZOO_DATA_DIR``; one that is set must exist."""
    data_dir = data_dir or settings.current().data_dir
    if data_dir and not Path(data_dir).expanduser().is_dir():
        what = "is not a folder" if Path(data_dir).expanduser().exists() else "does not exist"
        raise ZooError(f"data directory {data_dir} {what} (from --data-dir or {DATA_DIR_ENV})")
    return data_dir


def candidates(dataset: Dataset, data_dir: str | None):
    """Every place to look, in order: (label, kind, path). kind is "npz" or "idx"."""
    data_dir = resolve_data_dir(data_dir)
    places = []
    if data_dir:
        root = Path(data_dir).expanduser()
        places += [("data dir", "npz", root / n) for n in dataset.npz_names]
        places += [("data dir", "idx", (root / d) if d != "." else root) for d in dataset.idx_dirs]
    cache = keras_cache_dir()
    places += [("Keras cache", "npz", cache / n) for n in dataset.npz_names]
    if dataset.keras_cache_idx_dir:
        places.append(("Keras cache", "idx", cache / dataset.keras_cache_idx_dir))
    places += [("system", "idx", Path(d)) for d in dataset.system_dirs]
    return places


def locate(dataset: Dataset, data_dir: str | None = None):
    """The first existing source as (label, kind, path-or-files), or None."""
    if dataset.loader is not None:
        return (dataset.located or "its loader", "loader", None)
    for label, kind, path in candidates(dataset, data_dir):
        if kind == "npz" and path.is_file():
            return label, kind, path
        if kind == "idx" and path.is_dir():
            files = _idx_files(path)
            if files:
                return label, kind, files
    return None


def source_text(found) -> str:
    """How a located source is described to the user, e.g. 'data dir: /d/mnist.npz'."""
    label, kind, where = found
    if kind == "loader":
        return label
    return f"{label}: {where}" if kind == "npz" else f"{label}: {where['x_train'].parent} (IDX)"


# -- reading and checking --------------------------------------------------------
# The most an image dataset of this zoo may hold in one array (MNIST's largest is 47 MB):
# a file whose header claims more is refused before anything is allocated or inflated.
MAX_ARRAY_BYTES = 1 << 30


def array_limits(dataset: Dataset) -> dict[str, int]:
    """The most bytes each array of ``dataset`` may hold: its known size, else MAX_ARRAY_BYTES."""
    if not dataset.sizes:
        return dict.fromkeys(IDX_NAMES, MAX_ARRAY_BYTES)
    pixels = math.prod(dataset.image_shape[:2])
    train, test = dataset.sizes
    # labels may be stored as wider integers than uint8 (8 bytes each at most)
    return {"x_train": train * pixels, "y_train": train * 8, "x_test": test * pixels, "y_test": test * 8}


def _too_big(path, what: str, nbytes: int, limit: int) -> ZooError:
    return ZooError(f"{path}: {what} claims {nbytes:,} bytes, more than the {limit:,} this dataset can hold; "
                    "refused before reading")


def read_npz(path: Path, limits: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """The four arrays of a Keras-layout ``.npz``, each header checked before its data is read.

    No pickles (object arrays are refused), no array larger than ``MAX_ARRAY_BYTES``, and
    a compressed entry is inflated only up to the size its header declares.
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise ZooError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if magic.startswith(b"\x93NUMPY"):
        raise ZooError(f"{path}: a single NumPy array (.npy), not an .npz archive holding "
                       f"{', '.join(IDX_NAMES)}")
    if not magic.startswith(b"PK"):
        raise ZooError(f"{path}: not an .npz file (it is not a zip archive); corrupt or not a dataset")
    try:
        with zipfile.ZipFile(path) as archive:
            names = {n.removesuffix(".npy"): n for n in archive.namelist()}
            missing = [k for k in IDX_NAMES if k not in names]
            if missing:
                raise ZooError(f"{path}: not a dataset .npz in Keras's layout (missing {', '.join(missing)})")
            return {key: read_npy_entry(archive, names[key], path, (limits or {}).get(key, MAX_ARRAY_BYTES), "this dataset")
                    for key in IDX_NAMES}
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001  (a damaged archive raises many kinds of error)
        raise ZooError(f"{path}: corrupt or truncated .npz file ({type(exc).__name__})") from None


def read_idx(path: Path, limit: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """An IDX file (the format MNIST was published in): magic, dims, then raw bytes.

    The header's size is checked against ``limit`` before anything is read, and a gzipped
    file is inflated as a stream, never past the size the header declares.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            magic = fh.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != 0x08:
                raise ZooError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
            ndim = magic[3]
            if not 1 <= ndim <= 4:
                raise ZooError(f"{path}: an IDX file of {ndim} dimensions is not an image or label file")
            header = fh.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise ZooError(f"{path}: truncated IDX header")
            dims = struct.unpack(f">{ndim}I", header)
            if 0 in dims:  # no data, and NumPy could not even shape (0, 2**31, 2**31) to say so
                raise ZooError(f"{path}: the IDX header {dims} declares no data (a dimension of 0)")
            expected = math.prod(dims)  # a Python integer: dimensions cannot overflow it
            if expected > limit:
                raise _too_big(path, f"the IDX header {dims}", expected, limit)
            raw = fh.read(expected + 1)
    except ZooError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise ZooError(f"{path}: cannot read IDX file ({type(exc).__name__}: {str(exc)[:120]})") from None
    if len(raw) != expected:
        raise ZooError(f"{path}: truncated or padded IDX file: header promises {dims} = {expected:,} bytes, "
                       f"file holds {'more' if len(raw) > expected else f'{len(raw):,}'}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def validate(dataset: Dataset, arrays: dict[str, np.ndarray], where: str) -> None:
    """Shapes, dtype, label range and counts; one clear line naming the file if wrong."""
    h, w = dataset.image_shape[:2]
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or y.dtype.kind not in "iu":
            raise ZooError(f"{where}: x_{split} must be uint8 and y_{split} integers, got {x.dtype} and {y.dtype}")
        if x.ndim != 3 or x.shape[1:] != (h, w):
            raise ZooError(f"{where}: x_{split} has shape {x.shape}, expected (N, {h}, {w})")
        if y.ndim != 1 or len(y) != len(x):
            raise ZooError(f"{where}: y_{split} has shape {y.shape} for {len(x)} images")
        if len(y) and (y.min() < 0 or y.max() >= dataset.num_classes):
            raise ZooError(f"{where}: y_{split} labels must lie in 0..{dataset.num_classes - 1}, "
                           f"found {y.min()}..{y.max()}")
    if dataset.sizes and (len(arrays["x_train"]), len(arrays["x_test"])) != dataset.sizes:
        raise ZooError(f"{where}: expected {dataset.sizes[0]:,} training and {dataset.sizes[1]:,} test images, "
                       f"found {len(arrays['x_train']):,} and {len(arrays['x_test']):,}")


def checksums(arrays: Arrays) -> dict[str, str]:
    return {k: hashlib.sha256(np.ascontiguousarray(getattr(arrays, k)).tobytes()).hexdigest() for k in IDX_NAMES}


def verify_checksums(arrays: Arrays) -> dict[str, bool | None]:
    """Per array: True if its checksum matches the known one, False if not, None if unknown."""
    got = checksums(arrays)
    return {k: (got[k] == arrays.dataset.checksums[k]) if k in arrays.dataset.checksums else None for k in got}


verify = verify_checksums  # its old name


def _download(dataset: Dataset) -> dict[str, np.ndarray]:
    loader = importlib.import_module(f"keras.datasets.{dataset.keras_loader}")
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


_cache: dict[tuple, Arrays] = {}


def load(dataset: Dataset, data_dir: str | None = None) -> Arrays:
    """Find, read and check a dataset; the result is cached for this process."""
    data_dir = resolve_data_dir(data_dir)
    if dataset.loader is not None:  # made by code each time: a folder may have grown since
        arrays, described = _load_by_loader(dataset)
        return Arrays(dataset, source=described, **{k: arrays[k] for k in IDX_NAMES})
    key = (dataset.name, data_dir, os.environ.get("KERAS_HOME"))
    if key in _cache:
        return _cache[key]
    found = locate(dataset, data_dir)
    if found:
        _, kind, where = found
        limits = array_limits(dataset)
        arrays = (read_npz(where, limits) if kind == "npz"
                  else {k: read_idx(p, limits[k]) for k, p in where.items()})
        validate(dataset, arrays, str(where if kind == "npz" else where["x_train"].parent))
        described = source_text(found)
    else:
        arrays, described = _load_by_download(dataset, data_dir)
    result = Arrays(dataset, source=described, **{k: arrays[k] for k in IDX_NAMES})
    _cache[key] = result
    return result


def _load_by_loader(dataset: Dataset):
    try:
        arrays = dataset.loader()
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001  (a plugin's loader may fail in any way)
        raise ZooError(f"{dataset.name}: its loader failed ({type(exc).__name__}: {str(exc)[:160]})") from None
    if not isinstance(arrays, dict) or any(k not in arrays for k in IDX_NAMES):
        raise ZooError(f"{dataset.name}: its loader must return a dict of {', '.join(IDX_NAMES)}")
    arrays = {k: np.asarray(arrays[k]) for k in IDX_NAMES}
    validate(dataset, arrays, f"{dataset.name} ({dataset.located or 'its loader'})")
    return arrays, dataset.located or f"{dataset.name}'s loader"


def _load_by_download(dataset: Dataset, data_dir: str | None):
    looked = "; ".join(f"{label} {path}" for label, _, path in candidates(dataset, data_dir))
    looked = looked or "(no data dir set)"
    how = (f"put {dataset.npz_names[0] if dataset.npz_names else 'the .npz'} or the four IDX files in a folder "
           f"and pass --data-dir DIR or set {DATA_DIR_ENV}=DIR")
    if dataset.system_hint:
        how += f", or {dataset.system_hint}"
    if not dataset.keras_loader or not settings.current().download:
        raise ZooError(f"{dataset.name} not found (looked in: {looked}); {how}")
    try:
        arrays = _download(dataset)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ZooError(f"{dataset.name} not found (looked in: {looked}) and Keras could not download it "
                       f"({reason[:160]}); {how}") from None
    validate(dataset, arrays, "Keras download")
    return arrays, f"Keras download: {keras_cache_dir()}"


# -- splitting -------------------------------------------------------------------
def stratified_subset(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of about ``n`` items with every class in its original proportion."""
    if n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.floor(counts / counts.sum() * n).astype(int)
    # hand the rounding leftovers to the classes with the largest remainders
    remainder = counts / counts.sum() * n - quota
    for i in np.argsort(-remainder)[: n - quota.sum()]:
        quota[i] += 1
    chosen = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))


@dataclass
class Split:
    """Indices into the training arrays, plus what validation means for this run."""

    train: np.ndarray
    val: np.ndarray | None  # None when validating on the test set
    validate_on: str        # "val" or "test"
    seed: int
    limit: int | None

    def describe(self, test_size: int) -> str:
        if self.validate_on == "test":
            return f"train {len(self.train):,}, validate on the test set ({test_size:,}), test {test_size:,}"
        return f"train {len(self.train):,}, validation {len(self.val):,} (held out of train), test {test_size:,}"


def make_split(y_train: np.ndarray, validate_on: str = "val", seed: int = DEFAULT_SEED,
               limit: int | None = None, val_fraction: float = DEFAULT_VAL_FRACTION) -> Split:
    """The same split for every model given the same arguments.

    ``limit`` takes a stratified subset of the training set first; then, unless
    validating on the test set, a stratified ``val_fraction`` of it is held out.
    """
    if validate_on not in ("val", "test"):
        raise OptionError(f"must be 'val' or 'test', not {validate_on!r}", parameter="validate_on")
    if limit is not None and limit < MIN_LIMIT:
        raise OptionError(f"is too small: use at least {MIN_LIMIT} images", parameter="limit", value=limit)
    pool = stratified_subset(y_train, limit, seed) if limit else np.arange(len(y_train))
    if validate_on == "test" and not len(pool):
        raise ZooError("no training images: the dataset's training part is empty")
    if validate_on == "test":
        return Split(pool, None, "test", seed, limit)
    held = stratified_subset(y_train[pool], int(round(len(pool) * val_fraction)), seed + 1)
    val = pool[held]
    train = np.setdiff1d(pool, val, assume_unique=True)
    if len(val) == 0 or len(train) == 0:  # a tiny folder dataset: training would fail on empty arrays
        raise ZooError(f"{len(pool)} training image(s) are too few to hold out a {val_fraction:.0%} validation "
                       f"set and still train; use more images (a folder dataset: at least {MIN_LIMIT})")
    return Split(train, val, "val", seed, limit)


def full_training_size(images: int, validate_on: str = "val", val_fraction: float = DEFAULT_VAL_FRACTION) -> int:
    """How many images ``make_split`` trains on with no ``limit``: a recipe's designed data."""
    return images if validate_on == "test" else images - int(round(images * val_fraction))


def test_set_warning() -> str:
    return ("validating on the test set, as the articles do: every number you look at while training "
            "(and any epoch or model you pick by it) has seen the test set, so the final test accuracy "
            "is no longer an unbiased estimate.")


# -- shaping for a model ---------------------------------------------------------
def prepare_x(x: np.ndarray, input_kind: str, layout: str = "channels_last",
              standardize: tuple[float, float] | None = None) -> np.ndarray:
    """uint8 images → float32 in the layout a model wants, scaled to [0, 1].

    ``standardize=(mean, std)`` subtracts the mean and divides by the std after scaling.
    """
    # One pass into one new array: the same float32 values as x.astype("float32") / 255
    # (uint8 → float32 is exact), but the naive form's two 188 MB temporaries cost a fresh
    # process 0.4–0.8 s for 60,000 images here, against 0.03 s (docs/performance.md).
    x = np.divide(x, np.float32(255), dtype=np.float32)
    if standardize:
        mean, std = standardize
        x -= np.float32(mean)
        x /= np.float32(std)
    if input_kind == "flat":
        return x.reshape(len(x), -1)
    if x.ndim == 3:
        x = x[..., None]
    if layout == "channels_first":
        x = np.moveaxis(x, -1, 1)
    return np.ascontiguousarray(x)


def prepare_y(y: np.ndarray, labels: str, num_classes: int) -> np.ndarray:
    """Integer labels as the loss wants them: int32 for sparse losses, one-hot float32 otherwise."""
    y = y.astype("int32")
    if labels == "integer":
        return y
    return np.eye(num_classes, dtype="float32")[y]


def describe_preparation(arch, recipe, layout="channels_last", image_shape=(28, 28, 1)) -> str:
    h, w = image_shape[:2]
    shape = f"flat {h * w}-vector" if arch.input_kind == "flat" else (
        f"{h}×{w}×1 image (channels-last)" if layout == "channels_last" else f"1×{h}×{w} image (channels-first)")
    labels = "one-hot labels" if recipe.labels == "onehot" else "integer labels"
    return f"{shape}, pixels /255 → [0, 1], {labels} for {recipe.loss}"


def summary(arrays: Arrays) -> dict:
    """Sizes, class counts and pixel statistics (of the training set, after /255)."""
    d = arrays.dataset
    x = arrays.x_train.astype("float64") / 255.0
    return {
        "name": d.name,
        "description": d.description,
        "source": arrays.source,
        "license": d.license,
        "image_shape": list(d.image_shape),
        "classes": list(d.class_names),
        "train": int(len(arrays.x_train)),
        "test": int(len(arrays.x_test)),
        "train_class_counts": np.bincount(arrays.y_train, minlength=d.num_classes).tolist(),
        "test_class_counts": np.bincount(arrays.y_test, minlength=d.num_classes).tolist(),
        "pixel_mean": round(float(x.mean()), 4),
        "pixel_std": round(float(x.std()), 4),
    }


def describe_all(datasets, data_dir: str | None = None, verify: bool = False) -> list[dict]:
    """One row per registered dataset: what it is, and where (if anywhere) it was found; with
    ``verify``, each one found here is loaded and its checksums compared (``verified``)."""
    rows = []
    for ds in datasets:
        found = locate(ds, data_dir)
        row = {"name": ds.name, "description": ds.description, "classes": len(ds.class_names),
               "license": ds.license, "found": source_text(found) if found else None}
        if verify and found:
            row["verified"] = verify_checksums(load(ds, data_dir))
        rows.append(row)
    return rows


def describe(dataset: Dataset, data_dir: str | None = None, verify: bool = False) -> tuple[dict, Arrays]:
    """``summary`` of a dataset (with its checksums verified if asked), and its arrays."""
    arrays = load(dataset, data_dir)
    found = summary(arrays)
    if verify:
        found["verified"] = verify_checksums(arrays)
    return found, arrays
