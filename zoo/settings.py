"""The zoo's settings: one object, read from the environment in one place, overridable in code.

Every setting has an environment variable (the way a shell, CI or a classroom machine sets
it) and a field of ``Settings``; the library reads ``current()``, never ``os.environ``.

========================  =====================  ==============================================
environment variable      ``Settings`` field     what it sets
========================  =====================  ==============================================
``ZOO_DATA_DIR``          ``data_dir``           where the datasets' files are (mnist.npz, IDX)
``ZOO_NO_DOWNLOAD``       ``download``           1: never let Keras download a missing dataset
``ZOO_RUNS_DIR``          ``runs_dir``           where runs and comparisons are written
``ZOO_PLUGINS_DIR``       ``plugins_dir``        a folder of plugin files to load as well
``ZOO_DISABLE_PLUGINS``   ``disabled_plugins``   plugins not to load (comma-separated names)
``ZOO_BUILD_TIMEOUT``     ``build_timeout``      seconds a plugin's import, hook or build may take
``ZOO_CACHE_DIR``         ``cache_dir``          the cache of model listings and folder scans
``ZOO_NO_CACHE``          ``cache``              1: read and write no cache
``ZOO_CONFIG_DIR``        ``config_dir``         where ``zoo data add`` keeps its names
``ZOO_NO_FAST_PATHS``     ``no_fast_paths``      1, or names: the reaches into internals to skip
========================  =====================  ==============================================

The command line adds ``ZOO_EXECUTOR`` and ``ZOO_SCHEDULER`` as defaults of its own flags.
In a notebook or a test, ``with zoo.settings.using(data_dir="~/mnist"):`` changes settings
for a block; ``current()`` reads the environment again whenever one of its variables changed.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from zoo.errors import OptionError

BUILD_TIMEOUT_SECONDS = 30.0  # a plugin's import or hook, one model's build(): a hang is named after this
MAX_TIMEOUT_SECONDS = 86_400.0  # a day: longer is no time limit at all (and overflows a thread's join)
ENVIRONMENT = {  # field → its environment variable
    "data_dir": "ZOO_DATA_DIR", "download": "ZOO_NO_DOWNLOAD", "runs_dir": "ZOO_RUNS_DIR",
    "plugins_dir": "ZOO_PLUGINS_DIR", "disabled_plugins": "ZOO_DISABLE_PLUGINS",
    "build_timeout": "ZOO_BUILD_TIMEOUT", "cache_dir": "ZOO_CACHE_DIR", "cache": "ZOO_NO_CACHE",
    "config_dir": "ZOO_CONFIG_DIR", "no_fast_paths": "ZOO_NO_FAST_PATHS",
}


@dataclass(frozen=True)
class Settings:
    """What the environment (or ``using``) set; each field's default is the zoo's own."""

    data_dir: str | None = None
    download: bool = True
    runs_dir: str = "runs"
    plugins_dir: str | None = None
    disabled_plugins: tuple[str, ...] = ()
    build_timeout: float = BUILD_TIMEOUT_SECONDS
    cache_dir: str | None = None
    cache: bool = True
    config_dir: str | None = None
    no_fast_paths: str = ""  # "", "1"/"all", or names: zoo.keras_glue.fast_path_enabled reads it

    def __post_init__(self):
        for name in ("data_dir", "plugins_dir", "cache_dir", "config_dir", "runs_dir"):
            value = getattr(self, name)
            if isinstance(value, Path):
                object.__setattr__(self, name, str(value))
            elif value is not None and not isinstance(value, str):
                raise OptionError(f"is a folder's path, not {value!r}", parameter=name)
        if isinstance(self.disabled_plugins, str):
            object.__setattr__(self, "disabled_plugins", _names(self.disabled_plugins))
        if not _a_timeout(self.build_timeout):
            raise OptionError(f": give a number of seconds above 0 and at most {MAX_TIMEOUT_SECONDS:,.0f}",
                              parameter="build_timeout", value=self.build_timeout)

    @classmethod
    def from_environment(cls, environ=None) -> Settings:
        """The settings the environment variables give (each checked: one line naming the variable)."""
        environ = os.environ if environ is None else environ
        given = {field: environ.get(variable, "").strip() for field, variable in ENVIRONMENT.items()}
        chosen = {}
        for field in ("data_dir", "runs_dir", "plugins_dir", "cache_dir", "config_dir", "no_fast_paths"):
            if given[field]:
                chosen[field] = given[field]
        chosen["download"] = given["download"] in ("", "0")
        chosen["cache"] = given["cache"] in ("", "0")
        chosen["disabled_plugins"] = _names(given["disabled_plugins"])
        if given["build_timeout"]:
            text = given["build_timeout"]
            try:
                chosen["build_timeout"] = float(text)
            except ValueError:
                chosen["build_timeout"] = math.nan
            if not _a_timeout(chosen["build_timeout"]):  # said with the variable's name, as it was typed
                raise OptionError(f"{ENVIRONMENT['build_timeout']}={text[:30]!r}: give a number of seconds above 0 "
                                  f"and at most {MAX_TIMEOUT_SECONDS:,.0f}")
        return cls(**chosen)


def _a_timeout(seconds) -> bool:
    """A finite number of seconds above 0 and at most a day."""
    return not isinstance(seconds, bool) and isinstance(seconds, (int, float)) and math.isfinite(seconds) \
        and 0 < seconds <= MAX_TIMEOUT_SECONDS


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


_read: tuple[tuple, Settings] | None = None  # (the environment's values, what they gave)
_overrides: list[dict] = []  # ``using`` blocks, innermost last


def current() -> Settings:
    """The settings in force: the environment's, read again only when one of its variables
    changed, with any ``using`` block's changes on top."""
    global _read
    key = tuple(os.environ.get(variable) for variable in ENVIRONMENT.values())
    if _read is None or _read[0] != key:
        _read = (key, Settings.from_environment())
    settings = _read[1]
    for changes in _overrides:
        settings = replace(settings, **changes)
    return settings


@contextlib.contextmanager
def using(**changes):
    """Change settings for a block (a notebook cell, a test): ``with using(data_dir="~/mnist"):``.
    Each name is a ``Settings`` field, checked at once."""
    unknown = sorted(set(changes) - {f.name for f in fields(Settings)})
    if unknown:
        raise OptionError(f"settings has no {', '.join(unknown)}; it has {', '.join(f.name for f in fields(Settings))}")
    replace(current(), **changes)  # checked now, not at first use
    _overrides.append(changes)
    try:
        yield current()
    finally:
        _overrides.pop()  # blocks nest: the innermost ends first
