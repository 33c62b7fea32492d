"""Atomic file writes: write beside the target, then rename, so an interrupted run
never leaves a half-written file behind."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
import unicodedata
from pathlib import Path

import platformdirs

from zoo import settings
from zoo.errors import RunFileError, ZooError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes files only their owner can read; a run's files get the user's usual
# permissions instead (0644 under the common umask 022), like any file they write.
FILE_MODE = 0o666 & ~_umask()


TEMP_PREFIX = ".zoo-tmp-"


def _tmp_beside(path: Path, suffix: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.stem}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        pass
    finally:
        os.close(fd)
    return Path(tmp)


def _atomic(path, write, suffix: str | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    tmp = _tmp_beside(path, suffix or path.suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sweep_temporaries(folder, older_than: float = 600.0, depth: int = 2) -> int:
    """Remove temporary files a killed process left (``kill -9`` mid-save) in ``folder`` and
    its sub-folders down to ``depth``; recent ones may belong to a running save. Returns
    how many were removed."""
    folder, removed, cutoff = Path(folder), 0, time.time() - older_than
    patterns = [f"{'*/' * level}{TEMP_PREFIX}*" for level in range(depth + 1)]
    for pattern in patterns:
        for tmp in folder.glob(pattern):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except OSError:
                pass
    return removed


def atomic_write_bytes(path, data: bytes) -> Path:
    return _atomic(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path, text: str) -> Path:
    return _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def json_text(data) -> str:
    """Indented, strict JSON (a NaN or an infinity is written as null: JSON has neither) that also
    takes NumPy values and paths."""
    return json.dumps(_finite(data), indent=2, ensure_ascii=False, default=_plain, allow_nan=False) + "\n"


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _finite(value.tolist())
    return value


# The user cache folder (model stats, listings, folder scans): ZOO_CACHE_DIR, else the platform's.
CACHE_DIR_ENV = settings.ENVIRONMENT["cache_dir"]
NO_CACHE_ENV = settings.ENVIRONMENT["cache"]


def cache_dir() -> Path:
    configured = settings.current().cache_dir
    if configured:
        return Path(configured).expanduser()

    return Path(platformdirs.user_cache_dir("mnist-zoo", appauthor=False))


def cache_enabled() -> bool:
    """False with ZOO_NO_CACHE=1: everything is computed anew."""
    return settings.current().cache


MAX_JSON_BYTES = 50_000_000  # far more than any run.json, history or plan; a 3 GB file is refused unread


def read_json(path, what: str = "file", limit: int = MAX_JSON_BYTES):
    """Parsed JSON from ``path``, or a one-line ``RunFileError``: a file over ``limit`` bytes is
    refused before reading, NaN and Infinity (not JSON) are refused, deep nesting is an error
    and not a RecursionError."""
    path = Path(path)

    def not_json(constant):
        raise ValueError(f"{constant} is not JSON")

    try:
        size = path.stat().st_size
        if size > limit:
            raise RunFileError(f"{path}: {size:,} bytes, more than any {what} ({limit:,}); refused unread")
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=not_json)
    except RunFileError:
        raise
    except RecursionError:
        raise RunFileError(f"{path}: unreadable {what} (nested too deeply)") from None
    except MemoryError:
        raise RunFileError(f"{path}: unreadable {what} (it needs more memory than this machine has)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFileError(f"{path}: unreadable {what} ({type(exc).__name__}: {str(exc)[:120]})") from None


def atomic_write_json(path, data) -> Path:
    return atomic_write_text(path, json_text(data))


def atomic_savefig(fig, path) -> Path:
    return _atomic(path, lambda tmp: fig.savefig(tmp, dpi=100))


def atomic_save_model(model, path) -> Path:
    return _atomic(path, model.save, suffix=".keras")  # Keras insists on the .keras suffix


# A name read from a file or a plugin becomes part of a path only through ``path_part``.
MAX_PATH_PART = 80  # bytes: far below every file system's 255, with room for suffixes


def path_part(name, what: str = "name") -> str:
    """``name`` as one safe file or folder name: no separator, no ``.``/``..``, no control
    character; one longer than ``MAX_PATH_PART`` bytes becomes a stable short form (its start
    and a hash of the whole). Anything else is a one-line ``ZooError``: a model name like
    ``../../x`` read from a run.json must never put a file outside the folder being written."""

    text = str(name)
    bad = next((ch for ch in text if ch in "/\\\0" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None)
    if not text.strip() or text.strip(".") == "" or bad is not None:
        shown = repr(text[:60]) + ("…" if len(text) > 60 else "")
        reason = f"it holds {bad!r}" if bad is not None else "it is empty or only dots"
        raise RunFileError(f"{what} {shown} cannot name a file or folder ({reason})")
    if len(text.encode("utf-8")) > MAX_PATH_PART:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
        start = text.encode("utf-8")[:MAX_PATH_PART - 11].decode("utf-8", "ignore")
        text = f"{start}-{digest}"
    return text


def _plain(value):
    """JSON for NumPy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def link_outside(path, root) -> Path | None:
    """Where ``path`` really is, when a symbolic link takes it out of ``root`` (None otherwise):
    a run folder linked in from elsewhere is read, and said so, but never deleted or written."""
    path, root = Path(path), Path(root)
    try:
        real = path.resolve()
        real.relative_to(root.resolve())
        return None
    except ValueError:
        return real
    except OSError:
        return None


def check_output_folder(path, what: str = "folder") -> None:
    """A folder the zoo will create or write into, checked before any work: it or its nearest
    existing parent must be a folder this process may write in."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ZooError(f"{path} is a file: give a {what}")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ZooError(f"cannot create {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ZooError(f"cannot write {path}: no permission to write in {existing}")


def check_output_file(path) -> None:
    """A file the zoo will write, checked before any work (a training, a figure): a folder given
    as a file, or a file whose folder is missing or read-only, is one line now, not a traceback
    later."""
    path = Path(path)
    if path.is_dir():
        raise ZooError(f"{path} is a folder: give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ZooError(f"cannot write {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ZooError(f"cannot write {path}: no permission to write there")


def read_npy_entry(archive, name: str, path, limit: int, what: str = "this file"):
    """One array of an open ``.npz`` archive, its header checked before any data is read: a
    small file that declares a billion entries is refused before it takes gigabytes."""
    import numpy as np

    fmt = np.lib.format
    with archive.open(name) as fh:
        version = fmt.read_magic(fh)
        reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if reader is None:
            raise ZooError(f"{path}: {name} has an unknown .npy format version {version}")
        shape, fortran_order, dtype = reader(fh)
        if dtype.hasobject:
            raise ZooError(f"{path}: {name} holds Python objects (a pickle); only plain arrays are read")
        nbytes = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
        if nbytes > limit:
            raise ZooError(f"{path}: {name} of shape {shape} claims {nbytes:,} bytes, more than the {limit:,} "
                           f"{what} can hold; refused before reading")
        data = fh.read(nbytes + 1)
    if len(data) != nbytes:
        raise ZooError(f"{path}: {name} is truncated or padded: its header promises {nbytes:,} bytes, "
                       f"the archive holds {len(data):,}")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
