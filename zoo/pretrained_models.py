"""Pretrained models shipped with the zoo: a class starts with real numbers and no wait.

Each is an ordinary run folder (run.json, model.keras, history, per-image test results) in
``zoo/pretrained/NAME/``, trained once with its model's own full recipe on the held-out
split (seed 42, MNIST's 54,000 training images, 6,000 held out for validation), and listed
in ``zoo/pretrained/manifest.json`` with the SHA-256 of every file. Opening one checks those
checksums first, then loads it through the same safe loader as any run (``runs.open_run``):
a damaged or swapped file is one line, never a model.

The saved models hold no optimizer state (it is only needed to go on training, and it is two
to three times the weights' size), so the four of them weigh about 4 MB together.

Every verb that takes a run takes a pretrained model's name (``zoo.predict("speedrun", …)``,
``zoo explain best 7``); a folder of that name in the working directory wins. Maintainers
rebuild one with ``zoo train NAME --seed 42`` and ``python -m zoo.pretrained_models RUN_DIR NAME``
(CONTRIBUTING.md).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from zoo.errors import RunFileError, UnknownNameError
from zoo.files import atomic_save_model, atomic_write_json, read_json
from zoo.plugins import get_zoo

FOLDER = Path(__file__).parent / "pretrained"
MANIFEST = "manifest.json"
SEED = 42
# What ships, and the multi-seed runs in docs/results each single pretrained run is read beside.
SHIPPED = {"mlp": "article-three-seeds", "baseline-cnn": "article-three-seeds",
           "speedrun": "speedrun-five-seeds", "best": "best-fresh-seeds"}
FILES = ("run.json", "model.keras", "history.json", "test_predictions.npz")


def manifest() -> dict:
    """The manifest: ``{"models": [{"name", "files": {file: sha256}, "bytes", "reference"}, ...]}``."""
    path = FOLDER / MANIFEST
    if not path.is_file():
        return {"models": []}
    data = read_json(path, "pretrained models' manifest", limit=1_000_000)
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"] in SHIPPED
            and isinstance(e.get("files"), dict) and set(e["files"]) == set(FILES)
            and all(isinstance(v, str) for v in e["files"].values()) and isinstance(e.get("bytes"), int)
            for e in entries):
        raise RunFileError(f"{path}: not a manifest of pretrained models (reinstall mnist-zoo)")
    return data


def names() -> list[str]:
    return [entry["name"] for entry in manifest()["models"]]


def _entry(name: str) -> dict:
    for entry in manifest()["models"]:
        if entry["name"] == name:
            return entry
    raise UnknownNameError(f"no pretrained model {name!r} (pretrained: {', '.join(names()) or 'none installed'}; "
                           f"`zoo pretrained` lists them)")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder(name: str) -> Path:
    """The run folder of pretrained ``name``, after every file matched its SHA-256 in the manifest."""
    entry = _entry(name)
    where = FOLDER / entry["name"]
    for file, expected in entry["files"].items():
        path = where / file
        if not path.is_file():
            raise RunFileError(f"pretrained {name}: {file} is missing from {where} (reinstall mnist-zoo)")
        if sha256(path) != expected:
            raise RunFileError(f"pretrained {name}: {file} does not match its SHA-256 in the manifest "
                               f"(the installed copy is damaged or was changed: reinstall mnist-zoo)")
    return where


def is_pretrained(run) -> bool:
    """Whether ``run`` names a pretrained model rather than a folder (a folder of that name wins)."""
    return isinstance(run, str) and not Path(run).exists() and run in names()


def is_shipped_folder(path) -> bool:
    """Whether ``path`` is inside the shipped pretrained folder (read-only: write nothing there)."""
    try:
        return Path(path).resolve().is_relative_to(FOLDER.resolve())
    except OSError:
        return False


def listing() -> list[dict]:
    """Each pretrained model: its accuracy, size, checksum and how it was trained."""
    from zoo.runs import read_record

    out = []
    for entry in manifest()["models"]:
        record = read_record(FOLDER / entry["name"])
        cpu = (record.environment.get("cpu") or {}).get("model") or record.environment.get("machine")
        out.append({
            "name": entry["name"], "model": record.model, "recipe": record.recipe, "seed": record.seed,
            "test_accuracy": record.test_accuracy, "best_val_accuracy": record.best_val_accuracy,
            "epochs": record.epochs_completed, "batch_size": record.hyperparameters.get("batch_size"),
            "train_images": record.split.train, "validation_images": record.split.validation,
            "params": record.params, "bytes": entry["bytes"], "sha256": entry["files"]["model.keras"],
            "training_seconds": record.training_seconds, "trained_on": cpu, "trained_at": record.finished_at,
            "keras": record.environment.get("keras"), "reference": entry.get("reference"),
            "run_dir": str(FOLDER / entry["name"]),
        })
    return out


# -- building them (maintainers) -----------------------------------------------------------------------
def reference(results: Path, model: str) -> dict:
    """The mean test accuracy of ``model``'s runs in a docs/results folder, and how many."""
    from zoo.rows import records_from_dirs

    runs = [r for r in records_from_dirs([results]) if r.model == model and r.status == "completed" and not r.knobs]
    accuracies = [r.test_accuracy for r in runs]
    return {"results": f"docs/results/{results.name}", "n": len(accuracies),
            "mean": round(sum(accuracies) / len(accuracies), 6)}


def ship(run_dir: Path, name: str, results: Path | None = None) -> dict:
    """Copy a finished run into the pretrained folder (its model saved without optimizer state)
    and return its manifest entry."""
    import keras

    from zoo.runs import open_run

    get_zoo()  # a plugin's custom layers (speedrun's fused batch norm) are registered with Keras on loading
    record, _ = open_run(run_dir)  # checked as any run is
    if record.status != "completed" or record.split.limit or record.overrides or record.knobs:
        raise RunFileError(f"{run_dir}: only a completed run of the full recipe, as registered, ships")
    target = FOLDER / name
    target.mkdir(parents=True, exist_ok=True)
    # uncompiled: the same layers and weights, without the optimizer's state
    bare = keras.saving.load_model(Path(run_dir) / "model.keras", compile=False, safe_mode=True)
    atomic_save_model(bare, target / "model.keras")
    for file in FILES:
        if file != "model.keras":
            shutil.copyfile(Path(run_dir) / file, target / file)
    files = {file: sha256(target / file) for file in FILES}
    entry = {"name": name, "files": files, "bytes": sum((target / f).stat().st_size for f in FILES)}
    if results is not None:
        entry["reference"] = reference(results, record.model)
    return entry


def ship_into_manifest(run_dir: Path, name: str, results: Path = Path("docs/results")) -> dict:
    """Ship ``run_dir`` as pretrained ``name`` and record it in the manifest (in SHIPPED's order)."""
    if name not in SHIPPED:
        raise UnknownNameError(f"{name!r} is not one of the shipped models ({', '.join(SHIPPED)})")
    entries = {e["name"]: e for e in manifest()["models"]}
    entries[name] = ship(Path(run_dir), name, results / SHIPPED[name])
    atomic_write_json(FOLDER / MANIFEST, {"schema": 1, "models": [entries[n] for n in SHIPPED if n in entries]})
    return entries[name]


if __name__ == "__main__":  # python -m zoo.pretrained_models RUN_DIR NAME (after zoo train NAME --seed 42)
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m zoo.pretrained_models RUN_DIR NAME")
    print(ship_into_manifest(Path(sys.argv[1]), sys.argv[2]))
