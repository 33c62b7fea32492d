"""Atomic file writes: write beside the target, then rename, so an interrupted run
never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _tmp_beside(path: Path, suffix: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write_text(path, text: str) -> Path:
    path = Path(path)
    tmp = _tmp_beside(path, path.suffix)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def json_text(data) -> str:
    """Indented JSON that also takes NumPy values and paths."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=_plain) + "\n"


def atomic_write_json(path, data) -> Path:
    return atomic_write_text(path, json_text(data))


def atomic_savefig(fig, path) -> Path:
    path = Path(path)
    tmp = _tmp_beside(path, path.suffix)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_save_model(model, path) -> Path:
    path = Path(path)
    tmp = _tmp_beside(path, ".keras")  # Keras insists on the .keras suffix
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _plain(value):
    """JSON for NumPy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
