"""A class's drawings: saved so nothing is lost, and what they say about the models.

Every drawing a student labels ("this is a 3") is saved into the collect folder, a folder
dataset (``DIR/<label>/*.png``), and scored by every served model. The class view is those
scores: each model's accuracy on this class's handwriting with its 95% Clopper-Pearson
interval, an exact McNemar test between the best two once there are enough drawings, the
class's digits one by one, and the drawings every model missed.

Saving is safe under a class's load: a name is made unique by creating the file exclusively
(``os.link`` refuses an existing name), so two saves in the same second never share a file;
a drawing is stored small (its longer side at most ``STORED_SIDE`` pixels, as the models see
far less); the folder has a cap in drawings and bytes; a class folder that is a link is refused.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ZooError
from zoo.files import path_part
from zoo.imaging import png_bytes, png_uri
from zoo.statistics import fmt_p, mcnemar_p

STORED_SIDE = 140          # pixels, the longer side of a saved drawing (the models see 28)
MAX_DRAWINGS = 5_000       # per server: a class of 30 drawing 150 digits each
MAX_BYTES = 50_000_000     # per server, every saved drawing together
MIN_FOR_MCNEMAR = 10       # drawings both models read before the two best are tested
MISSED_SHOWN = 24


class Full(ZooError):
    """The collect folder holds as many drawings or bytes as one server may write."""


@dataclass
class Drawing:
    """One saved drawing, its label, and each served model's answer to it."""

    file: str                  # relative to the collect folder
    label: int                 # the class number
    predicted: list[int]       # per served model
    digit: np.ndarray          # the first model's preprocessed view (for the missed-drawings wall)


@dataclass
class ClassSession:
    """The drawings collected into ``folder`` and their scores (see the module's docstring)."""

    folder: Path
    classes: list[str]
    models: list[str]
    drawings: list[Drawing] = field(default_factory=list)
    bytes_written: int = 0
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0           # bumped on every change: the projector asks only for news

    # -- saving -------------------------------------------------------------------------------------
    def class_folder(self, label: str) -> Path:
        """``folder/label``, made if missing; a link (to anywhere) is refused: the class's
        drawings go into the folder the teacher named, nowhere else."""
        name = path_part(label, "class name")
        if name != label:
            raise ZooError(f"class {label!r} cannot name a folder: this model's drawings cannot be collected")
        target = self.folder / name
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise ZooError(f"{target} is a link or a file, not the class's folder: refused (nothing was saved)")
        target.mkdir(parents=True, exist_ok=True)
        if target.resolve().parent != self.folder.resolve():
            raise ZooError(f"{target} leads outside {self.folder}: refused (nothing was saved)")
        return target

    def save(self, label: str, gray: np.ndarray) -> tuple[str, int]:
        """Save a drawing as ``folder/<label>/<time>-<random>.png``, never over another;
        returns its name (relative to the folder) and how many that class now holds."""
        small = _shrunk(gray)
        data = png_bytes(np.clip(np.round(small), 0, 255).astype("uint8"))
        with self.lock:
            if len(self.drawings) >= MAX_DRAWINGS or self.bytes_written + len(data) > MAX_BYTES:
                raise Full(f"the class's folder holds {len(self.drawings):,} drawings "
                           f"({self.bytes_written / 1e6:.1f} MB), as many as one server saves: "
                           f"start a new class (the projector's button archives these)")
            target = self.class_folder(label)
            name = _write_new(target, data)
            self.bytes_written += len(data)
            count = sum(1 for _ in target.glob("*.png"))
        return f"{target.name}/{name}", count

    def add(self, file: str, label: str, predicted: list[int], digit: np.ndarray) -> None:
        with self.lock:
            self.drawings.append(Drawing(file, self.classes.index(label), predicted, digit))
            self.version += 1

    # -- what the class's drawings say --------------------------------------------------------------
    def summary(self) -> dict:
        """``GET /api/class``: per model its accuracy on the class's drawings with a 95%
        Clopper-Pearson interval; McNemar between the best two; the class's digits one by one
        (how many, each model's correct); the best model's confusion; the drawings every model missed."""
        from scipy import stats

        with self.lock:
            drawings, version = list(self.drawings), self.version
        n = len(drawings)
        rows = []
        for i, name in enumerate(self.models):
            correct = sum(d.predicted[i] == d.label for d in drawings)
            low, high = (stats.binomtest(correct, n).proportion_ci(0.95, method="exact") if n else (None, None))
            rows.append({"model": name, "correct": int(correct), "n": n,
                         "accuracy": correct / n if n else None,
                         "low": None if low is None else float(low), "high": None if high is None else float(high)})
        ranked = sorted(range(len(rows)), key=lambda i: -(rows[i]["correct"]))
        answer = {"drawings": n, "version": version, "models": rows, "mcnemar": None,
                  "confusion": None, "by_digit": [], "missed": [], "classes": self.classes,
                  "interval": "95% Clopper-Pearson (exact binomial) interval of each model's accuracy on these drawings"}
        if len(ranked) >= 2 and n:
            answer["mcnemar"] = _mcnemar(drawings, ranked[0], ranked[1], self.models)
        if n:
            best = ranked[0]
            confusion = np.zeros((len(self.classes), len(self.classes)), dtype=int)
            for d in drawings:
                confusion[d.label, d.predicted[best]] += 1
            answer["confusion"] = {"model": self.models[best], "matrix": confusion.tolist()}
            for number, label in enumerate(self.classes):
                mine = [d for d in drawings if d.label == number]
                if mine:
                    answer["by_digit"].append({"label": label, "n": len(mine), "correct": [
                        int(sum(d.predicted[i] == number for d in mine)) for i in range(len(self.models))]})
            missed = [d for d in drawings if all(p != d.label for p in d.predicted)]
            answer["missed_count"] = len(missed)
            answer["missed"] = [{"file": d.file, "label": self.classes[d.label],
                                 "read_as": [self.classes[p] for p in d.predicted], "image": png_uri(d.digit, 2)}
                                for d in missed[-MISSED_SHOWN:]]
        return answer

    # -- a new class --------------------------------------------------------------------------------
    def archive(self) -> dict:
        """Move this class's drawings into a dated folder dataset beside the collect folder
        (``DIR-YYYYmmdd-HHMMSS``), and start the count again. Nothing is deleted."""
        with self.lock:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            target = self.folder.parent / f"{self.folder.name}-{stamp}"
            n = 1
            while target.exists():
                n += 1
                target = self.folder.parent / f"{self.folder.name}-{stamp}-{n}"
            moved = 0
            for sub in sorted(self.folder.iterdir()) if self.folder.is_dir() else []:
                if sub.is_dir() and not sub.is_symlink() and sub.name in self.classes:
                    target.mkdir(parents=True, exist_ok=True)
                    moved += sum(1 for _ in sub.glob("*.png"))
                    shutil.move(str(sub), str(target / sub.name))
            self.drawings, self.bytes_written = [], 0
            self.version += 1
        return {"archived": str(target) if moved else None, "drawings": moved}


def _shrunk(gray: np.ndarray) -> np.ndarray:
    """A drawing at most ``STORED_SIDE`` pixels on its longer side (kept as drawn, only smaller)."""
    from PIL import Image

    h, w = gray.shape
    if max(h, w) <= STORED_SIDE:
        return gray
    scale = STORED_SIDE / max(h, w)
    image = Image.fromarray(gray.astype("float32"), mode="F").resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                                     Image.BILINEAR)
    return np.asarray(image)


def _write_new(folder: Path, data: bytes) -> str:
    """Write ``data`` under a new name in ``folder``: written beside, then linked to a name that
    must not exist (``os.link`` fails rather than overwrite), so no save ever replaces another."""
    temporary = folder / f".{secrets.token_hex(8)}.partial"
    temporary.write_bytes(data)
    try:
        for _ in range(20):
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}.png"
            try:
                os.link(temporary, folder / name)
                return name
            except FileExistsError:
                continue
        raise ZooError(f"{folder}: no free file name after 20 tries; nothing was saved")
    finally:
        temporary.unlink(missing_ok=True)


def _mcnemar(drawings, a: int, b: int, models: list[str]) -> dict:
    right_a = np.array([d.predicted[a] == d.label for d in drawings])
    right_b = np.array([d.predicted[b] == d.label for d in drawings])
    out = {"a": models[a], "b": models[b], "n": len(drawings), "only_a": int(np.sum(right_a & ~right_b)),
           "only_b": int(np.sum(~right_a & right_b)), "p": None}
    if len(drawings) < MIN_FOR_MCNEMAR:
        out["text"] = f"{len(drawings)} drawings: too few to test the best two ({MIN_FOR_MCNEMAR} or more)"
        return out
    out["p"] = mcnemar_p(right_a, right_b)
    verdict = ("different" if out["p"] < 0.05 else "not distinguishable on these drawings")
    out["text"] = (f"{models[a]} vs {models[b]}: {out['only_a']} drawings only the first read right, {out['only_b']} "
                   f"only the second; exact McNemar p {fmt_p(out['p'])}: {verdict}")
    return out
