"""Datasets from folders of images: ``DIR/<label>/*.png``, the layout Keras's
``image_dataset_from_directory`` reads.

A class's digits drawn on the classroom page (``zoo serve --collect-into DIR``), a scan of
a worksheet cut into files, a small dataset of your own: each sub-folder is a class, named
by its folder, in alphanumeric order as Keras orders them. Where ``DIR`` has ``train/``
and ``test/`` sub-folders in that layout, they are the split; otherwise a fixed, stratified
fifth of the images is the test set, the same on every machine.

Use one wherever a dataset name goes: ``--dataset folder:DIR``, or name it once with
``zoo data add NAME DIR``. Images are read as grayscale at the folder's most common size
(others are resized to it, as Keras resizes); models are built for that size and for the
folder's classes. A model trained on another dataset is tested on *every* image of the
folder (none of them was seen in training), each preprocessed as ``zoo predict`` does.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np
import platformdirs

from zoo import settings
from zoo.data import stratified_subset
from zoo.errors import ZooError
from zoo.files import atomic_write_json, cache_dir, read_json
from zoo.files import cache_enabled as enabled
from zoo.imaging import load_grayscale
from zoo.registry import Dataset, is_model_name

PREFIX = "folder:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_IMAGES = 200_000        # far more than a class will draw; a wrong folder (a whole disk) stops here
MAX_SIDE = 512              # a dataset image larger than this is resized down to it
TEST_FRACTION = 0.2
SPLIT_SEED = 0
CONFIG_DIR_ENV = settings.ENVIRONMENT["config_dir"]
ADDED_FILE = "datasets.json"


def is_folder_name(name: str) -> bool:
    return name.startswith(PREFIX)


def _class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())


def scan(root: Path) -> tuple[tuple[str, ...], dict[str, list[tuple[Path, int]]]]:
    """The class names and, per part ("train", "test" or "all"), each image with its class number."""
    if not root.is_dir():
        raise ZooError(f"{root}: {'not a folder' if root.exists() else 'no such folder'} "
                       f"(a folder dataset is DIR/<label>/*.png)")
    parts = {"train": root / "train", "test": root / "test"}
    split = all(p.is_dir() and any(_class_folders(p)) for p in parts.values())
    if not split:
        parts = {"all": root}
    names = sorted({c.name for folder in parts.values() for c in _class_folders(folder)})
    found, total = {}, 0
    for part, folder in parts.items():
        found[part] = []
        for number, name in enumerate(names):
            if (folder / name).is_dir():
                images = _images_in(folder / name)
                total += len(images)
                if total > MAX_IMAGES:
                    raise ZooError(f"{root}: more than {MAX_IMAGES:,} images; is this the right folder?")
                found[part] += [(path, number) for path in images]
    used = {n for items in found.values() for _, n in items}
    labelled = [name for number, name in enumerate(names) if number in used]
    if not labelled:
        raise ZooError(f"{root}: no images in class folders (expected {root}/<label>/*.png, e.g. {root}/3/a.png)")
    return tuple(labelled), _renumbered(found, names, labelled)


def _renumbered(found, names, labelled):
    """Class numbers over the folders that hold images (an empty folder is no class)."""
    new = {names.index(name): i for i, name in enumerate(labelled)}
    return {part: [(path, new[n]) for path, n in items] for part, items in found.items()}


def _size_of(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:  # the header only
            return im.size[1], im.size[0]
    except (UnidentifiedImageError, OSError) as exc:
        raise ZooError(f"{path}: not an image Pillow can read ({type(exc).__name__})") from None


def common_size(paths: list[Path]) -> tuple[int, int]:
    """The most common (height, width) among the images, at most MAX_SIDE a side."""
    (h, w), _ = Counter(_size_of(p) for p in paths).most_common(1)[0]
    scale = min(1.0, MAX_SIDE / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def read_images(paths: list[Path], size: tuple[int, int]) -> np.ndarray:
    """Each image as uint8 grayscale at ``size`` (resized where it differs), as Keras reads a folder."""
    from PIL import Image

    out = np.empty((len(paths), *size), dtype="uint8")
    for i, path in enumerate(paths):
        gray = load_grayscale(path)
        if gray.shape != size:
            gray = np.asarray(Image.fromarray(gray.astype("float32"), mode="F").resize(size[::-1], Image.BILINEAR))
        out[i] = np.clip(np.round(gray), 0, 255).astype("uint8")
    return out


def listing_key(root: Path) -> list:
    """What a folder dataset's scan depends on: every folder's (name, mtime, entry count) down to
    the class folders. A file added, removed or renamed in a class folder changes its mtime."""
    key = []
    for folder in [root, *(root / p for p in ("train", "test") if (root / p).is_dir())]:
        for sub in [folder, *_class_folders(folder)]:
            stat = sub.stat()
            key.append([str(sub.relative_to(root)), stat.st_mtime_ns, stat.st_size])
    return key


def scanned(root: Path) -> tuple[tuple[str, ...], dict, tuple[int, int]]:
    """``scan`` and ``common_size`` of ``root``, from the cache while its folders are unchanged
    (``listing_key``): ``zoo data`` with many added folders does not open every image again."""

    if not root.is_dir():
        return _scan_and_size(root)
    key = listing_key(root)
    where = cache_dir() / "folders" / (hashlib.sha256(str(root).encode()).hexdigest()[:24] + ".json")
    if enabled() and where.is_file():
        try:
            saved = read_json(where, "folder scan cache")
            if saved.get("key") == key:
                parts = {part: [(root / rel, int(n)) for rel, n in items] for part, items in saved["parts"].items()}
                return tuple(saved["classes"]), parts, tuple(saved["size"])
        except (ZooError, AttributeError, KeyError, TypeError, ValueError):
            pass  # a damaged cache is scanned again
    classes, parts, size = _scan_and_size(root)
    if enabled():
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(where, {"key": key, "classes": list(classes), "size": list(size),
                                      "parts": {part: [[str(p.relative_to(root)), n] for p, n in items]
                                                for part, items in parts.items()}})
        except OSError:
            pass  # an unwritable cache only costs the next scan
    return classes, parts, size


def _scan_and_size(root: Path):
    classes, parts = scan(root)
    return classes, parts, common_size([p for items in parts.values() for p, _ in items])


def folder_dataset(root, name: str | None = None) -> Dataset:
    """A ``Dataset`` of the images under ``root`` (named ``folder:ROOT`` unless ``name`` is given)."""
    root = Path(os.path.expanduser(str(root))).resolve()
    classes, parts, (height, width) = scanned(root)
    paths = [p for items in parts.values() for p, _ in items]
    split = "train" in parts
    sizes = (len(parts["train"]), len(parts["test"])) if split else None

    def load() -> dict:
        if split:
            train, test = parts["train"], parts["test"]
        else:
            items = parts["all"]
            labels = np.array([n for _, n in items])
            chosen = set(stratified_subset(labels, max(1, round(len(items) * TEST_FRACTION)), SPLIT_SEED).tolist())
            train = [item for i, item in enumerate(items) if i not in chosen]
            test = [item for i, item in enumerate(items) if i in chosen]
        arrays = {}
        for part, items in (("train", train), ("test", test)):
            arrays[f"x_{part}"] = read_images([p for p, _ in items], (height, width))
            arrays[f"y_{part}"] = np.array([n for _, n in items], dtype="int64")
        return arrays

    how = "its train/ and test/ folders" if split else f"a stratified {TEST_FRACTION:.0%} test set (seed {SPLIT_SEED})"
    return Dataset(
        name=name or f"{PREFIX}{root}",
        description=f"{len(paths):,} images in {len(classes)} class folders of {root}",
        class_names=classes, source=str(root), license="yours", image_shape=(height, width, 1),
        sizes=sizes, loader=load, located=f"folder {root} ({how}; {height}×{width} grayscale)")


# -- named folders (zoo data add NAME DIR) ---------------------------------------------
def config_dir() -> Path:
    where = settings.current().config_dir
    return Path(where) if where else Path(platformdirs.user_config_dir("mnist-zoo", appauthor=False))


MAX_ADDED_BYTES = 1_000_000  # a table of names and folders: thousands of entries fit


def added() -> dict[str, str]:
    """Dataset names given to folders by ``zoo data add``: name → folder (read as every JSON the
    zoo reads: capped in size, deep nesting and NaN refused, one line if unreadable)."""
    path = config_dir() / ADDED_FILE
    if not path.exists():
        return {}
    try:
        data = read_json(path, "table of named datasets", limit=MAX_ADDED_BYTES)
    except ZooError as exc:
        raise ZooError(f"{exc}; fix or delete it") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ZooError(f"{path}: not a name → folder table; fix or delete it")
    return data


def added_datasets() -> list[Dataset]:
    """The named folders as datasets; one whose folder is gone or unreadable is left out."""
    found = []
    for name, folder in added().items():
        try:
            found.append(folder_dataset(folder, name))
        except ZooError:
            continue
    return found


def add(name: str, folder, taken) -> Dataset:
    """Name a folder dataset (checked by reading it first); ``taken``: names already registered."""
    if not is_model_name(name):
        raise ZooError(f"dataset name {name!r}: use lower-case letters, digits and single dashes, starting with a letter")
    if name in taken:
        raise ZooError(f"dataset name {name!r} is already taken by a registered dataset")
    table = added()  # an unreadable table is said before the folder is read
    dataset = folder_dataset(folder, name)
    table[name] = dataset.source
    config_dir().mkdir(parents=True, exist_ok=True)
    atomic_write_json(config_dir() / ADDED_FILE, table)
    return dataset


def remove(name: str) -> None:
    table = added()
    if name not in table:
        raise ZooError(f"no dataset named {name!r} was added (zoo data add NAME DIR)")
    del table[name]
    atomic_write_json(config_dir() / ADDED_FILE, table)
