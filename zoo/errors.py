"""The zoo's exceptions: one base class, ``ZooError``, and a subclass per kind of problem.

Every message is one line a user can act on, in the words of whoever called: an argument
is named as the Python API spells it (``zoo.compare(limit=5)`` → ``limit=5 is too small:
…``), and the CLI says the same error with its own flag (``--limit 5 is too small: …``) and
exits with the status its kind calls for (``zoo.cli.app.EXIT_CODES``). The library never
calls ``sys.exit``; a notebook can catch ``zoo.ZooError`` or a narrower class.
"""

from __future__ import annotations

NOT_GIVEN = object()  # an error about a parameter whose value is not worth repeating


class ZooError(Exception):
    """A problem the user can fix: bad input, missing data, unknown name.

    ``parameter`` (the Python name, ``batch_size``) and ``value`` say which argument was
    wrong, when one was; the message then starts with them (``batch_size=0 must be at
    least 1``) and ``phrased(flag)`` says it with another name (``--batch-size 0 must …``).
    """

    def __init__(self, message: str, *, parameter: str | None = None, value=NOT_GIVEN):
        self.problem, self.parameter, self.value = message, parameter, value
        super().__init__(self.phrased())

    def phrased(self, flag: str | None = None) -> str:
        """The message, its argument named ``flag`` (a command line's) or as Python names it."""
        if self.parameter is None:
            return self.problem
        if flag is None:
            subject = self.parameter if self.value is NOT_GIVEN else f"{self.parameter}={self.value!r}"
        else:
            shown = self.value is not NOT_GIVEN and not isinstance(self.value, bool)
            subject = f"{flag} {self.value}" if shown else flag
        return subject + ("" if self.problem[:1] in (":", ",", ";") else " ") + self.problem


class OptionError(ZooError, ValueError):
    """An option or argument out of its range: a seed, an epoch count, a precision."""


class UnknownNameError(ZooError, LookupError):
    """No model, dataset, recipe or plot of that name (the message names close matches)."""


class DataError(ZooError):
    """A dataset that cannot be found or read, or that fails its checks."""


class RunFileError(ZooError):
    """A run directory or one of its files (run.json, model.keras, …) that cannot be used."""


class TrainingError(ZooError):
    """A model that could not be built, trained or saved: its job fails alone."""


class NotSaved(TrainingError):
    """A model that trained but whose files could not all be written (the message says which were)."""


class Interrupted(ZooError):
    """Ctrl-C (or a notebook's stop button, or SIGTERM) stopped the work; what finished is kept.

    ``result`` is what was kept: a ``zoo.Comparison`` (go on with ``zoo.resume(result.dir)``)
    or a ``zoo.Run`` (the interrupted run, saved with its last completed epoch). Inside the
    library, training raises it with ``records``: each stopped job's saved record (or the error
    that kept it from being saved), in the jobs' order.
    """

    def __init__(self, message: str = "interrupted", result=None, records=()):
        super().__init__(message)
        self.result, self.records = result, list(records)

    @property
    def record(self):
        """The first saved record among ``records`` (None if none could be saved)."""
        return next((r for r in self.records if not isinstance(r, Exception)), None)
