"""The zoo's exceptions: one base class, ``ZooError``, and a subclass per kind of problem.

Every message is one line a user can act on. The CLI prints ``Error: <message>`` and
exits with ``exit_code``; the Python API raises them as they are (the library never
calls ``sys.exit``), so a notebook can catch ``zoo.ZooError`` or a narrower class.
"""


class ZooError(Exception):
    """A problem the user can fix: bad input, missing data, unknown name.

    The CLI prints ``Error: <message>`` on one line and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


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


class Interrupted(ZooError):
    """Ctrl-C (or a notebook's stop button, or SIGTERM) stopped the work; what finished is kept.

    ``result`` is what was kept: a ``zoo.Comparison`` (go on with ``zoo.resume(result.dir)``)
    or a ``zoo.Run`` (the interrupted run, saved with its last completed epoch).
    """

    exit_code = 130

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result
