"""A cache of what building a model tells (params, MACs, layer rows), so `zoo list` and
`zoo info` need not build every model every time.

An entry is keyed by everything that could change the answer: mnist-zoo's and Keras's
versions, the plugin's distribution and version, and the size and modification time
of every source file of the plugin (so an editable plugin being edited is never
stale), plus the model name and input. It lives in the user's cache folder
(``platformdirs``), or ``ZOO_CACHE_DIR``; ``ZOO_NO_CACHE=1`` bypasses it. A damaged
or unwritable cache is ignored: the models are then built as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import SimpleNamespace

from zoo import settings
from zoo.anatomy import LayerRow, ModelStats, architecture_stats
from zoo.cards import card, summary_row
from zoo.errors import ZooError
from zoo.files import (
    atomic_write_json,
    cache_dir,
    json_text,
    read_json,
)
from zoo.files import cache_enabled as enabled
from zoo.plugins import (
    GROUPS,
    SESSION_PLUGIN,
    ordered_entry_points,
    session_architectures,
)
from zoo.registry import select

STATS_FILE = "model-stats-v2.json"  # v2: ModelStats.outputs


def source_fingerprint(module) -> list:
    """(path, size, mtime_ns) of each .py file of a plugin module or package."""
    file = getattr(module, "__file__", None)
    if not file:
        return []
    path = Path(file)
    return _files(path.parent.rglob("*.py") if path.name == "__init__.py" else [path])


def _version(dist: str) -> str:
    try:
        return version(dist)
    except (PackageNotFoundError, ValueError):
        return "?"


def key(arch, plugin, image_shape, num_classes) -> str:
    module = sys.modules.get(plugin.module_name) if plugin else None
    parts = {
        "zoo": _version("mnist-zoo"),
        "keras": _version("keras"),
        "plugin": [plugin.name, plugin.distribution, plugin.version] if plugin else None,
        "files": source_fingerprint(module) if module else None,
        "model": arch.name,
        "input": [list(image_shape), num_classes],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _read() -> dict:
    try:
        data = read_json(cache_dir() / STATS_FILE, "cache")
        return data if isinstance(data, dict) else {}
    except ZooError:
        return {}


def _write(entries: dict) -> None:
    try:
        atomic_write_json(cache_dir() / STATS_FILE, entries)
    except OSError:
        pass  # a read-only home: no cache, same answers


def _stats_from(data: dict):
    layers = [LayerRow(**{**row, "output_shape": tuple(row["output_shape"])}) for row in data["layers"]]
    return ModelStats(**{**data, "input_shape": tuple(data["input_shape"]),
                         "output_shape": tuple(data["output_shape"]), "layers": layers})


def cached_stats(registry, arch, image_shape=(28, 28, 1), num_classes=10):
    """``zoo.anatomy.architecture_stats``, answered from the cache when nothing changed."""
    if not enabled() or arch.plugin == SESSION_PLUGIN:  # a notebook cell's model changes with no file changing
        return architecture_stats(arch, image_shape, num_classes)
    plugin = registry.plugin_of(arch.name)
    entry = key(arch, plugin, image_shape, num_classes)
    entries = _read()
    if entry in entries:
        try:
            return _stats_from(entries[entry])
        except (KeyError, TypeError, ValueError):
            pass  # an entry from a damaged file: rebuild it
    stats = architecture_stats(arch, image_shape, num_classes)  # raises ZooError for a broken model
    entries = _read()  # another process may have written meanwhile
    entries[entry] = dataclasses.asdict(stats)
    _write(entries)
    return stats


# -- the whole listing, answered without importing a plugin (or TensorFlow) -------------
LISTING_FILE = "listing-v1.json"


def _files(paths) -> list:
    out = []
    for path in sorted(paths):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append([str(path), st.st_size, st.st_mtime_ns])
    return out


def _spec_files(module_name: str) -> list | None:
    """The source files of an entry point's module, found without importing it (None if unknown)."""
    if "." in module_name:
        return None  # finding a submodule would import its parent package
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return None
    origin = Path(spec.origin)
    return _files(origin.parent.rglob("*.py") if spec.submodule_search_locations else [origin])


def listing_key(plugins_dir: str | None) -> str | None:
    """Everything the listing depends on, read without importing any plugin; None when a
    plugin's files cannot be found that way (then the listing is built the usual way)."""
    plugins_dir = plugins_dir or settings.current().plugins_dir
    parts = {"zoo": _version("mnist-zoo"), "keras": _version("keras"),
             "zoo-files": _files(Path(__file__).parent.glob("*.py")),
             "disabled": ",".join(settings.current().disabled_plugins), "entry-points": []}
    for group in GROUPS:
        for ep in ordered_entry_points(group):
            files = _spec_files(ep.module)
            if files is None:
                return None
            dist = [ep.dist.name, ep.dist.version] if ep.dist else None
            parts["entry-points"].append([group, ep.name, ep.value, dist, files])
    if plugins_dir:
        folder = Path(plugins_dir)
        if not folder.is_dir():
            return None  # loading will say so, in one line
        parts["plugins-dir"] = _files(folder.glob("*.py"))
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def read_listing(plugins_dir: str | None) -> dict | None:
    """The saved listing (summary rows, cards, warnings) if nothing it depends on changed."""
    if not enabled():
        return None
    key = listing_key(plugins_dir)
    if key is None:
        return None

    try:
        data = read_json(cache_dir() / LISTING_FILE, "cache")
    except ZooError:
        return None
    if not isinstance(data, dict) or data.get("key") != key or not _listing_shaped(data):
        return None  # damaged, or of another shape: built again, as if there were none
    return data


_NUMBER = (int, float)
_ROW_TYPES = {"name": str, "title": str, "params": int, "macs": int, "input_kind": str, "tags": list, "source": str,
              "article_file": str, "site": str, "published_accuracy": (*_NUMBER, type(None)), "recipes": list,
              "plugin": (str, type(None))}
_CARD_TYPES = {"summary": str, "teaches": str, "source": dict, "output": str, "test_time_views": int, "trainable_params": int,
               "non_trainable_params": int, "input_shape": list, "output_shape": list, "layers": list,
               "recipes": list, "data_preparation": dict, "notes": list, "pitfalls": list}
_LAYER_TYPES = {"name": str, "type": str, "output_shape": list, "params": int, "arithmetic": str, "macs": int}


def _typed(value, types: dict) -> bool:
    return isinstance(value, dict) and all(
        key in value and isinstance(value[key], kind) and not (kind is int and isinstance(value[key], bool))
        for key, kind in types.items())


def _listing_shaped(data: dict) -> bool:
    """Whether a saved listing has the types ``listing_data`` writes: valid JSON of other types
    (a hand edit, another version's file) is treated as no listing at all."""
    models, warnings = data.get("models"), data.get("warnings")
    if not isinstance(models, list) or not isinstance(warnings, list):
        return False
    for model in models:
        if not (isinstance(model, dict) and isinstance(model.get("name"), str) and isinstance(model.get("tags"), list)
                and all(isinstance(t, str) for t in model["tags"])):
            return False
        row, card = model.get("row"), model.get("card")
        if row is None and card is None:
            continue
        if not (_typed(row, _ROW_TYPES) and row["name"] == model["name"] and _typed(card, {**_ROW_TYPES, **_CARD_TYPES})
                and all(_typed(layer, _LAYER_TYPES) for layer in card["layers"])
                and all(isinstance(r, dict) for r in card["recipes"])):
            return False
    return all(isinstance(w, dict) and isinstance(w.get("text"), str) for w in warnings)


def listing_data(registry, warnings: list[dict], only=None, skip=()) -> dict:
    """What `zoo list` and `zoo info` show, for every model (``row`` None for one that cannot be built);
    ``only`` / ``skip``: names to list alone, or to leave out."""
    models = []
    for arch in registry.architectures.values():
        if (only is not None and arch.name not in only) or arch.name in skip:
            continue
        stats, problem = registry.check_model(arch, cached_stats)
        if stats is None:
            warnings.append({"model": arch.name, "text": f"{problem} (left out; `zoo check {arch.name}` says more)"})
            models.append({"name": arch.name, "tags": list(arch.tags), "row": None, "card": None, "error": problem})
            continue
        if problem:
            warnings.append({"model": arch.name, "text": f"{problem}: it cannot be trained "
                             f"(`zoo check {arch.name}` says more)"})
        models.append({"name": arch.name, "tags": list(arch.tags), "row": summary_row(arch, stats),
                       "card": card(arch, stats)})
    return {"models": models, "warnings": warnings}


def write_listing(plugins_dir: str | None, data: dict) -> None:
    """Save the listing keyed by ``listing_key``, for the next `zoo list` or `zoo info`; a listing
    with any failure is not saved, so a fixed environment is seen at once."""
    if not enabled() or data["warnings"]:
        return  # a failure may come from outside the plugin's files (a missing package): never cache it
    key = listing_key(plugins_dir)
    if key is None:
        return
    try:
        atomic_write_json(cache_dir() / LISTING_FILE, {"key": key, **json.loads(json_text(data))})
    except OSError:
        pass


def listing(plugins_dir: str | None, load_registry) -> dict:
    """The listing: saved, or built from ``load_registry()`` (which imports the plugins) and saved.
    Models registered in this process (``zoo.register``) are listed after, built fresh, never saved."""
    session = session_architectures()
    data = read_listing(plugins_dir)
    if data is None:
        registry = load_registry()
        data = listing_data(registry, [{"model": None, "text": f"{f.line()} (see `zoo plugins`)"}
                                       for f in registry.failures], skip=session)
        write_listing(plugins_dir, data)
    if not session:
        return data
    extra = listing_data(load_registry(), [], only=session)
    return {"models": data["models"] + extra["models"], "warnings": data["warnings"] + extra["warnings"]}


def pick(data: dict, patterns=(), tag: str | None = None) -> list[dict]:
    """The listed models that patterns and tag select, exactly as ``zoo.registry.select`` would."""

    by_name = {m["name"]: m for m in data["models"]}
    chosen = select({n: SimpleNamespace(name=n, tags=tuple(m["tags"])) for n, m in by_name.items()}, patterns, tag)
    return [by_name[a.name] for a in chosen]
