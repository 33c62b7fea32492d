"""What the zoo knows about each architecture and each way of training it.

Plugins describe a model with these plain dataclasses; nothing here imports Keras.
Numbers a user could get wrong by typing them in (parameter counts, multiply-
accumulates) are not fields: they are computed from the built model (``zoo.anatomy``).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from zoo.errors import OptionError, UnknownNameError

INPUT_KINDS = ("flat", "image")
# What users type: lower-case letters, digits and single dashes, starting with a letter
# (also the rule `zoo new` applies). Names become folder names, so nothing else is allowed.
NAME_RULE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_NAME = 64  # a name is typed, shown in tables and used in folder names: 64 characters at most


def is_model_name(name) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME and NAME_RULE.match(name) is not None
# The tag of the models taken from the source articles.
ARTICLE_TAG = "article"
LABELS_FOR_LOSS = {
    "categorical_crossentropy": "onehot",
    "sparse_categorical_crossentropy": "integer",
}


@dataclass(frozen=True)
class Source:
    """Where a model or recipe comes from.

    ``article_file`` names the project's copy of a source article (a file under
    ``shared/seeds``).
    """

    title: str
    site: str
    year: int | None
    article_file: str = ""
    url: str = ""

    def short(self) -> str:
        when = f", {self.year}" if self.year else ""
        return f"{self.title} ({self.site}{when})"


# Where a model or recipe written in a notebook cell (``zoo.register``) says it comes from.
SESSION_SOURCE = Source("written in this session", "this Python session", None)


KNOB_RULE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # a Python keyword argument of build()
KNOB_TEXT = re.compile(r"^[A-Za-z0-9_.+-]{1,40}$")  # a knob's text value: it names rows and folders


@dataclass(frozen=True)
class Knob:
    """A named hyperparameter an architecture's ``build`` takes as a keyword argument, so a
    class can change one thing and see what it does (``zoo compare NAME --vary dropout=0,0.5``).

    ``values`` lists what it may be (empty: any number of the default's type); the default
    must be what the article built, so declaring a knob changes no result.
    """

    name: str
    default: Any
    description: str = ""
    values: tuple = ()
    low: float | None = None   # a number's smallest and largest allowed value (inclusive)
    high: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not KNOB_RULE.match(self.name):
            raise OptionError(f"knob {self.name!r}: use lower-case letters, digits and underscores (a keyword "
                             f"argument of build), e.g. 'dropout'")
        if isinstance(self.values, list):
            object.__setattr__(self, "values", tuple(self.values))
        for value in (self.default, *self.values):
            if not isinstance(value, (bool, int, float, str)) or (isinstance(value, float) and value != value) or (
                    isinstance(value, str) and not KNOB_TEXT.match(value)):
                raise OptionError(f"knob {self.name!r}: values are numbers, booleans or short words (letters, "
                                 f"digits, . _ + -), not {value!r}")
        if self.values and self.default not in self.values:
            raise OptionError(f"knob {self.name!r}: its default {self.default!r} is not one of its values")

    def parse(self, text):
        """The value ``text`` (as typed after ``KNOB=``) stands for, or a one-line OptionError."""
        if not isinstance(text, str):  # from Python: check it as given
            value = text
        elif self.values:
            matches = [v for v in self.values if str(v).lower() == text.strip().lower()
                       or (_number(text) is not None and not isinstance(v, (bool, str)) and v == _number(text))]
            if not matches:
                raise OptionError(f"{self.name}={text}: allowed values are {', '.join(map(str, self.values))}")
            return matches[0]
        elif isinstance(self.default, bool):
            if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise OptionError(f"{self.name}={text}: give true or false")
            return text.strip().lower() in ("true", "1", "yes")
        elif isinstance(self.default, (int, float)):
            value = _number(text)
            if value is None:
                raise OptionError(f"{self.name}={text}: give a number")
            if isinstance(self.default, int) and value != int(value):
                raise OptionError(f"{self.name}={text}: give a whole number")
            value = int(value) if isinstance(self.default, int) else float(value)
        else:
            value = text.strip()
            if not KNOB_TEXT.match(value):
                raise OptionError(f"{self.name}={text!r}: use letters, digits and . _ + - only")
        if self.values and value not in self.values:
            raise OptionError(f"{self.name}={value!r}: allowed values are {', '.join(map(str, self.values))}")
        if isinstance(self.default, (int, float)) and not isinstance(self.default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise OptionError(f"{self.name}={value!r}: give a number")
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                bounds = f"from {self.low:g}" if self.low is not None else ""
                bounds += f"{' ' if bounds else ''}up to {self.high:g}" if self.high is not None else ""
                raise OptionError(f"{self.name}={value:g}: give a value {bounds}")
        return value


def _number(text: str):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


@dataclass(frozen=True)
class Published:
    """The result an article reports for a recipe, on ``dataset``'s test set (MNIST's)."""

    test_accuracy: float
    test_loss: float | None = None
    note: str = ""
    dataset: str = "mnist"  # a run on any other dataset is not compared with it


@dataclass(frozen=True)
class Recipe:
    """One complete way of training an architecture, as an article did it.

    ``optimizer`` names a Keras optimizer class and gives *every* parameter, so a
    change of library defaults (Keras 2 → 3) cannot silently change the recipe.
    ``validation`` says how the article validated: "test" (it passed the test set
    as validation data), "split:0.2" (``validation_split``) or "none".
    """

    name: str
    optimizer: dict[str, Any]
    loss: str
    batch_size: int
    epochs: int
    # A notebook's recipe needs only the five fields above; the zoo validates every run on
    # its held-out split whatever these say.
    validation: str = "none"
    source: Source = SESSION_SOURCE
    published: Published | None = None
    notes: tuple[str, ...] = ()
    # A learning-rate schedule over the whole run, in fractions of it, so it fits any
    # --epochs, --limit or --batch-size: {"kind": "warmup_cosine", "warmup": 0.2,
    # "start": 0.1, "alpha": 0.01} warms up linearly from start × the optimizer's
    # learning_rate to it over the first 20% of steps, then follows a cosine to alpha × it.
    schedule: dict[str, Any] | None = None
    # Weight averaging: the model ends training with an exponential moving average of its
    # weights over about this fraction of the run's steps (0.1: the last 10%), again in
    # fractions so a 1-epoch quick run is averaged over its own last steps, not mostly
    # over its random initial weights. Keras's optimizer keeps the average (use_ema) and
    # fit() copies it into the model when training ends.
    weight_average: float | None = None
    # Label smoothing: the loss aims at 1 − ε + ε/K for the true class and ε/K for each other
    # one instead of 1 and 0, so the network stops pushing its logits apart once it is right
    # (Szegedy et al. 2016). 0 trains on the labels as they are.
    label_smoothing: float = 0.0

    def __post_init__(self):
        if isinstance(self.optimizer, str):  # "Adam": Keras's defaults of today, said in the card
            object.__setattr__(self, "optimizer", {"class_name": self.optimizer})
        if self.source is None:
            object.__setattr__(self, "source", SESSION_SOURCE)
        for key in ("batch_size", "epochs"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(f"recipe {self.name!r}: {key} must be a whole number of at least 1, not {value!r}")
        if self.loss not in LABELS_FOR_LOSS:
            raise OptionError(f"recipe {self.name!r}: unsupported loss {self.loss!r}")
        if not isinstance(self.optimizer, dict) or "class_name" not in self.optimizer:
            raise OptionError(f"recipe {self.name!r}: optimizer needs a 'class_name'")
        if self.schedule and self.schedule.get("kind") != "warmup_cosine":
            raise OptionError(f"recipe {self.name!r}: unknown schedule {self.schedule.get('kind')!r}")
        if self.weight_average is not None and not 0 < self.weight_average <= 1:
            raise OptionError(f"recipe {self.name!r}: weight_average is a fraction of the run, in (0, 1]")
        if isinstance(self.label_smoothing, bool) or not isinstance(self.label_smoothing, (int, float)) \
                or not 0 <= self.label_smoothing < 1:
            raise OptionError(f"recipe {self.name!r}: label_smoothing is a fraction in [0, 1), "
                              f"not {self.label_smoothing!r}")
        if {"use_ema", "ema_momentum"} & set(self.optimizer) and self.weight_average:
            raise OptionError(f"recipe {self.name!r}: give weight_average or use_ema, not both")

    @property
    def labels(self) -> str:
        """Label encoding the loss needs: "onehot" or "integer"."""
        return LABELS_FOR_LOSS[self.loss]

    def loss_text(self) -> str:
        """The loss, and its label smoothing where the recipe has one."""
        return self.loss + (f" with label smoothing {self.label_smoothing:g}" if self.label_smoothing else "")

    def optimizer_text(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.optimizer.items() if k != "class_name")
        text = f"{self.optimizer['class_name']}({params})"
        if self.schedule:
            s = self.schedule
            text += (f" with learning rate warming up from {s.get('start', 0.0)}× over the first "
                     f"{s.get('warmup', 0.0) * 100:.0f}% of steps, then a cosine down to {s.get('alpha', 0.0)}×")
        if self.weight_average:
            text += (f"; the model keeps a moving average of its weights over about the last "
                     f"{self.weight_average * 100:.0f}% of steps")
        return text

    def ema_momentum(self, total_steps: int) -> float:
        """Momentum whose average spans ``weight_average`` × ``total_steps`` steps (1 − 1/span)."""
        return 1.0 - 1.0 / max(1.0, self.weight_average * total_steps)

    def build_optimizer(self, total_steps: int | None = None):
        """The Keras optimizer; a recipe with a schedule needs the run's total number of steps."""
        import keras

        config = {k: v for k, v in self.optimizer.items() if k != "class_name"}
        if (self.schedule or self.weight_average) and not total_steps:
            raise OptionError(f"recipe {self.name!r} spans its run: build_optimizer needs total_steps")
        if self.weight_average:
            config["use_ema"] = True
            config["ema_momentum"] = self.ema_momentum(total_steps)
        if self.schedule:
            peak = config["learning_rate"]
            warmup = int(total_steps * self.schedule.get("warmup", 0.0))
            config["learning_rate"] = keras.optimizers.schedules.CosineDecay(
                # without a warm-up the cosine starts at the peak itself
                initial_learning_rate=peak * self.schedule.get("start", 0.0) if warmup else peak,
                decay_steps=max(1, total_steps - warmup),
                alpha=self.schedule.get("alpha", 0.0),
                warmup_target=peak if warmup else None,
                warmup_steps=warmup,
            )
        return keras.optimizers.get({"class_name": self.optimizer["class_name"], "config": config})


@dataclass(frozen=True)
class Dataset:
    """What the zoo knows about a dataset and where to look for it (``zoo.data`` reads it)."""

    name: str
    description: str
    class_names: tuple[str, ...]
    source: str
    license: str
    image_shape: tuple[int, ...] = (28, 28, 1)
    npz_names: tuple[str, ...] = ()        # file names in the data dir or Keras's cache
    idx_dirs: tuple[str, ...] = ()         # sub-folders of the data dir that may hold IDX files ("." = itself)
    keras_cache_idx_dir: str = ""          # sub-folder of Keras's cache holding IDX files
    system_dirs: tuple[str, ...] = ()      # e.g. a Debian package's folder
    system_hint: str = ""                  # how to get the system copy
    keras_loader: str = ""                 # module in keras.datasets with load_data()
    sizes: tuple[int, int] | None = None   # expected (train, test) counts
    checksums: dict[str, str] = field(default_factory=dict)  # sha256 of each array's bytes
    # Arrays made by code instead of found in files (a library's bundled copy, a folder of
    # images): loader() returns {"x_train", "y_train", "x_test", "y_test"} as uint8 images
    # and integer labels; ``located`` says where they come from ("scikit-learn's bundled copy").
    loader: Callable[[], dict] | None = field(default=None, compare=False)
    located: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _kind_of(value) -> str:
    """What a wrong argument was, for a one-line error: its type, and a dict's keys."""
    if isinstance(value, dict):
        return f"a dict (keys {', '.join(map(str, list(value)[:4]))})"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Architecture:
    """A model family: how to build it, what it teaches, and its recipes."""

    name: str
    # A network written in a notebook cell (``zoo.register``) needs only a name, ``build`` and
    # one recipe; the card then says it was written in this session.
    title: str = ""
    summary: str = ""
    teaches: str = ""
    source: Source = SESSION_SOURCE
    input_kind: str = "image"
    build: Callable[..., Any] | None = None  # build(input_shape, num_classes) -> uncompiled keras.Model
    recipes: tuple[Recipe, ...] = ()
    tags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    pitfalls: tuple[str, ...] = ()
    output: str = "probabilities"  # or "logits"
    # Hyperparameters build() takes as keyword arguments (zoo.Knob), each with the article's
    # value as its default: `zoo info` lists them, `zoo compare --vary` changes one.
    knobs: tuple[Knob, ...] = ()
    plugin: str = field(default="", compare=False)  # filled in by the plugin manager

    def __repr__(self) -> str:  # a notebook cell ending on zoo.register(...) shows one line, not every field
        recipes = ", ".join(r.name for r in self.recipes)
        return (f"Architecture({self.name!r}, {self.input_kind} input, {self.output}, "
                f"recipe{'s' * (len(self.recipes) != 1)}: {recipes})")

    def __post_init__(self):
        if not is_model_name(self.name):
            shown = repr(self.name)[:70] + ("…" if len(repr(self.name)) > 70 else "")
            raise OptionError(f"architecture name {shown}: use lower-case letters, digits and single dashes, "
                             f"starting with a letter, at most {MAX_NAME} characters (e.g. 'tiny-net')")
        if not callable(self.build):
            raise OptionError(f"architecture {self.name!r}: build must be a function (input_shape, num_classes) "
                             f"-> keras.Model")
        if isinstance(self.recipes, Recipe):
            object.__setattr__(self, "recipes", (self.recipes,))
        elif isinstance(self.recipes, list):
            object.__setattr__(self, "recipes", tuple(self.recipes))
        if not isinstance(self.recipes, tuple) or not all(isinstance(r, Recipe) for r in self.recipes):
            raise OptionError(f"architecture {self.name!r}: recipes= takes a zoo.Recipe or a list of them, not "
                              f"{_kind_of(self.recipes)}")
        if isinstance(self.tags, (list, str)):
            object.__setattr__(self, "tags", (self.tags,) if isinstance(self.tags, str) else tuple(self.tags))
        if not self.title:
            object.__setattr__(self, "title", self.name)
        if self.source is None:
            object.__setattr__(self, "source", SESSION_SOURCE)
        if self.input_kind not in INPUT_KINDS:
            raise OptionError(f"architecture {self.name!r}: input_kind must be one of {INPUT_KINDS}")
        if not self.recipes:
            raise OptionError(f"architecture {self.name!r}: needs at least one recipe")
        if self.output not in ("probabilities", "logits"):
            raise OptionError(f"architecture {self.name!r}: output must be 'probabilities' or 'logits'")
        if isinstance(self.knobs, (list, Knob)):
            object.__setattr__(self, "knobs", (self.knobs,) if isinstance(self.knobs, Knob) else tuple(self.knobs))
        if not all(isinstance(k, Knob) for k in self.knobs):
            raise OptionError(f"architecture {self.name!r}: knobs must be zoo.Knob objects")
        names = [k.name for k in self.knobs]
        if len(set(names)) != len(names):
            raise OptionError(f"architecture {self.name!r}: knob names repeat")

    def recipe(self, name: str | None = None) -> Recipe:
        """The named recipe, or the first (the default) when ``name`` is None."""
        if name is None:
            return self.recipes[0]
        for recipe in self.recipes:
            if recipe.name == name:
                return recipe
        known = ", ".join(r.name for r in self.recipes)
        raise UnknownNameError(f"{self.name} has no recipe {name!r} (it has: {known})")

    def input_shape(self, image_shape=(28, 28, 1)) -> tuple[int, ...]:
        if self.input_kind == "flat":
            size = 1
            for n in image_shape:
                size *= n
            return (size,)
        return tuple(image_shape)


EXPERIMENT_KINDS = ("vary", "validate-on-test")


@dataclass(frozen=True)
class Experiment:
    """A question a class asks ("what does dropout buy?"), answered by changing one thing.

    ``vary`` lists the values of one or more knobs of ``model`` (the first value of each is
    the reference); every variant trains on the same seeds and split, so each difference
    gets a paired test. The quick defaults (``seeds``, ``epochs``, ``limit``) take minutes
    on a 2-core CPU; ``full`` says what ``--full`` changes (e.g. ``{"epochs": None,
    "limit": None}``: the article's recipe on all the data). ``notice`` tells the class what
    to look for. ``kind="validate-on-test"`` measures instead how much choosing the epoch by
    test accuracy flatters a model (no ``vary``: runs validated on the test set).
    """

    name: str
    question: str
    model: str
    vary: dict = field(default_factory=dict)
    set: dict = field(default_factory=dict)
    seeds: int = 3
    epochs: int | None = 1
    limit: int | None = 5000
    notice: str = ""
    full: dict = field(default_factory=dict)
    kind: str = "vary"
    source: Source = SESSION_SOURCE
    plugin: str = field(default="", compare=False)

    def __repr__(self) -> str:  # a notebook cell ending on zoo.register(...) shows one line, not every field
        recipes = ", ".join(r.name for r in self.recipes)
        return (f"Architecture({self.name!r}, {self.input_kind} input, {self.output}, "
                f"recipe{'s' * (len(self.recipes) != 1)}: {recipes})")

    def __post_init__(self):
        if not is_model_name(self.name):
            raise OptionError(f"experiment name {self.name!r}: use lower-case letters, digits and single dashes")
        if self.kind not in EXPERIMENT_KINDS:
            raise OptionError(f"experiment {self.name!r}: kind is one of {', '.join(EXPERIMENT_KINDS)}")
        if self.kind == "vary" and not self.vary:
            raise OptionError(f"experiment {self.name!r}: vary names at least one knob and its values")
        for knob, values in self.vary.items():
            if not isinstance(values, (list, tuple)) or len(values) < 2:
                raise OptionError(f"experiment {self.name!r}: vary {knob!r} needs two values or more")
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1:
            raise OptionError(f"experiment {self.name!r}: seeds is a whole number of at least 1")
        unknown = set(self.full) - {"seeds", "epochs", "limit", "set"}
        if unknown:
            raise OptionError(f"experiment {self.name!r}: full may change seeds, epochs, limit and set, not "
                             f"{', '.join(sorted(unknown))}")


def unknown_name_error(kind: str, name: str, known) -> UnknownNameError:
    """A one-line error naming close matches, e.g. 'unknown model mlpp (did you mean: mlp?)'."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f" (did you mean: {', '.join(close)}?)" if close else f" (known: {', '.join(sorted(known))})"
    return UnknownNameError(f"unknown {kind} {name!r}{hint}")


def matches(name: str, patterns=()) -> bool:
    """Whether ``name`` matches any of the fnmatch ``patterns`` (no patterns: everything does)."""
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def has_tag(arch: Architecture, tag: str | None) -> bool:
    return not tag or tag in arch.tags


def select(architectures: dict[str, Architecture], patterns=(), tag: str | None = None) -> list[Architecture]:
    """Filter by fnmatch patterns (any may match) and tag, like timm's ``list_models``.

    A plain name that matches nothing is an error with close matches; a wildcard
    pattern that matches nothing just selects nothing.
    """
    chosen = []
    for pattern in patterns:
        if not any(ch in pattern for ch in "*?[") and pattern not in architectures:
            raise unknown_name_error("model", pattern, architectures)
    for arch in architectures.values():
        if not matches(arch.name, patterns):
            continue
        if not has_tag(arch, tag):
            continue
        chosen.append(arch)
    if patterns:
        order = {name: i for i, name in enumerate(_expand(architectures, patterns))}
        chosen.sort(key=lambda a: order[a.name])
    return chosen


def _expand(architectures, patterns):
    """Names in the order the patterns asked for them, each once."""
    seen = []
    for pattern in patterns:
        for name in architectures:
            if fnmatch.fnmatchcase(name, pattern) and name not in seen:
                seen.append(name)
    return seen
