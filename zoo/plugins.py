"""The one plugin manager: finds plugins, calls their hooks, records what failed.

Built-in plugins and third-party ones load the same way: through the entry-point
groups below, one entry point at a time, so one broken plugin is recorded and
skipped instead of taking the zoo down. ``.py`` files in ``ZOO_PLUGINS_DIR`` (or
``--plugins-dir``) load too, like datasette's ``--plugins-dir``.

Precedence is a rule, not an accident of discovery: mnist-zoo's own plugins register
first, then third-party ones ordered by distribution name and entry-point name, then
the plugins folder by file name. When two register the same name, the first in that
order keeps it and the other is reported as a failure naming both. Anything a plugin
prints while loading goes to stderr: stdout belongs to ``--json``.

``register`` adds an architecture defined in the running process (a notebook cell) to
every registry of this session, as the plugin ``session``: checked like a plugin's model,
replaced when a cell registers the same name again.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import sys
import time
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from zoo import hookspecs, settings
from zoo.anatomy import architecture_stats, build_model
from zoo.errors import OptionError, ZooError
from zoo.isolation import (
    BUILD_TIMEOUT_ENV,
    DISABLE_ENV,
    PluginAbort,
    build_timeout,
    plugin_code,
    plugin_output_to_stderr,
    slow_import_notice,
    within,
)
from zoo.keras_glue import import_backend_quietly
from zoo.registry import Architecture, Dataset, Experiment, unknown_name_error

GROUPS = ("mnist_zoo.architectures", "mnist_zoo.datasets", "mnist_zoo.experiments")
PLUGINS_DIR_ENV = settings.ENVIRONMENT["plugins_dir"]
THIS_DISTRIBUTION = "mnist-zoo"
SESSION_PLUGIN = "session"  # the plugin name of architectures registered in this process


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def ordered_entry_points(group: str) -> list:
    """The group's entry points in precedence order: mnist-zoo's own, then by distribution and name."""
    def key(ep):
        dist = _normalized(ep.dist.name) if ep.dist else "~"
        return (dist != THIS_DISTRIBUTION, dist, ep.name)

    return sorted(entry_points(group=group), key=key)


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    import_seconds: float = 0.0
    module_name: str = ""  # its name in sys.modules


@dataclass
class PluginFailure:
    plugin: str
    distribution: str
    version: str
    stage: str  # "import", "hook", "register", "api"
    error: str
    hint: str = ""

    def line(self) -> str:
        return f"plugin {self.plugin!r} ({self.distribution} {self.version}) failed at {self.stage}: {self.error}"


class Zoo:
    """Everything the plugins registered, plus what went wrong loading them."""

    def __init__(self):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []
        self.disabled: list[str] = []
        self.architectures: dict[str, Architecture] = {}
        self.datasets: dict = {}
        self.experiments: dict = {}
        self._info_for: dict[int, PluginInfo] = {}
        self._owner: dict[str, PluginInfo] = {}

    # -- loading -------------------------------------------------------------
    def load(self, plugins_dir: str | None = None) -> "Zoo":
        import_backend_quietly()  # plugins import Keras: pay for it once, not in the first plugin's time
        build_timeout()  # a bad ZOO_BUILD_TIMEOUT is one line now, not every plugin's failure
        disabled = set(settings.current().disabled_plugins)
        seen_modules = set()
        for group in GROUPS:
            for ep in ordered_entry_points(group):
                dist = ep.dist.name if ep.dist else "?"
                version = ep.dist.version if ep.dist else "?"
                if ep.name in disabled:
                    self.disabled.append(ep.name)
                    continue
                if ep.value in seen_modules:
                    continue
                seen_modules.add(ep.value)
                started = time.perf_counter()
                try:
                    with slow_import_notice(ep.name, dist):
                        module = _bounded(lambda: ep.load(), f"importing plugin {ep.name!r} ({dist})")
                except Exception as exc:  # a broken plugin must not break the zoo
                    self._fail(ep.name, dist, version, "import", exc,
                               f"set {DISABLE_ENV}={ep.name} to skip it, or reinstall {dist}")
                    continue
                self._register(module, PluginInfo(ep.name, dist, version, ep.value,
                                                  import_seconds=round(time.perf_counter() - started, 3),
                                                  module_name=ep.module))
        plugins_dir = plugins_dir or settings.current().plugins_dir
        if plugins_dir:
            self._load_dir(Path(plugins_dir), disabled)
        self._call("zoo_register_architectures", self._add_architecture)
        self._call("zoo_register_datasets", self._add_dataset)
        self._call("zoo_register_experiments", self._add_experiment)
        # the articles' order (their file names), then the other models by source title
        ordered = sorted(self.architectures.values(), key=lambda a: (a.source.article_file or "~", a.source.title))
        self.architectures = {a.name: a for a in ordered}
        for arch in _session.values():  # registered in this process: after every plugin's
            self.add_session_architecture(arch)
        return self

    def add_session_architecture(self, arch: Architecture) -> None:
        """An architecture from ``register``: joins (or replaces its earlier self in) this registry."""
        info = self._session_info()
        if arch.name in self.architectures and self._owner.get(arch.name) is not info:
            owner = self._owner[arch.name]
            raise OptionError(f"{arch.name!r} is already a model of plugin {owner.name!r}: give yours another name")
        self._owner[arch.name] = info
        self.architectures[arch.name] = dataclasses.replace(arch, plugin=SESSION_PLUGIN)
        if arch.name not in info.architectures:
            info.architectures.append(arch.name)

    def forget_session_architectures(self) -> None:
        """Take the architectures ``register`` added in this process out of this registry."""
        for name in [n for n, arch in self.architectures.items() if arch.plugin == SESSION_PLUGIN]:
            del self.architectures[name]
            self._owner.pop(name, None)
        self.plugins = [p for p in self.plugins if p.name != SESSION_PLUGIN]

    def _session_info(self) -> PluginInfo:
        for info in self.plugins:
            if info.name == SESSION_PLUGIN:
                return info
        info = PluginInfo(SESSION_PLUGIN, "this Python session", "local", "__main__",
                          hooks=["zoo.register"])
        self.plugins.append(info)
        return info

    def _load_dir(self, directory: Path, disabled: set[str]):
        if not directory.is_dir():
            raise ZooError(f"plugins directory {str(directory)!r} does not exist")
        for path in sorted(directory.glob("*.py")):
            if path.stem in disabled:
                self.disabled.append(path.stem)
                continue
            module_name = f"zoo_local_plugin_{path.stem}"
            started = time.perf_counter()
            try:
                spec = importlib.util.spec_from_file_location(module_name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                with slow_import_notice(path.stem, str(path)):
                    _bounded(lambda: spec.loader.exec_module(module), f"importing plugin {path.stem!r} ({path})")
            except Exception as exc:
                sys.modules.pop(module_name, None)
                self._fail(path.stem, str(path), "local", "import", exc,
                           f"fix {path.name} or set {DISABLE_ENV}={path.stem}")
                continue
            self._register(module, PluginInfo(path.stem, str(path), "local", path.name,
                                              import_seconds=round(time.perf_counter() - started, 3),
                                              module_name=module_name))

    def _register(self, module, info: PluginInfo):
        declared = getattr(module, "ZOO_API_VERSION", hookspecs.API_VERSION)
        if declared != hookspecs.API_VERSION:
            self._fail(info.name, info.distribution, info.version, "api",
                       f"written for plugin API {declared}, this mnist-zoo speaks {hookspecs.API_VERSION}",
                       "upgrade the plugin or mnist-zoo so they agree")
            return
        unknown = [name for name in dir(module)
                   if not hasattr(hookspecs, name) and self.pm.parse_hookimpl_opts(module, name) is not None]
        if unknown:
            self._fail(info.name, info.distribution, info.version, "api",
                       f"implements hooks this mnist-zoo does not know: {', '.join(unknown)}",
                       f"this mnist-zoo (plugin API {hookspecs.API_VERSION}) ignores them")
        try:
            self.pm.register(module, name=info.name)
        except Exception as exc:
            self._fail(info.name, info.distribution, info.version, "register", exc)
            return
        info.hooks = sorted(impl.name for impl in self.pm.get_hookcallers(module) or [])
        self.plugins.append(info)
        self._info_for[id(module)] = info

    def _call(self, hook_name: str, add):
        """Call each plugin's implementation on its own, so one that raises is isolated."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():  # in registration order
            info = self._info_for[id(impl.plugin)]
            kwargs = {"register": functools.partial(add, info=info)}
            try:
                _bounded(lambda: impl.function(**{name: kwargs[name] for name in impl.argnames}),
                         f"plugin {info.name!r}'s {hook_name}")
            except Exception as exc:
                self._fail(info.name, info.distribution, info.version, "hook", exc,
                           f"{hook_name} raised; set {DISABLE_ENV}={info.name} to skip it")

    def _add_architecture(self, arch, info: PluginInfo):
        if not isinstance(arch, Architecture):
            raise TypeError(f"register() wants a zoo.Architecture, got {type(arch).__name__}")
        if arch.name in self.architectures:
            owner = self._owner[arch.name]
            self._fail(info.name, info.distribution, info.version, "register",
                       f"architecture name {arch.name!r} is already registered by plugin {owner.name!r} "
                       f"({owner.distribution}), which keeps it",
                       "built-in plugins come first, then distributions by name; rename the model")
            return
        self._owner[arch.name] = info
        self.architectures[arch.name] = dataclasses.replace(arch, plugin=info.name)
        info.architectures.append(arch.name)

    def _add_dataset(self, dataset, info: PluginInfo):
        self._add_first(dataset, Dataset, "dataset", self.datasets, info.datasets, info)

    def _add_experiment(self, experiment, info: PluginInfo):
        if self._add_first(experiment, Experiment, "experiment", self.experiments, info.experiments, info):
            self.experiments[experiment.name] = dataclasses.replace(experiment, plugin=info.name)

    def _add_first(self, thing, kind: type, what: str, table: dict, registered: list, info: PluginInfo) -> bool:
        """Register ``thing`` under its name unless a plugin registered that name first (then
        a failure of this plugin, and the first is kept). True if it was added."""
        if not isinstance(thing, kind):
            raise TypeError(f"register() wants a zoo.{kind.__name__}, got {type(thing).__name__}")
        if thing.name in table:
            self._fail(info.name, info.distribution, info.version, "register",
                       f"{what} name {thing.name!r} is already registered", "the first one is kept")
            return False
        table[thing.name] = thing
        registered.append(thing.name)
        return True

    def experiment(self, name: str):
        try:
            return self.experiments[name]
        except KeyError:
            raise unknown_name_error("experiment", name, self.experiments) from None

    def _fail(self, plugin, dist, version, stage, error, hint=""):
        if isinstance(error, PluginAbort):
            error = str(error)  # it names its own place
        elif isinstance(error, BaseException):
            where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
            at = f" ({Path(where[0].filename).name}:{where[0].lineno})" if where else ""
            error = f"{type(error).__name__}: {error}{at}"
        self.failures.append(PluginFailure(plugin, dist, version, stage, str(error), hint))

    def check_model(self, arch, stats):
        """``(stats, problem)``: a model that cannot be built gives ``(None, error)``; one whose
        output is not one score per class gives its stats and the problem; ``stats(zoo, arch)``
        builds (or recalls) a model's numbers, within ``ZOO_BUILD_TIMEOUT`` seconds: a build that
        hangs is that model's problem, and the rest of the listing answers."""
        seconds = build_timeout()
        try:
            numbers = within(seconds, lambda: stats(self, arch),
                             f"{arch.name}: build() still running after {seconds:g} s: it hangs "
                             f"(set ZOO_BUILD_TIMEOUT to wait longer)")
        except (ZooError, TimeoutError) as exc:
            return None, str(exc)
        return numbers, output_problem(arch.name, numbers)

    def model_failures(self, stats) -> list[PluginFailure]:
        """Models that cannot be built, or whose output is not one score per class: failures of
        their plugins too."""
        failures = []
        for arch in self.architectures.values():
            problem = self.check_model(arch, stats)[1]
            if problem:
                owner = self._owner[arch.name]
                failures.append(PluginFailure(owner.name, owner.distribution, owner.version, "build", problem,
                                              f"`zoo check {arch.name}` says more"))
        return failures

    # -- lookup --------------------------------------------------------------
    def plugin_of(self, architecture_name: str) -> PluginInfo | None:
        """The plugin that registered an architecture."""
        return self._owner.get(architecture_name)

    def architecture(self, name: str) -> Architecture:
        try:
            return self.architectures[name]
        except KeyError:
            raise unknown_name_error("model", name, self.architectures) from None

    def dataset(self, name: str):
        """A registered dataset, a folder (``folder:DIR``) or a folder named by ``zoo data add``."""
        from zoo import folders

        if name in self.datasets:
            return self.datasets[name]
        if folders.is_folder_name(name):
            return folders.folder_dataset(name.removeprefix(folders.PREFIX))
        named = folders.added()
        if name in named:
            return folders.folder_dataset(named[name], name)
        error = unknown_name_error("dataset", name, {**self.datasets, **named})
        raise type(error)(f"{error}; a folder of images is folder:DIR (DIR/<label>/*.png)") from None


def _bounded(fn, what: str):
    """Run a plugin's code (an import or a hook): its prints to stderr, its own sys.exit and
    KeyboardInterrupt its failure, and within ZOO_BUILD_TIMEOUT seconds, else a TimeoutError
    naming it (the thread is left behind; the rest of the zoo goes on)."""
    seconds = build_timeout()

    def guarded():
        with plugin_output_to_stderr(), plugin_code():
            return fn()

    return within(seconds, guarded, f"{what} still running after {seconds:g} s: it hangs "
                                    f"(set {DISABLE_ENV} to skip it, or {BUILD_TIMEOUT_ENV} to wait longer)")


def output_problem(name: str, stats, num_classes: int = 10) -> str | None:
    """Why a model's output is not what training needs, one (N, classes) tensor; None if it is."""
    if getattr(stats, "outputs", 1) != 1:
        return f"{name}: {stats.outputs} outputs, expected one (None, {num_classes}) tensor"
    if stats.output_shape != (None, num_classes):
        return f"{name}: output shape {stats.output_shape}, expected (None, {num_classes})"
    return None


_zoos: dict[tuple, Zoo] = {}
_session: dict[str, Architecture] = {}  # zoo.register's, in the order registered


def get_zoo(plugins_dir: str | None = None) -> Zoo:
    """The loaded zoo for these settings, loading plugins on first use."""
    chosen = settings.current()
    key = (str(plugins_dir or chosen.plugins_dir or "") or None, chosen.disabled_plugins)
    if key not in _zoos:
        _zoos[key] = Zoo().load(key[0])
    return _zoos[key]


def reset():
    """Forget loaded plugins (tests, or after installing one in-process)."""
    _zoos.clear()


def register(arch: Architecture, plugins_dir: str | None = None) -> Architecture:
    """Add ``arch`` to this session's registries (``zoo.register``): built and checked first,
    like a plugin's model, so a broken one is a one-line error here and not in the middle of a
    comparison. Registering a name again replaces the earlier one (a notebook re-runs cells)."""
    if not isinstance(arch, Architecture):
        raise OptionError(f"zoo.register wants a zoo.Architecture, not {type(arch).__name__}")
    registry = get_zoo(plugins_dir)
    owner = registry.plugin_of(arch.name)
    if owner is not None and owner.name != SESSION_PLUGIN:
        raise OptionError(f"{arch.name!r} is already a model of plugin {owner.name!r}: give yours another name")
    arch = dataclasses.replace(arch, plugin=SESSION_PLUGIN)
    stats = architecture_stats(arch)  # a ZooError naming the model if it cannot be built
    problem = output_problem(arch.name, stats) or _probabilities_problem(arch)
    if problem:
        raise OptionError(problem if "softmax" in problem else f"{problem}: one score per digit")
    _session[arch.name] = arch
    for loaded in _zoos.values():
        loaded.add_session_architecture(arch)
    return arch


def _probabilities_problem(arch: Architecture, image_shape=(28, 28, 1), num_classes: int = 10) -> str | None:
    """Why a model that says it outputs probabilities does not (they must be ≥ 0 and sum to 1), or None.
    It is called on a few random images: a model without its final softmax trains to about chance
    with a probability loss, far from where the mistake is."""
    import numpy as np

    if arch.output != "probabilities":
        return None
    model = build_model(arch, image_shape, num_classes)
    x = np.random.default_rng(0).random((4, *arch.input_shape(image_shape)), dtype=np.float32)
    try:
        with plugin_output_to_stderr(), plugin_code():
            out = np.asarray(model(x, training=False), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001  (the model's own call fails: say so in one line)
        return f"{arch.name}: calling the model on {x.shape[0]} images failed ({type(exc).__name__}: {str(exc)[:120]})"
    sums = out.sum(axis=-1)
    if np.all(out >= -1e-6) and np.allclose(sums, 1, atol=1e-3):
        return None
    return (f"{arch.name}: its outputs are not probabilities (rows sum to {sums.min():.3g}…{sums.max():.3g}, "
            f"smallest value {out.min():.3g}): end the model with a softmax (activation='softmax'), or declare "
            f"output='logits' in zoo.Architecture")


def session_architectures() -> dict[str, Architecture]:
    """The architectures ``register`` added in this process."""
    return dict(_session)


def forget_session() -> None:
    """Take every ``register``-ed architecture out of this session's registries again."""
    for loaded in _zoos.values():
        loaded.forget_session_architectures()
    _session.clear()
